/* AVX-512 IFMA kernels (compiled with -mavx512f/dq/vl/bw/ifma; selected only after
 * ring_cpu_has_avx512ifma() and for q < 2^50).
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
#include <immintrin.h>

#include "inner.h"

#define MASK52 (((uint64_t)1 << 52) - 1)

typedef struct {
    __m512i q, q2, negq, mask, zero;
} vconst;

static inline vconst vconst_make(uint64_t q)
{
    vconst c;
    c.q = _mm512_set1_epi64((long long)q);
    c.q2 = _mm512_set1_epi64((long long)(2 * q));
    c.negq = _mm512_set1_epi64((long long)(((uint64_t)1 << 52) - q));
    c.mask = _mm512_set1_epi64((long long)MASK52);
    c.zero = _mm512_setzero_si512();
    return c;
}

/* x >= m ? x - m : x, for x < 2^63: if x < m the subtraction wraps above x and min keeps x. */
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

/* Harvey forward butterfly: X, Y in [0, 4q) -> X + WY, X - WY + 2q, both in [0, 4q). */
static inline void fwd_bfly(__m512i *x, __m512i *y, __m512i w, __m512i ws, const vconst *c)
{
    __m512i u = csub(*x, c->q2);
    __m512i t = shoup_lazy(*y, w, ws, c);
    *x = _mm512_add_epi64(u, t);
    *y = _mm512_add_epi64(_mm512_sub_epi64(u, t), c->q2);
}

/* Gentleman-Sande inverse butterfly: X, Y in [0, 2q) -> X + Y, (X - Y + 2q) W, in [0, 2q). */
static inline void inv_bfly(__m512i *x, __m512i *y, __m512i w, __m512i ws, const vconst *c)
{
    __m512i u = *x, v = *y;
    *x = csub(_mm512_add_epi64(u, v), c->q2);
    *y = shoup_lazy(_mm512_add_epi64(_mm512_sub_epi64(u, v), c->q2), w, ws, c);
}

#define LD(p) _mm512_loadu_si512((const void *)(p))
#define ST(p, v) _mm512_storeu_si512((void *)(p), v)
/* Broadcast of table entry tab[k]. */
#define BC(tab, k) _mm512_set1_epi64((long long)(tab)[k])
#define IDX(a, b, c_, d, e, f, g, h) _mm512_set_epi64(h, g, f, e, d, c_, b, a)

/* Twiddles for the 8 lanes of a 16-coefficient chunk in the small-t stages; tab points at the
 * twiddle of the chunk's first block. t = 4: 2 blocks of 4 lanes; t = 2: 4 blocks of 2 lanes;
 * t = 1: 8 blocks of 1 lane. Loads read exactly the chunk's 8/t twiddles, never past them. */
static inline __m512i tw_small(const uint64_t *tab, size_t t)
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

static inline perm4 perms(size_t t)
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
static inline void fwd_radix4(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m,
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
static inline void inv_radix4(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m,
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
static inline void stage_large(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m,
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
static inline void chunk_stage(__m512i *v0, __m512i *v1, const uint64_t *w, const uint64_t *ws,
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

/* The forward stages t = 8, 4, 2, 1 in one pass over 16-coefficient chunks (chunk c is block c
 * of the t = 8 stage), ending with the map of [0, 4q) to canonical residues. */
static void fwd_tail(uint64_t *a, size_t n, const uint64_t *w, const uint64_t *ws,
                     const vconst *c)
{
    for (size_t k = 0, ch = 0; k < n; k += 16, ch++) {
        __m512i v0 = LD(a + k), v1 = LD(a + k + 8);
        fwd_bfly(&v0, &v1, BC(w, n / 16 + ch), BC(ws, n / 16 + ch), c);
        chunk_stage(&v0, &v1, w, ws, n / 8 + 2 * ch, 4, 0, c);
        chunk_stage(&v0, &v1, w, ws, n / 4 + 4 * ch, 2, 0, c);
        chunk_stage(&v0, &v1, w, ws, n / 2 + 8 * ch, 1, 0, c);
        ST(a + k, csub(csub(v0, c->q2), c->q));
        ST(a + k + 8, csub(csub(v1, c->q2), c->q));
    }
}

/* The inverse stages t = 1, 2, 4 (and 8 when n >= 32; for n = 16 the t = 8 stage is the last
 * one, fused with the scaling by N^-1) in one pass. */
static void inv_head(uint64_t *a, size_t n, const uint64_t *w, const uint64_t *ws,
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

static void ntt_forward_avx512(uint64_t *a, const ring_prime *p)
{
    const size_t n = p->n;
    if (n < 16) {
        ring_ntt_forward_portable(a, p);
        return;
    }
    const vconst c = vconst_make(p->q);
    const uint64_t *w = p->psi_rev, *ws = p->psi_rev_shoup52;
    size_t m = 1, t = n >> 1;
    for (; t >= 32; m <<= 2, t >>= 2)
        fwd_radix4(a, w, ws, m, t, &c);
    if (t == 16) {
        stage_large(a, w, ws, m, t, 0, &c);
        m <<= 1, t >>= 1;
    }
    fwd_tail(a, n, w, ws, &c);
}

static void ntt_inverse_avx512(uint64_t *a, const ring_prime *p)
{
    const size_t n = p->n;
    if (n < 16) {
        ring_ntt_inverse_portable(a, p);
        return;
    }
    const vconst c = vconst_make(p->q);
    const uint64_t *w = p->ipsi_rev, *ws = p->ipsi_rev_shoup52;
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
    const __m512i vns = _mm512_set1_epi64((long long)p->n_inv_shoup52);
    const __m512i vwn = _mm512_set1_epi64((long long)wn);
    const __m512i vwns = _mm512_set1_epi64((long long)(((mq_u128)wn << 52) / q));
    uint64_t *x = a, *y = a + t;
    for (size_t j = 0; j < t; j += 8) {
        __m512i u = LD(x + j), v = LD(y + j);
        __m512i s = shoup_lazy(_mm512_add_epi64(u, v), vn, vns, &c);
        __m512i d = shoup_lazy(_mm512_add_epi64(_mm512_sub_epi64(u, v), c.q2), vwn, vwns, &c);
        ST(x + j, csub(s, c.q));
        ST(y + j, csub(d, c.q));
    }
}

/* ---- pointwise kernels: 8 lanes at a time, scalar tail for N = 4 ---- */
static void add_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8)
        ST(r + j, csub(_mm512_add_epi64(LD(a + j), LD(b + j)), c.q));
    for (; j < p->n; j++)
        r[j] = mq_add(a[j], b[j], p->q);
}

static void sub_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) /* a + q - b in (0, 2q) */
        ST(r + j, csub(_mm512_sub_epi64(_mm512_add_epi64(LD(a + j), c.q), LD(b + j)), c.q));
    for (; j < p->n; j++)
        r[j] = mq_sub(a[j], b[j], p->q);
}

static void neg_avx512(uint64_t *r, const uint64_t *a, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) /* q - a in (0, q]; q itself (a = 0) maps to 0 */
        ST(r + j, csub(_mm512_sub_epi64(c.q, LD(a + j)), c.q));
    for (; j < p->n; j++)
        r[j] = mq_neg(a[j], p->q);
}

/* Barrett for x = hi*2^52 + lo < 2^(2b), b = bits(q) <= 50, mu = floor(2^(2b) / q) < 2^(b+1):
 * c1 = floor(x / 2^(b-1)) < 2^(b+1), qhat = floor(c1 * mu / 2^(b+1)). The two floors and the
 * truncated mu lose less than 2 in total (2^(b-1)/q < 1 and x/2^(2b) < 1), so
 * floor(x/q) - 2 <= qhat <= x/q and r = x - qhat*q < 3q < 2^52: two conditional subtractions. */
typedef struct {
    __m512i mu;
    unsigned b;
} vbarrett;

static inline vbarrett vbarrett_make(const ring_prime *p)
{
    vbarrett br;
    br.b = p->mod.bits;
    br.mu = _mm512_set1_epi64((long long)(uint64_t)(((mq_u128)1 << (2 * br.b)) / p->q));
    return br;
}

static inline __m512i barrett(__m512i hi, __m512i lo, const vbarrett *br, const vconst *c)
{
    __m512i c1 = _mm512_or_si512(_mm512_slli_epi64(hi, 53 - br->b), _mm512_srli_epi64(lo, br->b - 1));
    __m512i plo = _mm512_madd52lo_epu64(c->zero, c1, br->mu);
    __m512i phi = _mm512_madd52hi_epu64(c->zero, c1, br->mu);
    __m512i qhat = _mm512_or_si512(_mm512_slli_epi64(phi, 52 - (br->b + 1)),
                                   _mm512_srli_epi64(plo, br->b + 1));
    __m512i r = _mm512_and_si512(_mm512_madd52lo_epu64(lo, qhat, c->negq), c->mask);
    return csub(csub(r, c->q), c->q);
}

static void mul_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    const vbarrett br = vbarrett_make(p);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) {
        __m512i va = LD(a + j), vb = LD(b + j);
        __m512i lo = _mm512_madd52lo_epu64(c.zero, va, vb);
        __m512i hi = _mm512_madd52hi_epu64(c.zero, va, vb);
        ST(r + j, barrett(hi, lo, &br, &c));
    }
    for (; j < p->n; j++)
        r[j] = mq_mul(a[j], b[j], &p->mod);
}

/* x = r + a*b <= (q-1) + (q-1)^2 < 2^(2b). lo52(a*b) + r < 2^53: its carry goes into hi. */
static void muladd_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    const vbarrett br = vbarrett_make(p);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) {
        __m512i va = LD(a + j), vb = LD(b + j);
        __m512i lo = _mm512_madd52lo_epu64(LD(r + j), va, vb);
        __m512i hi = _mm512_madd52hi_epu64(_mm512_srli_epi64(lo, 52), va, vb);
        ST(r + j, barrett(hi, _mm512_and_si512(lo, c.mask), &br, &c));
    }
    for (; j < p->n; j++)
        r[j] = mq_reduce128((mq_u128)a[j] * b[j] + r[j], &p->mod);
}

static void mul_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    const __m512i vw = _mm512_set1_epi64((long long)w);
    const __m512i vws = _mm512_set1_epi64((long long)(uint64_t)(((mq_u128)w << 52) / p->q));
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8)
        ST(r + j, csub(shoup_lazy(LD(a + j), vw, vws, &c), c.q));
    const uint64_t ws = mq_shoup(w, p->q);
    for (; j < p->n; j++)
        r[j] = mq_mul_shoup(a[j], w, ws, p->q);
}

/* r + w*a: the lazy product is < 2q, the sum < 3q. */
static void muladd_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    const __m512i vw = _mm512_set1_epi64((long long)w);
    const __m512i vws = _mm512_set1_epi64((long long)(uint64_t)(((mq_u128)w << 52) / p->q));
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) {
        __m512i s = _mm512_add_epi64(LD(r + j), shoup_lazy(LD(a + j), vw, vws, &c));
        ST(r + j, csub(csub(s, c.q2), c.q));
    }
    const uint64_t ws = mq_shoup(w, p->q);
    for (; j < p->n; j++)
        r[j] = mq_add(r[j], mq_mul_shoup(a[j], w, ws, p->q), p->q);
}

/* Centered lift from `from` (q_f < 2^50) then reduction mod q_t: y = |centered x| < 2^49,
 * y mod q_t by Barrett with mu = floor(2^52 / q_t) (quotient estimate short by < 2, so the
 * remainder is < 2q_t before one conditional subtraction), negated where x stood for x - q_f. */
static void extend_single_avx512(uint64_t *r, const uint64_t *a, const ring_prime *from,
                                 const ring_prime *to)
{
    if (from->q >= ((uint64_t)1 << RING_IFMA_MAX_BITS) || from->n < 8) {
        ring_extend_single_portable(r, a, from, to);
        return;
    }
    const vconst c = vconst_make(to->q);
    const __m512i vqf = _mm512_set1_epi64((long long)from->q);
    const __m512i half = _mm512_set1_epi64((long long)(from->q >> 1));
    const __m512i mu = _mm512_set1_epi64((long long)(uint64_t)(((uint64_t)1 << 52) / to->q));
    for (size_t j = 0; j < from->n; j += 8) {
        __m512i x = LD(a + j);
        __mmask8 neg = _mm512_cmpgt_epu64_mask(x, half);
        __m512i y = _mm512_mask_sub_epi64(x, neg, vqf, x);
        __m512i qh = _mm512_madd52hi_epu64(c.zero, y, mu);
        __m512i t = csub(_mm512_and_si512(_mm512_madd52lo_epu64(y, qh, c.negq), c.mask), c.q);
        ST(r + j, csub(_mm512_mask_sub_epi64(t, neg, c.q, t), c.q));
    }
}

const ring_kernels ring_kernels_avx512 = {
    .name = "avx512ifma",
    .impl = RING_IMPL_AVX512,
    .ntt_forward = ntt_forward_avx512,
    .ntt_inverse = ntt_inverse_avx512,
    .add = add_avx512,
    .sub = sub_avx512,
    .neg = neg_avx512,
    .mul = mul_avx512,
    .muladd = muladd_avx512,
    .mul_scalar = mul_scalar_avx512,
    .extend_single = extend_single_avx512,
    .muladd_scalar = muladd_scalar_avx512,
};
