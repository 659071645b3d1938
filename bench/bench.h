/* Micro-benchmarks callable from `ppnn bench` (the bench directory is compiled into ppnn). */
#ifndef PPNN_BENCH_H
#define PPNN_BENCH_H

#include <stddef.h>

/* Median single-thread microseconds of one forward negacyclic NTT of size N = 2^logn with one
 * NTT prime of `bits` bits (the largest such prime, q = 1 mod 2N), using implementation `impl`
 * (a ring_impl value: 0 auto, 1 portable, 2 AVX-512 IFMA, 3 AVX-512 F/DQ without IFMA).
 * Returns a negative value when the parameters are invalid or the implementation is not
 * available on this CPU / for this prime (the reason is in ppnn_last_error()). */
double bench_ntt_us(int logn, int bits, int impl);
/* Same for the inverse NTT. */
double bench_intt_us(int logn, int bits, int impl);

/* Median of v[0..n) (n >= 1); sorts v in place. */
double bench_median(double *v, size_t n);

#endif
