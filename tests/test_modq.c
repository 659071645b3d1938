/* modq: Barrett / Shoup arithmetic vs 128-bit reference, Miller-Rabin, NTT prime search and
 * roots of unity vs an independent reference (tests/gen/ntt_primes.py, sympy). */
#include "ppnn/modq.h"
#include "testrng.h"
#include "testutil.h"

__extension__ typedef __int128 s128;

static const uint64_t moduli[] = {
    3, 5, 7681, 12289, 1048193, 1073692673, 1099511480321, 562949951979521,
    1125899906826241, /* 50-bit, largest IFMA-eligible size */
    1152921504606830593u, 2305843009213693951u /* 2^61 - 1, the largest supported */,
    1000001, /* odd composite: the arithmetic does not need primality */
};
#define NMODULI (sizeof moduli / sizeof moduli[0])

static void test_arith(void)
{
    uint64_t s = 1;
    int iters = tu_reduced() ? 2000 : 20000;
    for (size_t k = 0; k < NMODULI; k++) {
        uint64_t q = moduli[k];
        mq_modulus m;
        mq_modulus_init(&m, q);
        CHECK(m.q == q && (q >> (m.bits - 1)) == 1);
        int bad = 0;
        for (int it = 0; it < iters; it++) {
            uint64_t a = trng_mod(&s, q), b = trng_mod(&s, q), w = trng_mod(&s, q);
            uint64_t any = trng_next(&s);
            mq_u128 x = (mq_u128)trng_next(&s) << 64 | trng_next(&s);
            if (it == 0)
                x = ~(mq_u128)0;
            if (it == 1)
                x = (mq_u128)(q - 1) * (q - 1);
            bad += mq_add(a, b, q) != (uint64_t)(((mq_u128)a + b) % q);
            bad += mq_sub(a, b, q) != (uint64_t)(((mq_u128)a + q - b) % q);
            bad += mq_neg(a, q) != (q - a) % q;
            bad += mq_mul(a, b, &m) != (uint64_t)((mq_u128)a * b % q);
            bad += mq_reduce128(x, &m) != (uint64_t)(x % q);
            bad += mq_reduce64(any, &m) != any % q;
            uint64_t ws = mq_shoup(w, q);
            bad += ws != (uint64_t)(((mq_u128)w << 64) / q);
            bad += mq_mul_shoup(a, w, ws, q) != (uint64_t)((mq_u128)a * w % q);
            uint64_t lazy = mq_mul_shoup_lazy(any, w, ws, q); /* any 64-bit input */
            bad += lazy >= 2 * q || lazy % q != (uint64_t)((mq_u128)any * w % q);
            int64_t si = (int64_t)any;
            if (it == 2)
                si = INT64_MIN;
            s128 ref = (s128)si % (s128)q;
            if (ref < 0)
                ref += q;
            bad += mq_from_int64(si, &m) != (uint64_t)ref;
            int64_t c = mq_center(a, q);
            bad += !(2 * (s128)c > -(s128)q && 2 * (s128)c <= (s128)q) ||
                   mq_from_int64(c, &m) != a;
        }
        CHECK_MSG(bad == 0, "q = %llu: %d mismatches", (unsigned long long)q, bad);
    }
}

static void test_pow_inv(void)
{
    uint64_t s = 2;
    for (size_t k = 0; k < NMODULI - 1; k++) { /* primes only */
        mq_modulus m;
        mq_modulus_init(&m, moduli[k]);
        int bad = 0;
        for (int it = 0; it < 200; it++) {
            uint64_t a = trng_mod(&s, m.q);
            if (a == 0)
                a = 1;
            bad += mq_mul(a, mq_inv(a, &m), &m) != 1;
            bad += mq_pow(a, m.q - 1, &m) != 1; /* Fermat */
            bad += mq_pow(a, 3, &m) != mq_mul(mq_mul(a, a, &m), a, &m);
        }
        CHECK(mq_pow(0, 0, &m) == 1 && mq_pow(5 % m.q, 0, &m) == 1);
        CHECK_MSG(bad == 0, "q = %llu", (unsigned long long)m.q);
    }
}

static void test_is_prime(void)
{
    /* Sieve reference below 2^16. */
    static unsigned char comp[1 << 16];
    comp[0] = comp[1] = 1;
    for (uint32_t i = 2; i < (1u << 16); i++)
        if (!comp[i])
            for (uint32_t j = i * i; j < (1u << 16); j += i)
                comp[j] = 1;
    int bad = 0;
    for (uint32_t i = 0; i < (1u << 16); i++)
        bad += mq_is_prime(i) != !comp[i];
    CHECK(bad == 0);
    static const uint64_t primes[] = {2147483647u, 2305843009213693951u, 18446744073709551557u,
                                      4294967291u, 1152921504606830593u, 1125899906826241u};
    for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
        CHECK_MSG(mq_is_prime(primes[i]), "%llu", (unsigned long long)primes[i]);
    /* Carmichael numbers, strong pseudoprimes to many small bases, semiprimes. */
    static const uint64_t composites[] = {561u, 41041u, 3215031751u, 2152302898747u,
                                          3474749660383u, 341550071728321u,
                                          3825123056546413051u,
                                          4294967291u * 4294967279u, 18446744073709551615u,
                                          1152921504606846977u /* 2^60 + 1 */};
    for (size_t i = 0; i < sizeof composites / sizeof composites[0]; i++)
        CHECK_MSG(!mq_is_prime(composites[i]), "%llu", (unsigned long long)composites[i]);
}

/* From tests/gen/ntt_primes.py (sympy). */
static const struct {
    unsigned bits;
    uint64_t two_n;
    uint64_t q[3];
    uint64_t psi;
} known[] = {
    {20, 32u, {1048193u, 1048129u, 1047841u}, 771695u},
    {30, 16384u, {1073692673u, 1073643521u, 1073479681u}, 1035643497u},
    {40, 16384u, {1099511480321u, 1099510890497u}, 456294246567u},
    {49, 131072u, {562949951979521u, 562949950537729u}, 204724530399413u},
    {50, 16384u, {1125899906826241u, 1125899906629633u}, 491033159871612u},
    {60, 16384u, {1152921504606830593u, 1152921504606748673u, 1152921504606683137u},
     330791804103690911u},
    {60, 131072u, {1152921504606584833u, 1152921504598720513u}, 56809027156372148u},
};

static void test_find_primes(void)
{
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        size_t count = known[k].q[2] ? 3 : 2;
        uint64_t out[3] = {0};
        CHECK_OK(mq_find_ntt_primes(out, count, known[k].bits, known[k].two_n, NULL, 0));
        for (size_t i = 0; i < count; i++)
            CHECK_MSG(out[i] == known[k].q[i], "bits %u #%zu: %llu", known[k].bits, i,
                      (unsigned long long)out[i]);
        /* Excluding the first prime shifts the list by one. */
        uint64_t ex[2] = {0};
        CHECK_OK(mq_find_ntt_primes(ex, count - 1, known[k].bits, known[k].two_n, out, 1));
        CHECK(ex[0] == out[1]);
        uint64_t psi = 0;
        CHECK_OK(mq_primitive_root_2n(&psi, out[0], known[k].two_n));
        CHECK_MSG(psi == known[k].psi, "bits %u psi %llu", known[k].bits, (unsigned long long)psi);
        mq_modulus m;
        mq_modulus_init(&m, out[0]);
        CHECK(mq_pow(psi, known[k].two_n / 2, &m) == out[0] - 1);
    }
    /* Properties over the whole supported range. */
    for (unsigned bits = MQ_MIN_PRIME_BITS; bits <= MQ_MAX_PRIME_BITS; bits++) {
        uint64_t two_n = bits >= 30 ? (uint64_t)1 << 17 : (uint64_t)1 << 10;
        uint64_t out[4];
        CHECK_OK(mq_find_ntt_primes(out, 4, bits, two_n, NULL, 0));
        for (size_t i = 0; i < 4; i++) {
            CHECK(mq_is_prime(out[i]) && out[i] % two_n == 1);
            CHECK(out[i] >> (bits - 1) == 1);
            for (size_t j = 0; j < i; j++)
                CHECK(out[j] > out[i]); /* distinct, descending */
        }
    }
    uint64_t out[8];
    CHECK_ERR(mq_find_ntt_primes(out, 1, 19, 64, NULL, 0), PPNN_ERR_PARAM);
    CHECK_ERR(mq_find_ntt_primes(out, 1, 61, 64, NULL, 0), PPNN_ERR_PARAM);
    CHECK_ERR(mq_find_ntt_primes(out, 1, 30, 96, NULL, 0), PPNN_ERR_PARAM);
    /* 20-bit candidates 1 + k*2^17 in (2^19, 2^20) are k = 4..7: at most 4 primes. */
    CHECK_ERR(mq_find_ntt_primes(out, 5, 20, (uint64_t)1 << 17, NULL, 0), PPNN_ERR_PARAM);
    uint64_t psi;
    CHECK_ERR(mq_primitive_root_2n(&psi, 1073692673u, (uint64_t)1 << 20), PPNN_ERR_PARAM);
    CHECK_ERR(mq_primitive_root_2n(&psi, 1000001, 4), PPNN_ERR_PARAM);
}

/* The 52-bit Shoup constants of the one per-prime struct (what the IFMA kernels use): checked
 * against their definitions, and one 52-bit Shoup reduction done with them. */
static void test_shoup52(void)
{
    const uint64_t qs[] = {3, 1073692673u, ((uint64_t)1 << 50) - 27, 1125899906826241ull};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        const uint64_t q = qs[k];
        mq_modulus m;
        mq_modulus_init(&m, q);
        const mq_u128 two52 = (mq_u128)1 << 52;
        CHECK(m.one_shoup == (uint64_t)(two52 / q) && m.r52 == (uint64_t)(two52 % q));
        CHECK(m.r52_shoup == (uint64_t)(((mq_u128)m.r52 << 52) / q));
        CHECK(m.r104 == mq_mul(m.r52, m.r52, &m));
        CHECK(m.r104_shoup == (uint64_t)(((mq_u128)m.r104 << 52) / q));
        /* x * 2^52 mod q via the companion: x*r52 - floor(x*r52_shoup / 2^52)*q in [0, 2q) */
        for (uint64_t x = 0; x < q && x < 1000; x += 1 + q / 97) {
            uint64_t est = (uint64_t)(((mq_u128)x * m.r52_shoup) >> 52);
            uint64_t r = (uint64_t)((mq_u128)x * m.r52 - (mq_u128)est * q);
            r = r >= q ? r - q : r;
            CHECK(r == (uint64_t)(((mq_u128)x << 52) % q));
        }
    }
    mq_modulus big; /* beyond the IFMA range: no 52-bit constants */
    mq_modulus_init(&big, ((uint64_t)1 << 60) - 93);
    CHECK(big.one_shoup == 0 && big.r52 == 0 && big.r104_shoup == 0);
}

int main(void)
{
    test_shoup52();
    test_arith();
    test_pow_inv();
    test_is_prime();
    test_find_primes();
    return tu_finish("test_modq");
}
