/* Ciphertext batch frames, format version 3 (ckks batch_file.c, util chunked.c): one XXH3-128
 * digest per ciphertext under a BLAKE2b-256 top hash over the header, metadata, lengths and
 * digest table. Known answers of ppnn_chunk_digest (tests/gen/chunk_digest_kat.py: the Python
 * xxhash binding and xxhsum, not this code), round trip (bit-identical ciphertexts, the
 * documented digest and top hash recomputed independently), a flipped byte in ciphertext k
 * refused at its read naming k and nothing before, a flipped byte in the table or the metadata
 * refused at open, truncation, two bodies swapped (table as it was: their digests; table swapped
 * too: the top hash; table swapped and top hash recomputed: the index binding), a body moved to
 * another index with its digest and a recomputed top hash, version-1 and version-2 files refused
 * in one line, and the streaming upload check fed in random chunk sizes: the good file
 * accepted, each corruption refused. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ppnn/ckks_io.h"
#include "testutil.h"

#define NCT 5
#define DB PPNN_CHUNK_DIGEST_BYTES

/* ppnn_chunk_digest(index, body[0, len)) for body[i] = (37 i + 11) mod 256, as computed by
 * tests/gen/chunk_digest_kat.py (XXH3-128, seed = index, big-endian): a change of the seed
 * derivation, the byte order or the hash fails here. */
static const struct {
    uint64_t index;
    size_t len;
    const char *hex;
} KAT[] = {
    {UINT64_C(0), 0, "99aa06d3014798d86001c324468d497f"},
    {UINT64_C(0), 17, "e0b749d9e42a6e14261ec05370486e62"},
    {UINT64_C(0), 300, "2e54aecc77ad4b307cd908f5507d97b3"},
    {UINT64_C(5), 17, "c6343f8fada7547c5cda7074271389ef"},
    {UINT64_C(5), 300, "4fcf98b3d6b97f4f04f927b1430b6ea8"},
    {UINT64_C(1099511627779), 300, "3af93aefa22613c45787d129e82001ad"},
    {UINT64_C(5), 0, "d037d24a0847dc76b2068296fae79545"},
};

static void test_known_answers(void)
{
    uint8_t body[300];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)((37 * i + 11) % 256);
    for (size_t k = 0; k < sizeof KAT / sizeof KAT[0]; k++) {
        uint8_t d[DB];
        char hex[2 * DB + 1];
        ppnn_chunk_digest(d, KAT[k].index, body, KAT[k].len);
        sodium_bin2hex(hex, sizeof hex, d, DB);
        CHECK_MSG(!strcmp(hex, KAT[k].hex), "digest(%llu, %zu bytes) = %s, want %s",
                  (unsigned long long)KAT[k].index, KAT[k].len, hex, KAT[k].hex);
    }
}

static ckks_params *small_params(void)
{
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = 12;
    spec.nq = 2;
    spec.q_bits[0] = 30;
    spec.q_bits[1] = 24;
    spec.p_bits = 30;
    spec.scale = ldexp(1, 24);
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &spec));
    if (!p)
        exit(tu_finish("test_batch_digest"));
    return p;
}

static int same_ct(const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return a->level == b->level && a->size == b->size && a->scale == b->scale &&
           memcmp(a->data, b->data, a->size * (a->level + 1) * a->params->n * 8) == 0;
}

/* The layout of a single-batch file, read from its own fields (docs/file-formats.md). */
typedef struct {
    uint64_t count, meta, lens, bodies, table, trailer;
    uint64_t off[NCT], len[NCT];
} layout;

static layout layout_of(const uint8_t *f, size_t n)
{
    layout l;
    memset(&l, 0, sizeof l);
    l.count = ppnn_get_u64(f + 56);
    l.meta = 72;
    l.lens = 72 + ppnn_get_u64(f + 64);
    l.bodies = l.lens + 8 * l.count;
    l.trailer = n - 32;
    l.table = l.trailer - DB * l.count;
    uint64_t at = l.bodies;
    for (size_t i = 0; i < NCT && i < l.count; i++) {
        l.len[i] = ppnn_get_u64(f + l.lens + 8 * i);
        l.off[i] = at, at += l.len[i];
    }
    /* L = 16 + M + 24 C + S (ppnn/util.h): 16-byte digests. */
    CHECK(l.count == NCT && at == l.table && ppnn_get_u64(f + 48) == n - 88 &&
          ppnn_get_u64(f + 48) == 16 + ppnn_get_u64(f + 64) + 24 * l.count + (at - l.bodies));
    return l;
}

/* The top hash as documented: BLAKE2b-256 of bytes [0, bodies) then the digest table. */
static void top_hash(uint8_t out[32], const uint8_t *f, const layout *l)
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    crypto_generichash_update(&h, f, l->bodies);
    crypto_generichash_update(&h, f + l->table, DB * l->count);
    crypto_generichash_final(&h, out, 32);
}

/* Reads every ciphertext of path through the streamed reader; the index of the first that
 * fails (NCT when none), open failures as -1. */
static int read_all(const char *path, const ckks_params *p, ckks_ciphertext *want, int *bad)
{
    ckks_params *pp = (ckks_params *)p;
    ckks_batch_set *s = NULL;
    ckks_batch_reader *r = NULL;
    *bad = NCT;
    if (ckks_batch_set_open(&s, &pp, path) || ckks_batch_reader_open(&r, s, 0)) {
        ckks_batch_set_close(s);
        return -1;
    }
    int failed = 0;
    char msg[512] = "";
    for (size_t i = 0; i < ckks_batch_reader_count(r); i++) {
        size_t level, size;
        double scale;
        ckks_batch_reader_meta(r, i, &level, &size, &scale);
        ckks_ciphertext ct = {0};
        if (ckks_batch_reader_get(&ct, r, i, level)) {
            if (!failed)
                *bad = (int)i, snprintf(msg, sizeof msg, "%s", ppnn_last_error());
            failed++;
        } else if (want) {
            CHECK_MSG(same_ct(&ct, &want[i]), "ciphertext %zu differs after the round trip", i);
        }
        ckks_ct_free(&ct);
    }
    ckks_batch_reader_close(r);
    ckks_batch_set_close(s);
    if (failed)
        ppnn_fail(PPNN_ERR_FORMAT, "%s", msg);
    return failed;
}

static const char *write_copy(const char *name, const uint8_t *f, size_t n)
{
    return tu_write(name, f, n);
}

/* Feeds f to a streaming check in random chunks (1 .. 3000 bytes). */
static ppnn_status stream(const uint8_t *f, size_t n, unsigned seed, uint64_t max_chunks,
                          uint8_t trailer[32])
{
    ppnn_file_check c;
    ppnn_file_check_init(&c, "upload");
    ppnn_file_check_chunked(&c, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION, max_chunks,
                            CKKS_CHUNK_NOUN);
    ppnn_status st = PPNN_OK;
    uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;
    for (size_t off = 0; off < n && !st;) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        size_t take = 1 + (size_t)(x >> 33) % 3000;
        take = take < n - off ? take : n - off;
        st = ppnn_file_check_update(&c, f + off, take);
        off += take;
    }
    if (!st)
        st = ppnn_file_check_finish(&c);
    if (!st && trailer)
        memcpy(trailer, c.trailer, 32);
    ppnn_file_check_free(&c);
    return st;
}

/* The smallest chunked frame (no metadata, one empty chunk: L = 16 + 24) and the same with a
 * 1-byte chunk: the reader and the streaming check agree on both, and a flipped body byte is
 * refused by both (fuzz_http found the reader refusing the empty one, "no chunk table", which
 * the streaming check accepted: a bound written for 32-byte digests). */
static void test_smallest_frames(void)
{
    for (size_t body = 0; body <= 1; body++) {
        const size_t n = PPNN_FILE_HEADER_BYTES + 16 + 8 + body + DB + PPNN_FILE_TRAILER_BYTES;
        uint8_t f[256];
        memset(f, 0, sizeof f);
        ppnn_put_u64(f + 56, 1);         /* one chunk */
        ppnn_put_u64(f + 64, 0);         /* no metadata */
        ppnn_put_u64(f + 72, body);      /* its length */
        f[80] = 0x5a;                    /* its body, when it has one */
        ppnn_file_frame(f, n, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION, NULL);
        ppnn_chunked_reseal(f, n);
        ppnn_chunked ch;
        CHECK_OK(ppnn_chunked_view(&ch, f, n, "small", CKKS_CHUNK_NOUN));
        CHECK(ch.count == 1 && ch.len[0] == body && ch.meta_len == 0);
        CHECK_OK(ppnn_chunk_verify(&ch, 0, f + ch.offset[0], "small"));
        ppnn_chunked_free(&ch);
        uint8_t tr[32];
        CHECK_OK(stream(f, n, 3, 1, tr));
        CHECK(!memcmp(tr, f + n - 32, 32));
        if (body) {
            f[80] ^= 1;
            CHECK_OK(ppnn_chunked_view(&ch, f, n, "small", CKKS_CHUNK_NOUN));
            CHECK_ERR(ppnn_chunk_verify(&ch, 0, f + ch.offset[0], "small"), PPNN_ERR_FORMAT);
            ppnn_chunked_free(&ch);
            CHECK_ERR(stream(f, n, 3, 1, NULL), PPNN_ERR_FORMAT);
        }
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_known_answers();
    test_smallest_frames();
    ckks_params *p = small_params();
    ckks_secret_key sk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, p));
    ckks_ciphertext ct[NCT];
    memset(ct, 0, sizeof ct);
    double v[8];
    for (int i = 0; i < 8; i++)
        v[i] = 0.01 * i;
    for (size_t i = 0; i < NCT; i++)
        CHECK_OK(ckks_encrypt_sk_values(&ct[i], &sk, v, 8, p->nq - 1, p->scale));
    CHECK_OK(ckks_mod_switch(&ct[4], 0)); /* another level, stored unseeded: another length */
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT, info.images = 8, info.role = CKKS_BATCH_INPUT;
    info.shape[0] = 1, info.shape[1] = 1, info.shape[2] = NCT;
    char path[600];
    snprintf(path, sizeof path, "%s/batch.ct", tu_tmpdir());
    CHECK_OK(ckks_batch_save(path, ct, NCT, &info));
    uint8_t *f;
    size_t n;
    CHECK_OK(ppnn_read_file(&f, &n, path, (size_t)1 << 28));
    CHECK(n == ckks_batch_file_bytes(ct, NCT));
    CHECK(ppnn_get_u32(f + 12) == CKKS_BATCH_FILE_VERSION);
    const layout l = layout_of(f, n);
    uint8_t *g = malloc(n);
    int bad;

    /* Round trip, streamed and whole; the documented digests and top hash. */
    CHECK(read_all(path, p, ct, &bad) == 0);
    ckks_ciphertext *loaded = NULL;
    size_t count = 0;
    ckks_batch_info got;
    ckks_params *pp = p;
    CHECK_OK(ckks_batch_load(&loaded, &count, &got, &pp, path));
    for (size_t i = 0; i < count; i++) {
        CHECK(same_ct(&loaded[i], &ct[i]));
        ckks_ct_free(&loaded[i]);
    }
    free(loaded);
    for (size_t i = 0; i < NCT; i++) {
        XXH128_canonical_t d;
        XXH128_canonicalFromHash(&d, XXH3_128bits_withSeed(f + l.off[i], l.len[i], i));
        CHECK_MSG(!memcmp(d.digest, f + l.table + DB * i, DB), "digest %zu is not the documented "
                  "one", i);
        CHECK(l.len[i] == ckks_batch_record_bytes(&ct[i]));
    }
    uint8_t top[32];
    top_hash(top, f, &l);
    CHECK(!memcmp(top, f + l.trailer, 32));
    CHECK(ckks_batch_key_id_offset(p) + CKKS_KEY_ID_BYTES <= l.lens &&
          !memcmp(f + ckks_batch_key_id_offset(p), info.key_id, CKKS_KEY_ID_BYTES));

    /* A flipped byte in ciphertext k: everything opens, only k is refused, naming it. */
    for (size_t k = 0; k < NCT; k++) {
        memcpy(g, f, n);
        g[l.off[k] + l.len[k] / 2] ^= 0x10;
        const char *q = write_copy("flip.ct", g, n);
        CHECK(read_all(q, p, NULL, &bad) == 1 && bad == (int)k);
        char want[64];
        snprintf(want, sizeof want, "ciphertext %zu of %d: checksum mismatch", k, NCT);
        CHECK_MSG(strstr(ppnn_last_error(), want) && !strchr(ppnn_last_error(), '\n'),
                  "message: %s", ppnn_last_error());
        pp = p;
        CHECK_ERR(ckks_batch_load(&loaded, &count, &got, &pp, q), PPNN_ERR_FORMAT);
        CHECK(strstr(ppnn_last_error(), want) != NULL);
    }
    /* A flipped byte in the digest table, the lengths, the metadata (a record head, the key id,
     * the count) or the top hash: refused at open. */
    const uint64_t at[] = {l.table + 5, l.table + DB * 3 + DB - 1, l.lens + 3, l.meta + 40,
                           l.bodies - 8 - 20 * 2 - 3, ckks_batch_key_id_offset(p) + 1, 56, 64,
                           l.trailer + 7};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        memcpy(g, f, n);
        g[at[k]] ^= 0x01;
        CHECK_MSG(read_all(write_copy("meta.ct", g, n), p, NULL, &bad) == -1,
                  "flip at %llu not refused at open", (unsigned long long)at[k]);
        pp = p;
        CHECK_ERR(ckks_batch_load(&loaded, &count, &got, &pp, tu_write("meta.ct", g, n)),
                  PPNN_ERR_FORMAT);
    }
    /* Truncated anywhere (the header's length no longer matches): refused at open. */
    const size_t cuts[] = {60, 80, l.lens + 4, l.off[2] + 9, l.table + 40, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        CHECK(read_all(write_copy("cut.ct", f, cuts[k]), p, NULL, &bad) == -1);
        pp = p;
        CHECK_ERR(ckks_batch_load(&loaded, &count, &got, &pp, tu_write("cut.ct", f, cuts[k])),
                  PPNN_ERR_FORMAT);
    }
    /* Bodies 1 and 2 (same length) swapped. Table untouched: both refused at their reads. */
    CHECK(l.len[1] == l.len[2]);
    memcpy(g, f, n);
    memcpy(g + l.off[1], f + l.off[2], l.len[1]);
    memcpy(g + l.off[2], f + l.off[1], l.len[1]);
    CHECK(read_all(write_copy("swap.ct", g, n), p, NULL, &bad) == 2 && bad == 1);
    /* ... table entries swapped too: the top hash no longer matches. */
    memcpy(g + l.table + DB, f + l.table + 2 * DB, DB);
    memcpy(g + l.table + 2 * DB, f + l.table + DB, DB);
    CHECK(read_all(write_copy("swap.ct", g, n), p, NULL, &bad) == -1);
    CHECK(strstr(ppnn_last_error(), "checksum mismatch") != NULL);
    /* ... and the top hash recomputed: each digest still binds its index. */
    top_hash(g + l.trailer, g, &l);
    CHECK(read_all(write_copy("swap.ct", g, n), p, NULL, &bad) == 2 && bad == 1);
    CHECK(strstr(ppnn_last_error(), "ciphertext 1 of 5: checksum mismatch") != NULL);
    uint8_t d1[DB], d2[DB];
    ppnn_chunk_digest(d1, 1, f + l.off[1], l.len[1]);
    ppnn_chunk_digest(d2, 2, f + l.off[1], l.len[1]);
    CHECK(memcmp(d1, d2, DB) != 0);
    ppnn_chunk_digest(d2, 1, f + l.off[1], l.len[1] - 1);
    CHECK(memcmp(d1, d2, DB) != 0);
    /* Body 1 moved to index 2 (same length) with its digest, top hash recomputed: index 2's
     * seed differs, so only ciphertext 2 is refused; every body cut by a byte, its length
     * entry and digest kept: the lengths no longer add up (refused at open); the same bytes
     * hashed as the shorter body do not give the stored digest. */
    memcpy(g, f, n);
    memcpy(g + l.off[2], f + l.off[1], l.len[1]);
    memcpy(g + l.table + 2 * DB, f + l.table + DB, DB);
    top_hash(g + l.trailer, g, &l);
    CHECK(read_all(write_copy("moved.ct", g, n), p, NULL, &bad) == 1 && bad == 2);
    CHECK_MSG(strstr(ppnn_last_error(), "ciphertext 2 of 5: checksum mismatch") != NULL,
              "message: %s", ppnn_last_error());
    CHECK_ERR(stream(g, n, 6, NCT, NULL), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "ciphertext 2 of 5") != NULL);
    for (size_t i = 0; i < NCT; i++) {
        ppnn_chunk_digest(d2, i, f + l.off[i], l.len[i] - 1);
        CHECK_MSG(memcmp(d2, f + l.table + DB * i, DB) != 0, "body %zu cut matches", i);
        ppnn_chunk_digest(d2, i, f + l.off[i] + 1, l.len[i] - 1);
        CHECK(memcmp(d2, f + l.table + DB * i, DB) != 0);
    }

    /* A version-1 batch file (one checksum over everything) and a version-2 one (these frames
     * with BLAKE2b-256 digests; here relabelled and given a valid top hash, so only the
     * version refuses it): one line naming the version and saying to re-encrypt, from the
     * streamed reader, the whole-file loader and the upload check. */
    ckks_batch_set *s = NULL;
    for (uint32_t ver = 1; ver <= 2; ver++) {
        memcpy(g, f, n);
        ppnn_put_u32(g + 12, ver);
        if (ver == 1)
            crypto_generichash(g + n - 32, 32, g, n - 32, NULL, 0);
        else
            top_hash(g + l.trailer, g, &l);
        const char *old = write_copy("old.ct", g, n);
        char want[32];
        snprintf(want, sizeof want, "version %u", ver);
        pp = p;
        CHECK_ERR(ckks_batch_set_open(&s, &pp, old), PPNN_ERR_FORMAT);
        CHECK_MSG(strstr(ppnn_last_error(), want) && strstr(ppnn_last_error(), "re-encrypt") &&
                  !strchr(ppnn_last_error(), '\n'), "message: %s", ppnn_last_error());
        CHECK_ERR(ckks_batch_load(&loaded, &count, &got, &pp, old), PPNN_ERR_FORMAT);
        CHECK_MSG(strstr(ppnn_last_error(), want) && strstr(ppnn_last_error(), "re-encrypt"),
                  "message: %s", ppnn_last_error());
    }

    /* The streaming upload check: the good file in random chunk sizes, its top hash kept. */
    uint8_t tr[32];
    for (unsigned seed = 1; seed <= 4; seed++) {
        CHECK_OK(stream(f, n, seed, NCT, tr));
        CHECK(!memcmp(tr, f + l.trailer, 32));
    }
    /* ... each corruption refused: a body (naming the ciphertext), a table entry, the
     * metadata, the lengths, truncation, trailing bytes, swapped bodies with a resealed top
     * hash, more ciphertexts than the caller allows. */
    for (size_t k = 0; k < NCT; k++) {
        memcpy(g, f, n);
        g[l.off[k] + 7] ^= 0x80;
        char want[64];
        snprintf(want, sizeof want, "ciphertext %zu of %d: checksum mismatch", k, NCT);
        CHECK_ERR(stream(g, n, (unsigned)k, NCT, NULL), PPNN_ERR_FORMAT);
        CHECK_MSG(strstr(ppnn_last_error(), want) != NULL, "message: %s", ppnn_last_error());
    }
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        memcpy(g, f, n);
        g[at[k]] ^= 0x01;
        CHECK_ERR(stream(g, n, 7, NCT, NULL), PPNN_ERR_FORMAT);
    }
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++)
        CHECK_ERR(stream(f, cuts[k], 3, NCT, NULL), PPNN_ERR_FORMAT);
    uint8_t *more = malloc(n + 3);
    memcpy(more, f, n), memset(more + n, 0, 3);
    CHECK_ERR(stream(more, n + 3, 2, NCT, NULL), PPNN_ERR_FORMAT);
    free(more);
    CHECK_ERR(stream(g, 0, 1, NCT, NULL), PPNN_ERR_FORMAT); /* nothing at all */
    memcpy(g, f, n);
    memcpy(g + l.off[1], f + l.off[2], l.len[1]);
    memcpy(g + l.off[2], f + l.off[1], l.len[1]);
    memcpy(g + l.table + DB, f + l.table + 2 * DB, DB);
    memcpy(g + l.table + 2 * DB, f + l.table + DB, DB);
    top_hash(g + l.trailer, g, &l);
    CHECK_ERR(stream(g, n, 5, NCT, NULL), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "ciphertext 1 of 5") != NULL);
    CHECK_ERR(stream(f, n, 1, NCT - 1, NULL), PPNN_ERR_FORMAT);
    /* A resealed file (ppnn_chunked_reseal, as the fuzzers do) passes both checks again. */
    memcpy(g, f, n);
    g[l.off[0]] ^= 1;
    ppnn_chunked_reseal(g, n);
    CHECK_OK(stream(g, n, 9, NCT, NULL));
    CHECK(read_all(write_copy("resealed.ct", g, n), p, NULL, &bad) == 0);

    free(f), free(g);
    for (size_t i = 0; i < NCT; i++)
        ckks_ct_free(&ct[i]);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
    return tu_finish("test_batch_digest");
}
