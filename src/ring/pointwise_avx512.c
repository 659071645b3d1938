/* AVX-512 IFMA pointwise kernels on one prime: add, sub, neg, mul, muladd, scalar multiply
 * (and accumulate), single-prime basis extension. Bounds: see avx512_inner.h. */
#include "avx512_inner.h"

/* 8 lanes at a time, scalar tail for N = 4. */
void ring_add_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8)
        ST(r + j, csub(_mm512_add_epi64(LD(a + j), LD(b + j)), c.q));
    for (; j < p->n; j++)
        r[j] = mq_add(a[j], b[j], p->q);
}

void ring_sub_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const vconst c = vconst_make(p->q);
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) /* a + q - b in (0, 2q) */
        ST(r + j, csub(_mm512_sub_epi64(_mm512_add_epi64(LD(a + j), c.q), LD(b + j)), c.q));
    for (; j < p->n; j++)
        r[j] = mq_sub(a[j], b[j], p->q);
}

void ring_neg_avx512(uint64_t *r, const uint64_t *a, const ring_prime *p)
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

void ring_mul_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
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
void ring_muladd_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
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

/* r = w*a (acc = 0), r + w*a (acc = 1) or w*(a - b) (b != NULL, acc = 0): the lazy product is
 * < 2q, the sum < 3q; a + q - b < 2q < 2^51 is a valid input of either Shoup flavour.
 * wide selects 64-bit Shoup (F/DQ only, any q < 2^61) instead of 52-bit IFMA Shoup. */
static inline __attribute__((always_inline)) void
scalar_kernel(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w, const ring_prime *p,
              int wide, int acc)
{
    vconst c = vconst_make(p->q);
    c.wide = wide;
    const __m512i vw = _mm512_set1_epi64((long long)w);
    const uint64_t ws = mq_shoup(w, p->q);
    const __m512i vws =
        _mm512_set1_epi64((long long)(wide ? ws : (uint64_t)(((mq_u128)w << 52) / p->q)));
    size_t j = 0;
    for (; j + 8 <= p->n; j += 8) {
        __m512i x = LD(a + j);
        if (b)
            x = _mm512_sub_epi64(_mm512_add_epi64(x, c.q), LD(b + j));
        __m512i t = mulmod_lazy(x, vw, vws, &c);
        if (acc)
            ST(r + j, csub(csub(_mm512_add_epi64(LD(r + j), t), c.q2), c.q));
        else
            ST(r + j, csub(t, c.q));
    }
    for (; j < p->n; j++) {
        uint64_t t = mq_mul_shoup(b ? a[j] + p->q - b[j] : a[j], w, ws, p->q);
        r[j] = acc ? mq_add(r[j], t, p->q) : t;
    }
}

void ring_mul_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    scalar_kernel(r, a, NULL, w, p, 0, 0);
}

void ring_muladd_scalar_avx512(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    scalar_kernel(r, a, NULL, w, p, 0, 1);
}

void ring_mul_scalar_avx512dq(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    scalar_kernel(r, a, NULL, w, p, 1, 0);
}

void ring_muladd_scalar_avx512dq(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    scalar_kernel(r, a, NULL, w, p, 1, 1);
}

void ring_sub_mul_scalar_avx512(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                                const ring_prime *p)
{
    scalar_kernel(r, a, b, w, p, 0, 0);
}

void ring_sub_mul_scalar_avx512dq(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                                  const ring_prime *p)
{
    scalar_kernel(r, a, b, w, p, 1, 0);
}

/* Centered lift from `from` (q_f < 2^50) then reduction mod q_t: y = |centered x| < 2^49,
 * y mod q_t by Barrett with mu = floor(2^52 / q_t) (quotient estimate short by < 2, so the
 * remainder is < 2q_t before one conditional subtraction), negated where x stood for x - q_f. */
void ring_extend_single_avx512(uint64_t *r, const uint64_t *a, const ring_prime *from,
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
