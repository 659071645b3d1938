/* AVX-512 acceptance step of the uniform sampler (sample.c): 8 candidates per step, in order,
 * exactly the scalar loop's accepted values. Called only after ring_cpu_has_avx512dq() (and,
 * for 5-byte candidates, AVX512-VBMI). */
#include <immintrin.h>

#include "inner.h"

/* Candidates k = 0..7 of the group at p as 64-bit lanes (masked) and the lanes below q. */
static inline size_t accept8(uint64_t *dst, __m512i x, __m512i mask, __m512i q)
{
    x = _mm512_and_si512(x, mask);
    const __mmask8 ok = _mm512_cmplt_epu64_mask(x, q);
    const unsigned cnt = (unsigned)__builtin_popcount(ok);
    _mm512_mask_storeu_epi64(dst, (__mmask8)((1u << cnt) - 1), _mm512_maskz_compress_epi64(ok, x));
    return cnt;
}

__attribute__((target("avx512vbmi"))) static size_t groups5(uint64_t *dst, const uint8_t *c,
                                                            size_t groups, __m512i mask,
                                                            __m512i q)
{
    /* Lane k takes bytes 5k .. 5k+4 of the group (40 bytes), its upper 3 bytes zero. */
    static const uint8_t idx[64] = {0,  1,  2,  3,  4,  0, 0, 0, 5,  6,  7,  8,  9,  0, 0, 0,
                                    10, 11, 12, 13, 14, 0, 0, 0, 15, 16, 17, 18, 19, 0, 0, 0,
                                    20, 21, 22, 23, 24, 0, 0, 0, 25, 26, 27, 28, 29, 0, 0, 0,
                                    30, 31, 32, 33, 34, 0, 0, 0, 35, 36, 37, 38, 39, 0, 0, 0};
    const __m512i ix = _mm512_loadu_si512(idx);
    const __mmask64 keep = 0x1f1f1f1f1f1f1f1fULL;
    size_t n = 0;
    for (size_t g = 0; g < groups; g++) {
        /* 40 bytes used of a 64-byte load: the caller's chunk has the slack (sample.c). */
        __m512i raw = _mm512_loadu_si512(c + 40 * g);
        n += accept8(dst + n, _mm512_maskz_permutexvar_epi8(keep, ix, raw), mask, q);
    }
    return n;
}

size_t _ring_accept_avx512(uint64_t *dst, const uint8_t *chunk, size_t groups, size_t width,
                           uint64_t mask, uint64_t q)
{
    const __m512i m = _mm512_set1_epi64((long long)mask), qv = _mm512_set1_epi64((long long)q);
    size_t n = 0;
    switch (width) {
    case 4:
        for (size_t g = 0; g < groups; g++)
            n += accept8(dst + n,
                         _mm512_cvtepu32_epi64(_mm256_loadu_si256((const __m256i *)(chunk + 32 * g))),
                         m, qv);
        return n;
    case 5:
        return groups5(dst, chunk, groups, m, qv);
    default: /* 8 */
        for (size_t g = 0; g < groups; g++)
            n += accept8(dst + n, _mm512_loadu_si512(chunk + 64 * g), m, qv);
        return n;
    }
}

/* Centered binomial step (sample.c, ring_sample_cbd): e[k] = popcount(x & m) −
 * popcount((x >> K) & m) for the 8-byte little-endian words x of chunk, 8 per step. */
__attribute__((target("avx512vpopcntdq"))) void _ring_cbd_avx512(int64_t *e, const uint8_t *chunk,
                                                                 size_t groups)
{
    const __m512i m = _mm512_set1_epi64((long long)(((uint64_t)1 << RING_CBD_K) - 1));
    for (size_t g = 0; g < groups; g++) {
        __m512i x = _mm512_loadu_si512(chunk + 64 * g);
        __m512i a = _mm512_popcnt_epi64(_mm512_and_si512(x, m));
        __m512i b = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_srli_epi64(x, RING_CBD_K), m));
        _mm512_storeu_si512(e + 8 * g, _mm512_sub_epi64(a, b));
    }
}
