/* px_mix.h: the project's one definition of its seeded generators (pure, header only: the core
 * includes it, and so do the processes' glue code and the simulator).
 *
 * splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", 2014):
 * a Weyl sequence of step PX_SPLITMIX64_GAMMA (2^64 / golden ratio, odd) through a 64-bit
 * finalizer (px_mix64, Stafford's "Mix13" variant). Any state, 0 included, is valid.
 * xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators", 2016):
 * the core's back-off stream; its state must never be 0 (0 is its only fixed point). */
#ifndef PX_MIX_H
#define PX_MIX_H

#include <stdint.h>

#define PX_SPLITMIX64_GAMMA 0x9e3779b97f4a7c15ull
/* px_mix64's shift / multiply / shift / multiply / shift, Mix13's constants. */
#define PX_MIX64_SHIFT1 30
#define PX_MIX64_MUL1   0xbf58476d1ce4e5b9ull
#define PX_MIX64_SHIFT2 27
#define PX_MIX64_MUL2   0x94d049bb133111ebull
#define PX_MIX64_SHIFT3 31
/* xorshift64*'s triple (12, 25, 27), the one of Vigna's table with the best BigCrush result,
 * and its output multiplier. */
#define PX_XORSHIFT64_SHIFT1 12
#define PX_XORSHIFT64_SHIFT2 25
#define PX_XORSHIFT64_SHIFT3 27
#define PX_XORSHIFT64_STAR   0x2545f4914f6cdd1dull

/* A full-avalanche bijection on 64 bits: every input bit flips each output bit with
 * probability about 1/2. */
static inline uint64_t px_mix64(uint64_t z)
{
    z = (z ^ (z >> PX_MIX64_SHIFT1)) * PX_MIX64_MUL1;
    z = (z ^ (z >> PX_MIX64_SHIFT2)) * PX_MIX64_MUL2;
    return z ^ (z >> PX_MIX64_SHIFT3);
}

/* The next splitmix64 number; advances *state. */
static inline uint64_t px_splitmix64(uint64_t *state)
{
    return px_mix64(*state += PX_SPLITMIX64_GAMMA);
}

/* The next xorshift64* number; advances *state, which must not be 0 (and never becomes 0). */
static inline uint64_t px_xorshift64star(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> PX_XORSHIFT64_SHIFT1;
    x ^= x << PX_XORSHIFT64_SHIFT2;
    x ^= x >> PX_XORSHIFT64_SHIFT3;
    *state = x;
    return x * PX_XORSHIFT64_STAR;
}

#endif
