/* px_history.c: the history of applied requests every learner keeps -- the highest instance
 * applied, the count of requests, a digest chain over them, and the exactly-once table. The
 * state machine itself is the caller's (node/sm.h): the core carries its commands as opaque
 * words. Pure functions over plain data: the same code runs in every learner. */
#include <string.h>

#include "px.h"
#include "px_mix.h"

void px_history_init(struct px_history *f)
{
    memset(f, 0, sizeof(*f));
    PX_ASSERT(f->applied == 0);
    PX_ASSERT(f->requests == 0);
}

static bool dedup_bit(const struct px_dedup *d, uint32_t k)
{
    PX_ASSERT(k < PX_DEDUP_SPAN);
    return (d->seen[k / PX_DEDUP_WORD_BITS] >> (k % PX_DEDUP_WORD_BITS)) & 1u;
}

/* Slides the window one seq forward: seq_low is forgotten (it is < the new seq_low). */
static void dedup_shift_one(struct px_dedup *d)
{
    PX_ASSERT(d->client_id != 0); /* no-ops have no table */
    uint32_t seq_low_before = d->seq_low;
    for (uint32_t w = 0; w < PX_DEDUP_WORDS; w++) {
        d->seen[w] >>= 1;
        if (w + 1 < PX_DEDUP_WORDS)
            d->seen[w] |= (d->seen[w + 1] & 1u) << (PX_DEDUP_WORD_BITS - 1);
    }
    d->seq_low++;
    PX_ASSERT(d->seq_low == seq_low_before + 1);
}

/* The slot of client_id; a new client takes a free slot, or, when all PX_CLIENTS_MAX are in
 * use, evicts the lowest client id (deterministic, so every learner evicts the same one; only
 * the evicted client loses its exactly-once guarantee for requests it still resends). */
static struct px_dedup *dedup_slot(struct px_history *f, uint32_t client_id)
{
    PX_ASSERT(client_id != 0);
    struct px_dedup *victim = NULL;
    for (uint32_t i = 0; i < PX_CLIENTS_MAX; i++) {
        struct px_dedup *d = &f->clients[i];
        if (d->client_id == client_id)
            return d;
        if (victim == NULL || d->client_id < victim->client_id)
            victim = d;
    }
    PX_ASSERT(victim != NULL); /* PX_CLIENTS_MAX >= 1 */
    memset(victim, 0, sizeof(*victim));
    victim->client_id = client_id;
    return victim;
}

/* Records (client_id, seq) as applied; returns true if it already was. */
static bool dedup_check_and_set(struct px_history *f, const struct px_value *v)
{
    struct px_dedup *d = dedup_slot(f, px_value_client(v));
    if (v->seq < d->seq_low)
        return true;
    while (v->seq - d->seq_low >= PX_DEDUP_SPAN)
        dedup_shift_one(d); /* the client promises < PX_DEDUP_SPAN outstanding: older are done */
    uint32_t k = v->seq - d->seq_low;
    PX_ASSERT(k < PX_DEDUP_SPAN); /* the window slid far enough */
    if (dedup_bit(d, k))
        return true;
    d->seen[k / PX_DEDUP_WORD_BITS] |= 1ull << (k % PX_DEDUP_WORD_BITS);
    while (dedup_bit(d, 0))
        dedup_shift_one(d);
    PX_ASSERT(v->seq < d->seq_low || dedup_bit(d, v->seq - d->seq_low)); /* now recorded */
    return false;
}

bool px_history_seen(const struct px_history *f, const struct px_value *v)
{
    PX_ASSERT(v != NULL);
    if (px_value_client(v) == 0)
        return false;
    for (uint32_t i = 0; i < PX_CLIENTS_MAX; i++) {
        const struct px_dedup *d = &f->clients[i];
        if (d->client_id != px_value_client(v))
            continue;
        if (v->seq < d->seq_low)
            return true;
        return v->seq - d->seq_low < PX_DEDUP_SPAN && dedup_bit(d, v->seq - d->seq_low);
    }
    return false;
}

bool px_history_apply(struct px_history *f, px_inst_t instance, const struct px_value *v)
{
    PX_ASSERT(instance > 0);
#ifndef PX_BUG_APPLY_OUT_OF_ORDER
    PX_ASSERT(instance > f->applied);
#endif
    if (instance > f->applied)
        f->applied = instance;
    if (px_value_client(v) == 0)
        return false; /* no-op: fills a gap, changes nothing but applied */
    if (dedup_check_and_set(f, v))
        return true;
    f->requests++;
    /* splitmix64's finalizer: a cheap full-avalanche mix for the digest chain */
    f->digest = px_mix64(f->digest ^ instance);
    f->digest =
        px_mix64(f->digest ^ (((uint64_t)px_value_client(v) << PX_REQUEST_CLIENT_SHIFT) | v->seq));
    f->digest = px_mix64(f->digest ^ v->word);
    PX_ASSERT(f->applied >= instance);
    PX_ASSERT(px_history_seen(f, v)); /* applied at most once from now on */
    return false;
}
