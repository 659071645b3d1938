/* Key switching (SEAL's scheme, see ckks.h): relinearization, rotation, conjugation.
 *
 * To switch a polynomial c (NTT form, primes q_0..q_l) from key s' to s with the key
 * {(b_j, a_j)}: for each digit j, d_j = [c]_{q_j} lifted to (-q_j/2, q_j/2] and extended to
 * every other prime of q_0..q_l, P; then (B, A) = sum_j d_j * (b_j, a_j) over Q_l*P, which
 * satisfies B + A*s = P*c*s' + sum_j d_j e_j; finally (B, A) are divided by P with rounding
 * (mod-down), leaving c*s' + (small) modulo Q_l.
 * NTT count at level l (k = l+1 primes): k inverse (digits) + k*k forward (extensions) +
 * 2 inverse + 2k forward (mod-down) = (k+1)(k+2). */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

/* Scratch of one rotation's key switch (galois_switch below): digits k*N, the two P rows 2N,
 * the two rows of the current target 2N, one row of extension / gather scratch N (k =
 * level+1). The old
 * layout kept all 2(k+1) accumulator rows (22N words at n13); this one needs (k+5)N (11N):
 * scratch larger than the allocator's mmap threshold is faulted in afresh on every call, so
 * its size is a direct cost (~2 us per 4 KiB page on the bench machine). */
static size_t ks_scratch_words(const ckks_params *params, size_t level)
{
    return (level + 1 + 5) * params->n;
}

/* Per-thread scratch of the key switches, kept between calls and grown on demand (freed when
 * the thread exits). Above the allocator's mmap threshold (main.c: 256 KiB) a fresh block is
 * faulted in page by page on every call: 0.7 MB per n13 rotation, 4 MB per hoisted group,
 * 22 MB at n14 — the hoisted rotations cost more than plain ones before (bench costs: n13
 * 1845 vs 1466 us per rotation). Holds ciphertext-derived data only (no secrets: key
 * switching is the server's). NULL when out of memory. */
typedef struct {
    uint64_t *p;
    size_t words;
} ks_tls;

static pthread_key_t ks_key;
static pthread_once_t ks_once = PTHREAD_ONCE_INIT;
static int ks_key_ok;

static void ks_tls_free(void *v)
{
    ks_tls *t = v;
    free(t->p);
    free(t);
}

static void ks_key_init(void) { ks_key_ok = pthread_key_create(&ks_key, ks_tls_free) == 0; }

static uint64_t *ks_thread_scratch(size_t words)
{
    pthread_once(&ks_once, ks_key_init);
    if (!ks_key_ok)
        return NULL;
    ks_tls *t = pthread_getspecific(ks_key);
    if (!t) {
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        if (pthread_setspecific(ks_key, t)) {
            free(t);
            return NULL;
        }
    }
    if (t->words < words) {
        free(t->p);
        t->p = aligned_alloc(64, (words * sizeof *t->p + 63) / 64 * 64);
        t->words = t->p ? words : 0;
    }
    return t->p;
}

/* Gathers row src through the Galois position permutation: dst[x] = src[perm[x]]. */
static void gather_row(uint64_t *dst, const uint64_t *src, const uint32_t *perm, size_t n)
{
    for (size_t x = 0; x < n; x++)
        dst[x] = src[perm[x]];
}

/* Adds digit j's product with key row (j, kt) into the accumulator pair (ab, aa) of prime pt
 * (first: writes instead of adding). */
static void ks_acc(uint64_t *ab, uint64_t *aa, const uint64_t *src, const ckks_switch_key *key,
                   size_t j, size_t kt, int first, const ckks_params *params,
                   const ring_prime *pt)
{
    size_t n = params->n, dw = (params->nq + 1) * n;
    const uint64_t *kb = key->b + j * dw + kt * n, *ka = key->a + j * dw + kt * n;
    if (first) {
        _ring_mul(ab, src, kb, pt);
        _ring_mul(aa, src, ka, pt);
    } else {
        _ring_muladd(ab, src, kb, pt);
        _ring_muladd(aa, src, ka, pt);
    }
}

/* Digit decomposition of c (NTT form, primes q_0..q_l, k = l+1): ext[(j*(k+1) + t)*N ..] is
 * digit j ([c]_{q_j} lifted to (-q_j/2, q_j/2]) in the NTT form of target prime t (t = k is P;
 * for t = j it is c_j itself). digits: k*N words of scratch (coefficient form on return). */
static void ks_decompose(uint64_t *ext, uint64_t *digits, const uint64_t *c, size_t level,
                         const ckks_params *params)
{
    size_t n = params->n, k = level + 1, nq = params->nq;
    const ring_context *ctx = params->ring;
    memcpy(digits, c, k * n * sizeof *digits);
    ring_poly_ntt_inverse(digits, ctx, k);
    for (size_t j = 0; j < k; j++)
        for (size_t t = 0; t <= k; t++) {
            uint64_t *dst = ext + (j * (k + 1) + t) * n;
            if (t == j) {
                memcpy(dst, c + j * n, n * sizeof *dst);
            } else {
                const ring_prime *pt = &ctx->primes[t < k ? t : nq];
                _ring_extend_single(dst, digits + j * n, &ctx->primes[j], pt);
                _ring_ntt_forward(dst, pt);
            }
        }
}

/* Inner product of decomposed digits with a key, then mod-down by P: the result pair (level+1
 * rows each, NTT form) is left at acc_b, acc_a ((k+1)*N words each). ext as ks_decompose
 * writes it. tmp: 2N words. */
static void ks_inner(uint64_t *acc_b, uint64_t *acc_a, const uint64_t *ext, size_t level,
                     const ckks_switch_key *key, const ckks_params *params, uint64_t *tmp)
{
    size_t n = params->n, k = level + 1, nq = params->nq;
    const ring_context *ctx = params->ring;
    for (size_t t = 0; t <= k; t++) {
        size_t kt = t < k ? t : nq; /* row t of the accumulator is prime kt */
        for (size_t j = 0; j < k; j++)
            ks_acc(acc_b + t * n, acc_a + t * n, ext + (j * (k + 1) + t) * n, key, j, kt, j == 0,
                   params, &ctx->primes[kt]);
    }
    ring_rescale_ntt(acc_b, k, acc_b + k * n, nq, ctx, tmp);
    ring_rescale_ntt(acc_a, k, acc_a + k * n, nq, ctx, tmp);
}

/* The P rows of a key switch: (pb, pa) = sum_j d_j (b_j, a_j) mod P from the digits
 * (coefficient form, k = level+1 rows), returned in coefficient form (one inverse NTT each),
 * as the mod-down reads them. tmp: N words. */
static void ks_p_rows(uint64_t *pb, uint64_t *pa, const uint64_t *digits, size_t level,
                      const ckks_switch_key *key, const ckks_params *params, uint64_t *tmp)
{
    size_t n = params->n, nq = params->nq;
    const ring_context *ctx = params->ring;
    const ring_prime *pp = &ctx->primes[nq];
    for (size_t j = 0; j <= level; j++) {
        _ring_extend_single(tmp, digits + j * n, &ctx->primes[j], pp);
        _ring_ntt_forward(tmp, pp);
        ks_acc(pb, pa, tmp, key, j, nq, j == 0, params, pp);
    }
    _ring_ntt_inverse(pb, pp);
    _ring_ntt_inverse(pa, pp);
}

/* Key switch of a Galois-permuted polynomial fused with its use (rotation / conjugation):
 *   out_b[t] = sigma(c0)[t] + ModDown(B)[t],  out_a[t] = ModDown(A)[t]
 * for every prime t <= level, where (B, A) = sum_j d_j (b_j, a_j) over Q_l P and d_j are the
 * digits of sigma(c1); sigma is the position permutation perm (NTT domain).
 * The key is held in the hoisting layout (b'_j = sigma^-1(b_j), a'_j = sigma^-1(a_j), ckks.h),
 * so sigma moves out of the sum and the mod-down: sigma commutes with the digit decomposition
 * (the centred lift commutes with negation, every q_j odd), position-wise products and the
 * mod-down (again a centred lift and position-wise arithmetic), hence
 *   ModDown(sum_j d_j(sigma c1) b_j) = sigma(ModDown(sum_j d_j(c1) b'_j))
 * residue for residue: c1 is decomposed as it is and only the 2k output rows are permuted
 * (out_b[t] = sigma(c0[t] + ModDown(B')[t])), instead of c1, the digit rows and c0.
 * Order: the P target first (its two rows are the only accumulator rows kept for the whole
 * call, in coefficient form after one inverse NTT each), then for each prime t the digit
 * products accumulate into one row pair that is mod-downed (ring_rescale_row_ntt) and written
 * out at once, while it is in cache — no 2(k+1)-row accumulator, no separate add pass.
 * Every step is the same modular arithmetic as ks_inner + ring_rescale_ntt + ring_poly_add
 * with canonical intermediates, so results are bit-identical (test_ckks_keyswitch checks
 * ckks_rotate against the hoisted path, and the decryptions against the rotated values).
 * Aliasing: out may be the input (in-place rotate): row t of c0, c1 is last read before row t
 * of the outputs is written, and c1 is copied (digits) before any write.
 * scratch: ks_scratch_words(params, level) words. */
static void galois_switch(uint64_t *out_b, uint64_t *out_a, const uint64_t *c0,
                          const uint64_t *c1, const uint32_t *perm, size_t level,
                          const ckks_switch_key *key, const ckks_params *params, uint64_t *scratch)
{
    size_t n = params->n, k = level + 1, nq = params->nq;
    const ring_context *ctx = params->ring;
    uint64_t *digits = scratch, *pb = digits + k * n, *pa = pb + n;
    uint64_t *ab = pa + n, *aa = ab + n, *tmp = aa + n;
    memcpy(digits, c1, k * n * sizeof *digits);
    ring_poly_ntt_inverse(digits, ctx, k);
    ks_p_rows(pb, pa, digits, level, key, params, tmp);
    for (size_t t = 0; t < k; t++) {
        const ring_prime *pt = &ctx->primes[t];
        for (size_t j = 0; j < k; j++) {
            const uint64_t *src = c1 + t * n; /* digit t at target t: c1's own row */
            if (t != j) {
                _ring_extend_single(tmp, digits + j * n, &ctx->primes[j], pt);
                _ring_ntt_forward(tmp, pt);
                src = tmp;
            }
            ks_acc(ab, aa, src, key, j, t, j == 0, params, pt);
        }
        ring_rescale_row_ntt(ab, t, pb, nq, ctx, tmp);
        ring_rescale_row_ntt(aa, t, pa, nq, ctx, tmp);
        _ring_add(tmp, c0 + t * n, ab, pt);
        gather_row(out_b + t * n, tmp, perm, n);
        gather_row(out_a + t * n, aa, perm, n);
    }
}

/* Relinearization in place with 3N words of scratch (pb, pa, tmp: below the allocator's mmap
 * threshold at n13, so no page faults per call): c2 is consumed, so its rows become the digits
 * (inverse NTT in place), and each output row is its own accumulator. Starting from c_t * P,
 * the digit products accumulate onto it and the mod-down row gives
 *   (c_t P + sum - [c]_t) P^-1 = c_t + (sum - [c]_t) P^-1   (mod q_t),
 * the same residue as the textbook key switch + addition (test_ckks_keyswitch: relin_reference).
 * Digit t at target t is the NTT of its own coefficient row (the extension from q_t to q_t is
 * the identity): one forward NTT more per prime than galois_switch, which reads c_t in NTT
 * form. */
static void relin_switch(uint64_t *c0, uint64_t *c1, uint64_t *c2, size_t level,
                         const ckks_switch_key *key, const ckks_params *params, uint64_t *scratch)
{
    size_t n = params->n, k = level + 1, nq = params->nq;
    const ring_context *ctx = params->ring;
    uint64_t *pb = scratch, *pa = pb + n, *tmp = pa + n;
    ring_poly_ntt_inverse(c2, ctx, k);
    ks_p_rows(pb, pa, c2, level, key, params, tmp);
    for (size_t t = 0; t < k; t++) {
        const ring_prime *pt = &ctx->primes[t];
        uint64_t *rb = c0 + t * n, *ra = c1 + t * n, pmod = params->p % pt->q;
        _ring_mul_scalar(rb, rb, pmod, pt);
        _ring_mul_scalar(ra, ra, pmod, pt);
        for (size_t j = 0; j < k; j++) {
            _ring_extend_single(tmp, c2 + j * n, &ctx->primes[j], pt);
            _ring_ntt_forward(tmp, pt);
            ks_acc(rb, ra, tmp, key, j, t, 0, params, pt);
        }
        ring_rescale_row_ntt(rb, t, pb, nq, ctx, tmp);
        ring_rescale_row_ntt(ra, t, pa, nq, ctx, tmp);
    }
}

ppnn_status ckks_relinearize(ckks_ciphertext *ct, const ckks_relin_key *rk)
{
    ppnn_status st = ckks_check_params(ct->params, rk->params, "relinearize");
    if (st)
        return st;
    if (ct->size == 2)
        return PPNN_OK;
    if (ct->size != 3)
        return ppnn_fail(PPNN_ERR_PARAM, "relinearize: ciphertext has %zu components (need 3)",
                         ct->size);
    const ckks_params *params = ct->params;
    size_t np = ct->level + 1, cw = np * params->n;
    uint64_t *scratch = ks_thread_scratch(3 * params->n);
    if (!scratch)
        return ppnn_fail(PPNN_ERR_NOMEM, "relinearize: out of memory");
    relin_switch(ct->data, ct->data + cw, ct->data + 2 * cw, ct->level, &rk->k, params, scratch);
    ct->size = 2;
    ct->has_seed = 0;
    return PPNN_OK;
}

static ppnn_status apply_galois(ckks_ciphertext *out, const ckks_ciphertext *a, uint64_t g,
                                const ckks_galois_keys *gk, const char *what, int step)
{
    ppnn_status st = ckks_check_params(a->params, gk->params, what);
    if (st)
        return st;
    if (a->size != 2)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: ciphertext has %zu components; relinearize first",
                         what, a->size);
    size_t idx = gk->count;
    for (size_t i = 0; i < gk->count; i++)
        if (gk->elements[i] == g)
            idx = i;
    if (idx == gk->count) {
        if (g == ckks_galois_conjugation(a->params))
            return ppnn_fail(PPNN_ERR_PARAM, "conjugate: no conjugation key in the Galois keys");
        return ppnn_fail(PPNN_ERR_PARAM, "rotate: no Galois key for a rotation by %d slots",
                         step);
    }
    const ckks_params *params = a->params;
    size_t n = params->n, np = a->level + 1, cw = np * n;
    uint64_t *scratch = ks_thread_scratch(ks_scratch_words(params, a->level));
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!scratch || !perm) {
        free(perm);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", what);
    }
    /* out may be a: the shape is unchanged then, and galois_switch reads each row of a before
     * it writes the same row of out. */
    if (out != a)
        st = ckks_ct_shape(out, params, a->level, 2, a->scale);
    if (!st) {
        ckks_galois_perm(perm, params, g);
        galois_switch(out->data, out->data + cw, a->data, a->data + cw, perm, a->level,
                      &gk->keys[idx], params, scratch);
        out->has_seed = 0;
    }
    free(perm);
    return st;
}

ppnn_status ckks_rotate(ckks_ciphertext *out, const ckks_ciphertext *a, int step,
                        const ckks_galois_keys *gk)
{
    uint64_t g = ckks_galois_rotation(a->params, step);
    if (g == 1)
        return ckks_ct_copy(out, a);
    return apply_galois(out, a, g, gk, "rotate", step);
}

ppnn_status ckks_conjugate(ckks_ciphertext *out, const ckks_ciphertext *a,
                           const ckks_galois_keys *gk)
{
    return apply_galois(out, a, ckks_galois_conjugation(a->params), gk, "conjugate", 0);
}

/* Hoisting (Halevi-Shoup 2018, "Faster homomorphic linear transformations in HElib"): the
 * automorphism sigma_g permutes coefficients up to sign, and the centred digit lift commutes
 * with negation (q_j is odd, so no value sits exactly at q_j/2), so the decomposition of
 * sigma_g(c1) is sigma_g applied to the decomposition of c1 — in the NTT domain, the same
 * position permutation on every digit row. One decomposition (k inverse + k*k forward NTTs)
 * then serves every rotation, each costing only the key inner product and the mod-down
 * (2 inverse + 2k forward NTTs): the results are bit-identical to ckks_rotate. With the keys
 * in the hoisting layout (galois_switch) the digit rows are not even permuted: each rotation
 * multiplies the one decomposition by its key as it is and permutes its 2k output rows. */
ppnn_status ckks_rotate_hoisted(ckks_ciphertext *out, const ckks_ciphertext *a, const int *steps,
                                size_t count, const ckks_galois_keys *gk)
{
    ppnn_status st = ckks_check_params(a->params, gk->params, "rotate");
    if (st)
        return st;
    if (a->size != 2)
        return ppnn_fail(PPNN_ERR_PARAM, "rotate: ciphertext has %zu components; relinearize "
                         "first", a->size);
    const ckks_params *params = a->params;
    size_t n = params->n, k = a->level + 1, cw = k * n;
    /* Every key must exist before any work. */
    size_t *idx = malloc((count ? count : 1) * sizeof *idx);
    if (!idx)
        return ppnn_fail(PPNN_ERR_NOMEM, "rotate: out of memory");
    for (size_t r = 0; r < count; r++) {
        uint64_t g = ckks_galois_rotation(params, steps[r]);
        idx[r] = SIZE_MAX;
        if (g == 1)
            continue;
        for (size_t i = 0; i < gk->count; i++)
            if (gk->elements[i] == g)
                idx[r] = i;
        if (idx[r] == SIZE_MAX) {
            free(idx);
            return ppnn_fail(PPNN_ERR_PARAM, "rotate: no Galois key for a rotation by %d slots",
                             steps[r]);
        }
    }
    uint64_t *ext = ks_thread_scratch((k * (k + 1) + 2 * (k + 1) + 2 + k) * n);
    uint64_t *work = ext ? ext + k * (k + 1) * n : NULL;
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!ext || !perm) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "rotate: out of memory");
        goto done;
    }
    uint64_t *acc_b = work, *acc_a = work + (k + 1) * n, *tmp = acc_a + (k + 1) * n;
    ks_decompose(ext, tmp, a->data + cw, a->level, params); /* tmp: k*N words here */
    for (size_t r = 0; r < count && !st; r++) {
        if (idx[r] == SIZE_MAX) {
            st = ckks_ct_copy(&out[r], a);
            continue;
        }
        ckks_galois_perm(perm, params, gk->elements[idx[r]]);
        ks_inner(acc_b, acc_a, ext, a->level, &gk->keys[idx[r]], params, tmp);
        if ((st = ckks_ct_shape(&out[r], params, a->level, 2, a->scale)))
            break;
        ring_poly_add(acc_b, acc_b, a->data, params->ring, k);
        for (size_t i = 0; i < k; i++) {
            gather_row(out[r].data + i * n, acc_b + i * n, perm, n);
            gather_row(out[r].data + cw + i * n, acc_a + i * n, perm, n);
        }
    }
done:
    free(idx);
    free(perm);
    return st;
}
