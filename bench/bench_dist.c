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

#include "ppnn/dist.h"

/* CPU seconds of this process (user + system, all threads): unlike wall time, what a rank
 * computes barely depends on how busy the machine is. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

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
    double *compute, *comm, *cpu, *step_compute, *step_comm;
    uint64_t *rss, *estimate, *sent, *recv;
} gathered;

static void gathered_free(gathered *g)
{
    free(g->compute), free(g->comm), free(g->cpu), free(g->step_compute), free(g->step_comm);
    free(g->rss), free(g->estimate), free(g->sent), free(g->recv);
}

static ppnn_status gather_all(gathered *g, dist_ctx *dc, const dist_stats *ss, size_t nsteps,
                              double cpu)
{
    const size_t R = dist_size(dc), root = dist_rank(dc) == 0;
    memset(g, 0, sizeof *g);
    if (root) {
        g->compute = calloc(R, sizeof(double)), g->comm = calloc(R, sizeof(double));
        g->cpu = calloc(R, sizeof(double));
        g->step_compute = calloc(R * nsteps + 1, sizeof(double));
        g->step_comm = calloc(R * nsteps + 1, sizeof(double));
        g->rss = calloc(R, sizeof(uint64_t)), g->estimate = calloc(R, sizeof(uint64_t));
        g->sent = calloc(R * nsteps + 1, sizeof(uint64_t));
        g->recv = calloc(R * nsteps + 1, sizeof(uint64_t));
    }
    int bad = root && (!g->compute || !g->comm || !g->cpu || !g->step_compute || !g->step_comm ||
                       !g->rss || !g->estimate || !g->sent || !g->recv);
    ppnn_status st = dist_agree(dc, bad ? ppnn_fail(PPNN_ERR_NOMEM, "out of memory") : PPNN_OK);
    if (st)
        return st;
    dist_gather_double(dc, g->compute, ss->compute_total);
    dist_gather_double(dc, g->comm, ss->comm_total);
    dist_gather_double(dc, g->cpu, cpu);
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
        fprintf(f, "  rank %zu: %.3f s compute, %.3f s communication, %.3f s CPU, peak RSS "
                "%.1f MB\n", t, g->compute[t], g->comm[t], g->cpu[t],
                (double)g->rss[t] / 1048576.0);
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

ppnn_status bench_dist(const bench_dist_opts *o, FILE *f)
{
    dist_ctx *dc = NULL;
    ppnn_status st = dist_init(&dc, NULL, NULL);
    if (st)
        return st;
    const size_t me = dist_rank(dc), R = dist_size(dc);
    bench_infer_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.preset, sizeof r.preset, "%s", o->preset);
    snprintf(r.arch, sizeof r.arch, "%s", o->arch);
    r.batch = o->count, r.threads = o->threads;
    bench_state s;
    memset(&s, 0, sizeof s);
    uint8_t key_id[16] = {0};
    nn_model m;
    memset(&m, 0, sizeof m);
    hnn_plan *plan = NULL;
    dist_partition *part = NULL;
    ckks_ciphertext **outs = NULL;
    const ckks_ciphertext **ins = NULL;
    gathered g;
    memset(&g, 0, sizeof g);
    ppnn_status rst = PPNN_OK;
    if (me == 0) {
        rst = bench_state_setup(&s, o->preset, o->arch, o->count);
        if (!rst && o->count > s.prm->slots)
            rst = ppnn_fail(PPNN_ERR_PARAM, "bench infer: batch %zu > %zu slots", o->count,
                            s.prm->slots);
        double t0 = ppnn_now();
        if (!rst)
            rst = hnn_encrypt_batch(s.in, &s.sk, s.x, o->count, s.plan->n_inputs, o->threads);
        r.client_encrypt_seconds = ppnn_now() - t0;
    }
    if ((st = dist_bcast_model(dc, me == 0 ? &s.m : &m, rst)))
        goto done;
    if ((st = dist_bcast_relin_key(dc, &s.rk, &s.prm, key_id, PPNN_OK)))
        goto done;
    if (me == 0) {
        plan = s.plan;
    } else { /* the plan bench_state_setup makes, from the broadcast model and parameters */
        hnn_budget b;
        hnn_budget_from_params(&b, s.prm, o->preset);
        st = hnn_plan_new(&plan, &m, &b, NULL, 0);
    }
    if (!st)
        st = dist_partition_new(&part, plan, R);
    const dist_mode mode = dist_choose_mode(o->mode, o->batches, R);
    /* Every batch reuses rank 0's encrypted inputs (the cost does not depend on the values). */
    ins = calloc(o->batches, sizeof *ins), outs = calloc(o->batches, sizeof *outs);
    if (!st && (!ins || !outs))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t b = 0; !st && me == 0 && b < o->batches; b++) {
        ins[b] = s.in;
        outs[b] = b ? calloc(plan->n_outputs, sizeof **outs) : s.out;
        if (!outs[b])
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    if ((st = dist_agree(dc, st)))
        goto done;
    hnn_exec_opts eo = {.threads = o->threads};
    dist_stats ss;
    double t0 = ppnn_now(), cpu0 = cpu_seconds();
    if (mode == DIST_DATA)
        st = dist_infer_data(dc, outs, plan, ins, o->batches, &s.rk, &eo, &ss);
    else
        for (size_t b = 0; !st && b < o->batches; b++)
            /* One batch: the batch is released once sent, as infer does. Several: reused. */
            st = dist_infer_model(dc, me == 0 ? outs[b] : NULL, plan, me == 0 ? s.in : NULL,
                                  o->batches == 1, &s.rk, &eo, 0, &ss);
    r.server_seconds = ppnn_now() - t0;
    const double cpu = cpu_seconds() - cpu0;
    if (st)
        goto done;
    if (me == 0)
        st = bench_state_score(&r, &s, s.out);
    r.amortized_ms = r.server_seconds * 1e3 / (double)(o->count * o->batches);
    const dist_partition *pp = mode == DIST_MODEL ? part : NULL;
    if ((st = dist_agree(dc, st)) ||
        (st = gather_all(&g, dc, &ss, pp ? pp->nstages : plan->nsteps, cpu)))
        goto done;
    if (me == 0 && o->json)
        print_json(f, &r, o, mode, R, &g, plan, pp);
    else if (me == 0)
        print_text(f, &r, mode, R, o->batches, &g, plan, pp);
done:
    for (size_t b = 1; outs && me == 0 && b < o->batches; b++) {
        for (size_t c = 0; outs[b] && c < plan->n_outputs; c++)
            ckks_ct_free(&outs[b][c]);
        free(outs[b]);
    }
    free(outs), free(ins);
    gathered_free(&g);
    dist_partition_free(part);
    if (me != 0) {
        hnn_plan_free(plan);
        nn_model_free(&m);
        ckks_relin_key_free(&s.rk);
        ckks_params_free(s.prm);
    } else {
        bench_state_free(&s);
    }
    dist_finish(dc);
    return st;
}

ppnn_status bench_partition(const char *preset, const char *arch, const size_t *ranks,
                            size_t nranks, FILE *f)
{
    bench_state s;
    memset(&s, 0, sizeof s);
    /* The model and plan bench infer measures (ranges from 256 test images). */
    ppnn_status st = bench_state_setup(&s, preset, arch, 256);
    cJSON *j = cJSON_CreateObject(), *runs = NULL;
    if (!st && !j)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st) {
        const size_t n = s.prm->n;
        cJSON_AddStringToObject(j, "preset", preset);
        cJSON_AddStringToObject(j, "arch", arch);
        cJSON_AddNumberToObject(j, "n", (double)n);
        cJSON_AddNumberToObject(j, "single_peak_bytes", (double)hnn_plan_peak_bytes(s.plan, n));
        runs = cJSON_AddArrayToObject(j, "partitions");
        for (size_t i = 0; i < nranks && !st; i++) {
            dist_partition *d = NULL;
            if ((st = dist_partition_new(&d, s.plan, ranks[i])))
                break;
            char name[96];
            cJSON *run = cJSON_CreateObject(), *stages = cJSON_AddArrayToObject(run, "stages");
            cJSON_AddNumberToObject(run, "ranks", (double)ranks[i]);
            for (size_t g = 0; g < d->nstages; g++) {
                cJSON *sg = cJSON_CreateObject(), *pr = cJSON_AddArrayToObject(sg, "per_rank");
                stage_name(name, sizeof name, s.plan, &d->stages[g]);
                cJSON_AddStringToObject(sg, "steps", name);
                cJSON_AddStringToObject(sg, "split",
                                        d->stages[g].tiling == HNN_TILE_ROWS ? "rows" : "cols");
                cJSON_AddNumberToObject(sg, "ciphertexts_moved",
                                        (double)dist_partition_moves(d, g));
                const dist_part_stage *pg = &d->stages[g];
                cJSON *lv = cJSON_AddArrayToObject(sg, "levels_in");
                for (size_t k = pg->a != HNN_NO_STEP ? pg->a : pg->act != HNN_NO_STEP ? pg->act
                                                                                     : pg->b;
                     k <= pg->b; k++)
                    cJSON_AddItemToArray(lv, cJSON_CreateNumber((double)s.plan->steps[k].level_in));
                for (size_t t = 0; t < ranks[i]; t++) {
                    uint64_t sent, recv;
                    dist_work w;
                    dist_partition_traffic(&sent, &recv, d, s.plan, g, t, n);
                    dist_partition_work(&w, d, s.plan, g, t);
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
                                                d, s.plan, t, n, 1)));
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
    bench_state_free(&s);
    return st;
}
