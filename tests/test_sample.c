/* Samplers: ChaCha20 PRG vs libsodium directly, determinism (seed, nonce), uniform rejection
 * range and statistics, ternary and centered-binomial distributions. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/ring.h"
#include "ring/inner.h"
#include "testutil.h"

static const uint8_t seed0[RING_SEED_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void test_prg(void)
{
    /* The PRG stream is exactly crypto_stream_chacha20(key = seed, nonce = LE64(nonce)). */
    enum { LEN = 1500 };
    uint8_t ref[LEN], got[LEN], nonce[8] = {0x21, 0x43, 0x65, 0x87, 0, 0, 0, 0};
    crypto_stream_chacha20(ref, LEN, nonce, seed0);
    ring_prg g;
    ring_prg_init(&g, seed0, 0x87654321u);
    /* Read in uneven pieces crossing the 512-byte buffer boundaries. */
    size_t off = 0, piece = 1;
    while (off < LEN) {
        size_t k = piece < LEN - off ? piece : LEN - off;
        ring_prg_bytes(&g, got + off, k);
        off += k;
        piece = piece * 3 + 1;
    }
    CHECK(memcmp(ref, got, LEN) == 0);
    ring_prg_wipe(&g);
    uint8_t zero[sizeof g] = {0};
    CHECK(memcmp(&g, zero, sizeof g) == 0);
    uint8_t s1[RING_SEED_BYTES], s2[RING_SEED_BYTES];
    ring_seed_random(s1);
    ring_seed_random(s2);
    CHECK(memcmp(s1, s2, sizeof s1) != 0);
}

/* The vector acceptance (4-, 5- and 8-byte candidates) gives the scalar loop's values, for
 * primes of the supported widths (20 to 60 bits) and for low-acceptance primes (just above 2^(b-1)),
 * whose rejections exercise the refill path. */
static void test_uniform_vector(void)
{
    const unsigned logn = 11;
    const size_t n = 2048;
    const unsigned widths[] = {20, 25, 28, 31, 32, 33, 36, 38, 39, 40, 50, 57, 60};
    size_t checked = 0;
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        uint64_t q[2];
        CHECK_OK(mq_find_ntt_primes(q, 2, widths[w], 2 * n, NULL, 0));
        /* mq_find_ntt_primes searches down from 2^bits: q[1] is also near the top; add a prime
         * just above 2^(bits-1) (acceptance ~1/2) from an upward scan. */
        uint64_t lo = ((uint64_t)1 << (widths[w] - 1)) + 1;
        while (lo % (2 * n) != 1)
            lo++;
        while (!mq_is_prime(lo))
            lo += 2 * n;
        q[1] = lo;
        ring_context *ctx;
        CHECK_OK(ring_context_new(&ctx, logn, q, 2, RING_IMPL_AUTO));
        if (!ctx)
            continue;
        uint64_t *a = malloc(2 * n * 8), *b = malloc(2 * n * 8);
        if (!a || !b)
            abort();
        for (uint64_t nonce = 0; nonce < 3; nonce++) {
            ring_prg g;
            ring_prg_init(&g, seed0, nonce);
            _ring_sample_uniform_impl(a, ctx, 2, &g, 1);
            ring_prg_init(&g, seed0, nonce);
            _ring_sample_uniform_impl(b, ctx, 2, &g, 0);
            CHECK_MSG(memcmp(a, b, 2 * n * 8) == 0, "%u-bit primes, nonce %llu: vector != scalar",
                      widths[w], (unsigned long long)nonce);
            ring_prg_wipe(&g);
        }
        checked += _ring_uniform_vector_ok((widths[w] + 7) / 8);
        free(a), free(b);
        ring_context_free(ctx);
    }
    if (!checked)
        fprintf(stderr, "test_sample: no AVX-512, vector acceptance not checked\n");
}

static void test_uniform(void)
{
    const unsigned logn = 12;
    const size_t n = 4096;
    uint64_t q[3];
    CHECK_OK(mq_find_ntt_primes(q, 1, 20, 2 * n, NULL, 0));
    CHECK_OK(mq_find_ntt_primes(q + 1, 1, 50, 2 * n, NULL, 0));
    CHECK_OK(mq_find_ntt_primes(q + 2, 1, 60, 2 * n, NULL, 0));
    ring_context *ctx;
    CHECK_OK(ring_context_new(&ctx, logn, q, 3, RING_IMPL_AUTO));
    if (!ctx)
        return;
    uint64_t *a = malloc(3 * n * 8), *b = malloc(3 * n * 8), *c = malloc(3 * n * 8);
    if (!a || !b || !c)
        abort();
    ring_sample_uniform(a, ctx, 3, seed0, 7);
    ring_sample_uniform(b, ctx, 3, seed0, 7);
    CHECK(memcmp(a, b, 3 * n * 8) == 0); /* same seed and nonce: same polynomial */
    ring_sample_uniform(c, ctx, 3, seed0, 8);
    size_t same = 0;
    for (size_t j = 0; j < 3 * n; j++)
        same += a[j] == c[j];
    CHECK(same < 8); /* different nonce: unrelated (collisions only by chance in q0 ~ 2^20) */
    uint8_t seed1[RING_SEED_BYTES];
    memcpy(seed1, seed0, sizeof seed1);
    seed1[31] ^= 1;
    ring_sample_uniform(c, ctx, 3, seed1, 7);
    CHECK(memcmp(a, c, 3 * n * 8) != 0);
    /* The documented stream format, re-derived from crypto_stream_chacha20 directly: prime 0
     * (20 bits) takes 3-byte little-endian candidates masked to 20 bits. */
    {
        size_t len = 3 * 2 * n; /* acceptance > 1/2: enough for n accepted candidates */
        uint8_t *ks = malloc(len), nonce[8] = {7};
        if (!ks)
            abort();
        crypto_stream_chacha20(ks, len, nonce, seed0);
        size_t j = 0, bad = 0;
        for (size_t k = 0; k + 3 <= len && j < n; k += 3) {
            uint64_t x = (ks[k] | (uint64_t)ks[k + 1] << 8 | (uint64_t)ks[k + 2] << 16) & 0xfffff;
            if (x < q[0])
                bad += a[j++] != x;
        }
        CHECK(j == n && bad == 0);
        free(ks);
    }
    /* Prefix property: level-1 sampling equals the first prime of the level-2 sample. */
    ring_sample_uniform(c, ctx, 1, seed0, 7);
    CHECK(memcmp(a, c, n * 8) == 0);
    /* Range and statistics: mean of U[0,q) is (q-1)/2 with sd q/sqrt(12 n); the top 1/16 of
     * the range (where a biased reduction would be under- or over-represented) gets n/16. */
    for (size_t i = 0; i < 3; i++) {
        double mean = 0;
        size_t top = 0, inrange = 1;
        for (size_t j = 0; j < n; j++) {
            uint64_t v = a[i * n + j];
            inrange &= v < q[i];
            mean += (double)v / (double)q[i];
            top += v >= q[i] - q[i] / 16;
        }
        mean /= (double)n;
        CHECK(inrange);
        CHECK_MSG(fabs(mean - 0.5) < 5 / sqrt(12.0 * (double)n), "prime %zu mean %f", i, mean);
        double sd = sqrt((double)n / 16 * 15 / 16);
        CHECK_MSG(fabs((double)top - (double)n / 16) < 5 * sd, "prime %zu top %zu", i, top);
    }
    free(a), free(b), free(c);
    ring_context_free(ctx);
}

static void test_ternary_cbd(void)
{
    const size_t n = tu_reduced() ? 1 << 15 : 1 << 18;
    int64_t *s = malloc(n * sizeof *s);
    if (!s)
        abort();
    ring_prg g;
    ring_prg_init(&g, seed0, 1);
    ring_sample_ternary(s, n, &g);
    size_t cnt[3] = {0}, other = 0;
    for (size_t j = 0; j < n; j++) {
        if (s[j] >= -1 && s[j] <= 1)
            cnt[s[j] + 1]++;
        else
            other++;
    }
    CHECK(other == 0);
    double sd = sqrt((double)n * (1.0 / 3) * (2.0 / 3));
    for (int k = 0; k < 3; k++)
        CHECK_MSG(fabs((double)cnt[k] - (double)n / 3) < 5 * sd, "ternary %d: %zu", k - 1,
                  cnt[k]);

    ring_sample_cbd(s, n, &g);
    double sum = 0, sq = 0;
    int64_t maxabs = 0;
    size_t hist_pm1 = 0;
    for (size_t j = 0; j < n; j++) {
        sum += (double)s[j];
        sq += (double)s[j] * (double)s[j];
        maxabs = llabs(s[j]) > maxabs ? llabs(s[j]) : maxabs;
        hist_pm1 += s[j] == 1 || s[j] == -1;
    }
    double mean = sum / (double)n, var = sq / (double)n - mean * mean;
    const double v = RING_CBD_K / 2.0; /* 10.5 */
    CHECK(maxabs <= RING_CBD_K);
    CHECK_MSG(fabs(mean) < 5 * sqrt(v / (double)n), "cbd mean %f", mean);
    /* Var of the sample variance ~ (mu4 - v^2)/n with mu4 = 3v^2 - v/2 for this CBD. */
    CHECK_MSG(fabs(var - v) < 5 * sqrt((2 * v * v - v / 2) / (double)n), "cbd var %f", var);
    /* P(e = 1) = C(42, 22) / 2^42 = 0.1168227 (e = +-1 together twice that). */
    double p1 = 2 * 0.1168227;
    CHECK_MSG(fabs((double)hist_pm1 / (double)n - p1) < 5 * sqrt(p1 * (1 - p1) / (double)n),
              "cbd P(|e|=1) %f", (double)hist_pm1 / (double)n);
    ring_prg_wipe(&g);
    free(s);
    /* The vector step gives the scalar loop's values (counts with and without a tail). */
    const size_t counts[] = {7, 8, 1000, 4096};
    for (size_t c = 0; c < 4; c++) {
        int64_t *x = malloc(counts[c] * sizeof *x), *y = malloc(counts[c] * sizeof *y);
        if (!x || !y)
            abort();
        ring_prg_init(&g, seed0, 40 + c);
        _ring_sample_cbd_impl(x, counts[c], &g, 1);
        ring_prg_init(&g, seed0, 40 + c);
        _ring_sample_cbd_impl(y, counts[c], &g, 0);
        CHECK_MSG(!memcmp(x, y, counts[c] * sizeof *x), "cbd %zu: vector != scalar", counts[c]);
        ring_prg_wipe(&g);
        free(x), free(y);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    test_prg();
    test_uniform();
    test_uniform_vector();
    test_ternary_cbd();
    return tu_finish("test_sample");
}
