/* paxos_shm.h: paxos-shm as a C library: run your own replicated state machine on a Paxos pool
 * of processes on one machine.
 *
 * The embedding process opens a pool (pxs_open): the library forks the pool's node processes,
 * which exchange messages through rings in a POSIX shared-memory segment and agree, instance by
 * instance, on the order of the commands submitted to them. Every node that learns (a learner)
 * applies every chosen command, in the same order, to its own copy of your state machine (struct
 * pxs_state_machine), inside its own process. The embedding process submits commands
 * (pxs_submit, pxs_call), receives each command's result from a learner, and at the end
 * (pxs_close) the library checks that every learner applied the same commands and reached the
 * same state.
 *
 * Every public name starts with pxs_ or PXS_. Errors are negative errno values (0 is success);
 * pxs_strerror names them. No call aborts on bad input: a NULL where a pointer is required, a
 * bad configuration, a command over the maximum, a closed pool all return an error and change
 * nothing.
 *
 * Processes and threads: a pool belongs to the thread that opened it. Every call on a pool is
 * made from that thread (the library takes no locks); completion callbacks run on it, inside
 * pxs_poll, pxs_call or pxs_close. Open pools before starting other threads: the node processes
 * are forked from the calling thread and only that thread exists in them. One pool is open per
 * process at a time (a second pxs_open returns -EBUSY). While it is open the pool handles
 * SIGCHLD (it reaps its nodes) and the stop signals SIGINT, SIGTERM and SIGHUP: one of them
 * makes pxs_poll return -ESHUTDOWN and pxs_close return 128 + the signal. pxs_close (and a
 * pxs_open that fails) puts the process's own handling of those signals back.
 *
 * Link with `pkg-config --cflags --libs paxos-shm` (or CMake: find_package(paxos-shm), target
 * paxos-shm::paxos-shm). The header compiles as C11 and as C++. */
#ifndef PAXOS_SHM_H
#define PAXOS_SHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's calls as exported (it is built with -fvisibility=hidden). */
#if defined(__GNUC__) && __GNUC__ >= 4
#define PXS_API __attribute__((visibility("default")))
#else
#define PXS_API
#endif

#define PXS_VERSION_MAJOR 0
#define PXS_VERSION_MINOR 3
#define PXS_VERSION_PATCH 1
/* The library's version as "MAJOR.MINOR.PATCH" (of the library linked, not of this header). */
PXS_API const char *pxs_version(void);
/* A text for an error code this library returns (negative errno), e.g. "command too long". */
PXS_API const char *pxs_strerror(int err);

/* Exit codes of the paxos-shm command, and what pxs_close returns: 0 verified, 1 the learners'
 * states differ, 2 bad configuration, 3 a runtime failure (a node could not start or keeps
 * failing, storage), 128 + N stopped by signal N. */
enum pxs_exit {
    PXS_EXIT_VERIFIED = 0,
    PXS_EXIT_VERIFY_FAILED = 1,
    PXS_EXIT_USAGE = 2,
    PXS_EXIT_RUNTIME = 3,
    PXS_EXIT_SIGNAL_BASE = 128,
};

#define PXS_NODES_MAX 64
/* Commands are 0 bytes up to pxs_config.command_max: 1 MiB unless set, 64 MiB at most. */
#define PXS_COMMAND_MAX_DEFAULT (1u << 20)
#define PXS_COMMAND_MAX_LIMIT   (64u << 20)
/* A result (what apply returns for the submitter) is at most this long. */
#define PXS_RESULT_MAX (64u << 10)
/* pxs_config.shm_state_max unless set: 16 MiB. */
#define PXS_SHM_STATE_MAX_DEFAULT (16ull << 20)
/* pxs_config.snapshot_log_bytes and snapshot_log_entries unless set: 4 MiB and 65536 entries
 * (PXS_STORE_SHM: 2048 entries, which is also the most it takes there: its log holds 8192). */
#define PXS_SNAPSHOT_LOG_BYTES_DEFAULT   (4ull << 20)
#define PXS_SNAPSHOT_LOG_ENTRIES_DEFAULT 65536u
#define PXS_SHM_SNAPSHOT_ENTRIES_MAX     2048u

/* --- your state machine ---------------------------------------------------------------------
 * The callbacks run in every learner node process (a forked copy of the embedding process), on
 * its only thread, never concurrently. They may allocate, read and write memory and files of
 * their own; they must not call this library, must not touch the embedding process's
 * descriptors as if they were shared (they are copies), and must not block for long (the node
 * does nothing else meanwhile: a callback that takes longer than the pool's hang allowance gets
 * its node marked hung). A node process may be killed at any point (chaos, a crash): the library
 * keeps your state durable through snapshots and its own log, so a callback never needs to write
 * anything to disk itself. A callback that returns a negative errno ends its node process as a
 * crash would (one line on stderr names the callback and the error); the node is restarted from
 * its last snapshot. A node that ends so 8 times in a row, each within a second of its start and
 * at the same log index (an apply that fails on one command on every try, a start that always
 * fails), stops the pool: pxs_open returns -EIO, pxs_poll -ESHUTDOWN, pxs_close
 * PXS_EXIT_RUNTIME. */

/* Where snapshot writes its state: call write as often as it likes, any chunk size. On the
 * sqlite store the snapshots a learner keeps go into its store as they are written (rows of
 * 1 MiB), so a large state is never copied whole in memory; the one sent to a lagging learner
 * is gathered first (at most 64 MiB). */
struct pxs_writer {
    /* Appends len bytes. Returns 0, or a negative errno (stop and return it from snapshot). */
    int (*write)(struct pxs_writer *w, const void *chunk, size_t len);
    void *opaque; /* the library's */
};

/* Where restore reads a state that snapshot wrote, in the same bytes (maybe other chunks). At
 * a restart they come from the node's store a row at a time, checked whole before the first. */
struct pxs_reader {
    /* Fills up to cap bytes of buf. Returns how many (0 at the end), or a negative errno. */
    long (*read)(struct pxs_reader *r, void *buf, size_t cap);
    void *opaque; /* the library's */
};

struct pxs_state_machine {
    /* sizeof(struct pxs_state_machine) of the caller's header: later versions add fields at
     * the end and read only what the caller's size covers. */
    uint32_t size;
    uint32_t reserved; /* 0 */
    void *ctx;         /* passed to every callback */
    /* Optional. Called once in each node process (each incarnation) before any other call:
     * the state is empty. node is the node's id, 0 .. nodes - 1. Returns 0 or a negative
     * errno (the node ends as if it crashed). */
    int (*start)(void *ctx, uint32_t node);
    /* Required. Applies the command chosen at log index `index` (1, 2, ... with gaps where no
     * command was chosen: no-ops are not applied). cmd is len bytes (cmd may be NULL when len
     * is 0), valid during the call. Must be deterministic: the same state and command give the
     * same new state and result on every node, every time. *result / *result_len: bytes for the
     * submitter (at most PXS_RESULT_MAX; the state machine owns them, valid until its next
     * callback); leave them NULL / 0 for none. Returns a status of your own (0 or more, e.g. 1
     * for "key not found"; it goes to the submitter with the result: a rejected command is a
     * status, never a crash), or a negative errno when the state machine cannot go on (the node
     * process ends as if it crashed and is restarted from its last snapshot). */
    int (*apply)(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                 size_t *result_len);
    /* Required. Writes the whole state to w. The library calls it when the log since the last
     * snapshot is long enough (pxs_config.snapshot_log_bytes and snapshot_log_entries: 4 MiB of
     * commands, or as many bytes as that snapshot if more, or 65536 entries), and to catch up
     * a node that lags. Returns 0 or a negative errno (the node process ends as if it crashed;
     * nothing is truncated). */
    int (*snapshot)(void *ctx, struct pxs_writer *w);
    /* Required. Replaces the state with the one r yields (written by snapshot on some node).
     * Returns 0 or a negative errno (the node process ends as if it crashed). */
    int (*restore)(void *ctx, struct pxs_reader *r);
    /* Optional. A digest of the state (equal states give equal digests). pxs_close compares it
     * across learners beside the library's own digest of the applied commands. */
    uint64_t (*digest)(void *ctx);
};

/* --- a pool ---------------------------------------------------------------------------------- */
enum pxs_store {
    PXS_STORE_SQLITE = 0, /* durable: every node's records in SQLite under data_dir */
    PXS_STORE_SHM = 1,    /* in the segment: survives a node's death, not the pool's (no
                           * data_dir), and reserves its memory when the pool opens */
};

struct pxs_config {
    uint32_t size;        /* sizeof(struct pxs_config): set by pxs_config_init */
    uint32_t nodes;       /* 1 .. PXS_NODES_MAX; default 3 */
    uint32_t proposers;   /* nodes 0 .. proposers - 1 propose; 0 = all */
    uint32_t acceptors;   /* nodes 0 .. acceptors - 1 accept; 0 = all */
    uint32_t learners;    /* the last `learners` nodes learn (run the state machine); 0 = all */
    uint32_t window;      /* commands in flight at most; default 64 */
    uint32_t command_max; /* longest command in bytes; default PXS_COMMAND_MAX_DEFAULT */
    enum pxs_store store; /* default PXS_STORE_SQLITE */
    /* Directory of the durable store; NULL: a fresh one, removed by pxs_close. A directory
     * that holds a pool of another state machine or another configuration is refused. */
    const char *data_dir;
    uint64_t seed;        /* seeds back-off (and chaos): runs are repeatable given a seed */
    uint32_t chaos_kills; /* SIGKILL this many random nodes while the pool runs; default 0 */
    uint32_t timeout_s;   /* pxs_close gives up after this long; 0 = never */
    int quiet;            /* nonzero: nothing on stdout (errors still go to stderr) */
    /* Commands completed between two chaos kills (the first after that many); 0: the kills
     * fall at seeded random moments among the first 1000 commands completed. */
    uint32_t chaos_every;
    /* PXS_STORE_SHM: the longest snapshot of the state, in bytes, each node's part of the
     * segment keeps room for (three of them: the kept one, the next and one on its way out),
     * reserved when the pool opens; 0 or unset: PXS_SHM_STATE_MAX_DEFAULT. A snapshot longer than
     * that stops its node, and the pool with it (pxs_close: PXS_EXIT_RUNTIME). Beside it each
     * node reserves room for its log's commands: up to 256 MiB for command_max of 1 MiB. */
    uint64_t shm_state_max;
    /* When a learner snapshots its state, so that the log below it can be dropped: once the
     * log since its last snapshot holds snapshot_log_bytes bytes of commands (each entry
     * counting 64 bytes more than its command; and at least as many bytes as that snapshot,
     * so that a large state is not written for every few commands) or snapshot_log_entries
     * entries, whichever comes first; it is looked at where the log is truncated (every 64
     * instances at most, once every learner applied them). Smaller values bound the log a restarted
     * node replays and the disk it takes; larger ones write the state less often. 0 or unset:
     * PXS_SNAPSHOT_LOG_BYTES_DEFAULT and PXS_SNAPSHOT_LOG_ENTRIES_DEFAULT (on PXS_STORE_SHM
     * PXS_SHM_SNAPSHOT_ENTRIES_MAX, which PXS_SNAPSHOT_LOG_ENTRIES_DEFAULT also means there;
     * any other value above it is -EINVAL there). */
    uint64_t snapshot_log_bytes;
    uint32_t snapshot_log_entries;
    uint32_t reserved; /* 0 */
};

/* Fills c with the defaults above (and c->size). */
PXS_API void pxs_config_init(struct pxs_config *c);

struct pxs_pool; /* opaque */

/* Starts a pool of c->nodes node processes running sm (copied: the caller may reuse both
 * structs). Returns 0 and sets *out once every node loaded its store, a leader is elected and
 * the learners stand at the same log index (a data dir continued after a stop may have left
 * one behind: it catches up first, for up to 2 s, so that it does not later skip, by a
 * snapshot, commands it must report results of);
 * -EINVAL for a bad configuration or state machine (one line on stderr says which field),
 * -ENOENT / -ENOTDIR / -EACCES for a data_dir that is not a directory it may write in,
 * -EEXIST / -EBUSY for a data dir of another pool or in use, -EINTR when a stop signal came
 * while it started (the signal is not delivered again), -EIO and others for a failure to
 * start (nothing is left running in any of these cases). The environment's PAXOS_LOG (error, info,
 * debug, trace) and PAXOS_LOG_TIME=1 set what the pool logs on stderr, as for the paxos-shm
 * command. */
PXS_API int pxs_open(const struct pxs_config *c, const struct pxs_state_machine *sm,
                     struct pxs_pool **out);

/* A submitted command's outcome, passed to its completion:
 *   err        0: applied exactly once at `index` (0 when the pool answered a resubmission
 *              of a command it had applied earlier); -ECANCELED: the pool closed first (the
 *              command may or may not have been applied).
 *   status     apply's return for it (when err is 0).
 *   result     apply's result bytes, result_len of them, valid during the callback; NULL with
 *              result_len 0 when it had none, or when the result was lost (result_lost is
 *              then 1: the command was still applied once). A result is lost when the learner
 *              that reports it died, was restarted, caught up past it from a snapshot, or
 *              took more than 500 ms after the command was chosen to apply it. */
struct pxs_outcome {
    int err;
    int status;
    uint64_t index;
    const void *result;
    size_t result_len;
    int result_lost;
};
/* A completion may call pxs_submit; pxs_poll and pxs_call return -EDEADLK from inside one, and
 * pxs_close returns PXS_EXIT_USAGE and does nothing. */
typedef void (*pxs_done_fn)(void *arg, const struct pxs_outcome *o);

/* Submits len bytes of cmd (copied before the call returns). done(arg, outcome) is called once,
 * from a later pxs_poll, pxs_call or pxs_close on this thread. Returns 0; -EMSGSIZE when len >
 * command_max; -EAGAIN when `window` commands are in flight (poll, then submit again);
 * -ESHUTDOWN when the pool is closing or has failed; -EINVAL for NULL pool or done, or a NULL cmd
 * with len > 0. Exactly once: a command is resubmitted after a leader change until it is
 * chosen, and applied once whatever the resubmissions. */
PXS_API int pxs_submit(struct pxs_pool *p, const void *cmd, size_t len, pxs_done_fn done,
                       void *arg);

/* Runs the pool for up to timeout_ms (0: what is ready now; -1: until a completion, or
 * config.timeout_s when set, whichever comes first): reads
 * replies, resubmits, restarts nodes that died, and calls completions. Returns how many
 * completions it called (0 or more), or -ESHUTDOWN when the pool failed (pxs_close says why). */
PXS_API int pxs_poll(struct pxs_pool *p, int timeout_ms);

/* Submits cmd and waits for its outcome (runs pxs_poll meanwhile: other completions run too).
 * The result is copied to result (up to cap bytes; out->result_len says its full length). Returns
 * 0 with *out filled (out->result points into the caller's result buffer), or what pxs_submit
 * returns (-EAGAIN is waited out, not returned), or -ETIMEDOUT when config.timeout_s is set and
 * passed first (the command may still be applied; nothing reports it to the caller). */
PXS_API int pxs_call(struct pxs_pool *p, const void *cmd, size_t len, void *result, size_t cap,
                     struct pxs_outcome *out);

/* What pxs_close found. */
struct pxs_report {
    uint32_t size; /* set by the caller: sizeof(struct pxs_report) */
    uint32_t learners, learners_agree;
    uint64_t applied;   /* commands applied (on each learner) */
    uint64_t index;     /* the log index the learners reached */
    uint64_t digest;    /* the library's digest of the applied commands (equal on every one) */
    uint64_t sm_digest; /* your digest callback's value (0 without one) */
    uint32_t restarts;  /* node restarts */
    uint32_t chaos_kills;
};

/* Completes what is in flight (up to timeout_s), stops the nodes, compares every learner's
 * applied commands and digest, frees the pool and, when r is not NULL, fills r. Returns a
 * pxs_exit code: PXS_EXIT_VERIFIED when every learner agrees. Completions still pending are
 * called with -ECANCELED. p is invalid afterwards. */
PXS_API int pxs_close(struct pxs_pool *p, struct pxs_report *r);

#ifdef __cplusplus
}
#endif
#endif
