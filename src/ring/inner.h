/* ring layer internals: kernel tables shared between ntt.c and the implementation files. */
#ifndef PPNN_RING_INNER_H
#define PPNN_RING_INNER_H

#include "ppnn/ring.h"

/* Portable C kernels (ntt.c, pointwise.c). */
extern const ring_kernels ring_kernels_portable;
/* AVX-512 IFMA kernels (ntt_avx512.c, compiled with -mavx512*): only select after
 * ring_cpu_has_avx512ifma() and for q < 2^RING_IFMA_MAX_BITS. */
extern const ring_kernels ring_kernels_avx512;

/* Portable kernels, exposed so that the AVX-512 file can fall back for tails / small N. */
void ring_ntt_forward_portable(uint64_t *a, const ring_prime *p);
void ring_ntt_inverse_portable(uint64_t *a, const ring_prime *p);
void ring_extend_single_portable(uint64_t *r, const uint64_t *a, const ring_prime *from,
                                 const ring_prime *to);

#endif
