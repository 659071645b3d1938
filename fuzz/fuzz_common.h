/* Shared by the libFuzzer harnesses (fuzz/README.md): resealing ppnn containers, a
 * structure-aware mutator, the parameter set of the seed corpus, and a scratch file for
 * loaders that take a path. Header-only: each harness is one translation unit. */
#ifndef PPNN_FUZZ_COMMON_H
#define PPNN_FUZZ_COMMON_H

#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppnn/ckks_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#define FUZZ_FRAME (PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES)

/* Fixes the payload length and the BLAKE2b checksum of a ppnn container in place, as an
 * attacker who edits a file would: mutations then reach the payload parser instead of dying
 * at the checksum. Inputs shorter than the frame are left alone. */
/* Whether buf holds a chunked batch frame (format version 3, ppnn/util.h): its metadata then
 * starts PPNN_CHUNKED_FIXED_BYTES into the payload and resealing recomputes every ciphertext's
 * digest and the top hash. */
static inline int fuzz_chunked(const uint8_t *buf, size_t size)
{
    return size >= FUZZ_FRAME && memcmp(buf + 8, CKKS_KIND_BATCH, 4) == 0 &&
           ppnn_get_u32(buf + 12) == CKKS_BATCH_FILE_VERSION;
}

static inline void fuzz_reseal(uint8_t *buf, size_t size)
{
    if (size < FUZZ_FRAME)
        return;
    if (fuzz_chunked(buf, size)) {
        ppnn_chunked_reseal(buf, size);
        return;
    }
    ppnn_put_u64(buf + 48, size - FUZZ_FRAME);
    crypto_generichash(buf + size - PPNN_FILE_TRAILER_BYTES, PPNN_FILE_TRAILER_BYTES, buf,
                       size - PPNN_FILE_TRAILER_BYTES, NULL, 0);
}

/* The head of a ckks payload: the parameter block, the key id and what follows them (a Galois
 * key's count and elements; a batch's info block and first ciphertext header). */
#define FUZZ_HEAD_BYTES 192

/* A well-formed edit of one field of a ckks parameter block (payload offset 0; layout in
 * serialize.c: logn, nq, q bits[nq], P bits, scale, q[nq], P): another power-of-two scale,
 * another ring degree, or another bit size with a matching stored modulus. Byte-level
 * mutations almost never produce a block that passes the range checks — one byte in ~1500 of
 * an 84 KB key is in it, and the edit must keep bit sizes, moduli and the scale consistent —
 * so without this the rebuild-from-file path (ckks_params_new: security table, prime search,
 * NTT tables) was reached or not by luck of the random seed (coverage 180 or 340 for the
 * same harness). Returns 0 when the block is not one this can edit. */
static inline int fuzz_edit_params(uint8_t *p, size_t body, unsigned r)
{
    if (body < 8)
        return 0;
    uint32_t nq = ppnn_get_u32(p + 4);
    if (nq < 1 || nq > CKKS_MAX_PRIMES || body < 28 + 12 * (size_t)nq)
        return 0;
    size_t bits = 8, pbits = 8 + 4 * (size_t)nq, scale = pbits + 4, mods = scale + 8;
    r = r * 2654435761u + 0x9e3779b9u;
    switch ((r >> 4) % 3) {
    case 0: /* scale 2^16 .. 2^47: the refused small ones included */
        ppnn_put_f64(p + scale, ldexp(1.0, 16 + (int)((r >> 8) % 32)));
        break;
    case 1: /* ring degree 2^3 .. 2^13 or 2^17: the refused ones around the range included.
             * 2^14 .. 2^16 are left out: every new spec there rebuilt its tables (~50-200 ms
             * under ASan; the cache does not hold sets that large), which took fuzz_ckks_batch
             * from 63 000 to 900 executions/s once its corpus held such edits. */
        ppnn_put_u32(p, (r >> 8) % 12 ? 3 + (r >> 12) % 11 : 17);
        break;
    default: { /* modulus i (nq = P) gets b bits and an odd b-bit value */
        size_t i = (r >> 8) % (nq + 1);
        unsigned b = CKKS_MIN_PRIME_BITS - 2 + (r >> 16) % (CKKS_MAX_PRIME_BITS - CKKS_MIN_PRIME_BITS + 5);
        uint64_t q = (UINT64_C(1) << (b - 1)) | ((uint64_t)r * 0x9e3779b97f4a7c15u >> (65 - b)) | 1;
        ppnn_put_u32(p + (i < nq ? bits + 4 * i : pbits), b);
        ppnn_put_u64(p + mods + 8 * i, q);
        break;
    }
    }
    return 1;
}

/* The mutator's last output, sealed already: fuzz_raw_and_resealed runs it once instead of
 * resealing a copy to find it unchanged (one BLAKE2b of up to 128 KB less per execution; the
 * copy would be byte-identical, so nothing the harness reaches changes). */
static uint8_t *fuzz_sealed_copy;
static size_t fuzz_sealed_size, fuzz_sealed_cap;

static inline void fuzz_remember_sealed(const uint8_t *data, size_t size)
{
    if (size > fuzz_sealed_cap) {
        uint8_t *b = realloc(fuzz_sealed_copy, size);
        if (!b) {
            fuzz_sealed_size = 0;
            return;
        }
        fuzz_sealed_copy = b, fuzz_sealed_cap = size;
    }
    memcpy(fuzz_sealed_copy, data, size);
    fuzz_sealed_size = size;
}

static inline int fuzz_known_sealed(const uint8_t *data, size_t size)
{
    return fuzz_sealed_size && size == fuzz_sealed_size &&
           memcmp(data, fuzz_sealed_copy, size) == 0;
}

/* Structure-aware mutation for container formats, then the result is resealed (the
 * checksum-failure path stays covered by the harness trying the raw input too):
 *   1/2  libFuzzer's mutation of the payload only (magic, kind, version, parameter id stay
 *        those of the seed, so the mutation lands in the fields the loader validates);
 *   1/4  of the payload's head only (FUZZ_HEAD_BYTES: parameter block, key id, counts, the
 *        first ciphertext header), where most checks are but which a uniform mutation of an
 *        84 KB input rarely touches;
 *   1/8  a well-formed edit of the parameter block (fuzz_edit_params);
 *   1/8  the whole input. */
static inline size_t fuzz_container_mutate(uint8_t *data, size_t size, size_t max_size,
                                           unsigned seed)
{
    unsigned pick = seed % 8;
    if (size < FUZZ_FRAME || max_size <= FUZZ_FRAME)
        pick = 7;
    /* The payload's head: after the chunk count and metadata length in a chunked frame. */
    size_t skip = fuzz_chunked(data, size) && size >= FUZZ_FRAME + PPNN_CHUNKED_FIXED_BYTES
                      ? PPNN_CHUNKED_FIXED_BYTES : 0;
    uint8_t *p = data + PPNN_FILE_HEADER_BYTES + skip;
    size_t body = size >= FUZZ_FRAME + skip ? size - FUZZ_FRAME - skip : 0;
    if (pick == 6 && !fuzz_edit_params(p, body, seed))
        pick = 4;
    if (pick < 4) {
        size = LLVMFuzzerMutate(p, body, max_size - FUZZ_FRAME - skip) + FUZZ_FRAME + skip;
    } else if (pick < 6) {
        size_t w = body < FUZZ_HEAD_BYTES ? body : FUZZ_HEAD_BYTES;
        size_t nw = w ? LLVMFuzzerMutate(p, w, w) : 0; /* may shrink the head, never grow it */
        memmove(p + nw, p + w, size - PPNN_FILE_HEADER_BYTES - skip - w);
        size -= w - nw;
    } else if (pick == 7) {
        size = LLVMFuzzerMutate(data, size, max_size);
    }
    fuzz_reseal(data, size);
    fuzz_remember_sealed(data, size);
    return size;
}

#define FUZZ_CONTAINER_MUTATOR                                                                  \
    size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,             \
                                   unsigned int seed)                                       \
    {                                                                                       \
        return fuzz_container_mutate(data, size, max_size, seed);                           \
    }

/* The parameter set of the committed small ckks seeds (tests/gen/fuzz_corpus.c, *16.*): N = 16,
 * q_0 28 bits, q_1 24 bits, P 30 bits, scale 2^24. Built once; loaders given it take the fast
 * compare path, so most executions fuzz the body instead of regenerating primes. */
static inline const ckks_params *fuzz_seed_params(void)
{
    static ckks_params *p;
    if (!p) {
        ckks_spec spec;
        memset(&spec, 0, sizeof spec);
        /* N = 16: fuzz builds load the unit tests' insecure small rings (serialize.c,
         * FILE_MIN_LOGN), so seeds are a few hundred bytes; the N = 4096 seeds take the
         * rebuild-from-file path (fuzz/README.md, "Small rings"). */
        spec.logn = 4;
        spec.insecure_for_testing = 1;
        spec.nq = 2;
        spec.q_bits[0] = 28;
        spec.q_bits[1] = 24;
        spec.p_bits = 30;
        spec.scale = 0x1p24;
        if (ckks_params_new(&p, &spec))
            abort();
    }
    return p;
}

/* Whether the input's parameter block differs from the seed set's: only then is the
 * rebuild-from-file path worth running (it would rebuild the same set otherwise). */
static inline int fuzz_params_block_changed(const uint8_t *data, size_t size)
{
    static uint8_t block[8 + 4 * 2 + 4 + 8 + 8 * 2 + 8];
    static int have;
    const ckks_params *p = fuzz_seed_params();
    if (!have) {
        size_t o = 0;
        ppnn_put_u32(block + o, p->logn), o += 4;
        ppnn_put_u32(block + o, (uint32_t)p->nq), o += 4;
        ppnn_put_u32(block + o, 28), o += 4;
        ppnn_put_u32(block + o, 24), o += 4;
        ppnn_put_u32(block + o, 30), o += 4;
        ppnn_put_f64(block + o, p->scale), o += 8;
        ppnn_put_u64(block + o, p->q[0]), o += 8;
        ppnn_put_u64(block + o, p->q[1]), o += 8;
        ppnn_put_u64(block + o, p->p);
        have = 1;
    }
    size_t at = PPNN_FILE_HEADER_BYTES + (fuzz_chunked(data, size) ? PPNN_CHUNKED_FIXED_BYTES : 0);
    return size < at + sizeof block || memcmp(data + at, block, sizeof block) != 0;
}

static char fuzz_scratch_path[160];
static inline void fuzz_scratch_remove(void) { unlink(fuzz_scratch_path); }

/* Writes data to this process's scratch file (for loaders that take a path), in $TMPDIR or
 * else /dev/shm: on a disk-backed /tmp the writes, not the parsers, would set the pace. */
static inline const char *fuzz_scratch(const uint8_t *data, size_t size)
{
    char *path = fuzz_scratch_path;
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !dir[0])
            dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof fuzz_scratch_path, "%s/ppnn-fuzz-%d", dir, (int)getpid());
        atexit(fuzz_scratch_remove);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    for (size_t o = 0; o < size;) {
        ssize_t k = write(fd, data + o, size - o);
        if (k <= 0)
            abort();
        o += (size_t)k;
    }
    close(fd);
    return path;
}

/* A loader adapter: loads path under *params (NULL: rebuilt from the file), frees whatever it
 * loaded, returns the loader's status. */
typedef ppnn_status (*fuzz_loader)(ckks_params **params, const char *path);

/* One key-file input: loaded against the seed parameters (the consumer's path: keys of other
 * parameters are a mismatch) and, when its parameter block was mutated, with the parameters
 * rebuilt from the file. A failed load must not leave a parameter set behind. */
static inline void fuzz_key_file(const uint8_t *data, size_t size, fuzz_loader load)
{
    const char *path = fuzz_scratch(data, size);
    ckks_params *seed = (ckks_params *)fuzz_seed_params(), *p = seed;
    ppnn_status st = load(&p, path);
    (void)st;
    if (p != seed)
        abort();
    if (fuzz_params_block_changed(data, size)) {
        ckks_params *own = NULL;
        if (load(&own, path) == PPNN_OK)
            ckks_params_free(own);
        else if (own)
            abort();
    }
}

/* Runs try_one on the input as given and, for containers, on a resealed copy. */
static inline void fuzz_raw_and_resealed(const uint8_t *data, size_t size,
                                         void (*try_one)(const uint8_t *, size_t))
{
    try_one(data, size);
    if (size < FUZZ_FRAME || fuzz_known_sealed(data, size))
        return;
    uint8_t *copy = malloc(size);
    if (!copy)
        return;
    memcpy(copy, data, size);
    fuzz_reseal(copy, size);
    if (memcmp(copy, data, size) != 0)
        try_one(copy, size);
    free(copy);
}

/* The entry points of a container harness: the structure-aware mutator, and each input tried
 * raw and resealed with try_one. */
#define FUZZ_CONTAINER_HARNESS(try_one)                                                         \
    FUZZ_CONTAINER_MUTATOR                                                                      \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                \
    {                                                                                           \
        fuzz_raw_and_resealed(data, size, try_one);                                             \
        return 0;                                                                               \
    }

/* A key-file harness around one fuzz_loader adapter. */
#define FUZZ_KEY_HARNESS(load)                                                                  \
    static void fuzz_try_key(const uint8_t *data, size_t size)                                  \
    {                                                                                           \
        fuzz_key_file(data, size, load);                                                        \
    }                                                                                           \
    FUZZ_CONTAINER_HARNESS(fuzz_try_key)

#endif
