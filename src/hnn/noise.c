/* Noise model of a plan (hnn.h, docs/precision.md): the error of every encrypted value, walked
 * through the plan's steps element by element, as variances (the high-probability estimate)
 * and as an absolute worst-case bound.
 *
 * Units: value units (the numbers the network computes) at the scale Δ = 2^log2_scale of every
 * step's output (the executor returns each step exactly to Δ). A slot's value is the real part
 * of the canonical embedding of the plaintext divided by the scale: a polynomial whose N
 * coefficients are independent with variance v has in each slot a real part of variance
 * (N/2)·v (|ζ^j| = 1 and Σ_j cos²(·) = N/2), divided by scale².
 *
 * Sources (per coefficient; s ternary uniform, E[s_j²] = 2/3):
 * - Fresh encryption: e from the centered binomial distribution (variance 21/2) plus the
 *   rounding of the encoded message (variance 1/12). Gaussian in every slot.
 * - Rescale by q: c0 and c1 are divided with rounding (uniform in (-1/2, 1/2), variance 1/12),
 *   error r0 + r1·s, variance (1 + 2N/3)/12. NOT Gaussian across slots: in the canonical
 *   embedding r1·s is the slot-wise product σ_k(r1)·σ_k(s), and σ_k(s) is fixed by the key, so
 *   a few slots (images) carry several times the average error (measured max/rms 8.6 after one
 *   rescale over 4096 x 845 values, where a Gaussian gives 5.2). The real part of a product of
 *   two independent circular complex Gaussians is Laplace: these "key-product" terms are
 *   modelled as Laplace with the same variance (tail exp(-x·sqrt(2/v))). Every later operation
 *   is linear in them slot by slot (weights, and 2u for a square, are per-slot reals), so the
 *   accumulated key-product error at slot k stays Re(A_k·σ_k(s)): still Laplace.
 * - Relinearization (SEAL-style, one digit per prime, P >= every q_j): the mod-down by P rounds
 *   like a rescale and Σ_j d_j·e_j/P has variance <= N·(l+1)·(21/2)/12 (d_j < q_j <= P); it
 *   acts at the output scale Δ·q_l·q_{l-1} of a linear step after an activation, ~2^-56 of
 *   the rescale noise, modelled (as key-product) anyway.
 * - Weights rounded to integers at Δw ≈ Δ: term t adds δ_t·x_t, δ_t uniform in ±1/(2Δw)
 *   (variance 1/(12Δw²)); biases (and unfolded β) rounded at Δ: ±1/(2Δ). Gaussian.
 * Propagation: a linear row y = Σ w_t x_t scales independent input errors by Σ w_t² (variance)
 * or Σ |w_t| (bound); a square z = u² of u + e has error 2u·e + e²: variance 4u²·v + 2v²,
 * bound 2u·b + b². Linear elements of an activation are multiplied by the exact integer Δ.
 *
 * Magnitudes: the estimate uses the TYPICAL size of each value, |u| <= (p99.9 of the layer's
 * recorded |x| + |β|)/σ (hnn_step.utyp; for the weight rounding, the same for the squares and
 * the L1 image of typical inputs for linear outputs); the bound uses the plan's worst-case
 * bounds (1.5 x the recorded max, hnn_step.umax, hnn_step.max_in).
 * Quantiles: over a full batch (N/2 slots x n_outputs logits = M values) the estimate is the
 * level exceeded with probability <= 2^-HNN_NOISE_FAIL_LOG2 (union bound over the M values,
 * each at p = 2^-HNN_NOISE_FAIL_LOG2 / M): the x with P(|G + L| > x) = p for G Gaussian of
 * variance v_gauss and L Laplace of variance v_laplace (computed numerically, tail_sum).
 * The bound adds every source at its own quantile for that p by the triangle inequality (L1
 * row norms, every weight rounded the wrong way, every value at its bound); a bound over the
 * randomness itself would be useless (every coefficient of every error at its extreme). */
#include <math.h>
#include <stdlib.h>

#include "hnn/inner.h"

/* Variance of the centered binomial error (21 coin pairs), of a uniform rounding, of a ternary
 * coefficient. */
#define VAR_ERR 10.5
#define VAR_ROUND (1.0 / 12.0)
#define VAR_TERNARY (2.0 / 3.0)

typedef struct {
    double vg, vl; /* variances of the Gaussian and the key-product (Laplace) part */
    double b;      /* worst-case bound */
    double typ;    /* typical |value| (weight rounding in the estimate) */
} err_t;

typedef struct {
    const hnn_budget *b;
    double n, delta;
    double q; /* ln(2/p): p = per-value tail probability */
} model;

static double slot_var(double coef_var, double n, double scale)
{
    return 0.5 * n * coef_var / (scale * scale);
}

/* Bounds at the quantile: Gaussian / Laplace of variance v. */
static double q_gauss(const model *md, double v) { return sqrt(2 * v * md->q); }
static double q_laplace(const model *md, double v) { return sqrt(v / 2) * md->q; }

static double rescale_coef_var(double n) { return VAR_ROUND * (1 + n * VAR_TERNARY); }

double _hnn_rescale_noise(const hnn_budget *b)
{
    double n = ldexp(1.0, (int)b->logn);
    return HNN_NOISE_SIGMAS * sqrt(slot_var(rescale_coef_var(n), n, exp2(b->log2_scale)));
}

/* Error a linear row adds itself: weight and bias rounding (terms inputs of typical total
 * magnitude typ_l1 = Σ typ, bound max_in each), the relinearization of 3-component inputs
 * and the step's rescales. */
static err_t row_fresh(const model *md, const hnn_step *s, size_t terms, double typ_sq,
                       int relin)
{
    const double d2 = md->delta * md->delta;
    err_t e = {0, 0, 0, 0};
    /* Δw ≈ Δ for drop 1 (q_l) and drop 2 (q_l·q_{l-1}/Δ). */
    e.vg = (typ_sq + 1) * VAR_ROUND / d2;
    e.b = ((double)terms * s->max_in + 1) * 0.5 / md->delta;
    /* The d-th rescale (0-based) leaves the scale Δ^(drop-d); relinearization acts before. */
    for (size_t d = 0; d < s->drop; d++)
        e.vl += slot_var(rescale_coef_var(md->n), md->n, pow(md->delta, (double)(s->drop - d)));
    if (relin) {
        double ks = rescale_coef_var(md->n) + md->n * (double)(s->level_in + 1) * VAR_ERR *
                                                  VAR_ROUND;
        e.vl += slot_var(ks, md->n, pow(md->delta, (double)s->drop + 1));
    }
    e.b += q_gauss(md, e.vg) + q_laplace(md, e.vl);
    return e;
}

static void run_linear(const model *md, err_t *out, const err_t *in, const hnn_step *s,
                       int relin)
{
    for (size_t r = 0; r < s->n_out; r++) {
        size_t t0 = s->dense ? r * s->n_in : s->row_start[r];
        size_t t1 = s->dense ? (r + 1) * s->n_in : s->row_start[r + 1];
        size_t o = s->dense ? r : s->row_out[r];
        double typ_sq = 0, typ = fabs(s->bias[o]);
        for (size_t t = t0; t < t1; t++) {
            const err_t *x = &in[s->dense ? t - t0 : s->col[t]];
            typ_sq += x->typ * x->typ;
            typ += fabs(s->w[t]) * x->typ;
        }
        err_t acc = row_fresh(md, s, t1 - t0, typ_sq, relin);
        for (size_t t = t0; t < t1; t++) {
            const err_t *x = &in[s->dense ? t - t0 : s->col[t]];
            double w2 = s->w[t] * s->w[t];
            acc.vg += w2 * x->vg;
            acc.vl += w2 * x->vl;
            acc.b += fabs(s->w[t]) * x->b;
        }
        acc.typ = fmin(typ, s->max_out);
        out[o] = acc;
    }
}

static void run_act(const model *md, err_t *v, const hnn_step *s)
{
    for (size_t i = 0; i < s->n_in; i++) {
        if (!s->square[i])
            continue; /* multiplied by the exact integer Δ */
        err_t e = v[i];
        if (s->beta[i] != 0) { /* β encoded at Δ */
            e.vg += VAR_ROUND / (md->delta * md->delta);
            e.b += 0.5 / md->delta;
        }
        double u = s->utyp[i], g = 4 * u * u, vt = e.vg + e.vl;
        v[i].vg = g * e.vg + 2 * vt * vt;
        v[i].vl = g * e.vl;
        v[i].b = 2 * s->umax[i] * e.b + e.b * e.b;
        v[i].typ = u * u;
    }
}

/* P(|G + L| > x) for G ~ N(0, vg), L ~ Laplace of variance vl (scale b = sqrt(vl/2)):
 * ∫_0^∞ e^-t [Φc((x - bt)/σ) + Φc((x + bt)/σ)] dt (L symmetric), composite Simpson rule on
 * t in [0, 60] (e^-60 < 2^-86, far below any p used here). */
static double tail_sum(double x, double vg, double vl)
{
    const double sg = sqrt(vg), b = sqrt(vl / 2);
    if (b == 0)
        return erfc(x / (sg * M_SQRT2));
    if (sg == 0)
        return exp(-x / b);
    enum { STEPS = 1200 };
    const double tmax = 60, h = tmax / STEPS;
    double acc = 0;
    for (int k = 0; k <= STEPS; k++) {
        double t = k * h, w = k == 0 || k == STEPS ? 1 : k % 2 ? 4 : 2;
        acc += w * exp(-t) * 0.5 *
               (erfc((x - b * t) / (sg * M_SQRT2)) + erfc((x + b * t) / (sg * M_SQRT2)));
    }
    return acc * h / 3;
}

/* The x with P(|G + L| > x) = p (bisection between 0 and the union-bound quantile, which is
 * always above it). */
static double quantile_sum(const model *md, double vg, double vl)
{
    const double p = 2 * exp(-md->q);
    double lo = 0, hi = q_gauss(md, vg) + q_laplace(md, vl);
    for (int it = 0; it < 60 && hi > 0; it++) {
        double mid = 0.5 * (lo + hi);
        if (tail_sum(mid, vg, vl) > p)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

ppnn_status hnn_plan_noise(hnn_noise *out, const hnn_plan *p, const hnn_budget *b)
{
    size_t maxn = p->n_inputs;
    for (size_t k = 0; k < p->nsteps; k++)
        maxn = p->steps[k].n_out > maxn ? p->steps[k].n_out : maxn;
    err_t *cur = malloc(maxn * sizeof *cur), *nxt = malloc(maxn * sizeof *nxt);
    if (!cur || !nxt) {
        free(cur), free(nxt);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory estimating the plan's noise");
    }
    model md = {b, ldexp(1.0, (int)b->logn), exp2(b->log2_scale), 0};
    /* ln(2/p) with p = 2^-FAIL / (N/2 · n_outputs). */
    md.q = log(2.0) * (1 + HNN_NOISE_FAIL_LOG2) + log(md.n / 2 * (double)p->n_outputs);
    const double fresh = slot_var(VAR_ERR + VAR_ROUND, md.n, md.delta);
    const double in_max = p->nsteps ? p->steps[0].max_in : 1.0;
    for (size_t i = 0; i < p->n_inputs; i++)
        cur[i] = (err_t){fresh, 0, q_gauss(&md, fresh), in_max};
    int squared = 0; /* the current vector has 3 components (squares, not relinearized) */
    for (size_t k = 0; k < p->nsteps; k++) {
        const hnn_step *s = &p->steps[k];
        if (s->kind == HNN_STEP_ACT) {
            run_act(&md, cur, s);
            squared = 1;
            continue;
        }
        run_linear(&md, nxt, cur, s, squared);
        squared = 0;
        err_t *t = cur;
        cur = nxt, nxt = t;
    }
    double est = 0, bound = 0, var = 0, vl = 0;
    for (size_t o = 0; o < p->n_outputs; o++) {
        est = fmax(est, quantile_sum(&md, cur[o].vg, cur[o].vl));
        bound = fmax(bound, cur[o].b);
        if (cur[o].vg + cur[o].vl > var)
            var = cur[o].vg + cur[o].vl, vl = cur[o].vl;
    }
    free(cur), free(nxt);
    out->sigma = sqrt(var);
    out->sigma_keyprod = sqrt(vl);
    out->estimate = est;
    out->bound = fmax(bound, est);
    return PPNN_OK;
}
