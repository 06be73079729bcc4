/* store_internal.h: what the store backends share (not part of the public contract). */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdarg.h>

#include "store.h"

/* Assertions stay on in release builds (STYLE.md); the store does not link the core, so it has
 * its own. */
void store_assert_fail(const char *expr, const char *file, int line);
#define STORE_ASSERT(e) ((e) ? (void)0 : store_assert_fail(#e, __FILE__, __LINE__))

/* Longest file path or area name used in messages; a data dir path longer than this is
 * rejected with -ENAMETOOLONG. */
#define STORE_NAME_MAX 320

/* Layout version of both backends: bump on any change of tables, area layout or record
 * meaning. A store of another version is refused with -EPROTO. */
#define STORE_LAYOUT_VERSION 2
/* Layout of the registry: 3 adds the pool id (meta) and table `stores`; a registry of layout 2
 * gains them at its first open. */
#define STORE_REG_LAYOUT_VERSION 3
#define STORE_REG_LAYOUT_OLDEST  2
/* Layout of the sqlite node store: 3 packs each log record in about 12 bytes (varints) instead
 * of 32. A version-2 file still opens: its rows are read as they are, new rows are written in
 * version 3's packing and its meta is raised to 3 (a build that reads only 2 then refuses it
 * with one line). */
/* 4 adds the row checksums (crc columns) and the identity (meta pool_id, epoch); a file of 2 or 3
 * gains them at its first open. */
/* 5: a packed record whose value has PX_VALUE_PAYLOAD is followed by its command's length and
 * bytes. A file of 4 holds no such record (client ids were below 2^31) and is raised to 5 as it
 * is; one of 2 or 3 gains the checksums first. */
/* 6: the core's state (paxos_state.fib, sm_state.fib: struct px_history) no longer holds the
 * Fibonacci value, 8 bytes shorter: the main job's value is its state machine's
 * (cli/fib_sm.h), kept in sm_state/sm_part like any state machine's. A file of 5 or older is
 * raised as it opens: the value leaves both rows, and a main job's store (store_params.job) gets
 * it back as a snapshot of that state machine at the row's applied index. */
#define STORE_SQ_NODE_LAYOUT_VERSION 6
#define STORE_SQ_NODE_LAYOUT_OLDEST  2

/* store_load's callback (store.h): cmd/cmd_len are the record's command bytes or NULL/0. */
typedef void (*store_each_fn)(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len);

/* Hands the truncation point to a loader (store_load's first record), when there is one. */
void store_emit_truncate(px_inst_t truncated, store_each_fn each, void *ctx);

struct store_ops {
    int (*load)(struct store *s, struct px_durable *d, store_each_fn each, void *ctx);
    int (*begin)(struct store *s);
    int (*put)(struct store *s, const struct px_rec *r);
    /* r is an ACCEPTED or DECIDED with PX_VALUE_PAYLOAD, cmd_len <= CMD_BYTES_MAX (checked). */
    int (*put_cmd)(struct store *s, const struct px_rec *r, const void *cmd, uint32_t cmd_len);
    int (*put_fib)(struct store *s, const struct px_history *f);
    int (*commit)(struct store *s);
    /* Optional (NULL: -ENOTSUP): store_put_sm_snapshot, store_load_sm_snapshot. */
    int (*put_sm)(struct store *s, const struct store_sm_snap *h, const void *bytes, size_t len);
    int (*load_sm)(struct store *s, struct store_sm_snap *h, void **bytes, size_t *len,
                   bool *found);
    /* Optional, all three or none (NULL: store.c gathers the pieces for put_sm): store_sm_*. */
    int (*sm_begin)(struct store *s);
    int (*sm_write)(struct store *s, const void *bytes, size_t len);
    int (*sm_end)(struct store *s, const struct store_sm_snap *h);
    /* Optional, all three or none (NULL: store.c reads through load_sm): store_sm_open... */
    int (*sm_open)(struct store *s, struct store_sm_snap *h, uint64_t *len, bool *found);
    long (*sm_read)(struct store *s, void *buf, size_t cap);
    void (*sm_close)(struct store *s);
    void (*close)(struct store *s); /* frees the backend and s */
};

/* The common head of every backend's store; each backend's struct starts with it. */
struct store {
    const struct store_ops *ops;
    enum store_kind kind;
    uint16_t node_id, nodes;
    bool in_batch;
    int failed;           /* 0, or the sticky code of the first failed batch call */
    uint32_t entries_max; /* shm only */
    bool area_full;       /* shm only: the failure was a full command area */
    uint8_t sm_digest;    /* store_sm_digest_version: 0 (meaning 2) or 1 */
    /* store_sm_begin .. store_sm_end in progress; for a backend without sm_write the bytes so
     * far (sm_gather), and for one without sm_read the snapshot being read (sm_out_at). */
    bool sm_writing, sm_reading;
    uint8_t *sm_gather;
    size_t sm_gather_len, sm_gather_cap;
    uint8_t *sm_out;
    size_t sm_out_len, sm_out_at;
    char name[STORE_NAME_MAX];
    char err[STORE_ERR_MAX];
};

/* Formats one line "<name>: <message>" into s->err and returns code. */
int store_fail(struct store *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same into a caller buffer (err may be NULL); returns code. */
int store_fail_buf(char *err, size_t err_len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int store_sqlite_open(const struct store_params *p, struct store **out, char *err, size_t err_len);
int store_shm_open(const struct store_params *p, struct store **out, char *err, size_t err_len);

/* sqlite helpers shared by the node store and the registry. */
/* Checks that dir exists, is a directory and is writable: 0, -ENOENT, -ENOTDIR, -EACCES,
 * -EROFS, -ENAMETOOLONG. */
int store_sq_check_dir(const char *dir, char *err, size_t err_len);
/* Maps a sqlite result code (and the OS errno behind it) to a negative errno code. */
int store_sq_code(sqlite3 *db, int rc);
/* Maps rc like store_sq_code and writes one line "<path>: <what> failed: <cause> (sqlite: ..)"
 * into err; returns the code. */
int store_sq_fail(char *err, size_t err_len, sqlite3 *db, const char *path, const char *what,
                  int rc);
/* -ELOOP with one line naming the file when path or one of its -wal, -shm, -journal companions
 * is a symbolic link; 0 otherwise. */
int store_sq_refuse_links(const char *path, char *err, size_t err_len);
/* Opens path read-write (creating it), WAL mode, the given sync and locking mode, never
 * following a link in place of the file or a companion (-ELOOP). On failure *db is NULL and err
 * holds the line. */
int store_sq_open_db(const char *path, enum store_sync sync, bool exclusive, bool big_pages,
                     sqlite3 **db, char *err, size_t err_len);
/* The node stores' VFS (store_sqlite_vfs.c): the default one, except that the WAL appends of a
 * held commit reach the OS as one write. Its name for sqlite3_open_v2, or NULL when it could not
 * be registered (the default VFS is then used). */
const char *store_sq_vfs(void);
/* Gathers db's WAL appends in memory from now until store_sq_wal_flush (no-op when db's WAL is
 * not open or not on store_sq_vfs). */
void store_sq_wal_hold(sqlite3 *db);
/* Writes the gathered appends to the OS and ends the hold: SQLITE_OK, or the VFS's error code
 * with errno set (sticky: every later use of the WAL fails too). */
int store_sq_wal_flush(sqlite3 *db);
/* Tests: sets SQLITE_LIMIT_LENGTH (the longest value and row sqlite takes) on the connection of
 * sqlite node store s and returns the previous limit, so that the splitting of a batch's log
 * rows can be tried without a gigabyte of commands. */
int store_sq_limit_length(struct store *s, int bytes);
/* Stringifies a macro's value into SQL text. */
#define STORE_SQ_STR_(x) #x
#define STORE_SQ_STR(x)  STORE_SQ_STR_(x)
/* Sets meta's key to value (inserting it when absent); returns 0 or a mapped code. */
int store_sq_meta_set(sqlite3 *db, const char *path, const char *key, int64_t value, char *err,
                      size_t err_len);
/* Removes the database file path and its -wal, -shm and -journal companions (what is not there
 * is fine). */
void store_sq_remove_db(const char *path);
/* Runs one SQL text without results; returns 0 or a mapped code with err filled. */
int store_sq_exec(sqlite3 *db, const char *path, const char *sql, char *err, size_t err_len);
/* One recorded property of a store file and the code returned when it differs. */
struct store_sq_kv {
    const char *key;
    int64_t value;
    int code_if_different;
};
/* The layout versions a file may have: `version` is written to a new file, oldest..version are
 * read. */
struct store_sq_layout {
    int64_t version, oldest;
};
/* Inside a write transaction: when the file holds no table yet, creates `meta` with the layout
 * version and the pairs and sets *fresh; otherwise checks them (-EPROTO for a layout version
 * outside oldest..version or a file that is not a store, the pair's code for a mismatching
 * pair) and sets *found to the file's layout version. */
int store_sq_meta(sqlite3 *db, const char *path, struct store_sq_layout layout,
                  const struct store_sq_kv *kv, int pairs, bool *fresh, int64_t *found, char *err,
                  size_t err_len);

#endif
