/* ckks file formats: round trips, wrong keys and parameters, truncation, corruption. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ppnn/ckks_io.h"
#include "ckks_tu.h"

static int same_words(const uint64_t *a, const uint64_t *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Flips one byte / truncates a file and checks the loader refuses it. */
static void corrupt_copy(const char *src, const char *dst, long flip_at, long truncate_to)
{
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, src, (size_t)1 << 30));
    if (flip_at >= 0 && (size_t)flip_at < len)
        buf[flip_at] ^= 0x10;
    if (truncate_to >= 0 && (size_t)truncate_to < len)
        len = (size_t)truncate_to;
    tu_write(strrchr(dst, '/') + 1, buf, len);
    free(buf);
}

static void test_keys(void)
{
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk;
    ckks_public_key pk;
    ckks_relin_key rk;
    ckks_galois_keys gk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    CHECK_OK(ckks_keygen_public(&pk, &sk));
    CHECK_OK(ckks_keygen_relin(&rk, &sk));
    int steps[2] = {1, -3};
    CHECK_OK(ckks_keygen_galois(&gk, &sk, steps, 2, 1));
    uint8_t kid[CKKS_KEY_ID_BYTES], kid2[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid, &sk);

    const char *skp = ctu_tmp_path("secret.key"), *pkp = ctu_tmp_path("public.key");
    const char *rkp = ctu_tmp_path("relin.key"), *gkp = ctu_tmp_path("galois.key");
    CHECK_OK(ckks_secret_key_save(skp, &sk));
    CHECK_OK(ckks_public_key_save(pkp, &pk, kid));
    CHECK_OK(ckks_relin_key_save(rkp, &rk, kid));
    CHECK_OK(ckks_galois_keys_save(gkp, &gk, kid));
    struct stat st;
    CHECK(stat(skp, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* secret key: fresh params rebuilt from the file */
    ckks_params *p2 = NULL;
    ckks_secret_key sk2;
    CHECK_OK(ckks_secret_key_load(&sk2, &p2, skp));
    CHECK(p2 != NULL && ckks_params_same(p, p2));
    if (p2) {
        CHECK(same_words(sk.s, sk2.s, (p->nq + 1) * p->n));
        ckks_key_id(kid2, &sk2);
        CHECK(memcmp(kid, kid2, sizeof kid) == 0);
        ckks_secret_key_free(&sk2);
    }
    /* the other keys, checked against p */
    ckks_public_key pk2;
    CHECK_OK(ckks_public_key_load(&pk2, &p, kid2, pkp));
    CHECK(memcmp(kid, kid2, sizeof kid) == 0);
    CHECK(same_words(pk.b, pk2.b, p->nq * p->n) && same_words(pk.a, pk2.a, p->nq * p->n));
    ckks_public_key_free(&pk2);
    ckks_relin_key rk2;
    CHECK_OK(ckks_relin_key_load(&rk2, &p, NULL, rkp));
    size_t kw = p->nq * (p->nq + 1) * p->n;
    CHECK(same_words(rk.k.b, rk2.k.b, kw) && same_words(rk.k.a, rk2.k.a, kw));
    ckks_relin_key_free(&rk2);
    ckks_galois_keys gk2;
    CHECK_OK(ckks_galois_keys_load(&gk2, &p, NULL, gkp));
    CHECK(gk2.count == gk.count);
    for (size_t g = 0; g < gk.count && g < gk2.count; g++) {
        CHECK(gk.elements[g] == gk2.elements[g]);
        CHECK(same_words(gk.keys[g].b, gk2.keys[g].b, kw) && same_words(gk.keys[g].a, gk2.keys[g].a, kw));
    }
    ckks_galois_keys_free(&gk2);

    /* wrong kind of file */
    CHECK_ERR(ckks_relin_key_load(&rk2, &p, NULL, pkp), PPNN_ERR_FORMAT);
    /* other parameters (a different special prime size) are refused as a mismatch */
    ckks_params *other = ctu_file_params(31);
    CHECK_ERR(ckks_relin_key_load(&rk2, &other, NULL, rkp), PPNN_ERR_MISMATCH);
    ckks_params_free(other);
    /* truncated / corrupted keys */
    const char *bad = ctu_tmp_path("bad.key");
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, rkp, (size_t)1 << 30));
    free(buf);
    for (long cut = 0; cut < (long)len; cut += (long)len / 7 + 1) {
        corrupt_copy(rkp, bad, -1, cut);
        CHECK_ERR(ckks_relin_key_load(&rk2, &p, NULL, bad), PPNN_ERR_FORMAT);
    }
    for (long at = 3; at < (long)len; at += (long)len / 9 + 1) {
        corrupt_copy(skp, bad, at % 300, -1);
        ckks_params *p3 = NULL;
        CHECK_ERR(ckks_secret_key_load(&sk2, &p3, bad), PPNN_ERR_FORMAT);
        CHECK(p3 == NULL);
    }
    ckks_galois_keys_free(&gk);
    ckks_relin_key_free(&rk);
    ckks_public_key_free(&pk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p2);
    ckks_params_free(p);
}

static void test_batch(void)
{
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk, sk_other;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    CHECK_OK(ckks_keygen_secret(&sk_other, p));
    enum { COUNT = 5 };
    ckks_ciphertext cts[COUNT];
    memset(cts, 0, sizeof cts);
    ckks_plaintext pt;
    memset(&pt, 0, sizeof pt);
    double vals[64];
    for (size_t i = 0; i < COUNT; i++) {
        for (size_t j = 0; j < 64; j++)
            vals[j] = sin((double)(i * 64 + j));
        CHECK_OK(ckks_encode(&pt, p, vals, 64, p->nq - 1, p->scale));
        CHECK_OK(ckks_encrypt_sk(&cts[i], &sk, &pt));
    }
    /* one unseeded ciphertext exercises the full-component path (a batch shares one level and
     * scale; size-3 results at lower levels: test_ckks_hostile) */
    cts[COUNT - 1].has_seed = 0;

    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT;
    info.images = 64;
    info.shape[0] = 1, info.shape[1] = 1, info.shape[2] = COUNT;
    info.role = CKKS_BATCH_INPUT;
    const char *bp = ctu_tmp_path("batch.ct");
    CHECK_OK(ckks_batch_save(bp, cts, COUNT, &info));
    struct stat st;
    CHECK(stat(bp, &st) == 0 && (uint64_t)st.st_size == ckks_batch_file_bytes(cts, COUNT));
    /* ckks_batch_max_bytes is the size of fresh top-level ciphertexts stored unseeded (the
     * service's upload limit): exact for those, an upper bound for seeded ones */
    ckks_ciphertext plain2[2] = {cts[0], cts[1]};
    plain2[0].has_seed = plain2[1].has_seed = 0;
    CHECK(cts[0].level == p->nq - 1 && cts[0].size == 2);
    CHECK(ckks_batch_file_bytes(plain2, 1) == ckks_batch_max_bytes(p, 1));
    CHECK(ckks_batch_file_bytes(plain2, 2) == ckks_batch_max_bytes(p, 2));
    CHECK(ckks_batch_file_bytes(cts, COUNT - 2) < ckks_batch_max_bytes(p, COUNT - 2));
    /* seeded ciphertexts store c0 only: the file is well under the unseeded size */
    size_t full = COUNT * 2 * (p->nq) * p->n * 8;
    CHECK((size_t)st.st_size < full / 2);

    ckks_ciphertext *got = NULL;
    size_t count = 0;
    ckks_batch_info info2;
    CHECK_OK(ckks_batch_load(&got, &count, &info2, &p, bp));
    CHECK(count == COUNT && memcmp(&info, &info2, sizeof info) == 0);
    for (size_t i = 0; i < count && got; i++) {
        CHECK(got[i].level == cts[i].level && got[i].size == cts[i].size &&
              got[i].scale == cts[i].scale);
        CHECK(same_words(got[i].data, cts[i].data, cts[i].size * (cts[i].level + 1) * p->n));
        ckks_ct_free(&got[i]);
    }
    free(got);

    /* parameters rebuilt from the batch itself */
    ckks_params *p2 = NULL;
    CHECK_OK(ckks_batch_load(&got, &count, &info2, &p2, bp));
    for (size_t i = 0; i < count && got; i++)
        ckks_ct_free(&got[i]);
    free(got);
    ckks_params_free(p2);

    /* mismatched parameters */
    ckks_params *other = ctu_file_params(31);
    CHECK_ERR(ckks_batch_load(&got, &count, &info2, &other, bp), PPNN_ERR_MISMATCH);
    CHECK(got == NULL);
    ckks_params_free(other);
    /* truncations and corruption */
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, bp, (size_t)1 << 30));
    free(buf);
    const char *bad = ctu_tmp_path("bad.ct");
    for (long cut = 1; cut < (long)len; cut += (long)len / 11 + 1) {
        corrupt_copy(bp, bad, -1, cut);
        CHECK_ERR(ckks_batch_load(&got, &count, &info2, &p, bad), PPNN_ERR_FORMAT);
    }
    for (long at = 0; at < (long)len; at += (long)len / 13 + 1) {
        corrupt_copy(bp, bad, at, -1);
        CHECK_ERR(ckks_batch_load(&got, &count, &info2, &p, bad), PPNN_ERR_FORMAT);
    }
    /* a different key's id is visible to the caller (the CLI refuses it) */
    uint8_t kid_other[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid_other, &sk_other);
    CHECK(memcmp(kid_other, info.key_id, CKKS_KEY_ID_BYTES) != 0);

    for (size_t i = 0; i < COUNT; i++)
        ckks_ct_free(&cts[i]);
    ckks_pt_free(&pt);
    ckks_secret_key_free(&sk);
    ckks_secret_key_free(&sk_other);
    ckks_params_free(p);
}

/* Files declaring a ring below 2^12 (the unit tests' insecure sizes) are refused by every
 * loader of a product build; only fuzz builds load them (serialize.c, FILE_MIN_LOGN). */
static void test_small_ring_refused(void)
{
    ckks_params *p = ctu_params(4, 2, 28, 24, 30);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    ckks_relin_key rk;
    CHECK_OK(ckks_keygen_relin(&rk, &sk));
    uint8_t kid[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid, &sk);
    const char *skp = ctu_tmp_path("small_secret.key"), *rkp = ctu_tmp_path("small_relin.key");
    CHECK_OK(ckks_secret_key_save(skp, &sk));
    CHECK_OK(ckks_relin_key_save(rkp, &rk, kid));
    ckks_params *lp = NULL;
    ckks_secret_key sk2;
    CHECK(ckks_secret_key_load(&sk2, &lp, skp) == PPNN_ERR_FORMAT && lp == NULL);
    CHECK(strstr(ppnn_last_error(), "invalid parameters (logn 4, 2 primes)") != NULL);
    ckks_relin_key rk2;
    CHECK(ckks_relin_key_load(&rk2, &lp, kid, rkp) == PPNN_ERR_FORMAT && lp == NULL);
    CHECK(strstr(ppnn_last_error(), "invalid parameters (logn 4, 2 primes)") != NULL);
    ckks_relin_key_free(&rk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    test_keys();
    test_batch();
    test_small_ring_refused();
    return tu_finish("test_ckks_io");
}
