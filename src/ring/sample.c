/* Samplers: deterministic ChaCha20 PRG, uniform mod q (rejection), ternary, centered binomial.
 * All randomness comes from libsodium; nothing here keeps global state. */
#include "ppnn/ring.h"
#include "inner.h"

#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <string.h>

void ring_prg_init(ring_prg *g, const uint8_t seed[RING_SEED_BYTES], uint64_t nonce)
{
    /* Selects libsodium's vectorised ChaCha20 (4x faster than its default reference code).
     * Idempotent and thread-safe; a failure would only leave the (correct) reference code. */
    int rc = sodium_init();
    (void)rc;
    memcpy(g->key, seed, RING_SEED_BYTES);
    for (int i = 0; i < 8; i++)
        g->nonce[i] = (uint8_t)(nonce >> (8 * i));
    g->block = 0;
    g->pos = sizeof g->buf; /* empty */
}

void ring_seed_random(uint8_t seed[RING_SEED_BYTES]) { randombytes_buf(seed, RING_SEED_BYTES); }

void ring_prg_wipe(ring_prg *g) { sodium_memzero(g, sizeof *g); }

void ring_prg_init_fresh(ring_prg *g)
{
    uint8_t seed[RING_SEED_BYTES];
    ring_seed_random(seed);
    ring_prg_init(g, seed, 0);
    sodium_memzero(seed, sizeof seed);
}

/* The next sizeof buf bytes of the keystream: blocks g->block, g->block+1, ... (64 bytes each).
 * A 64-bit block counter cannot wrap in practice (2^70 bytes). */
static void refill(ring_prg *g)
{
    memset(g->buf, 0, sizeof g->buf);
    crypto_stream_chacha20_xor_ic(g->buf, g->buf, sizeof g->buf, g->nonce, g->block, g->key);
    g->block += sizeof g->buf / 64;
    g->pos = 0;
}

void ring_prg_bytes(ring_prg *g, void *out, size_t len)
{
    uint8_t *o = out;
    while (len) {
        if (g->pos == sizeof g->buf)
            refill(g);
        size_t k = sizeof g->buf - g->pos;
        k = k < len ? k : len;
        memcpy(o, g->buf + g->pos, k);
        g->pos += k;
        o += k;
        len -= k;
    }
}


/* Little-endian load of len <= 8 bytes. When pad is set the caller guarantees 8 readable
 * bytes at b, and a single unaligned load (then a mask) is used on little-endian hosts. */
static inline uint64_t load_le(const uint8_t *b, size_t len, int pad)
{
    uint64_t x = 0;
    if (pad && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
        memcpy(&x, b, 8);
        return len == 8 ? x : x & (((uint64_t)1 << (8 * len)) - 1);
    }
    for (size_t i = 0; i < len; i++)
        x |= (uint64_t)b[i] << (8 * i);
    return x;
}

int _ring_uniform_vector_ok(size_t width)
{
    /* Asked once per prime of a sample: the CPU checks read libgcc's feature word (no cache of
     * our own, which several threads would race on). */
    if (width != 4 && width != 5 && width != 8)
        return 0;
    return ring_cpu_has_avx512dq() && (width != 5 || __builtin_cpu_supports("avx512vbmi"));
}

/* Candidates are pulled in batches of exactly as many as are still needed, so the stream
 * consumption (candidates * ceil(bits/8) bytes) does not depend on the batch size. */
void _ring_sample_uniform_impl(uint64_t *r, const ring_context *ctx, size_t nprimes, ring_prg *g,
                               int avx)
{
    assert(nprimes <= ctx->nprimes);
    enum { BATCH = 256 };
    /* + 64: padding for load_le and for the vector step's 64-byte loads of the last group */
    uint8_t chunk[BATCH * 8 + 64] = {0};
    for (size_t i = 0; i < nprimes; i++) {
        const uint64_t q = ctx->primes[i].q;
        const unsigned bits = ctx->primes[i].mod.bits;
        const size_t width = (bits + 7) / 8;
        const int vec = avx && _ring_uniform_vector_ok(width);
        /* bits(q)-bit candidates: q >= 2^(bits-1), so each is accepted with probability > 1/2,
         * and accepted values are exactly uniform on [0, q). */
        const uint64_t mask = ((uint64_t)1 << bits) - 1;
        uint64_t *ri = r + i * ctx->n;
        size_t j = 0;
        while (j < ctx->n) {
            size_t want = ctx->n - j < BATCH ? ctx->n - j : BATCH, k = 0;
            ring_prg_bytes(g, chunk, want * width);
            if (vec) { /* whole groups of 8 (want <= n - j: room for every accepted value) */
                j += _ring_accept_avx512(ri + j, chunk, want / 8, width, mask, q);
                k = want / 8 * 8;
            }
            for (; k < want; k++) {
                uint64_t x = load_le(chunk + k * width, width, 1) & mask;
                if (x < q)
                    ri[j++] = x;
            }
        }
    }
    sodium_memzero(chunk, sizeof chunk);
}

void ring_sample_uniform_prg(uint64_t *r, const ring_context *ctx, size_t nprimes, ring_prg *g)
{
    _ring_sample_uniform_impl(r, ctx, nprimes, g, 1);
}

void ring_sample_uniform(uint64_t *r, const ring_context *ctx, size_t nprimes,
                         const uint8_t seed[RING_SEED_BYTES], uint64_t nonce)
{
    ring_prg g;
    ring_prg_init(&g, seed, nonce);
    ring_sample_uniform_prg(r, ctx, nprimes, &g);
    ring_prg_wipe(&g);
}

void ring_sample_ternary(int64_t *s, size_t n, ring_prg *g)
{
    enum { BATCH = 1024 };
    uint8_t chunk[BATCH];
    size_t j = 0;
    while (j < n) {
        size_t want = n - j < BATCH ? n - j : BATCH;
        ring_prg_bytes(g, chunk, want);
        for (size_t k = 0; k < want; k++)
            if (chunk[k] < 255) /* 255 = 3 * 85: bytes 0..254 are uniform mod 3 */
                s[j++] = (int64_t)(chunk[k] % 3) - 1;
    }
    sodium_memzero(chunk, sizeof chunk);
}

/* Bits set in x. Without -mpopcnt (the portable x86-64 baseline) __builtin_popcountll is a
 * libgcc call; this SWAR form is a dozen inline ALU operations. */
static inline int popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555u);
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (int)((x * 0x0101010101010101u) >> 56);
}

void _ring_sample_cbd_impl(int64_t *e, size_t n, ring_prg *g, int avx)
{
    enum { BATCH = 256 };
    uint8_t chunk[BATCH * 8];
    const uint64_t mask = ((uint64_t)1 << RING_CBD_K) - 1;
    avx = avx && ring_cpu_has_avx512dq() && __builtin_cpu_supports("avx512vpopcntdq");
    for (size_t j = 0; j < n; j += BATCH) {
        size_t want = n - j < BATCH ? n - j : BATCH, k = 0;
        ring_prg_bytes(g, chunk, want * 8);
        if (avx) {
            _ring_cbd_avx512(e + j, chunk, want / 8);
            k = want / 8 * 8;
        }
        for (; k < want; k++) {
            uint64_t x = load_le(chunk + 8 * k, 8, 1); /* uses 2k = 42 of the 64 bits */
            e[j + k] = (int64_t)popcount64(x & mask) -
                       (int64_t)popcount64((x >> RING_CBD_K) & mask);
        }
    }
    sodium_memzero(chunk, sizeof chunk);
}

void ring_sample_cbd(int64_t *e, size_t n, ring_prg *g) { _ring_sample_cbd_impl(e, n, g, 1); }

void ring_sample_gaussian(int64_t *e, size_t n, double sigma, ring_prg *g)
{
    assert(sigma >= 1 && sigma < 0x1p58);
    for (size_t j = 0; j < n; j += 2) {
        uint64_t r[2];
        ring_prg_bytes(g, r, sizeof r);
        double u1 = ((double)(r[0] >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
        double u2 = (double)(r[1] >> 11) * 0x1p-53;         /* [0, 1) */
        double rad = sigma * sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
        e[j] = (int64_t)llrint(rad * cos(th));
        if (j + 1 < n)
            e[j + 1] = (int64_t)llrint(rad * sin(th));
        sodium_memzero(r, sizeof r);
    }
}
