/* Seeded PRG for initialisation, shuffling and augmentation: a 32-byte key derived from the
 * seed and a purpose string with BLAKE2b; block i of the stream is
 * randombytes_buf_deterministic(seed = BLAKE2b(key || i)). Same seed -> same stream
 * on every machine. */
#include <string.h>

#include <sodium.h>

#include "nn/inner.h"

void nn_rng_seed(nn_rng *r, uint64_t seed, const char *purpose)
{
    crypto_generichash_state st;
    uint8_t s[8];
    ppnn_put_u64(s, seed);
    crypto_generichash_init(&st, (const uint8_t *)"ppnn-nn-rng", 11, sizeof r->key);
    crypto_generichash_update(&st, s, sizeof s);
    crypto_generichash_update(&st, (const uint8_t *)purpose, strlen(purpose));
    crypto_generichash_final(&st, r->key, sizeof r->key);
    r->block = 0;
    r->pos = sizeof r->buf;
}

static void refill(nn_rng *r)
{
    uint8_t in[sizeof r->key + 8], seed[randombytes_SEEDBYTES];
    memcpy(in, r->key, sizeof r->key);
    ppnn_put_u64(in + sizeof r->key, r->block++);
    crypto_generichash(seed, sizeof seed, in, sizeof in, NULL, 0);
    randombytes_buf_deterministic(r->buf, sizeof r->buf, seed);
    sodium_memzero(seed, sizeof seed);
    r->pos = 0;
}

uint32_t nn_rng_u32(nn_rng *r)
{
    if (r->pos + 4 > sizeof r->buf)
        refill(r);
    const uint8_t *p = r->buf + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t nn_rng_below(nn_rng *r, uint32_t bound)
{
    /* Reject the top (2^32 mod bound) values so every residue is equally likely. */
    uint32_t limit = (uint32_t)(-bound) % bound, v;
    do
        v = nn_rng_u32(r);
    while (v < limit);
    return v % bound;
}

float nn_rng_sym(nn_rng *r)
{
    /* 24 random bits -> [0, 1) exactly representable in float, then to [-1, 1). */
    return (float)(nn_rng_u32(r) >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

void nn_rng_wipe(nn_rng *r) { sodium_memzero(r, sizeof *r); }
