/* Deterministic test-input generator (splitmix64) for the modq/ring tests. Test inputs only:
 * cryptographic randomness in ppnn comes from libsodium. */
#ifndef PPNN_TESTRNG_H
#define PPNN_TESTRNG_H

#include <stdint.h>

static inline uint64_t trng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform-ish in [0, q) with a bias toward the edges 0, 1, q-1 in 1/8 of the draws. */
static inline uint64_t trng_mod(uint64_t *s, uint64_t q)
{
    uint64_t r = trng_next(s);
    switch (r & 15) {
    case 0:
        return 0;
    case 1:
        return q - 1;
    default:
        return (r >> 4) % q;
    }
}

#endif
