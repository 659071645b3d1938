/* Distributed inference under mpirun (-n 2 and -n 3 in ctest) on a small insecure ring:
 * model-parallel and data-parallel results equal hnn_infer's bit for bit on a CryptoNets-shaped
 * net, a net with two convs and an avgpool, and the deep architecture under a per-rank budget
 * below the single-process peak; dist_infer_file with every read mode (each rank reading its
 * own share of a batch file, rank 0 reading and sending, the automatic choice and its
 * fallback when a rank cannot see the file) gives result files equal to hnn_infer's, model-
 * and data-parallel; a too-small budget is refused on every rank; a rank that
 * fails mid-run stops every rank with its message on rank 0, and the job goes on afterwards
 * (no rank is left waiting). Only rank 0 holds keys, inputs and references: the relin key and
 * the model reach the others through dist_bcast_*. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckks_tu.h"
#include "hnn_tu.h"
#include "ppnn/ckks_io.h"
#include "ppnn/dist.h"
#include "ppnn/hnn.h"
#include "testutil.h"

static dist_ctx *dc;
static size_t me, R;

/* Every trainable value from a seeded stream (as test_exec): quadratics near a ReLU fit. */
static void seed_params(nn_model *m)
{
    m->norm_mean = 0.0f, m->norm_std = 1.0f; /* model files need a normalisation */
    /* Recorded ranges keep the planner's bounds (and so the deep net's levels) realistic;
     * the test compares ciphertexts bit for bit, not accuracy. */
    const nn_range rg = {-4.0f, 4.0f, 4.0f};
    for (size_t k = 0; k < m->nlayers; k++)
        m->layers[k].in_range = rg;
    m->out_range = rg;
    htu_seed_params(m, 7);
}


static void free_cts(ckks_ciphertext *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        ckks_ct_free(&c[i]);
    free(c);
}

typedef struct world {
    ckks_params *prm;
    ckks_secret_key sk; /* rank 0 only */
    ckks_relin_key rk;
} world;

/* Rank 0 makes the ring and keys; every rank gets the parameters and the relin key. */
static void world_new_logn(world *w, unsigned logn, size_t nq)
{
    memset(w, 0, sizeof *w);
    uint8_t id[16] = {0};
    ppnn_status st = PPNN_OK;
    if (me == 0) {
        w->prm = ctu_params(logn, nq, 49, 30, 49);
        st = ckks_keygen_secret(&w->sk, w->prm);
        if (!st)
            st = ckks_keygen_relin(&w->rk, &w->sk);
    }
    CHECK_OK(dist_bcast_relin_key(dc, &w->rk, &w->prm, id, st));
}

static void world_new(world *w, size_t nq)
{
    world_new_logn(w, 8, nq);
}

static void world_free(world *w)
{
    ckks_relin_key_free(&w->rk);
    ckks_secret_key_free(&w->sk);
    ckks_params_free(w->prm);
}

/* Rank 0's encrypted batch of random inputs for plan p (seed varies the batch). */
static ckks_ciphertext *encrypt_batch(const world *w, const hnn_plan *p, uint64_t seed)
{
    if (me != 0)
        return NULL;
    const size_t B = w->prm->slots - 3, nin = p->n_inputs;
    double *x = malloc(B * nin * sizeof *x), *v = malloc(B * sizeof *v);
    ctu_values(x, B * nin, seed);
    ckks_ciphertext *in = calloc(nin, sizeof *in);
    for (size_t k = 0; k < nin; k++) {
        for (size_t b = 0; b < B; b++)
            v[b] = x[b * nin + k];
        ctu_encrypt(&in[k], &w->sk, v, B, p->top_level, w->prm->scale);
    }
    free(x), free(v);
    return in;
}

/* The model reaches every rank from rank 0; all plan it for the broadcast parameters. */
static hnn_plan *plan_everywhere(nn_model *m, const world *w)
{
    nn_model got;
    memset(&got, 0, sizeof got);
    CHECK_OK(dist_bcast_model(dc, me == 0 ? m : &got, PPNN_OK));
    hnn_budget b;
    hnn_budget_from_params(&b, w->prm, "test");
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, me == 0 ? m : &got, &b, NULL, 0));
    if (me != 0)
        nn_model_free(&got);
    return p;
}

/* Model-parallel equals hnn_infer (rank 0's reference) bit for bit; returns per-rank peak. */
static void check_model_parallel(const char *name, nn_model *m, size_t nq, int with_budget)
{
    world w;
    world_new(&w, nq);
    hnn_plan *p = plan_everywhere(m, &w);
    if (!p) {
        world_free(&w);
        return;
    }
    ckks_ciphertext *in = encrypt_batch(&w, p, 11);
    ckks_ciphertext *ref = me == 0 ? calloc(p->n_outputs, sizeof *ref) : NULL;
    ckks_ciphertext *got = me == 0 ? calloc(p->n_outputs, sizeof *got) : NULL;
    hnn_exec_opts o = {.threads = 1};
    if (me == 0)
        CHECK_OK(hnn_infer(ref, p, in, &w.rk, &o));
    /* The single-process peak (the streaming executor's default schedule) and every rank's
     * estimate on R ranks (rank 0 releasing the batch once sent, as infer does). */
    const uint64_t single = hnn_plan_peak_bytes(p, w.prm->n);
    dist_partition *part = NULL;
    CHECK_OK(dist_partition_new(&part, p, R));
    uint64_t need = 0, budget = 0;
    for (size_t t = 0; part && t < R; t++) {
        uint64_t b = dist_partition_peak_bytes(part, p, t, w.prm->n, DIST_PEAK_CONSUME);
        need = b > need ? b : need;
    }
    dist_partition_free(part);
    if (with_budget && R >= 2) {
        /* A per-rank budget below what one process needs, above what each rank needs. */
        CHECK_MSG(need < single, "%s: %zu ranks need %llu bytes each, one process %llu", name,
                  R, (unsigned long long)need, (unsigned long long)single);
        budget = need + (single - need) / 2;
        /* Below every rank's need: refused on all ranks, naming the need. */
        CHECK_ERR(dist_infer_model(dc, got, p, in, 0, &w.rk, &o, need / 2, NULL),
                  PPNN_ERR_NOMEM);
        CHECK(strstr(ppnn_last_error(), "per rank") != NULL);
    }
    dist_stats ss;
    CHECK_OK(dist_infer_model(dc, got, p, in, 1, &w.rk, &o, budget, &ss));
    CHECK(ss.nsteps >= 1 && ss.nsteps <= p->nsteps); /* stages */
    /* The bytes each stage moved are exactly the partition's prediction (the scaling model). */
    dist_partition *pt = NULL;
    CHECK_OK(dist_partition_new(&pt, p, R));
    for (size_t g = 0; pt && g < ss.nsteps; g++) {
        uint64_t ps, pr;
        dist_partition_traffic(&ps, &pr, pt, p, g, me, w.prm->n);
        CHECK_MSG(ps == ss.bytes_sent[g] && pr == ss.bytes_recv[g], "%s rank %zu stage %zu: "
                  "sent %llu (predicted %llu), received %llu (predicted %llu)", name, me, g,
                  (unsigned long long)ss.bytes_sent[g], (unsigned long long)ps,
                  (unsigned long long)ss.bytes_recv[g], (unsigned long long)pr);
    }
    dist_partition_free(pt);
    uint64_t peaks[64] = {0}, sent = 0;
    dist_gather_u64(dc, me == 0 ? peaks : NULL, ss.peak_estimate);
    for (size_t k = 0; k < ss.nsteps; k++)
        sent += ss.bytes_sent[k];
    if (R > 1) /* something moved on every rank (rank 0 sends inputs, the others results) */
        CHECK(sent > 0);
    if (me == 0) {
        size_t bad = htu_cts_differing(ref, got, p->n_outputs);
        CHECK_MSG(bad == 0, "%s on %zu ranks: %zu of %zu result ciphertexts differ", name, R,
                  bad, p->n_outputs);
        uint64_t worst = 0;
        for (size_t t = 0; t < R && t < 64; t++)
            worst = peaks[t] > worst ? peaks[t] : worst;
        fprintf(stderr, "test_mpi_dist %s: %zu ranks, %zu steps, peak per rank %.1f MB of "
                "%.1f MB single-process (%.2f)\n", name, R, p->nsteps, worst / 1048576.0,
                single / 1048576.0, (double)worst / (double)single);
        if (with_budget && R >= 2)
            CHECK(worst <= budget && worst == need);
    }
    free_cts(in, p->n_inputs);
    free_cts(ref, p->n_outputs);
    free_cts(got, p->n_outputs);
    hnn_plan_free(p);
    world_free(&w);
}

/* Batches held in memory by rank 0, for dist_infer_data. */
typedef struct mem_batches {
    ckks_ciphertext **in, **out;
    size_t nin, nout;
} mem_batches;

static ppnn_status mem_load(void *ctx, size_t b, ckks_ciphertext *in)
{
    mem_batches *mb = ctx;
    ppnn_status st = PPNN_OK;
    for (size_t i = 0; i < mb->nin && !st; i++)
        st = ckks_ct_copy(&in[i], &mb->in[b][i]);
    return st;
}

static ppnn_status mem_store(void *ctx, size_t b, ckks_ciphertext *out)
{
    mem_batches *mb = ctx;
    for (size_t i = 0; i < mb->nout; i++) /* keep the buffers */
        mb->out[b][i] = out[i], memset(&out[i], 0, sizeof out[i]);
    return PPNN_OK;
}

/* Data-parallel over 2R - 1 batches (a partial last round) equals hnn_infer per batch. */
static void check_data_parallel(nn_model *m)
{
    world w;
    world_new(&w, 6);
    hnn_plan *p = plan_everywhere(m, &w);
    if (!p) {
        world_free(&w);
        return;
    }
    const size_t nb = 2 * R - 1;
    ckks_ciphertext **in = calloc(nb, sizeof *in), **got = calloc(nb, sizeof *got);
    for (size_t b = 0; b < nb; b++) {
        in[b] = encrypt_batch(&w, p, 100 + b);
        got[b] = me == 0 ? calloc(p->n_outputs, sizeof **got) : NULL;
    }
    hnn_exec_opts o = {.threads = 1};
    mem_batches mb = {in, got, p->n_inputs, p->n_outputs};
    dist_batches io = {nb, mem_load, mem_store, &mb, 0};
    CHECK_OK(dist_infer_data(dc, p, &io, &w.rk, &o, NULL));
    for (size_t b = 0; me == 0 && b < nb; b++) {
        ckks_ciphertext *ref = calloc(p->n_outputs, sizeof *ref);
        CHECK_OK(hnn_infer(ref, p, in[b], &w.rk, &o));
        CHECK_MSG(htu_cts_differing(ref, got[b], p->n_outputs) == 0,
                  "batch %zu of %zu on %zu ranks", b, nb, R);
        free_cts(ref, p->n_outputs);
    }
    for (size_t b = 0; b < nb; b++)
        free_cts(in[b], p->n_inputs), free_cts(got[b], p->n_outputs);
    free(in), free(got);
    hnn_plan_free(p);
    world_free(&w);
}

/* Rank 0's result file against its references, batch by batch. */
static size_t file_diff(const char *path, ckks_ciphertext **ref, size_t nb, size_t nout,
                        ckks_params *prm)
{
    ckks_batch_set *s = NULL;
    ckks_params *pp = prm;
    size_t bad = 0;
    CHECK_OK(ckks_batch_set_open(&s, &pp, path));
    for (size_t b = 0; s && b < nb; b++) {
        ckks_batch_reader *r = NULL;
        CHECK_OK(ckks_batch_reader_open(&r, s, b));
        ckks_ciphertext *got = calloc(nout, sizeof *got);
        for (size_t i = 0; r && i < nout; i++) {
            size_t level, size;
            double scale;
            ckks_batch_reader_meta(r, i, &level, &size, &scale);
            CHECK_OK(ckks_batch_reader_get(&got[i], r, i, level));
        }
        bad += r ? htu_cts_differing(ref[b], got, nout) : nout;
        free_cts(got, nout);
        ckks_batch_reader_close(r);
    }
    ckks_batch_set_close(s);
    return bad;
}

/* dist_infer_file with every read mode: each rank reading its share of the file (SHARED, and
 * AUTO on this machine), rank 0 reading and sending (ROOT, and AUTO when a rank cannot see
 * the file); model-parallel on one batch and data-parallel on 2R - 1: result files equal
 * hnn_infer's bit for bit; with SHARED no stage input travels. */
static void check_file_read(const char *name, nn_model *m, size_t nq, dist_mode mode)
{
    world w;
    world_new_logn(&w, 14, nq); /* batch files accept secure rings only: 2^14 fits Q*P */
    hnn_plan *p = plan_everywhere(m, &w);
    if (!p) {
        world_free(&w);
        return;
    }
    const size_t nb = mode == DIST_DATA ? 2 * R - 1 : 1;
    ckks_ciphertext **in = calloc(nb, sizeof *in), **ref = calloc(nb, sizeof *ref);
    hnn_exec_opts o = {.threads = 2};
    char dir[] = "/tmp/ppnn_mpi_read_XXXXXX", in_path[64] = "", out_path[64] = "";
    uint64_t *images = calloc(nb, sizeof *images);
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    info.packing = CKKS_PACKING_ELEMENT, info.role = CKKS_BATCH_INPUT;
    info.shape[0] = m->input.c, info.shape[1] = m->input.h, info.shape[2] = m->input.w;
    if (me == 0) {
        CHECK(mkdtemp(dir) != NULL);
        snprintf(in_path, sizeof in_path, "%s/in.ct", dir);
        snprintf(out_path, sizeof out_path, "%s/out.ct", dir);
        ckks_batch_set_writer *wr = NULL;
        for (size_t b = 0; b < nb; b++)
            images[b] = w.prm->slots - 3;
        CHECK_OK(ckks_batch_set_create(&wr, in_path, w.prm, &info, nb, images));
        for (size_t b = 0; b < nb; b++) {
            in[b] = encrypt_batch(&w, p, 300 + b);
            ref[b] = calloc(p->n_outputs, sizeof **ref);
            CHECK_OK(hnn_infer(ref[b], p, in[b], &w.rk, &o));
            CHECK_OK(ckks_batch_set_append(wr, in[b], p->n_inputs));
        }
        CHECK_OK(ckks_batch_set_finish(wr));
    }
    const uint8_t id[16] = {0};
    const dist_read modes[4] = {DIST_READ_SHARED, DIST_READ_ROOT, DIST_READ_AUTO, DIST_READ_AUTO};
    uint64_t sent0[4] = {0};
    for (int k = 0; k < 4; k++) {
        if (k == 3) { /* the last rank cannot see the file: AUTO falls back to ROOT */
            char fault[32];
            snprintf(fault, sizeof fault, "%zu:0:unshared", R - 1);
            setenv("PPNN_DIST_FAULT", fault, 1);
        }
        dist_stats ss;
        dist_mode used;
        CHECK_OK(dist_infer_file(dc, NULL, &ss, &used, me == 0 ? out_path : NULL,
                                 me == 0 ? in_path : NULL, p, NULL, &w.rk, id, mode, modes[k],
                                 0, &o));
        const dist_read want = R == 1 || k == 1 || k == 3 ? DIST_READ_ROOT : DIST_READ_SHARED;
        CHECK_MSG(used == mode && ss.read == want, "%s: read mode %d ran as %d", name, k,
                  (int)ss.read);
        sent0[k] = ss.bytes_sent[0];
        if (me == 0) {
            size_t bad = file_diff(out_path, ref, nb, p->n_outputs, w.prm);
            CHECK_MSG(bad == 0, "%s on %zu ranks, read mode %d: %zu result ciphertexts differ",
                      name, R, k, bad);
            unlink(out_path);
        }
    }
    /* SHARED with a rank that cannot see the file: refused, naming it. */
    CHECK_ERR(dist_infer_file(dc, NULL, NULL, NULL, me == 0 ? out_path : NULL,
                              me == 0 ? in_path : NULL, p, NULL, &w.rk, id, mode,
                              DIST_READ_SHARED, 0, &o),
              R > 1 ? PPNN_ERR_IO : PPNN_OK);
    if (R > 1)
        CHECK(strstr(ppnn_last_error(), "not visible on this rank") != NULL);
    unsetenv("PPNN_DIST_FAULT");
    if (me == 0 && R > 1) /* rank 0 sends no inputs when the ranks read their own */
        CHECK_MSG(sent0[0] < sent0[1] && sent0[2] == sent0[0] && sent0[3] == sent0[1],
                  "%s: rank 0 sent %llu bytes reading shared, %llu sending", name,
                  (unsigned long long)sent0[0], (unsigned long long)sent0[1]);
    if (me == 0) {
        CHECK(access(out_path, F_OK) != 0);
        unlink(in_path);
        rmdir(dir);
    }
    for (size_t b = 0; b < nb; b++)
        free_cts(in[b], p->n_inputs), free_cts(ref[b], p->n_outputs);
    free(in), free(ref), free(images);
    hnn_plan_free(p);
    world_free(&w);
}

/* Rank R-1 fails before stage 2: every rank returns the error, rank 0 with its message; then a
 * collective still works (no rank is stuck in an exchange). */
static void check_failure(nn_model *m)
{
    world w;
    world_new(&w, 7);
    hnn_plan *p = plan_everywhere(m, &w);
    if (!p) {
        world_free(&w);
        return;
    }
    ckks_ciphertext *in = encrypt_batch(&w, p, 5);
    ckks_ciphertext *got = me == 0 ? calloc(p->n_outputs, sizeof *got) : NULL;
    char fault[32];
    snprintf(fault, sizeof fault, "%zu:2:error", R - 1);
    setenv("PPNN_DIST_FAULT", fault, 1);
    hnn_exec_opts o = {.threads = 1};
    CHECK_ERR(dist_infer_model(dc, got, p, in, 0, &w.rk, &o, 0, NULL), PPNN_ERR_IO);
    if (R > 1)
        CHECK(strstr(ppnn_last_error(), "injected failure before stage 2") != NULL);
    snprintf(fault, sizeof fault, "%zu:1:error", R - 1);
    setenv("PPNN_DIST_FAULT", fault, 1);
    ckks_ciphertext *bin[1] = {in}, *bout[1] = {got};
    mem_batches mb = {bin, bout, p->n_inputs, p->n_outputs};
    dist_batches io = {1, mem_load, mem_store, &mb, 0};
    CHECK_ERR(dist_infer_data(dc, p, &io, &w.rk, &o, NULL), PPNN_ERR_IO);
    unsetenv("PPNN_DIST_FAULT");
    CHECK_OK(dist_agree(dc, PPNN_OK));
    free_cts(in, p->n_inputs);
    free_cts(got, p->n_outputs);
    hnn_plan_free(p);
    world_free(&w);
}

static void build(nn_model *m, const char *name, nn_shape in, int which)
{
    nn_model_init(m, name, in);
    if (which == 0) { /* CryptoNets-shaped: conv / act / dense / act / dense */
        CHECK_OK(nn_model_add_conv2d(m, 5, 3, 2, 1));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_flatten(m));
        CHECK_OK(nn_model_add_dense(m, 12));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_dense(m, 3));
    } else { /* two convs and an avgpool */
        CHECK_OK(nn_model_add_conv2d(m, 3, 3, 1, 0));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_CHANNEL));
        CHECK_OK(nn_model_add_avgpool(m, 2, 2));
        CHECK_OK(nn_model_add_conv2d(m, 4, 3, 1, 1));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_flatten(m));
        CHECK_OK(nn_model_add_dense(m, 3));
    }
    CHECK_OK(nn_model_finish(m));
    m->nclasses = 3;
    seed_params(m);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    CHECK_OK(dist_init(&dc, &argc, &argv));
    if (!dc)
        return tu_finish("test_mpi_dist");
    me = dist_rank(dc), R = dist_size(dc);
    nn_model a, b, d;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&d, 0, sizeof d);
    if (me == 0) {
        build(&a, "cnets", (nn_shape){1, 8, 8}, 0);
        build(&b, "twoconv", (nn_shape){1, 10, 10}, 1);
        CHECK_OK(nn_arch_build(&d, "deep", NN_ACT_ELEMENT, (nn_shape){1, 16, 16}, 10));
        seed_params(&d);
    }
    check_model_parallel("cryptonets-shaped", &a, 6, 0);
    check_model_parallel("two convs + avgpool", &b, 7, 0);
    check_model_parallel("deep", &d, 10, 1);
    check_data_parallel(&a);
    /* Sanitizer runs (PPNN_TEST_REDUCED): the file reads need a 2^14 ring; the streamed ROWS
     * share, the fallback and the data-parallel reads are kept, the COLS one is left out. */
    if (!getenv("PPNN_TEST_REDUCED"))
        check_file_read("cryptonets-shaped", &a, 6, DIST_MODEL);
    check_file_read("two convs + avgpool", &b, 7, DIST_MODEL);
    check_file_read("data-parallel", &a, 6, DIST_DATA);
    check_failure(&b);
    if (me == 0)
        nn_model_free(&a), nn_model_free(&b), nn_model_free(&d);
    /* Every rank's verdict counts: the failures of all ranks are summed on rank 0. */
    uint64_t fails[64] = {0}, total = 0;
    dist_gather_u64(dc, me == 0 ? fails : NULL, (uint64_t)tu_failures);
    for (size_t t = 0; me == 0 && t < R && t < 64; t++)
        total += fails[t];
    if (me == 0)
        tu_failures = (int)total;
    dist_finish(dc);
    if (me != 0)
        return tu_failures ? 1 : 0;
    return tu_finish("test_mpi_dist");
}
