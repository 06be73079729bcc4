/* pool.h: what the supervisor and the node processes share beyond the ipc rings. It lives in
 * the ipc segment's per-endpoint user areas: endpoint i < nodes holds struct pool_node_shared
 * followed by the node's shm store area; endpoint `nodes` (the supervisor) holds struct
 * pool_shared. Plain words written by one process and read by others with
 * CMM_LOAD_SHARED/CMM_STORE_SHARED; nothing here needs more than single-word atomicity except
 * the final state, which is guarded by a sequence word. */
#ifndef PX_POOL_H
#define PX_POOL_H

#include <stdint.h>

#include "paxos/px.h"

/* Written by the supervisor, read by every node. */
struct pool_shared {
    uint64_t membership_epoch; /* bumped after any node's alive flag changes */
    uint32_t stop;             /* 1: nodes publish their final state and exit 0 */
    uint32_t reserved;
    uint64_t alive_mask; /* bit i: node i is up (written before the epoch bump) */
} __attribute__((aligned(64)));

/* Written by node i only, read by the supervisor. */
struct pool_node_shared {
    /* Live status, refreshed once per loop iteration (single words, no torn reads matter). */
    uint64_t applied; /* highest instance applied */
    uint16_t leader;  /* leader this node believes in, PX_NODE_NONE if none */
    uint16_t is_leader;
    uint32_t elections_won; /* times this node became leader */
    uint64_t msgs_sent, msgs_received;
    uint64_t ring_full; /* sends that found a ring full (message kept in the outbox) */
    uint64_t drops;     /* messages to a down/detached peer dropped (counted, reported) */
    uint64_t lagged;    /* broadcast reads that returned "lagged" */
    uint64_t batches;   /* persisted batches (group commits) */
    uint64_t records;   /* records persisted */
    /* Messages that arrived damaged (failed their check): dropped, counted. */
    uint64_t bad_messages;
    /* Client values the core dropped at a full request queue (px_stats.requests_dropped). */
    uint64_t requests_dropped;
    /* Applied commands longer than a value's 8 bytes (--command-bytes): checked byte for byte
     * against what the client made, and of them the ones that were wrong or not here. Counted
     * over every incarnation of the node (the node adds to them; nobody else writes them). */
    uint64_t cmds_checked;
    uint64_t cmds_bad;
    /* Payload plane (node/payload.h) of the current incarnation: streams dropped torn or bad,
     * messages dropped for a missing command. */
    uint64_t cmd_streams_torn;
    uint64_t cmd_missing;
    /* Set once per incarnation after the store is loaded (the supervisor waits for every node
     * before the client starts; it computes the rounds of earlier runs from these). */
    uint32_t loaded_incarnation;
    uint32_t reserved;
    struct px_history recovered_fib;
    /* Final state, written when the node exits on `stop` (seq odd while writing). */
    uint64_t final_seq;
    struct px_history final_fib;
    uint32_t final_ok;
    /* A library pool's learner (node_config.sm; 0 otherwise): commands its state machine
     * applied (no-ops and duplicates excluded), the log index it applied, the state machine's
     * digest callback (0 without one), and the node's digest of the commands applied, in order
     * (node/sm.h: carried by every snapshot, so it continues across restarts and installs). */
    uint64_t final_sm_applied;
    uint64_t final_sm_index;
    uint64_t final_sm_digest;
    uint64_t final_cmd_digest;
} __attribute__((aligned(64)));

#endif
