/* ring NTT: negacyclic products vs schoolbook, the documented NTT-domain layout, NTT o INTT = id
 * for every N, AVX-512 vs portable bit-identical transforms, table refusals. */
#include <stdlib.h>
#include <string.h>

#include "ppnn/ring.h"
#include "ringtest.h"

static int have_avx;

/* c = a * b mod (X^n + 1, q), schoolbook. */
static void schoolbook(uint64_t *c, const uint64_t *a, const uint64_t *b, size_t n,
                       const mq_modulus *m)
{
    memset(c, 0, n * sizeof *c);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            uint64_t t = mq_mul(a[i], b[j], m);
            size_t k = i + j;
            if (k < n)
                c[k] = mq_add(c[k], t, m->q);
            else
                c[k - n] = mq_sub(c[k - n], t, m->q);
        }
}

static const unsigned test_bits[] = {20, 30, 36, 45, 49, 50, 55, 60};
#define NBITS (sizeof test_bits / sizeof test_bits[0])

static void test_schoolbook(void)
{
    uint64_t s = 11;
    static const unsigned logns[] = {2, 4, 6};
    for (size_t li = 0; li < 3; li++) {
        unsigned logn = logns[li];
        size_t n = (size_t)1 << logn;
        for (size_t bi = 0; bi < NBITS; bi++) {
            uint64_t q = first_prime(test_bits[bi], logn);
            for (size_t ii = 0; ii < RT_NIMPLS; ii++) {
                ring_prime p;
                if (!init_impl(&p, q, logn, rt_impls[ii]))
                    continue;
                uint64_t *a = alloc_words(n), *b = alloc_words(n), *c = alloc_words(n),
                         *ref = alloc_words(n);
                for (int rep = 0; rep < 3; rep++) {
                    random_poly(a, n, q, &s);
                    random_poly(b, n, q, &s);
                    schoolbook(ref, a, b, n, &p.mod);
                    _ring_ntt_forward(a, &p);
                    _ring_ntt_forward(b, &p);
                    int canon = 1;
                    for (size_t j = 0; j < n; j++)
                        canon &= a[j] < q && b[j] < q;
                    CHECK(canon);
                    _ring_mul(c, a, b, &p);
                    _ring_ntt_inverse(c, &p);
                    CHECK_MSG(memcmp(c, ref, n * sizeof *c) == 0, "N=%zu q=%llu impl=%s", n,
                              (unsigned long long)q, p.kern->name);
                }
                free(a), free(b), free(c), free(ref);
                ring_prime_free(&p);
            }
        }
    }
}

static size_t brv(size_t x, unsigned bits)
{
    size_t r = 0;
    for (unsigned i = 0; i < bits; i++)
        r |= ((x >> i) & 1) << (bits - 1 - i);
    return r;
}

/* The header's layout claim: NTT(a)[k] = A(psi^(2 brv(k) + 1)). */
static void test_layout(void)
{
    const unsigned logn = 4;
    const size_t n = 16;
    ring_prime p;
    CHECK_OK(ring_prime_init_impl(&p, first_prime(30, logn), logn, RING_IMPL_PORTABLE));
    uint64_t a[16], f[16], s = 5;
    random_poly(a, n, p.q, &s);
    memcpy(f, a, sizeof a);
    _ring_ntt_forward(f, &p);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t x = mq_pow(p.psi, 2 * brv(k, logn) + 1, &p.mod), v = 0;
        for (size_t j = n; j-- > 0;)
            v = mq_add(mq_mul(v, x, &p.mod), a[j], p.q); /* Horner */
        bad += v != f[k];
    }
    CHECK(bad == 0);
    /* Constant polynomial -> constant in every slot. */
    uint64_t c[16] = {12345};
    _ring_ntt_forward(c, &p);
    for (size_t k = 0; k < n; k++)
        CHECK(c[k] == 12345);
    ring_prime_free(&p);
}

static void test_roundtrip(void)
{
    uint64_t s = 3;
    for (unsigned logn = RING_MIN_LOGN; logn <= RING_MAX_LOGN; logn++) {
        size_t n = (size_t)1 << logn;
        uint64_t *a = alloc_words(n), *b = alloc_words(n);
        static const unsigned bits[] = {30, 49, 60};
        for (size_t bi = 0; bi < 3; bi++) {
            uint64_t q = first_prime(bits[bi], logn);
            for (size_t ii = 0; ii < RT_NIMPLS; ii++) {
                ring_prime p;
                if (!init_impl(&p, q, logn, rt_impls[ii]))
                    continue;
                for (int edge = 0; edge < 2; edge++) {
                    random_poly(a, n, q, &s);
                    for (size_t j = 0; edge && j < n; j++)
                        a[j] = q - 1; /* largest inputs: widest lazy ranges */
                    memcpy(b, a, n * sizeof *a);
                    _ring_ntt_forward(b, &p);
                    int canon = 1;
                    for (size_t j = 0; j < n; j++)
                        canon &= b[j] < q;
                    _ring_ntt_inverse(b, &p);
                    CHECK_MSG(canon && memcmp(a, b, n * sizeof *a) == 0, "logn %u q %llu %s",
                              logn, (unsigned long long)q, p.kern->name);
                }
                ring_prime_free(&p);
            }
        }
        free(a), free(b);
    }
}

/* Every kernel of the AVX-512 table gives exactly the portable result. */
/* Every AVX-512 implementation gives exactly the portable transforms (incl. 55/60-bit primes
 * for the F/DQ flavour). */
static void test_avx_identical(void)
{
    if (!ring_cpu_has_avx512dq()) {
        printf("note: CPU lacks AVX-512, AVX-512 bit-identity tests skipped\n");
        return;
    }
    if (!have_avx)
        printf("note: CPU lacks avx512ifma, only the AVX-512 F/DQ NTT is compared\n");
    uint64_t s = 17;
    static const unsigned logns[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    static const unsigned bits[] = {20, 31, 42, 49, 50, 55, 60};
    for (size_t li = 0; li < sizeof logns / sizeof logns[0]; li++) {
        unsigned logn = logns[li];
        size_t n = (size_t)1 << logn;
        for (size_t bi = 0; bi < sizeof bits / sizeof bits[0]; bi++) {
            uint64_t q = first_prime(bits[bi], logn);
            ring_prime pp;
            CHECK_OK(ring_prime_init_impl(&pp, q, logn, RING_IMPL_PORTABLE));
            uint64_t *a = alloc_words(n), *r1 = alloc_words(n), *r2 = alloc_words(n);
            random_poly(a, n, q, &s);
            for (size_t ii = 1; ii < RT_NIMPLS; ii++) {
                ring_prime pa;
                if (!init_impl(&pa, q, logn, rt_impls[ii]))
                    continue;
                int bad = 0;
                for (int inv = 0; inv < 2; inv++) {
                    memcpy(r1, a, n * sizeof *a);
                    memcpy(r2, a, n * sizeof *a);
                    (inv ? _ring_ntt_inverse : _ring_ntt_forward)(r1, &pp);
                    (inv ? _ring_ntt_inverse : _ring_ntt_forward)(r2, &pa);
                    bad += memcmp(r1, r2, n * sizeof *r1) != 0;
                }
                CHECK_MSG(bad == 0, "logn %u q %llu %s: %d transforms differ", logn,
                          (unsigned long long)q, pa.kern->name, bad);
                ring_prime_free(&pa);
            }
            free(a), free(r1), free(r2);
            ring_prime_free(&pp);
        }
    }
}

/* The IFMA forward NTT skips the per-stage reduction for q < 2^46 (values grow to < 33q by
 * N = 2^16, tracked modulo 2^52): at the edge (the largest 46-bit prime, and 45/47 bits on
 * both sides of the switch), at the largest N, on inputs that maximise the growth (all q-1,
 * alternating 0 / q-1) as well as random ones, it must equal the portable transform. */
static void test_avx_growth_edges(void)
{
    if (!have_avx)
        return;
    static const unsigned logns[] = {4, 5, 13, 16}, bits[] = {45, 46, 47};
    uint64_t s = 23;
    for (size_t li = 0; li < sizeof logns / sizeof logns[0]; li++)
        for (size_t bi = 0; bi < sizeof bits / sizeof bits[0]; bi++) {
            unsigned logn = logns[li];
            size_t n = (size_t)1 << logn;
            uint64_t q = first_prime(bits[bi], logn);
            ring_prime pp, pa;
            CHECK_OK(ring_prime_init_impl(&pp, q, logn, RING_IMPL_PORTABLE));
            CHECK_OK(ring_prime_init_impl(&pa, q, logn, RING_IMPL_AVX512));
            uint64_t *a = alloc_words(n), *r1 = alloc_words(n), *r2 = alloc_words(n);
            for (int kind = 0; kind < 3; kind++) {
                if (kind == 0)
                    random_poly(a, n, q, &s);
                for (size_t j = 0; kind && j < n; j++)
                    a[j] = kind == 1 || (j & 1) ? q - 1 : 0;
                memcpy(r1, a, n * sizeof *a);
                memcpy(r2, a, n * sizeof *a);
                _ring_ntt_forward(r1, &pp);
                _ring_ntt_forward(r2, &pa);
                CHECK_MSG(!memcmp(r1, r2, n * sizeof *r1), "growth edge: logn %u q %llu input %d",
                          logn, (unsigned long long)q, kind);
                _ring_ntt_inverse(r2, &pa);
                CHECK(!memcmp(r2, a, n * sizeof *a));
            }
            free(a);
            free(r1), free(r2);
            ring_prime_free(&pp);
            ring_prime_free(&pa);
        }
}

static void test_refusals(void)
{
    ring_prime p;
    uint64_t q = first_prime(30, 13);
    CHECK_ERR(ring_prime_init(&p, q, 1), PPNN_ERR_PARAM);
    CHECK_ERR(ring_prime_init(&p, q, 17), PPNN_ERR_PARAM);
    CHECK_ERR(ring_prime_init(&p, 12289, 12), PPNN_ERR_PARAM); /* 12289 - 1 = 3 * 2^12 < 2N */
    CHECK_ERR(ring_prime_init(&p, 1000001, 2), PPNN_ERR_PARAM); /* composite */
    CHECK_ERR(ring_prime_init_impl(&p, first_prime(55, 13), 13, RING_IMPL_AVX512),
              PPNN_ERR_UNSUPPORTED);
    CHECK(p.kern == NULL);
    if (!ring_cpu_has_avx512dq())
        CHECK_ERR(ring_prime_init_impl(&p, q, 13, RING_IMPL_AVX512DQ), PPNN_ERR_UNSUPPORTED);
    CHECK_ERR(ring_prime_init_impl(&p, q, 13, (ring_impl)7), PPNN_ERR_PARAM);
    /* AUTO: IFMA for narrow primes, F/DQ for wide ones, when the CPU has them. */
    CHECK(ring_best_impl(first_prime(55, 13)) ==
          (ring_cpu_has_avx512dq() ? RING_IMPL_AVX512DQ : RING_IMPL_PORTABLE));
    CHECK(ring_best_impl(q) == (ring_cpu_has_avx512ifma() ? RING_IMPL_AVX512
                                : ring_cpu_has_avx512dq() ? RING_IMPL_AVX512DQ
                                                          : RING_IMPL_PORTABLE));
    ring_prime_free(&p);
    ring_prime_free(NULL);
    CHECK_OK(ring_prime_init(&p, 12289, 11)); /* 2N = 2^12 divides 12288 */
    CHECK(p.kern->impl == ring_best_impl(12289));
    ring_prime_free(&p);
    ring_prime_free(&p); /* double free of a zeroed prime is a no-op */
}

int main(void)
{
    have_avx = ring_cpu_has_avx512ifma();
    printf("AVX-512 IFMA: %s\n", have_avx ? "yes" : "no");
    test_schoolbook();
    test_layout();
    test_roundtrip();
    test_avx_identical();
    test_avx_growth_edges();
    test_refusals();
    return tu_finish("test_ntt");
}
