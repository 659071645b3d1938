/* `ppnn bench infer`: the whole client/server flow of issue 5 on one batch, timed per step,
 * and the linear-kernel throughput figure. */
#include "bench_infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ppnn/ckks_io.h"
#include "ppnn/data.h"

typedef struct {
    data_set ds;
    nn_model m;
    ckks_params *prm;
    hnn_plan *plan;
    ckks_secret_key sk;
    ckks_relin_key rk;
    float *x, *ref;
    double *dec;
    ckks_ciphertext *in, *out;
    char dir[64], in_path[128], out_path[128];
} bench_state;

static void free_cts(ckks_ciphertext *c, size_t n)
{
    for (size_t k = 0; c && k < n; k++)
        ckks_ct_free(&c[k]);
    free(c);
}

static void state_free(bench_state *s)
{
    free_cts(s->in, s->plan ? s->plan->n_inputs : 0);
    free_cts(s->out, s->plan ? s->plan->n_outputs : 0);
    free(s->x), free(s->ref), free(s->dec);
    ckks_relin_key_free(&s->rk);
    ckks_secret_key_free(&s->sk);
    hnn_plan_free(s->plan);
    ckks_params_free(s->prm);
    nn_model_free(&s->m);
    data_set_free(&s->ds);
    if (s->in_path[0])
        unlink(s->in_path);
    if (s->out_path[0])
        unlink(s->out_path);
    if (s->dir[0])
        rmdir(s->dir);
}

ppnn_status bench_model_plan(data_set *ds, nn_model *m, ckks_params **prm, hnn_plan **plan,
                             const bench_infer_opts *o)
{
    ckks_spec spec;
    const size_t batch = o->batch;
    ppnn_status st = data_load(ds, o->data ? o->data : "mnist", DATA_SPLIT_TEST, 0, batch);
    if (!st && ds->count < batch)
        st = ppnn_fail(PPNN_ERR_PARAM, "bench infer: only %zu test images", ds->count);
    if (!st && o->model)
        st = nn_model_load(m, o->model);
    if (!st && !o->model) {
        st = nn_arch_build(m, o->arch, NN_ACT_ELEMENT, nn_shape_of_set(ds), 10);
        if (!st)
            st = nn_model_init_params(m, ds, 1);
        if (!st)
            st = nn_record_ranges(m, ds, batch);
    }
    if (!st)
        st = ckks_preset(&spec, o->preset);
    if (!st)
        st = ckks_params_new(prm, &spec);
    if (!st) /* the plan `ppnn infer` runs for these parameters */
        st = hnn_plan_for_params(plan, m, *prm, o->preset);
    return st;
}

static ppnn_status setup(bench_state *s, const bench_infer_opts *o)
{
    const size_t batch = o->batch;
    ppnn_status st = bench_model_plan(&s->ds, &s->m, &s->prm, &s->plan, o);
    if (!st)
        st = ckks_keygen_secret(&s->sk, s->prm);
    if (!st)
        st = ckks_keygen_relin(&s->rk, &s->sk);
    if (st)
        return st;
    size_t nin = s->plan->n_inputs, nout = s->plan->n_outputs;
    s->x = malloc(batch * nin * sizeof *s->x);
    s->ref = malloc(batch * nout * sizeof *s->ref);
    s->dec = malloc(batch * nout * sizeof *s->dec);
    s->in = calloc(nin, sizeof *s->in);
    if (!s->x || !s->ref || !s->dec || !s->in)
        return ppnn_fail(PPNN_ERR_NOMEM, "bench infer: out of memory");
    nn_model_normalize(&s->m, s->x, s->ds.pixels, batch);
    ppnn_status st2 = nn_predict(&s->m, s->ref, s->x, batch);
    hnn_plan_inputs(s->x, &s->m, s->ds.pixels, batch); /* what the client encrypts */
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/ppnn-bench-XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        s->dir[0] = 0;
        return ppnn_fail(PPNN_ERR_IO, "bench infer: cannot create a temporary directory");
    }
    snprintf(s->in_path, sizeof s->in_path, "%s/batch.ct", s->dir);
    snprintf(s->out_path, sizeof s->out_path, "%s/result.ct", s->dir);
    return st2;
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

double bench_minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_minflt : 0;
}

/* Peak RSS since the last reset (VmHWM of /proc/self/status, bytes), 0 when unknown. */
static size_t vm_hwm(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (size_t)kb * 1024;
}

/* Resets VmHWM to the current RSS (Linux clear_refs "5"), so the server phase is measured
 * alone. Returns 0 when the kernel does not allow it. */
static int reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return 0;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0) && ok;
}

static void on_progress(void *ctx, const hnn_progress *pr)
{
    bench_infer_result *r = ctx;
    if (!pr->step || pr->step_index >= BENCH_INFER_MAX_LAYERS)
        return;
    size_t k = pr->step_index;
    r->layers[k].name = pr->step->name;
    r->layers[k].layer = pr->step->layer;
    r->layers[k].seconds = pr->step_seconds;
    r->nlayers = k + 1 > r->nlayers ? k + 1 : r->nlayers;
}

ppnn_status bench_infer(bench_infer_result *r, const bench_infer_opts *o)
{
    memset(r, 0, sizeof *r);
    snprintf(r->preset, sizeof r->preset, "%s", o->preset);
    snprintf(r->arch, sizeof r->arch, "%s", o->model ? o->model : o->arch);
    r->batch = o->batch;
    r->threads = o->threads;
    r->memory_budget_bytes = o->memory_bytes;
    bench_state s;
    memset(&s, 0, sizeof s);
    const size_t batch = o->batch;
    ppnn_status st = setup(&s, o);
    if (!st && batch > s.prm->slots)
        st = ppnn_fail(PPNN_ERR_PARAM, "bench infer: batch %zu > %zu slots", batch, s.prm->slots);
    double t0 = ppnn_now();
    if (!st)
        st = hnn_encrypt_batch(s.in, &s.sk, s.x, batch, s.plan->n_inputs, o->threads);
    r->client_encrypt_seconds = ppnn_now() - t0;
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &s.sk);
    info.packing = CKKS_PACKING_ELEMENT;
    info.images = batch;
    info.shape[0] = s.m.input.c, info.shape[1] = s.m.input.h, info.shape[2] = s.m.input.w;
    info.role = CKKS_BATCH_INPUT;
    free_cts(s.in, s.plan ? s.plan->n_inputs : 0);
    s.in = NULL;
    /* The client's whole job, as `ppnn encrypt` does it: encrypted and written ciphertext by
     * ciphertext (this file is the one the server reads). */
    ckks_batch_set_writer *w = NULL;
    uint64_t images = batch;
    t0 = ppnn_now();
    double cc0 = bench_cpu_seconds();
    if (!st)
        st = ckks_batch_set_create(&w, s.in_path, s.prm, &info, 1, &images);
    if (!st)
        st = hnn_encrypt_batch_write(w, &s.sk, s.x, batch, s.plan->n_inputs, o->threads, NULL,
                                     NULL);
    if (!st)
        st = ckks_batch_set_finish(w);
    else
        ckks_batch_set_abort(w);
    r->client_write_seconds = ppnn_now() - t0;
    r->client_write_cpu_seconds = bench_cpu_seconds() - cc0;
    hnn_file_stats fs;
    hnn_file_opts fo = {.threads = o->threads, .memory_bytes = o->memory_bytes,
                        .scratch_dir = o->scratch_dir ? o->scratch_dir : s.dir,
                        .allow_spill = 1, .progress = on_progress, .progress_ctx = r};
    int hwm = reset_hwm();
    double c0 = bench_cpu_seconds(), f0 = bench_minor_faults();
    if (!st)
        st = o->server ? o->server(o->server_ctx, &fs, s.out_path, s.in_path, &s.m, s.plan,
                                   info.shape, &s.rk, info.key_id, &fo)
                       : hnn_infer_file(&fs, s.out_path, s.in_path, s.plan, info.shape, &s.rk,
                                        info.key_id, &fo);
    r->server_cpu_seconds = bench_cpu_seconds() - c0;
    r->server_minor_faults = bench_minor_faults() - f0;
    if (!st) {
        r->server_seconds = fs.server_seconds;
        r->schedule_peak_bytes = fs.schedule_peak_bytes;
        r->spill_bytes = fs.spill_bytes;
        r->pool_peak_bytes = fs.pool_peak_bytes;
        r->input_seconds = fs.input_seconds;
        r->memory_budget_bytes = fs.budget_bytes;
    }
    if (hwm)
        r->peak_rss_bytes = vm_hwm();
    for (size_t k = 0; !st && k < r->nlayers && k < s.plan->nsteps; k++)
        r->layers[k].macs = hnn_step_macs(s.plan, k, s.prm->n);
    size_t count = 0;
    ckks_batch_info oinfo;
    ckks_params *pp = s.prm;
    if (!st)
        st = ckks_batch_load(&s.out, &count, &oinfo, &pp, s.out_path);
    if (!st)
        st = hnn_decrypt_batch(s.dec, &s.sk, s.out, s.plan->n_outputs, batch, 0);
    if (!st) {
        const size_t nc = s.plan->n_outputs;
        r->amortized_ms = r->server_seconds * 1e3 / (double)batch;
        r->upload_bytes_per_image = (double)s.plan->n_inputs *
                                    (double)hnn_seeded_ct_bytes(s.prm, s.prm->nq - 1) /
                                    (double)batch;
        r->est_logit_error = s.plan->est_error;
        r->bound_logit_error = s.plan->bound_error;
        for (size_t b = 0; b < batch; b++) {
            size_t pa = 0, pe = 0;
            for (size_t c = 0; c < nc; c++) {
                pa = s.ref[b * nc + c] > s.ref[b * nc + pa] ? c : pa;
                pe = s.dec[b * nc + c] > s.dec[b * nc + pe] ? c : pe;
                r->max_logit_error =
                    fmax(r->max_logit_error, fabs(s.dec[b * nc + c] - s.ref[b * nc + c]));
            }
            r->agree += pa == pe;
        }
    }
    state_free(&s);
    return st;
}

double bench_step_gmacs(const bench_infer_result *r, size_t k)
{
    const double sec = r->layers[k].seconds;
    return r->layers[k].macs > 0 && sec > 0 ? r->layers[k].macs / sec / 1e9 : 0;
}

void bench_infer_json(FILE *f, const bench_infer_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "preset", r->preset);
    cJSON_AddStringToObject(o, "arch", r->arch);
    cJSON_AddNumberToObject(o, "batch", (double)r->batch);
    cJSON_AddNumberToObject(o, "threads", r->threads);
    cJSON_AddNumberToObject(o, "server_seconds", r->server_seconds);
    cJSON_AddNumberToObject(o, "server_cpu_seconds", r->server_cpu_seconds);
    cJSON_AddNumberToObject(o, "amortized_ms", r->amortized_ms);
    cJSON_AddNumberToObject(o, "client_encrypt_seconds", r->client_encrypt_seconds);
    cJSON_AddNumberToObject(o, "client_write_seconds", r->client_write_seconds);
    cJSON_AddNumberToObject(o, "client_write_cpu_seconds", r->client_write_cpu_seconds);
    cJSON_AddNumberToObject(o, "upload_bytes_per_image", r->upload_bytes_per_image);
    cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)r->peak_rss_bytes);
    cJSON_AddNumberToObject(o, "memory_budget_bytes", (double)r->memory_budget_bytes);
    cJSON_AddNumberToObject(o, "schedule_peak_bytes", (double)r->schedule_peak_bytes);
    cJSON_AddNumberToObject(o, "spill_bytes", (double)r->spill_bytes);
    cJSON_AddNumberToObject(o, "pool_peak_bytes", (double)r->pool_peak_bytes);
    cJSON_AddNumberToObject(o, "input_seconds", r->input_seconds);
    cJSON_AddNumberToObject(o, "server_minor_faults", r->server_minor_faults);
    cJSON_AddNumberToObject(o, "agree", (double)r->agree);
    cJSON_AddNumberToObject(o, "max_logit_error", r->max_logit_error);
    cJSON_AddNumberToObject(o, "est_logit_error", r->est_logit_error);
    cJSON_AddNumberToObject(o, "bound_logit_error", r->bound_logit_error);
    cJSON *steps = cJSON_AddArrayToObject(o, "steps");
    for (size_t k = 0; k < r->nlayers; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "step", (double)k);
        cJSON_AddNumberToObject(e, "layer", (double)r->layers[k].layer);
        cJSON_AddStringToObject(e, "name", r->layers[k].name ? r->layers[k].name : "");
        cJSON_AddNumberToObject(e, "seconds", r->layers[k].seconds);
        cJSON_AddNumberToObject(e, "macs", r->layers[k].macs);
        cJSON_AddNumberToObject(e, "gmac_per_s", bench_step_gmacs(r, k));
        cJSON_AddItemToArray(steps, e);
    }
    char *txt = cJSON_PrintUnformatted(o);
    if (txt)
        fprintf(f, "%s\n", txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

void bench_infer_print(FILE *f, const bench_infer_result *r)
{
    fprintf(f, "%s on %s, batch %zu, threads %d%s\n", r->arch, r->preset, r->batch, r->threads,
            r->threads ? "" : " (all cores)");
    for (size_t k = 0; k < r->nlayers; k++) {
        fprintf(f, "  step %zu  %-8s (layer %zu)  %8.3f s", k, r->layers[k].name,
                r->layers[k].layer, r->layers[k].seconds);
        if (r->layers[k].macs > 0)
            fprintf(f, "  %.3g MAC, %.1f G MAC/s", r->layers[k].macs, bench_step_gmacs(r, k));
        fputc('\n', f);
    }
    fprintf(f, "server          %8.3f s per batch, %.3f ms per image (amortized)\n",
            r->server_seconds, r->amortized_ms);
    fprintf(f, "server CPU      %8.3f s (all threads; comparable under load)\n",
            r->server_cpu_seconds);
    fprintf(f, "client encrypt  %8.3f s per batch (in memory); %.3f s encrypting and writing "
            "the file (%.3f s CPU)\n", r->client_encrypt_seconds, r->client_write_seconds,
            r->client_write_cpu_seconds);
    fprintf(f, "upload          %8.0f bytes per image\n", r->upload_bytes_per_image);
    fprintf(f, "server peak RSS %8.1f MB (schedule peak %.1f MB, budget %.1f MB, spilled %.1f MB)\n",
            (double)r->peak_rss_bytes / 1048576.0, (double)r->schedule_peak_bytes / 1048576.0,
            (double)r->memory_budget_bytes / 1048576.0, (double)r->spill_bytes / 1048576.0);
    fprintf(f, "agreement       %zu / %zu, measured max |logit error| %.3g (planner: "
            "high-probability estimate %.3g, worst-case bound %.3g)\n", r->agree, r->batch,
            r->max_logit_error, r->est_logit_error, r->bound_logit_error);
}

double bench_linear_gmacs(size_t n_out, size_t n_in, size_t n, size_t k, int threads,
                          hnn_kernel kernel, uint64_t q)
{
    const size_t nw = k ? n_out * k : n_out * n_in;
    uint64_t *xb = malloc(n_in * n * sizeof *xb), *yb = malloc(n_out * n * sizeof *yb);
    uint64_t *w = malloc(nw * sizeof *w);
    const uint64_t **x = malloc(n_in * sizeof *x);
    uint64_t **y = malloc(n_out * sizeof *y);
    uint32_t *rs = malloc((n_out + 1) * sizeof *rs), *col = malloc((k ? nw : 1) * sizeof *col);
    double gmacs = -1;
    if (xb && yb && w && x && y && rs && col) {
        /* Any values in [0, q) exercise the same instructions; a multiplicative hash is
         * enough (this is a timing, not a test). */
        for (size_t i = 0; i < n_in * n; i++)
            xb[i] = (i * 0x9E3779B97F4A7C15ull) % q;
        for (size_t i = 0; i < nw; i++)
            w[i] = (i * 0xD1B54A32D192ED03ull + 7) % q;
        for (size_t i = 0; i < n_in; i++)
            x[i] = xb + i * n;
        for (size_t o = 0; o < n_out; o++)
            y[o] = yb + o * n;
        for (size_t o = 0; o <= n_out; o++)
            rs[o] = (uint32_t)(o * k);
        for (size_t o = 0; k && o < n_out; o++)
            for (size_t t = 0; t < k; t++) /* 5 consecutive rows share their inputs */
                col[o * k + t] = (uint32_t)(((o / 5) * 3 + t * 7) % n_in);
        hnn_modulus m;
        hnn_modulus_init(&m, q);
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = ppnn_now();
            if (k)
                _hnn_linear_sparse(y, rs, col, w, NULL, n_out, x, n, &m, threads, kernel);
            else
                _hnn_linear_dense(y, w, NULL, n_out, n_in, x, n, &m, threads, kernel);
            best = fmin(best, ppnn_now() - t0);
        }
        gmacs = (double)nw * (double)n / best / 1e9;
    }
    free(xb), free(yb), free(w), free(x), free(y), free(rs), free(col);
    return gmacs;
}
