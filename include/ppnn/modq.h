/* ppnn modq layer: arithmetic modulo a word-size prime, NTT-friendly prime search.
 *
 * Supported moduli: odd q with 2 <= q < 2^61 for the generic functions (Barrett reduction of a
 * 128-bit value needs q < 2^61 so that the quotient estimate error stays below 2q); the NTT
 * prime search produces primes of 20..60 bits. Unless stated otherwise every input residue must
 * be canonical, i.e. in [0, q), and every output is canonical.
 *
 * The small hot functions are static inline so that the ring kernels inline them. */
#ifndef PPNN_MODQ_H
#define PPNN_MODQ_H

#include <stddef.h>
#include <stdint.h>

#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Unsigned 128-bit integer (GCC/Clang extension; __extension__ keeps -Wpedantic quiet). */
__extension__ typedef unsigned __int128 mq_u128;

/* Bounds of the NTT prime search (mq_find_ntt_primes). */
#define MQ_MIN_PRIME_BITS 20
#define MQ_MAX_PRIME_BITS 60

/* Precomputed data for one modulus (FLINT nmod_t, SEAL Modulus). Build with mq_modulus_init and
 * pass const afterwards.
 *   q       the modulus, odd, 2 < q < 2^61
 *   bits    bit length of q: 2^(bits-1) <= q < 2^bits
 *   ratio   floor(2^128 / q) as two 64-bit words (ratio_lo, ratio_hi): Barrett constant for
 *           reducing a 128-bit value (mq_reduce128) and a product (mq_mul)
 *   shoup1  floor(2^64 / q) (= ratio_hi): Barrett constant for reducing one 64-bit word
 * and, for q < 2^50 (the AVX-512 IFMA kernels' range; all zero above it), the constants of
 * 52-bit-word Shoup arithmetic, c_shoup = floor(c * 2^52 / q):
 *   one_shoup          floor(2^52 / q): reduces a 52-bit value
 *   r52, r52_shoup     2^52 mod q and its companion
 *   r104, r104_shoup   2^104 mod q and its companion
 * This is THE per-prime constant struct: ring_prime embeds it (built once per prime with the
 * NTT tables) and the hnn linear kernels take it (hnn_modulus is the same type). */
typedef struct mq_modulus {
    uint64_t q;
    unsigned bits;
    uint64_t ratio_lo, ratio_hi;
    uint64_t one_shoup;
    uint64_t r52, r52_shoup;
    uint64_t r104, r104_shoup;
} mq_modulus;

/* Fills m for the modulus q. Asserts 2 < q < 2^61 and q odd (programmer error otherwise). */
void mq_modulus_init(mq_modulus *m, uint64_t q);

/* ---- elementary operations (inputs canonical, output canonical) ---- */
static inline uint64_t mq_add(uint64_t a, uint64_t b, uint64_t q)
{
    uint64_t r = a + b; /* a + b < 2q < 2^62: no wrap */
    return r >= q ? r - q : r;
}

static inline uint64_t mq_sub(uint64_t a, uint64_t b, uint64_t q)
{
    return a >= b ? a - b : a + q - b;
}

static inline uint64_t mq_neg(uint64_t a, uint64_t q) { return a ? q - a : 0; }

/* x mod q for any 128-bit x (Barrett with floor(2^128/q)). The estimate
 * qhat = floor(x * ratio / 2^128) satisfies floor(x/q) - 2 < qhat <= floor(x/q) (the two dropped
 * partial-product terms each lose < 1), so x - qhat*q < 3q < 2^63 and it fits one word; two
 * conditional subtractions make it canonical. */
static inline uint64_t mq_reduce128(mq_u128 x, const mq_modulus *m)
{
    uint64_t xlo = (uint64_t)x, xhi = (uint64_t)(x >> 64);
    /* (xhi*2^64 + xlo) * (rhi*2^64 + rlo) / 2^128, keeping the terms that reach bit 128. */
    mq_u128 t = (mq_u128)xlo * m->ratio_lo >> 64;
    t += (mq_u128)xlo * m->ratio_hi;
    mq_u128 u = (mq_u128)xhi * m->ratio_lo;
    mq_u128 mid = (t & UINT64_MAX) + (u & UINT64_MAX);
    uint64_t qhat = (uint64_t)(t >> 64) + (uint64_t)(u >> 64) + (uint64_t)(mid >> 64) +
                    xhi * m->ratio_hi;
    uint64_t r = xlo - qhat * m->q; /* exact modulo 2^64 since the true value is < 3q */
    r = r >= m->q ? r - m->q : r;
    return r >= m->q ? r - m->q : r;
}

/* a mod q for any 64-bit a. */
static inline uint64_t mq_reduce64(uint64_t a, const mq_modulus *m)
{
    uint64_t qhat = (uint64_t)((mq_u128)a * m->ratio_hi >> 64);
    uint64_t r = a - qhat * m->q; /* < 2q: floor(2^64/q) underestimates 2^64/q by < 1 */
    return r >= m->q ? r - m->q : r;
}

/* a*b mod q, a and b canonical (any a*b < 2^128 actually works). */
static inline uint64_t mq_mul(uint64_t a, uint64_t b, const mq_modulus *m)
{
    return mq_reduce128((mq_u128)a * b, m);
}

/* Shoup companion of a fixed multiplier w in [0, q): floor(w * 2^64 / q). */
static inline uint64_t mq_shoup(uint64_t w, uint64_t q)
{
    return (uint64_t)(((mq_u128)w << 64) / q);
}

/* a*w mod q in [0, 2q) for ANY 64-bit a, w in [0, q), ws = mq_shoup(w, q), q < 2^63.
 * Standard Shoup bound: a*w - floor(a*ws/2^64)*q < 2q. */
static inline uint64_t mq_mul_shoup_lazy(uint64_t a, uint64_t w, uint64_t ws, uint64_t q)
{
    uint64_t qhat = (uint64_t)((mq_u128)a * ws >> 64);
    return a * w - qhat * q; /* exact modulo 2^64 since the true value is < 2q */
}

/* a*w mod q canonical (same preconditions as mq_mul_shoup_lazy). */
static inline uint64_t mq_mul_shoup(uint64_t a, uint64_t w, uint64_t ws, uint64_t q)
{
    uint64_t r = mq_mul_shoup_lazy(a, w, ws, q);
    return r >= q ? r - q : r;
}

/* Centered lift: the representative of a (canonical mod q) in (-q/2, q/2]. */
static inline int64_t mq_center(uint64_t a, uint64_t q)
{
    return a > q / 2 ? (int64_t)a - (int64_t)q : (int64_t)a;
}

/* x mod q canonical for a signed 64-bit x. */
static inline uint64_t mq_from_int64(int64_t x, const mq_modulus *m)
{
    if (x >= 0)
        return mq_reduce64((uint64_t)x, m);
    return mq_neg(mq_reduce64((uint64_t)0 - (uint64_t)x, m), m->q);
}

/* ---- number theory ---- */
/* a^e mod q (a canonical). */
uint64_t mq_pow(uint64_t a, uint64_t e, const mq_modulus *m);
/* a^-1 mod q for prime q; asserts a != 0 mod q (programmer error). */
uint64_t mq_inv(uint64_t a, const mq_modulus *m);

/* Deterministic Miller-Rabin for all 64-bit n (bases 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37
 * suffice for n < 3.3e24). Returns 1 if n is prime, 0 otherwise. */
int mq_is_prime(uint64_t n);

/* Writes `count` distinct primes q with exactly `bits` bits (2^(bits-1) < q < 2^bits) and
 * q = 1 mod two_n into out[0..count-1], searching downward from 2^bits (so the first prime is
 * the largest such prime), skipping any value listed in exclude[0..nexclude-1] (exclude may be
 * NULL when nexclude == 0). two_n must be a power of two >= 4 with two_n < 2^(bits-1).
 * Errors (PPNN_ERR_PARAM): bits outside [MQ_MIN_PRIME_BITS, MQ_MAX_PRIME_BITS], two_n not a power of two or
 * too large, or fewer than count such primes exist. */
PPNN_MUST_CHECK ppnn_status mq_find_ntt_primes(uint64_t *out, size_t count, unsigned bits,
                                               uint64_t two_n, const uint64_t *exclude,
                                               size_t nexclude);

/* A primitive two_n-th root of unity mod the prime q (psi with psi^(two_n/2) = -1), chosen
 * deterministically: g^((q-1)/two_n) for the smallest generator g of (Z/qZ)^*.
 * Errors (PPNN_ERR_PARAM): q not prime, two_n not a power of two >= 2, or q != 1 mod two_n. */
PPNN_MUST_CHECK ppnn_status mq_primitive_root_2n(uint64_t *root, uint64_t q, uint64_t two_n);

#ifdef __cplusplus
}
#endif
#endif
