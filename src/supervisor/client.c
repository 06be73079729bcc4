/* client.c: the supervisor's client (client.h). No I/O: the simulator can run it as is. */
#include "supervisor/client.h"

#include <string.h>

uint64_t client_fib(uint64_t n)
{
    uint64_t a = 0, b = 1; /* F(0), F(1) */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t = a + b; /* wraps mod 2^64 by definition of the state machine */
        a = b;
        b = t;
    }
    return a;
}

void client_init(struct client *c, uint64_t rounds, uint32_t window, uint64_t base)
{
    PX_ASSERT(base <= CLIENT_GLOBAL_ROUNDS_MAX);
    PX_ASSERT(rounds <= CLIENT_GLOBAL_ROUNDS_MAX - base);
    PX_ASSERT(window >= 1 && window <= CLIENT_SPAN_MAX);
    memset(c, 0, sizeof(*c));
    c->rounds = rounds;
    c->window = window;
    c->resubmit_ns = CLIENT_RESUBMIT_NS;
    c->hwm_chunk = CLIENT_HWM_CHUNK;
    c->base = base;
    c->next_round = 1;
    c->oldest = 1;
    c->hwm = base; /* nothing may go out before the caller made a higher mark durable */
    /* Round r proposes F(base + r - 1): start the pair at (F(base - 1), F(base)), with
     * F(-1) = 1 so that F(0) = F(1) - F(-1) = 0. */
    c->fib_cur = client_fib(base);
    c->fib_prev = base == 0 ? 1 : client_fib(base - 1);
}

/* Global round g = base + r is request ((g - 1) % CLIENT_IDS + 1, (g - 1) / CLIENT_IDS + 1):
 * unique across runs on the same data. */
static struct px_value value_of(const struct client *c, uint64_t round, uint64_t increment)
{
    uint64_t g = c->base + round;
    struct px_value v = {
        .word = increment,
        .client_id = (uint32_t)((g - 1) % CLIENT_IDS + 1),
        .seq = (uint32_t)((g - 1) / CLIENT_IDS + 1),
    };
    return v;
}

static uint64_t round_of(const struct client *c, const struct px_value *v)
{
    uint32_t id = px_value_client(v);
    if (id == 0 || id > CLIENT_IDS || v->seq == 0)
        return 0;
    uint64_t g = (uint64_t)(v->seq - 1) * CLIENT_IDS + id;
    if (g <= c->base || g > c->base + c->rounds)
        return 0;
    return g - c->base;
}

bool client_next(struct client *c, uint64_t now_ns, struct px_value *out)
{
    if (c->next_round > c->rounds || c->inflight >= c->window)
        return false;
    if (c->next_round - c->oldest >= CLIENT_SPAN_MAX)
        return false; /* a stuck old request holds the exactly-once span */
    if (c->base + c->next_round > c->hwm)
        return false; /* not covered by the durable record yet */
    uint64_t r = c->next_round++;
    struct client_slot *s = &c->slots[r % CLIENT_SPAN_MAX];
    PX_ASSERT(s->round == 0);
    s->round = r;
    s->first_ns = s->last_ns = now_ns;
    s->expired = false;
    s->increment = c->fib_cur;
    uint64_t next = c->fib_prev + c->fib_cur;
    c->fib_prev = c->fib_cur;
    c->fib_cur = next;
    c->inflight++;
    *out = value_of(c, r, s->increment);
    return true;
}

bool client_decided(struct client *c, const struct px_value *v, uint64_t instance, uint64_t now_ns)
{
    uint64_t r = round_of(c, v);
    struct client_slot *s = r ? &c->slots[r % CLIENT_SPAN_MAX] : NULL;
    if (s == NULL || s->round != r) {
        return false; /* a second reply after a resubmission, or of an earlier run */
    }
    if (s->increment != v->word) {
        /* A decided value that is not what was submitted: a validity violation. Count it (the
         * run fails verification) rather than trust it. */
        c->bad_replies++;
        return false;
    }
    c->last_latency_ns = now_ns - s->first_ns;
    hist_add(&c->latency_ns, c->last_latency_ns);
    s->round = 0;
    c->inflight--;
    c->done++;
    if (instance > c->max_instance)
        c->max_instance = instance;
    while (c->oldest < c->next_round && c->slots[c->oldest % CLIENT_SPAN_MAX].round == 0)
        c->oldest++;
    return true;
}

void client_expire_all(struct client *c)
{
    for (uint64_t r = c->oldest; r < c->next_round; r++) {
        struct client_slot *s = &c->slots[r % CLIENT_SPAN_MAX];
        if (s->round == r)
            s->expired = true;
    }
}

uint32_t client_overdue(struct client *c, uint64_t now_ns, struct px_value *out, uint32_t max)
{
    uint32_t n = 0;
    for (uint64_t r = c->oldest; r < c->next_round && n < max; r++) {
        struct client_slot *s = &c->slots[r % CLIENT_SPAN_MAX];
        if (s->round != r || (!s->expired && now_ns - s->last_ns < c->resubmit_ns))
            continue;
        s->last_ns = now_ns;
        s->expired = false;
        c->resubmits++;
        out[n++] = value_of(c, r, s->increment);
    }
    return n;
}

bool client_finished(const struct client *c)
{
    return c->done == c->rounds;
}

uint64_t client_hwm_wanted(const struct client *c)
{
    uint64_t last = c->base + c->rounds;
    uint64_t submitted = c->base + c->next_round - 1;
    if (c->hwm >= last || c->hwm - submitted >= c->window)
        return 0;
    uint64_t want = submitted + c->hwm_chunk;
    PX_ASSERT(want > c->hwm);
    return want < last ? want : last;
}

void client_hwm_durable(struct client *c, uint64_t hwm)
{
    PX_ASSERT(hwm >= c->hwm);
    PX_ASSERT(hwm <= c->base + c->rounds);
    c->hwm = hwm;
}

uint64_t client_decided_prefix(const struct client *c)
{
    PX_ASSERT(c->oldest >= 1);
    PX_ASSERT(c->base + c->oldest - 1 <= c->hwm);
    return c->base + c->oldest - 1;
}

struct client_resume client_resume_of(const struct client_record *last)
{
    PX_ASSERT(last->decided <= last->submitted);
    struct client_resume r = {.base = last->submitted, .in_doubt = last->submitted - last->decided};
    return r;
}

void client_record_take(struct client_record *r, const struct client *c)
{
    uint64_t decided = client_decided_prefix(c);
    r->decided = decided > r->decided ? decided : r->decided;
    r->submitted = c->hwm > r->submitted ? c->hwm : r->submitted;
    PX_ASSERT(r->decided <= r->submitted);
}

bool client_resolve_init(struct client *c, const struct client_resume *from, uint32_t window)
{
    PX_ASSERT(from->in_doubt <= from->base);
    if (from->in_doubt == 0)
        return false;
    client_init(c, from->in_doubt, window, from->base - from->in_doubt);
    client_hwm_durable(c, from->base); /* the earlier run's mark: durable */
    return true;
}

/* Requests of client id k among global rounds 1..g (rounds k, k + CLIENT_IDS, ...). */
static uint64_t seqs_of(uint32_t k, uint64_t g)
{
    return g >= k ? (g - k) / CLIENT_IDS + 1 : 0;
}

static const struct px_dedup *dedup_of(const struct px_history *f, uint32_t k)
{
    for (uint32_t i = 0; i < PX_CLIENTS_MAX; i++)
        if (f->clients[i].client_id == k)
            return &f->clients[i];
    return NULL;
}

/* One client id's part of client_table_check: seqs 1..n applied and none above. */
static enum client_table check_one(const struct px_history *f, uint32_t k, uint64_t n)
{
    const struct px_dedup *d = dedup_of(f, k);
    if (d == NULL)
        return n == 0 ? CLIENT_TABLE_AGREES : CLIENT_TABLE_MISSING;
    /* Seqs below seq_low count as applied, the next PX_DEDUP_SPAN as their bits say, and
     * none beyond: n + 1 .. n + PX_DEDUP_SPAN covers every seq above n the table can hold. */
    for (uint64_t q = n + 1; q <= n + PX_DEDUP_SPAN && q <= UINT32_MAX; q++)
        if (px_history_seen(f, &(struct px_value){.client_id = k, .seq = (uint32_t)q}))
            return CLIENT_TABLE_UNKNOWN;
    uint64_t from = d->seq_low > 1 ? d->seq_low : 1;
    if (n >= from && n - from >= PX_DEDUP_SPAN)
        return CLIENT_TABLE_MISSING; /* seq_low is not applied, and it is <= n */
    for (uint64_t q = from; q <= n; q++)
        if (!px_history_seen(f, &(struct px_value){.client_id = k, .seq = (uint32_t)q}))
            return CLIENT_TABLE_MISSING;
    return CLIENT_TABLE_AGREES;
}

enum client_table client_table_check(const struct px_history *f, uint64_t g)
{
    PX_ASSERT(g <= CLIENT_GLOBAL_ROUNDS_MAX);
    for (uint32_t i = 0; i < PX_CLIENTS_MAX; i++)
        if (f->clients[i].client_id > CLIENT_IDS)
            return CLIENT_TABLE_UNKNOWN;
    enum client_table worst = CLIENT_TABLE_AGREES;
    for (uint32_t k = 1; k <= CLIENT_IDS; k++) {
        enum client_table t = check_one(f, k, seqs_of(k, g));
        if (t == CLIENT_TABLE_UNKNOWN)
            return t;
        if (t == CLIENT_TABLE_MISSING)
            worst = t;
    }
    return worst;
}

bool client_same_history(const struct px_history *a, const struct px_history *b)
{
    PX_ASSERT(a != NULL && b != NULL);
    return a->digest == b->digest && a->requests == b->requests;
}
