/* Multi-batch files (ckks batch_set.c): round trip of 3 batches (the last partial) with seeded
 * and unseeded ciphertexts of several levels and sizes, streamed reads at the stored and at a
 * lower level (= mod-switched), a single batch written as a plain batch file, truncation at
 * every frame boundary and in the middle (the batch named), corruption (only the damaged
 * ciphertext of that batch is refused), trailing data, a writer that is aborted or not given every batch. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppnn/ckks_io.h"
#include "testutil.h"

#define NCT 4

static ckks_params *small_params(void)
{
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = 12;
    spec.nq = 3;
    spec.q_bits[0] = 30;
    spec.q_bits[1] = 24;
    spec.q_bits[2] = 24;
    spec.p_bits = 30; /* P >= every q_i */
    spec.scale = ldexp(1, 24);
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &spec));
    if (!p)
        exit(tu_finish("test_batch_set"));
    return p;
}

static const char *path_of(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", tu_tmpdir(), name);
    return b;
}

static int same_ct(const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return a->level == b->level && a->size == b->size && a->scale == b->scale &&
           memcmp(a->data, b->data, a->size * (a->level + 1) * a->params->n * 8) == 0;
}

/* Batch b: seeded at the top level, unseeded ones at lower levels (mod-switched), all at the
 * parameters' scale (what a loader accepts for inputs: ckks_io_ct_scale_ok). */
static void make_batch(ckks_ciphertext *ct, const ckks_secret_key *sk, size_t b)
{
    const ckks_params *p = sk->params;
    ckks_plaintext pt = {0};
    double v[8];
    for (int i = 0; i < 8; i++)
        v[i] = 0.1 * (double)(i + (int)b);
    CHECK_OK(ckks_encode(&pt, p, v, 8, p->nq - 1, p->scale));
    for (size_t i = 0; i < NCT; i++)
        CHECK_OK(ckks_encrypt_sk(&ct[i], sk, &pt));
    CHECK_OK(ckks_mod_switch(&ct[1], 1));
    CHECK_OK(ckks_mod_switch(&ct[2], 0));
    CHECK_OK(ckks_mod_switch(&ct[3], 1));
    ckks_pt_free(&pt);
}

static void free_cts(ckks_ciphertext *ct, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ckks_ct_free(&ct[i]);
}

static uint64_t file_size(const char *path)
{
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, path, (size_t)1 << 30));
    free(buf);
    return len;
}

static void copy_cut(const char *src, const char *dst, uint64_t len, long flip)
{
    uint8_t *buf;
    size_t n;
    CHECK_OK(ppnn_read_file(&buf, &n, src, (size_t)1 << 30));
    if (flip >= 0)
        buf[flip] ^= 0x04;
    tu_write(strrchr(dst, '/') + 1, buf, len < n ? len : n);
    free(buf);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    ckks_params *p = small_params();
    ckks_secret_key sk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, p));
    ckks_ciphertext ct[3][NCT];
    memset(ct, 0, sizeof ct);
    for (size_t b = 0; b < 3; b++)
        make_batch(ct[b], &sk, b);
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT;
    info.shape[0] = 1, info.shape[1] = 2, info.shape[2] = 2;
    info.role = CKKS_BATCH_INPUT;
    const uint64_t images[3] = {p->slots, p->slots, 7};
    const char *path = path_of("set.ct");
    ckks_batch_set_writer *w = NULL;
    CHECK_OK(ckks_batch_set_create(&w, path, p, &info, 3, images));
    for (size_t b = 0; b < 3 && w; b++)
        CHECK_OK(ckks_batch_set_append(w, ct[b], NCT));
    CHECK_ERR(ckks_batch_set_append(w, ct[0], NCT), PPNN_ERR_PARAM); /* a 4th batch */
    CHECK_OK(ckks_batch_set_finish(w));

    /* Round trip; the parameters rebuilt from the file. */
    ckks_params *fp = NULL;
    ckks_batch_set *s = NULL;
    CHECK_OK(ckks_batch_set_open(&s, &fp, path));
    if (!s)
        return tu_finish("test_batch_set");
    CHECK(ckks_batch_set_batches(s) == 3 && ckks_params_same(fp, p));
    ckks_batch_info got;
    ckks_batch_set_info(&got, s, SIZE_MAX);
    CHECK(got.images == 2 * p->slots + 7 && got.role == CKKS_BATCH_INPUT);
    CHECK(memcmp(got.key_id, info.key_id, CKKS_KEY_ID_BYTES) == 0 && got.shape[1] == 2);
    ckks_batch_set_info(&got, s, 2);
    CHECK(got.images == 7);
    for (size_t b = 0; b < 3; b++) {
        ckks_batch_reader *r = NULL;
        CHECK_OK(ckks_batch_reader_open(&r, s, b));
        if (!r)
            continue;
        CHECK(ckks_batch_reader_count(r) == NCT);
        for (size_t i = 0; i < NCT; i++) {
            ckks_ciphertext back = {0}, low = {0}, want = {0};
            size_t level, size;
            double scale;
            ckks_batch_reader_meta(r, i, &level, &size, &scale);
            CHECK(level == ct[b][i].level && size == ct[b][i].size);
            CHECK_OK(ckks_batch_reader_get(&back, r, i, level));
            CHECK_MSG(back.data && same_ct(&back, &ct[b][i]), "batch %zu ct %zu differs", b, i);
            /* A seeded one keeps its seed (it is sent on, or written again, as (c0, seed)). */
            CHECK(back.has_seed == (ct[b][i].has_seed && ct[b][i].size == 2));
            CHECK(!back.has_seed || !memcmp(back.seed, ct[b][i].seed, CKKS_SEED_BYTES));
            /* At level 0: the rows of a mod switch, c1 of a seeded one re-expanded. */
            CHECK_OK(ckks_batch_reader_get(&low, r, i, 0));
            CHECK_OK(ckks_ct_copy(&want, &ct[b][i]));
            CHECK_OK(ckks_mod_switch(&want, 0));
            CHECK(low.data && same_ct(&low, &want));
            if (level < p->nq - 1)
                CHECK_ERR(ckks_batch_reader_get(&back, r, i, level + 1), PPNN_ERR_PARAM);
            CHECK(low.has_seed == back.has_seed);
            ckks_ct_free(&back), ckks_ct_free(&low), ckks_ct_free(&want);
        }
        ckks_batch_reader_close(r);
    }
    /* Checksums: each batch's frame trailer; the last one ends the file. */
    uint8_t sum[3][PPNN_FILE_TRAILER_BYTES], tail[PPNN_FILE_TRAILER_BYTES];
    for (size_t b = 0; b < 3; b++)
        CHECK_OK(ckks_batch_set_checksum(sum[b], s, b));
    FILE *tf = fopen(path, "rb");
    CHECK(tf && fseek(tf, -(long)sizeof tail, SEEK_END) == 0 &&
          fread(tail, 1, sizeof tail, tf) == sizeof tail);
    if (tf)
        fclose(tf);
    CHECK(!memcmp(sum[2], tail, sizeof tail) && memcmp(sum[0], sum[1], sizeof tail) != 0);
    ckks_batch_set_close(s);
    s = NULL;
    /* The same file against other parameters: refused. */
    ckks_spec other = p->spec;
    other.q_bits[2] = 25, other.primes[0] = 0;
    ckks_params *op = NULL;
    CHECK_OK(ckks_params_new(&op, &other));
    CHECK_ERR(ckks_batch_set_open(&s, &op, path), PPNN_ERR_MISMATCH);
    CHECK(s == NULL);
    ckks_params_free(op);

    /* One batch: a plain batch file, readable by ckks_batch_load too. */
    const char *one = path_of("one.ct");
    CHECK_OK(ckks_batch_set_create(&w, one, p, &info, 1, images + 2));
    CHECK_OK(ckks_batch_set_append(w, ct[2], NCT));
    CHECK_OK(ckks_batch_set_finish(w));
    ckks_ciphertext *loaded = NULL;
    size_t count = 0;
    ckks_params *pp = p;
    CHECK_OK(ckks_batch_load(&loaded, &count, &got, &pp, one));
    CHECK(count == NCT && got.images == 7 && loaded && same_ct(&loaded[3], &ct[2][3]));
    free_cts(loaded, count), free(loaded);
    CHECK_OK(ckks_batch_set_open(&s, &pp, one));
    CHECK(s && ckks_batch_set_batches(s) == 1);
    ckks_batch_set_close(s);
    s = NULL;

    /* Truncation: everywhere refused before any ciphertext is read; in the middle of batch 2
     * the message names it. Frame boundaries are found from the set's own extents. */
    const uint64_t size = file_size(path);
    const uint64_t batch_bytes = ckks_batch_file_bytes(ct[1], NCT);
    const uint64_t b2 = size - batch_bytes; /* batch 3 starts here; batch 2 ends here */
    const char *cut = path_of("cut.ct");
    const uint64_t cuts[] = {10, 100, b2 - 2 * batch_bytes + 3, b2 - batch_bytes / 2, b2 + 60,
                             size - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        copy_cut(path, cut, cuts[k], -1);
        pp = p;
        CHECK_ERR(ckks_batch_set_open(&s, &pp, cut), PPNN_ERR_FORMAT);
        CHECK(s == NULL);
    }
    copy_cut(path, cut, b2 - batch_bytes / 2, -1);
    CHECK_ERR(ckks_batch_set_open(&s, &pp, cut), PPNN_ERR_FORMAT);
    CHECK_MSG(strstr(ppnn_last_error(), "truncated in batch 2 of 3") != NULL, "message: %s",
              ppnn_last_error());
    /* Trailing bytes after the last batch. */
    {
        uint8_t *buf;
        size_t n;
        CHECK_OK(ppnn_read_file(&buf, &n, path, (size_t)1 << 30));
        uint8_t *more = malloc(n + 5);
        memcpy(more, buf, n), memset(more + n, 0, 5);
        tu_write("trail.ct", more, n + 5);
        free(buf), free(more);
        CHECK_ERR(ckks_batch_set_open(&s, &pp, path_of("trail.ct")), PPNN_ERR_FORMAT);
    }
    /* Corruption inside a ciphertext body of batch 2: the set and every reader open (headers,
     * tables and top hashes intact), batch 1 reads whole, and in batch 2 exactly one
     * ciphertext is refused, by its digest, naming the batch and the ciphertext. */
    copy_cut(path, cut, size, (long)(b2 - batch_bytes / 2));
    CHECK_OK(ckks_batch_set_open(&s, &pp, cut));
    for (size_t b = 0; b < 2; b++) {
        ckks_batch_reader *r = NULL;
        CHECK_OK(ckks_batch_reader_open(&r, s, b));
        size_t read_errors = 0;
        for (size_t i = 0; r && i < NCT; i++) {
            ckks_ciphertext back = {0};
            ppnn_status e = ckks_batch_reader_get(&back, r, i, ct[b][i].level);
            if (e) {
                read_errors++;
                CHECK_MSG(e == PPNN_ERR_FORMAT && strstr(ppnn_last_error(), "batch 2 of 3") &&
                          strstr(ppnn_last_error(), "checksum mismatch"), "message: %s",
                          ppnn_last_error());
            } else {
                CHECK(same_ct(&back, &ct[b][i]));
            }
            ckks_ct_free(&back);
        }
        CHECK(read_errors == (b == 1 ? 1u : 0u));
        ckks_batch_reader_close(r);
    }
    ckks_batch_set_close(s);

    /* A writer aborted, or finished with a batch missing, leaves nothing. */
    const char *ab = path_of("aborted.ct");
    CHECK_OK(ckks_batch_set_create(&w, ab, p, &info, 3, images));
    CHECK_OK(ckks_batch_set_append(w, ct[0], NCT));
    ckks_batch_set_abort(w);
    CHECK(access(ab, F_OK) != 0);
    CHECK_OK(ckks_batch_set_create(&w, ab, p, &info, 3, images));
    CHECK_OK(ckks_batch_set_append(w, ct[0], NCT));
    CHECK_ERR(ckks_batch_set_finish(w), PPNN_ERR_PARAM);
    CHECK(access(ab, F_OK) != 0);

    for (size_t b = 0; b < 3; b++)
        free_cts(ct[b], NCT);
    ckks_secret_key_free(&sk);
    ckks_params_free(fp);
    ckks_params_free(p);
    return tu_finish("test_batch_set");
}
