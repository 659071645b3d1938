/* One plan step at a time (hnn.h, "one step at a time"): the pieces the distributed executor
 * (src/dist/) runs on its share of a step — a derived step holding some rows, or some input
 * columns, of a plan step. The same encoding, kernels and relinearize/rescale sequence as the
 * streaming executor (exec.c), so every output residue is the same. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "hnn/inner.h"

static int nthreads(int t)
{
    return t > 0 ? t : omp_get_max_threads();
}

ppnn_status hnn_step_linear_sums(ckks_ciphertext *out, const ckks_ciphertext *in,
                                 const hnn_step *s, const hnn_exec_opts *o)
{
    const ckks_params *prm = in[0].params;
    const size_t l = s->level_in, n = prm->n;
    size_t size = 2;
    for (size_t i = 0; i < s->n_in; i++) {
        if (in[i].level < l || !ckks_params_same(in[i].params, prm))
            return ppnn_fail(PPNN_ERR_MISMATCH, "layer %zu (%s): input %zu at level %zu, the "
                             "step reads level %zu", s->layer, s->name, i, in[i].level, l);
        size = in[i].size > size ? in[i].size : size;
    }
    if (l < s->drop)
        return ppnn_fail(PPNN_ERR_DEPTH, "layer %zu (%s): no level left", s->layer, s->name);
    double pre, post, scale_out;
    _hnn_linear_scales(&pre, &post, &scale_out, s, prm, in[0].scale);
    const size_t nw = s->dense ? s->n_out * s->n_in : s->nnz;
    uint64_t *wq = malloc((nw ? nw : 1) * (l + 1) * sizeof *wq);
    uint64_t *bq = malloc((s->n_out ? s->n_out : 1) * (l + 1) * sizeof *bq);
    uint64_t *zero = calloc(n, sizeof *zero);
    const uint64_t **x = malloc((s->n_in ? s->n_in : 1) * sizeof *x);
    uint64_t **y = malloc((s->n_out ? s->n_out : 1) * sizeof *y);
    ppnn_status st = PPNN_OK;
    if (!wq || !bq || !zero || !x || !y)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu (%s)", s->layer, s->name);
    if (!st)
        st = _hnn_encode_linear(wq, bq, s, prm, l, scale_out);
    if (!st) {
        char msg[256] = "";
#pragma omp parallel for schedule(static) num_threads(nthreads(o->threads))
        for (size_t r = 0; r < s->n_out; r++) {
            ppnn_status e = ckks_ct_prepare(&out[r], prm, l, size, pre);
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
            for (size_t r = 0; r < s->n_out; r++)
                y[r] = ckks_ct_poly(&out[s->dense ? r : s->row_out[r]], k, i);
            if (s->dense)
                _hnn_linear_dense(y, wq + i * nw, bias, s->n_out, s->n_in, x, n, &m, o->threads,
                                  o->kernel);
            else
                _hnn_linear_sparse(y, s->row_start, s->col, wq + i * nw, bias, s->n_out, x, n,
                                   &m, o->threads, o->kernel);
        }
    }
    free(wq), free(bq), free(zero), free(x), free(y);
    return st;
}

ppnn_status hnn_step_linear_finish(ckks_ciphertext *out, size_t n, const hnn_step *s,
                                   const ckks_relin_key *rk, int threads)
{
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
#pragma omp parallel for schedule(dynamic) num_threads(nthreads(threads))
    for (size_t r = 0; r < n; r++) {
        ppnn_status e = rk && out[r].size == 3 ? ckks_relinearize(&out[r], rk) : PPNN_OK;
        for (size_t d = 0; d < s->drop && !e; d++)
            e = ckks_rescale(&out[r]);
        if (!e)
            ckks_ct_shrink(&out[r]);
        if (e)
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    return err ? ppnn_fail(err, "layer %zu (%s): %s", s->layer, s->name, msg) : PPNN_OK;
}

ppnn_status hnn_step_act(ckks_ciphertext *out, const ckks_ciphertext *in, const hnn_step *s,
                         const hnn_exec_opts *o)
{
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
#pragma omp parallel for schedule(dynamic) num_threads(nthreads(o->threads))
    for (size_t i = 0; i < s->n_in; i++) {
        ppnn_status e = &out[i] != &in[i] ? ckks_ct_copy(&out[i], &in[i]) : PPNN_OK;
        if (!e)
            e = _hnn_act_one(&out[i], s, i);
        if (e)
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    return err ? ppnn_fail(err, "layer %zu (activation): %s", s->layer, msg) : PPNN_OK;
}
