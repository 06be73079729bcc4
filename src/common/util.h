/* util.h: small helpers shared by the processes' glue code (never by the pure core). */
#ifndef PX_UTIL_H
#define PX_UTIL_H

#include <stdint.h>
#include <time.h>

#include "paxos/px_mix.h"

/* Monotonic time in nanoseconds (vDSO, no syscall). */
static inline uint64_t util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64 (the core's one definition, px_mix.h): the seeded generator of chaos and
 * failpoints. */
static inline uint64_t util_splitmix64(uint64_t *state)
{
    return px_splitmix64(state);
}

#endif
