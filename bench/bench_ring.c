/* Ring-layer micro-benchmarks: median single-thread time of one NTT. */
#include "bench.h"

#include <stdlib.h>

#include "ppnn/ring.h"

/* Median over `runs` timings; each timing averages `inner` calls so that it stays well above
 * the clock resolution even at small N. */
static double bench_transform(int logn, int bits, int impl, int inverse)
{
    if (logn < RING_MIN_LOGN || logn > RING_MAX_LOGN) {
        ppnn_fail(PPNN_ERR_PARAM, "logn %d outside %d..%d", logn, RING_MIN_LOGN, RING_MAX_LOGN);
        return -1;
    }
    uint64_t q;
    ring_prime p;
    if (mq_find_ntt_primes(&q, 1, (unsigned)bits, (uint64_t)2 << logn, NULL, 0) != PPNN_OK ||
        ring_prime_init_impl(&p, q, (unsigned)logn, (ring_impl)impl) != PPNN_OK)
        return -1;
    enum { RUNS = 101 };
    size_t n = p.n;
    uint64_t *a = malloc(n * sizeof *a);
    double *t = malloc(RUNS * sizeof *t);
    if (!a || !t) {
        free(a);
        free(t);
        ring_prime_free(&p);
        ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        return -1;
    }
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t j = 0; j < n; j++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        a[j] = (x >> 11) % q;
    }
    int inner = n >= 4096 ? 4 : (int)(16384 / n);
    void (*f)(uint64_t *, const ring_prime *) = inverse ? _ring_ntt_inverse : _ring_ntt_forward;
    for (int w = 0; w < 8; w++)
        f(a, &p); /* warm caches and the branch predictor */
    for (int r = 0; r < RUNS; r++) {
        double t0 = ppnn_now();
        for (int k = 0; k < inner; k++)
            f(a, &p);
        t[r] = (ppnn_now() - t0) * 1e6 / inner;
    }
    double med = bench_median(t, RUNS);
    free(a);
    free(t);
    ring_prime_free(&p);
    return med;
}

double bench_ntt_us(int logn, int bits, int impl) { return bench_transform(logn, bits, impl, 0); }
double bench_intt_us(int logn, int bits, int impl) { return bench_transform(logn, bits, impl, 1); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}
