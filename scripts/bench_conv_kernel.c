/* Micro-benchmark of the sparse linear kernel on the CryptoNets conv (28x28 -> 5x5/2 pad 1 ->
 * 13x13x5, 20480 terms, rows position-major as the planner emits them) over N coefficients of
 * one prime < 2^50, every input and output its own allocation like the ciphertexts' rows.
 * Reports the calling thread's CPU time (median of R runs), so figures stay comparable on a
 * loaded machine: use 1 thread. Not part of the build:
 *   gcc -O2 -fopenmp -Iinclude -Isrc scripts/bench_conv_kernel.c build/libppnn.a -lsodium -lm \
 *       -o /tmp/bench_conv_kernel && /tmp/bench_conv_kernel 8192 1 9
 * Arguments: N (default 8192), threads (1), runs (9), kernel (0 auto, 1 portable, 2 AVX-512). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ppnn/hnn.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 8192;
    const int threads = argc > 2 ? atoi(argv[2]) : 1;
    const int runs = argc > 3 ? atoi(argv[3]) : 9;
    const hnn_kernel kernel = argc > 4 ? (hnn_kernel)atoi(argv[4]) : HNN_KERNEL_AUTO;
    const uint64_t q = (1ull << 50) - 27;
    const size_t n_in = 784, n_out = 845;
    if (n == 0 || runs < 1 || runs > 99)
        return 1;
    uint32_t *rs = malloc((n_out + 1) * sizeof *rs), *col = malloc(n_out * 25 * sizeof *col);
    uint64_t *w = malloc(n_out * 25 * sizeof *w);
    const uint64_t **x = malloc(n_in * sizeof *x);
    uint64_t **y = malloc(n_out * sizeof *y);
    if (!rs || !col || !w || !x || !y)
        return 1;
    size_t nnz = 0, r = 0;
    for (long pos = 0; pos < 169; pos++)
        for (int oc = 0; oc < 5; oc++, r++) {
            rs[r] = (uint32_t)nnz;
            for (long ki = 0; ki < 5; ki++)
                for (long kj = 0; kj < 5; kj++) {
                    long iy = pos / 13 * 2 + ki - 1, ix = pos % 13 * 2 + kj - 1;
                    if (iy >= 0 && iy < 28 && ix >= 0 && ix < 28)
                        col[nnz++] = (uint32_t)(iy * 28 + ix);
                }
        }
    rs[r] = (uint32_t)nnz;
    for (size_t i = 0; i < nnz; i++) /* any residues exercise the same instructions */
        w[i] = (i * 0xD1B54A32D192ED03ull + 7) % q;
    for (size_t i = 0; i < n_in; i++) {
        uint64_t *b = malloc(n * sizeof *b);
        if (!b)
            return 1;
        for (size_t j = 0; j < n; j++)
            b[j] = (j * 0x9E3779B97F4A7C15ull + i) % q;
        x[i] = b;
    }
    for (size_t o = 0; o < n_out; o++)
        if (!(y[o] = calloc(n, sizeof **y)))
            return 1;
    hnn_modulus m;
    hnn_modulus_init(&m, q);
    double t[99];
    for (int i = 0; i < runs; i++) {
        double t0 = cpu_now();
        _hnn_linear_sparse(y, rs, col, w, NULL, n_out, x, n, &m, threads, kernel);
        t[i] = cpu_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    uint64_t h = 0; /* a digest of the outputs: equal across kernels and versions */
    for (size_t o = 0; o < n_out; o++)
        for (size_t j = 0; j < n; j++)
            h = h * 31 + y[o][j];
    printf("conv kernel: %zu terms x N = %zu, %d thread(s): median %.4f s CPU, %.2f G MAC/s, "
           "digest %016llx\n", nnz, n, threads, t[runs / 2],
           (double)nnz * (double)n / t[runs / 2] / 1e9, (unsigned long long)h);
    return 0;
}
