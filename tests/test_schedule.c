/* Streaming schedule + executor: for a fixed encrypted batch, the output ciphertexts are
 * identical bit for bit for every schedule — unfused (layers materialised, as version 1), fused
 * with default / tiny tiles, under several memory budgets, with stage outputs spilled to a
 * scratch file — and they decrypt to the folded plan's logits. The deep architecture (conv →
 * act → avgpool twice, dense → act → dense; 9 levels) runs under a budget far below its unfused
 * peak. Budgets below the minimum are refused naming it; a corrupted scratch file is detected. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckks_tu.h"
#include "hnn_tu.h"
#include "hnn/inner.h"
#include "ppnn/hnn.h"
#include "testutil.h"

typedef struct {
    ckks_params *prm;
    hnn_plan *p;
    ckks_secret_key sk;
    ckks_relin_key rk;
    ckks_ciphertext *in;
    double *x;
    size_t B;
} fixture;

static void fixture_init(fixture *f, nn_model *m, unsigned logn, size_t nq, unsigned q0, size_t B)
{
    memset(f, 0, sizeof *f);
    f->prm = ctu_params(logn, nq, q0, 28, 50);
    hnn_budget bud;
    hnn_budget_from_params(&bud, f->prm, "test");
    CHECK_OK(hnn_plan_new(&f->p, m, &bud, NULL, 0));
    CHECK_OK(ckks_keygen_secret(&f->sk, f->prm));
    CHECK_OK(ckks_keygen_relin(&f->rk, &f->sk));
    if (!f->p)
        exit(1);
    f->B = B;
    const size_t nin = f->p->n_inputs;
    f->x = malloc(B * nin * sizeof *f->x);
    double *v = malloc(B * sizeof *v);
    ctu_values(f->x, B * nin, 11);
    f->in = calloc(nin, sizeof *f->in);
    for (size_t k = 0; k < nin; k++) {
        for (size_t b = 0; b < B; b++)
            v[b] = f->x[b * nin + k];
        ctu_encrypt(&f->in[k], &f->sk, v, B, f->prm->nq - 1, f->prm->scale);
    }
    free(v);
}

static void fixture_free(fixture *f)
{
    for (size_t k = 0; f->in && k < f->p->n_inputs; k++)
        ckks_ct_free(&f->in[k]);
    free(f->in), free(f->x);
    ckks_relin_key_free(&f->rk);
    ckks_secret_key_free(&f->sk);
    hnn_plan_free(f->p);
    ckks_params_free(f->prm);
}

/* Runs f's plan under schedule options so; returns the outputs (caller frees). */
static ckks_ciphertext *run(const fixture *f, const hnn_schedule_opts *so, uint64_t *peak)
{
    hnn_schedule *s = NULL;
    CHECK_OK(hnn_schedule_new(&s, f->p, f->prm->n, so));
    if (!s)
        return NULL;
    if (so && so->budget_bytes)
        CHECK_MSG(s->peak_bytes <= so->budget_bytes, "peak %llu over budget %llu",
                  (unsigned long long)s->peak_bytes, (unsigned long long)so->budget_bytes);
    if (peak)
        *peak = s->peak_bytes;
    ckks_ciphertext *out = calloc(f->p->n_outputs, sizeof *out);
    hnn_exec_opts o = {.threads = 1, .schedule = s};
    CHECK_OK(hnn_infer(out, f->p, f->in, &f->rk, &o));
    hnn_schedule_free(s);
    return out;
}

static void free_out(ckks_ciphertext *out, size_t n)
{
    for (size_t c = 0; out && c < n; c++)
        ckks_ct_free(&out[c]);
    free(out);
}

/* Decrypted logits against the folded plan; returns the max error. */
static double check_logits(const fixture *f, const ckks_ciphertext *out)
{
    const size_t nout = f->p->n_outputs, nin = f->p->n_inputs;
    double *dec = malloc(nout * f->B * sizeof *dec), *logit = malloc(nout * sizeof *logit);
    double err = 0;
    for (size_t c = 0; c < nout; c++)
        ctu_decrypt(dec + c * f->B, f->B, &f->sk, &out[c]);
    for (size_t b = 0; b < f->B; b++) {
        hnn_plan_forward(f->p, logit, f->x + b * nin);
        for (size_t c = 0; c < nout; c++)
            err = fmax(err, fabs(dec[c * f->B + b] - logit[c]));
    }
    free(dec), free(logit);
    return err;
}

/* Every schedule gives the reference's ciphertexts. */
/* The run's buffer pool under budget `budget`: a caller's pool that poisons every buffer given
 * back (a ciphertext still reading one, i.e. a buffer reused while live, would change the
 * result) and is capped at the schedule's pooled bytes: what it held never went over them.
 * reuse: the schedule has several tiles, so buffers must have been reused. */
static void pooled(const fixture *f, uint64_t budget, const ckks_ciphertext *ref, const char *name,
                   int reuse)
{
    hnn_schedule_opts so = {.budget_bytes = budget};
    hnn_schedule *s = NULL;
    CHECK_OK(hnn_schedule_new(&s, f->p, f->prm->n, &so));
    ckks_ct_pool *pool = NULL;
    /* The caller's resident inputs are counted by the schedule but are not pool buffers. */
    const uint64_t cap = s ? s->peak_bytes - s->resident_bytes : 0;
    CHECK_OK(ckks_ct_pool_new(&pool, f->prm->n, cap, CKKS_POOL_POISON));
    if (!s || !pool)
        return;
    ckks_ciphertext *out = calloc(f->p->n_outputs, sizeof *out);
    hnn_exec_opts o = {.threads = 2, .schedule = s, .pool = pool};
    CHECK_OK(hnn_infer(out, f->p, f->in, &f->rk, &o));
    CHECK_MSG(htu_cts_differing(out, ref, f->p->n_outputs) == 0,
              "%s: pooled (poisoned) run differs", name);
    ckks_ct_pool_stats ps;
    ckks_ct_pool_get_stats(&ps, pool);
    CHECK_MSG(ps.in_use == 0 && (!reuse || ps.reuses > 0), "%s: pool: %llu bytes still in use, %llu reuses",
              name, (unsigned long long)ps.in_use, (unsigned long long)ps.reuses);
    CHECK_MSG(ps.peak <= cap, "%s: pool held %llu bytes, the schedule counted %llu", name,
              (unsigned long long)ps.peak, (unsigned long long)cap);
    free_out(out, f->p->n_outputs);
    ckks_ct_pool_free(pool);
    hnn_schedule_free(s);
}

static void equivalence(fixture *f, const char *name, int full)
{
    const size_t nout = f->p->n_outputs;
    hnn_schedule_opts unf = {.no_fusion = 1};
    uint64_t unfused_peak = 0, fused_peak = 0, peak = 0;
    /* Sanitizer runs (reduced) of the deep net skip the unfused reference (half a GB under
     * ASan): the fused run is the reference there. */
    const int skip_unfused = !full && tu_reduced();
    ckks_ciphertext *ref = run(f, skip_unfused ? NULL : &unf, &unfused_peak);
    if (!ref)
        return;
    double err = check_logits(f, ref);
    CHECK_MSG(err < 0x1p-12, "%s: encrypted logits off by %g", name, err);

    ckks_ciphertext *o = skip_unfused ? NULL : run(f, NULL, &fused_peak);
    if (skip_unfused)
        fused_peak = unfused_peak;
    else
        CHECK_MSG(htu_cts_differing(o, ref, nout) == 0, "%s: fused differs from unfused", name);
    free_out(o, nout);
    CHECK_MSG(skip_unfused || fused_peak < unfused_peak, "%s: fused peak %llu not below unfused %llu", name,
              (unsigned long long)fused_peak, (unsigned long long)unfused_peak);

    const size_t tiles[] = {7, 3, 1};
    for (size_t t = 0; t < (full ? 3u : skip_unfused ? 0u : 1u); t++) {
        hnn_schedule_opts so = {.tile = tiles[t]};
        o = run(f, &so, NULL);
        CHECK_MSG(htu_cts_differing(o, ref, nout) == 0, "%s: tile %zu differs", name, tiles[t]);
        free_out(o, nout);
        so.no_fusion = 1;
        o = run(f, &so, NULL);
        CHECK_MSG(htu_cts_differing(o, ref, nout) == 0, "%s: unfused tile %zu differs", name,
                  tiles[t]);
        free_out(o, nout);
    }
    /* Budgets from the default peak down to the minimum, without and with spilling. */
    uint64_t min_mem = hnn_schedule_min_bytes(f->p, f->prm->n, 0, 0);
    uint64_t min_spill = hnn_schedule_min_bytes(f->p, f->prm->n, 0, 1);
    CHECK(min_spill <= min_mem && min_mem <= fused_peak);
    const uint64_t budgets[] = {fused_peak, (fused_peak + min_mem) / 2, min_mem};
    for (size_t k = full ? 0 : 2; k < 3; k++) {
        hnn_schedule_opts so = {.budget_bytes = budgets[k]};
        o = run(f, &so, &peak);
        CHECK_MSG(htu_cts_differing(o, ref, nout) == 0, "%s: budget %llu differs", name,
                  (unsigned long long)budgets[k]);
        free_out(o, nout);
    }
    pooled(f, min_mem, ref, name, 1);
    if (full)
        pooled(f, 0, ref, name, 0);
    hnn_schedule_opts sp = {.budget_bytes = min_spill, .allow_spill = 1};
    o = run(f, &sp, &peak);
    CHECK_MSG(htu_cts_differing(o, ref, nout) == 0, "%s: spilled at the minimum differs", name);
    free_out(o, nout);
    hnn_schedule_opts fs = {.allow_spill = 1, .force_spill = 1, .tile = 5};
    o = run(f, &fs, NULL);
    CHECK_MSG(htu_cts_differing(o, ref, nout) == 0, "%s: forced spill differs", name);
    free_out(o, nout);

    /* Below the minimum: refused before any work, the message names the minimum. */
    hnn_schedule *s = NULL;
    hnn_schedule_opts low = {.budget_bytes = min_mem - 1};
    CHECK_ERR(hnn_schedule_new(&s, f->p, f->prm->n, &low), PPNN_ERR_NOMEM);
    char want[64];
    snprintf(want, sizeof want, "%.0f MB", (double)min_mem / 1e6);
    CHECK_MSG(strstr(ppnn_last_error(), "minimum") && strstr(ppnn_last_error(), want),
              "message '%s' does not name the minimum %s", ppnn_last_error(), want);
    CHECK(s == NULL);
    fprintf(stderr, "test_schedule %s: max |logit error| %.3g; peak unfused %.2f MB, fused %.2f "
            "MB, minimum %.2f MB (%.2f MB spilling)\n", name, err, unfused_peak / 1e6,
            fused_peak / 1e6, min_mem / 1e6, min_spill / 1e6);
    free_out(ref, nout);
}

/* Inputs at another scale than the plan's (the parameters' default): refused at entry. */
static void scale_check(fixture *f)
{
    ckks_ciphertext saved = f->in[2], other = {0};
    double v[4] = {0.1, 0.2, 0.3, 0.4};
    ctu_encrypt(&other, &f->sk, v, 4, f->prm->nq - 1, f->prm->scale * 2);
    f->in[2] = other;
    ckks_ciphertext *out = calloc(f->p->n_outputs, sizeof *out);
    hnn_exec_opts o = {.threads = 1};
    CHECK_ERR(hnn_infer(out, f->p, f->in, &f->rk, &o), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "scale") != NULL);
    f->in[2] = saved;
    ckks_ct_free(&other);
    free_out(out, f->p->n_outputs);
}

/* A scratch directory that does not exist: a clear error, nothing computed. */
static void scratch_errors(fixture *f)
{
    hnn_schedule *s = NULL;
    hnn_schedule_opts fs = {.allow_spill = 1, .force_spill = 1};
    CHECK_OK(hnn_schedule_new(&s, f->p, f->prm->n, &fs));
    ckks_ciphertext *out = calloc(f->p->n_outputs, sizeof *out);
    hnn_exec_opts o = {.threads = 1, .schedule = s, .scratch_dir = "/nonexistent/ppnn-scratch"};
    CHECK_ERR(hnn_infer(out, f->p, f->in, &f->rk, &o), PPNN_ERR_IO);
    CHECK_MSG(strstr(ppnn_last_error(), "/nonexistent/ppnn-scratch") != NULL, "message: %s",
              ppnn_last_error());
    free_out(out, f->p->n_outputs);
    hnn_schedule_free(s);
}

/* Spill round trip and corruption detection at the file level. */
static void spill_file(fixture *f)
{
    hnn_spill *sp = NULL;
    CHECK_OK(_hnn_spill_open(&sp, NULL, 2, f->prm));
    if (!sp)
        return;
    CHECK_OK(_hnn_spill_put(sp, 1, &f->in[0]));
    CHECK_OK(_hnn_spill_put(sp, 0, &f->in[1]));
    ckks_ciphertext back = {0};
    CHECK_OK(_hnn_spill_get(sp, 1, &back));
    CHECK(htu_cts_differing(&back, &f->in[0], 1) == 0);
    /* Flip one byte of record 0 (written second, at offset = size of record 1). */
    uint64_t off = (uint64_t)f->in[0].size * (f->in[0].level + 1) * f->prm->n * 8 + 5;
    uint8_t byte;
    CHECK(pread(_hnn_spill_fd(sp), &byte, 1, (off_t)off) == 1);
    byte ^= 1;
    CHECK(pwrite(_hnn_spill_fd(sp), &byte, 1, (off_t)off) == 1);
    CHECK_ERR(_hnn_spill_get(sp, 0, &back), PPNN_ERR_IO);
    CHECK(strstr(ppnn_last_error(), "corrupted") != NULL);
    ckks_ct_free(&back);
    _hnn_spill_close(sp);
}

/* A pruned dense layer after the conv (CSR): default-size ROWS tiles would recompute the conv
 * outputs their rows share, so the default schedule runs COLS tiles over the conv's rows (each
 * output once, a per-tile CSR of the layer); rows_only keeps ROWS (one tile by default); a
 * tight budget still fits; every schedule gives the same ciphertexts. */
static void pruned_model(nn_model *m, size_t fc_out)
{
    nn_model_init(m, "pruned", (nn_shape){1, 16, 16});
    CHECK_OK(nn_model_add_conv2d(m, 2, 3, 1, 1)); /* 512 conv outputs: more than one tile */
    CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_flatten(m));
    CHECK_OK(nn_model_add_dense(m, fc_out));
    CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_dense(m, 3));
    CHECK_OK(nn_model_finish(m));
    m->nclasses = 3;
    htu_seed_params(m, 5);
    nn_layer *fc = &m->layers[3];
    uint32_t h = 12345;
    for (size_t t = 0; t < fc->nweight; t++) { /* keep ~20 % of the weights: CSR */
        h = h * 1103515245u + 12345u;
        if ((h >> 16) % 5)
            fc->weight[t] = 0;
    }
    for (size_t k = 0; k < m->nlayers; k++)
        m->layers[k].in_range = (nn_range){-4, 4, 4};
    m->out_range = (nn_range){-16, 16, 16};
}

/* 240 outputs of ~100 terms each: COLS accumulators for all 240 outweigh the ~100 conv outputs
 * one ROWS row reads, so the smallest budget is reached only by going back to ROWS tiles. */
static void sparse_cols_fallback(void)
{
    nn_model m;
    pruned_model(&m, 240);
    fixture f;
    fixture_init(&f, &m, 8, 6, 50, 16);
    hnn_schedule *s = NULL;
    CHECK_OK(hnn_schedule_new(&s, f.p, f.prm->n, NULL));
    CHECK_MSG(s && s->stages[0].sparse_cols, "default schedule is not COLS over the CSR layer");
    hnn_schedule_free(s);
    const uint64_t min_mem = hnn_schedule_min_bytes(f.p, f.prm->n, 0, 0);
    hnn_schedule_opts tight = {.budget_bytes = min_mem};
    s = NULL;
    CHECK_OK(hnn_schedule_new(&s, f.p, f.prm->n, &tight));
    CHECK_MSG(s && s->stages[0].tiling == HNN_TILE_ROWS && !s->stages[0].sparse_cols,
              "minimum budget: not back in ROWS tiles");
    hnn_schedule_free(s);
    hnn_schedule_opts unfused = {.no_fusion = 1};
    ckks_ciphertext *ref = run(&f, &unfused, NULL), *def = run(&f, NULL, NULL);
    ckks_ciphertext *lo = run(&f, &tight, NULL);
    CHECK_MSG(htu_cts_differing(def, ref, f.p->n_outputs) == 0, "240 outputs: default differs");
    CHECK_MSG(htu_cts_differing(lo, ref, f.p->n_outputs) == 0, "240 outputs: minimum differs");
    free_out(ref, f.p->n_outputs), free_out(def, f.p->n_outputs), free_out(lo, f.p->n_outputs);
    fixture_free(&f);
    nn_model_free(&m);
}

static void sparse_after_conv(void)
{
    nn_model m;
    pruned_model(&m, 8);
    fixture f;
    fixture_init(&f, &m, 10, 6, 50, 16);
    /* Default: COLS tiles over the sparse layer (each conv output once); rows_only: ROWS
     * tiles, which at 240 items recompute conv outputs, so they start from one tile. */
    hnn_schedule *s = NULL, *t = NULL, *u = NULL;
    hnn_schedule_opts rows240 = {.tile = HNN_SCHED_TILE, .rows_only = 1}, rows = {.rows_only = 1};
    CHECK_OK(hnn_schedule_new(&s, f.p, f.prm->n, NULL));
    CHECK_OK(hnn_schedule_new(&t, f.p, f.prm->n, &rows240));
    CHECK_OK(hnn_schedule_new(&u, f.p, f.prm->n, &rows));
    if (s && t && u) {
        const hnn_stage *g = &s->stages[0], *gt = &t->stages[0], *gu = &u->stages[0];
        const size_t conv_out = f.p->steps[g->a].n_out;
        CHECK_MSG(g->tiling == HNN_TILE_COLS && g->sparse_cols && !f.p->steps[g->b].dense,
                  "stage 0 is not a COLS stage over a sparse layer");
        CHECK_MSG(g->ntiles > 1 && g->recomputed == 0, "default: %zu tiles, %zu recomputed",
                  g->ntiles, g->recomputed);
        CHECK_MSG(gt->tiling == HNN_TILE_ROWS && gt->recomputed > conv_out / 16,
                  "240-item ROWS tiles recompute only %zu of %zu", gt->recomputed, conv_out);
        CHECK_MSG(gu->tiling == HNN_TILE_ROWS && gu->recomputed <= conv_out / 16,
                  "rows_only schedule recomputes %zu of %zu", gu->recomputed, conv_out);
        /* COLS holds the 8 accumulators, not every conv output a B row reads. */
        CHECK_MSG(s->peak_bytes < u->peak_bytes, "COLS peak %llu >= one ROWS tile's %llu",
                  (unsigned long long)s->peak_bytes, (unsigned long long)u->peak_bytes);
    }
    hnn_schedule_free(s), hnn_schedule_free(t), hnn_schedule_free(u);
    hnn_schedule_opts unfused = {.no_fusion = 1}, one = {.tile = 1}, c240 = {.tile = HNN_SCHED_TILE};
    ckks_ciphertext *ref = run(&f, &unfused, NULL), *def = run(&f, NULL, NULL);
    ckks_ciphertext *o1 = run(&f, &one, NULL), *o240 = run(&f, &c240, NULL);
    ckks_ciphertext *r240 = run(&f, &rows240, NULL), *r1 = run(&f, &rows, NULL);
    CHECK_MSG(check_logits(&f, ref) < 0x1p-12, "pruned: encrypted logits off");
    CHECK_MSG(htu_cts_differing(def, ref, f.p->n_outputs) == 0, "pruned: default differs");
    CHECK_MSG(htu_cts_differing(o1, ref, f.p->n_outputs) == 0, "pruned: 1-item COLS differ");
    CHECK_MSG(htu_cts_differing(o240, ref, f.p->n_outputs) == 0, "pruned: 240 COLS differ");
    CHECK_MSG(htu_cts_differing(r240, ref, f.p->n_outputs) == 0, "pruned: 240 ROWS differ");
    CHECK_MSG(htu_cts_differing(r1, ref, f.p->n_outputs) == 0, "pruned: one ROWS tile differs");
    uint64_t min_mem = hnn_schedule_min_bytes(f.p, f.prm->n, 0, 0);
    hnn_schedule_opts tight = {.budget_bytes = min_mem};
    ckks_ciphertext *lo = run(&f, &tight, NULL);
    CHECK_MSG(htu_cts_differing(lo, ref, f.p->n_outputs) == 0, "pruned: minimum budget differs");
    /* Outputs spilled to scratch and read back; pool buffers poisoned, held within the
     * schedule's count (the per-tile CSR stage's accounting), on 2 threads. */
    hnn_schedule_opts fsp = {.allow_spill = 1, .force_spill = 1};
    ckks_ciphertext *sp = run(&f, &fsp, NULL);
    CHECK_MSG(htu_cts_differing(sp, ref, f.p->n_outputs) == 0, "pruned: spilled differs");
    free_out(sp, f.p->n_outputs);
    pooled(&f, 0, ref, "pruned", 1);
    pooled(&f, min_mem, ref, "pruned at the minimum", 1);
    free_out(ref, f.p->n_outputs), free_out(def, f.p->n_outputs);
    free_out(o1, f.p->n_outputs), free_out(o240, f.p->n_outputs);
    free_out(r240, f.p->n_outputs), free_out(r1, f.p->n_outputs);
    free_out(lo, f.p->n_outputs);
    fixture_free(&f);
    nn_model_free(&m);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    /* CryptoNets shape: conv -> act -> dense -> act -> dense (COLS fusion twice). */
    nn_model m;
    nn_model_init(&m, "tiny", (nn_shape){1, 8, 8});
    CHECK_OK(nn_model_add_conv2d(&m, 3, 3, 2, 1));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_flatten(&m));
    CHECK_OK(nn_model_add_dense(&m, 8));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_CHANNEL));
    CHECK_OK(nn_model_add_dense(&m, 3));
    CHECK_OK(nn_model_finish(&m));
    m.nclasses = 3;
    htu_seed_params(&m, 42);
    fixture f;
    fixture_init(&f, &m, 10, 6, 50, 300);
    equivalence(&f, "cryptonets-shape", 1);
    scratch_errors(&f);
    scale_check(&f);
    spill_file(&f);
    fixture_free(&f);
    nn_model_free(&m);
    sparse_after_conv();
    sparse_cols_fallback();

    /* The deep architecture (arch.c "deep": conv 5x5 -> act -> avgpool 2 -> conv 5x5 -> act ->
     * avgpool 2 -> dense 100 -> act -> dense) on 16x16 inputs (20x20 under the sanitizers'
     * reduced runs would only be slower): 9 levels, ROWS fusion of conv -> act -> pool. */
    nn_model d;
    CHECK_OK(nn_arch_build(&d, "deep", NN_ACT_ELEMENT, (nn_shape){1, 16, 16}, 4));
    d.nclasses = 4;
    htu_seed_params(&d, 7);
    for (size_t k = 0; k < d.nlayers; k++)
        d.layers[k].in_range = (nn_range){-4, 4, 4};
    d.out_range = (nn_range){-16, 16, 16};
    fixture g;
    fixture_init(&g, &d, 10, 10, 50, 64);
    equivalence(&g, "deep", 0);
    /* Far below the unfused peak: a quarter of it, and the result still exact. */
    hnn_schedule_opts unf = {.no_fusion = 1};
    hnn_schedule *s = NULL;
    CHECK_OK(hnn_schedule_new(&s, g.p, g.prm->n, &unf));
    uint64_t unfused = s ? s->peak_bytes : 0;
    hnn_schedule_free(s);
    CHECK(hnn_schedule_min_bytes(g.p, g.prm->n, 0, 0) < unfused / 4);
    fixture_free(&g);
    nn_model_free(&d);
    return tu_finish("test_schedule");
}
