/* CKKS parameters: validation of a ckks_spec against the 128-bit security table, generation
 * of the RNS primes, named presets, the parameter id, and the per-level CRT tables. */
#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

/* Maximum log2(Q*P) for 128-bit classical security with a uniform ternary secret and error
 * sigma 3.2. N = 2^12 .. 2^15: the HomomorphicEncryption.org security standard (Albrecht et
 * al., 2018), Table 1 — the values SEAL enforces in CoeffModulus::MaxBitCount, whose table
 * stops at N = 2^15. N = 2^16: 1747, the value OpenFHE's lattice-estimator table
 * (HEStd_128_classic) gives; the standard's table has no N = 2^16 row. */
static const unsigned max_logqp_table[CKKS_MAX_LOGN - CKKS_MIN_LOGN + 1] = {109, 218, 438, 881,
                                                                            1747};

unsigned ckks_max_logqp(unsigned logn)
{
    if (logn < CKKS_MIN_LOGN || logn > CKKS_MAX_LOGN)
        return 0;
    return max_logqp_table[logn - CKKS_MIN_LOGN];
}

/* ---- presets ---------------------------------------------------------------------------------
 * n13 — N = 8192, batch 4096, depth 5 (the CryptoNets-size net: conv, square, dense, square,
 *        dense = 5 rescales). log2(Q*P) = 38 + 5*28 + 40 = 218 = the 128-bit limit.
 *   q_0      38 bits  final decryption prime: holds scale 2^28 results with 9 bits of
 *                     headroom (|value| < 2^9 = 512 at the final scale) — logits fit easily.
 *   q_1..q_5 28 bits  rescale primes, one per multiplicative level, ~ the default scale 2^28.
 *   P        40 bits  special key-switching prime, larger than every q_i: the key-switching
 *                     noise sum_j [c]_{q_j} e_j / P stays ~2^5 per coefficient.
 * n14 — N = 16384, batch 8192, depth 10. log2(Q*P) = 46 + 10*34 + 50 = 436 <= 438.
 *   q_0       46 bits final decryption prime (12 bits of headroom over the scale 2^34).
 *   q_1..q_10 34 bits rescale primes ~ the default scale 2^34.
 *   P         50 bits special prime (larger than every q_i; < 2^50 keeps the IFMA path). */
ppnn_status ckks_preset(ckks_spec *spec, const char *name)
{
    memset(spec, 0, sizeof *spec);
    if (!strcmp(name, "n13")) {
        spec->logn = 13;
        spec->nq = 6;
        spec->q_bits[0] = 38;
        for (size_t i = 1; i < 6; i++)
            spec->q_bits[i] = 28;
        spec->p_bits = 40;
        spec->scale = 0x1p28;
        return PPNN_OK;
    }
    if (!strcmp(name, "n14")) {
        spec->logn = 14;
        spec->nq = 11;
        spec->q_bits[0] = 46;
        for (size_t i = 1; i < 11; i++)
            spec->q_bits[i] = 34;
        spec->p_bits = 50;
        spec->scale = 0x1p34;
        return PPNN_OK;
    }
    return ppnn_fail(PPNN_ERR_PARAM, "unknown CKKS parameter preset '%s' (known: n13, n14)", name);
}

static ppnn_status validate_spec(const ckks_spec *s)
{
    unsigned lo = s->insecure_for_testing ? CKKS_TEST_MIN_LOGN : CKKS_MIN_LOGN;
    if (s->logn < lo || s->logn > CKKS_MAX_LOGN)
        return ppnn_fail(PPNN_ERR_PARAM, "ring degree 2^%u out of range (2^%u..2^%u)", s->logn,
                         lo, CKKS_MAX_LOGN);
    if (s->nq < 1 || s->nq > CKKS_MAX_PRIMES)
        return ppnn_fail(PPNN_ERR_PARAM, "number of ciphertext primes %zu out of range (1..%d)",
                         s->nq, CKKS_MAX_PRIMES);
    /* q = 1 mod 2N with bits b needs 2N < 2^(b-1) to leave room for candidates. */
    unsigned min_bits = CKKS_MIN_PRIME_BITS;
    if (s->logn + 3 > min_bits)
        min_bits = s->logn + 3;
    for (size_t i = 0; i <= s->nq; i++) {
        unsigned b = i < s->nq ? s->q_bits[i] : s->p_bits;
        if (b < min_bits || b > CKKS_MAX_PRIME_BITS) {
            if (i < s->nq)
                return ppnn_fail(PPNN_ERR_PARAM,
                                 "prime q_%zu: %u bits out of range (%u..%d for N = 2^%u)", i, b,
                                 min_bits, CKKS_MAX_PRIME_BITS, s->logn);
            return ppnn_fail(PPNN_ERR_PARAM,
                             "special prime P: %u bits out of range (%u..%d for N = 2^%u)", b,
                             min_bits, CKKS_MAX_PRIME_BITS, s->logn);
        }
    }
    unsigned total = s->p_bits;
    for (size_t i = 0; i < s->nq; i++)
        total += s->q_bits[i];
    if (!s->insecure_for_testing) {
        unsigned limit = ckks_max_logqp(s->logn);
        if (total > limit)
            return ppnn_fail(PPNN_ERR_INSECURE,
                             "log2(Q*P) = %u bits exceeds the 128-bit security limit of %u bits "
                             "for N = 2^%u (HomomorphicEncryption.org table, ternary secret)",
                             total, limit, s->logn);
    }
    /* Key switching divides by P: its noise sum_j [c]_{q_j} e_j / P is below the rescale noise
     * only when P >= every q_i (ckks.h). P is generated first as the largest prime of its
     * size, so p_bits >= max q_bits gives P > max q_i (explicit primes: check_explicit_primes). */
    for (size_t i = 0; i < s->nq; i++)
        if (s->q_bits[i] > s->p_bits)
            return ppnn_fail(PPNN_ERR_PARAM,
                             "special prime P (%u bits) must be at least as large as every q_i "
                             "(q_%zu has %u bits)", s->p_bits, i, s->q_bits[i]);
    if (!(s->scale == 0 || (isfinite(s->scale) && s->scale >= 1.0)))
        return ppnn_fail(PPNN_ERR_PARAM, "default scale %g must be >= 1 and finite", s->scale);
    return PPNN_OK;
}

/* Primes stored in order q_0..q_{nq-1}, P. P is chosen first, as the largest NTT prime of its
 * bit size, then each q_i as the largest unused one of its size: a q_i of P's size is then
 * smaller than P, so P > max q_i whenever p_bits >= max q_bits (validate_spec). */
static ppnn_status generate_primes(uint64_t *primes, const ckks_spec *s)
{
    uint64_t two_n = (uint64_t)2 << s->logn, chosen[CKKS_MAX_PRIMES + 1];
    for (size_t i = 0; i <= s->nq; i++) {
        unsigned b = i == 0 ? s->p_bits : s->q_bits[i - 1];
        ppnn_status st = mq_find_ntt_primes(&chosen[i], 1, b, two_n, chosen, i);
        if (st)
            return st;
    }
    memcpy(primes, chosen + 1, s->nq * sizeof *primes);
    primes[s->nq] = chosen[0];
    return PPNN_OK;
}

static unsigned bit_length(uint64_t x)
{
    unsigned b = 0;
    for (; x; x >>= 1)
        b++;
    return b;
}

/* Explicit primes: the bit sizes come from the primes; each must be an NTT prime for 2N. */
static ppnn_status explicit_bits(ckks_spec *s)
{
    if (s->nq < 1 || s->nq > CKKS_MAX_PRIMES)
        return ppnn_fail(PPNN_ERR_PARAM, "number of ciphertext primes %zu out of range (1..%d)",
                         s->nq, CKKS_MAX_PRIMES);
    for (size_t i = 0; i <= s->nq; i++) {
        if (i < s->nq)
            s->q_bits[i] = bit_length(s->primes[i]);
        else
            s->p_bits = bit_length(s->primes[i]);
    }
    return PPNN_OK;
}

static ppnn_status check_explicit_primes(const ckks_spec *s)
{
    uint64_t two_n = (uint64_t)2 << s->logn;
    for (size_t i = 0; i <= s->nq; i++) {
        uint64_t q = s->primes[i];
        if (!mq_is_prime(q) || q % two_n != 1)
            return ppnn_fail(PPNN_ERR_PARAM, "modulus %llu is not a prime = 1 mod 2N (N = %zu)",
                             (unsigned long long)q, (size_t)two_n / 2);
        for (size_t j = 0; j < i; j++)
            if (s->primes[j] == q)
                return ppnn_fail(PPNN_ERR_PARAM, "prime %llu appears twice",
                                 (unsigned long long)q);
        if (i < s->nq && q > s->primes[s->nq])
            return ppnn_fail(PPNN_ERR_PARAM,
                             "special prime P = %llu must be larger than every q_i (q_%zu = %llu)",
                             (unsigned long long)s->primes[s->nq], i, (unsigned long long)q);
    }
    return PPNN_OK;
}

static void compute_id(ckks_params *p)
{
    crypto_generichash_state h;
    static const char domain[] = "ppnn-ckks-params-v1";
    uint8_t buf[8];
    crypto_generichash_init(&h, NULL, 0, CKKS_PARAM_ID_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)domain, sizeof domain - 1);
    uint64_t vals[2] = {p->logn, p->nq};
    for (size_t k = 0; k < 2 + p->nq + 1; k++) {
        uint64_t v = k < 2 ? vals[k] : (k - 2 < p->nq ? p->q[k - 2] : p->p);
        for (int b = 0; b < 8; b++)
            buf[b] = (uint8_t)(v >> (8 * b));
        crypto_generichash_update(&h, buf, 8);
    }
    crypto_generichash_final(&h, p->id, CKKS_PARAM_ID_BYTES);
}

/* ---- multi-word helpers for the CRT tables (little-endian 64-bit words) ---- */
/* r[0..w] = a[0..w-1] * m (r has w+1 words). */
static void mw_mul1(uint64_t *r, const uint64_t *a, size_t w, uint64_t m)
{
    uint64_t carry = 0;
    for (size_t i = 0; i < w; i++) {
        mq_u128 t = (mq_u128)a[i] * m + carry;
        r[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
    r[w] = carry;
}

static uint64_t mw_mod1(const uint64_t *a, size_t w, const mq_modulus *m)
{
    uint64_t r = 0;
    for (size_t i = w; i-- > 0;)
        r = mq_reduce128(((mq_u128)r << 64) | a[i], m);
    return r;
}

static ppnn_status build_crt(ckks_params *p)
{
    ckks_crt_level *crt = calloc(p->nq, sizeof *crt);
    if (!crt)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for CRT tables");
    p->inner->crt = crt;
    for (size_t l = 0; l < p->nq; l++) {
        size_t w = l + 1, np = l + 1;
        ckks_crt_level *c = &crt[l];
        c->words = w;
        c->big_q = calloc(w + 1, sizeof(uint64_t));
        c->half_q = calloc(w + 1, sizeof(uint64_t));
        c->qhat = calloc(np * (w + 1), sizeof(uint64_t));
        c->qhat_inv = calloc(np, sizeof(uint64_t));
        c->inv_q = calloc(np, sizeof(double));
        if (!c->big_q || !c->half_q || !c->qhat || !c->qhat_inv || !c->inv_q)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for CRT tables");
        c->log2_q = 0;
        for (size_t i = 0; i < np; i++) {
            c->log2_q += log2((double)p->q[i]);
            c->inv_q[i] = 1.0 / (double)p->q[i];
        }
        /* Q_l = product; qhat_i = product of the others (computed the same way). */
        uint64_t *tmp = calloc(w + 1, sizeof(uint64_t));
        if (!tmp)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for CRT tables");
        for (size_t i = 0; i <= np; i++) {
            uint64_t *dst = i < np ? c->qhat + i * (w + 1) : c->big_q;
            memset(dst, 0, (w + 1) * sizeof(uint64_t));
            dst[0] = 1;
            size_t used = 1;
            for (size_t k = 0; k < np; k++) {
                if (k == i)
                    continue;
                mw_mul1(tmp, dst, used, p->q[k]);
                memcpy(dst, tmp, (used + 1) * sizeof(uint64_t));
                if (used < w)
                    used++;
            }
            if (i < np) {
                const mq_modulus *m = &p->ring->primes[i].mod;
                c->qhat_inv[i] = mq_inv(mw_mod1(dst, w, m), m);
            }
        }
        free(tmp);
        for (size_t k = 0; k <= w; k++) /* (Q-1)/2 = Q >> 1 for odd Q */
            c->half_q[k] = (c->big_q[k] >> 1) | (k < w ? c->big_q[k + 1] << 63 : 0);
    }
    return PPNN_OK;
}

static void free_crt(ckks_params *p)
{
    if (!p->inner || !p->inner->crt)
        return;
    for (size_t l = 0; l < p->nq; l++) {
        free(p->inner->crt[l].big_q);
        free(p->inner->crt[l].half_q);
        free(p->inner->crt[l].qhat);
        free(p->inner->crt[l].qhat_inv);
        free(p->inner->crt[l].inv_q);
    }
    free(p->inner->crt);
}

ppnn_status ckks_params_new(ckks_params **out, const ckks_spec *spec)
{
    *out = NULL;
    ckks_spec s = *spec;
    int explicit = s.primes[0] != 0;
    ppnn_status st = explicit ? explicit_bits(&s) : PPNN_OK;
    if (!st)
        st = validate_spec(&s);
    if (!st && explicit)
        st = check_explicit_primes(&s);
    if (st)
        return st;
    spec = &s;
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    ckks_params *p = calloc(1, sizeof *p);
    if (!p || !(p->inner = calloc(1, sizeof *p->inner))) {
        free(p);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for CKKS parameters");
    }
    p->logn = spec->logn;
    p->n = (size_t)1 << spec->logn;
    p->slots = p->n / 2;
    p->nq = spec->nq;
    uint64_t primes[CKKS_MAX_PRIMES + 1];
    if (explicit) {
        memcpy(primes, s.primes, (s.nq + 1) * sizeof *primes);
    } else {
        st = generate_primes(primes, spec);
        if (st)
            goto fail;
        memcpy(s.primes, primes, (s.nq + 1) * sizeof *primes);
    }
    memcpy(p->q, primes, p->nq * sizeof(uint64_t));
    p->p = primes[p->nq];
    p->logqp = spec->p_bits;
    for (size_t i = 0; i < p->nq; i++)
        p->logqp += spec->q_bits[i];
    if (spec->scale > 0)
        p->scale = spec->scale;
    else if (p->nq > 1)
        p->scale = ldexp(1.0, (int)spec->q_bits[p->nq - 1]);
    else
        p->scale = ldexp(1.0, (int)spec->q_bits[0] / 2);
    if (log2(p->scale) >= (double)(p->logqp - spec->p_bits) - 1) {
        st = ppnn_fail(PPNN_ERR_PARAM, "default scale 2^%.1f does not fit the modulus",
                       log2(p->scale));
        goto fail;
    }
    st = ring_context_new(&p->ring, p->logn, primes, p->nq + 1, RING_IMPL_AUTO);
    if (st)
        goto fail;
    st = ckks_fft_init(&p->inner->fft, p->n);
    if (st)
        goto fail;
    st = build_crt(p);
    if (st)
        goto fail;
    p->inner->brv = malloc(p->n * sizeof *p->inner->brv);
    if (!p->inner->brv) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for CKKS parameters");
        goto fail;
    }
    for (size_t k = 0; k < p->n; k++) {
        uint32_t r = 0;
        for (unsigned b = 0; b < p->logn; b++)
            r |= (uint32_t)((k >> b) & 1) << (p->logn - 1 - b);
        p->inner->brv[k] = r;
    }
    compute_id(p);
    p->spec = s;
    p->spec.scale = p->scale;
    *out = p;
    return PPNN_OK;
fail:
    ckks_params_free(p);
    return st;
}

void ckks_params_free(ckks_params *p)
{
    if (!p)
        return;
    if (p->inner) {
        ckks_fft_free(&p->inner->fft);
        free_crt(p);
        free(p->inner->brv);
        free(p->inner);
    }
    ring_context_free(p->ring);
    free(p);
}

int ckks_params_same(const ckks_params *a, const ckks_params *b)
{
    return a == b || (a && b && !memcmp(a->id, b->id, CKKS_PARAM_ID_BYTES));
}

ppnn_status ckks_check_params(const ckks_params *a, const ckks_params *b, const char *op)
{
    if (ckks_params_same(a, b))
        return PPNN_OK;
    return ppnn_fail(PPNN_ERR_MISMATCH, "%s: operands belong to different CKKS parameter sets",
                     op);
}
