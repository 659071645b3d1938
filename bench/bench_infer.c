/* `ppnn bench infer`: the whole client/server flow of issue 5 on one batch, timed per step,
 * and the linear-kernel throughput figure. */
#include "bench_infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ppnn/data.h"

static void on_step(void *ctx, size_t k, const hnn_step *s, double seconds)
{
    bench_infer_result *r = ctx;
    if (k >= BENCH_INFER_MAX_LAYERS)
        return;
    r->layers[k].name = s->name;
    r->layers[k].layer = s->layer;
    r->layers[k].seconds = seconds;
    /* Multiply-adds per coefficient: every weight, every RNS prime of the input level, every
     * component (3 after a square: a LINEAR step that drops two primes follows an ACT);
     * bench_infer multiplies by N. */
    const double nw = s->dense ? (double)s->n_out * (double)s->n_in : (double)s->nnz;
    r->layers[k].macs = s->kind == HNN_STEP_LINEAR
                            ? nw * (double)(s->level_in + 1) * (s->drop == 2 ? 3 : 2) : 0;
    r->nlayers = k + 1;
}

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
} bench_state;

static void state_free(bench_state *s)
{
    for (size_t k = 0; s->in && k < s->plan->n_inputs; k++)
        ckks_ct_free(&s->in[k]);
    for (size_t c = 0; s->out && c < s->plan->n_outputs; c++)
        ckks_ct_free(&s->out[c]);
    free(s->in), free(s->out), free(s->x), free(s->ref), free(s->dec);
    ckks_relin_key_free(&s->rk);
    ckks_secret_key_free(&s->sk);
    hnn_plan_free(s->plan);
    ckks_params_free(s->prm);
    nn_model_free(&s->m);
    data_set_free(&s->ds);
}

static ppnn_status setup(bench_state *s, const char *preset, const char *arch, size_t batch)
{
    ckks_spec spec;
    hnn_budget b;
    ppnn_status st = data_load(&s->ds, "mnist", DATA_SPLIT_TEST, 0, batch);
    if (!st && s->ds.count < batch)
        st = ppnn_fail(PPNN_ERR_PARAM, "bench infer: only %zu test images", s->ds.count);
    if (!st)
        st = nn_arch_build(&s->m, arch, NN_ACT_ELEMENT,
                           (nn_shape){1, (uint32_t)s->ds.rows, (uint32_t)s->ds.cols}, 10);
    if (!st)
        st = nn_model_init_params(&s->m, &s->ds, 1);
    if (!st)
        st = nn_record_ranges(&s->m, &s->ds, batch);
    if (!st)
        st = ckks_preset(&spec, preset);
    if (!st)
        st = ckks_params_new(&s->prm, &spec);
    if (!st) {
        hnn_budget_from_params(&b, s->prm, preset);
        st = hnn_plan_new(&s->plan, &s->m, &b, NULL, 0);
    }
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
    s->out = calloc(nout, sizeof *s->out);
    if (!s->x || !s->ref || !s->dec || !s->in || !s->out)
        return ppnn_fail(PPNN_ERR_NOMEM, "bench infer: out of memory");
    nn_model_normalize(&s->m, s->x, s->ds.pixels, batch);
    ppnn_status st2 = nn_predict(&s->m, s->ref, s->x, batch);
    hnn_plan_inputs(s->x, &s->m, s->ds.pixels, batch); /* what the client encrypts */
    return st2;
}

ppnn_status bench_infer(bench_infer_result *r, const char *preset, const char *arch, size_t batch,
                        int threads)
{
    memset(r, 0, sizeof *r);
    snprintf(r->preset, sizeof r->preset, "%s", preset);
    snprintf(r->arch, sizeof r->arch, "%s", arch);
    r->batch = batch;
    r->threads = threads;
    bench_state s;
    memset(&s, 0, sizeof s);
    ppnn_status st = setup(&s, preset, arch, batch);
    if (!st && batch > s.prm->slots)
        st = ppnn_fail(PPNN_ERR_PARAM, "bench infer: batch %zu > %zu slots", batch, s.prm->slots);
    double t0 = ppnn_now();
    if (!st)
        st = hnn_encrypt_batch(s.in, &s.sk, s.x, batch, s.plan->n_inputs, threads);
    r->client_encrypt_seconds = ppnn_now() - t0;
    hnn_exec_opts o = {threads, HNN_KERNEL_AUTO, on_step, r};
    t0 = ppnn_now();
    if (!st)
        st = hnn_infer(s.out, s.plan, s.in, &s.rk, &o);
    r->server_seconds = ppnn_now() - t0;
    for (size_t k = 0; !st && k < r->nlayers; k++)
        r->layers[k].macs *= (double)s.prm->n;
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
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        r->peak_rss_bytes = (size_t)ru.ru_maxrss * 1024; /* Linux: kilobytes */
    state_free(&s);
    return st;
}

void bench_infer_json(FILE *f, const bench_infer_result *r)
{
    fprintf(f,
            "{\"preset\": \"%s\", \"arch\": \"%s\", \"batch\": %zu, \"threads\": %d, "
            "\"server_seconds\": %.4f, \"amortized_ms\": %.4f, \"client_encrypt_seconds\": %.4f, "
            "\"upload_bytes_per_image\": %.0f, \"peak_rss_bytes\": %zu, \"agree\": %zu, "
            "\"max_logit_error\": %.3g, \"est_logit_error\": %.3g, \"bound_logit_error\": %.3g, "
            "\"layers\": [",
            r->preset, r->arch, r->batch, r->threads, r->server_seconds, r->amortized_ms,
            r->client_encrypt_seconds, r->upload_bytes_per_image, r->peak_rss_bytes, r->agree,
            r->max_logit_error, r->est_logit_error, r->bound_logit_error);
    for (size_t k = 0; k < r->nlayers; k++) {
        fprintf(f, "%s{\"step\": %zu, \"layer\": %zu, \"name\": \"%s\", \"seconds\": %.4f",
                k ? ", " : "", k, r->layers[k].layer, r->layers[k].name, r->layers[k].seconds);
        if (r->layers[k].macs > 0 && r->layers[k].seconds > 0)
            fprintf(f, ", \"gmacs\": %.2f", r->layers[k].macs / r->layers[k].seconds / 1e9);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
}

void bench_infer_print(FILE *f, const bench_infer_result *r)
{
    fprintf(f, "%s on %s, batch %zu, threads %d%s\n", r->arch, r->preset, r->batch, r->threads,
            r->threads ? "" : " (all cores)");
    for (size_t k = 0; k < r->nlayers; k++)
        fprintf(f, "  step %zu  %-8s (layer %zu)  %8.3f s\n", k, r->layers[k].name,
                r->layers[k].layer, r->layers[k].seconds);
    fprintf(f, "server          %8.3f s per batch, %.3f ms per image (amortized)\n",
            r->server_seconds, r->amortized_ms);
    fprintf(f, "client encrypt  %8.3f s per batch\n", r->client_encrypt_seconds);
    fprintf(f, "upload          %8.0f bytes per image\n", r->upload_bytes_per_image);
    fprintf(f, "peak RSS        %8.1f MB\n", (double)r->peak_rss_bytes / 1048576.0);
    fprintf(f, "agreement       %zu / %zu, measured max |logit error| %.3g (planner: "
            "high-probability estimate %.3g, worst-case bound %.3g)\n", r->agree, r->batch,
            r->max_logit_error, r->est_logit_error, r->bound_logit_error);
}

double bench_linear_gmacs(size_t n_out, size_t n_in, size_t n, size_t k, int threads,
                          hnn_kernel kernel)
{
    const uint64_t q = (1ull << 50) - 27; /* largest prime below 2^50 */
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
