/* client.h: the supervisor's client: submits the R round values, keeps at most a window of
 * them outstanding, resubmits after a timeout (a leader change loses the old leader's queue),
 * measures each round's latency from first submission to decision, and computes the expected
 * end state independently of the protocol. Single-threaded, supervisor process only. */
#ifndef PX_CLIENT_H
#define PX_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/hist.h"
#include "paxos/px.h"

/* Round r of a run continuing `base` earlier rounds is global round g = base + r, request
 * (client id, seq) = ((g - 1) % CLIENT_IDS + 1, (g - 1) / CLIENT_IDS + 1): spreading rounds over
 * several ids keeps every id's outstanding requests inside the state machine's exactly-once span
 * (PX_DEDUP_SPAN). */
#define CLIENT_IDS      PX_CLIENTS_MAX
#define CLIENT_SPAN_MAX (CLIENT_IDS * PX_DEDUP_SPAN / 2u) /* rounds between oldest and newest */
/* A request not decided this long after its last submission is submitted again. */
#define CLIENT_RESUBMIT_NS (300ull * 1000 * 1000)

struct client_slot {
    uint64_t round;    /* 0 = free */
    uint64_t first_ns; /* first submission: latency is measured from here */
    uint64_t last_ns;  /* last (re)submission */
    uint64_t increment;
};

struct client {
    uint64_t rounds; /* R */
    uint32_t window;
    uint64_t base;       /* rounds decided by earlier runs on the same data */
    uint64_t next_round; /* next round to submit, 1-based */
    uint64_t oldest;     /* oldest round not yet decided */
    uint64_t done;       /* rounds decided */
    uint64_t inflight;
    uint64_t resubmits;
    uint64_t max_instance;      /* highest instance a reply reported */
    uint64_t fib_prev, fib_cur; /* F(next_round - 2), F(next_round - 1) */
    struct hist latency_ns;
    struct client_slot slots[CLIENT_SPAN_MAX];
};

/* base: rounds decided by earlier runs on the same data (0 for a fresh pool); the run then
 * proposes F(base) .. F(base + rounds - 1) and the expected end value is F(base + rounds + 1). */
void client_init(struct client *c, uint64_t rounds, uint32_t window, uint64_t base);
/* The next request to submit, if the window allows. Returns false when none may go now. */
bool client_next(struct client *c, uint64_t now_ns, struct px_value *out);
/* A decision for (client_id, seq) at instance. Returns true if it was new. */
bool client_decided(struct client *c, const struct px_value *v, uint64_t instance, uint64_t now_ns);
/* Requests overdue for resubmission: fills up to max values, returns how many. */
uint32_t client_overdue(struct client *c, uint64_t now_ns, struct px_value *out, uint32_t max);
bool client_finished(const struct client *c);
/* F(n) mod 2^64, computed directly (the independent check of the end state). */
uint64_t client_fib(uint64_t n);

#endif
