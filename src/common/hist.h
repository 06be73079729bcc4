/* hist.h: a bounded latency histogram (log-linear buckets: 64 sub-buckets per power of two,
 * so any quantile is within 1/64 of the true value) with no allocation. */
#ifndef PX_HIST_H
#define PX_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (64u * HIST_SUB)

struct hist {
    uint64_t count, max, sum;
    uint64_t buckets[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
/* q in [0, 1]; returns a value within 1/64 of the q-quantile, 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
