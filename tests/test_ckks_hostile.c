/* Hostile and careless inputs to the ckks loaders and the secret-material path:
 *   - no secret bytes in freed heap memory after keygen / save / load / encrypt / decrypt
 *     (a malloc/free interposer compiled into this test scans every freed block);
 *   - degenerate secret keys (all zero, all one, sparse) refused even with a valid checksum
 *     and key id;
 *   - every scale field (parameter block, each ciphertext) and the whole parameter block
 *     validated, Galois keys for the identity or duplicated elements refused;
 *   - lengths checked against the bytes present and the key-size limit before allocating.
 * Hostile files are "resealed": edited, then given a correct BLAKE2b checksum, as an attacker
 * would, so the test reaches the payload checks instead of stopping at the checksum. */
#include <malloc.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"
#include "ppnn/ring.h"
#include "ckks_tu.h"

/* ---- the interposer (not under AddressSanitizer, which owns malloc itself) ---------------- */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_INTERPOSER 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_INTERPOSER 0
#endif
#endif
#ifndef HAVE_INTERPOSER
#define HAVE_INTERPOSER 1
#endif

enum { NEEDLE_BYTES = 24, MAX_NEEDLES = 4 };
static uint8_t needles[MAX_NEEDLES][NEEDLE_BYTES];
static int n_needles;
static size_t residue_hits, largest_malloc;

#if HAVE_INTERPOSER
/* glibc exports its allocator under these names; defining malloc/free here interposes them for
 * the whole process, libc's own stdio buffers included. */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
    size_t seen = __atomic_load_n(&largest_malloc, __ATOMIC_RELAXED);
    while (n > seen && !__atomic_compare_exchange_n(&largest_malloc, &seen, n, 0, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED)) {
    }
    return __libc_malloc(n);
}

static int contains(const uint8_t *h, size_t n, const uint8_t *needle)
{
    for (const uint8_t *end = h + n - NEEDLE_BYTES + 1; h < end; h++) {
        h = memchr(h, needle[0], (size_t)(end - h));
        if (!h)
            return 0;
        if (!memcmp(h, needle, NEEDLE_BYTES))
            return 1;
    }
    return 0;
}

void free(void *p)
{
    if (p && __atomic_load_n(&n_needles, __ATOMIC_ACQUIRE)) {
        size_t len = malloc_usable_size(p);
        for (int k = 0; k < n_needles; k++)
            if (len >= NEEDLE_BYTES && contains(p, len, needles[k]))
                __atomic_add_fetch(&residue_hits, 1, __ATOMIC_RELAXED);
    }
    __libc_free(p);
}
#endif

static void arm_needle(const void *secret)
{
    memcpy(needles[n_needles], secret, NEEDLE_BYTES);
    __atomic_store_n(&n_needles, n_needles + 1, __ATOMIC_RELEASE);
}

static void disarm_needles(void)
{
    __atomic_store_n(&n_needles, 0, __ATOMIC_RELEASE);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint8_t *slurp(size_t *len, const char *path)
{
    uint8_t *buf = NULL;
    CHECK_OK(ppnn_read_file(&buf, len, path, (size_t)1 << 30));
    if (!buf)
        exit(tu_finish("test_ckks_hostile"));
    return buf;
}

/* Writes buf as dst after fixing the payload length and the checksum. */
static const char *reseal(const char *dst, uint8_t *buf, size_t len)
{
    if (memcmp(buf + 8, CKKS_KIND_BATCH, 4) == 0) { /* a chunked frame: digests and top hash */
        ppnn_chunked_reseal(buf, len);
        return tu_write(dst, buf, len);
    }
    ppnn_put_u64(buf + 48, len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
    crypto_generichash(buf + len - PPNN_FILE_TRAILER_BYTES, PPNN_FILE_TRAILER_BYTES, buf,
                       len - PPNN_FILE_TRAILER_BYTES, NULL, 0);
    return tu_write(dst, buf, len);
}

/* Byte offset (in the file) of the params block's scale and of the body after the key id. */
static size_t scale_offset(const ckks_params *p) { return PPNN_FILE_HEADER_BYTES + 8 + 4 * p->nq + 4; }
static size_t body_offset(const ckks_params *p)
{
    return PPNN_FILE_HEADER_BYTES + 4 + 4 + 4 * p->nq + 4 + 8 + 8 * p->nq + 8 + CKKS_KEY_ID_BYTES;
}

/* A secret key from integer coefficients (NTT form over all primes, as ckks keeps it). */
static void secret_from(ckks_secret_key *sk, const ckks_params *p, const int64_t *coef)
{
    sk->params = p;
    sk->s = sodium_malloc((p->nq + 1) * p->n * sizeof *sk->s);
    ring_poly_from_int64(sk->s, coef, p->ring, p->nq + 1);
    ring_poly_ntt_forward(sk->s, p->ring, p->nq + 1);
}

/* An error bound that covers a fresh encryption's noise with a wide margin: the release
 * refuses imaginary parts above 2E, and at N = 4096, scale 2^24 a slot's fresh noise has a
 * standard deviation of about 3.2·sqrt(N/2)/scale = 8.6e-6, so the maximum over the 2048 slots
 * of a few ciphertexts passes 4e-5 (E = 2e-5: refused in about 1 run in 100) now and then.
 * E = 12 standard deviations (threshold 24): never. Two bits of statistical security keep the
 * flooding small enough (slot sigma ~0.03) that the released values still resemble the input. */
static ckks_flood fresh_flood(const ckks_params *p)
{
    const ckks_flood f = {12 * 3.2 * sqrt((double)p->n / 2) / p->scale, 2, 1};
    return f;
}

/* ---- 2: no secret left in freed memory ------------------------------------------------------ */

static void test_secret_residue(void)
{
    if (!HAVE_INTERPOSER) {
        fprintf(stderr, "test_ckks_hostile: freed-memory scan skipped (AddressSanitizer build)\n");
        return;
    }
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    const char *skp = ctu_tmp_path("secret.key");
    /* The needles: the key's NTT form and its encoding in the file (known after one save;
     * the second save, the load and the use below run with both needles armed). */
    CHECK_OK(ckks_secret_key_save(skp, &sk));
    size_t len;
    uint8_t *file = slurp(&len, skp);
    residue_hits = 0;
    arm_needle(file + body_offset(p) + 100);
    arm_needle((const uint8_t *)sk.s + 8 * 1000);
    sodium_memzero(file, len);
    free(file);
    CHECK_OK(ckks_secret_key_save(skp, &sk));
    ckks_params *p2 = NULL;
    ckks_secret_key sk2;
    CHECK_OK(ckks_secret_key_load(&sk2, &p2, skp));
    CHECK_MSG(residue_hits == 0, "%zu freed blocks held secret-key bytes after save + load",
              residue_hits);
    /* Decryption: the plaintext m + e of each ciphertext (with c it reveals s). */
    enum { CLASSES = 3, BATCH = 16 };
    double v[BATCH], logits[BATCH * CLASSES];
    ckks_ciphertext ct[CLASSES];
    memset(ct, 0, sizeof ct);
    ckks_plaintext pt = {0}, mine = {0};
    for (size_t c = 0; c < CLASSES; c++) {
        for (size_t b = 0; b < BATCH; b++)
            v[b] = sin((double)(c * BATCH + b));
        CHECK_OK(ckks_encode(&pt, p, v, BATCH, 0, p->scale));
        CHECK_OK(ckks_encrypt_sk(&ct[c], &sk, &pt));
    }
    CHECK_OK(ckks_decrypt(&mine, &sk, &ct[CLASSES - 1]));
    arm_needle(mine.data + 2000);
    residue_hits = 0;
    CHECK_OK(hnn_decrypt_batch(logits, &sk2, ct, CLASSES, BATCH, 0));
    const ckks_flood fl = fresh_flood(p); /* the released (flooded) path too */
    CHECK_OK(hnn_decrypt_batch(logits, &sk2, ct, CLASSES, BATCH, &fl));
    CHECK_MSG(residue_hits == 0, "%zu freed blocks held a decrypted plaintext", residue_hits);
    ckks_pt_free(&mine); /* wipes before freeing, like every plaintext */
    ckks_pt_free(&pt);
    for (size_t c = 0; c < CLASSES; c++)
        ckks_ct_free(&ct[c]);
    residue_hits = 0;
    ckks_secret_key_free(&sk2);
    ckks_params_free(p2);
    CHECK_MSG(residue_hits == 0, "%zu freed blocks held secret bytes at teardown", residue_hits);
    disarm_needles();
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
}

/* The client's plaintexts are the patient's images: the per-element value vectors of
 * hnn_encrypt_batch, their encodings, and the copies decode_release floods are wiped before
 * free, like decrypted results. */
static void test_plaintext_residue(void)
{
    if (!HAVE_INTERPOSER)
        return;
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    enum { BATCH = 8, NUMEL = 5, K = NUMEL - 1 }; /* K: the last element one thread packs */
    float *x = malloc(BATCH * NUMEL * sizeof *x);
    double vk[BATCH];
    for (size_t i = 0; i < BATCH * NUMEL; i++)
        x[i] = (float)(0.5 + 0.49 * sin(3.7 * (double)i + 0.3));
    for (size_t b = 0; b < BATCH; b++) /* element K of every image, as encrypt packs it */
        vk[b] = x[b * NUMEL + K];
    ckks_plaintext enc = {0};
    CHECK_OK(ckks_encode(&enc, p, vk, BATCH, p->nq - 1, p->scale)); /* deterministic */
    residue_hits = 0;
    arm_needle(vk);               /* the values of images 0..2 at element K */
    arm_needle(enc.data + 3000);  /* their encoding */
    ckks_ciphertext ct[NUMEL];
    memset(ct, 0, sizeof ct);
    CHECK_OK(hnn_encrypt_batch(ct, &sk, x, BATCH, NUMEL, 1));
    CHECK_MSG(residue_hits == 0, "%zu freed blocks held image values or their encoding after "
              "hnn_encrypt_batch", residue_hits);
    disarm_needles();
    /* decode_release floods a copy of the decrypted plaintext: the copy is wiped too */
    ckks_plaintext dec = {0};
    CHECK_OK(ckks_decrypt(&dec, &sk, &ct[K]));
    residue_hits = 0;
    arm_needle(dec.data + 2000);
    const ckks_flood fl = fresh_flood(p);
    double out[BATCH];
    CHECK_OK(ckks_decode_release(out, BATCH, &dec, &fl));
    const double tol = 8 * ckks_flood_slot_sigma(&fl, p) + 1e-3;
    for (size_t b = 0; b < BATCH; b++) /* flooded, but still the image values */
        CHECK(fabs(out[b] - vk[b]) < tol);
    CHECK_MSG(residue_hits == 0, "%zu freed blocks held the decrypted plaintext after "
              "ckks_decode_release", residue_hits);
    disarm_needles();
    ckks_pt_free(&dec);
    ckks_pt_free(&enc);
    for (size_t i = 0; i < NUMEL; i++)
        ckks_ct_free(&ct[i]);
    sodium_memzero(x, BATCH * NUMEL * sizeof *x);
    free(x);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
}

/* ---- 3: degenerate secret keys -------------------------------------------------------------- */

static void test_degenerate_secret(void)
{
    ckks_params *p = ctu_file_params(30);
    int64_t *coef = calloc(p->n, sizeof *coef);
    const char *kinds[] = {"all zero", "all one", "sparse (64 of 4096)", "no -1"};
    for (int k = 0; k < 4; k++) {
        for (size_t j = 0; j < p->n; j++) {
            int64_t sparse = j % 64 ? 0 : j % 128 ? 1 : -1;
            coef[j] = k == 0 ? 0 : k == 1 ? 1 : k == 2 ? sparse : (int64_t)(j % 3 != 0);
        }
        ckks_secret_key sk;
        secret_from(&sk, p, coef);
        const char *path = ctu_tmp_path("degenerate.key");
        /* save computes a correct key id and checksum: only the distribution is wrong */
        CHECK_OK(ckks_secret_key_save(path, &sk));
        ckks_params *p2 = NULL;
        ckks_secret_key sk2;
        CHECK_ERR(ckks_secret_key_load(&sk2, &p2, path), PPNN_ERR_FORMAT);
        CHECK_MSG(strstr(ppnn_last_error(), "degenerate") != NULL, "%s: %s", kinds[k],
                  ppnn_last_error());
        CHECK(p2 == NULL);
        ckks_secret_key_free(&sk);
    }
    /* a genuine key passes, with its key id checked */
    ckks_secret_key sk, sk2;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    const char *path = ctu_tmp_path("genuine.key");
    CHECK_OK(ckks_secret_key_save(path, &sk));
    CHECK_OK(ckks_secret_key_load(&sk2, &p, path));
    ckks_secret_key_free(&sk2);
    size_t len;
    uint8_t *buf = slurp(&len, path);
    buf[body_offset(p) - 1] ^= 1; /* key id */
    CHECK_ERR(ckks_secret_key_load(&sk2, &p, reseal("badid.key", buf, len)), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "key id") != NULL);
    free(buf);
    ckks_secret_key_free(&sk);
    free(coef);
    ckks_params_free(p);
}

/* ---- 5: scales and the parameter block ------------------------------------------------------ */

static void put_f64_at(uint8_t *buf, size_t off, double v) { ppnn_put_f64(buf + off, v); }

static void test_scales(void)
{
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    enum { COUNT = 3 };
    ckks_ciphertext cts[COUNT], res[2];
    memset(cts, 0, sizeof cts);
    memset(res, 0, sizeof res);
    ckks_plaintext pt = {0};
    double v[32];
    for (size_t i = 0; i < COUNT; i++) {
        for (size_t j = 0; j < 32; j++)
            v[j] = cos((double)(i * 32 + j));
        CHECK_OK(ckks_encode(&pt, p, v, 32, p->nq - 1, p->scale));
        CHECK_OK(ckks_encrypt_sk(&cts[i], &sk, &pt));
    }
    ckks_batch_info info = {{0}, CKKS_PACKING_ELEMENT, 32, {1, 1, COUNT}, CKKS_BATCH_INPUT};
    ckks_key_id(info.key_id, &sk);
    const char *bp = ctu_tmp_path("in.ct");
    CHECK_OK(ckks_batch_save(bp, cts, COUNT, &info));
    size_t len;
    uint8_t *orig = slurp(&len, bp), *buf = malloc(len);
    ckks_ciphertext *got = NULL;
    size_t count = 0;
    ckks_batch_info info2;
    /* every ciphertext's scale: NaN, infinities, negative, zero, other powers of two */
    const double bad[] = {NAN, INFINITY, -INFINITY, -0x1p24, 0, 0x1p23, 0x1p25, 0x1p24 * 1.5};
    /* A batch's metadata starts after the chunk count and metadata length (B bytes); the
     * record heads (level, size, scale, seeded) follow the batch info. */
    const size_t B = PPNN_CHUNKED_FIXED_BYTES;
    size_t ct0 = B + body_offset(p) + 36;
    size_t ct1 = ct0 + 20;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        for (int which = 0; which < 2; which++) {
            memcpy(buf, orig, len);
            put_f64_at(buf, (which ? ct1 : ct0) + 8, bad[k]);
            CHECK_ERR(ckks_batch_load(&got, &count, &info2, &p, reseal("bad.ct", buf, len)),
                      PPNN_ERR_FORMAT);
            CHECK_MSG(strstr(ppnn_last_error(), "scale") != NULL, "%s", ppnn_last_error());
            CHECK(got == NULL);
        }
    /* the parameter block's scale: against loaded keys a mismatch, on its own a format error */
    const double pbad[] = {NAN, INFINITY, -0x1p24, 1, 0x1p19, 0x1p24 * 1.5};
    for (size_t k = 0; k < sizeof pbad / sizeof pbad[0]; k++) {
        memcpy(buf, orig, len);
        put_f64_at(buf, B + scale_offset(p), pbad[k]);
        ckks_params *none = NULL;
        CHECK_ERR(ckks_batch_load(&got, &count, &info2, &none, reseal("bad.ct", buf, len)),
                  PPNN_ERR_FORMAT);
        CHECK(none == NULL);
    }
    memcpy(buf, orig, len);
    put_f64_at(buf, B + scale_offset(p), 0x1p25);
    CHECK_ERR(ckks_batch_load(&got, &count, &info2, &p, reseal("bad.ct", buf, len)),
              PPNN_ERR_MISMATCH);
    /* q and P bit sizes are compared too (and must agree with the stored primes) */
    for (size_t field = 0; field <= p->nq; field++) {
        memcpy(buf, orig, len);
        size_t off = B + PPNN_FILE_HEADER_BYTES + 8 + 4 * field;
        ppnn_put_u32(buf + off, 25);
        CHECK_ERR(ckks_batch_load(&got, &count, &info2, &p, reseal("bad.ct", buf, len)),
                  PPNN_ERR_FORMAT);
    }
    /* a secret key whose block says scale 1 (or another power of two) is refused / mismatched */
    const char *skp = ctu_tmp_path("s.key");
    CHECK_OK(ckks_secret_key_save(skp, &sk));
    size_t slen;
    uint8_t *sbuf = slurp(&slen, skp);
    put_f64_at(sbuf, scale_offset(p), 1.0);
    ckks_params *none = NULL;
    ckks_secret_key sk2;
    CHECK_ERR(ckks_secret_key_load(&sk2, &none, reseal("s1.key", sbuf, slen)), PPNN_ERR_FORMAT);
    put_f64_at(sbuf, scale_offset(p), 0x1p26);
    CHECK_ERR(ckks_secret_key_load(&sk2, &p, reseal("s26.key", sbuf, slen)), PPNN_ERR_MISMATCH);
    free(sbuf);
    /* a result (size 3, one level down, scale Δ²/q_2 ≈ Δ) round-trips; mixed batches do not */
    for (int i = 0; i < 2; i++) {
        CHECK_OK(ckks_square(&res[i], &cts[i]));
        CHECK_OK(ckks_rescale(&res[i]));
    }
    info.role = CKKS_BATCH_LOGITS;
    const char *rp = ctu_tmp_path("out.ct");
    CHECK_OK(ckks_batch_save(rp, res, 2, &info));
    CHECK_OK(ckks_batch_load(&got, &count, &info2, &p, rp));
    CHECK(count == 2 && got && got[1].size == 3 && got[1].scale == res[1].scale);
    for (size_t i = 0; got && i < count; i++)
        ckks_ct_free(&got[i]);
    free(got);
    got = NULL;
    ckks_ciphertext mixed[2] = {res[0], cts[2]};
    CHECK_OK(ckks_batch_save(rp, mixed, 2, &info));
    CHECK_ERR(ckks_batch_load(&got, &count, &info2, &p, rp), PPNN_ERR_FORMAT);
    free(buf);
    free(orig);
    ckks_pt_free(&pt);
    for (size_t i = 0; i < COUNT; i++)
        ckks_ct_free(&cts[i]);
    ckks_ct_free(&res[0]);
    ckks_ct_free(&res[1]);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
}

static void test_galois_elements(void)
{
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk;
    ckks_galois_keys gk, gk2;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    int steps[2] = {1, 2};
    CHECK_OK(ckks_keygen_galois(&gk, &sk, steps, 2, 0));
    uint8_t kid[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid, &sk);
    const char *gp = ctu_tmp_path("galois.key");
    CHECK_OK(ckks_galois_keys_save(gp, &gk, kid));
    CHECK_OK(ckks_galois_keys_load(&gk2, &p, NULL, gp));
    ckks_galois_keys_free(&gk2);
    uint64_t keep = gk.elements[1];
    gk.elements[1] = 1; /* the identity */
    CHECK_OK(ckks_galois_keys_save(gp, &gk, kid));
    CHECK_ERR(ckks_galois_keys_load(&gk2, &p, NULL, gp), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "identity") != NULL);
    gk.elements[1] = gk.elements[0]; /* twice the same element */
    CHECK_OK(ckks_galois_keys_save(gp, &gk, kid));
    CHECK_ERR(ckks_galois_keys_load(&gk2, &p, NULL, gp), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "twice") != NULL);
    gk.elements[1] = keep;
    ckks_galois_keys_free(&gk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
}

/* ---- 6: allocation before validation -------------------------------------------------------- */

/* A relin.key claiming N = 2^logn and nq primes (real primes, valid checksum) whose body is
 * one byte: must be refused, without allocating the key it declares. */
static const char *lying_relin_key(unsigned logn, size_t nq)
{
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = logn;
    spec.nq = nq;
    for (size_t i = 0; i < nq; i++)
        spec.q_bits[i] = 30;
    spec.p_bits = 30;
    spec.scale = 0x1p30;
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &spec));
    if (!p)
        return NULL;
    size_t head = body_offset(p), len = head + 1 + PPNN_FILE_TRAILER_BYTES;
    uint8_t *buf = calloc(1, len);
    memcpy(buf, "PPNN\0\r\n\x1a" "RKEY", 12);
    ppnn_put_u32(buf + 12, CKKS_FILE_VERSION);
    memcpy(buf + 16, p->id, CKKS_PARAM_ID_BYTES);
    size_t o = PPNN_FILE_HEADER_BYTES;
    ppnn_put_u32(buf + o, (uint32_t)logn), o += 4;
    ppnn_put_u32(buf + o, (uint32_t)nq), o += 4;
    for (size_t i = 0; i < nq; i++)
        ppnn_put_u32(buf + o, 30), o += 4;
    ppnn_put_u32(buf + o, 30), o += 4;
    ppnn_put_f64(buf + o, p->scale), o += 8;
    for (size_t i = 0; i < nq; i++)
        ppnn_put_u64(buf + o, p->q[i]), o += 8;
    ppnn_put_u64(buf + o, p->p);
    const char *path = reseal("lying.key", buf, len);
    free(buf);
    ckks_params_free(p);
    return path;
}

static void test_alloc_before_validation(void)
{
    /* N = 2^15, 20 primes: 2 x 210 MB of key if allocated before the length check; N = 2^16,
     * 48 primes: a 2.4 GB key (over the 2 GiB limit keygen enforces). */
    const unsigned logn[2] = {15, 16};
    const size_t nq[2] = {20, 48};
    for (int k = 0; k < 2; k++) {
        const char *path = lying_relin_key(logn[k], nq[k]);
        ckks_relin_key rk;
        ckks_params *p = NULL;
        largest_malloc = 0;
        CHECK_ERR(ckks_relin_key_load(&rk, &p, NULL, path), PPNN_ERR_FORMAT);
        CHECK(p == NULL);
        if (HAVE_INTERPOSER)
            CHECK_MSG(largest_malloc < ((size_t)64 << 20), "largest allocation %zu bytes",
                      largest_malloc);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    test_secret_residue();
    test_plaintext_residue();
    test_degenerate_secret();
    test_scales();
    test_galois_elements();
    test_alloc_before_validation();
    return tu_finish("test_ckks_hostile");
}
