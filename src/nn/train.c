/* Training: initialisation, the mini-batch loop (shuffling, augmentation, distillation,
 * clipping, cosine learning-rate decay, pruning), divergence detection, range recording. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"

void nn_train_config_default(nn_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 10;
    c->batch = 64;
    c->lr = 1e-3;
    c->optimizer = NN_OPT_ADAM;
    c->momentum = 0.9;
    c->clip_norm = 5.0;
    c->seed = 1;
    c->kd_temp = 4.0;
    c->kd_alpha = 0.5;
}

static ppnn_status check_images(const nn_model *m, const data_set *ds)
{
    ppnn_status st = nn_model_check_images(m, ds->channels, ds->rows, ds->cols);
    if (st)
        return st;
    if (!ds->count)
        return ppnn_fail(PPNN_ERR_PARAM, "no training images");
    return PPNN_OK;
}

/* Pixel mean and standard deviation (after /255) over the first up to 10000 images. */
static void set_normalisation(nn_model *m, const data_set *ds)
{
    size_t n = (ds->count < 10000 ? ds->count : 10000) * ds->channels * ds->rows * ds->cols;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = ds->pixels[i] / 255.0;
        s += v, s2 += v * v;
    }
    double mean = s / (double)n, var = s2 / (double)n - mean * mean;
    m->norm_mean = (float)mean;
    m->norm_std = (float)(var > 1e-12 ? sqrt(var) : 1.0);
}

/* Range of every layer's input (in[i]) and of the logits over `count` images from fill:
 * two forward passes (min/max, then a histogram of |x| for the percentile). */
static ppnn_status collect_ranges_from(const nn_model *m, nn_input_fill fill, void *ctx,
                                       size_t count, nn_range *in, nn_range *out)
{
    const size_t L = m->nlayers, batch = 256, isz = nn_numel(m->input);
    nn_range_acc *acc = malloc((L + 1) * sizeof *acc);
    float *x = malloc(batch * isz * sizeof *x);
    nn_work *w = NULL;
    ppnn_status st = acc && x ? nn_work_new(&w, m, batch)
                              : ppnn_fail(PPNN_ERR_NOMEM, "out of memory for range statistics");
    if (st)
        goto done;
    for (size_t i = 0; i <= L; i++)
        nn_range_acc_init(&acc[i]);
    for (int pass = 0; pass < 2 && !st; pass++) {
        for (size_t i = 0; i < count && !st; i += batch) {
            size_t k = count - i < batch ? count - i : batch;
            if ((st = fill(ctx, x, i, k)))
                break;
            nn_forward(w, x, k);
            for (size_t j = 0; j <= L; j++) {
                const float *v = j ? w->act[j - 1] : x;
                size_t numel = j ? nn_numel(m->layers[j - 1].out) : isz;
                nn_range_acc_add(&acc[j], v, k * numel);
            }
        }
        for (size_t j = 0; j <= L; j++)
            if (pass == 0)
                nn_range_acc_next(&acc[j]);
    }
    for (size_t j = 0; j < L && !st; j++)
        in[j] = nn_range_acc_result(&acc[j]);
    if (!st)
        *out = nn_range_acc_result(&acc[L]);
done:
    nn_work_free(w);
    free(x);
    free(acc);
    return st;
}

typedef struct {
    const nn_model *m;
    const data_set *ds;
} set_source;

static ppnn_status fill_from_set(void *ctx, float *x, size_t first, size_t n)
{
    const set_source *s = ctx;
    nn_model_normalize(s->m, x, s->ds->pixels + first * nn_numel(s->m->input), n);
    return PPNN_OK;
}

static ppnn_status collect_ranges(const nn_model *m, const data_set *ds, size_t count,
                                  nn_range *in, nn_range *out)
{
    set_source src = {m, ds};
    return collect_ranges_from(m, fill_from_set, &src, count < ds->count ? count : ds->count,
                               in, out);
}

ppnn_status nn_record_ranges_from(nn_model *m, nn_input_fill fill, void *ctx, size_t count)
{
    if (!count)
        return ppnn_fail(PPNN_ERR_PARAM, "no images to record ranges on");
    nn_range *in = malloc((m->nlayers ? m->nlayers : 1) * sizeof *in);
    ppnn_status st = in ? collect_ranges_from(m, fill, ctx, count, in, &m->out_range)
                        : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < m->nlayers; i++)
        m->layers[i].in_range = in[i];
    free(in);
    return st;
}

ppnn_status nn_record_ranges(nn_model *m, const data_set *ds, size_t count)
{
    ppnn_status st = check_images(m, ds);
    if (st)
        return st;
    set_source src = {m, ds};
    return nn_record_ranges_from(m, fill_from_set, &src, count < ds->count ? count : ds->count);
}

static void set_poly(nn_layer *l, float a, float b, float c)
{
    for (size_t j = 0; j < l->ncoef; j++)
        l->coef[j] = a, l->coef[l->ncoef + j] = b, l->coef[2 * l->ncoef + j] = c;
}

ppnn_status nn_model_init_params(nn_model *m, const data_set *ds, uint64_t seed)
{
    ppnn_status st = check_images(m, ds);
    if (st)
        return st;
    if (!(m->norm_std > 0))
        set_normalisation(m, ds);
    nn_rng rng;
    nn_rng_seed(&rng, seed, "init");
    for (size_t i = 0; i < m->nlayers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->nweight) {
            /* LeCun-uniform: variance 1/fan_in keeps pre-activations O(1) so the quadratic
             * activations start inside the range their ReLU fit covers. */
            size_t fan_in = l->nweight / l->out.c;
            float bound = (float)sqrt(3.0 / (double)fan_in);
            for (size_t k = 0; k < l->nweight; k++)
                l->weight[k] = bound * nn_rng_sym(&rng);
            memset(l->bias, 0, l->nbias * sizeof *l->bias);
        }
        if (l->ncoef)
            set_poly(l, 0.25f, 0.5f, 0.0f);
    }
    nn_rng_wipe(&rng);
    /* Fit each trainable activation to ReLU on its observed input range, front to back (a
     * layer's range depends on the fits before it). The range is the observed [min, max]
     * clipped to the 99.9th percentile of |x| so a few outliers do not flatten the fit. */
    nn_range *in = malloc(m->nlayers * sizeof *in), out;
    if (!in)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < m->nlayers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->type != NN_LAYER_POLY || !l->ncoef)
            continue;
        if ((st = collect_ranges(m, ds, 512, in, &out)))
            break;
        double p = in[i].abs_p999, lo = fmax(in[i].min, -p), hi = fmin(in[i].max, p);
        float a, b, c;
        nn_fit_relu(&a, &b, &c, lo, hi);
        set_poly(l, a, b, c);
    }
    free(in);
    return st;
}

/* Copies image src (chans planes of rows x cols) shifted by (dy, dx) into dst, filling with 0;
 * every channel moves together. */
static void shift_image(uint8_t *dst, const uint8_t *src, size_t chans, size_t rows,
                        size_t cols, long dy, long dx)
{
    memset(dst, 0, chans * rows * cols);
    for (size_t ch = 0; ch < chans; ch++, dst += rows * cols, src += rows * cols) {
        for (long y = 0; y < (long)rows; y++) {
            long sy = y - dy;
            if (sy < 0 || sy >= (long)rows)
                continue;
            for (long x = 0; x < (long)cols; x++) {
                long sx = x - dx;
                if (sx >= 0 && sx < (long)cols)
                    dst[y * (long)cols + x] = src[sy * (long)cols + sx];
            }
        }
    }
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Names the first layer whose output holds a NaN/Inf in the current batch. */
static ppnn_status diverged(const nn_work *w, size_t epoch, size_t batch)
{
    const nn_model *m = w->m;
    for (size_t i = 0; i < m->nlayers; i++)
        if (!all_finite(w->act[i], w->n * nn_numel(m->layers[i].out)))
            return ppnn_fail(PPNN_ERR_NUMERIC,
                             "training diverged at epoch %zu batch %zu: non-finite output of "
                             "layer %zu (%s)",
                             epoch, batch, i, nn_layer_type_name(m->layers[i].type));
    return ppnn_fail(PPNN_ERR_NUMERIC,
                     "training diverged at epoch %zu batch %zu: non-finite loss or gradient "
                     "(all layer outputs finite)",
                     epoch, batch);
}

typedef struct trainer {
    nn_work *w, *tw;
    float *grad, *x, *tx, *dlogits, *bounds;
    float *tall, *tbatch; /* offline distillation: teacher logits of every image, one batch */
    uint8_t *decay, *pix, *labels;
    uint32_t *perm;
    nn_optim opt;
    nn_pruner pr;
} trainer;

static void trainer_free(trainer *t)
{
    nn_work_free(t->w);
    nn_work_free(t->tw);
    free(t->grad), free(t->x), free(t->tx), free(t->dlogits), free(t->bounds);
    free(t->tall), free(t->tbatch);
    free(t->decay), free(t->pix), free(t->labels), free(t->perm);
    nn_optim_free(&t->opt);
    nn_pruner_free(&t->pr);
}

static ppnn_status trainer_init(trainer *t, nn_model *m, const data_set *ds,
                                const nn_train_config *c, size_t total_steps, size_t batches)
{
    const size_t B = c->batch, isz = nn_numel(m->input);
    memset(t, 0, sizeof *t);
    ppnn_status st = nn_pruner_init(&t->pr, m, c->prune, total_steps, batches);
    if (!st)
        st = nn_work_new(&t->w, m, B);
    if (!st && c->teacher)
        st = nn_work_new(&t->tw, c->teacher, B);
    if (!st)
        st = nn_optim_init(&t->opt, c->optimizer, m->nparams, c->momentum);
    if (st)
        return st;
    t->grad = malloc(m->nparams * sizeof *t->grad);
    t->x = malloc(B * isz * sizeof *t->x);
    t->tx = malloc(B * isz * sizeof *t->tx);
    t->dlogits = malloc(B * m->nclasses * sizeof *t->dlogits);
    t->bounds = calloc(m->nlayers, sizeof *t->bounds);
    t->decay = calloc(m->nparams, 1);
    t->pix = malloc(B * isz);
    t->labels = malloc(B);
    t->perm = malloc(ds->count * sizeof *t->perm);
    if (!t->grad || !t->x || !t->tx || !t->dlogits || !t->bounds || !t->decay || !t->pix ||
        !t->labels || !t->perm)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for training buffers");
    for (size_t i = 0; i < m->nlayers; i++) {
        const nn_layer *l = &m->layers[i];
        if (l->weight)
            memset(t->decay + (l->weight - m->params), 1, l->nweight);
    }
    for (size_t i = 0; i < ds->count; i++)
        t->perm[i] = (uint32_t)i;
    if (c->teacher && c->kd_offline) {
        const nn_model *tm = c->teacher;
        t->tall = malloc(ds->count * m->nclasses * sizeof *t->tall);
        t->tbatch = malloc(B * m->nclasses * sizeof *t->tbatch);
        if (!t->tall || !t->tbatch)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for teacher logits");
        for (size_t i = 0; i < ds->count; i += B) {
            size_t k = ds->count - i < B ? ds->count - i : B;
            nn_model_normalize(tm, t->tx, ds->pixels + i * isz, k);
            memcpy(t->tall + i * m->nclasses, nn_forward(t->tw, t->tx, k),
                   k * m->nclasses * sizeof *t->tall);
        }
    }
    if (c->range_penalty > 0) {
        /* Penalise poly inputs beyond 1.5x the 99.9th percentile seen at the start. */
        nn_range *in = malloc(m->nlayers * sizeof *in), out;
        if (!in)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        st = collect_ranges(m, ds, 1024, in, &out);
        for (size_t i = 0; !st && i < m->nlayers; i++)
            if (m->layers[i].type == NN_LAYER_POLY)
                t->bounds[i] = 1.5f * in[i].abs_p999;
        free(in);
    }
    return st;
}

ppnn_status nn_train(nn_model *m, const data_set *ds, const nn_train_config *c)
{
    ppnn_status st = check_images(m, ds);
    if (st)
        return st;
    if (!c->epochs || !c->batch || !(c->lr > 0))
        return ppnn_fail(PPNN_ERR_PARAM, "epochs, batch and learning rate must be positive");
    if (m->nclasses < DATA_NUM_CLASSES)
        return ppnn_fail(PPNN_ERR_MISMATCH, "model has %u outputs for %d classes", m->nclasses,
                         DATA_NUM_CLASSES);
    if (ds->count > UINT32_MAX)
        return ppnn_fail(PPNN_ERR_PARAM, "too many training images");
    if (c->teacher && (c->teacher->nclasses != m->nclasses ||
                       nn_numel(c->teacher->input) != nn_numel(m->input)))
        return ppnn_fail(PPNN_ERR_MISMATCH, "teacher has a different input or class count");
    if (!(m->norm_std > 0))
        set_normalisation(m, ds);
    const size_t B = c->batch, N = ds->count, isz = nn_numel(m->input), K = m->nclasses;
    const size_t batches = (N + B - 1) / B, total_steps = c->epochs * batches;
    trainer t;
    if ((st = trainer_init(&t, m, ds, c, total_steps, batches))) {
        trainer_free(&t);
        return st;
    }
    nn_rng rng;
    nn_rng_seed(&rng, c->seed, "train");
    size_t step = 0;
    for (size_t ep = 1; ep <= c->epochs && !st; ep++) {
        for (size_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = nn_rng_below(&rng, (uint32_t)(i + 1));
            uint32_t tmp = t.perm[i];
            t.perm[i] = t.perm[j], t.perm[j] = tmp;
        }
        double loss_sum = 0;
        size_t seen = 0, correct = 0;
        for (size_t bi = 0; bi < batches; bi++, step++) {
            size_t n = N - bi * B < B ? N - bi * B : B;
            for (size_t k = 0; k < n; k++) {
                const uint8_t *src = ds->pixels + (size_t)t.perm[bi * B + k] * isz;
                long s = (long)c->shift, dy = 0, dx = 0;
                if (s) {
                    dy = (long)nn_rng_below(&rng, (uint32_t)(2 * s + 1)) - s;
                    dx = (long)nn_rng_below(&rng, (uint32_t)(2 * s + 1)) - s;
                }
                shift_image(t.pix + k * isz, src, ds->channels, ds->rows, ds->cols, dy, dx);
            }
            uint8_t *lab = t.labels;
            for (size_t k = 0; k < n; k++)
                lab[k] = ds->labels[t.perm[bi * B + k]];
            nn_model_normalize(m, t.x, t.pix, n);
            const float *logits = nn_forward(t.w, t.x, n);
            const float *tlogits = NULL;
            if (t.tall) {
                for (size_t k = 0; k < n; k++)
                    memcpy(t.tbatch + k * K, t.tall + (size_t)t.perm[bi * B + k] * K,
                           K * sizeof *t.tbatch);
                tlogits = t.tbatch;
            } else if (c->teacher) {
                nn_model_normalize(c->teacher, t.tx, t.pix, n);
                tlogits = nn_forward(t.tw, t.tx, n);
            }
            double loss = nn_kd_loss(t.dlogits, logits, tlogits, lab, n, K, c->kd_temp,
                                     tlogits ? c->kd_alpha : 0.0);
            loss += nn_range_penalty(t.w, c->range_penalty, t.bounds);
            if (!isfinite(loss)) {
                st = diverged(t.w, ep, bi + 1);
                break;
            }
            nn_backward(t.w, t.grad, t.dlogits, c->range_penalty, t.bounds);
            double norm = nn_clip_grad(t.grad, m->nparams, c->clip_norm);
            if (!isfinite(norm)) {
                st = diverged(t.w, ep, bi + 1);
                break;
            }
            double lr = c->lr * 0.5 * (1 + cos(M_PI * (double)step / (double)total_steps));
            nn_optim_step(&t.opt, m->params, t.grad, lr, c->weight_decay, t.decay);
            nn_pruner_apply(&t.pr, m, step);
            loss_sum += loss * (double)n;
            seen += n;
            correct += nn_count_correct(logits, lab, n, K);
            if (c->progress) {
                nn_train_progress p = {ep, c->epochs, bi + 1, batches, loss_sum / (double)seen,
                                       (double)correct / (double)seen, seen};
                c->progress(c->progress_ctx, &p);
            }
        }
    }
    nn_rng_wipe(&rng);
    trainer_free(&t);
    if (!st && !all_finite(m->params, m->nparams))
        st = ppnn_fail(PPNN_ERR_NUMERIC, "training produced non-finite parameters");
    if (!st)
        st = nn_record_ranges(m, ds, 10000);
    return st;
}
