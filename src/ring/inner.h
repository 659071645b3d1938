/* ring layer internals: kernel tables shared between ntt.c and the implementation files. */
#ifndef PPNN_RING_INNER_H
#define PPNN_RING_INNER_H

#include "ppnn/ring.h"

/* Portable C kernels (ntt.c, pointwise.c). */
extern const ring_kernels ring_kernels_portable;
/* AVX-512 IFMA kernels (ntt_avx512.c, compiled with -mavx512*): only select after
 * ring_cpu_has_avx512ifma() and for q < 2^RING_IFMA_MAX_BITS. */
extern const ring_kernels ring_kernels_avx512;

/* AVX-512 F/DQ kernels without IFMA (ntt_avx512.c, pointwise_avx512.c: 64-bit Shoup via
 * 32-bit multiplies; any q < 2^61; general products stay portable): for CPUs with AVX-512 but
 * no IFMA and for primes of 50 bits and more. Only select after ring_cpu_has_avx512dq() (ring.h). */
extern const ring_kernels ring_kernels_avx512dq;

/* Portable kernels, exposed for the AVX-512 tables (fallbacks for small N, wide primes). */
void ring_ntt_forward_portable(uint64_t *a, const ring_prime *p);
void ring_ntt_inverse_portable(uint64_t *a, const ring_prime *p);
void ring_add_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_sub_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_neg_portable(uint64_t *r, const uint64_t *a, const ring_prime *p);
void ring_mul_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_muladd_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void ring_mul_scalar_portable(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
void ring_muladd_scalar_portable(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
void ring_sub_mul_scalar_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                                  const ring_prime *p);
void ring_extend_single_portable(uint64_t *r, const uint64_t *a, const ring_prime *from,
                                 const ring_prime *to);

/* Uniform sampler (sample.c): accepts the candidates of `groups` groups of 8 (width 4, 5 or 8
 * bytes each, little-endian, masked to the prime's bits) that are < q into dst in order and
 * returns how many; dst has room for 8·groups values; chunk has 64 readable bytes from every
 * group start. Width 5 needs AVX512-VBMI (sample_avx512.c). */
size_t _ring_accept_avx512(uint64_t *dst, const uint8_t *chunk, size_t groups, size_t width,
                           uint64_t mask, uint64_t q);
/* ring_sample_uniform_prg with the vector acceptance (avx = 1, where the CPU has it) or the
 * scalar loop (0): the same values (tests compare them). */
void _ring_sample_uniform_impl(uint64_t *r, const ring_context *ctx, size_t nprimes, ring_prg *g,
                               int avx);
int _ring_uniform_vector_ok(size_t width);
/* Centered binomial values of `groups` groups of 8 eight-byte words (sample_avx512.c; needs
 * AVX512-VPOPCNTDQ); _ring_sample_cbd_impl: ring_sample_cbd with it (avx = 1, where the CPU has
 * it) or the scalar loop (0), the same values. */
void _ring_cbd_avx512(int64_t *e, const uint8_t *chunk, size_t groups);
void _ring_sample_cbd_impl(int64_t *e, size_t n, ring_prg *g, int avx);

#endif
