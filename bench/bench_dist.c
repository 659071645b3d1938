/* `mpirun -n R ppnn bench infer`: the encrypted-inference benchmark spread over R ranks
 * (dist.h). Rank 0 builds the model, keys and encrypted batch exactly as bench_infer does; the
 * model and the relinearization key reach the other ranks by broadcast. Reports, per rank,
 * compute and communication seconds, bytes sent and received per step, and peak RSS; rank 0
 * checks the decrypted result against the plaintext model. */
#include "bench_dist.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <unistd.h>

#include "ppnn/ckks_io.h"
#include "ppnn/dist.h"

static uint64_t peak_rss(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
}

/* "conv2d+act+avgpool": the plan steps of stage g. */
static void stage_name(char *buf, size_t len, const hnn_plan *p, const dist_part_stage *g)
{
    size_t k0 = g->a != HNN_NO_STEP ? g->a : g->act != HNN_NO_STEP ? g->act : g->b, off = 0;
    buf[0] = 0;
    for (size_t k = k0; k <= g->b && off < len; k++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", k > k0 ? "+" : "",
                                p->steps[k].name);
}

/* Per-rank figures gathered on rank 0 (arrays of R, or R x nsteps, on rank 0 only). */
typedef struct gathered {
    double *compute, *comm, *cpu, *faults, *step_compute, *step_comm;
    uint64_t *rss, *estimate, *sent, *recv;
    dist_read read; /* the same on every rank */
} gathered;

static void gathered_free(gathered *g)
{
    free(g->compute), free(g->comm), free(g->cpu), free(g->faults), free(g->step_compute);
    free(g->step_comm);
    free(g->rss), free(g->estimate), free(g->sent), free(g->recv);
}

static ppnn_status gather_all(gathered *g, dist_ctx *dc, const dist_stats *ss, size_t nsteps,
                              double cpu, double faults)
{
    const size_t R = dist_size(dc), root = dist_rank(dc) == 0;
    memset(g, 0, sizeof *g);
    g->read = ss->read;
    if (root) {
        g->compute = calloc(R, sizeof(double)), g->comm = calloc(R, sizeof(double));
        g->cpu = calloc(R, sizeof(double)), g->faults = calloc(R, sizeof(double));
        g->step_compute = calloc(R * nsteps + 1, sizeof(double));
        g->step_comm = calloc(R * nsteps + 1, sizeof(double));
        g->rss = calloc(R, sizeof(uint64_t)), g->estimate = calloc(R, sizeof(uint64_t));
        g->sent = calloc(R * nsteps + 1, sizeof(uint64_t));
        g->recv = calloc(R * nsteps + 1, sizeof(uint64_t));
    }
    int bad = root && (!g->compute || !g->comm || !g->cpu || !g->faults || !g->step_compute ||
                       !g->step_comm ||
                       !g->rss || !g->estimate || !g->sent || !g->recv);
    ppnn_status st = dist_agree(dc, bad ? ppnn_fail(PPNN_ERR_NOMEM, "out of memory") : PPNN_OK);
    if (st)
        return st;
    dist_gather_double(dc, g->compute, ss->compute_total);
    dist_gather_double(dc, g->comm, ss->comm_total);
    dist_gather_double(dc, g->cpu, cpu);
    dist_gather_double(dc, g->faults, faults);
    dist_gather_u64(dc, g->rss, peak_rss());
    dist_gather_u64(dc, g->estimate, ss->peak_estimate);
    double *d = root ? calloc(R, sizeof *d) : NULL;
    uint64_t *u = root ? calloc(R, sizeof *u) : NULL;
    for (size_t k = 0; k < nsteps; k++) {
        /* One gather per figure and step: R x nsteps values, stored rank-major. */
        dist_gather_double(dc, d, ss->compute_seconds[k]);
        for (size_t t = 0; d && t < R; t++)
            g->step_compute[t * nsteps + k] = d[t];
        dist_gather_double(dc, d, ss->comm_seconds[k]);
        for (size_t t = 0; d && t < R; t++)
            g->step_comm[t * nsteps + k] = d[t];
        dist_gather_u64(dc, u, ss->bytes_sent[k]);
        for (size_t t = 0; u && t < R; t++)
            g->sent[t * nsteps + k] = u[t];
        dist_gather_u64(dc, u, ss->bytes_recv[k]);
        for (size_t t = 0; u && t < R; t++)
            g->recv[t * nsteps + k] = u[t];
    }
    free(d), free(u);
    return PPNN_OK;
}

static void print_json(FILE *f, const bench_infer_result *r, const bench_dist_opts *o,
                       dist_mode mode, size_t R, const gathered *g, const hnn_plan *p,
                       const dist_partition *part)
{
    const size_t nsteps = part ? part->nstages : p->nsteps;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "preset", r->preset);
    cJSON_AddStringToObject(j, "arch", r->arch);
    cJSON_AddNumberToObject(j, "batch", (double)r->batch);
    cJSON_AddNumberToObject(j, "batches", (double)o->batches);
    cJSON_AddNumberToObject(j, "ranks", (double)R);
    cJSON_AddNumberToObject(j, "threads_per_rank", r->threads);
    cJSON_AddStringToObject(j, "mode", mode == DIST_DATA ? "data" : "model");
    cJSON_AddStringToObject(j, "read", dist_read_name(g->read));
    cJSON_AddNumberToObject(j, "server_seconds", r->server_seconds);
    cJSON_AddNumberToObject(j, "amortized_ms", r->amortized_ms);
    cJSON_AddNumberToObject(j, "images_per_second",
                            (double)(r->batch * o->batches) / r->server_seconds);
    cJSON_AddNumberToObject(j, "client_encrypt_seconds", r->client_encrypt_seconds);
    uint64_t mx = 0;
    for (size_t t = 0; t < R; t++)
        mx = g->rss[t] > mx ? g->rss[t] : mx;
    cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)mx);
    cJSON_AddNumberToObject(j, "agree", (double)r->agree);
    cJSON_AddNumberToObject(j, "max_logit_error", r->max_logit_error);
    cJSON_AddNumberToObject(j, "est_logit_error", r->est_logit_error);
    cJSON *steps = cJSON_AddArrayToObject(j, "steps");
    for (size_t k = 0; k < p->nsteps; k++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "step", (double)k);
        cJSON_AddNumberToObject(s, "layer", (double)p->steps[k].layer);
        cJSON_AddStringToObject(s, "name", p->steps[k].name);
        cJSON_AddNumberToObject(s, "n_out", (double)p->steps[k].n_out);
        cJSON_AddNumberToObject(s, "level_in", (double)p->steps[k].level_in);
        cJSON_AddItemToArray(steps, s);
    }
    /* Model-parallel: the figures are per stage (the unit the ranks split and exchange at). */
    char name[96];
    if (part) {
        cJSON *stages = cJSON_AddArrayToObject(j, "stages");
        for (size_t k = 0; k < part->nstages; k++) {
            cJSON *s = cJSON_CreateObject();
            stage_name(name, sizeof name, p, &part->stages[k]);
            cJSON_AddNumberToObject(s, "stage", (double)k);
            cJSON_AddStringToObject(s, "steps", name);
            cJSON_AddStringToObject(s, "split",
                                    part->stages[k].tiling == HNN_TILE_ROWS ? "rows" : "cols");
            cJSON_AddNumberToObject(s, "ciphertexts_moved", (double)dist_partition_moves(part, k));
            cJSON_AddItemToArray(stages, s);
        }
    }
    cJSON *ranks = cJSON_AddArrayToObject(j, "per_rank");
    for (size_t t = 0; t < R; t++) {
        cJSON *rk = cJSON_CreateObject();
        cJSON_AddNumberToObject(rk, "rank", (double)t);
        cJSON_AddNumberToObject(rk, "compute_seconds", g->compute[t]);
        cJSON_AddNumberToObject(rk, "comm_seconds", g->comm[t]);
        cJSON_AddNumberToObject(rk, "cpu_seconds", g->cpu[t]);
        cJSON_AddNumberToObject(rk, "minor_faults", g->faults[t]);
        cJSON_AddNumberToObject(rk, "peak_rss_bytes", (double)g->rss[t]);
        if (mode == DIST_MODEL)
            cJSON_AddNumberToObject(rk, "peak_estimate_bytes", (double)g->estimate[t]);
        cJSON *ls = cJSON_AddArrayToObject(rk, part ? "stages" : "steps");
        for (size_t k = 0; k < nsteps; k++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, part ? "stage" : "step", (double)k);
            if (part)
                stage_name(name, sizeof name, p, &part->stages[k]);
            cJSON_AddStringToObject(s, "name", part ? name : p->steps[k].name);
            cJSON_AddNumberToObject(s, "compute_seconds", g->step_compute[t * nsteps + k]);
            if (mode == DIST_MODEL)
                cJSON_AddNumberToObject(s, "comm_seconds", g->step_comm[t * nsteps + k]);
            cJSON_AddNumberToObject(s, "bytes_sent", (double)g->sent[t * nsteps + k]);
            cJSON_AddNumberToObject(s, "bytes_recv", (double)g->recv[t * nsteps + k]);
            cJSON_AddItemToArray(ls, s);
        }
        cJSON_AddItemToArray(ranks, rk);
    }
    char *txt = cJSON_Print(j);
    if (txt)
        fprintf(f, "%s\n", txt);
    cJSON_free(txt);
    cJSON_Delete(j);
}

static void print_text(FILE *f, const bench_infer_result *r, dist_mode mode, size_t R,
                       size_t batches, const gathered *g, const hnn_plan *p,
                       const dist_partition *part)
{
    const size_t nu = part ? part->nstages : p->nsteps;
    char name[96];
    fprintf(f, "%s on %s, batch %zu x %zu, %zu ranks x %d threads, %s-parallel\n", r->arch,
            r->preset, r->batch, batches, R, r->threads, mode == DIST_DATA ? "data" : "model");
    for (size_t t = 0; t < R; t++) {
        fprintf(f, "  rank %zu: %.3f s compute, %.3f s communication, %.3f s CPU, %.0f minor "
                "faults, peak RSS %.1f MB\n", t, g->compute[t], g->comm[t], g->cpu[t],
                g->faults[t], (double)g->rss[t] / 1048576.0);
        for (size_t k = 0; k < nu; k++) {
            if (part)
                stage_name(name, sizeof name, p, &part->stages[k]);
            fprintf(f, "    %s %zu %-20s %8.3f s  sent %9.1f MB  received %9.1f MB\n",
                    part ? "stage" : "step", k, part ? name : p->steps[k].name,
                    g->step_compute[t * nu + k], (double)g->sent[t * nu + k] / 1e6,
                    (double)g->recv[t * nu + k] / 1e6);
        }
    }
    fprintf(f, "server          %8.3f s for %zu batches, %.3f ms per image (amortized)\n",
            r->server_seconds, batches, r->amortized_ms);
    fprintf(f, "agreement       %zu / %zu, max |logit error| %.3g (planner estimate %.3g)\n",
            r->agree, r->batch, r->max_logit_error, r->est_logit_error);
}

/* The server phase of bench_infer on rank 0, over every rank: the model and the key go to the
 * others, then dist_infer_file. With several batches, the encrypted batch is written K times
 * into a multi-batch file first, and the first result is what bench_infer decrypts. */
typedef struct server_ctx {
    dist_ctx *dc;
    const bench_dist_opts *o;
    dist_stats ss;
    dist_mode used;
    double cpu, faults; /* of this rank's server phase (dist_infer_file) */
    int called;
} server_ctx;

static ppnn_status repeat_batch(const char *dst, const char *src, size_t k, const ckks_params *prm)
{
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    ckks_batch_info info;
    ckks_params *pp = (ckks_params *)prm; /* checked against, not modified */
    ppnn_status st = ckks_batch_load(&cts, &count, &info, &pp, src);
    ckks_batch_set_writer *w = NULL;
    uint64_t *images = calloc(k, sizeof *images);
    for (size_t b = 0; images && b < k; b++)
        images[b] = info.images;
    if (!st)
        st = images ? ckks_batch_set_create(&w, dst, prm, &info, k, images)
                    : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t b = 0; !st && b < k; b++)
        st = ckks_batch_set_append(w, cts, count);
    if (!st)
        st = ckks_batch_set_finish(w);
    else
        ckks_batch_set_abort(w);
    for (size_t i = 0; cts && i < count; i++)
        ckks_ct_free(&cts[i]);
    free(cts), free(images);
    return st;
}

static ppnn_status first_result(const char *dst, const char *src, const ckks_params *prm)
{
    ckks_batch_set *set = NULL;
    ckks_batch_reader *r = NULL;
    ckks_params *pp = (ckks_params *)prm;
    ppnn_status st = ckks_batch_set_open(&set, &pp, src);
    if (!st)
        st = ckks_batch_reader_open(&r, set, 0);
    size_t n = r ? ckks_batch_reader_count(r) : 0;
    ckks_ciphertext *cts = calloc(n ? n : 1, sizeof *cts);
    for (size_t i = 0; !st && i < n; i++) {
        size_t level, size;
        double scale;
        ckks_batch_reader_meta(r, i, &level, &size, &scale);
        st = ckks_batch_reader_get(&cts[i], r, i, level);
    }
    ckks_batch_info info;
    if (!st) {
        ckks_batch_set_info(&info, set, 0);
        st = ckks_batch_save(dst, cts, n, &info);
    }
    for (size_t i = 0; i < n; i++)
        ckks_ct_free(&cts[i]);
    free(cts);
    ckks_batch_reader_close(r);
    ckks_batch_set_close(set);
    return st;
}

static ppnn_status dist_server(void *vctx, hnn_file_stats *fs, const char *out_path,
                               const char *in_path, const nn_model *m, const hnn_plan *p,
                               const uint32_t shape[3], const ckks_relin_key *rk,
                               const uint8_t key_id[16], const hnn_file_opts *fo)
{
    server_ctx *c = vctx;
    c->called = 1;
    ckks_params *pp = (ckks_params *)rk->params; /* rank 0 only reads them */
    uint8_t id[16];
    memcpy(id, key_id, sizeof id);
    ppnn_status st = dist_bcast_model(c->dc, (nn_model *)m, PPNN_OK);
    if (!st)
        st = dist_bcast_relin_key(c->dc, (ckks_relin_key *)rk, &pp, id, PPNN_OK);
    char in_k[160], out_k[160];
    const int multi = c->o->batches > 1;
    snprintf(in_k, sizeof in_k, "%s.k", in_path), snprintf(out_k, sizeof out_k, "%s.k", out_path);
    ppnn_status rst = !st && multi ? repeat_batch(in_k, in_path, c->o->batches, rk->params)
                                   : PPNN_OK;
    if (!st)
        st = dist_agree(c->dc, rst);
    hnn_exec_opts eo = {.threads = fo->threads};
    double c0 = bench_cpu_seconds(), f0 = bench_minor_faults();
    if (!st)
        st = dist_infer_file(c->dc, fs, &c->ss, &c->used, multi ? out_k : out_path,
                             multi ? in_k : in_path, p, shape, rk, id, (dist_mode)c->o->mode,
                             (dist_read)c->o->read, 0, &eo);
    c->cpu = bench_cpu_seconds() - c0, c->faults = bench_minor_faults() - f0;
    if (!st && multi)
        st = first_result(out_path, out_k, rk->params);
    if (multi)
        unlink(in_k), unlink(out_k);
    return st;
}

/* Ranks other than 0: the model and key from rank 0, the same plan, the same job. */
static ppnn_status follow(server_ctx *c)
{
    nn_model m;
    memset(&m, 0, sizeof m);
    ckks_params *prm = NULL;
    ckks_relin_key rk;
    memset(&rk, 0, sizeof rk);
    uint8_t id[16] = {0};
    hnn_plan *plan = NULL;
    ppnn_status st = dist_bcast_model(c->dc, &m, PPNN_OK);
    if (!st)
        st = dist_bcast_relin_key(c->dc, &rk, &prm, id, PPNN_OK);
    if (!st)
        st = dist_agree(c->dc, PPNN_OK); /* rank 0's multi-batch file */
    if (!st)
        st = hnn_plan_for_params(&plan, &m, prm, c->o->preset);
    hnn_exec_opts eo = {.threads = c->o->threads};
    double c0 = bench_cpu_seconds(), f0 = bench_minor_faults();
    if (!st)
        st = dist_infer_file(c->dc, NULL, &c->ss, &c->used, NULL, NULL, plan, NULL, &rk, id,
                             (dist_mode)c->o->mode, (dist_read)c->o->read, 0, &eo);
    c->cpu = bench_cpu_seconds() - c0, c->faults = bench_minor_faults() - f0;
    hnn_plan_free(plan);
    ckks_relin_key_free(&rk);
    ckks_params_free(prm);
    nn_model_free(&m);
    return st;
}

ppnn_status bench_dist(const bench_dist_opts *o, FILE *f)
{
    dist_ctx *dc = NULL;
    ppnn_status st = dist_init(&dc, NULL, NULL);
    if (st)
        return st;
    const size_t me = dist_rank(dc), R = dist_size(dc);
    server_ctx c;
    memset(&c, 0, sizeof c);
    c.dc = dc, c.o = o;
    bench_infer_result r;
    memset(&r, 0, sizeof r);
    data_set ds;
    nn_model m;
    ckks_params *prm = NULL;
    hnn_plan *plan = NULL;
    memset(&ds, 0, sizeof ds), memset(&m, 0, sizeof m);
    if (me == 0) {
        bench_infer_opts bo = {.preset = o->preset, .arch = o->arch, .batch = o->count,
                               .threads = o->threads, .server = dist_server, .server_ctx = &c};
        st = bench_infer(&r, &bo);
        if (!c.called) { /* the others are waiting for the model: release them */
            ppnn_status rel = dist_bcast_model(dc, NULL, st ? st : PPNN_ERR_PARAM);
            st = st ? st : rel;
        }
        /* rank 0's copy of the plan, for the report */
        bench_infer_opts po = {.preset = o->preset, .arch = o->arch, .batch = o->count};
        if (!st)
            st = bench_model_plan(&ds, &m, &prm, &plan, &po);
    } else {
        st = follow(&c);
    }
    dist_partition *part = NULL;
    if ((st = dist_agree(dc, st)))
        goto done;
    if (me == 0 && (st = dist_partition_new(&part, plan, R)))
        goto done;
    r.amortized_ms = r.server_seconds * 1e3 / (double)(o->count * o->batches);
    gathered g;
    memset(&g, 0, sizeof g);
    const dist_partition *pp = c.used == DIST_MODEL ? part : NULL;
    if ((st = gather_all(&g, dc, &c.ss, c.ss.nsteps, c.cpu, c.faults)))
        goto done;
    if (me == 0 && o->json)
        print_json(f, &r, o, c.used, R, &g, plan, pp);
    else if (me == 0)
        print_text(f, &r, c.used, R, o->batches, &g, plan, pp);
    gathered_free(&g);
done:
    dist_partition_free(part);
    hnn_plan_free(plan);
    ckks_params_free(prm);
    nn_model_free(&m);
    data_set_free(&ds);
    dist_finish(dc);
    return st;
}

ppnn_status bench_partition(const char *preset, const char *arch, const size_t *ranks,
                            size_t nranks, FILE *f)
{
    data_set ds;
    nn_model m;
    ckks_params *prm = NULL;
    hnn_plan *plan = NULL;
    memset(&ds, 0, sizeof ds), memset(&m, 0, sizeof m);
    /* The model and plan bench infer measures (ranges from 256 test images). */
    bench_infer_opts bo = {.preset = preset, .arch = arch, .batch = 256};
    ppnn_status st = bench_model_plan(&ds, &m, &prm, &plan, &bo);
    cJSON *j = cJSON_CreateObject(), *runs = NULL;
    if (!st && !j)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st) {
        const size_t n = prm->n;
        cJSON_AddStringToObject(j, "preset", preset);
        cJSON_AddStringToObject(j, "arch", arch);
        cJSON_AddNumberToObject(j, "n", (double)n);
        cJSON_AddNumberToObject(j, "single_peak_bytes", (double)hnn_plan_peak_bytes(plan, n));
        runs = cJSON_AddArrayToObject(j, "partitions");
        for (size_t i = 0; i < nranks && !st; i++) {
            dist_partition *d = NULL;
            if ((st = dist_partition_new(&d, plan, ranks[i])))
                break;
            char name[96];
            cJSON *run = cJSON_CreateObject(), *stages = cJSON_AddArrayToObject(run, "stages");
            cJSON_AddNumberToObject(run, "ranks", (double)ranks[i]);
            for (size_t g = 0; g < d->nstages; g++) {
                cJSON *sg = cJSON_CreateObject(), *pr = cJSON_AddArrayToObject(sg, "per_rank");
                const dist_part_stage *pg = &d->stages[g];
                stage_name(name, sizeof name, plan, pg);
                cJSON_AddStringToObject(sg, "steps", name);
                cJSON_AddStringToObject(sg, "split", pg->tiling == HNN_TILE_ROWS ? "rows" : "cols");
                cJSON_AddNumberToObject(sg, "ciphertexts_moved",
                                        (double)dist_partition_moves(d, g));
                cJSON *lv = cJSON_AddArrayToObject(sg, "levels_in");
                for (size_t k = pg->a != HNN_NO_STEP ? pg->a : pg->act != HNN_NO_STEP ? pg->act
                                                                                     : pg->b;
                     k <= pg->b; k++)
                    cJSON_AddItemToArray(lv, cJSON_CreateNumber((double)plan->steps[k].level_in));
                for (size_t t = 0; t < ranks[i]; t++) {
                    uint64_t sent, recv;
                    dist_work w;
                    dist_partition_traffic(&sent, &recv, d, plan, g, t, n);
                    dist_partition_work(&w, d, plan, g, t);
                    cJSON *r = cJSON_CreateObject();
                    cJSON_AddNumberToObject(r, "bytes_sent", (double)sent);
                    cJSON_AddNumberToObject(r, "bytes_recv", (double)recv);
                    cJSON_AddNumberToObject(r, "a_terms", (double)w.a_terms);
                    cJSON_AddNumberToObject(r, "b_terms", (double)w.b_terms);
                    cJSON_AddNumberToObject(r, "acts", (double)w.acts);
                    cJSON_AddNumberToObject(r, "finishes", (double)w.finishes);
                    cJSON_AddItemToArray(pr, r);
                }
                cJSON_AddItemToArray(stages, sg);
            }
            cJSON *peaks = cJSON_AddArrayToObject(run, "peak_estimate_bytes");
            for (size_t t = 0; t < ranks[i]; t++)
                cJSON_AddItemToArray(peaks, cJSON_CreateNumber((double)dist_partition_peak_bytes(
                                                d, plan, t, n, DIST_PEAK_STREAMED)));
            cJSON_AddItemToArray(runs, run);
            dist_partition_free(d);
        }
    }
    if (!st) {
        char *txt = cJSON_Print(j);
        if (txt)
            fprintf(f, "%s\n", txt);
        cJSON_free(txt);
    }
    cJSON_Delete(j);
    hnn_plan_free(plan);
    ckks_params_free(prm);
    nn_model_free(&m);
    data_set_free(&ds);
    return st;
}
