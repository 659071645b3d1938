/* ring layer internals for the AVX-512 IFMA kernels: shared vector helpers and the kernels
 * defined in pointwise_avx512.c. Include ONLY from files named *_avx512.c (compiled with
 * -mavx512f/dq/vl/bw/ifma); their functions run only after ring_cpu_has_avx512ifma().
 *
 * IFMA multiplies the low 52 bits of two lanes and adds the low (madd52lo) or high (madd52hi)
 * 52 bits of the 104-bit product. Every operand below is < 2^52: residues and lazy values are
 * < 4q < 2^52 (q < 2^50), Shoup companions floor(w*2^52/q) < 2^52, Barrett quotients < q.
 *
 * Products "modulo 2^52" trick: when the true result r = x - qhat*q is known to lie in
 * [0, 2^52), r = (lo52(x) + lo52(qhat * (2^52 - q))) mod 2^52, i.e. one madd52lo with the
 * precomputed negq = 2^52 - q and a mask, with no subtraction.
 *
 * All outputs are canonical, hence bit-identical to the portable kernels. */
#ifndef PPNN_RING_AVX512_INNER_H
#define PPNN_RING_AVX512_INNER_H

#include <immintrin.h>

#include "inner.h"

#define MASK52 (((uint64_t)1 << 52) - 1)

/* Per-prime vector constants. wide = 1 selects 64-bit Shoup arithmetic (F/DQ only, any
 * q < 2^61) in the NTT instead of 52-bit IFMA; it is a compile-time constant after inlining. */
typedef struct {
    __m512i q, q2, negq, mask, zero;
    __m512i mu52; /* floor(2^52 / q), set only where grow is (ntt_avx512.c) */
    int wide;
    int grow; /* forward NTT without per-stage reduction (ntt_avx512.c, fwd_bfly) */
} vconst;

/* IFMA primes below 2^RING_NTT_GROW_BITS take the forward NTT without per-stage reduction
 * (bound in ntt_avx512.c, fwd_bfly). */
#define RING_NTT_GROW_BITS 46

static inline vconst vconst_make(uint64_t q)
{
    vconst c;
    c.q = _mm512_set1_epi64((long long)q);
    c.q2 = _mm512_set1_epi64((long long)(2 * q));
    c.negq = _mm512_set1_epi64((long long)(((uint64_t)1 << 52) - q));
    c.mask = _mm512_set1_epi64((long long)MASK52);
    c.zero = _mm512_setzero_si512();
    c.mu52 = c.zero;
    c.wide = 0;
    c.grow = 0;
    return c;
}

/* x >= m ? x - m : x: if x < m the subtraction wraps above x and min keeps x. */
static inline __m512i csub(__m512i x, __m512i m) { return _mm512_min_epu64(x, _mm512_sub_epi64(x, m)); }

/* y*w mod q in [0, 2q) for y < 2^52, w < q, ws = floor(w * 2^52 / q) (Shoup with beta = 2^52:
 * qh = floor(y*ws / 2^52) > y*w/q - 2, so y*w - qh*q is in [0, 2q)). */
static inline __m512i shoup_lazy(__m512i y, __m512i w, __m512i ws, const vconst *c)
{
    __m512i qh = _mm512_madd52hi_epu64(c->zero, y, ws);
    __m512i r = _mm512_madd52lo_epu64(c->zero, y, w);
    r = _mm512_madd52lo_epu64(r, qh, c->negq);
    return _mm512_and_si512(r, c->mask);
}

/* floor(a * b / 2^64) per lane: a*b = hh 2^64 + (lh + hl) 2^32 + ll with 32x32 products. */
static inline __attribute__((always_inline)) __m512i mulhi64(__m512i a, __m512i b)
{
    const __m512i lo32 = _mm512_set1_epi64(0xffffffff);
    __m512i ah = _mm512_srli_epi64(a, 32), bh = _mm512_srli_epi64(b, 32);
    __m512i ll = _mm512_mul_epu32(a, b), lh = _mm512_mul_epu32(a, bh);
    __m512i hl = _mm512_mul_epu32(ah, b), hh = _mm512_mul_epu32(ah, bh);
    __m512i mid = _mm512_add_epi64(_mm512_srli_epi64(ll, 32),
                                   _mm512_add_epi64(_mm512_and_si512(lh, lo32),
                                                    _mm512_and_si512(hl, lo32)));
    return _mm512_add_epi64(_mm512_add_epi64(hh, _mm512_srli_epi64(mid, 32)),
                            _mm512_add_epi64(_mm512_srli_epi64(lh, 32), _mm512_srli_epi64(hl, 32)));
}

/* y*w mod q in [0, 2q): IFMA 52-bit Shoup, or 64-bit Shoup (ws = floor(w 2^64 / q), any 64-bit
 * y; y*w - floor(y*ws/2^64)*q < 2q is exact modulo 2^64). */
static inline __attribute__((always_inline)) __m512i mulmod_lazy(__m512i y, __m512i w, __m512i ws, const vconst *c)
{
    if (!c->wide)
        return shoup_lazy(y, w, ws, c);
    __m512i qh = mulhi64(y, ws);
    return _mm512_sub_epi64(_mm512_mullo_epi64(y, w), _mm512_mullo_epi64(qh, c->q));
}

#define LD(p) _mm512_loadu_si512((const void *)(p))
#define ST(p, v) _mm512_storeu_si512((void *)(p), v)
/* Broadcast of table entry tab[k]. */
#define BC(tab, k) _mm512_set1_epi64((long long)(tab)[k])
#define IDX(a, b, c_, d, e, f, g, h) _mm512_set_epi64(h, g, f, e, d, c_, b, a)


/* Pointwise kernels (pointwise_avx512.c); semantics of the ring_kernels members. */
void ring_add_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_sub_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_neg_avx512(uint64_t *r, const uint64_t *a, const ring_prime *p);
void ring_mul_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_muladd_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_mul_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
void ring_muladd_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
void ring_extend_single_avx512(uint64_t *r, const uint64_t *a, const ring_prime *from,
                               const ring_prime *to);
/* F/DQ-only variants (64-bit Shoup), any q < 2^61; add/sub/neg above use F only and serve both
 * tables. */
void ring_sub_mul_scalar_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                                const ring_prime *p);
void ring_sub_mul_scalar_avx512dq(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                                  const ring_prime *p);
void ring_mul_scalar_avx512dq(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
void ring_muladd_scalar_avx512dq(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);

#endif
