/* Linear-layer kernels vs a naive __int128 reference: dense and sparse (random rows, runs of
 * rows with the same inputs, conv-like sliding windows that take the banded AVX-512 tiles),
 * several shapes and moduli (tiny, just below 2^28, ~30-bit, just below 2^44 and 2^50), worst-case all-(q-1) inputs at
 * the maximum length, portable and AVX-512 paths bit-identical, 1 and 2 threads. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hnn/inner.h"
#include "ppnn/hnn.h"
#include "testutil.h"

__extension__ typedef unsigned __int128 u128;

static uint64_t seed_ctr;

/* Deterministic residues in [0, q) (or all q-1 when worst != 0). */
static void fill(uint64_t *v, size_t len, uint64_t q, int worst)
{
    unsigned char seed[randombytes_SEEDBYTES] = {0};
    memcpy(seed, &seed_ctr, sizeof seed_ctr);
    seed_ctr++;
    randombytes_buf_deterministic(v, len * sizeof *v, seed);
    for (size_t i = 0; i < len; i++)
        v[i] = worst ? q - 1 : v[i] % q;
}

typedef struct {
    size_t n_out, n_in, n;
    uint64_t *w, *bias, *xbuf, *ybuf, *ref;
    uint64_t **x, **y;
    uint32_t *row_start, *col; /* sparse only */
} problem;

static void problem_init(problem *p, size_t n_out, size_t n_in, size_t n, uint64_t q, int worst,
                         int sparse)
{
    p->n_out = n_out, p->n_in = n_in, p->n = n;
    p->xbuf = malloc(n_in * n * sizeof(uint64_t));
    p->ybuf = malloc(n_out * n * sizeof(uint64_t));
    p->ref = malloc(n_out * n * sizeof(uint64_t));
    p->bias = malloc(n_out * sizeof(uint64_t));
    p->x = malloc(n_in * sizeof *p->x);
    p->y = malloc(n_out * sizeof *p->y);
    /* Rows in reverse order so the kernels must follow the pointers, not assume a matrix. */
    for (size_t i = 0; i < n_in; i++)
        p->x[i] = p->xbuf + (n_in - 1 - i) * n;
    for (size_t o = 0; o < n_out; o++)
        p->y[o] = p->ybuf + o * n;
    fill(p->xbuf, n_in * n, q, worst);
    fill(p->bias, n_out, q, worst);
    p->row_start = p->col = NULL;
    size_t nnz = n_out * n_in;
    if (sparse) {
        p->row_start = malloc((n_out + 1) * sizeof(uint32_t));
        p->col = malloc(n_out * (n_in > 200 ? n_in : 200) * sizeof(uint32_t));
        uint64_t *len = malloc(n_out * sizeof(uint64_t));
        fill(len, n_out, n_in + 1, 0);
        uint64_t c[1];
        if (worst)
            for (size_t o = 0; o < n_out; o++)
                len[o] = n_in;
        nnz = 0;
        for (size_t o = 0; o < n_out; o++) {
            p->row_start[o] = (uint32_t)nnz;
            if (sparse >= 3 && o % 13 == 12)
                continue; /* empty row */
            if (sparse >= 3 && o % 5 != 0 && p->row_start[o - 1] < nnz) {
                /* Runs of 5 rows with the same window (a conv's channels at one position). */
                size_t prev = p->row_start[o - 1], plen = nnz - prev;
                for (size_t t = 0; t < plen; t++)
                    p->col[nnz++] = p->col[prev + t];
                continue;
            }
            if (sparse >= 3 && !(sparse == 4 && o % 11 == 10)) {
                /* A window of WIN inputs sliding with the row, as in a conv (banded tiles);
                 * with sparse == 4 every 11th row reads anywhere (wide rows between bands). */
                const size_t WIN = 100 < n_in ? 100 : n_in;
                size_t base = (o / 5) * 37 % (n_in - WIN + 1);
                for (size_t t = 0; t < len[o] % (2 * WIN); t++) {
                    fill(c, 1, WIN, 0);
                    p->col[nnz++] = (uint32_t)(base + c[0]);
                }
                continue;
            }
            if (sparse == 2 && o % 7 != 0) {
                /* Runs of 7 rows reading the same inputs (conv channels at one position). */
                size_t prev = p->row_start[o - 1], plen = nnz - prev;
                for (size_t t = 0; t < plen; t++)
                    p->col[nnz++] = p->col[prev + t];
                continue;
            }
            if (sparse == 1 && o % 8 == 0 && o > 0)
                continue; /* empty rows among random (wide) ones */
            for (size_t t = 0; t < len[o]; t++) {
                fill(c, 1, n_in, 0);
                p->col[nnz++] = (uint32_t)c[0];
            }
        }
        p->row_start[n_out] = (uint32_t)nnz;
        free(len);
    }
    p->w = malloc((nnz ? nnz : 1) * sizeof(uint64_t));
    fill(p->w, nnz, q, worst);
    for (size_t o = 0; o < n_out; o++)
        for (size_t j = 0; j < n; j++) {
            u128 acc = p->bias[o];
            if (sparse)
                for (size_t t = p->row_start[o]; t < p->row_start[o + 1]; t++)
                    acc += (u128)p->w[t] * p->x[p->col[t]][j];
            else
                for (size_t i = 0; i < n_in; i++)
                    acc += (u128)p->w[o * n_in + i] * p->x[i][j];
            p->ref[o * n + j] = (uint64_t)(acc % q);
        }
}

static void problem_free(problem *p)
{
    free(p->w), free(p->bias), free(p->xbuf), free(p->ybuf), free(p->ref);
    free(p->x), free(p->y), free(p->row_start), free(p->col);
}

static void run_case(size_t n_out, size_t n_in, size_t n, uint64_t q, int worst, int sparse)
{
    problem p;
    problem_init(&p, n_out, n_in, n, q, worst, sparse);
    hnn_modulus m;
    hnn_modulus_init(&m, q);
    const hnn_kernel kernels[2] = {HNN_KERNEL_PORTABLE, HNN_KERNEL_AVX512};
    int nk = hnn_avx512_available() ? 2 : 1;
    for (int k = 0; k < nk; k++)
        for (int threads = 1; threads <= 2; threads++)
            for (int with_bias = 0; with_bias <= 1; with_bias++) {
                memset(p.ybuf, 0xff, n_out * n * sizeof(uint64_t));
                const uint64_t *bias = with_bias ? p.bias : NULL;
                if (sparse)
                    _hnn_linear_sparse(p.y, p.row_start, p.col, p.w, bias, n_out,
                                       (const uint64_t *const *)p.x, n, &m, threads, kernels[k]);
                else
                    _hnn_linear_dense(p.y, p.w, bias, n_out, n_in, (const uint64_t *const *)p.x,
                                      n, &m, threads, kernels[k]);
                size_t bad = 0;
                for (size_t o = 0; o < n_out; o++)
                    for (size_t j = 0; j < n; j++) {
                        uint64_t want = p.ref[o * n + j];
                        if (!with_bias)
                            want = (want + q - p.bias[o]) % q;
                        bad += p.ybuf[o * n + j] != want;
                    }
                CHECK_MSG(bad == 0,
                          "%s %zux%zu n=%zu q=%llu kernel=%d threads=%d bias=%d: %zu wrong",
                          sparse ? "sparse" : "dense", n_out, n_in, n, (unsigned long long)q,
                          (int)kernels[k], threads, with_bias, bad);
            }
    problem_free(&p);
}

/* _hnn_linear_run: jobs of every kind in one call (one parallel region) give the reference
 * residues: banded sparse rows, sparse rows with wide rows between bands, random sparse rows,
 * dense, and dense accumulating into y in place (y0 = y), each with its own modulus; window
 * inputs that no row reads are NULL (the executor's contract), lanes end in a short block. */
static void test_run_jobs(void)
{
    enum { NJ = 5 };
    const size_t n = 160;
    const uint64_t qs[NJ] = {(1ull << 50) - 27, 1073479681ull, 65537, (1ull << 50) - 27, 3};
    const int kinds[NJ] = {3, 4, 1, 0, 0}; /* problem_init's sparse argument */
    const size_t shapes[NJ][2] = {{97, 700}, {40, 2500}, {30, 50}, {13, 60}, {7, 845}};
    problem p[NJ];
    hnn_modulus m[NJ];
    uint64_t *start[NJ];
    const uint64_t **xs[NJ];
    size_t nulls = 0;
    for (int j = 0; j < NJ; j++) {
        problem_init(&p[j], shapes[j][0], shapes[j][1], n, qs[j], 0, kinds[j]);
        hnn_modulus_init(&m[j], qs[j]);
        xs[j] = malloc(p[j].n_in * sizeof *xs[j]);
        for (size_t i = 0; i < p[j].n_in; i++)
            xs[j][i] = kinds[j] ? NULL : p[j].x[i];
        for (size_t t = 0; kinds[j] && t < p[j].row_start[p[j].n_out]; t++)
            xs[j][p[j].col[t]] = p[j].x[p[j].col[t]];
        for (size_t i = 0; i < p[j].n_in; i++)
            nulls += xs[j][i] == NULL;
        start[j] = malloc(p[j].n_out * n * sizeof *start[j]);
        fill(start[j], p[j].n_out * n, qs[j], 0);
    }
    CHECK(nulls > 0);
    const hnn_kernel kernels[2] = {HNN_KERNEL_PORTABLE, HNN_KERNEL_AVX512};
    for (int k = 0; k < (hnn_avx512_available() ? 2 : 1); k++)
        for (int threads = 1; threads <= 2; threads++) {
            hnn_linear_job jobs[NJ];
            for (int j = 0; j < NJ; j++) {
                const int acc = j == NJ - 1; /* the last job accumulates in place */
                memcpy(p[j].ybuf, start[j], p[j].n_out * n * sizeof(uint64_t));
                if (!acc)
                    memset(p[j].ybuf, 0xff, p[j].n_out * n * sizeof(uint64_t));
                hnn_tile_args a = {p[j].y, p[j].w, p[j].row_start, p[j].col,
                                   acc ? NULL : p[j].bias, kinds[j] ? 0 : p[j].n_in,
                                   (const uint64_t *const *)xs[j], &m[j],
                                   acc ? (const uint64_t *const *)p[j].y : NULL};
                jobs[j] = (hnn_linear_job){a, p[j].n_out};
            }
            _hnn_linear_run(jobs, NJ, n, threads, kernels[k]);
            for (int j = 0; j < NJ; j++) {
                const int acc = j == NJ - 1;
                size_t bad = 0;
                for (size_t o = 0; o < p[j].n_out; o++)
                    for (size_t c = 0; c < n; c++) {
                        uint64_t want = p[j].ref[o * n + c];
                        if (acc)
                            want = (want + qs[j] - p[j].bias[o] + start[j][o * n + c]) % qs[j];
                        bad += p[j].ybuf[o * n + c] != want;
                    }
                CHECK_MSG(bad == 0, "run jobs: job %d kernel=%d threads=%d: %zu wrong", j,
                          (int)kernels[k], threads, bad);
            }
        }
    for (int j = 0; j < NJ; j++) {
        problem_free(&p[j]);
        free(start[j]), free((void *)xs[j]);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const uint64_t qs[4] = {3, 1073479681ull /* 30-bit NTT prime */,
                            (1ull << 50) - 27 /* largest prime < 2^50 */, 65537};
    const size_t shapes[8][3] = {{1, 1, 16}, {5, 7, 48}, {13, 60, 256}, {4, 3, 40}, {3, 9, 13},
                                 {7, 130, 160}, {100, 845, 64}, {251, 20, 160}};
    /* sparse: 0 = dense, 1 = random rows, 2 = runs of rows with the same inputs */
    for (int s = 0; s < 8; s++)
        for (int qi = 0; qi < 4; qi++)
            for (int sparse = 0; sparse <= 2; sparse++)
                run_case(shapes[s][0], shapes[s][1], shapes[s][2], qs[qi], 0, sparse);
    /* Worst case for the lazy-reduction bounds: every value q-1 with q just below 2^50, at the
     * longest accepted dot product (several LO normalisations, the largest HI). */
    size_t max_in = tu_reduced() ? 5000 : HNN_LINEAR_MAX_TERMS;
    run_case(3, max_in, 32, qs[2], 1, 0);
    run_case(2, max_in, 32, qs[2], 1, 1);
    run_case(9, max_in, 32, qs[2], 1, 2);
    /* The same just below the AVX-512 kernel's small-prime bound (q < 2^44: its reduction
     * drops the 2^104 term), where the high accumulator word is largest. */
    const uint64_t q44 = (1ull << 44) - 17; /* largest prime < 2^44 */
    run_case(3, max_in, 32, q44, 1, 0);
    run_case(9, max_in, 32, q44, 1, 2);
    run_case(6, 120, 96, q44, 1, 3);
    /* And just below the 32-bit multiply path's bound (q < 2^28: one 64-bit accumulator per
     * lane, folded after every block of IB products): every value q-1, the longest dot
     * product (many folds), dense, runs of rows, banded windows; random values too. */
    const uint64_t q28 = (1ull << 28) - 57; /* largest prime < 2^28 */
    run_case(7, max_in, 32, q28, 1, 0);
    run_case(9, max_in, 32, q28, 1, 2);
    run_case(6, 120, 96, q28, 1, 3);
    run_case(100, 845, 64, q28, 0, 0);
    run_case(97, 700, 160, q28, 0, 3);
    run_case(5, 4096, 64, qs[2], 0, 0);
    /* Banded sparse tiles (AVX-512): sliding windows over many inputs -> many bands, several
     * lane blocks of 256 and 512 lanes, a final short lane block, empty rows, runs; with wide
     * rows between the bands (sparse == 4) the widest row forces 32-lane tiles. Windows of up
     * to 2·WIN = 200 terms cross the IB term blocks. */
    for (int sparse = 3; sparse <= 4; sparse++) {
        run_case(260, 3000, 1024, qs[2], 0, sparse);
        run_case(97, 700, 160, qs[1], 0, sparse);
        run_case(40, 2500, 1536, qs[3], 0, sparse);
    }
    run_case(6, 120, 96, qs[2], 1, 3);
    /* More than HNN_TILE_OUT consecutive wide rows (random over 3000 inputs) and empty rows:
     * the wide bands must stay within one tile's accumulators. */
    run_case(300, 3000, 64, qs[2], 1, 1);
    test_run_jobs();
    return tu_finish("test_linear");
}
