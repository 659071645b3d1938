/* CKKS parameters: security table, refusal of insecure rings, presets, prime properties, ids. */
#include <string.h>

#include "ckks_tu.h"
#include "ppnn/modq.h"

static void test_table(void)
{
    CHECK(ckks_max_logqp(12) == 109);
    CHECK(ckks_max_logqp(13) == 218);
    CHECK(ckks_max_logqp(14) == 438);
    CHECK(ckks_max_logqp(15) == 881);
    CHECK(ckks_max_logqp(16) == 1747);
    CHECK(ckks_max_logqp(11) == 0);
    CHECK(ckks_max_logqp(17) == 0);
}

static void test_insecure_refused(void)
{
    ckks_spec s;
    CHECK_OK(ckks_preset(&s, "n13"));
    s.q_bits[0] = 41; /* 219 bits > 218 */
    ckks_params *p = NULL;
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_INSECURE);
    CHECK(strstr(ppnn_last_error(), "218") != NULL);
    CHECK(p == NULL);
    /* A tiny ring is refused without the test-only switch, accepted with it. */
    memset(&s, 0, sizeof s);
    s.logn = 10;
    s.nq = 2;
    s.q_bits[0] = s.q_bits[1] = 30;
    s.p_bits = 30;
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_PARAM);
    s.insecure_for_testing = 1;
    CHECK_OK(ckks_params_new(&p, &s));
    ckks_params_free(p);
    /* N = 2^12 over 109 bits. */
    memset(&s, 0, sizeof s);
    s.logn = 12;
    s.nq = 3;
    s.q_bits[0] = s.q_bits[1] = s.q_bits[2] = 30;
    s.p_bits = 30;
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_INSECURE);
    CHECK(strstr(ppnn_last_error(), "109") != NULL);
    s.q_bits[1] = s.q_bits[2] = 25; /* 110 */
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_INSECURE);
    s.q_bits[2] = 24; /* 109 */
    CHECK_OK(ckks_params_new(&p, &s));
    ckks_params_free(p);
}

/* Key switching divides by P: a special prime smaller than some q_i is refused, by bit size
 * and (explicit primes) by value; equal sizes give P > q_i because P is chosen first. */
static void test_special_prime_largest(void)
{
    ckks_spec s;
    ckks_params *p = NULL;
    CHECK_OK(ckks_preset(&s, "n13"));
    s.p_bits = 37; /* q_0 has 38 bits */
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_PARAM);
    CHECK(strstr(ppnn_last_error(), "special prime P") != NULL);
    CHECK(p == NULL);
    CHECK_OK(ckks_preset(&s, "n13"));
    s.q_bits[0] = s.p_bits = 39; /* equal sizes: still P > q_0 */
    CHECK_OK(ckks_params_new(&p, &s));
    if (!p)
        return;
    for (size_t i = 0; i < p->nq; i++)
        CHECK(p->p > p->q[i]);
    /* Explicit primes with P and q_0 swapped (same sizes, P now the smaller one). */
    ckks_spec e = p->spec;
    e.primes[0] = p->p;
    e.primes[p->nq] = p->q[0];
    ckks_params *p2 = NULL;
    CHECK_ERR(ckks_params_new(&p2, &e), PPNN_ERR_PARAM);
    CHECK(p2 == NULL && strstr(ppnn_last_error(), "larger than every q_i") != NULL);
    ckks_params_free(p);
}

static void test_bad_specs(void)
{
    ckks_spec s;
    ckks_params *p = NULL;
    CHECK_OK(ckks_preset(&s, "n13"));
    s.q_bits[2] = 51; /* above the IFMA bound */
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_PARAM);
    CHECK_OK(ckks_preset(&s, "n13"));
    s.nq = 0;
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_PARAM);
    CHECK_OK(ckks_preset(&s, "n13"));
    s.logn = 17;
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_PARAM);
    CHECK_OK(ckks_preset(&s, "n13"));
    s.scale = -1;
    CHECK_ERR(ckks_params_new(&p, &s), PPNN_ERR_PARAM);
    CHECK_ERR(ckks_preset(&s, "n99"), PPNN_ERR_PARAM);
}

static void check_preset(const char *name, unsigned logn, size_t min_levels, unsigned limit)
{
    ckks_spec s;
    ckks_params *p = NULL;
    CHECK_OK(ckks_preset(&s, name));
    CHECK(!s.insecure_for_testing);
    CHECK_OK(ckks_params_new(&p, &s));
    if (!p)
        return;
    CHECK(p->logn == logn && p->n == ((size_t)1 << logn) && p->slots == p->n / 2);
    CHECK(p->nq - 1 >= min_levels);
    CHECK(p->logqp <= limit);
    double lg = log2((double)p->p);
    for (size_t i = 0; i <= p->nq; i++) {
        uint64_t q = i < p->nq ? p->q[i] : p->p;
        CHECK(mq_is_prime(q));
        CHECK(q % (2 * p->n) == 1);
        CHECK(q < ((uint64_t)1 << CKKS_MAX_PRIME_BITS));
        unsigned bits = i < p->nq ? s.q_bits[i] : s.p_bits;
        CHECK(q >> (bits - 1) == 1);
        for (size_t j = 0; j < i; j++)
            CHECK(p->q[j] != q);
        if (i < p->nq)
            lg += log2((double)q);
    }
    CHECK(lg <= limit);
    /* The id is a function of N and the primes only. */
    ckks_params *p2 = NULL;
    CHECK_OK(ckks_params_new(&p2, &s));
    CHECK(p2 && !memcmp(p->id, p2->id, CKKS_PARAM_ID_BYTES) && ckks_params_same(p, p2));
    ckks_params_free(p2);
    s.nq--;
    CHECK_OK(ckks_params_new(&p2, &s));
    CHECK(p2 && memcmp(p->id, p2->id, CKKS_PARAM_ID_BYTES) && !ckks_params_same(p, p2));
    ckks_params_free(p2);
    /* Rebuilding from the stored spec (explicit primes) gives the same parameter set. */
    CHECK(p->spec.primes[0] == p->q[0] && p->spec.primes[p->nq] == p->p);
    CHECK_OK(ckks_params_new(&p2, &p->spec));
    CHECK(p2 && ckks_params_same(p, p2) && p2->scale == p->scale && p2->logqp == p->logqp);
    ckks_params_free(p2);
    ckks_params_free(p);
}

static void test_explicit_primes(void)
{
    ckks_spec s;
    ckks_params *p = NULL, *p2 = NULL;
    CHECK_OK(ckks_preset(&s, "n13"));
    CHECK_OK(ckks_params_new(&p, &s));
    if (!p)
        return;
    ckks_spec e = p->spec;
    memset(e.q_bits, 0, sizeof e.q_bits); /* ignored with explicit primes */
    e.p_bits = 0;
    CHECK_OK(ckks_params_new(&p2, &e));
    CHECK(p2 && !memcmp(p2->id, p->id, CKKS_PARAM_ID_BYTES));
    ckks_params_free(p2);
    e.primes[2] = e.primes[1]; /* duplicate */
    CHECK_ERR(ckks_params_new(&p2, &e), PPNN_ERR_PARAM);
    e = p->spec;
    e.primes[3] += 2 * p->n; /* = 1 mod 2N but (almost surely) composite or another prime */
    while (mq_is_prime(e.primes[3]))
        e.primes[3] += 2 * p->n;
    CHECK_ERR(ckks_params_new(&p2, &e), PPNN_ERR_PARAM);
    e = p->spec;
    e.primes[0] = 1099511627791ull; /* prime, 41 bits: breaks the 218-bit budget */
    CHECK_ERR(ckks_params_new(&p2, &e), PPNN_ERR_INSECURE);
    e = p->spec;
    e.primes[4] = 1000003; /* prime but not 1 mod 2N */
    CHECK_ERR(ckks_params_new(&p2, &e), PPNN_ERR_PARAM);
    ckks_params_free(p);
}

int main(void)
{
    test_table();
    test_insecure_refused();
    test_bad_specs();
    check_preset("n13", 13, 5, 218);
    check_preset("n14", 14, 9, 438);
    test_explicit_primes();
    test_special_prime_largest();
    ckks_params_free(NULL);
    return tu_finish("test_ckks_params");
}
