/* client.h: the supervisor's client: submits the R round values, keeps at most a window of
 * them outstanding, resubmits after a timeout (a leader change loses the old leader's queue),
 * measures each round's latency from first submission to decision, and computes the expected
 * end state independently of the protocol.
 *
 * A client that may have submitted a round must remember it: it never hands out a round above
 * its durable high-water mark (client_hwm_wanted says when the caller must make a higher one
 * durable, client_hwm_durable that it did), so after a crash the rounds in (decided prefix,
 * high-water mark] are exactly the ones in doubt, and the next run resolves them first.
 * Plain logic over plain data, no I/O: the caller owns the clock, the transport and the
 * durable record. Single-threaded. */
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
/* Rounds a high-water mark reserves beyond the last one submitted: one durable write per 4096
 * rounds keeps the record off the hot path, and bounds the rounds in doubt after a crash. */
#define CLIENT_HWM_CHUNK (4u * CLIENT_SPAN_MAX)
/* Global rounds a data directory can hold: a request's seq is 32 bits per client id. */
#define CLIENT_GLOBAL_ROUNDS_MAX ((uint64_t)CLIENT_IDS * UINT32_MAX)

struct client_slot {
    uint64_t round;    /* 0 = free */
    uint64_t first_ns; /* first submission: latency is measured from here */
    uint64_t last_ns;  /* last (re)submission */
    uint64_t increment;
    bool expired; /* client_expire_all: due now, whatever last_ns says */
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
    uint64_t hwm;               /* durable high-water mark: no global round above it goes out */
    uint64_t bad_replies;       /* replies whose value is not the one submitted (validity) */
    uint64_t fib_prev, fib_cur; /* F(next_round - 2), F(next_round - 1) */
    uint64_t last_latency_ns;   /* of the last new decision client_decided counted */
    uint32_t hwm_chunk;         /* rounds a high-water mark reserves beyond the last submitted
                                 * (default CLIENT_HWM_CHUNK; fewer for long commands: every
                                 * one of them may be in doubt after a crash) */
    uint64_t resubmit_ns;       /* a request undecided this long is resubmitted (default
                                 * CLIENT_RESUBMIT_NS; longer for long commands) */
    struct hist latency_ns;
    struct client_slot slots[CLIENT_SPAN_MAX];
};

/* base: global rounds decided by earlier runs on the same data (0 for a fresh pool); the run
 * then proposes F(base) .. F(base + rounds - 1) and the expected end value is
 * F(base + rounds + 1). The high-water mark starts at base: nothing may go out until the
 * caller reports a durable one. Precondition: base + rounds <= CLIENT_GLOBAL_ROUNDS_MAX. */
void client_init(struct client *c, uint64_t rounds, uint32_t window, uint64_t base);
/* The next request to submit, if the window and the high-water mark allow. Returns false when
 * none may go now. */
bool client_next(struct client *c, uint64_t now_ns, struct px_value *out);
/* The high-water mark to make durable before submitting on (within a window of the current
 * one, hwm_chunk further, at most base + rounds), or 0 when the current one will do. */
uint64_t client_hwm_wanted(const struct client *c);
/* The caller made hwm durable (hwm >= the current one, <= base + rounds). */
void client_hwm_durable(struct client *c, uint64_t hwm);
/* Every global round <= this was seen decided. */
uint64_t client_decided_prefix(const struct client *c);
/* A decision for (client_id, seq) at instance. Returns true if it was new; a value that is not
 * the one submitted is counted in bad_replies and otherwise ignored. */
bool client_decided(struct client *c, const struct px_value *v, uint64_t instance, uint64_t now_ns);
/* Makes every outstanding request overdue now: the leader that held them died, so waiting
 * for CLIENT_RESUBMIT_NS would only delay them (exactly-once makes the resend harmless). */
void client_expire_all(struct client *c);
/* Requests overdue for resubmission: fills up to max values, returns how many. */
uint32_t client_overdue(struct client *c, uint64_t now_ns, struct px_value *out, uint32_t max);
bool client_finished(const struct client *c);
/* F(n) mod 2^64, computed directly (the independent check of the end state). */
uint64_t client_fib(uint64_t n);

/* The client's durable record across runs (the supervisor keeps it as one row per run in the
 * registry, store.h struct store_run): every global round <= decided was seen decided, no
 * global round above submitted was ever handed out. After a crash the rounds in
 * (decided, submitted] are in doubt: each may or may not have been decided. */
struct client_record {
    uint64_t decided;
    uint64_t submitted;
};

/* Where a run continuing a record starts: base = global rounds of earlier runs (the rounds in
 * doubt included: their identities are used up), in_doubt = those resolved first. */
struct client_resume {
    uint64_t base;
    uint64_t in_doubt;
};
struct client_resume client_resume_of(const struct client_record *last);
/* Folds what c knows into r: the decided prefix and the high-water mark only grow. */
void client_record_take(struct client_record *r, const struct client *c);
/* Prepares c to resolve the rounds in doubt of `from` (same identities and increments as
 * when they were first submitted, covered by the earlier run's durable high-water mark): a
 * round decided before is answered as applied, one that never was is decided now. False, and
 * c untouched, when no round is in doubt. */
bool client_resolve_init(struct client *c, const struct client_resume *from, uint32_t window);

/* How a learner's exactly-once table compares with "global rounds 1..g applied, nothing else"
 * (the cross-check of the client's record against the state machine's own). */
enum client_table {
    CLIENT_TABLE_AGREES = 0,
    CLIENT_TABLE_UNKNOWN, /* it holds a request the client never submitted (above g) */
    CLIENT_TABLE_MISSING, /* a round <= g is not in it */
};
enum client_table client_table_check(const struct px_history *f, uint64_t g);

/* Whether two learners applied the same history: the same requests at the same instances
 * (the digest chains instance, identity and word of every request that changed the
 * state), hence the same count (and, fed to the same state machine, the same state). Their applied
 * indexes may differ: instances past the last request that changed anything hold no-ops or
 * duplicates (a resubmitted request decided again after the client had its reply), and a learner
 * stopped at the end of the run may not have applied those yet. */
bool client_same_history(const struct px_history *a, const struct px_history *b);

#endif
