#include "supervisor/client.h"

#include <stdio.h>
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
    memset(c, 0, sizeof(*c));
    c->rounds = rounds;
    c->window = window;
    c->base = base;
    c->next_round = 1;
    c->oldest = 1;
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
        .increment = increment,
        .client_id = (uint32_t)((g - 1) % CLIENT_IDS + 1),
        .seq = (uint32_t)((g - 1) / CLIENT_IDS + 1),
    };
    return v;
}

static uint64_t round_of(const struct client *c, const struct px_value *v)
{
    if (v->client_id == 0 || v->client_id > CLIENT_IDS || v->seq == 0)
        return 0;
    uint64_t g = (uint64_t)(v->seq - 1) * CLIENT_IDS + v->client_id;
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
    uint64_t r = c->next_round++;
    struct client_slot *s = &c->slots[r % CLIENT_SPAN_MAX];
    PX_ASSERT(s->round == 0);
    s->round = r;
    s->first_ns = s->last_ns = now_ns;
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
    if (s->increment != v->increment) {
        /* A decided value that is not what was submitted: a validity violation. Count it (the
         * end-state check will fail too) rather than trust it. */
        fprintf(stderr,
                "client: reply for round %llu (client %u seq %u) carries increment "
                "%llu, submitted %llu\n",
                (unsigned long long)r, v->client_id, v->seq, (unsigned long long)v->increment,
                (unsigned long long)s->increment);
        return false;
    }
    hist_add(&c->latency_ns, now_ns - s->first_ns);
    s->round = 0;
    c->inflight--;
    c->done++;
    if (instance > c->max_instance)
        c->max_instance = instance;
    while (c->oldest < c->next_round && c->slots[c->oldest % CLIENT_SPAN_MAX].round == 0)
        c->oldest++;
    return true;
}

uint32_t client_overdue(struct client *c, uint64_t now_ns, struct px_value *out, uint32_t max)
{
    uint32_t n = 0;
    for (uint64_t r = c->oldest; r < c->next_round && n < max; r++) {
        struct client_slot *s = &c->slots[r % CLIENT_SPAN_MAX];
        if (s->round != r || now_ns - s->last_ns < CLIENT_RESUBMIT_NS)
            continue;
        s->last_ns = now_ns;
        c->resubmits++;
        out[n++] = value_of(c, r, s->increment);
    }
    return n;
}

bool client_finished(const struct client *c)
{
    return c->done == c->rounds;
}
