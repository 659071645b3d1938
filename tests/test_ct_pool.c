/* Ciphertext buffer pool (ckks.h, ct_pool.c): buffers of a class are reused; the pool never
 * holds more than max(cap, bytes in use); given-back buffers are poisoned (CKKS_POOL_POISON);
 * attached ciphertexts take and give back their buffers through ckks_ct_prepare / _reserve /
 * _shrink / _free with their contents kept; concurrent use from OpenMP threads keeps the
 * accounting exact. The executor's use of the pool is tested in test_schedule. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"
#include "testutil.h"

#define N 64 /* ring degree of the pool's rows (no ring is needed for the raw buffers) */
#define ROW ((uint64_t)N * sizeof(uint64_t))

static ckks_ct_pool_stats stats(ckks_ct_pool *p)
{
    ckks_ct_pool_stats s;
    ckks_ct_pool_get_stats(&s, p);
    return s;
}

static int all_ones(const uint64_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] != ~(uint64_t)0)
            return 0;
    return 1;
}

/* Reuse, class rounding, poison, the cap. Uses a real ring for ciphertext shapes. */
static void attached(void)
{
    ckks_params *prm = ctu_params(6, 4, 40, 30, 40); /* N = 64, 4 primes */
    ckks_ct_pool *pool = NULL;
    CHECK_OK(ckks_ct_pool_new(&pool, prm->n, 6 * ROW * 4, CKKS_POOL_POISON));
    if (!pool)
        return;
    ckks_ciphertext a = {0}, b = {0};
    ckks_ct_attach(&a, pool);
    CHECK_OK(ckks_ct_prepare(&a, prm, 3, 2, 1.0)); /* 8 rows */
    for (size_t i = 0; i < 8 * N; i++)
        a.data[i] = i;
    ckks_ct_pool_stats s = stats(pool);
    CHECK(s.in_use == 8 * ROW && s.allocs == 1 && s.reuses == 0 && a.pool == pool);
    /* Growing to 3 components keeps the two (class 12) */
    CHECK_OK(ckks_ct_prepare(&a, prm, 3, 3, 1.0));
    CHECK(a.cap == 12 * N);
    for (size_t i = 0; i < 8 * N; i++)
        CHECK_MSG(a.data[i] == i, "word %zu lost when the buffer grew", i);
    s = stats(pool);
    CHECK(s.in_use == 12 * ROW && s.kept == 8 * ROW);
    /* A new class-8 ciphertext reuses the buffer a gave back, poisoned. */
    ckks_ct_attach(&b, pool);
    CHECK_OK(ckks_ct_reserve(&b, 8 * N - 5)); /* rounded up to 8 rows */
    CHECK(b.cap == 8 * N && all_ones(b.data, 8 * N));
    s = stats(pool);
    CHECK(s.reuses == 1 && s.allocs == 2 && s.kept == 0);
    /* Shrinking after a rescale moves a to a smaller class with its words. */
    for (size_t i = 0; i < 12 * N; i++)
        a.data[i] = 7 * i;
    CHECK_OK(ckks_rescale(&a)); /* level 2: 3 x 3 rows */
    uint64_t *before = malloc(9 * N * sizeof *before);
    memcpy(before, a.data, 9 * N * sizeof *before);
    ckks_ct_shrink(&a);
    CHECK(a.cap == 9 * N && memcmp(before, a.data, 9 * N * sizeof *before) == 0);
    free(before);
    /* Freeing detaches and gives back. */
    ckks_ct_free(&a);
    CHECK(a.pool == NULL && a.data == NULL);
    ckks_ct_free(&b);
    s = stats(pool);
    CHECK(s.in_use == 0 && s.kept <= 24 * ROW);
    /* The cap (24 rows): kept buffers of other classes are evicted before a new allocation
     * would exceed it. */
    ckks_ciphertext big = {0};
    ckks_ct_attach(&big, pool);
    CHECK_OK(ckks_ct_reserve(&big, 20 * N));
    s = stats(pool);
    CHECK_MSG(s.in_use + s.kept <= 24 * ROW && s.evictions > 0, "in use %llu + kept %llu rows",
              (unsigned long long)(s.in_use / ROW), (unsigned long long)(s.kept / ROW));
    ckks_ct_free(&big);
    ckks_ct_pool_free(pool);
    ckks_params_free(prm);
}

/* Over the cap in use: buffers given back are released until the total is under it again. */
static void over_cap(void)
{
    ckks_params *prm = ctu_params(6, 4, 40, 30, 40);
    ckks_ct_pool *pool = NULL;
    CHECK_OK(ckks_ct_pool_new(&pool, prm->n, 10 * ROW, 0));
    if (!pool)
        return;
    ckks_ciphertext c[4] = {{0}};
    for (int k = 0; k < 4; k++) {
        ckks_ct_attach(&c[k], pool);
        CHECK_OK(ckks_ct_prepare(&c[k], prm, 3, 1, 1.0)); /* 4 rows each: 16 > 10 */
    }
    for (int k = 0; k < 4; k++) {
        ckks_ct_free(&c[k]);
        ckks_ct_pool_stats s = stats(pool);
        CHECK_MSG(s.in_use + s.kept <= (s.in_use > 10 * ROW ? s.in_use : 10 * ROW),
                  "after free %d: %llu rows held", k,
                  (unsigned long long)((s.in_use + s.kept) / ROW));
    }
    CHECK(stats(pool).kept <= 10 * ROW);
    ckks_ct_pool_free(pool);
    ckks_params_free(prm);
}

/* Threads taking and giving buffers of several classes at once: the accounting stays exact and
 * two live ciphertexts never share a buffer (each writes its own tag and finds it intact). */
static void threads(void)
{
    ckks_params *prm = ctu_params(6, 4, 40, 30, 40);
    ckks_ct_pool *pool = NULL;
    /* The cap is the most the threads can hold live at once (4 threads x ciphertexts of 1, 2
     * and 3 components at up to 4 levels = 96 rows), so the peak (live + kept) must stay under
     * it: the pool may exceed its cap only by what is live (a smaller cap was exceeded under
     * ASan's scheduling when all twelve happened to be at the top level at once). */
    CHECK_OK(ckks_ct_pool_new(&pool, prm->n, 96 * ROW, CKKS_POOL_POISON));
    if (!pool)
        return;
    int bad = 0;
#pragma omp parallel num_threads(4) reduction(+ : bad)
    {
        ckks_ciphertext c[3] = {{0}};
        const uint64_t tag = (uint64_t)omp_get_thread_num() << 32;
        for (int it = 0; it < 2000; it++) {
            ckks_ciphertext *x = &c[it % 3];
            if (x->data) {
                for (size_t i = 0; i < x->size * (x->level + 1) * N; i++)
                    bad += x->data[i] != (tag | (uint64_t)it % 3);
                ckks_ct_free(x);
            }
            ckks_ct_attach(x, pool);
            if (ckks_ct_prepare(x, prm, (size_t)it % 4, 1 + (size_t)it % 3, 1.0) != PPNN_OK) {
                bad++;
                continue;
            }
            for (size_t i = 0; i < x->size * (x->level + 1) * N; i++)
                x->data[i] = tag | (uint64_t)it % 3;
        }
        for (int k = 0; k < 3; k++)
            ckks_ct_free(&c[k]);
    }
    CHECK_MSG(bad == 0, "%d words of live ciphertexts were overwritten", bad);
    ckks_ct_pool_stats s = stats(pool);
    CHECK(s.in_use == 0 && s.reuses > 0 && s.peak <= 96 * ROW);
    ckks_ct_pool_free(pool);
    ckks_params_free(prm);
}

int main(void)
{
    attached();
    over_cap();
    threads();
    return tu_finish("test_ct_pool");
}
