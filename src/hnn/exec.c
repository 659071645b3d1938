/* Executor: runs a plan on element-wise packed ciphertexts (hnn.h).
 *
 * Levels and scales. Inputs at level L, scale s. A LINEAR step at level l that drops one
 * prime multiplies by integers round(w·q_l) (scale s·q_l), adds round(bias·s)·q_l to c_0 (the
 * NTT of a constant polynomial is that constant in every coefficient), relinearizes its outputs
 * when the inputs had 3 components, and rescales by q_l: the scale returns exactly to s. An ACT
 * step adds β (unless folded into the previous bias) and squares: scale s², 3 components, not
 * relinearized, not rescaled; its linear elements are multiplied by the integer round(s) and
 * labelled with scale s² (relative error 2^-(log2 s + 1), far below the CKKS noise). The
 * LINEAR step after it reads inputs at scale S = s² and drops two primes: weights at
 * Δw = q_l·q_{l-1}/sqrt(S), bias round(b·sqrt(S))·q_l·q_{l-1}, output scale sqrt(S)·q_l·q_{l-1},
 * which the two rescales bring back exactly to sqrt(S) = s. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "hnn/inner.h"

__extension__ typedef unsigned __int128 u128;

void hnn_budget_from_params(hnn_budget *b, const ckks_params *params, const char *name)
{
    b->name = name;
    b->levels = params->nq - 1;
    b->log2_scale = log2(params->scale);
    b->log2_q0 = log2((double)params->q[0]);
    b->logn = params->logn;
}

static uint64_t mod_signed(int64_t v, uint64_t q)
{
    uint64_t m = (uint64_t)(v < 0 ? -(v + 1) : v) % q; /* -(v+1) avoids overflow at INT64_MIN */
    if (v >= 0)
        return m;
    m = (m + 1) % q;
    return m ? q - m : 0;
}

/* Per-prime integer weights round(w·Δw) mod q_i and biases round(b·s)·D mod q_i for the
 * primes q_0..q_l: arrays nw x (l+1) and n_out x (l+1) (biases in row order), prime-major.
 * scale_out: the scale the outputs return to after the step's rescales. */
static ppnn_status encode_linear(uint64_t *wq, uint64_t *bq, const hnn_step *s,
                                 const ckks_params *prm, size_t l, double scale_out)
{
    const size_t nw = s->dense ? s->n_out * s->n_in : s->nnz;
    /* The dropped primes: their product D (mod each q_i, and as a real number). */
    double D = 1;
    for (size_t d = 0; d < s->drop; d++)
        D *= (double)prm->q[l - d];
    const double dw = s->drop == 1 ? (double)prm->q[l] : D / scale_out;
    for (size_t t = 0; t < nw; t++) {
        double v = round(s->w[t] * dw);
        if (!(fabs(v) < 0x1p62))
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (%s): weight %g too large to encode",
                             s->layer, s->name, s->w[t]);
        for (size_t i = 0; i <= l; i++)
            wq[i * nw + t] = mod_signed((int64_t)v, prm->q[i]);
    }
    for (size_t r = 0; r < s->n_out; r++) {
        size_t o = s->dense ? r : s->row_out[r];
        double v = round(s->bias[o] * scale_out);
        if (!(fabs(v) < 0x1p62))
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (%s): bias %g too large to encode",
                             s->layer, s->name, s->bias[o]);
        for (size_t i = 0; i <= l; i++) {
            uint64_t q = prm->q[i], dq = 1;
            for (size_t d = 0; d < s->drop; d++)
                dq = (uint64_t)((u128)dq * (prm->q[l - d] % q) % q);
            /* Row order: the sparse kernel adds bias[r] to its row r. */
            bq[i * s->n_out + r] = (uint64_t)((u128)mod_signed((int64_t)v, q) * dq % q);
        }
    }
    return PPNN_OK;
}

static int nthreads(int t)
{
    return t > 0 ? t : omp_get_max_threads();
}

/* Called on a worker thread after a failure: the first failure's code and message (recorded
 * on that thread) are kept for the caller's thread. */
void _hnn_keep_first_error(ppnn_status *err, char *msg, size_t len, ppnn_status e)
{
#pragma omp critical(hnn_err)
    if (!*err) {
        *err = e;
        snprintf(msg, len, "%s", ppnn_last_error());
    }
}

/* Relinearizes (size 3 only) and rescales ct[0..n) `drop` times, in parallel. */
static ppnn_status relin_rescale(ckks_ciphertext *ct, size_t n, const ckks_relin_key *rk,
                                 size_t drop, int threads)
{
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
#pragma omp parallel for schedule(dynamic) num_threads(nthreads(threads))
    for (size_t r = 0; r < n; r++) {
        ppnn_status e = rk && ct[r].size == 3 ? ckks_relinearize(&ct[r], rk) : PPNN_OK;
        for (size_t d = 0; d < drop && !e; d++)
            e = ckks_rescale(&ct[r]);
        if (e)
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    return err ? ppnn_fail(err, "%s", msg) : PPNN_OK;
}

ppnn_status hnn_step_linear_sums(ckks_ciphertext *out, const ckks_ciphertext *in,
                                 const hnn_step *s, const hnn_exec_opts *o)
{
    const ckks_params *prm = in[0].params;
    const size_t l = in[0].level, n = prm->n;
    const double scale = in[0].scale;
    size_t size = 2;
    for (size_t i = 0; i < s->n_in; i++)
        size = in[i].size > size ? in[i].size : size;
    const size_t nw = s->dense ? s->n_out * s->n_in : s->nnz;
    uint64_t *wq = malloc((nw ? nw : 1) * (l + 1) * sizeof *wq);
    uint64_t *bq = malloc(s->n_out * (l + 1) * sizeof *bq);
    uint64_t *zero = calloc(n, sizeof *zero);
    const uint64_t **x = malloc(s->n_in * sizeof *x);
    uint64_t **y = malloc(s->n_out * sizeof *y);
    ppnn_status st = PPNN_OK;
    if (!wq || !bq || !zero || !x || !y)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu (%s)", s->layer, s->name);
    const double scale_out = s->drop == 1 ? scale : sqrt(scale);
    double out_scale = scale_out;
    for (size_t d = 0; d < s->drop; d++)
        out_scale *= (double)prm->q[l - d];
    if (!st && l < s->drop)
        st = ppnn_fail(PPNN_ERR_DEPTH, "layer %zu (%s): no level left", s->layer, s->name);
    if (!st)
        st = encode_linear(wq, bq, s, prm, l, scale_out);
    /* One allocation per output, large enough for the 3-component square the next step may
     * compute in place (3 x l rows); the kernels then write every word of the real shape. */
    const int reserve = l >= 1 && 3 * l > size * (l + 1);
    if (!st) {
        /* In parallel: first-touch page faults of ~1 GB dominate this loop. */
        char msg[256] = "";
#pragma omp parallel for schedule(static) num_threads(nthreads(o->threads))
        for (size_t r = 0; r < s->n_out; r++) {
            ppnn_status e =
                ckks_ct_init(&out[r], prm, reserve ? l - 1 : l, reserve ? 3 : size, 1.0);
            out[r].level = l, out[r].size = size, out[r].scale = out_scale;
            if (e)
                _hnn_keep_first_error(&st, msg, sizeof msg, e);
        }
        if (st)
            st = ppnn_fail(st, "%s", msg);
    }
    for (size_t i = 0; i <= l && !st; i++) {
        hnn_modulus m;
        hnn_modulus_init(&m, prm->q[i]);
        for (size_t k = 0; k < size; k++) {
            /* Missing components (a 2-component input among squares) contribute zero. */
            for (size_t t = 0; t < s->n_in; t++)
                x[t] = k < in[t].size ? ckks_ct_poly(&in[t], k, i) : zero;
            const uint64_t *bias = k == 0 ? bq + i * s->n_out : NULL;
            if (s->dense) {
                for (size_t r = 0; r < s->n_out; r++)
                    y[r] = ckks_ct_poly(&out[r], k, i);
                _hnn_linear_dense(y, wq + i * nw, bias, s->n_out, s->n_in, x, n, &m, o->threads,
                                  o->kernel);
            } else {
                for (size_t r = 0; r < s->n_out; r++)
                    y[r] = ckks_ct_poly(&out[s->row_out[r]], k, i);
                _hnn_linear_sparse(y, s->row_start, s->col, wq + i * nw, bias, s->n_out, x, n,
                                   &m, o->threads, o->kernel);
            }
        }
    }
    free(wq), free(bq), free(zero), free(x), free(y);
    return st;
}

ppnn_status hnn_step_linear_finish(ckks_ciphertext *out, size_t n, const hnn_step *s,
                                   const ckks_relin_key *rk, int threads)
{
    return relin_rescale(out, n, rk, s->drop, threads);
}

static ppnn_status run_linear(ckks_ciphertext *out, const ckks_ciphertext *in, const hnn_step *s,
                              const ckks_relin_key *rk, const hnn_exec_opts *o)
{
    ppnn_status st = hnn_step_linear_sums(out, in, s, o);
    return st ? st : hnn_step_linear_finish(out, s->n_out, s, rk, o->threads);
}

ppnn_status hnn_step_act(ckks_ciphertext *out, const ckks_ciphertext *in, const hnn_step *s,
                         const hnn_exec_opts *o)
{
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
    const double scale = in[0].scale;
    const int64_t k = (int64_t)llround(scale); /* carries linear elements to scale ≈ s² */
#pragma omp parallel for schedule(dynamic) num_threads(nthreads(o->threads))
    for (size_t i = 0; i < s->n_in; i++) {
        ppnn_status e;
        if (s->square[i]) {
            e = s->beta[i] != 0 ? ckks_add_const(&out[i], &in[i], s->beta[i]) : PPNN_OK;
            if (!e)
                e = ckks_square(&out[i], s->beta[i] != 0 ? &out[i] : &in[i]);
        } else {
            e = ckks_mul_int(&out[i], &in[i], k);
            out[i].scale = scale * scale;
        }
        if (e)
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    return err ? ppnn_fail(err, "layer %zu (activation): %s", s->layer, msg) : PPNN_OK;
}

static ppnn_status check_inputs(const hnn_plan *p, const ckks_ciphertext *in)
{
    const ckks_params *prm = in[0].params;
    /* A plan may use fewer levels than the parameters offer (the caller mod-switches the
     * inputs down to its top level): every prime above it would only cost time. */
    if (p->top_level > prm->nq - 1)
        return ppnn_fail(PPNN_ERR_MISMATCH,
                         "plan was made for %zu levels but the parameters have only %zu",
                         p->top_level, prm->nq - 1);
    for (size_t i = 0; i < p->n_inputs; i++) {
        const ckks_ciphertext *c = &in[i];
        if (!ckks_params_same(c->params, prm) || c->level != p->top_level || c->size != 2 ||
            fabs(c->scale / in[0].scale - 1) > 0x1p-30)
            return ppnn_fail(PPNN_ERR_MISMATCH,
                             "input ciphertext %zu: parameters, level %zu, size %zu or scale "
                             "differ from the plan's inputs (level %zu, size 2)",
                             i, c->level, c->size, p->top_level);
    }
    return PPNN_OK;
}

static void free_vector(ckks_ciphertext *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        ckks_ct_free(&v[i]);
    free(v);
}

ppnn_status hnn_infer(ckks_ciphertext *out, const hnn_plan *p, const ckks_ciphertext *in,
                      const ckks_relin_key *rk, const hnn_exec_opts *opts)
{
    hnn_exec_opts dflt = {0, HNN_KERNEL_AUTO, NULL, NULL};
    const hnn_exec_opts *o = opts ? opts : &dflt;
    ppnn_status st = check_inputs(p, in);
    if (st)
        return st;
    if (rk && !ckks_params_same(rk->params, in[0].params))
        return ppnn_fail(PPNN_ERR_MISMATCH, "relinearization key of other parameters");
    for (size_t k = 0; k < p->nsteps && !rk; k++)
        if (p->steps[k].kind == HNN_STEP_ACT)
            return ppnn_fail(PPNN_ERR_PARAM, "the model has activations: inference needs the "
                                             "relinearization key");
    /* vec: the intermediate vector this function owns (NULL while the inputs are current).
     * Activations run in place; a linear step writes a fresh vector (or out, at the end) and
     * frees the one it consumed, so at most two vectors are alive. */
    ckks_ciphertext *vec = NULL;
    const ckks_ciphertext *cur = in;
    size_t cur_n = p->n_inputs;
    for (size_t k = 0; k < p->nsteps && !st; k++) {
        const hnn_step *s = &p->steps[k];
        const int last = k + 1 == p->nsteps;
        ckks_ciphertext *dst = last ? out : vec;
        assert(!last || s->kind == HNN_STEP_LINEAR);
        if (s->kind == HNN_STEP_LINEAR || !vec) {
            dst = last ? out : calloc(s->n_out, sizeof *dst);
            if (!dst) {
                st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for intermediate ciphertexts");
                break;
            }
        }
        double t0 = ppnn_now();
        st = s->kind == HNN_STEP_LINEAR ? run_linear(dst, cur, s, rk, o)
                                        : hnn_step_act(dst, cur, s, o);
        if (dst != vec) {
            free_vector(vec, cur_n);
            vec = last ? NULL : dst;
        }
        cur = dst, cur_n = s->n_out;
        if (st)
            break;
        if (o->progress)
            o->progress(o->progress_ctx, k, s, ppnn_now() - t0);
    }
    free_vector(vec, cur_n);
    return st;
}

/* Mirrors the allocation policy of hnn_infer and run_linear: the inputs stay alive, a linear
 * step allocates its outputs (each max(3l, size(l+1)) rows of N words, so that a following
 * square fits in place) while the vector it consumes is still alive, activations run in place. */
uint64_t hnn_plan_peak_bytes(const hnn_plan *p, size_t n)
{
    uint64_t row = (uint64_t)n * sizeof(uint64_t);
    uint64_t inputs = (uint64_t)p->n_inputs * 2 * (p->top_level + 1) * row;
    uint64_t prev = 0, peak = 0;
    size_t size = 2;
    for (size_t k = 0; k < p->nsteps; k++) {
        const hnn_step *s = &p->steps[k];
        if (s->kind == HNN_STEP_ACT) {
            size = 3;
            continue;
        }
        uint64_t l = s->level_in, rows = size * (l + 1);
        if (l >= 1 && 3 * l > rows)
            rows = 3 * l;
        uint64_t out = (uint64_t)s->n_out * rows * row;
        peak = prev + out > peak ? prev + out : peak;
        prev = out;
        size = 2;
    }
    return inputs + peak;
}
