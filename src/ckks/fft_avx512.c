/* AVX-512 butterflies of the special FFT (fft.c; called only where ckks_fft.avx512). A vector
 * holds 4 complex doubles, interleaved (re, im) as in memory. Every product is computed as C's
 * (ac − bd) + (ad + bc)i, with separate multiplies and adds (no FMA), so the results are
 * bit-identical to the portable butterflies (tests/test_ckks_encoder.c checks it). Stages with
 * lenh >= 4 load u and x directly; lenh = 2 and 1 regroup two or four butterfly groups per
 * vector pair with 128-bit lane shuffles. */
#include <immintrin.h>

#include "ckks/inner.h"

/* The products must not be contracted into FMAs (that would change the rounding). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* x·w for 4 complex numbers: t1 = (a c, b c), t2 = (b d, a d); re = t1 − t2, im = t1 + t2. */
static inline __m512d cmul4(__m512d x, __m512d w)
{
    __m512d c = _mm512_movedup_pd(w);         /* (c, c) per complex */
    __m512d d = _mm512_permute_pd(w, 0xff);   /* (d, d) */
    __m512d xs = _mm512_permute_pd(x, 0x55);  /* (b, a) */
    __m512d t1 = _mm512_mul_pd(x, c), t2 = _mm512_mul_pd(xs, d);
    return _mm512_mask_sub_pd(_mm512_add_pd(t1, t2), 0x55, t1, t2);
}

static inline __m512d ld(const double complex *p) { return _mm512_loadu_pd((const double *)p); }
static inline void st(double complex *p, __m512d v) { _mm512_storeu_pd((double *)p, v); }

/* The twiddles of a lenh = 2 stage as (tw0, tw1, tw0, tw1), of lenh = 1 as tw0 four times. */
static inline __m512d tw_lenh2(const double complex *tw)
{
    __m256d t = _mm256_loadu_pd((const double *)tw);
    return _mm512_insertf64x4(_mm512_castpd256_pd512(t), t, 1);
}

static inline __m512d tw_lenh1(const double complex *tw)
{
    return _mm512_broadcast_f64x2(_mm_loadu_pd((const double *)tw));
}

/* Regrouping: A, B hold consecutive groups; U gets their u halves, X their x halves (lane
 * selectors: lenh 2 — groups [u0 u1 x0 x1]; lenh 1 — groups [u x], two per vector). */
#define U2 0x44 /* A.l0 A.l1 B.l0 B.l1 */
#define X2 0xee /* A.l2 A.l3 B.l2 B.l3 */
#define U1 0x88 /* A.l0 A.l2 B.l0 B.l2 */
#define X1 0xdd /* A.l1 A.l3 B.l1 B.l3 */
#define ILV 0xd8 /* (l0 l1 l2 l3) -> (l0 l2 l1 l3) */

/* Stores butterfly results U, X back in the groups' order. */
static inline void put_groups(double complex *p, __m512d u, __m512d x, size_t lenh)
{
    __m512d a = _mm512_shuffle_f64x2(u, x, U2), b = _mm512_shuffle_f64x2(u, x, X2);
    if (lenh == 1) /* [u0 u1 x0 x1] -> [u0 x0 u1 x1] */
        a = _mm512_shuffle_f64x2(a, a, ILV), b = _mm512_shuffle_f64x2(b, b, ILV);
    st(p, a);
    st(p + 4, b);
}

void _ckks_fft_stage_fwd_avx512(double complex *v, const double complex *tw, size_t slots,
                                size_t lenh)
{
    if (lenh >= 4) {
        for (size_t i = 0; i < slots; i += 2 * lenh)
            for (size_t j = 0; j < lenh; j += 4) {
                __m512d u = ld(v + i + j), w = cmul4(ld(v + i + j + lenh), ld(tw + j));
                st(v + i + j, _mm512_add_pd(u, w));
                st(v + i + j + lenh, _mm512_sub_pd(u, w));
            }
        return;
    }
    const __m512d t = lenh == 2 ? tw_lenh2(tw) : tw_lenh1(tw);
    for (size_t i = 0; i < slots; i += 8) {
        __m512d a = ld(v + i), b = ld(v + i + 4), u, x;
        switch (lenh) { /* immediates must be constants */
        case 2: u = _mm512_shuffle_f64x2(a, b, U2), x = _mm512_shuffle_f64x2(a, b, X2); break;
        default: u = _mm512_shuffle_f64x2(a, b, U1), x = _mm512_shuffle_f64x2(a, b, X1); break;
        }
        __m512d w = cmul4(x, t);
        put_groups(v + i, _mm512_add_pd(u, w), _mm512_sub_pd(u, w), lenh);
    }
}

void _ckks_fft_stage_inv_avx512(double complex *v, const double complex *tw, size_t slots,
                                size_t lenh)
{
    if (lenh >= 4) {
        for (size_t i = 0; i < slots; i += 2 * lenh)
            for (size_t j = 0; j < lenh; j += 4) {
                __m512d a = ld(v + i + j), b = ld(v + i + j + lenh);
                st(v + i + j, _mm512_add_pd(a, b));
                st(v + i + j + lenh, cmul4(_mm512_sub_pd(a, b), ld(tw + j)));
            }
        return;
    }
    const __m512d t = lenh == 2 ? tw_lenh2(tw) : tw_lenh1(tw);
    for (size_t i = 0; i < slots; i += 8) {
        __m512d a = ld(v + i), b = ld(v + i + 4), u, x;
        switch (lenh) {
        case 2: u = _mm512_shuffle_f64x2(a, b, U2), x = _mm512_shuffle_f64x2(a, b, X2); break;
        default: u = _mm512_shuffle_f64x2(a, b, U1), x = _mm512_shuffle_f64x2(a, b, X1); break;
        }
        put_groups(v + i, _mm512_add_pd(u, x), cmul4(_mm512_sub_pd(u, x), t), lenh);
    }
}

void _ckks_fft_scale_avx512(double complex *v, size_t slots, double s)
{
    const __m512d k = _mm512_set1_pd(s);
    for (size_t i = 0; i < slots; i += 4)
        st(v + i, _mm512_mul_pd(ld(v + i), k));
}
