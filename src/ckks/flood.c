/* Error-aware noise flooding of decrypted plaintexts (ckks.h, "IND-CPA-D"; docs/security.md).
 * The flooding is added to the coefficients of m + e, where the Rényi / KL analysis of
 * Li-Micciancio-Schultz-Sorrell applies: per coefficient, two Gaussians of standard deviation
 * sigma shifted by e_j differ by KL e_j²/(2σ²); summed over the N coefficients and the tau
 * releases, tau·||e||²/(2σ²) = tau·E_coef²/(2·12·tau·2^s·E_coef²) = 2^-s/24. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

/* |z_j| < 8.6·sigma (ring_sample_gaussian): this many sigmas must fit below Q/2 next to m. */
#define FLOOD_TAIL 8.6

static ppnn_status check_flood(const ckks_flood *f)
{
    if (!(f->error > 0 && isfinite(f->error)))
        return ppnn_fail(PPNN_ERR_PARAM, "flooding: error bound %g must be finite and > 0",
                         f->error);
    if (f->stat_bits < 1 || f->stat_bits > CKKS_FLOOD_MAX_BITS)
        return ppnn_fail(PPNN_ERR_PARAM, "flooding: statistical security %u bits out of range "
                         "1..%u", f->stat_bits, CKKS_FLOOD_MAX_BITS);
    if (!(f->queries >= 1 && isfinite(f->queries)))
        return ppnn_fail(PPNN_ERR_PARAM, "flooding: %g released decryptions (must be >= 1)",
                         f->queries);
    return PPNN_OK;
}

double ckks_flood_sigma(const ckks_flood *f, double scale)
{
    return sqrt(12 * f->queries) * exp2(f->stat_bits / 2.0) * M_SQRT2 * f->error * scale;
}

double ckks_flood_slot_sigma(const ckks_flood *f, const ckks_params *params)
{
    /* A slot's real part sums the N coefficients times cosines: variance (N/2)·σ², / scale². */
    return ckks_flood_sigma(f, 1.0) * sqrt((double)params->n / 2);
}

ppnn_status ckks_flood_plaintext(ckks_plaintext *pt, const ckks_flood *f)
{
    ppnn_status st = check_flood(f);
    if (st)
        return st;
    const ckks_params *params = pt->params;
    const size_t n = params->n, np = pt->level + 1;
    const double sigma = ckks_flood_sigma(f, pt->scale);
    double log2q = params->inner->crt[pt->level].log2_q;
    /* The tail of z plus the message (|m| <= E·scale·2^(s/2) is not known here: 1 bit). */
    if (!(sigma < 0x1p58) || log2(FLOOD_TAIL * fmax(sigma, 1.0)) + 2 >= log2q)
        return ppnn_fail(PPNN_ERR_NUMERIC,
                         "flooding: noise of 2^%.1f per coefficient does not fit the modulus "
                         "2^%.1f left at level %zu (the decoded values would wrap around)",
                         log2(sigma), log2q, pt->level);
    int64_t *z = malloc(n * sizeof *z);
    uint64_t *zr = malloc(np * n * sizeof *zr);
    if (!z || !zr) {
        free(z), free(zr);
        return ppnn_fail(PPNN_ERR_NOMEM, "flooding: out of memory");
    }
    uint8_t seed[RING_SEED_BYTES];
    ring_seed_random(seed);
    ring_prg g;
    ring_prg_init(&g, seed, 0);
    sodium_memzero(seed, sizeof seed);
    ring_sample_gaussian(z, n, fmax(sigma, 1.0), &g);
    ring_prg_wipe(&g);
    ring_poly_from_int64(zr, z, params->ring, np);
    ring_poly_ntt_forward(zr, params->ring, np);
    ring_poly_add(pt->data, pt->data, zr, params->ring, np);
    sodium_memzero(z, n * sizeof *z);
    sodium_memzero(zr, np * n * sizeof *zr);
    free(z), free(zr);
    return PPNN_OK;
}

ppnn_status ckks_flood_check_real(const ckks_plaintext *pt, const ckks_flood *f)
{
    ppnn_status st = check_flood(f);
    if (st)
        return st;
    const size_t h = pt->params->slots;
    double complex *v = malloc(h * sizeof *v);
    if (!v)
        return ppnn_fail(PPNN_ERR_NOMEM, "flooding: out of memory");
    st = ckks_decode_complex(v, h, pt);
    double im = 0;
    for (size_t i = 0; i < h && !st; i++)
        im = fmax(im, fabs(cimag(v[i])));
    sodium_memzero(v, h * sizeof *v);
    free(v);
    if (!st && !(im <= CKKS_FLOOD_IMAG_FACTOR * f->error))
        return ppnn_fail(PPNN_ERR_NUMERIC,
                         "release refused: the result's noise reaches %.3g (imaginary parts), "
                         "more than %.0f x the error %.3g the flooding covers: the ciphertext "
                         "is not what the computation produces (another model, or a server "
                         "that did not run it); nothing released",
                         im, CKKS_FLOOD_IMAG_FACTOR, f->error);
    return st;
}

ppnn_status ckks_decode_release(double *values, size_t count, const ckks_plaintext *pt,
                                const ckks_flood *f)
{
    ckks_plaintext cp = {0};
    ppnn_status st = ckks_pt_init(&cp, pt->params, pt->level, pt->scale);
    if (!st) {
        memcpy(cp.data, pt->data, (pt->level + 1) * pt->params->n * sizeof *cp.data);
        st = ckks_flood_plaintext(&cp, f);
    }
    if (!st)
        st = ckks_decode(values, count, &cp);
    if (cp.data)
        sodium_memzero(cp.data, cp.cap * sizeof *cp.data);
    ckks_pt_free(&cp);
    return st;
}
