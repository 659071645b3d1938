/* ring pointwise kernels (add, sub, neg, mul, muladd, scalar mul / muladd, (a - b) * w) of every
 * implementation vs the scalar modq reference, at N = 4 (scalar tails only) up to 8192, and
 * for primes of 20..60 bits; aliasing r == a. Equality with the reference for both the portable
 * and the AVX-512 tables is the bit-identity guarantee. */
#include <string.h>

#include "ringtest.h"

static uint64_t *words(size_t n, uint64_t q, uint64_t *s)
{
    uint64_t *a = alloc_words(n);
    random_poly(a, n, q, s);
    return a;
}

static void test_pointwise(void)
{
    uint64_t s = 23;
    static const unsigned logns[] = {2, 3, 6, 13};
    static const unsigned bits[] = {20, 30, 36, 45, 49, 50, 55, 60};
    for (size_t li = 0; li < sizeof logns / sizeof logns[0]; li++) {
        const unsigned logn = logns[li];
        const size_t n = (size_t)1 << logn;
        for (size_t bi = 0; bi < sizeof bits / sizeof bits[0]; bi++) {
            uint64_t q = first_prime(bits[bi], logn);
            for (size_t ii = 0; ii < RT_NIMPLS; ii++) {
                ring_prime p;
                if (!init_impl(&p, q, logn, rt_impls[ii]))
                    continue;
                uint64_t *a = words(n, q, &s), *b = words(n, q, &s), *acc = words(n, q, &s);
                uint64_t *r = alloc_words(n);
                const mq_modulus *m = &p.mod;
                int bad = 0;
                for (int k = 0; k < 2; k++) {
                    uint64_t w = k ? q - 1 : trng_mod(&s, q);
                    _ring_add(r, a, b, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_add(a[j], b[j], q);
                    _ring_sub(r, a, b, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_sub(a[j], b[j], q);
                    _ring_neg(r, a, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_neg(a[j], q);
                    _ring_mul(r, a, b, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_mul(a[j], b[j], m);
                    _ring_mul_scalar(r, a, w, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_mul(a[j], w, m);
                    memcpy(r, acc, n * sizeof *r);
                    _ring_muladd(r, a, b, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_add(acc[j], mq_mul(a[j], b[j], m), q);
                    memcpy(r, a, n * sizeof *r); /* r aliases a */
                    _ring_sub_mul_scalar(r, r, b, w, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_mul(mq_sub(a[j], b[j], q), w, m);
                    _ring_sub_mul_scalar(r, b, a, w, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_mul(mq_sub(b[j], a[j], q), w, m);
                    memcpy(r, acc, n * sizeof *r);
                    _ring_muladd_scalar(r, a, w, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_add(acc[j], mq_mul(a[j], w, m), q);
                    memcpy(r, a, n * sizeof *r); /* r aliases a */
                    _ring_sub(r, r, b, &p);
                    for (size_t j = 0; j < n; j++)
                        bad += r[j] != mq_sub(a[j], b[j], q);
                    for (size_t j = 0; j < n; j++) /* second round: all-extreme inputs */
                        a[j] = b[j] = acc[j] = q - 1;
                }
                CHECK_MSG(bad == 0, "N %zu q %llu %s: %d wrong", n, (unsigned long long)q,
                          p.kern->name, bad);
                free(a), free(b), free(acc), free(r);
                ring_prime_free(&p);
            }
        }
    }
}

int main(void)
{
    if (!ring_cpu_has_avx512ifma())
        printf("note: CPU lacks avx512ifma, only the portable kernels are tested\n");
    test_pointwise();
    return tu_finish("test_pointwise");
}
