/* util.h: small helpers shared by the processes' glue code (never by the pure core). */
#ifndef PX_UTIL_H
#define PX_UTIL_H

#include <stdint.h>
#include <time.h>

/* px_splitmix64 (px_mix.h, the project's one definition): the seeded generator of chaos and
 * failpoints. */
#include "paxos/px_mix.h"

/* Monotonic time in nanoseconds (vDSO, no syscall). */
static inline uint64_t util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
