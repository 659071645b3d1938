/* AVX-512 negacyclic NTT (Harvey lazy butterflies) in two flavours sharing one stage plan:
 *   IFMA (c->wide = 0): 52-bit Shoup with madd52lo/hi, q < 2^50 (bounds: avx512_inner.h);
 *   F/DQ (c->wide = 1): 64-bit Shoup, the high product word from four 32x32 multiplies,
 *        q < 2^61 (values < 4q < 2^63), for CPUs without IFMA and for wide primes.
 * Also the two AVX-512 kernel tables. */
#include "avx512_inner.h"

/* Every helper is force-inlined so that c->wide is a constant in each specialised body. */
#define INLINE static inline __attribute__((always_inline))

/* Harvey forward butterfly: X, Y in [0, 4q) -> X + WY, X - WY + 2q, both in [0, 4q).
 * Growing variant (c->grow, IFMA only, q < 2^RING_NTT_GROW_BITS): X is not brought back to
 * [0, 2q), so both outputs exceed the larger input bound by less than 2q. From canonical input
 * (< q), after s stages every value is < (1 + 2s) q <= 33 q for N <= 2^16, and 33 q < 2^52
 * for q < 2^46: the lazy Shoup product stays valid (y < 2^52) and one reduction at the end
 * (fwd_tail) makes the output canonical, hence bit-identical.
 * Since every true value is below 2^52, it is determined by its residue modulo 2^52, and the
 * growing variant only ever needs that residue: IFMA reads the low 52 bits of its operands,
 * and additions modulo 2^64 are exact modulo 2^52. So the product W*Y skips the masking of
 * shoup_lazy (bit 52 may carry garbage), and fwd_final masks once. The butterfly drops from
 * 9 vector operations to 6. */
INLINE void fwd_bfly(__m512i *x, __m512i *y, __m512i w, __m512i ws, const vconst *c)
{
    __m512i u, t;
    if (c->grow) {
        u = *x;
        __m512i qh = _mm512_madd52hi_epu64(c->zero, *y, ws);
        t = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(c->zero, *y, w), qh, c->negq);
    } else {
        u = csub(*x, c->q2);
        t = mulmod_lazy(*y, w, ws, c);
    }
    *x = _mm512_add_epi64(u, t);
    *y = _mm512_add_epi64(_mm512_sub_epi64(u, t), c->q2);
}

/* Gentleman-Sande inverse butterfly: X, Y in [0, 2q) -> X + Y, (X - Y + 2q) W, in [0, 2q). */
INLINE void inv_bfly(__m512i *x, __m512i *y, __m512i w, __m512i ws, const vconst *c)
{
    __m512i u = *x, v = *y;
    *x = csub(_mm512_add_epi64(u, v), c->q2);
    *y = mulmod_lazy(_mm512_add_epi64(_mm512_sub_epi64(u, v), c->q2), w, ws, c);
}

/* Twiddles for the 8 lanes of a 16-coefficient chunk in the small-t stages; tab points at the
 * twiddle of the chunk's first block. t = 4: 2 blocks of 4 lanes; t = 2: 4 blocks of 2 lanes;
 * t = 1: 8 blocks of 1 lane. Loads read exactly the chunk's 8/t twiddles, never past them. */
INLINE __m512i tw_small(const uint64_t *tab, size_t t)
{
    if (t == 4)
        return _mm512_permutexvar_epi64(IDX(0, 0, 0, 0, 1, 1, 1, 1),
                                        _mm512_castsi128_si512(_mm_loadu_si128((const void *)tab)));
    if (t == 2)
        return _mm512_permutexvar_epi64(IDX(0, 0, 1, 1, 2, 2, 3, 3),
                                        _mm512_castsi256_si512(_mm256_loadu_si256((const void *)tab)));
    return LD(tab);
}

/* Lane permutations splitting a 16-coefficient chunk (v0 = a[0..7], v1 = a[8..15]) into the X
 * and Y operands of its butterflies for distance t in {4, 2, 1}, and merging them back. */
typedef struct {
    __m512i x, y, lo, hi;
} perm4;

INLINE perm4 perms(size_t t)
{
    perm4 p;
    if (t == 4) {
        p.x = IDX(0, 1, 2, 3, 8, 9, 10, 11);
        p.y = IDX(4, 5, 6, 7, 12, 13, 14, 15);
        p.lo = IDX(0, 1, 2, 3, 8, 9, 10, 11);
        p.hi = IDX(4, 5, 6, 7, 12, 13, 14, 15);
    } else if (t == 2) {
        p.x = IDX(0, 1, 4, 5, 8, 9, 12, 13);
        p.y = IDX(2, 3, 6, 7, 10, 11, 14, 15);
        p.lo = IDX(0, 1, 8, 9, 2, 3, 10, 11);
        p.hi = IDX(4, 5, 12, 13, 6, 7, 14, 15);
    } else {
        p.x = IDX(0, 2, 4, 6, 8, 10, 12, 14);
        p.y = IDX(1, 3, 5, 7, 9, 11, 13, 15);
        p.lo = IDX(0, 8, 1, 9, 2, 10, 3, 11);
        p.hi = IDX(4, 12, 5, 13, 6, 14, 7, 15);
    }
    return p;
}

/* Memory passes dominate once N * 8 bytes exceeds L1 (N = 8192 is 64 KiB), so stages are
 * fused: pairs of large stages (radix-4 passes) and the four stages with t <= 8 in registers. */

/* Stage pair for the forward transform: stage m (distance t) then stage 2m (distance h = t/2),
 * h >= 8. Block i of stage m covers [2ti, 2ti + 2t); its halves are blocks 2i, 2i+1 of 2m. */
INLINE void fwd_radix4(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m,
                              size_t t, const vconst *c)
{
    const size_t h = t / 2;
    for (size_t i = 0; i < m; i++) {
        const size_t k1 = m + i, k2 = 2 * m + 2 * i, k3 = k2 + 1;
        const __m512i w1 = BC(w, k1), s1 = BC(ws, k1), w2 = BC(w, k2), s2 = BC(ws, k2);
        const __m512i w3 = BC(w, k3), s3 = BC(ws, k3);
        uint64_t *b = a + 2 * t * i;
        for (size_t j = 0; j < h; j += 8) {
            __m512i x0 = LD(b + j), x1 = LD(b + j + h), x2 = LD(b + j + t), x3 = LD(b + j + t + h);
            fwd_bfly(&x0, &x2, w1, s1, c);
            fwd_bfly(&x1, &x3, w1, s1, c);
            fwd_bfly(&x0, &x1, w2, s2, c);
            fwd_bfly(&x2, &x3, w3, s3, c);
            ST(b + j, x0);
            ST(b + j + h, x1);
            ST(b + j + t, x2);
            ST(b + j + t + h, x3);
        }
    }
}

/* Stage pair for the inverse transform: stage m (distance t, blocks 2i and 2i+1) then stage
 * m/2 (distance 2t, block i covering [4ti, 4ti + 4t)), t >= 8. */
INLINE void inv_radix4(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m,
                              size_t t, const vconst *c)
{
    for (size_t i = 0; i < m / 2; i++) {
        const size_t k1 = m + 2 * i, k2 = k1 + 1, k3 = m / 2 + i;
        const __m512i w1 = BC(w, k1), s1 = BC(ws, k1), w2 = BC(w, k2), s2 = BC(ws, k2);
        const __m512i w3 = BC(w, k3), s3 = BC(ws, k3);
        uint64_t *b = a + 4 * t * i;
        for (size_t j = 0; j < t; j += 8) {
            __m512i x0 = LD(b + j), x1 = LD(b + j + t), x2 = LD(b + j + 2 * t),
                    x3 = LD(b + j + 3 * t);
            inv_bfly(&x0, &x1, w1, s1, c);
            inv_bfly(&x2, &x3, w2, s2, c);
            inv_bfly(&x0, &x2, w3, s3, c);
            inv_bfly(&x1, &x3, w3, s3, c);
            ST(b + j, x0);
            ST(b + j + t, x1);
            ST(b + j + 2 * t, x2);
            ST(b + j + 3 * t, x3);
        }
    }
}

/* One stage with distance t >= 8: blocks i < m of 2t coefficients, one twiddle per block. */
INLINE void stage_large(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m,
                               size_t t, int inverse, const vconst *c)
{
    for (size_t i = 0; i < m; i++) {
        const __m512i vw = BC(w, m + i);
        const __m512i vws = BC(ws, m + i);
        uint64_t *x = a + 2 * i * t, *y = x + t;
        for (size_t j = 0; j < t; j += 8) {
            __m512i vx = LD(x + j), vy = LD(y + j);
            if (inverse)
                inv_bfly(&vx, &vy, vw, vws, c);
            else
                fwd_bfly(&vx, &vy, vw, vws, c);
            ST(x + j, vx);
            ST(y + j, vy);
        }
    }
}

/* Stage with t in {4, 2, 1} on one 16-coefficient chunk (v0 = a[k..k+7], v1 = a[k+8..k+15]),
 * whose 8/t blocks start at block index `first` of the stage (m = n / (2t)). */
INLINE void chunk_stage(__m512i *v0, __m512i *v1, const uint64_t *w, const uint64_t *ws,
                               size_t first, size_t t, int inverse, const vconst *c)
{
    const perm4 pm = perms(t);
    __m512i vx = _mm512_permutex2var_epi64(*v0, pm.x, *v1);
    __m512i vy = _mm512_permutex2var_epi64(*v0, pm.y, *v1);
    __m512i vw = tw_small(w + first, t), vws = tw_small(ws + first, t);
    if (inverse)
        inv_bfly(&vx, &vy, vw, vws, c);
    else
        fwd_bfly(&vx, &vy, vw, vws, c);
    *v0 = _mm512_permutex2var_epi64(vx, pm.lo, vy);
    *v1 = _mm512_permutex2var_epi64(vx, pm.hi, vy);
}

/* Canonical residue of a forward output: from [0, 4q) two conditional subtractions; growing
 * variant, from the residue modulo 2^52 of v < 33 q < 2^52: Barrett with mu = floor(2^52 / q),
 * qh = floor(v mu / 2^52) > v/q - 2 (madd52hi reads the low 52 bits, i.e. v itself), so
 * v - qh q is in [0, 2q) and equals lo52(v + qh (2^52 - q)), then one conditional
 * subtraction. */
INLINE __m512i fwd_final(__m512i v, const vconst *c)
{
    if (!c->grow)
        return csub(csub(v, c->q2), c->q);
    __m512i qh = _mm512_madd52hi_epu64(c->zero, v, c->mu52);
    __m512i r = _mm512_and_si512(_mm512_madd52lo_epu64(v, qh, c->negq), c->mask);
    return csub(r, c->q);
}

/* The forward stages t = 8, 4, 2, 1 in one pass over 16-coefficient chunks (chunk c is block c
 * of the t = 8 stage), ending with the map of [0, 4q) to canonical residues. */
INLINE void fwd_tail(uint64_t *a, size_t n, const uint64_t *w, const uint64_t *ws,
                     const vconst *c)
{
    for (size_t k = 0, ch = 0; k < n; k += 16, ch++) {
        __m512i v0 = LD(a + k), v1 = LD(a + k + 8);
        fwd_bfly(&v0, &v1, BC(w, n / 16 + ch), BC(ws, n / 16 + ch), c);
        chunk_stage(&v0, &v1, w, ws, n / 8 + 2 * ch, 4, 0, c);
        chunk_stage(&v0, &v1, w, ws, n / 4 + 4 * ch, 2, 0, c);
        chunk_stage(&v0, &v1, w, ws, n / 2 + 8 * ch, 1, 0, c);
        ST(a + k, fwd_final(v0, c));
        ST(a + k + 8, fwd_final(v1, c));
    }
}

/* The inverse stages t = 1, 2, 4 (and 8 when n >= 32; for n = 16 the t = 8 stage is the last
 * one, fused with the scaling by N^-1) in one pass. */
INLINE void inv_head(uint64_t *a, size_t n, const uint64_t *w, const uint64_t *ws,
                     const vconst *c)
{
    for (size_t k = 0, ch = 0; k < n; k += 16, ch++) {
        __m512i v0 = LD(a + k), v1 = LD(a + k + 8);
        chunk_stage(&v0, &v1, w, ws, n / 2 + 8 * ch, 1, 1, c);
        chunk_stage(&v0, &v1, w, ws, n / 4 + 4 * ch, 2, 1, c);
        chunk_stage(&v0, &v1, w, ws, n / 8 + 2 * ch, 4, 1, c);
        if (n >= 32)
            inv_bfly(&v0, &v1, BC(w, n / 16 + ch), BC(ws, n / 16 + ch), c);
        ST(a + k, v0);
        ST(a + k + 8, v1);
    }
}

INLINE void ntt_forward_body(uint64_t *a, const ring_prime *p, int wide, int grow)
{
    const size_t n = p->n;
    if (n < 16) {
        ring_ntt_forward_portable(a, p);
        return;
    }
    vconst c = vconst_make(p->q);
    c.wide = wide;
    c.grow = grow;
    c.mu52 = _mm512_set1_epi64((long long)(((uint64_t)1 << 52) / p->q));
    const uint64_t *w = p->psi_rev, *ws = wide ? p->psi_rev_shoup : p->psi_rev_shoup52;
    size_t m = 1, t = n >> 1;
    for (; t >= 32; m <<= 2, t >>= 2)
        fwd_radix4(a, w, ws, m, t, &c);
    if (t == 16) {
        stage_large(a, w, ws, m, t, 0, &c);
        m <<= 1, t >>= 1;
    }
    fwd_tail(a, n, w, ws, &c);
}

INLINE void ntt_inverse_body(uint64_t *a, const ring_prime *p, int wide)
{
    const size_t n = p->n;
    if (n < 16) {
        ring_ntt_inverse_portable(a, p);
        return;
    }
    vconst c = vconst_make(p->q);
    c.wide = wide;
    const uint64_t *w = p->ipsi_rev, *ws = wide ? p->ipsi_rev_shoup : p->ipsi_rev_shoup52;
    inv_head(a, n, w, ws, &c);
    size_t m = n / 32, t = 16; /* next stage; m = 0 when n = 16 */
    if (n == 16)
        m = 1, t = 8;
    for (; m >= 4; m >>= 2, t <<= 2)
        inv_radix4(a, w, ws, m, t, &c);
    if (m == 2) {
        stage_large(a, w, ws, m, t, 1, &c);
        m >>= 1, t <<= 1;
    }
    /* Last stage (m = 1, t = n/2) fused with the scaling by N^-1: X' = (X + Y) N^-1 and
     * Y' = (X - Y + 2q) (W N^-1), both Shoup-lazy from inputs < 4q, then made canonical. */
    const uint64_t q = p->q;
    const uint64_t wn = mq_mul(w[1], p->n_inv, &p->mod);
    const __m512i vn = _mm512_set1_epi64((long long)p->n_inv);
    const __m512i vns = _mm512_set1_epi64((long long)(wide ? p->n_inv_shoup : p->n_inv_shoup52));
    const __m512i vwn = _mm512_set1_epi64((long long)wn);
    const __m512i vwns = _mm512_set1_epi64((long long)(((mq_u128)wn << (wide ? 64 : 52)) / q));
    uint64_t *x = a, *y = a + t;
    for (size_t j = 0; j < t; j += 8) {
        __m512i u = LD(x + j), v = LD(y + j);
        __m512i s = mulmod_lazy(_mm512_add_epi64(u, v), vn, vns, &c);
        __m512i d = mulmod_lazy(_mm512_add_epi64(_mm512_sub_epi64(u, v), c.q2), vwn, vwns, &c);
        ST(x + j, csub(s, c.q));
        ST(y + j, csub(d, c.q));
    }
}

static void ntt_forward_avx512(uint64_t *a, const ring_prime *p)
{
    _Static_assert(RING_MAX_LOGN <= 16, "growth bound (1 + 2 logn) q < 2^52 proved for N <= 2^16");
    if (p->q < ((uint64_t)1 << RING_NTT_GROW_BITS))
        ntt_forward_body(a, p, 0, 1);
    else
        ntt_forward_body(a, p, 0, 0);
}
static void ntt_inverse_avx512(uint64_t *a, const ring_prime *p) { ntt_inverse_body(a, p, 0); }
static void ntt_forward_avx512dq(uint64_t *a, const ring_prime *p) { ntt_forward_body(a, p, 1, 0); }
static void ntt_inverse_avx512dq(uint64_t *a, const ring_prime *p) { ntt_inverse_body(a, p, 1); }

const ring_kernels ring_kernels_avx512 = {
    .name = "avx512ifma",
    .impl = RING_IMPL_AVX512,
    .ntt_forward = ntt_forward_avx512,
    .ntt_inverse = ntt_inverse_avx512,
    .add = ring_add_avx512,
    .sub = ring_sub_avx512,
    .neg = ring_neg_avx512,
    .mul = ring_mul_avx512,
    .muladd = ring_muladd_avx512,
    .mul_scalar = ring_mul_scalar_avx512,
    .extend_single = ring_extend_single_avx512,
    .muladd_scalar = ring_muladd_scalar_avx512,
    .sub_mul_scalar = ring_sub_mul_scalar_avx512,
};

const ring_kernels ring_kernels_avx512dq = {
    .name = "avx512dq",
    .impl = RING_IMPL_AVX512DQ,
    .ntt_forward = ntt_forward_avx512dq,
    .ntt_inverse = ntt_inverse_avx512dq,
    .add = ring_add_avx512,
    .sub = ring_sub_avx512,
    .neg = ring_neg_avx512,
    .mul = ring_mul_portable, /* a 64x64 -> 128-bit Barrett does not pay off without IFMA */
    .muladd = ring_muladd_portable,
    .mul_scalar = ring_mul_scalar_avx512dq,
    .extend_single = ring_extend_single_portable,
    .muladd_scalar = ring_muladd_scalar_avx512dq,
    .sub_mul_scalar = ring_sub_mul_scalar_avx512dq,
};
