/* px_cluster.h: a tiny deterministic harness for the core's tests: several px_node in one
 * process, a FIFO message pump, an in-memory durable store per node (records replayed on
 * restart), and a record of everything applied and replied. No randomness, no time. */
#ifndef PX_CLUSTER_H
#define PX_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "px.h"

#define PXC_NODES_MAX   16
#define PXC_QUEUE_MAX   (1u << 16)
#define PXC_RECS_MAX    (1u << 16)
#define PXC_APPLIED_MAX 4096
#define PXC_REPLIES_MAX 4096

struct pxc_env {
    uint16_t to;
    struct px_msg m;
};

/* A reference state machine per node, fed the node's apply stream (px_ready.apply[]) as the
 * node driver feeds the real one: the Fibonacci value (F(1) = 1 plus the words of the requests
 * applied -- F(R+1) when round r's word is F(r-1)) and the digest chain recomputed from the
 * entries by pxc_digest_step, to compare with the core's px_history. It lives with the store (a
 * restart keeps it, as the core's history is kept) but cannot follow a snapshot install (the
 * core replaces its history without the entries): `valid` turns false then, for good. */
struct pxc_sm {
    bool valid;
    uint64_t value;    /* 1 + the words of the requests applied (no-ops, duplicates excluded) */
    uint64_t digest;   /* pxc_digest_step over the requests applied */
    uint64_t requests; /* requests applied */
    px_inst_t applied; /* highest instance applied */
};

struct pxc_store {
    struct px_durable d;
    struct pxc_sm sm;
    struct px_rec *recs; /* every record ever persisted, in order */
    size_t recs_len;
};

struct pxc_node {
    struct px_node *px;
    void *mem;
    bool up;
    struct pxc_store st;
    struct px_applied applied[PXC_APPLIED_MAX]; /* this incarnation's apply stream */
    size_t applied_len;
};

/* Returns true to drop the message (after it was sent, before delivery). */
typedef bool (*pxc_filter_fn)(const struct px_msg *m, uint16_t to, void *ctx);

struct pxc {
    uint16_t n;
    struct px_config cfg;
    struct pxc_node node[PXC_NODES_MAX];
    struct px_ready *ready;
    struct pxc_env *q;
    size_t q_head, q_len;
    pxc_filter_fn filter;
    void *filter_ctx;
    struct px_msg replies[PXC_REPLIES_MAX];
    size_t replies_len;
    uint64_t delivered;
    uint64_t sent_by_type[PX_MSG_TYPE_COUNT];
};

/* Every node proposer+acceptor+learner unless roles[] is given (may be NULL). */
struct pxc *pxc_new(uint16_t n, const uint64_t *roles, uint32_t window_max, uint32_t rotate);
void pxc_free(struct pxc *c);
void pxc_start_node(struct pxc *c, uint16_t id); /* (re)start from its durable store */
void pxc_crash(struct pxc *c, uint16_t id);      /* also tells every live node */
/* Persists, then queues, the ready of node id (the node loop's job). */
void pxc_process(struct pxc *c, uint16_t id);
bool pxc_deliver_one(struct pxc *c);
size_t pxc_run(struct pxc *c, size_t max_msgs); /* until the queue is empty (or max) */
void pxc_tick(struct pxc *c, uint16_t id);
void pxc_tick_all(struct pxc *c);
/* Ticks and delivers until cond holds or `ticks` ticks pass; returns cond. */
bool pxc_until(struct pxc *c, bool (*cond)(struct pxc *c, void *ctx), void *ctx, uint32_t ticks);
int pxc_submit(struct pxc *c, uint16_t id, uint32_t client_id, uint32_t seq, uint64_t inc);
void pxc_campaign(struct pxc *c, uint16_t id); /* ticks node id until it starts phase 1 */
int pxc_leader(const struct pxc *c);           /* the only live leader, -1 if none, -2 if >1 */
bool pxc_has_leader(struct pxc *c, void *ctx);
uint64_t pxc_applied_requests(const struct pxc *c, uint16_t id);
void pxc_drop_queue(struct pxc *c); /* loses every message in flight */

/* --- single-node helpers for the role tests --- */
/* A node `id` of a pool of `nodes`, every node P+A+L; freed with pxu_free. */
struct px_node *pxu_node(uint16_t id, uint16_t nodes, bool batch);
struct px_node *pxu_node_cfg(const struct px_config *cfg);
void pxu_free(struct px_node *n);
struct px_config pxu_config(uint16_t id, uint16_t nodes);
struct px_msg pxu_msg(uint8_t type, uint16_t from, uint16_t to, px_ballot_t b, px_inst_t i);
struct px_ready *pxu_ready(void); /* calloc'd, cleared */
/* Index of the first message of `type` in r at or after `from`, or -1. */
int pxu_find(const struct px_ready *r, uint8_t type, uint32_t from);
uint32_t pxu_count(const struct px_ready *r, uint8_t type);

/* The Fibonacci increments of rounds 1..R: F(r-1). */
uint64_t pxc_fib_number(uint32_t k);

/* The digest chain px_history_apply keeps (px.h), computed here on its own: `digest` extended
 * by the request (client, seq) with `word` applied at `instance` (client without
 * PX_VALUE_PAYLOAD). No-ops and duplicates never enter it. */
uint64_t pxc_digest_step(uint64_t digest, px_inst_t instance, uint32_t client, uint32_t seq,
                         uint64_t word);
/* The digest of `n` requests of client `client`, the k-th (0-based) applied at instance
 * first + k with seq seq0 + k and word words[k] (words NULL: word = word0 for every one). */
uint64_t pxc_digest_run(px_inst_t first, uint32_t n, uint32_t client, uint32_t seq0,
                        const uint64_t *words, uint64_t word0);

#endif
