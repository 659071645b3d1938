/* Primality (deterministic Miller-Rabin), NTT-friendly prime search, roots of unity. */
#include "ppnn/modq.h"

/* Plain 128-bit arithmetic here: these run once per parameter set, and mq_is_prime must accept
 * every 64-bit n (mq_modulus is limited to q < 2^61). */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t n)
{
    return (uint64_t)((mq_u128)a * b % n);
}

static uint64_t powmod(uint64_t a, uint64_t e, uint64_t n)
{
    uint64_t r = 1 % n;
    a %= n;
    while (e) {
        if (e & 1)
            r = mulmod(r, a, n);
        a = mulmod(a, a, n);
        e >>= 1;
    }
    return r;
}

int mq_is_prime(uint64_t n)
{
    /* The first 12 primes as Miller-Rabin bases are a proof of primality for n < 3.3e24
     * (Sorenson & Webster 2015), so for every 64-bit n. */
    static const uint64_t bases[12] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    if (n < 2)
        return 0;
    for (int i = 0; i < 12; i++) {
        if (n == bases[i])
            return 1;
        if (n % bases[i] == 0)
            return 0;
    }
    uint64_t d = n - 1;
    int s = 0;
    while (!(d & 1)) {
        d >>= 1;
        s++;
    }
    for (int i = 0; i < 12; i++) {
        uint64_t x = powmod(bases[i], d, n);
        if (x == 1 || x == n - 1)
            continue;
        int witness = 1;
        for (int r = 1; r < s; r++) {
            x = mulmod(x, x, n);
            if (x == n - 1) {
                witness = 0;
                break;
            }
        }
        if (witness)
            return 0;
    }
    return 1;
}

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

static int excluded(uint64_t q, const uint64_t *ex, size_t nex, const uint64_t *out, size_t nout)
{
    for (size_t i = 0; i < nex; i++)
        if (ex[i] == q)
            return 1;
    for (size_t i = 0; i < nout; i++)
        if (out[i] == q)
            return 1;
    return 0;
}

ppnn_status mq_find_ntt_primes(uint64_t *out, size_t count, unsigned bits, uint64_t two_n,
                               const uint64_t *exclude, size_t nexclude)
{
    if (bits < MQ_MIN_PRIME_BITS || bits > MQ_MAX_PRIME_BITS)
        return ppnn_fail(PPNN_ERR_PARAM, "prime size %u bits is outside the supported %d..%d bits",
                         bits, MQ_MIN_PRIME_BITS, MQ_MAX_PRIME_BITS);
    if (!is_pow2(two_n) || two_n < 4 || two_n >= ((uint64_t)1 << (bits - 1)))
        return ppnn_fail(PPNN_ERR_PARAM,
                         "NTT prime search: 2N = %llu must be a power of two in [4, 2^%u)",
                         (unsigned long long)two_n, bits - 1);
    uint64_t lo = (uint64_t)1 << (bits - 1);
    /* Candidates are 1 + k*2N, largest first: 2^bits + 1 - 2N is the largest below 2^bits. */
    size_t found = 0;
    for (uint64_t c = ((uint64_t)1 << bits) + 1 - two_n; c > lo && found < count; c -= two_n) {
        if (mq_is_prime(c) && !excluded(c, exclude, nexclude, out, found))
            out[found++] = c;
    }
    if (found < count)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "only %zu primes of %u bits with q = 1 mod %llu exist (need %zu)", found,
                         bits, (unsigned long long)two_n, count);
    return PPNN_OK;
}

ppnn_status mq_primitive_root_2n(uint64_t *root, uint64_t q, uint64_t two_n)
{
    *root = 0;
    if (!is_pow2(two_n) || two_n < 2 || q < 3 || !mq_is_prime(q) || (q - 1) % two_n != 0)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "no primitive %llu-th root of unity mod %llu (need a prime q = 1 mod 2N)",
                         (unsigned long long)two_n, (unsigned long long)q);
    /* Distinct prime factors of q - 1 by trial division of the odd part (q < 2^64; the loop
     * stops at sqrt of the remaining cofactor). */
    uint64_t f[64];
    size_t nf = 0;
    uint64_t rem = q - 1;
    int rem_prime = mq_is_prime(rem);
    for (uint64_t p = 2; !rem_prime && p <= rem / p; p += (p == 2 ? 1 : 2)) {
        if (rem % p == 0) {
            f[nf++] = p;
            while (rem % p == 0)
                rem /= p;
            /* Stop trial division once the cofactor is prime (keeps 60-bit q fast). */
            rem_prime = mq_is_prime(rem);
        }
    }
    if (rem > 1)
        f[nf++] = rem;
    for (uint64_t g = 2; g < q; g++) {
        int gen = 1;
        for (size_t i = 0; i < nf && gen; i++)
            gen = powmod(g, (q - 1) / f[i], q) != 1;
        if (gen) {
            *root = powmod(g, (q - 1) / two_n, q);
            return PPNN_OK;
        }
    }
    return ppnn_fail(PPNN_ERR_PARAM, "no generator found mod %llu", (unsigned long long)q);
}
