/* sm.h: a library pool's state machine (struct pxs_state_machine, paxos-shm/paxos_shm.h) as one
 * learner node runs it: the steps the driver takes, each a plain function of this struct and
 * its arguments (no transport, no store, no clock), so that they can be tested with a fake
 * state machine.
 *
 * Index: the log index the state machine stands at. Every applied entry of the core's output
 * (struct px_applied) is fed in log order, no-ops and duplicates included: they only move the
 * index (they are never given to apply). A snapshot restored moves it to the snapshot's index.
 *
 * Command digest: the node's own digest of the commands applied, in order: for each command
 * applied at index i with len bytes, d = mix(d ^ i * SM_DIGEST_SPREAD ^ (len << 32 |
 * crc32c(bytes))) (px_mix64, sm_digest_step): one mix per command, which a pool of 16 learners on 2
 * cores feels. It travels and is stored with every snapshot, so it continues across restarts and
 * installs.
 *
 * Results: what apply returned for a request (its status and result bytes), by the request's
 * cmd_key, for the CLIENT_REPLY that answers it. Bounded by SM_RESULTS_MAX entries and
 * SM_RESULTS_BYTES bytes; when full, the oldest go (a reply that finds none goes without a
 * result and the submitter sees result_lost: the command was still applied once).
 *
 * Snapshot bytes (sm_snapshot, sm_restore): an SM_SNAP_HEADER_BYTES header -- the command digest,
 * the commands applied and the index, 8 bytes each, little endian -- then what the state
 * machine's snapshot callback wrote. The store keeps the header's words in struct store_sm_snap and
 * the state bytes beside them.
 *
 * Errors: a callback's negative return is -ECANCELED here (the node ends as if it crashed: it
 * is restarted from its durable state), with one line in err; a command whose bytes are not
 * given is -ENODATA (nothing applied); -ENOMEM. */
#ifndef PX_NODE_SM_H
#define PX_NODE_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paxos-shm/paxos_shm.h"
#include "paxos/px.h"
#include "paxos/px_mix.h"

#define SM_RESULTS_MAX       4096u
#define SM_RESULTS_BYTES     (16u << 20)
#define SM_SNAP_HEADER_BYTES 24u
/* What an applied entry counts in log_bytes beside its command's bytes: about a log row's
 * overhead in the store. */
#define SM_ENTRY_COST 64u
/* The golden ratio's odd word: spreads the index over all 64 bits before it meets the command. */
#define SM_DIGEST_SPREAD 0x9e3779b97f4a7c15ull
static inline uint64_t sm_digest_step(uint64_t d, px_inst_t index, uint32_t len, uint32_t crc)
{
    return px_mix64(d ^ (index * SM_DIGEST_SPREAD) ^ ((uint64_t)len << 32 | crc));
}
/* The formula of version 0.3.0 and its stores (layout 5 and older): mix(mix(mix(d ^ i) ^ len)
 * ^ crc32c(bytes)). A pool continued from such a store keeps it (sm_node.digest_v1). */
static inline uint64_t sm_digest_step_v1(uint64_t d, px_inst_t index, uint32_t len, uint32_t crc)
{
    return px_mix64(px_mix64(px_mix64(d ^ index) ^ len) ^ crc);
}
/* Return code of a step whose callback failed (one line in err). */
#define SM_FAILED (-ECANCELED)

struct sm_result {
    uint64_t key; /* cmd_key of the request */
    int32_t status;
    uint32_t len;
    uint8_t *bytes; /* len bytes (NULL when 0) */
};

struct sm_stats {
    uint64_t results_dropped; /* results the full cache let go, oldest first */
};

struct sm_node {
    const struct pxs_state_machine *sm;
    uint16_t id;
    /* The main job's commands (driver_config.sm_job): an inline one is the 8 bytes of its
     * word, little endian; false: cmd_lib_unpack's. */
    bool word_commands;
    /* The store's snapshots chain the command digest with sm_digest_step_v1
     * (store_sm_digest_version 1: a pool made by 0.3.0): this node goes on that way. */
    bool digest_v1;
    px_inst_t index;     /* the log index applied */
    uint64_t applied;    /* commands applied (no-ops and duplicates excluded) */
    uint64_t cmd_digest; /* the digest of the commands applied */
    px_inst_t persisted; /* index of the last snapshot made durable (0: none) */
    /* What the log above `persisted` holds: the bytes of the commands applied since (each
     * entry counted SM_ENTRY_COST more, so that a log of empty commands grows too), and the
     * length of that snapshot; the driver takes the next one when the log costs as much. */
    uint64_t log_bytes;
    uint64_t persisted_len;
    struct sm_result *res; /* ring of SM_RESULTS_MAX: [res_head, res_head + res_len) */
    uint32_t res_head, res_len;
    uint64_t res_bytes;
    uint8_t *buf; /* the last snapshot taken: buf_len bytes, header first */
    size_t buf_len, buf_cap;
    struct sm_stats stats;
    char err[256];
};

/* Prepares n for sm (not called yet). 0 or -ENOMEM. */
int sm_init(struct sm_node *n, const struct pxs_state_machine *sm, uint16_t id);
void sm_fini(struct sm_node *n);
/* The start callback (when the state machine has one): 0 or SM_FAILED. */
int sm_start(struct sm_node *n);
/* Feeds one applied entry. Entries at or below the index are skipped (a snapshot restored
 * covered them); a no-op or duplicate moves the index; a command goes to apply: its bytes are
 * cmd[0..len) for a value with PX_VALUE_PAYLOAD (cmd NULL: -ENODATA, nothing applied), else the
 * inline bytes of `word` (cmd_lib_unpack, or all 8 with word_commands). keep_result: its result
 * goes to the cache. An entry past index + 1 is -ENODATA (a gap: the state would skip commands). 0,
 * -ENODATA, SM_FAILED (apply returned < 0 or a result over PXS_RESULT_MAX) or -ENOMEM. */
int sm_apply(struct sm_node *n, const struct px_applied *a, const uint8_t *cmd, uint32_t len,
             bool keep_result);
/* The cached result of a request (cmd_key), or NULL. */
const struct sm_result *sm_result(const struct sm_node *n, uint64_t key);
/* The bytes of a result's stream (cmd.h: 4-byte status little endian, then the result) into
 * out (4 + r->len bytes). */
void sm_result_bytes(const struct sm_result *r, uint8_t *out);
/* Takes a snapshot into n->buf (header, then the state). 0, SM_FAILED or -ENOMEM. */
int sm_snapshot(struct sm_node *n);
/* The same, holding at most max bytes in n->buf: -EFBIG (nothing more gathered, the callback
 * told so by its writer) for a longer one. */
int sm_snapshot_max(struct sm_node *n, size_t max);
/* Frees n->buf when it holds more than SM_BUF_KEEP bytes (a large state's copy, once sent). */
#define SM_BUF_KEEP (1u << 20)
void sm_buf_trim(struct sm_node *n);
/* Replaces the state with bytes[0..len) (header first, as sm_snapshot makes them) at index.
 * 0, -EBADMSG (shorter than the header, or a snapshot of another index), SM_FAILED. */
int sm_restore(struct sm_node *n, px_inst_t index, const uint8_t *bytes, size_t len);
/* The same from a stored snapshot: the header's words given apart from the state bytes. */
int sm_restore_state(struct sm_node *n, px_inst_t index, uint64_t cmd_digest, uint64_t applied,
                     const uint8_t *state, size_t len);
/* A stream of snapshot bytes: sm_snapshot_to writes the state through a sink (0 or a negative
 * errno, which ends the snapshot), sm_restore_from reads it through a source (bytes copied into
 * buf, at most cap; 0 at the end; a negative errno). Neither holds the state in memory. */
typedef int (*sm_sink_fn)(void *ctx, const void *chunk, size_t len);
typedef long (*sm_source_fn)(void *ctx, void *buf, size_t cap);
/* Takes a snapshot of the state alone (no header: the caller keeps n->cmd_digest, n->applied and
 * n->index beside it) into sink; *len gets the bytes written. 0, the sink's code when a write
 * failed (whatever the callback returned after it), or SM_FAILED (the callback failed). */
int sm_snapshot_to(struct sm_node *n, sm_sink_fn sink, void *ctx, uint64_t *len);
/* sm_restore_state from a source of len bytes. A source that fails or ends before len bytes:
 * restore's reads fail from then on, and its code is returned (n->err says so; the caller may
 * put the source's own line there); restore's own failure: SM_FAILED. */
int sm_restore_from(struct sm_node *n, px_inst_t index, uint64_t cmd_digest, uint64_t applied,
                    sm_source_fn src, void *ctx, uint64_t len);
/* The state machine's digest callback, or 0 without one. */
uint64_t sm_digest(const struct sm_node *n);

/* Restart: replays the durable log above a restored snapshot. fib is the core's state at the
 * snapshot's index (its dedup table), advanced here with every record, so that duplicates are
 * told as the core told them; upto is the core's applied index. Give every record store_load
 * hands out, in its order: DECIDED records in (n->index, upto] are applied (results not kept),
 * others ignored. A TRUNCATE above the snapshot's index is -EBADMSG (the log lacks what the
 * state needs), and so is a gap. Returns 0 or an error; after an error later calls return it. */
struct sm_replay {
    struct sm_node *n;
    struct px_history fib;
    px_inst_t upto;
    int rc;
};
void sm_replay_rec(struct sm_replay *r, const struct px_rec *rec, const void *cmd, uint32_t len);
/* After the last record: 0 when the state reached upto, else -EBADMSG (with a line). */
int sm_replay_end(struct sm_replay *r);

#endif
