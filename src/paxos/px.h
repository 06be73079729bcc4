/* px.h: the Paxos core's public contract (pure: no I/O, no clock, no rand(), no printing,
 * no allocation after px_node_init).
 *
 * One px_node is one node's protocol state. The caller (node loop or simulator) feeds it one
 * input at a time -- px_node_step (a peer message), px_node_tick (one unit of virtual time),
 * px_node_submit (a client value) -- and each call fills a caller-owned struct px_ready:
 *   1. ready->persist: records the caller MUST make durable before anything else,
 *   2. ready->msgs: messages to send, ONLY after (1) is durable,
 *   3. ready->apply: decided entries to apply, in log order (already applied to the core's
 *      own state machine copy; the caller may mirror or report them).
 * The caller then calls px_ready_clear() (or reuses it: every entry call starts by clearing).
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

/* Assertions stay on in release builds (TigerBeetle style). */
void px_assert_fail(const char *expr, const char *file, int line);
#define PX_ASSERT(e) ((e) ? (void)0 : px_assert_fail(#e, __FILE__, __LINE__))

/* Node ids fit in the low 16 bits of a ballot; 64 because the broadcast ring serves at most 63
 * consumers besides its producer. */
#define PX_NODES_MAX 64
#define PX_MSG_BYTES 64
#define PX_NODE_NONE 0xffffu
#define PX_TO_ALL    0xfffeu /* destination: every other node (sent on the broadcast ring) */

typedef uint64_t px_ballot_t; /* (counter << 16) | node_id; 0 = none */
typedef uint64_t px_inst_t;   /* log instance (= round), 1-based; 0 = none */

static inline px_ballot_t px_ballot_make(uint64_t counter, uint16_t node_id)
{
    return (counter << 16) | node_id;
}
static inline uint16_t px_ballot_node(px_ballot_t b)
{
    return (uint16_t)(b & 0xffffu);
}
static inline uint64_t px_ballot_counter(px_ballot_t b)
{
    return b >> 16;
}

/* A client value. client_id 0 is the no-op that fills gaps. (client_id, seq) identifies a
 * request for exactly-once application. */
struct px_value {
    uint64_t increment;
    uint32_t client_id;
    uint32_t seq;
};

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
    PX_MSG_TYPE_COUNT,
};

/* One message = one ring slot. Field meaning per type is documented in the core; unused fields
 * are zero. */
struct px_msg {
    uint8_t type; /* enum px_msg_type */
    uint8_t flags;
    uint16_t from; /* sender node id */
    uint16_t to;   /* node id, or PX_TO_ALL */
    uint16_t reserved;
    px_ballot_t ballot;
    px_inst_t instance;
    uint64_t a; /* type specific */
    uint64_t b; /* type specific */
    struct px_value value;
    uint64_t c; /* type specific */
};
static_assert(sizeof(struct px_msg) == PX_MSG_BYTES, "one message is one ring slot");

/* Exactly-once: per client, every seq < seq_low was applied, and bit k of seen[] says whether
 * seq_low + k was. A client keeps fewer than PX_DEDUP_SPAN requests outstanding (its window),
 * so every request it can still (re)send is representable. PX_CLIENTS_MAX bounds the table. */
#define PX_CLIENTS_MAX 8
#define PX_DEDUP_SPAN  256
struct px_dedup {
    uint32_t client_id; /* 0 = free slot */
    uint32_t seq_low;
    uint64_t seen[PX_DEDUP_SPAN / 64];
};

/* The replicated state machine (DESIGN.md: distributed Fibonacci). Plain data: it is the
 * snapshot that is persisted and shipped to lagging learners. */
struct px_fib {
    uint64_t value;    /* starts at F(1) = 1, wraps mod 2^64 */
    uint64_t digest;   /* hash chain over applied (instance, request, increment) */
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
struct px_rec {
    uint8_t type; /* enum px_rec_type */
    px_inst_t instance;
    px_ballot_t ballot;
    struct px_value value;
};

/* Bounds of one output record. Reaching a bound is defined: the core stops producing more
 * work in this call and resumes on the next tick (nothing is lost; see px.c). */
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
    struct px_rec recs[PX_READY_RECS_MAX];
    struct px_msg msgs[PX_READY_MSGS_MAX];
    struct px_applied apply[PX_READY_APPLY_MAX];
};

struct px_config {
    uint16_t id;                  /* this node, < nodes */
    uint16_t nodes;               /* pool size, <= PX_NODES_MAX */
    uint64_t roles[PX_NODES_MAX]; /* enum px_role bits of every node (every node knows all) */
    uint32_t window_max;          /* congestion window cap: instances in flight */
    uint32_t rotate_every;        /* hand leadership on every K decided instances; 0 = never */
    uint32_t election_ticks;      /* leader silent this many ticks -> campaign */
    uint32_t heartbeat_ticks;     /* leader heartbeat period */
    uint64_t seed;                /* seeded back-off for duelling proposers */
};

/* The state loaded from durable storage at restart (all zero for a fresh node). */
struct px_durable {
    px_ballot_t promised;
    struct px_fib fib; /* applied state machine snapshot (the caller persists
                        *px_node_fib() with every batch it commits) */
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

void px_ready_clear(struct px_ready *r);
void px_fib_apply(struct px_fib *f, px_inst_t instance, const struct px_value *v);
const struct px_fib *px_node_fib(const struct px_node *n);
uint16_t px_node_leader(const struct px_node *n);
bool px_node_is_leader(const struct px_node *n);

#endif
