/* px.h: the Paxos core's public contract (pure: no I/O, no clock, no rand(), no printing,
 * no allocation after px_node_init).
 *
 * One px_node is one node's protocol state. The caller (node loop or simulator) feeds it one
 * input at a time -- px_node_step (a peer message), px_node_tick (one unit of virtual time),
 * px_node_submit (a client value) -- and each call fills a caller-owned struct px_ready:
 *   1. ready->recs: records the caller MUST make durable before anything else,
 *   2. ready->msgs: messages to send, ONLY after (1) is durable,
 *   3. ready->apply: decided entries to apply, in log order (already applied to the core's
 *      own state machine copy; the caller may mirror or report them).
 * Entry calls APPEND to the ready (group commit): the caller may feed a whole batch of inputs,
 * call px_node_flush(), persist ready->recs once, send ready->msgs, then px_ready_clear(). Before
 * each entry call the caller guarantees PX_STEP_OUTPUT_MAX free slots in each array; one call
 * never adds more (work beyond that -- a long promise, a big window -- continues on later calls).
 *
 * Roles: every node knows every node's role bits (cfg.roles); px_node_set_roles changes them
 * between rounds. Time: px_node_tick is the only clock (election_ticks, heartbeat_ticks).
 * Planted bugs for the simulator's checker: compile the core with one of PX_BUG_QUORUM_ONE,
 * PX_BUG_NO_ADOPT, PX_BUG_REPLY_BEFORE_PERSIST, PX_BUG_APPLY_OUT_OF_ORDER (CMake:
 * px_core_library(name define) in src/paxos/CMakeLists.txt). Never in a real build.
 *
 * Thread/process context: a px_node is owned by exactly one thread; nothing here is shared.
 * Layout: struct px_msg is exactly PX_MSG_BYTES (one ipc ring slot) and holds no pointers, so it
 * can be copied byte-for-byte through shared memory.
 */
#ifndef PX_H
#define PX_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Assertions stay on in release builds (TigerBeetle style). The handler never returns (it
 * aborts, or the simulator jumps back to its seed loop) and is cold: the compiler moves the
 * failure path out of line, so a small hot function keeps its frameless fast path. */
__attribute__((cold, noreturn)) void px_assert_fail(const char *expr, const char *file, int line);
#define PX_ASSERT(e) (__builtin_expect(!!(e), 1) ? (void)0 : px_assert_fail(#e, __FILE__, __LINE__))

/* Node ids fit in the low 16 bits of a ballot; 64 because the broadcast ring serves at most 63
 * consumers besides its producer. */
#define PX_NODES_MAX 64
#define PX_MSG_BYTES 64
#define PX_NODE_NONE 0xffffu
#define PX_TO_ALL    0xfffeu /* destination: every other node (sent on the broadcast ring) */
/* The client's endpoint id: the supervisor is endpoint N (one past the last node). */
#define PX_CLIENT_NODE(cfg) ((uint16_t)(cfg)->nodes)

/* Log ring: instance i lives in slot i % PX_LOG_MAX. It must hold a full congestion window plus
 * the decided entries lagging learners still fetch; 4096 keeps a node's core at 307 KiB. When
 * the ring is full the leader stops proposing (backpressure) until entries are truncated. */
#define PX_LOG_MAX 4096u
/* Cap of cfg->window_max: half the ring, so a full window never forces lagging learners'
 * decided entries out before they could fetch them. */
#define PX_WINDOW_MAX (PX_LOG_MAX / 2)
/* Decided entries one catch-up reply carries: a quarter of PX_STEP_OUTPUT_MAX, so a reply fits
 * in one call's output with room to spare; the learner asks again for the next batch. */
#define PX_CATCHUP_BATCH_MAX 64u
/* Client values a node holds while there is no leader to forward to (or it is the leader and
 * the window is full). Reached: px_node_submit returns -EAGAIN, a forwarded value is dropped
 * (counted; the client resubmits after its timeout). */
#define PX_QUEUE_MAX 1024u
/* A proposer (that is a learner) more than PX_CAMPAIGN_LAG_MAX instances behind what it knows
 * is chosen catches up before it campaigns: its phase 1 would draw about that many promise
 * entries from every acceptor, more than it steps in one phase-1 timeout, and the backlog
 * would hide the leader's heartbeats from it (it deposed a live leader again and again). One
 * catch-up batch: a proposer that keeps up with the leader is never that far behind. */
#define PX_CAMPAIGN_LAG_MAX PX_CATCHUP_BATCH_MAX
/* A proposer behind by more than PX_CAMPAIGN_LAG_MAX lets this many election timeouts pass
 * before it campaigns: time to catch up, and for a proposer that is not behind to win.
 * Reached: it campaigns anyway, so a pool whose proposers all lag elects. */
#define PX_CAMPAIGN_DEFER_TIMEOUTS 4u
/* The most records / messages / applied entries a single entry call (step, tick, submit,
 * peer_status, flush) adds to a ready. */
#define PX_STEP_OUTPUT_MAX 256u

typedef uint64_t px_ballot_t; /* (counter << PX_BALLOT_NODE_BITS) | node_id; 0 = none */
/* The node id's share of a ballot: ids are < PX_NODES_MAX, the counter keeps 48 bits. */
#define PX_BALLOT_NODE_BITS 16
#define PX_BALLOT_NODE_MASK ((1ull << PX_BALLOT_NODE_BITS) - 1)
typedef uint64_t px_inst_t; /* log instance (= round), 1-based; 0 = none */

static inline px_ballot_t px_ballot_make(uint64_t counter, uint16_t node_id)
{
    return (counter << PX_BALLOT_NODE_BITS) | node_id;
}
static inline uint16_t px_ballot_node(px_ballot_t b)
{
    return (uint16_t)(b & PX_BALLOT_NODE_MASK);
}
static inline uint64_t px_ballot_counter(px_ballot_t b)
{
    return b >> PX_BALLOT_NODE_BITS;
}

/* A client value: 8 opaque bytes (`word`: what they mean is the caller's; common/cmd.h) and the
 * request. client_id 0 is the no-op that fills gaps. (client_id, seq) identifies a request for
 * exactly-once application. */
struct px_value {
    uint64_t word;
    uint32_t client_id;
    uint32_t seq;
};
/* A request (client_id, seq) as one 64-bit word (the digest chain): seq in the low 32 bits. */
#define PX_REQUEST_CLIENT_SHIFT 32
/* Bit 31 of client_id belongs to the caller, not to the request's identity: the node driver sets
 * it on a command longer than the 8 bytes of `word`, whose bytes travel and are stored
 * beside the value (node/payload.h). The core never reads it except to mask it off: the request
 * is (px_value_client(v), seq), so client ids are < 2^31. */
#define PX_VALUE_PAYLOAD 0x80000000u
static inline uint32_t px_value_client(const struct px_value *v)
{
    return v->client_id & ~PX_VALUE_PAYLOAD;
}

enum px_role {
    PX_ROLE_PROPOSER = 1u << 0,
    PX_ROLE_ACCEPTOR = 1u << 1,
    PX_ROLE_LEARNER = 1u << 2,
};

enum px_msg_type {
    PX_MSG_NONE = 0,
    PX_MSG_PREPARE,       /* phase 1a: ballot, instance = first undecided */
    PX_MSG_PROMISE_ENTRY, /* one accepted entry of a promise (sent before PX_MSG_PROMISE) */
    PX_MSG_PROMISE,       /* phase 1b: ballot, count of entries sent before it */
    PX_MSG_NACK,          /* ballot = the higher promised ballot */
    PX_MSG_ACCEPT,        /* phase 2a: ballot, instance, value, decided-up-to piggybacked */
    PX_MSG_ACCEPTED,      /* phase 2b: ballot, instances [lo, hi] accepted (cumulative range) */
    PX_MSG_DECIDE,        /* ballot, all instances <= hi chosen (learner asks what it lacks) */
    PX_MSG_ACK,           /* learner's applied index (the prototype's Acknowledged) */
    PX_MSG_CATCHUP_REQ,   /* learner asks for decided entries from instance */
    PX_MSG_CATCHUP_ENTRY, /* one decided entry */
    PX_MSG_SNAPSHOT,      /* state snapshot header when entries are truncated */
    PX_MSG_SNAPSHOT_PART, /* one part of a snapshot (e.g. one client's dedup record) */
    PX_MSG_CLIENT,        /* client request, or its forwarding to the leader */
    PX_MSG_CLIENT_REPLY,  /* the request (client_id, seq) was decided at instance */
    PX_MSG_HEARTBEAT,     /* leader liveness, carries decided-up-to */
    PX_MSG_TAKEOVER,      /* planned rotation: the leader asks the receiver to campaign now */
    PX_MSG_DATA,          /* never stepped by the core: a chunk of a long command's bytes, moved
                           * by the node driver's payload plane (node/payload.h) */
    PX_MSG_TYPE_COUNT,
};

/* msg flags */
#define PX_FLAG_DECIDED    0x01u /* PROMISE_ENTRY: the entry is decided (accepted_ballot 0) */
#define PX_FLAG_LAST       0x02u /* CATCHUP_ENTRY: last entry of this reply */
#define PX_FLAG_HOPS       0x30u /* CLIENT: forwarding hops so far (bits 4-5), bounds ping-pong */
#define PX_FLAG_HOPS_SHIFT 4u    /* the lowest bit of PX_FLAG_HOPS */
/* CLIENT: forwarded at most this many times (0..3 fits PX_FLAG_HOPS), so two nodes that each
 * think the other leads do not bounce a value forever. A value that arrives with PX_HOPS_MAX
 * hops is queued where it is, not forwarded again. */
#define PX_HOPS_MAX 2u
static_assert(PX_HOPS_MAX <= PX_FLAG_HOPS >> PX_FLAG_HOPS_SHIFT, "the hop count fits its bits");
/* Any type: the receiver need not be woken for this message. The core decides (px_msg_lazy in
 * px_node.c: DECIDE, HEARTBEAT, ACK), a transport only obeys the mark: a lazy message waits
 * in the ring until the reader wakes for something else or for its next tick. */
#define PX_FLAG_LAZY 0x40u
static_assert((PX_FLAG_LAZY & (PX_FLAG_DECIDED | PX_FLAG_LAST | PX_FLAG_HOPS)) == 0,
              "the mark sits beside the type-specific flags");

/* One message = one ring slot. Unused fields are zero. Bytes 0..23 are common: the header,
 * the ballot the message speaks for and the instance it is about. Bytes 24..63 are the union
 * `u`, one struct per type that uses them (a type without a struct leaves them zero); every
 * struct keeps the same frame -- a word at 24, a word at 32, a value at 40..55, a word at 56 --
 * so that each field sits where the single overloaded field of that slot sat before, and the
 * bytes on the wire did not move (the static_asserts below pin every field to its offset).
 *   PREPARE        ballot, instance = first instance the proposer lacks (from); a proposer that
 *                  is no learner asks from past what it knows chosen and a learner holds
 *                  (the truncation hint of the leaders' HEARTBEATs)
 *   PROMISE_ENTRY  ballot, instance i, u.promise_entry
 *   PROMISE        ballot, instance = from, u.promise
 *   NACK           ballot = the acceptor's promised ballot, u.nack
 *   ACCEPT         ballot, instance i, u.accept (the value, a piggybacked DECIDE)
 *   ACCEPTED       ballot, instance = lo, u.accepted.hi: every instance in [lo, hi] accepted
 *   DECIDE         ballot, u.decide.hi: every instance <= hi is chosen; where the learner holds
 *                  the value of that ballot it knows the decision, else it asks (CATCHUP_REQ)
 *   ACK            instance = the learner's applied index
 *   CATCHUP_REQ    instance = first instance wanted
 *   CATCHUP_ENTRY  instance, u.catchup_entry.value (decided), PX_FLAG_LAST on the last of a reply
 *   SNAPSHOT       snapshot_parts (in the ballot's word), instance = applied, u.snapshot
 *   SNAPSHOT_PART  part_seen0 (in the ballot's word), instance = the snapshot's applied,
 *                  u.snapshot_part (the rest of one client's dedup record)
 *   CLIENT         u.client.value (from = the client endpoint or the forwarding node)
 *   CLIENT_REPLY   u.client_reply.value = the request, instance = where it was decided (0: it
 *                  had been applied earlier; the leader answers a resubmission without a slot)
 *   HEARTBEAT      ballot, u.heartbeat
 *   TAKEOVER       ballot = the handing-over leader's ballot, u.takeover
 * Fields named reserved_* are the frame's unused slots of a type: always zero. */
struct px_msg_promise_entry {
    px_ballot_t accepted_ballot; /* the ballot the entry was accepted at; 0 if PX_FLAG_DECIDED */
    uint64_t seq;                /* 1..count: the entry's place in its promise stream */
    struct px_value value;       /* accepted (or decided) value */
    px_inst_t truncated;         /* the acceptor's truncated-up-to */
};
struct px_msg_promise {
    uint64_t entries; /* PROMISE_ENTRY messages of this promise sent before it */
    uint64_t reserved_b;
    struct px_value reserved_value;
    px_inst_t truncated; /* every instance <= truncated is chosen; the acceptor dropped them */
};
struct px_msg_nack {
    px_ballot_t rejected_ballot; /* the ballot of the PREPARE, ACCEPT or HEARTBEAT refused */
};
struct px_msg_accept {
    px_inst_t decided_hi; /* every instance <= decided_hi is chosen by this ballot (DECIDE) */
    uint64_t reserved_b;
    struct px_value value; /* the proposal */
};
struct px_msg_accepted {
    px_inst_t hi; /* every instance in [instance, hi] accepted at the ballot */
};
struct px_msg_decide {
    px_inst_t hi; /* every instance <= hi is chosen */
};
/* CATCHUP_ENTRY, CLIENT, CLIENT_REPLY: a value and nothing else of their own. */
struct px_msg_value_only {
    uint64_t reserved_a;
    uint64_t reserved_b;
    struct px_value value;
};
struct px_msg_snapshot {
    uint64_t reserved_a; /* 0 */
    uint64_t digest;     /* the digest chain at `instance` */
    struct px_value reserved_value;
    uint64_t requests; /* client requests applied up to `instance` */
};
/* One client's dedup record: seen[0] rides in part_seen0 (the ballot's word). */
struct px_msg_snapshot_part {
    uint64_t seen1;
    uint64_t seen2;
    uint64_t index;     /* the part's place, 0..parts - 1 (where a value's word sits) */
    uint32_t client_id; /* where a value's client_id sits */
    uint32_t seq_low;   /* where a value's seq sits */
    uint64_t seen3;
};
struct px_msg_heartbeat {
    px_inst_t decided_hi;    /* every instance <= decided_hi is chosen */
    px_inst_t truncate_hint; /* every live learner applied this far */
};
struct px_msg_takeover {
    /* 1 when a successor more than PX_CAMPAIGN_LAG_MAX behind hands the leadership back (the
     * receiver campaigns and never hands it back again), else 0 */
    uint64_t handed_back;
};
/* The frame itself, for code blind to the type (the simulator's trace prints every slot). */
struct px_msg_words {
    uint64_t a;
    uint64_t b;
    struct px_value value;
    uint64_t c;
};
struct px_msg {
    uint8_t type; /* enum px_msg_type */
    uint8_t flags;
    uint16_t from; /* sender node id */
    uint16_t to;   /* node id, or PX_TO_ALL */
    /* Integrity check of the other 62 bytes (ipc/check.h), owned by the transports: the
     * sending transport seals it, the receiving one drops a message that fails it. The core
     * neither reads nor sets it (0 in what it produces). */
    uint16_t check;
    union {
        px_ballot_t ballot;      /* every type that speaks for a ballot */
        uint64_t snapshot_parts; /* SNAPSHOT: the SNAPSHOT_PARTs that follow it */
        uint64_t part_seen0;     /* SNAPSHOT_PART: seen[0] of the client's record */
    };
    px_inst_t instance;
    union {
        struct px_msg_promise_entry promise_entry;
        struct px_msg_promise promise;
        struct px_msg_nack nack;
        struct px_msg_accept accept;
        struct px_msg_accepted accepted;
        struct px_msg_decide decide;
        struct px_msg_value_only catchup_entry;
        struct px_msg_snapshot snapshot;
        struct px_msg_snapshot_part snapshot_part;
        struct px_msg_value_only client;
        struct px_msg_value_only client_reply;
        struct px_msg_heartbeat heartbeat;
        struct px_msg_takeover takeover;
        struct px_msg_words words;
    } u;
};
static_assert(sizeof(struct px_msg) == PX_MSG_BYTES, "one message is one ring slot");
/* The wire layout: every field where it was when the slots were a, b, value and c. */
#define PX_MSG_OFF_A     24
#define PX_MSG_OFF_B     32
#define PX_MSG_OFF_VALUE 40
#define PX_MSG_OFF_C     56
static_assert(offsetof(struct px_msg, ballot) == 8, "ballot word");
static_assert(offsetof(struct px_msg, snapshot_parts) == 8, "snapshot parts: the ballot word");
static_assert(offsetof(struct px_msg, part_seen0) == 8, "seen[0]: the ballot word");
static_assert(offsetof(struct px_msg, instance) == 16, "instance word");
static_assert(offsetof(struct px_msg, u) == PX_MSG_OFF_A, "the type-specific frame");
static_assert(sizeof(((struct px_msg *)0)->u) == PX_MSG_BYTES - PX_MSG_OFF_A, "frame size");
static_assert(offsetof(struct px_msg, u.words.b) == PX_MSG_OFF_B, "frame: b");
static_assert(offsetof(struct px_msg, u.words.value) == PX_MSG_OFF_VALUE, "frame: value");
static_assert(offsetof(struct px_msg, u.words.c) == PX_MSG_OFF_C, "frame: c");
static_assert(offsetof(struct px_msg, u.promise_entry.accepted_ballot) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.promise_entry.seq) == PX_MSG_OFF_B, "");
static_assert(offsetof(struct px_msg, u.promise_entry.value) == PX_MSG_OFF_VALUE, "");
static_assert(offsetof(struct px_msg, u.promise_entry.truncated) == PX_MSG_OFF_C, "");
static_assert(offsetof(struct px_msg, u.promise.entries) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.promise.truncated) == PX_MSG_OFF_C, "");
static_assert(offsetof(struct px_msg, u.nack.rejected_ballot) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.accept.decided_hi) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.accept.value) == PX_MSG_OFF_VALUE, "");
static_assert(offsetof(struct px_msg, u.accepted.hi) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.decide.hi) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.catchup_entry.value) == PX_MSG_OFF_VALUE, "");
static_assert(offsetof(struct px_msg, u.snapshot.reserved_a) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.snapshot.digest) == PX_MSG_OFF_B, "");
static_assert(offsetof(struct px_msg, u.snapshot.requests) == PX_MSG_OFF_C, "");
static_assert(offsetof(struct px_msg, u.snapshot_part.seen1) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.snapshot_part.seen2) == PX_MSG_OFF_B, "");
static_assert(offsetof(struct px_msg, u.snapshot_part.index) ==
                  PX_MSG_OFF_VALUE + offsetof(struct px_value, word),
              "");
static_assert(offsetof(struct px_msg, u.snapshot_part.client_id) ==
                  PX_MSG_OFF_VALUE + offsetof(struct px_value, client_id),
              "");
static_assert(offsetof(struct px_msg, u.snapshot_part.seq_low) ==
                  PX_MSG_OFF_VALUE + offsetof(struct px_value, seq),
              "");
static_assert(offsetof(struct px_msg, u.snapshot_part.seen3) == PX_MSG_OFF_C, "");
static_assert(offsetof(struct px_msg, u.client.value) == PX_MSG_OFF_VALUE, "");
static_assert(offsetof(struct px_msg, u.client_reply.value) == PX_MSG_OFF_VALUE, "");
static_assert(offsetof(struct px_msg, u.heartbeat.decided_hi) == PX_MSG_OFF_A, "");
static_assert(offsetof(struct px_msg, u.heartbeat.truncate_hint) == PX_MSG_OFF_B, "");
static_assert(offsetof(struct px_msg, u.takeover.handed_back) == PX_MSG_OFF_A, "");

/* Exactly-once: per client, every seq < seq_low was applied, and bit k of seen[] says whether
 * seq_low + k was. A client keeps a sliding SPAN: the newest seq it sends minus its oldest seq
 * not yet applied stays below PX_DEDUP_SPAN (not merely fewer than PX_DEDUP_SPAN outstanding:
 * a newer seq slides the window and an older seq outside it counts as applied). A new client
 * beyond PX_CLIENTS_MAX evicts the lowest client id (deterministically on every learner). */
#define PX_CLIENTS_MAX     8
#define PX_DEDUP_SPAN      256
#define PX_DEDUP_WORD_BITS 64 /* seen[] is an array of uint64_t */
struct px_dedup {
    uint32_t client_id; /* 0 = free slot */
    uint32_t seq_low;
    uint64_t seen[PX_DEDUP_SPAN / PX_DEDUP_WORD_BITS];
};
/* A SNAPSHOT_PART carries a client's seen[] in part_seen0 and u.snapshot_part.seen1..3. */
#define PX_DEDUP_WORDS (PX_DEDUP_SPAN / PX_DEDUP_WORD_BITS)
static_assert(PX_DEDUP_WORDS == 4, "seen[0..3] travel in the four words of a SNAPSHOT_PART");

/* What a learner applied, as the core keeps it: not the state machine (that is the caller's,
 * node/sm.h) but the history it was fed. Plain data: it is persisted with every batch and
 * shipped to lagging learners with a snapshot. All zero is the initial state. */
struct px_history {
    uint64_t digest;   /* hash chain over applied (instance, request, word) */
    px_inst_t applied; /* highest instance applied */
    uint64_t requests; /* client requests applied (no-ops and duplicates excluded) */
    struct px_dedup clients[PX_CLIENTS_MAX];
};

/* --- records the caller persists (etcd-raft's "entries to save BEFORE messages are sent") --- */
enum px_rec_type {
    PX_REC_PROMISE = 1, /* ballot: the acceptor's promised ballot */
    PX_REC_ACCEPTED,    /* instance, ballot, value */
    PX_REC_DECIDED,     /* instance, value (learner's log) */
    PX_REC_TRUNCATE,    /* instance: entries <= instance may be dropped from the store */
};
/* The rows a store must keep (instances above its last PX_REC_TRUNCATE) span fewer than
 * PX_LOG_MAX + 64 instances. A PX_REC_PROMISE also comes from a proposer that is no acceptor
 * (its own ballot, so a restart never reuses it): load it like any other. */
struct px_rec {
    uint8_t type; /* enum px_rec_type */
    px_inst_t instance;
    px_ballot_t ballot;
    struct px_value value;
};

/* Bounds of one output record: room for a batch of inputs (the caller flushes when fewer than
 * PX_STEP_OUTPUT_MAX slots are left). */
#define PX_READY_MSGS_MAX  1024
#define PX_READY_RECS_MAX  1024
#define PX_READY_APPLY_MAX 1024

struct px_applied {
    px_inst_t instance;
    struct px_value value;
    bool duplicate; /* true: (client_id, seq) was applied before; state unchanged */
};

struct px_ready {
    uint32_t recs_len, msgs_len, apply_len;
    /* SNAPSHOT messages the node put among msgs[] (a caller that attaches state to them looks
     * only when there are new ones). */
    uint32_t snapshots_len;
    struct px_rec recs[PX_READY_RECS_MAX];
    struct px_msg msgs[PX_READY_MSGS_MAX];
    struct px_applied apply[PX_READY_APPLY_MAX];
    /* != 0: a snapshot up to this instance was installed into the fib -- the LAST one of the
     * batch; apply[] entries before it may precede it (a batch can install two snapshots) */
    px_inst_t snapshot;
};

/* The shortest election timeout px_node_init accepts: a leader must fit a heartbeat (>= 1
 * tick) strictly inside it, or followers would campaign between two heartbeats. */
#define PX_ELECTION_TICKS_MIN 2u

struct px_config {
    uint16_t id;                  /* this node, < nodes */
    uint16_t nodes;               /* pool size, <= PX_NODES_MAX */
    uint64_t roles[PX_NODES_MAX]; /* enum px_role bits of every node (every node knows all) */
    uint32_t window_max;          /* congestion window cap: instances in flight */
    uint32_t rotate_every;        /* hand leadership on every K decided instances; 0 = never */
    uint32_t election_ticks;      /* leader silent this many ticks -> campaign */
    uint32_t heartbeat_ticks;     /* leader heartbeat period */
    uint64_t seed;                /* seeded back-off for duelling proposers */
    /* false: an acceptor answers every ACCEPT with its own ACCEPTED and the leader sends a
     * DECIDE at the end of every call (correct for any caller). true: ACCEPTED ranges and the
     * DECIDE are coalesced until px_node_flush() (the caller must call it after each batch). */
    bool batch;
};

/* The state loaded from durable storage at restart (all zero for a fresh node). */
struct px_durable {
    px_ballot_t promised;
    struct px_history fib; /* applied state machine snapshot (the caller persists
                            *px_node_history() with every batch it commits) */
    /* accepted and decided entries are fed one by one with px_node_load_rec() */
};

struct px_node; /* opaque; size from px_node_size() so callers can place it anywhere */

size_t px_node_size(const struct px_config *cfg);
/* mem: mem_bytes >= px_node_size(cfg) bytes, 64-byte aligned, owned by the caller.
 * Returns 0 and sets *out, or -EINVAL for a bad config (nothing else can fail). */
int px_node_init(void *mem, size_t mem_bytes, const struct px_config *cfg, struct px_node **out);
void px_node_load(struct px_node *n, const struct px_durable *d);
void px_node_load_rec(struct px_node *n, const struct px_rec *r);

void px_node_step(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_node_tick(struct px_node *n, struct px_ready *out);
/* A client value arrives at this node. Returns 0, or -EAGAIN when the node's bounded request
 * queue is full (the caller keeps it and retries: backpressure, never a silent drop). */
int px_node_submit(struct px_node *n, const struct px_value *v, struct px_ready *out);
/* The node loop learned that a peer died or came back (perfect failure detector). */
void px_node_peer_status(struct px_node *n, uint16_t peer, bool alive, struct px_ready *out);
/* A send of this message failed because the ring was full: shrink the congestion window. */
void px_node_congested(struct px_node *n);

/* True when a call with no new input would produce output now: a promise stream, decided
 * entries to apply, decisions or proposals that an earlier call's output bound cut short. The
 * caller must not sleep while it holds (px_node_flush continues the work). */
bool px_node_pending(const struct px_node *n);

/* Emits what was coalesced since the last flush (ACCEPTED ranges, DECIDE); call after a batch,
 * before persisting. Harmless without cfg->batch. */
void px_node_flush(struct px_node *n, struct px_ready *out);
/* Roles may change between rounds: sets node `node`'s role bits in this node's view. Every
 * node must get the same change. Proposer and learner changes are always safe; changing the
 * ACCEPTOR set changes the quorum and is only safe when no instance is in flight (no
 * reconfiguration protocol). A leader that loses its proposer role steps down. */
void px_node_set_roles(struct px_node *n, uint16_t node, uint64_t roles, struct px_ready *out);

struct px_stats {
    uint64_t campaigns;      /* phase 1 started */
    uint64_t elections_won;  /* phase 1 completed */
    uint64_t proposed;       /* ACCEPTs sent first time */
    uint64_t resent;         /* ACCEPTs retransmitted */
    uint64_t decided;        /* instances decided as leader */
    uint64_t nacks;          /* NACKs sent */
    uint64_t catchup_reqs;   /* CATCHUP_REQ sent */
    uint64_t snapshots_sent; /* SNAPSHOT headers sent */
    uint64_t snapshots_installed;
    uint64_t dropped; /* inputs ignored: no room in the log ring or the queue */
    /* Of them, client values a full queue (PX_QUEUE_MAX) refused: a CLIENT message cannot be
     * pushed back, so the client resubmits it after its timeout. Reported by the node loop. */
    uint64_t requests_dropped;
    uint64_t truncated; /* log base advances */
};
const struct px_stats *px_node_stats(const struct px_node *n);

void px_ready_clear(struct px_ready *r);
/* Applies v at instance (sets f->applied = instance). Returns true when v is a duplicate
 * request (state unchanged but applied). No-ops (client_id 0) only advance applied: they do
 * not enter the digest, so the digest covers exactly the applied requests in log order.
 * A client whose id does not fit the table evicts the slot of the lowest client id... see
 * px_history.c. */
bool px_history_apply(struct px_history *f, px_inst_t instance, const struct px_value *v);
/* True when the request v was applied already (a resubmission); no-ops never were. */
bool px_history_seen(const struct px_history *f, const struct px_value *v);
/* The initial state: all zero. */
void px_history_init(struct px_history *f);
const struct px_history *px_node_history(const struct px_node *n);
uint16_t px_node_leader(const struct px_node *n);
bool px_node_is_leader(const struct px_node *n);
/* True when a value of v's request (px_value_client(v), seq) waits in this node's queue of
 * client values, to be proposed or forwarded later: the node driver keeps a command's bytes
 * while it does (node/payload.h). Scans the queue (at most PX_QUEUE_MAX values). */
bool px_node_queued(const struct px_node *n, const struct px_value *v);

#endif
