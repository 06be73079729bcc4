/* node.h: one node process's loop. Runs in a forked child of the supervisor.
 *
 * The node knows nothing of the command line: the supervisor builds one struct node_config per
 * node (node_config is plain data, so it survives fork) and the node runs from it alone. */
#ifndef PX_NODE_H
#define PX_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "paxos-shm/paxos_shm.h"
#include "paxos/px.h"
#include "store/store.h"

/* Exit codes of a node process (the supervisor reads them with waitpid; they are the node's
 * own, not the command's). A node that dies by a signal is restarted; one that exits with
 * NODE_EXIT_FAILED reported why on stderr and stops the run. */
enum {
    NODE_EXIT_STOPPED = 0, /* stopped on request after publishing its final state */
    NODE_EXIT_FAILED = 3,  /* storage, setup or configuration failure (one line on stderr) */
    /* The core asked to persist a record whose command's bytes this node no longer holds
     * (persist.h: -ENODATA, nothing written, nothing sent): the node ends as if it had crashed
     * there, and the supervisor restarts it like one. Its durable state is whole. */
    NODE_EXIT_RESTART = 4,
};
/* A library pool's state machine also ends the node with NODE_EXIT_RESTART (one line on stderr)
 * when one of its callbacks returned a negative errno, or when the bytes of a command or of a
 * snapshot it must apply are gone. */

struct ipc_segment;
struct sock_mesh;
struct pxs_state_machine;

struct node_config {
    uint16_t id, nodes;
    uint64_t roles[PX_NODES_MAX]; /* enum px_role bits of every node */
    uint32_t window;              /* congestion window cap */
    /* Longest command (--command-bytes): over CMD_INLINE_BYTES, commands travel beside their
     * values and every applied one is checked against payload_fib_fill. 0 = CMD_INLINE_BYTES. */
    uint32_t cmd_bytes;
    uint64_t sm_state_max; /* shm store: room for a state machine's snapshot (cli_config) */
    /* Library pools: a snapshot once the log since the last holds this many bytes of commands
     * or this many entries (0: DRIVER_SM_SNAP_BYTES, and DRIVER_SM_SNAP_INSTANCES or on the shm
     * store NODE_SHM_SNAP_ENTRIES_MAX). */
    uint64_t sm_snap_bytes;
    uint32_t sm_snap_entries;
    uint32_t rotate; /* leadership hand-over every K decided rounds, 0 = never */
    uint64_t seed;   /* back-off and failpoint seed of the pool */
    enum store_kind store;
    enum store_sync sync;
    const char *data_dir;   /* sqlite store directory (NULL for the shm store) */
    uint32_t incarnation;   /* 1 for the first start of this id, +1 per restart */
    int64_t pool_id, epoch; /* sqlite: the identity stamped into the store (store_params) */
    bool store_must_exist;  /* sqlite: an earlier incarnation of this run loaded the store */
    /* The state machine every learner runs (paxos_shm.h), a pointer valid in this process (set
     * before the fork): a library pool's, or the main job's (job). A library pool's commands
     * are 0 bytes or more (cmd.h: cmd_lib_pack, or beside the value), with no
     * payload_fib_check; on the shm store its snapshots take sm_state_max bytes of the command
     * area. The final state carries final_sm_* (common/pool.h). */
    const struct pxs_state_machine *sm;
    /* The main job (sm is cli/fib_sm.h's): commands are 8 bytes or more, those longer than
     * CMD_INLINE_BYTES checked byte for byte (payload_fib_check) on every learner, and no
     * results are kept (driver_config.sm_job). */
    bool job;
};

struct node_args {
    struct ipc_segment *seg;
    struct sock_mesh *mesh; /* --transport socket: the socketpairs; NULL for the rings */
    struct node_config cfg;
};

/* The shm store's command area of each node for commands of up to cmd_bytes under a client
 * window: room for the commands in flight (payload_window_for) and NODE_SHM_RETAINED more not
 * yet truncated, twice over (store_shm_arena_for), at most NODE_SHM_ARENA_CAP and the node's
 * share of NODE_SHM_ARENA_TOTAL; 0 for short commands. The segment reserves it whole
 * (posix_fallocate), so it is memory. The client's window (node_shm_window) is what half the
 * area's records hold beyond NODE_SHM_TRUNCATE_SLACK (the core truncates its log in steps of
 * that many instances, so as many decided commands wait there); a pool where that leaves no
 * window at all is refused (node_shm_arena_fits: exit 2). When a node's area is full all the
 * same (a learner far behind keeps the log from being truncated), its batch fails and the node
 * ends as if it had crashed (NODE_EXIT_RESTART): restarted, its durable state whole.
 * A library pool's state machine adds room for three snapshots of up to state_max bytes (the
 * kept one, the next, and one more while the tail reaches the kept one), beyond every cap; a
 * snapshot longer than that fails its batch and stops the node (NODE_EXIT_FAILED: the pool
 * ends with exit 3 and the store's line). */
#define NODE_SHM_RETAINED (PX_LOG_MAX / 4)
/* The shm store holds 2 * PX_LOG_MAX instances of log: a library pool's learner snapshots
 * (which lets the log be truncated) well within them, every this many entries at most (a
 * quarter: the rest is what is in flight and what the truncation step and the
 * acknowledgements leave behind). PXS_SHM_SNAPSHOT_ENTRIES_MAX says the same. */
#define NODE_SHM_SNAP_ENTRIES_MAX (PX_LOG_MAX / 2u)
/* The main job's payload plane takes at least this long a stream: its state machine's snapshot
 * (an 8-byte value after node/sm.h's header), which catch-up streams to a lagging learner. */
#define NODE_JOB_STATE_BYTES    8u
#define NODE_JOB_PLANE_MIN      (24u + NODE_JOB_STATE_BYTES)
#define NODE_SHM_ARENA_CAP      (256ull << 20)
#define NODE_SHM_ARENA_TOTAL    (4ull << 30)
#define NODE_SHM_TRUNCATE_SLACK 64u
uint64_t node_shm_arena_bytes(uint32_t cmd_bytes, uint32_t window, uint16_t nodes,
                              uint64_t state_max);
uint32_t node_shm_window(uint32_t cmd_bytes, uint32_t window, uint16_t nodes);
bool node_shm_arena_fits(uint32_t cmd_bytes, uint32_t window, uint16_t nodes, uint64_t state_max);
/* Bytes of a node's user area in the segment: struct pool_node_shared + the shm store (its
 * slots and, for cmd_bytes > CMD_INLINE_BYTES, its command area). */
uint64_t node_user_bytes(enum store_kind store, uint32_t cmd_bytes, uint32_t window, uint16_t nodes,
                         uint64_t state_max);
/* Fills the core configuration of the node from its node_config. */
void node_px_config(const struct node_config *cfg, struct px_config *out);

/* Runs the node until the supervisor sets stop. Returns the process exit code: NODE_EXIT_*. */
int node_run(const struct node_args *a);

#endif
