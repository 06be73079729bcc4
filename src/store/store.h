/* store.h: durable storage of one Paxos node, two backends, and the supervisor's node registry.
 *
 * "An acceptor records its intended response in stable storage before it sends it" (Paxos Made
 * Simple, section 2.3). The node loop calls, per batch of inbound messages:
 *   store_begin, store_put for every record of px_ready.recs (store_put_cmd for one whose value
 *   carries a command longer than 8 bytes, with its bytes), store_put_fib with the applied
 *   state, store_commit, and only when store_commit returned 0 does it send the messages.
 * One batch is one transaction (group commit): after a crash (SIGKILL at any instruction) a
 * reopened store holds every committed batch and nothing of an uncommitted one.
 *
 * Backends:
 *   STORE_SQLITE: one database file `node-<id>.db` in params.dir, WAL mode, exclusive locking
 *     (the file is held by one process at a time: a second opener gets -EBUSY), one transaction
 *     per batch. Durable across process crashes with STORE_SYNC_NORMAL, across power loss with
 *     STORE_SYNC_FULL. Durable across whole runs.
 *   STORE_SHM: the records live in the caller's memory area (the node's part of the shared
 *     segment). A batch is published by one release store, so a process killed at any
 *     instruction leaves the old or the new state, never a mix. Durable across node crashes
 *     (the area outlives the process), not across the supervisor.
 *
 * What is kept: the promised ballot, the state machine snapshot (struct px_history), the accepted
 * entries (instance, ballot, value; a later ACCEPTED of the same instance replaces it) and the
 * decided entries (instance, value). TRUNCATE t drops every entry <= t; a record of an instance
 * <= the truncation point is ignored (it is dropped, by definition).
 * Commands (common/cmd.h): a value whose client_id has PX_VALUE_PAYLOAD set is a command longer
 * than 8 bytes; its first 8 bytes are in `increment` and its whole bytes (at most CMD_BYTES_MAX)
 * are kept with the ACCEPTED or DECIDED record that carries it (store_put_cmd) and handed back
 * with it by store_load; a later ACCEPTED of the instance replaces them too. The sqlite backend
 * keeps them in its rows; the shm backend in its command area (params.shm_arena_bytes), and
 * refuses them (-EMSGSIZE) when it has none, or (-ENOSPC) when they do not fit its free space.
 *
 * Error codes (every failure also leaves one line in store_errmsg / err naming the file or the
 * area and the cause):
 *   -EINVAL  bad parameters, or the store was made for another pool size or node id
 *   -ENOENT  the data directory does not exist;   -ENOTDIR  it (or a parent) is not a directory
 *   -EACCES / -EROFS  the directory or file cannot be written
 *   -EBADMSG the file or area is damaged or is not a store (SQLITE_CORRUPT, SQLITE_NOTADB,
 *            failed quick_check, bad magic, inconsistent header)
 *   -EPROTO  the store has another layout version (or px_history size) than this build, or the
 *            file is a database of another program (tables but no paxos-shm meta)
 *   -ENAMETOOLONG  the data directory path is too long (STORE_NAME_MAX)
 *   -ENOSPC  full: disk full or file size limit (SQLITE_FULL, ENOSPC, EFBIG), or the shm ring
 *            has no free slot (an instance > truncation point + entries_max), or the shm
 *            command area has no room for a command's record
 *   -EBUSY   the sqlite file is held by another live process
 *   -ELOOP   a store file (or its -wal, -shm or -journal companion) is a symbolic link: never
 *            followed, so a store never writes outside its data directory
 *   -EMSGSIZE  a command's bytes the backend cannot keep: the shm store without a command
 *            area keeps none, and the sqlite store none longer than what sqlite takes in one row
 * (SQLITE_LIMIT_LENGTH, 1e9 bytes by default: never for a command of at most CMD_BYTES_MAX) -EXDEV
 * the sqlite store belongs to another pool (its pool id is not params.pool_id) -ESTALE  the sqlite
 * store was last opened by a later run than params.epoch -EIO     any other I/O or database error;
 * -ENOMEM  out of memory A -EBADMSG also covers a row whose checksum does not match (every row the
 * state is rebuilt from carries one): the line names the file and the row. After any failed call of
 * store_begin/put/put_fib/commit the store is broken: every later call returns the same code; the
 * caller closes it (the node exits and restarts; reopening discards the failed batch).
 *
 * Thread/process context: a struct store belongs to one thread of one process. Do not use it
 * across fork(); open it in the process that uses it.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cmd.h"
#include "px.h"

/* Longest error line kept by a store (a path plus a cause). */
#define STORE_ERR_MAX 512

enum store_kind { STORE_SQLITE, STORE_SHM };
enum store_sync { STORE_SYNC_NORMAL, STORE_SYNC_FULL };

struct store_params {
    enum store_kind kind;
    const char *dir;         /* sqlite: data directory (must exist; one file per node) */
    uint16_t node_id, nodes; /* the pool size and id are recorded and checked at open */
    enum store_sync sync;    /* sqlite only; shm is as durable as the area */
    void *shm_area;          /* shm: the node's area, 64-byte aligned, zero-filled the first time */
    size_t shm_bytes;        /* shm: >= store_shm_bytes(entries_max) + shm_arena_bytes;
                              * entries_max is the largest that fits, recorded at the first open
                              * and checked later */
    /* shm: the command area at the end of the area (a multiple of 64; 0: none, commands longer
     * than 8 bytes are refused), recorded at the first open and checked later. See
     * store_shm_arena_for. */
    uint64_t shm_arena_bytes;
    /* shm: the longest state machine snapshot it takes (0: any that fits the area); a longer
     * one is -EFBIG. */
    uint64_t shm_snap_max;
    /* sqlite: the identity of the pool and the run opening the store (0 = not checked). A new
     * store (or one of a build that kept none) records pool_id; a store of another pool id is
     * refused (-EXDEV), one recorded with a later epoch too (-ESTALE); the recorded epoch is
     * raised to this one. */
    int64_t pool_id;
    int64_t epoch;
    /* sqlite: the file must already exist (a node restarted within a run: a store that vanished
     * under it is -ENOENT, never silently made new). */
    bool must_exist;
    /* sqlite: the longest command the pool carries (0 or <= CMD_INLINE_BYTES: short ones). A
     * new file for long commands gets large pages (a layout choice, read back at every open). */
    uint32_t cmd_bytes;
    /* sqlite: a store of the main job (node_config.job): one of layout 5 or older keeps its
     * Fibonacci value as its state machine's snapshot when it is raised to 6. */
    bool job;
};

struct store;

/* Opens (creating it when new) node params->node_id's store. Returns 0 and sets *out, or a
 * negative code (above) with one line in err (may be NULL). */
int store_open(const struct store_params *p, struct store **out, char *err, size_t err_len);

/* Loads the durable state: promised ballot and fib snapshot into *d (zero for a fresh store),
 * then calls each(ctx, rec, cmd, cmd_len): first one TRUNCATE with the truncation point when
 * entries were truncated (px_node_load_rec learns its log base from it), then every accepted and
 * decided entry kept, in instance order (for one instance, ACCEPTED before DECIDED). For a record
 * whose value has PX_VALUE_PAYLOAD, cmd (never NULL) and cmd_len are its whole command bytes as
 * given to store_put_cmd, valid only during the call; for any other record they are NULL and 0.
 * each may be NULL. Call it outside a batch. */
int store_load(struct store *s, struct px_durable *d,
               void (*each)(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len),
               void *ctx);

/* Starts a batch. Precondition: no batch is open. */
int store_begin(struct store *s);
/* Adds one record (PROMISE, ACCEPTED, DECIDED, TRUNCATE) to the open batch. An ACCEPTED or
 * DECIDED whose value has PX_VALUE_PAYLOAD goes through store_put_cmd: here it fails with
 * -EINVAL (its bytes would be lost). */
int store_put(struct store *s, const struct px_rec *r);
/* Adds one ACCEPTED or DECIDED record whose value has PX_VALUE_PAYLOAD to the open batch, with
 * its whole command bytes cmd[0..cmd_len) (cmd may be NULL when cmd_len is 0), copied before it
 * returns. -EINVAL (and a line) for a value without the flag, another record type, cmd_len >
 * CMD_BYTES_MAX or a NULL cmd of cmd_len > 0; -EMSGSIZE when the backend cannot keep the bytes
 * (shm: without a command area), -ENOSPC when its command area is full (shm). Like store_put, a
 * record of an instance <= the truncation point is ignored, and a failure breaks the store. */
int store_put_cmd(struct store *s, const struct px_rec *r, const void *cmd, uint32_t cmd_len);
/* Sets the state machine snapshot kept with the open batch. */
int store_put_fib(struct store *s, const struct px_history *f);
/* A state machine's snapshot (a library pool's struct pxs_state_machine, node/sm.h): the bytes
 * its snapshot callback wrote, and where it stood. One is kept per store; a later put replaces
 * it in the same transaction as the rest of the batch. */
struct store_sm_snap {
    px_inst_t index;     /* the log index the state machine had applied */
    uint64_t cmd_digest; /* the node's digest of the commands applied up to index */
    uint64_t applied;    /* commands applied up to index (no-ops and duplicates excluded) */
    struct px_history
        fib; /* the core's state at index (its dedup table: replay skips duplicates) */
};
/* Adds the state machine's snapshot to the open batch: h and bytes[0..len) (copied before it
 * returns; bytes may be NULL when len is 0). sqlite: tables sm_state and sm_part (made by the
 * first put; the bytes split into rows sqlite takes), covered by a CRC-32C. shm: one record of
 * its command area (h, then the bytes, under the record's CRC-32C), named by the committed
 * state; -ENOTSUP (and a line) for a shm store without a command area, -EFBIG for one longer
 * than params.shm_snap_max, -ENOSPC when the area has no room for it (store_shm_area_full
 * stays false: it is not a command). A failure breaks
 * the store like any batch call. */
int store_put_sm_snapshot(struct store *s, const struct store_sm_snap *h, const void *bytes,
                          size_t len);
/* Loads the kept snapshot: 0 with *found false when there is none; else *h and *bytes (malloc'd,
 * the caller frees; non-NULL even for 0 bytes) and *len. -EBADMSG (and a line) for rows or a
 * record that fail their checksum or do not fit together, -ENOMEM, -ENOTSUP on a shm store
 * without a command area. Does not break the store. Call it outside a batch. */
int store_load_sm_snapshot(struct store *s, struct store_sm_snap *h, void **bytes, size_t *len,
                           bool *found);
/* The same snapshot in pieces, so that a large state never sits whole in memory: inside the
 * open batch, store_sm_begin, then store_sm_write as often as the state machine writes (any
 * chunk size, bytes copied before it returns), then store_sm_end with the header. The result
 * is what store_put_sm_snapshot of the concatenated bytes gives, the same rows and checksum.
 * sqlite writes a row of sm_part per STORE_SM_PART_BYTES as they fill, holding at most one
 * part; a store without rows (shm: one record) gathers the bytes first (they are bounded by
 * params.shm_snap_max there). Errors as store_put_sm_snapshot's; one breaks the store. Between
 * begin and end the batch takes no other call but store_sm_write. */
#define STORE_SM_PART_BYTES (1u << 20)
int store_sm_begin(struct store *s);
int store_sm_write(struct store *s, const void *bytes, size_t len);
int store_sm_end(struct store *s, const struct store_sm_snap *h);
/* Reads the kept snapshot in pieces: store_sm_open checks it whole first (every part under
 * its checksum, so no byte of a damaged snapshot is handed out) and gives *h and *len, with
 * *found false when there is none; then store_sm_read copies its next bytes, at most cap, into
 * buf (the count; 0 at the end; a negative errno and a line when the rows changed since the
 * check); store_sm_close ends the read (always call it after an open that found one). sqlite
 * holds one row at a time. Errors of the open as store_load_sm_snapshot's. Outside a batch;
 * no other call of the store between open and close. */
int store_sm_open(struct store *s, struct store_sm_snap *h, uint64_t *len, bool *found);
long store_sm_read(struct store *s, void *buf, size_t cap);
void store_sm_close(struct store *s);
/* Which formula digests the commands in this store's snapshots (node/sm.h): 2, one mix per
 * command, for every store made by this version or 0.3.1 (layout 6); 1, three mixes, for a
 * file raised from layout 5 or older, whose snapshots carry a digest chained that way (sqlite
 * meta `sm_digest`). Every node of a pool was made by one version, so they agree. */
int store_sm_digest_version(const struct store *s);
/* Commits the open batch: durable (per sync mode) when it returns 0. */
int store_commit(struct store *s);
/* Closes the store; an open batch is discarded. s may be NULL. */
void store_close(struct store *s);
/* The last error line ("" when none). */
const char *store_errmsg(const struct store *s);
/* Bytes of the shm area that holds entries_max log slots (entries_max >= 1); 192 bytes per
 * slot. A command area comes on top. */
size_t store_shm_bytes(uint32_t entries_max);
/* A command area for commands of up to cmd_bytes when `live` of them may be kept at once (the
 * instances in flight and those not truncated yet): twice their records (an instance may hold
 * an ACCEPTED and a DECIDED command, and space comes back in ring order), at least 4 MiB; 0 for
 * cmd_bytes <= CMD_INLINE_BYTES. */
uint64_t store_shm_arena_for(uint32_t cmd_bytes, uint64_t live);
/* The bytes one command of len bytes takes in a command area (its record). */
uint64_t store_shm_record_bytes(uint32_t len);
/* Slots to give the shm backend: the core keeps its log within PX_LOG_MAX instances but tells
 * the store to truncate only in steps (and a snapshot may jump ahead), so the store's live
 * window (truncation point, highest instance] is somewhat larger than the core's: twice its
 * ring is ample (1 MiB per node). */
#define STORE_SHM_ENTRIES_DEFAULT (2u * PX_LOG_MAX)
/* True when the store failed because its shm command area had no room for a command's record
 * (a -ENOSPC of that cause; false for sqlite). */
bool store_shm_area_full(const struct store *s);
/* The entries_max of an open shm store (0 for sqlite). */
uint32_t store_shm_entries_max(const struct store *s);

/* Checks, before any store of the pool is opened, that none of the sqlite files of a pool of
 * `nodes` and of the registry in dir (nor a -wal, -shm, -journal companion) is a symbolic
 * link: 0, -ELOOP with one line naming the file, or a store_sq_check_dir code. Files that do
 * not exist yet are fine. The stores check again at open. */
int store_sqlite_check_files(const char *dir, uint16_t nodes, char *err, size_t err_len);

/* What a node's sqlite store says of itself, read without changing what it holds (a store of an
 * older layout is upgraded, as at any open). */
struct store_ident {
    bool exists;           /* false: no file (every other field is 0) */
    int64_t pool_id;       /* 0: made by a build that recorded none */
    int64_t epoch;         /* the last run that opened it, 0 when none recorded */
    px_ballot_t promised;  /* the promised ballot */
    px_inst_t hwm;         /* the highest instance it holds or held (truncation point included) */
    struct px_history fib; /* the state machine snapshot */
};

/* Reads node id's store in dir into *out: 0 (also when there is no file: out->exists false),
 * or a store_open code with one line in err. The file is closed again before it returns. */
int store_sqlite_peek(const char *dir, uint16_t id, uint16_t nodes, bool job,
                      struct store_ident *out, char *err, size_t err_len);

/* --- The supervisor's registry: sqlite file `registry.db` in the data dir, tables `nodes` and
 * `runs`. --- */
struct store_registry;

struct store_node_info {
    uint32_t roles; /* enum px_role bits */
    int pid;
    uint32_t incarnation;
    uint32_t restarts;
    int64_t last_activity_ms;
};

/* Same codes as store_open (a registry of another pool size -> -EINVAL; one written by a
 * build that kept no `runs` table -> -EPROTO). sync: as for a node store (the client's record
 * must be as durable as the nodes' accepted values). */
int store_registry_open(const char *dir, uint16_t nodes, enum store_sync sync,
                        struct store_registry **out, char *err, size_t err_len);
/* A value of the registry's meta table (key: a plain word): 0 with *found false when it has
 * none, or a store code. */
int store_registry_meta_get(struct store_registry *r, const char *key, int64_t *out, bool *found);
/* Sets it; durable when it returns 0. */
int store_registry_meta_set(struct store_registry *r, const char *key, int64_t value);
/* True when this open created the registry (the data dir had none). */
bool store_registry_fresh(const struct store_registry *r);
/* The pool's identity: a random nonzero id made when the registry was created (or first opened
 * by a build that records one). */
int64_t store_registry_pool_id(const struct store_registry *r);

/* What the registry knows a node's store held at least (table `stores`): its promised ballot
 * and highest instance, raised whenever the supervisor reads the store (before and after every
 * run). A store found below these was rolled back or replaced. */
struct store_known {
    bool found; /* false: the registry never saw this node's store */
    px_ballot_t promised;
    px_inst_t hwm;
};
/* Reads node id's row: 0 (out->found false when none). */
int store_registry_known(struct store_registry *r, uint16_t id, struct store_known *out);
/* Raises node id's row to at least (promised, hwm); durable when it returns 0. */
int store_registry_know(struct store_registry *r, uint16_t id, px_ballot_t promised, px_inst_t hwm);
/* Inserts or replaces node id's row (id < nodes); durable when it returns 0. */
int store_registry_update(struct store_registry *r, uint16_t id, uint32_t roles, int pid,
                          uint32_t incarnation, uint32_t restarts, int64_t last_activity_ms);
/* Reads node id's row: 0, or -ENOENT when it was never written. */
int store_registry_get(struct store_registry *r, uint16_t id, struct store_node_info *out);

/* The client's own record, table `runs`: one row per run of the supervisor on this data
 * directory. Rounds are numbered globally across runs (supervisor/client.h maps a global round
 * to the identity of its request). Invariants of a row:
 * decided <= submitted; no global round above `submitted` was ever handed to a node (the
 * supervisor writes `submitted` before the rounds go out); every round <= `decided` was seen
 * decided. The rounds in (decided, submitted] of the last row are in doubt. */
struct store_run {
    int64_t id;         /* 1, 2, ... in the order of the runs */
    int64_t started_ms; /* wall clock */
    int64_t ended_ms;   /* 0 while running, or when the supervisor was killed */
    uint64_t rounds;    /* new rounds asked for (--rounds) */
    uint64_t in_doubt;  /* rounds of earlier runs in doubt at the start, resolved first */
    uint64_t base;      /* global rounds before the new ones (earlier runs, in doubt included) */
    uint64_t submitted; /* high-water mark of the global rounds submitted */
    uint64_t decided;   /* every global round <= decided was seen decided */
    uint64_t done;      /* new rounds of this run seen decided */
    char outcome[32];   /* "" while running or when killed; else the report's verdict line */
};

/* The last run: 0, or -ENOENT when there was none. */
int store_registry_run_last(struct store_registry *r, struct store_run *out);
/* Appends run (its id is set to the last id + 1); durable when it returns 0. */
int store_registry_run_begin(struct store_registry *r, struct store_run *run);
/* Writes run's submitted, decided, done, ended_ms and outcome; durable when it returns 0.
 * Precondition: decided <= submitted, and submitted never decreases. */
int store_registry_run_update(struct store_registry *r, const struct store_run *run);
void store_registry_close(struct store_registry *r);
/* Removes dir's registry.db and its companions (a registry this run made and must not leave). */
void store_registry_remove(const char *dir);
const char *store_registry_errmsg(const struct store_registry *r);

#endif
