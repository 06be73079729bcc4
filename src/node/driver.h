/* driver.h: the node driver -- the one loop that runs a Paxos core against a transport and a
 * store. The node process (node.c) and the deterministic simulator (tests/sim) both run every
 * node through it; only what the driver is given differs: the transport (shm rings, sockets,
 * the simulated network), the store (sqlite, shm, the simulator's memory store), the clock
 * (monotonic ns, virtual ticks), the membership view (the supervisor's alive mask, the
 * simulator's) and the failpoint hook (SIGKILL, a simulated crash).
 *
 * One iteration (driver_run_once):
 *   1. membership: peers that died or came back since the last look (a peer restarted in
 *      between is told down, then up); what is queued for a dead peer is dropped (transport
 *      and backlog), the core hears px_node_peer_status;
 *   2. input: read up to cfg.batch_max messages from the transport (always, even when this
 *      iteration cannot step them: reading frees the senders' rings);
 *   3. local client values (env.submit_next, the simulator's client; the real client's values
 *      arrive as messages) -> px_node_submit, until the core pushes back with -EAGAIN;
 *   4. the input read -> px_node_step each, in order;
 *   5. time: one px_node_tick per cfg.tick_ns of the clock, at most DRIVER_TICKS_BURST_MAX;
 *   6. px_node_flush, then the flush point: the ready's records and the applied state are
 *      persisted in one store transaction (group commit), env.committed observes the batch,
 *      and only then are messages handed to the transport: the backlog first, then the batch's,
 *      in the core's order;
 *   7. transport flush (push the outboxes into the rings, wake the readers).
 * The driver never waits inside an iteration: only driver_idle sleeps.
 *
 * Bounds, and what happens at each when it is full:
 *   batch (cfg.batch_max <= DRIVER_BATCH_MAX): input read and not stepped yet. Full: nothing
 *     more is read; the messages wait in the rings, and their senders' outboxes (then their
 *     backlogs) absorb what follows. DATA (payload.h) takes no slot: it is consumed as it is
 *     read. A stalled driver reads on, into DRIVER_SPILL_MAX more slots and then dropping what
 *     is not DATA (stats.dropped_in), so a stream towards it always drains: a long command's
 *     stream holds far more than a ring and an outbox.
 *   ready (PX_READY_*_MAX): the core's output since the last flush point. Fewer than
 *     PX_STEP_OUTPUT_MAX free slots in any array before a core call (the core's contract): the
 *     flush point runs early, in the middle of the batch.
 *   outbox (the transport's, per destination): a full one refuses a send with -ENOBUFS. The
 *     driver halves the congestion window (px_node_congested, once per flush point), pushes
 *     the outboxes into the rings and offers the message once more. Still refused, that
 *     message and every later one to the same destination go to the backlog, in order;
 *     other destinations are not held up.
 *   backlog (DRIVER_BACKLOG_MAX): committed messages a full outbox refused, offered again first
 *     at every flush point. A core call runs only when the backlog could take the ready's
 *     messages plus the call's whole output; otherwise the iteration stops stepping (input
 *     stays in the batch, ticks wait) and only flushes. No message is ever dropped, except to
 *     a peer the membership view says is down (stats.dropped); a stalled driver whose batch
 *     is full drops inbound messages that are not DATA (batch, above).
 *   ticks: at most DRIVER_TICKS_BURST_MAX per iteration; after a longer sleep the rest are
 *     skipped (a node that slept a second does not campaign 200 times).
 * Nodes whose outboxes towards each other are full keep reading and stepping, so each drains
 * the other; only a cycle in which every node holds more than ring + outbox + backlog for the
 * next would stop, and the core bounds what it sends per input (window, catch-up batches).
 * Streams do not count there: a stalled node still reads the DATA waiting for it, whatever
 * else it has to drop to reach it.
 *
 * Safety: nothing of a batch is handed to the transport before store_commit returned 0.
 *
 * Context: a struct driver belongs to one thread; it calls the transport, the store and the
 * env hooks from that thread only, never concurrently.
 */
#ifndef PX_DRIVER_H
#define PX_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "node/payload.h"
#include "node/sm.h"
#include "node/transport.h"
#include "paxos/px.h"
#include "store/store.h"

/* Inbound messages stepped per iteration before the flush point: large enough to amortise one
 * commit over many accepts, small enough to keep round latency low. */
#define DRIVER_BATCH_MAX 512u
/* Bytes of long commands one flush point persists at most (one more message may pass it): a
 * batch of sixteen 1 MiB ACCEPTs would hold the node in one sqlite commit for a long time. */
#define DRIVER_BATCH_CMD_BYTES (2u << 20)
/* Messages a stalled driver reads beyond its batch (then per read once it drops what is not
 * DATA), and reads it makes so per iteration: a peer's DATA stream drains (driver.c). */
#define DRIVER_SPILL_MAX       64u
#define DRIVER_SPILL_READS_MAX 16u
/* Ticks delivered at once after a long sleep (or a stopped process); the rest are skipped. */
#define DRIVER_TICKS_BURST_MAX 16u
/* Committed messages a full outbox refused: two readies, so the messages of one whole ready
 * always fit behind a backlog that still lets a core call run. */
#define DRIVER_BACKLOG_MAX (2u * PX_READY_MSGS_MAX)
/* Longest sleep while messages wait for room in a ring: a reader frees room within about one
 * of its iterations, so retrying sooner than this burns the CPU the reader needs. */
#define DRIVER_RETRY_NS 100000ull

/* CLIENT_REPLYs a learner of a library pool holds back until its state machine applied their
 * instance (driver.c, "library pools"); past that, a reply goes at once, without a result. */
#define DRIVER_HELD_MAX 256u

/* Return code of driver_* calls: the failpoint hook said the process dies here. The driver
 * stopped at that point and did nothing more; the caller must only driver_fini it. */
#define DRIVER_DIED 1

/* Where the failpoint hook is called, in the order of one flush point. */
enum driver_fp {
    DRIVER_FP_BEFORE_PERSIST, /* the batch is complete, nothing of it is durable yet */
    DRIVER_FP_AFTER_PERSIST,  /* the batch is durable, none of its messages handed over */
    DRIVER_FP_AFTER_SEND,     /* after the sent-th message was handed to the transport */
};

/* The flush point in progress, as the failpoint hook sees it. */
struct driver_flush {
    bool persists; /* records or a changed applied state go to the store */
    uint32_t msgs; /* messages this flush point sends */
    uint32_t sent; /* of them handed to the transport so far */
};

/* The failure detector's view: bit i of alive_mask = node i is up; epoch changes with it.
 * Bit i of restarted_mask: node i is another process than at the previous look (it died and
 * was restarted in between, so alive_mask alone may not show it). */
struct driver_view {
    uint64_t alive_mask;
    uint64_t epoch;
    uint64_t restarted_mask;
};

/* What the driver is given besides the transport and the store. ctx is passed to every hook. */
struct driver_env {
    void *ctx;
    /* Required. Monotonic time in the unit of cfg.tick_ns. */
    uint64_t (*now_ns)(void *ctx);
    /* Required. The current membership view. */
    void (*membership)(void *ctx, struct driver_view *out);
    /* Optional. Returns true when the process dies at this point (the simulator); the real node
     * raises SIGKILL inside and never returns true. */
    bool (*failpoint)(void *ctx, enum driver_fp where, const struct driver_flush *f);
    /* Optional. After the persist step of every flush point, before its messages go out:
     * r->recs are durable, r->msgs not sent yet, r->apply applied (the simulator's checker). */
    void (*committed)(void *ctx, const struct px_ready *r);
    /* Optional. Client values handed to this node directly: submit_next peeks at the oldest
     * (false: none), submit_taken removes it once the core accepted it. */
    bool (*submit_next)(void *ctx, struct px_value *v);
    void (*submit_taken)(void *ctx);
    /* Optional. For a value submit_next gave with PX_VALUE_PAYLOAD: its command's bytes (valid
     * until submit_taken), which the driver keeps beside it. Without this hook such a value is
     * refused like a full queue would (it waits). */
    const uint8_t *(*submit_cmd)(void *ctx, uint32_t *len);
    /* Optional. A peer went down or came back (a log line). */
    void (*peer)(void *ctx, uint16_t peer, bool up);
    /* Optional. A message stepped (send = false) or handed to the transport (send = true). */
    void (*trace)(void *ctx, bool send, const struct px_msg *m);
    /* Optional. At the flush point, for every entry of the ready's apply list whose value has
     * its bytes beside it (PX_VALUE_PAYLOAD): the command's bytes, or NULL when this node does
     * not hold them (len 0). Duplicates included (a->duplicate). */
    void (*applied_cmd)(void *ctx, const struct px_applied *a, const uint8_t *cmd, uint32_t len);
};

struct driver_config {
    uint16_t id, nodes;
    uint32_t batch_max; /* 1..DRIVER_BATCH_MAX inbound messages per iteration */
    uint64_t tick_ns;   /* clock units per core tick, > 0 */
    /* Longest command taken (0: CMD_INLINE_BYTES, nothing travels beside a value) and the
     * bytes of commands a node holds at most (0: PAYLOAD_BUDGET_DEFAULT); payload.h. */
    uint32_t cmd_max;
    uint64_t cmd_budget;
    /* The state machine every learner runs (NULL: none; nothing below changes then). learner:
     * this node learns (runs it). driver.c, "library pools". */
    const struct pxs_state_machine *sm;
    bool learner;
    /* The main job's pool (cli/fib_sm.h): every command is 8 bytes or more, and one with no
     * bytes beside its value is the 8 bytes of its word (not cmd_lib_pack's encoding); apply
     * gives no result to keep, and CLIENT_REPLYs go as the core makes them (none held). */
    bool sm_job;
    /* Library pools: bit i = node i learns. The lowest of them reports results itself when the
     * leader is no learner (its CLIENT_REPLY cannot carry one); 0: nobody does. */
    uint64_t learners_mask;
    /* Library pools: a learner makes a durable snapshot (and lets the store drop the log below
     * it) once the log since its last one holds sm_snap_instances entries, or sm_snap_bytes
     * bytes of commands and at least as many as that snapshot had (node/sm.h, log_bytes), so
     * that snapshots of a large state cost about what the log does; until then every TRUNCATE
     * is clamped to the last durable snapshot. 0 and 0: at every truncation step. */
    uint32_t sm_snap_instances;
    uint64_t sm_snap_bytes;
};

/* What a node process of a library pool uses: at most this many entries replayed at a restart,
 * and 4 MiB of commands before a snapshot of a small state. */
#define DRIVER_SM_SNAP_INSTANCES 65536u
#define DRIVER_SM_SNAP_BYTES     (4ull << 20)

struct driver_stats {
    uint64_t loops;      /* iterations */
    uint64_t waits;      /* sleeps in driver_idle */
    uint64_t batches;    /* store transactions committed */
    uint64_t records;    /* records persisted */
    uint64_t backlogged; /* messages a full outbox refused (kept in the backlog) */
    uint64_t stalls;     /* iterations that stopped stepping: the backlog had no room */
    uint64_t dropped;    /* backlog messages dropped because their peer went down */
    /* Messages not sent because this node no longer held their command's bytes (the table
     * was full): lost like a dropped message, the protocol resends. */
    uint64_t cmd_lost;
    /* Inbound messages other than DATA a stalled driver with a full batch dropped to reach the
     * DATA behind them (drain_input): lost like a dropped message, the protocol resends. */
    uint64_t dropped_in;
    /* Library pools: SNAPSHOT messages dropped (the state machine was not at their instance,
     * its bytes could not be kept, a peer sent one without them; the learner asks again), and
     * CLIENT_REPLYs sent without waiting for the state machine (DRIVER_HELD_MAX held). */
    uint64_t sm_snapshots_dropped;
    uint64_t sm_replies_unheld;
};

/* A committed message waiting for room, and how much of its command's DATA stream the
 * transport took already (payload.h). */
struct driver_out {
    struct px_msg m;
    uint32_t off;
    uint32_t reserved;
};

/* Owned by the driver between driver_init and driver_fini; callers read stats only. */
struct driver {
    struct driver_config cfg;
    struct driver_env env;
    struct px_node *core;
    struct transport *t;
    struct store *store;
    struct px_ready *ready; /* empty between calls */
    /* cfg.batch_max + DRIVER_SPILL_MAX slots: [in_head, in_len) read, not stepped (past
     * batch_max only while stalled); DRIVER_SPILL_MAX more to read into and drop */
    struct px_msg *in;
    uint32_t in_head, in_len;
    struct driver_out *backlog; /* DRIVER_BACKLOG_MAX: [0, backlog_len) committed, unsent */
    uint32_t backlog_len;
    uint32_t received;        /* messages read by the last iteration */
    bool stalled;             /* the last iteration stopped stepping (backlog full) */
    uint64_t batch_cmd_bytes; /* long commands' bytes stepped since the last flush point */
    uint32_t queued;          /* messages the transport still held after the last iteration */
    uint64_t next_tick;
    uint64_t alive_seen, epoch_seen;
    uint64_t restarted_seen;     /* peers seen restarted whose death the core was not told yet */
    px_inst_t applied_persisted; /* fib->applied as of the last persisted fib */
    /* The highest TRUNCATE the core made whose batch is durable (the payload plane follows; a
     * library pool's store keeps the log from its last snapshot on, which may be lower), and
     * the one of the batch being flushed before sm_flush_snapshot clamped it. */
    px_inst_t truncate_seen;
    px_inst_t truncate_asked;
    px_inst_t sm_trunc_stored; /* the highest TRUNCATE the state machine's flushes let through */
    px_inst_t load_trunc;      /* driver_recover: the payload plane is truncated to this */
    struct payload_plane pay;  /* long commands' bytes (payload.h) */
    /* Streams peers asked for (a WANT), each a PAYLOAD_FLAG_PUSH item: offered first at every
     * flush point until the transport took them. */
    struct driver_out pushes[PAYLOAD_WANTS_MAX];
    uint32_t pushes_len;
    uint64_t catchup_torn; /* bit per peer: its catch-up reply lost an entry (driver.c) */
    /* Library pools (cfg.sm): this learner's state machine (NULL: none, or no learner). */
    struct sm_node *sm;
    uint32_t sm_fed;           /* ready->apply[0..sm_fed) fed to it */
    uint32_t sm_msgs_seen;     /* ready->msgs[0..sm_msgs_seen) looked at for SNAPSHOTs */
    uint32_t sm_snaps_seen;    /* ready->snapshots_len as of that look */
    px_inst_t sm_install_seen; /* ready->snapshot as of the last look */
    px_inst_t sm_snap_inst;    /* the last SNAPSHOT stepped (its instance) and its bytes' key */
    uint64_t sm_snap_key;
    uint64_t sm_snap_next;   /* snapshots this node served */
    uint64_t sm_snap_out;    /* the key of the last snapshot it put in the plane */
    uint64_t sm_snap_len;    /* bytes of the state in the snapshot persisted last */
    struct driver_out *held; /* DRIVER_HELD_MAX: CLIENT_REPLYs waiting for the state machine */
    uint32_t held_len;
    uint8_t *sm_result_buf; /* 4 + PXS_RESULT_MAX: a result's stream bytes */
    struct driver_stats stats;
};

/* Prepares d over an initialised core, an open transport and an open store (all owned by the
 * caller, used by the driver until driver_fini). Allocates the driver's buffers: 0 or
 * -ENOMEM; a bad config is an assertion. */
int driver_init(struct driver *d, const struct driver_config *cfg, const struct driver_env *env,
                struct px_node *core, struct transport *t, struct store *store);
/* Loads the core's durable state from the store (promise and applied state, then the log);
 * *out gets the promise and the applied state. A learner of a library pool then starts its
 * state machine, restores its durable snapshot and replays the log above it (node/sm.h).
 * 0 or the store's code (store_errmsg says why), or the state machine's (SM_FAILED, -EBADMSG:
 * d->sm->err says why). */
int driver_recover(struct driver *d, struct px_durable *out);
/* Tells the core which peers are down now, starts the clock, runs a flush point.
 * 0, DRIVER_DIED or a store code. */
int driver_start(struct driver *d);
/* One iteration (header comment). 0, DRIVER_DIED or a store code. */
int driver_run_once(struct driver *d);
/* Sleeps on the transport when the last iteration read nothing and the core has no pending
 * work (px_node_pending; with messages waiting for ring room, pending work waits like them):
 * until the next tick is due, at
 * most DRIVER_RETRY_NS while messages wait for ring room (the outboxes or the backlog). */
void driver_idle(struct driver *d);
/* Looks at the membership view now and runs a flush point (the simulator tells every live node
 * of a death at once). 0, DRIVER_DIED or a store code. */
int driver_poll_membership(struct driver *d);
/* Changes node `node`'s roles in this node's core (px_node_set_roles) and runs a flush point.
 * 0, DRIVER_DIED or a store code. */
int driver_set_roles(struct driver *d, uint16_t node, uint64_t roles);
/* True when the driver holds work that needs no new input: committed messages waiting for
 * outbox room, input read and not stepped yet, or the core's pending work. The caller runs it again
 * soon. */
bool driver_busy(const struct driver *d);
/* Committed messages waiting for room towards node `to` (a broadcast counts for every node). */
uint32_t driver_backlog_to(const struct driver *d, uint16_t to);
/* Frees the driver's buffers; the core, transport and store stay the caller's. */
void driver_fini(struct driver *d);

#endif
