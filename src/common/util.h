/* util.h: small helpers shared by the processes' glue code (never by the pure core). */
#ifndef PX_UTIL_H
#define PX_UTIL_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds (vDSO, no syscall). */
static inline uint64_t util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: the seeded generator of chaos and failpoints. */
static inline uint64_t util_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
