#include "common/hist.h"

static uint32_t bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (uint32_t)v;
    unsigned lg = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    unsigned shift = lg - HIST_SUB_BITS;
    uint64_t sub = (v >> shift) & (HIST_SUB - 1u);
    return (shift + 1u) * HIST_SUB + (uint32_t)sub;
}

static uint64_t bucket_low(uint32_t b)
{
    if (b < HIST_SUB)
        return b;
    unsigned shift = b / HIST_SUB - 1u;
    uint64_t sub = b % HIST_SUB;
    return (HIST_SUB + sub) << shift;
}

void hist_add(struct hist *h, uint64_t v)
{
    h->buckets[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t low = bucket_low(b);
            return low < h->max ? low : h->max;
        }
    }
    return h->max;
}
