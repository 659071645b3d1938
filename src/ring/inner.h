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

#endif
