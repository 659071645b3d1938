/* Helpers shared by the ring tests (test_ntt.c, test_pointwise.c). */
#ifndef PPNN_RINGTEST_H
#define PPNN_RINGTEST_H

#include <stdlib.h>

#include "ppnn/ring.h"
#include "testrng.h"
#include "testutil.h"

static const ring_impl rt_impls[] = {RING_IMPL_PORTABLE, RING_IMPL_AVX512, RING_IMPL_AVX512DQ};
#define RT_NIMPLS (sizeof rt_impls / sizeof rt_impls[0])

/* 1 if implementation impl can run prime q on this CPU (AVX-512 F/DQ/VL/BW detected the same
 * way as the library: the F/DQ table is usable whenever the IFMA one is). */
static inline int impl_available(ring_impl impl, uint64_t q)
{
    if (impl == RING_IMPL_AVX512)
        return ring_cpu_has_avx512ifma() && q < ((uint64_t)1 << RING_IFMA_MAX_BITS);
    if (impl == RING_IMPL_AVX512DQ)
        return ring_best_impl(q) != RING_IMPL_PORTABLE;
    return 1;
}

/* Initialise p with impl, or return 0 when that implementation cannot run q on this CPU. */
static inline int init_impl(ring_prime *p, uint64_t q, unsigned logn, ring_impl impl)
{
    if (!impl_available(impl, q))
        return 0;
    ppnn_status st = ring_prime_init_impl(p, q, logn, impl);
    CHECK_OK(st);
    if (st == PPNN_OK)
        CHECK(p->kern->impl == impl);
    return st == PPNN_OK;
}

static inline uint64_t first_prime(unsigned bits, unsigned logn)
{
    uint64_t q = 0;
    CHECK_OK(mq_find_ntt_primes(&q, 1, bits, (uint64_t)2 << logn, NULL, 0));
    return q;
}

static inline uint64_t *alloc_words(size_t n)
{
    uint64_t *a = malloc(n * sizeof *a);
    if (!a)
        abort();
    return a;
}

static inline void random_poly(uint64_t *a, size_t n, uint64_t q, uint64_t *s)
{
    for (size_t j = 0; j < n; j++)
        a[j] = trng_mod(s, q);
}

#endif
