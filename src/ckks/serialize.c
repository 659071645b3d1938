/* ckks file formats (layout in ppnn/ckks_io.h and docs/file-formats.md). */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"
#include "ppnn/ckks_io.h"

#define KIND_SECRET CKKS_KIND_SECRET
#define KIND_PUBLIC CKKS_KIND_PUBLIC
#define KIND_RELIN CKKS_KIND_RELIN
#define KIND_GALOIS CKKS_KIND_GALOIS

/* ---- helpers ---------------------------------------------------------------------------- */

static unsigned bits_of(uint64_t q) { return 64u - (unsigned)__builtin_clzll(q); }

/* Modulus of RNS row i: q_0..q_{nq-1}, then the special prime P. */
static uint64_t modulus(const ckks_params *p, size_t i) { return i < p->nq ? p->q[i] : p->p; }

size_t ckks_io_params_bytes(const ckks_params *p) { return 4 + 4 + 4 * p->nq + 4 + 8 + 8 * p->nq + 8; }

void ckks_io_put_params(uint8_t *b, const ckks_params *p)
{
    size_t o = 0;
    ppnn_put_u32(b + o, p->logn), o += 4;
    ppnn_put_u32(b + o, (uint32_t)p->nq), o += 4;
    for (size_t i = 0; i < p->nq; i++)
        ppnn_put_u32(b + o, bits_of(p->q[i])), o += 4;
    ppnn_put_u32(b + o, bits_of(p->p)), o += 4;
    ppnn_put_f64(b + o, p->scale), o += 8;
    for (size_t i = 0; i < p->nq; i++)
        ppnn_put_u64(b + o, p->q[i]), o += 8;
    ppnn_put_u64(b + o, p->p);
}

/* The parameter block exactly as stored, before any parameter set is built from it. */
typedef struct stored_params {
    uint32_t logn, nq, qbits[CKKS_MAX_PRIMES], pbits;
    double scale;
    uint64_t q[CKKS_MAX_PRIMES], p;
} stored_params;

/* Packed bytes of rows first..first+rows-1 (row nq is P) from the stored bit sizes alone. */
static size_t stored_rows_bytes(const stored_params *sp, size_t first, size_t rows)
{
    size_t b = 0, n = (size_t)1 << sp->logn;
    for (size_t i = first; i < first + rows; i++)
        b += ppnn_packed_bytes(n, i < sp->nq ? sp->qbits[i] : sp->pbits);
    return b;
}


/* Refuses a body that cannot hold the object before anything is allocated for it: exact sizes
 * for single keys, a lower bound (one key) for Galois keys, from the stored bit sizes; and key-switching keys over the consumer's memory limit
 * (the same CKKS_MAX_SWITCH_KEY_BYTES keygen enforces). */
static ppnn_status check_body(const stored_params *sp, const char *kind, size_t have,
                              const char *path)
{
    size_t n = (size_t)1 << sp->logn, nq = sp->nq, need, exact = 1;
    size_t sw = CKKS_SEED_BYTES + nq * stored_rows_bytes(sp, 0, nq + 1);
    int switching = !strcmp(kind, KIND_RELIN) || !strcmp(kind, KIND_GALOIS);
    if (!strcmp(kind, KIND_SECRET))
        need = n / 4;
    else if (!strcmp(kind, KIND_PUBLIC))
        need = CKKS_SEED_BYTES + stored_rows_bytes(sp, 0, nq);
    else if (!strcmp(kind, KIND_RELIN))
        need = sw;
    else
        need = 8 + 8 + sw, exact = 0; /* KIND_GALOIS (batches are checked by batch_file.c) */
    if (exact ? have != need : have < need)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %s (%zu payload bytes where these parameters need "
                         "%s%zu)", path, have < need ? "truncated object" : "trailing data", have,
                         exact ? "" : "at least ", need);
    double key_bytes = 2.0 * (double)nq * (double)(nq + 1) * (double)n * sizeof(uint64_t);
    if (switching && key_bytes > (double)CKKS_MAX_SWITCH_KEY_BYTES)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: a key-switching key for N = %zu with %zu primes "
                         "would take %.1f GiB (limit %.0f GiB)", path, n, nq, key_bytes / 0x1p30,
                         (double)CKKS_MAX_SWITCH_KEY_BYTES / 0x1p30);
    return PPNN_OK;
}

/* Files carry only parameter sets ppnn makes: a power-of-two scale of at least
 * 2^CKKS_MIN_FILE_SCALE_BITS (ckks_io.h). NaN, infinities, negatives, 1 and friends are refused. */
static int file_scale_ok(double scale)
{
    int e;
    return isfinite(scale) && scale >= ldexp(1.0, CKKS_MIN_FILE_SCALE_BITS) &&
           frexp(scale, &e) == 0.5;
}

/* The smallest ring a file may declare: the secure range starts at 2^12. Fuzz builds only
 * (CMake -DPPNN_FUZZ=ON defines FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the libFuzzer
 * convention, for the instrumented library and nothing else) also load the insecure rings from
 * 2^4 that the unit tests use, so the key and batch harnesses run on inputs of a few hundred
 * bytes instead of ~100 KB (fuzz/README.md, "Small rings"). Every check below still runs on
 * them, and rings from 2^12 up still get the 128-bit check; product builds never define it
 * (test_ckks_io checks the refusal). */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define FILE_MIN_LOGN CKKS_TEST_MIN_LOGN
#else
#define FILE_MIN_LOGN CKKS_MIN_LOGN
#endif

/* Reads the params block and checks every field: ranges, the stored primes against their
 * stored bit sizes, the scale, and the body length the kind needs (check_body) — all before
 * anything is allocated. Then either compares the whole block with *params (every field: a
 * file for other primes, sizes or scale is a mismatch) or rebuilds the parameter set from it
 * (validating security) and checks that the rebuilt primes and id equal the stored ones.
 * kind NULL: the caller checks the body itself (multi-batch frames, batch_set.c). */
ppnn_status ckks_io_read_params(ppnn_reader *r, const uint8_t *param_id, ckks_params **params,
                                int *created, const char *path, const char *kind)
{
    *created = 0;
    stored_params sp;
    memset(&sp, 0, sizeof sp);
    ppnn_status st;
    if ((st = ppnn_read_u32(r, &sp.logn)) || (st = ppnn_read_u32(r, &sp.nq)))
        return st;
    if (sp.logn < FILE_MIN_LOGN || sp.logn > CKKS_MAX_LOGN || sp.nq < 1 ||
        sp.nq > CKKS_MAX_PRIMES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid parameters (logn %u, %u primes)", path,
                         sp.logn, sp.nq);
    for (uint32_t i = 0; i < sp.nq; i++)
        if ((st = ppnn_read_u32(r, &sp.qbits[i])))
            return st;
    if ((st = ppnn_read_u32(r, &sp.pbits)) || (st = ppnn_read_f64(r, &sp.scale)))
        return st;
    for (uint32_t i = 0; i < sp.nq; i++)
        if ((st = ppnn_read_u64(r, &sp.q[i])))
            return st;
    if ((st = ppnn_read_u64(r, &sp.p)))
        return st;
    for (uint32_t i = 0; i <= sp.nq; i++) {
        uint64_t q = i < sp.nq ? sp.q[i] : sp.p;
        unsigned b = i < sp.nq ? sp.qbits[i] : sp.pbits;
        if (b < CKKS_MIN_PRIME_BITS || b > CKKS_MAX_PRIME_BITS || q == 0 || bits_of(q) != b)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid parameters (modulus %u: %llu stored "
                             "with %u bits)", path, i, (unsigned long long)q, b);
    }
    if (!file_scale_ok(sp.scale))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid parameters (scale %g: a file's scale is a "
                         "power of two >= 2^%d)", path, sp.scale, CKKS_MIN_FILE_SCALE_BITS);
    if (r->len - r->pos < CKKS_KEY_ID_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated payload (no key id)", path);
    if (kind && (st = check_body(&sp, kind, r->len - r->pos - CKKS_KEY_ID_BYTES, path)))
        return st;
    if (*params) {
        const ckks_params *have = *params;
        int same = memcmp(have->id, param_id, CKKS_PARAM_ID_BYTES) == 0 && have->nq == sp.nq &&
                   have->logn == sp.logn && have->p == sp.p && have->scale == sp.scale &&
                   bits_of(have->p) == sp.pbits;
        for (uint32_t i = 0; same && i < sp.nq; i++)
            same = have->q[i] == sp.q[i] && bits_of(have->q[i]) == sp.qbits[i];
        if (!same)
            return ppnn_fail(PPNN_ERR_MISMATCH,
                             "%s was made for different CKKS parameters (N = 2^%u, %u primes, "
                             "scale 2^%.2f) than the keys in use (N = 2^%u, %zu primes, scale "
                             "2^%.2f)", path, sp.logn, sp.nq, log2(sp.scale), have->logn,
                             have->nq, log2(have->scale));
        return PPNN_OK;
    }
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = sp.logn;
    spec.nq = sp.nq;
    for (uint32_t i = 0; i < sp.nq; i++)
        spec.q_bits[i] = sp.qbits[i];
    spec.p_bits = sp.pbits;
    spec.scale = sp.scale;
    spec.insecure_for_testing = sp.logn < CKKS_MIN_LOGN; /* only in fuzz builds (FILE_MIN_LOGN) */
    ckks_params *np;
    if ((st = ckks_params_new(&np, &spec))) {
        ppnn_error_context("%s", path);
        return st;
    }
    int same = memcmp(np->id, param_id, CKKS_PARAM_ID_BYTES) == 0 && np->p == sp.p;
    for (uint32_t i = 0; same && i < sp.nq; i++)
        same = np->q[i] == sp.q[i];
    if (!same) {
        ckks_params_free(np);
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: stored primes do not match the parameter set", path);
    }
    *params = np;
    *created = 1;
    return PPNN_OK;
}

/* Bytes of `rows` RNS rows starting at row `first` (rows index modulus()). */
size_t ckks_io_rows_bytes(const ckks_params *p, size_t first, size_t rows)
{
    size_t b = 0;
    for (size_t i = first; i < first + rows; i++)
        b += ppnn_packed_bytes(p->n, bits_of(modulus(p, i)));
    return b;
}

size_t ckks_io_put_rows(uint8_t *out, const uint64_t *a, const ckks_params *p, size_t first,
                       size_t rows)
{
    size_t o = 0;
    for (size_t i = 0; i < rows; i++) {
        unsigned b = bits_of(modulus(p, first + i));
        ppnn_bitpack(out + o, a + i * p->n, p->n, b);
        o += ppnn_packed_bytes(p->n, b);
    }
    return o;
}

ppnn_status ckks_io_get_rows(uint64_t *a, ppnn_reader *r, const ckks_params *p, size_t first,
                            size_t rows)
{
    for (size_t i = 0; i < rows; i++) {
        uint64_t q = modulus(p, first + i);
        unsigned b = bits_of(q);
        const uint8_t *s;
        ppnn_status st = ppnn_read_span(r, &s, ppnn_packed_bytes(p->n, b));
        if (st)
            return st;
        if ((st = ppnn_bitunpack(a + i * p->n, s, p->n, b, q, r->name)))
            return st;
    }
    return PPNN_OK;
}

/* Writes a whole small object (header blocks + body in one buffer) atomically. */
static ppnn_status write_object(const char *path, unsigned mode, const char *kind,
                                const ckks_params *p, const uint8_t *buf, size_t len)
{
    ppnn_file_writer fw;
    ppnn_status st = ppnn_file_create(&fw, path, mode, kind, CKKS_FILE_VERSION, p->id, len);
    if (st)
        return st;
    if ((st = ppnn_file_put(&fw, buf, len))) {
        ppnn_file_abort(&fw);
        return st;
    }
    return ppnn_file_finish(&fw);
}

/* Starts a payload buffer with the params block and key id; returns the offset after them. */
static uint8_t *begin_payload(size_t *off, size_t body, const ckks_params *p,
                              const uint8_t key_id[CKKS_KEY_ID_BYTES])
{
    size_t head = ckks_io_params_bytes(p) + CKKS_KEY_ID_BYTES;
    uint8_t *b = malloc(head + body);
    if (!b)
        return NULL;
    ckks_io_put_params(b, p);
    memcpy(b + ckks_io_params_bytes(p), key_id, CKKS_KEY_ID_BYTES);
    *off = head;
    return b;
}

/* Opens a file, reads params + key id. On success *created says whether *params is new. */
static ppnn_status open_object(ppnn_file_view *v, ppnn_reader *r, ckks_params **params,
                               int *created, uint8_t key_id[CKKS_KEY_ID_BYTES], const char *path,
                               const char *kind)
{
    ppnn_status st = ppnn_file_open(v, path, kind, CKKS_FILE_VERSION, CKKS_MAX_FILE_BYTES);
    if (st)
        return st;
    ppnn_reader_init(r, v->payload, v->payload_len, path);
    uint8_t kid[CKKS_KEY_ID_BYTES];
    if ((st = ckks_io_read_params(r, v->param_id, params, created, path, kind)) ||
        (st = ppnn_read_bytes(r, kid, CKKS_KEY_ID_BYTES))) {
        if (*created) {
            ckks_params_free(*params);
            *params = NULL;
            *created = 0;
        }
        ppnn_file_close(v);
        return st;
    }
    if (key_id)
        memcpy(key_id, kid, CKKS_KEY_ID_BYTES);
    return PPNN_OK;
}

static void close_object(ppnn_file_view *v, ckks_params **params, int created, ppnn_status st)
{
    if (st && created) {
        ckks_params_free(*params);
        *params = NULL;
    }
    ppnn_file_close(v);
}

/* ---- key id ----------------------------------------------------------------------------- */

void ckks_key_id(uint8_t id[CKKS_KEY_ID_BYTES], const ckks_secret_key *sk)
{
    static const char domain[] = "ppnn ckks key id v1";
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, CKKS_KEY_ID_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)domain, sizeof domain);
    crypto_generichash_update(&h, sk->params->id, CKKS_PARAM_ID_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)sk->s, sk->params->n * sizeof(uint64_t));
    crypto_generichash_final(&h, id, CKKS_KEY_ID_BYTES);
}

/* ---- secret key: ternary coefficients, 2 bits each (00 = 0, 01 = 1, 10 = -1) ------------- */

ppnn_status ckks_secret_key_save(const char *path, const ckks_secret_key *sk)
{
    const ckks_params *p = sk->params;
    size_t n = p->n, off, body = n / 4;
    uint8_t kid[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid, sk);
    uint8_t *buf = begin_payload(&off, body, p, kid);
    uint64_t *row = sodium_malloc(n * sizeof *row);
    if (!buf || !row) {
        free(buf);
        if (row)
            sodium_free(row);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    memcpy(row, sk->s, n * sizeof *row);
    _ring_ntt_inverse(row, &p->ring->primes[0]);
    uint64_t q0 = p->q[0];
    memset(buf + off, 0, body);
    for (size_t j = 0; j < n; j++) {
        unsigned code = row[j] == 0 ? 0 : row[j] == 1 ? 1 : 2;
        /* A secret key is ternary by construction; anything else is a programming error. */
        if (!(row[j] == 0 || row[j] == 1 || row[j] == q0 - 1))
            abort();
        buf[off + j / 4] |= (uint8_t)(code << (2 * (j % 4)));
    }
    sodium_free(row); /* wipes */
    ppnn_status st = write_object(path, 0600, KIND_SECRET, p, buf, off + body);
    sodium_memzero(buf, off + body);
    free(buf);
    return st;
}

/* ckks_keygen_secret draws each coefficient uniformly from {-1, 0, 1}: the Hamming weight h is
 * Binomial(n, 2/3) (mean 2n/3, sd sqrt(2n/9)) and the number of +1 among them Binomial(h, 1/2)
 * (sd sqrt(h)/2). A key more than 10 sd away from either mean (probability < 2^-75 for a real
 * key) is refused: an all-zero secret (its "ciphertexts" are the images in the clear), a
 * secret of all ones, or a sparse one hand-made with a recomputed checksum and key id. */
static int secret_plausible(size_t n, size_t weight, size_t plus)
{
    double h = (double)weight, dh = h - 2.0 * (double)n / 3.0, sd_h = sqrt(2.0 * (double)n / 9.0);
    double dp = (double)plus - h / 2.0, sd_p = sqrt(h) / 2.0;
    return weight > 0 && fabs(dh) <= 10 * sd_h && fabs(dp) <= 10 * sd_p;
}

ppnn_status ckks_secret_key_load(ckks_secret_key *sk, ckks_params **params, const char *path)
{
    memset(sk, 0, sizeof *sk);
    ppnn_file_view v;
    ppnn_reader r;
    int created;
    uint8_t kid[CKKS_KEY_ID_BYTES];
    ppnn_status st = open_object(&v, &r, params, &created, kid, path, KIND_SECRET);
    if (st)
        return st;
    const ckks_params *p = *params;
    size_t n = p->n, rows = p->nq + 1;
    const uint8_t *codes;
    if ((st = ppnn_read_span(&r, &codes, n / 4)) || (st = ppnn_reader_end(&r)))
        goto out;
    uint64_t *s = sodium_malloc(rows * n * sizeof *s);
    if (!s) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t weight = 0, plus = 0;
    for (size_t j = 0; j < n; j++) {
        unsigned code = (codes[j / 4] >> (2 * (j % 4))) & 3;
        if (code == 3) {
            sodium_free(s);
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid secret-key coefficient", path);
            goto out;
        }
        weight += code != 0;
        plus += code == 1;
        for (size_t i = 0; i < rows; i++)
            s[i * n + j] = code == 0 ? 0 : code == 1 ? 1 : modulus(p, i) - 1;
    }
    if (!secret_plausible(n, weight, plus)) {
        sodium_free(s);
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: not a key ppnn generates (%zu of %zu coefficients "
                       "non-zero, %zu of them +1): refusing a degenerate secret key", path, weight,
                       n, plus);
        goto out;
    }
    for (size_t i = 0; i < rows; i++)
        _ring_ntt_forward(s + i * n, &p->ring->primes[i]);
    sk->params = p;
    sk->s = s;
    uint8_t check[CKKS_KEY_ID_BYTES];
    ckks_key_id(check, sk);
    if (sodium_memcmp(check, kid, CKKS_KEY_ID_BYTES) != 0) {
        ckks_secret_key_free(sk);
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: key id does not match the key (corrupted file)", path);
    }
out:
    sodium_memzero(v.buf, v.buf_len);
    close_object(&v, params, created, st);
    return st;
}

/* ---- public key: b and a, nq rows each --------------------------------------------------- */

ppnn_status ckks_public_key_save(const char *path, const ckks_public_key *pk,
                                 const uint8_t key_id[CKKS_KEY_ID_BYTES])
{
    const ckks_params *p = pk->params;
    /* a is uniform and expanded from the seed (ckks_keygen_public): store the seed only. */
    size_t off, body = CKKS_SEED_BYTES + ckks_io_rows_bytes(p, 0, p->nq);
    uint8_t *buf = begin_payload(&off, body, p, key_id);
    if (!buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    memcpy(buf + off, pk->seed, CKKS_SEED_BYTES);
    off += CKKS_SEED_BYTES;
    off += ckks_io_put_rows(buf + off, pk->b, p, 0, p->nq);
    ppnn_status st = write_object(path, 0644, KIND_PUBLIC, p, buf, off);
    free(buf);
    return st;
}

ppnn_status ckks_public_key_load(ckks_public_key *pk, ckks_params **params,
                                 uint8_t key_id[CKKS_KEY_ID_BYTES], const char *path)
{
    memset(pk, 0, sizeof *pk);
    ppnn_file_view v;
    ppnn_reader r;
    int created;
    ppnn_status st = open_object(&v, &r, params, &created, key_id, path, KIND_PUBLIC);
    if (st)
        return st;
    const ckks_params *p = *params;
    size_t words = p->nq * p->n;
    if ((st = ppnn_read_bytes(&r, pk->seed, CKKS_SEED_BYTES)))
        goto out;
    if (ckks_io_rows_bytes(p, 0, p->nq) != r.len - r.pos) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: public key body of %zu bytes, expected %zu", path,
                       r.len - r.pos, ckks_io_rows_bytes(p, 0, p->nq));
        goto out;
    }
    pk->b = malloc(words * sizeof(uint64_t));
    pk->a = malloc(words * sizeof(uint64_t));
    if (!pk->b || !pk->a) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = ckks_io_get_rows(pk->b, &r, p, 0, p->nq)) || (st = ppnn_reader_end(&r)))
        goto out;
    ring_sample_uniform(pk->a, p->ring, p->nq, pk->seed, 0);
    pk->params = p;
out:
    if (st) {
        free(pk->b);
        free(pk->a);
        memset(pk, 0, sizeof *pk);
    }
    close_object(&v, params, created, st);
    return st;
}

/* ---- key-switching keys: nq digits x (nq+1) rows, b then a -------------------------------- */

/* A switching key is stored as its 32-byte seed (the uniform a_j are expanded from it,
 * ckks_switch_key_expand_a) and the b_j: half the size of (b, a). */
static size_t switch_key_bytes(const ckks_params *p)
{
    return CKKS_SEED_BYTES + p->nq * ckks_io_rows_bytes(p, 0, p->nq + 1);
}

/* perm != NULL: a Galois key in the hoisting layout (ckks_switch_key_permute), written in the
 * standard one (row[x] = held[perm[x]], a digit's nq+1 rows at a time through tmp), so that
 * files do not depend on the in-memory layout. */
static size_t put_switch_key(uint8_t *out, const ckks_switch_key *k, const ckks_params *p,
                             const uint32_t *perm, uint64_t *tmp)
{
    size_t o = CKKS_SEED_BYTES, n = p->n, digit = (p->nq + 1) * n;
    memcpy(out, k->seed, CKKS_SEED_BYTES);
    for (size_t d = 0; d < p->nq; d++) {
        const uint64_t *rows = k->b + d * digit;
        if (perm) {
            for (size_t r = 0; r <= p->nq; r++)
                for (size_t x = 0; x < n; x++)
                    tmp[r * n + x] = rows[r * n + perm[x]];
            rows = tmp;
        }
        o += ckks_io_put_rows(out + o, rows, p, 0, p->nq + 1);
    }
    return o;
}

static ppnn_status get_switch_key(ckks_switch_key *k, ppnn_reader *r, const ckks_params *p)
{
    size_t digit = (p->nq + 1) * p->n, words = p->nq * digit;
    /* Bytes present first (read_params checked the size limit): no allocation for a lie. */
    if (switch_key_bytes(p) > r->len - r->pos)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated key-switching key (%zu bytes left, %zu "
                         "needed)", r->name, r->len - r->pos, switch_key_bytes(p));
    k->b = malloc(words * sizeof(uint64_t));
    k->a = malloc(words * sizeof(uint64_t));
    if (!k->b || !k->a)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    ppnn_status st = ppnn_read_bytes(r, k->seed, CKKS_SEED_BYTES);
    for (size_t d = 0; !st && d < p->nq; d++)
        st = ckks_io_get_rows(k->b + d * digit, r, p, 0, p->nq + 1);
    if (!st)
        ckks_switch_key_expand_a(k, p);
    return st;
}

ppnn_status ckks_relin_key_save(const char *path, const ckks_relin_key *rk,
                                const uint8_t key_id[CKKS_KEY_ID_BYTES])
{
    const ckks_params *p = rk->params;
    size_t off;
    uint8_t *buf = begin_payload(&off, switch_key_bytes(p), p, key_id);
    if (!buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    off += put_switch_key(buf + off, &rk->k, p, NULL, NULL);
    ppnn_status st = write_object(path, 0644, KIND_RELIN, p, buf, off);
    free(buf);
    return st;
}

ppnn_status ckks_relin_key_load(ckks_relin_key *rk, ckks_params **params,
                                uint8_t key_id[CKKS_KEY_ID_BYTES], const char *path)
{
    memset(rk, 0, sizeof *rk);
    ppnn_file_view v;
    ppnn_reader r;
    int created;
    ppnn_status st = open_object(&v, &r, params, &created, key_id, path, KIND_RELIN);
    if (st)
        return st;
    rk->params = *params;
    if ((st = get_switch_key(&rk->k, &r, *params)) || (st = ppnn_reader_end(&r))) {
        free(rk->k.a);
        free(rk->k.b);
        memset(rk, 0, sizeof *rk);
    }
    close_object(&v, params, created, st);
    return st;
}

ppnn_status ckks_galois_keys_save(const char *path, const ckks_galois_keys *gk,
                                  const uint8_t key_id[CKKS_KEY_ID_BYTES])
{
    const ckks_params *p = gk->params;
    size_t off, body = 8 + gk->count * (8 + switch_key_bytes(p));
    uint8_t *buf = begin_payload(&off, body, p, key_id);
    uint32_t *perm = malloc(p->n * sizeof *perm);
    uint64_t *tmp = malloc((p->nq + 1) * p->n * sizeof *tmp);
    if (!buf || !perm || !tmp) {
        free(buf), free(perm), free(tmp);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    ppnn_put_u64(buf + off, gk->count), off += 8;
    for (size_t g = 0; g < gk->count; g++)
        ppnn_put_u64(buf + off, gk->elements[g]), off += 8;
    for (size_t g = 0; g < gk->count; g++) {
        ckks_galois_perm(perm, p, gk->elements[g]);
        off += put_switch_key(buf + off, &gk->keys[g], p, perm, tmp);
    }
    free(perm), free(tmp);
    ppnn_status st = write_object(path, 0644, KIND_GALOIS, p, buf, off);
    free(buf);
    return st;
}

ppnn_status ckks_galois_keys_load(ckks_galois_keys *gk, ckks_params **params,
                                  uint8_t key_id[CKKS_KEY_ID_BYTES], const char *path)
{
    memset(gk, 0, sizeof *gk);
    ppnn_file_view v;
    ppnn_reader r;
    int created;
    ppnn_status st = open_object(&v, &r, params, &created, key_id, path, KIND_GALOIS);
    if (st)
        return st;
    const ckks_params *p = *params;
    uint64_t count;
    if ((st = ppnn_read_u64(&r, &count)))
        goto out;
    /* Each key occupies switch_key_bytes: bound the count by the bytes present first. */
    if (count == 0 || count > (r.len - r.pos) / (8 + switch_key_bytes(p))) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid Galois key count %llu", path,
                       (unsigned long long)count);
        goto out;
    }
    gk->params = p;
    gk->elements = calloc(count, sizeof *gk->elements);
    gk->keys = calloc(count, sizeof *gk->keys);
    if (!gk->elements || !gk->keys) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        goto out;
    }
    gk->count = count;
    for (size_t g = 0; !st && g < count; g++) {
        if ((st = ppnn_read_u64(&r, &gk->elements[g])))
            break;
        uint64_t e = gk->elements[g];
        /* Odd and < 2N (an automorphism X -> X^e), not the identity (key switching from s to s
         * itself is useless and keygen never makes it), and each element once. */
        int dup = 0;
        for (size_t h = 0; h < g; h++)
            dup |= gk->elements[h] == e;
        if (e % 2 == 0 || e >= 2 * p->n || e == 1 || dup)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid Galois element %llu%s", path,
                           (unsigned long long)e,
                           e == 1 ? " (the identity)" : dup ? " (listed twice)" : "");
    }
    for (size_t g = 0; !st && g < count; g++)
        st = get_switch_key(&gk->keys[g], &r, p);
    if (!st)
        st = ppnn_reader_end(&r);
    if (!st) { /* to the hoisting layout (ckks.h), once the whole file is known good */
        uint32_t *perm = malloc(p->n * sizeof *perm);
        uint64_t *tmp = malloc(p->n * sizeof *tmp);
        if (!perm || !tmp)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        for (size_t g = 0; !st && g < count; g++) {
            ckks_galois_perm(perm, p, gk->elements[g]);
            ckks_switch_key_permute(&gk->keys[g], p, perm, 1, tmp);
        }
        free(perm), free(tmp);
    }
out:
    if (st && gk->params)
        ckks_galois_keys_free(gk);
    if (st)
        memset(gk, 0, sizeof *gk);
    close_object(&v, params, created, st);
    return st;
}
