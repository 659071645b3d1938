/* CKKS evaluator: additions, plaintext and scalar products, ct x ct products, rescale,
 * mod-switch. Key switching (relinearize, rotate, conjugate) is in keyswitch.c. Every
 * function checks parameter set, level and scale first and writes nothing on error. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

/* Scales of two operands of an addition must agree to this relative tolerance: scales are
 * tracked exactly in double, so real mismatches are off by far more (a missing rescale is a
 * factor ~2^28). */
#define SCALE_REL_TOL 0x1p-30

static int scales_match(double a, double b)
{
    return fabs(a - b) <= SCALE_REL_TOL * fmax(fabs(a), fabs(b));
}

ppnn_status ckks_check_same(const ckks_params *pa, size_t la, double sa, const ckks_params *pb,
                            size_t lb, double sb, int check_scale, const char *op)
{
    ppnn_status st = ckks_check_params(pa, pb, op);
    if (st)
        return st;
    if (la != lb)
        return ppnn_fail(PPNN_ERR_MISMATCH,
                         "%s: operands at different levels (%zu and %zu); mod-switch the higher "
                         "one first",
                         op, la, lb);
    if (check_scale && !scales_match(sa, sb))
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s: operands at different scales (2^%.4f and 2^%.4f)",
                         op, log2(sa), log2(sb));
    return PPNN_OK;
}

/* A product whose scale reaches Q_level/2 wraps every value of magnitude >= 1 around the
 * modulus: refuse it instead of returning garbage (the computation needs more levels). */
static ppnn_status check_product_scale(const ckks_params *params, size_t level, double scale,
                                       const char *op)
{
    double log2q = params->inner->crt[level].log2_q;
    if (log2(scale) + 1.0 < log2q)
        return PPNN_OK;
    return ppnn_fail(PPNN_ERR_DEPTH,
                     "%s: result scale 2^%.1f does not fit the modulus 2^%.1f left at level %zu "
                     "(rescale earlier or use parameters with more levels)",
                     op, log2(scale), log2q, level);
}

static ppnn_status add_sub(ckks_ciphertext *out, const ckks_ciphertext *a,
                           const ckks_ciphertext *b, int sub, const char *op)
{
    ppnn_status st =
        ckks_check_same(a->params, a->level, a->scale, b->params, b->level, b->scale, 1, op);
    if (st)
        return st;
    const ckks_params *params = a->params;
    size_t level = a->level, np = level + 1, asz = a->size, bsz = b->size;
    size_t size = asz > bsz ? asz : bsz, cw = np * params->n;
    double scale = a->scale;
    /* out may alias a or b: their data pointers are read after the (prefix-keeping) reshape. */
    int out_is_a = out == a, out_is_b = out == b;
    st = ckks_ct_shape(out, params, level, size, scale);
    if (st)
        return st;
    const uint64_t *ad = out_is_a ? out->data : a->data, *bd = out_is_b ? out->data : b->data;
    for (size_t k = 0; k < size; k++) {
        uint64_t *r = out->data + k * cw;
        const uint64_t *x = ad + k * cw, *y = bd + k * cw;
        if (k < asz && k < bsz) {
            if (sub)
                ring_poly_sub(r, x, y, params->ring, np);
            else
                ring_poly_add(r, x, y, params->ring, np);
        } else if (k < asz) {
            if (r != x)
                memcpy(r, x, cw * sizeof *r);
        } else if (sub) {
            ring_poly_neg(r, y, params->ring, np);
        } else if (r != y) {
            memcpy(r, y, cw * sizeof *r);
        }
    }
    return PPNN_OK;
}

ppnn_status ckks_add(ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return add_sub(out, a, b, 0, "add");
}

ppnn_status ckks_sub(ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return add_sub(out, a, b, 1, "sub");
}

ppnn_status ckks_add_inplace(ckks_ciphertext *acc, const ckks_ciphertext *b)
{
    return add_sub(acc, acc, b, 0, "add");
}

ppnn_status ckks_negate(ckks_ciphertext *out, const ckks_ciphertext *a)
{
    int alias = out == a;
    size_t np = a->level + 1;
    ppnn_status st = ckks_ct_shape(out, a->params, a->level, a->size, a->scale);
    if (st)
        return st;
    size_t cw = np * out->params->n;
    const uint64_t *src = alias ? out->data : a->data;
    for (size_t k = 0; k < out->size; k++)
        ring_poly_neg(out->data + k * cw, src + k * cw, out->params->ring, np);
    return PPNN_OK;
}

/* out = a op pt: add (c_0 += pt, scales must match) or multiply (every component, scales
 * multiply). */
static ppnn_status plain_op(ckks_ciphertext *out, const ckks_ciphertext *a,
                           const ckks_plaintext *pt, int mul)
{
    const char *op = mul ? "mul_plain" : "add_plain";
    ppnn_status st = ckks_check_same(a->params, a->level, a->scale, pt->params, pt->level,
                                     pt->scale, !mul, op);
    if (st)
        return st;
    if (mul && (st = check_product_scale(a->params, a->level, a->scale * pt->scale, op)))
        return st;
    st = ckks_ct_copy(out, a);
    if (st)
        return st;
    out->has_seed = 0;
    size_t np = out->level + 1, cw = np * out->params->n;
    if (!mul) {
        ring_poly_add(out->data, out->data, pt->data, out->params->ring, np);
        return PPNN_OK;
    }
    out->scale = a->scale * pt->scale;
    for (size_t k = 0; k < out->size; k++)
        ring_poly_mul(out->data + k * cw, out->data + k * cw, pt->data, out->params->ring, np);
    return PPNN_OK;
}

ppnn_status ckks_add_plain(ckks_ciphertext *out, const ckks_ciphertext *a,
                           const ckks_plaintext *pt)
{
    return plain_op(out, a, pt, 0);
}

ppnn_status ckks_mul_plain(ckks_ciphertext *out, const ckks_ciphertext *a,
                           const ckks_plaintext *pt)
{
    return plain_op(out, a, pt, 1);
}

/* Multiplies every component by the constant with residues w[0..level]. */
static void mul_residues(ckks_ciphertext *ct, const uint64_t *w)
{
    size_t np = ct->level + 1, cw = np * ct->params->n;
    for (size_t k = 0; k < ct->size; k++)
        ring_poly_mul_scalar(ct->data + k * cw, ct->data + k * cw, w, ct->params->ring, np);
}

ppnn_status ckks_mul_int(ckks_ciphertext *out, const ckks_ciphertext *a, int64_t k)
{
    uint64_t w[CKKS_MAX_PRIMES];
    for (size_t i = 0; i <= a->level; i++)
        w[i] = mq_from_int64(k, &a->params->ring->primes[i].mod);
    ppnn_status st = ckks_ct_copy(out, a);
    if (st)
        return st;
    out->has_seed = 0;
    mul_residues(out, w);
    return PPNN_OK;
}

ppnn_status ckks_mul_int_to_scale(ckks_ciphertext *out, const ckks_ciphertext *a, int64_t k,
                                  double scale)
{
    double want = a->scale * (double)k;
    if (k <= 0 || !(fabs(scale / want - 1) <= 0x1p-20))
        return ppnn_fail(PPNN_ERR_PARAM, "mul_int_to_scale: scale %g is not %lld times %g", scale,
                         (long long)k, a->scale);
    ppnn_status st = check_product_scale(a->params, a->level, scale, "mul_int_to_scale");
    if (!st)
        st = ckks_mul_int(out, a, k);
    if (!st)
        out->scale = scale;
    return st;
}

ppnn_status ckks_mul_scalar(ckks_ciphertext *out, const ckks_ciphertext *a, double w,
                            double wscale)
{
    uint64_t r[CKKS_MAX_PRIMES];
    if (!(wscale > 0))
        return ppnn_fail(PPNN_ERR_NUMERIC, "mul_scalar: weight scale %g must be positive", wscale);
    ppnn_status st = ckks_encode_scalar(r, a->params, a->level, w, wscale);
    if (!st)
        st = check_product_scale(a->params, a->level, a->scale * wscale, "mul_scalar");
    if (!st)
        st = ckks_ct_copy(out, a);
    if (st)
        return st;
    out->has_seed = 0;
    mul_residues(out, r);
    out->scale = a->scale * wscale;
    return PPNN_OK;
}

ppnn_status ckks_add_const(ckks_ciphertext *out, const ckks_ciphertext *a, double c)
{
    uint64_t r[CKKS_MAX_PRIMES];
    ppnn_status st = ckks_encode_scalar(r, a->params, a->level, c, a->scale);
    if (!st)
        st = ckks_ct_copy(out, a);
    if (st)
        return st;
    out->has_seed = 0;
    const ckks_params *params = out->params;
    size_t n = params->n;
    for (size_t i = 0; i <= out->level; i++) {
        const ring_prime *pr = &params->ring->primes[i];
        uint64_t *row = out->data + i * n;
        for (size_t j = 0; j < n; j++)
            row[j] = mq_add(row[j], r[i], pr->q);
    }
    return PPNN_OK;
}

ppnn_status ckks_mul(ckks_ciphertext *out, const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    ppnn_status st =
        ckks_check_same(a->params, a->level, a->scale, b->params, b->level, b->scale, 0, "mul");
    if (st)
        return st;
    if (a->size != 2 || b->size != 2)
        return ppnn_fail(PPNN_ERR_PARAM, "mul: operands must have 2 components (got %zu and %zu); "
                         "relinearize first", a->size, b->size);
    const ckks_params *params = a->params;
    size_t n = params->n, level = a->level, np = level + 1, cw = np * n;
    double scale = a->scale * b->scale;
    if ((st = check_product_scale(params, level, scale, "mul")))
        return st;
    int out_is_a = out == a, out_is_b = out == b, square = a == b;
    uint64_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return ppnn_fail(PPNN_ERR_NOMEM, "mul: out of memory");
    st = ckks_ct_shape(out, params, level, 3, scale);
    if (st) {
        free(tmp);
        return st;
    }
    /* Component offsets do not depend on size, so the size-2 inputs stay valid in an aliased
     * output; each prime row is read completely before it is overwritten. */
    const uint64_t *ad = out_is_a ? out->data : a->data, *bd = out_is_b ? out->data : b->data;
    for (size_t i = 0; i < np; i++) {
        const ring_prime *pr = &params->ring->primes[i];
        const uint64_t *a0 = ad + i * n, *a1 = ad + cw + i * n;
        const uint64_t *b0 = bd + i * n, *b1 = bd + cw + i * n;
        uint64_t *d0 = out->data + i * n, *d1 = out->data + cw + i * n,
                 *d2 = out->data + 2 * cw + i * n;
        _ring_mul(d2, a1, b1, pr);
        if (square) {
            _ring_mul(tmp, a0, a1, pr);
            _ring_add(tmp, tmp, tmp, pr);
        } else {
            _ring_mul(tmp, a0, b1, pr);
            _ring_muladd(tmp, a1, b0, pr);
        }
        _ring_mul(d0, a0, b0, pr);
        memcpy(d1, tmp, n * sizeof *d1);
    }
    free(tmp);
    return PPNN_OK;
}

ppnn_status ckks_square(ckks_ciphertext *out, const ckks_ciphertext *a)
{
    return ckks_mul(out, a, a);
}

/* What both rescale layouts share: the depth check before, the scale and the seed flag after
 * (the rows themselves are each layout's own). */
static ppnn_status rescale_check(const ckks_ciphertext *ct)
{
    if (ct->level == 0)
        return ppnn_fail(PPNN_ERR_DEPTH,
                         "rescale: ciphertext is at level 0, no prime left to divide by (the "
                         "computation is deeper than the parameters allow)");
    return PPNN_OK;
}

static void rescale_done(ckks_ciphertext *ct, size_t l)
{
    ct->scale /= (double)ct->params->q[l];
    ct->has_seed = 0;
}

ppnn_status ckks_rescale(ckks_ciphertext *ct)
{
    ppnn_status st = rescale_check(ct);
    if (st)
        return st;
    const ckks_params *params = ct->params;
    size_t n = params->n, l = ct->level, cw = (l + 1) * n;
    uint64_t *tmp = malloc(2 * n * sizeof *tmp);
    if (!tmp)
        return ppnn_fail(PPNN_ERR_NOMEM, "rescale: out of memory");
    for (size_t k = 0; k < ct->size; k++) {
        uint64_t *c = ct->data + k * cw;
        ring_rescale_ntt(c, l, c + l * n, l, params->ring, tmp);
    }
    free(tmp);
    rescale_done(ct, l);
    ckks_ct_drop_rows(ct, l - 1);
    return PPNN_OK;
}

ppnn_status ckks_rescale_split(ckks_ciphertext *ct)
{
    ppnn_status st = rescale_check(ct);
    if (st)
        return st;
    const ckks_params *params = ct->params;
    const size_t n = params->n, l = ct->level;
    assert(ct->size == 2 && ct->cap >= (2 * l + 2) * n);
    uint64_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return ppnn_fail(PPNN_ERR_NOMEM, "rescale: out of memory");
    /* ring_rescale_ntt row by row: the dropped row to the coefficient domain (in place), then
     * every kept row of the component from it. */
    for (size_t k = 0; k < 2; k++) {
        uint64_t *last = ckks_ct_split_poly(ct, k, l);
        _ring_ntt_inverse(last, &params->ring->primes[l]);
        for (size_t i = 0; i < l; i++)
            ring_rescale_row_ntt(ckks_ct_split_poly(ct, k, i), i, last, l, params->ring, tmp);
    }
    free(tmp);
    rescale_done(ct, l);
    ct->level = l - 1;
    return PPNN_OK;
}

ppnn_status ckks_mod_switch(ckks_ciphertext *ct, size_t level)
{
    if (level > ct->level)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "mod switch: target level %zu is above the ciphertext level %zu", level,
                         ct->level);
    /* has_seed survives: the expansion at a lower level is a prefix of the expansion at a
     * higher one (ckks_expand_seed), so c_1's remaining rows still come from the seed. */
    ckks_ct_drop_rows(ct, level);
    return PPNN_OK;
}
