/* Samplers: deterministic ChaCha20 PRG, uniform mod q (rejection), ternary, centered binomial.
 * All randomness comes from libsodium; nothing here keeps global state. */
#include "ppnn/ring.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

void ring_prg_init(ring_prg *g, const uint8_t seed[RING_SEED_BYTES], uint64_t nonce)
{
    memcpy(g->key, seed, RING_SEED_BYTES);
    for (int i = 0; i < 8; i++)
        g->nonce[i] = (uint8_t)(nonce >> (8 * i));
    g->block = 0;
    g->pos = sizeof g->buf; /* empty */
}

void ring_seed_random(uint8_t seed[RING_SEED_BYTES]) { randombytes_buf(seed, RING_SEED_BYTES); }

void ring_prg_wipe(ring_prg *g) { sodium_memzero(g, sizeof *g); }

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

uint64_t ring_prg_u64(ring_prg *g)
{
    uint8_t b[8];
    ring_prg_bytes(g, b, sizeof b);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)b[i] << (8 * i);
    return x;
}

void ring_sample_uniform_prg(uint64_t *r, const ring_context *ctx, size_t nprimes, ring_prg *g)
{
    assert(nprimes <= ctx->nprimes);
    for (size_t i = 0; i < nprimes; i++) {
        const uint64_t q = ctx->primes[i].q;
        /* bits(q)-bit candidates: q >= 2^(bits-1), so each is accepted with probability > 1/2,
         * and accepted values are exactly uniform on [0, q). */
        const uint64_t mask = ((uint64_t)1 << ctx->primes[i].mod.bits) - 1;
        uint64_t *ri = r + i * ctx->n;
        for (size_t j = 0; j < ctx->n;) {
            uint64_t x = ring_prg_u64(g) & mask;
            if (x < q)
                ri[j++] = x;
        }
    }
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
    for (size_t j = 0; j < n;) {
        uint8_t b;
        ring_prg_bytes(g, &b, 1);
        /* 255 = 3 * 85: bytes 0..254 are uniform mod 3. */
        if (b < 255)
            s[j++] = (int64_t)(b % 3) - 1;
    }
}

void ring_sample_cbd(int64_t *e, size_t n, ring_prg *g)
{
    const uint64_t mask = ((uint64_t)1 << RING_CBD_K) - 1;
    for (size_t j = 0; j < n; j++) {
        uint64_t x = ring_prg_u64(g); /* uses 2k = 42 of the 64 bits */
        e[j] = (int64_t)__builtin_popcountll(x & mask) -
               (int64_t)__builtin_popcountll((x >> RING_CBD_K) & mask);
    }
}
