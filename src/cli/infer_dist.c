/* ppnn infer under mpirun: the same job as cmd_infer.c spread over the ranks (dist.h). Rank 0
 * alone reads the model, the relinearization key and the batch, and alone writes the result;
 * the model and the key reach the other ranks by broadcast, the ciphertexts by point-to-point
 * messages. Only rank 0 prints: a failure on any rank is agreed by all (dist_agree) and
 * reported once, by rank 0, naming the rank; a rank that dies makes mpirun stop the others. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/dist.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"

/* Per-rank memory budget: the memory available on this node shared by the ranks on it
 * (Open MPI and PMI publish the local rank count), with the 10 % margin cmd_infer keeps. */
static uint64_t rank_budget(void)
{
    uint64_t avail = cli_mem_available();
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!v)
        v = getenv("MPI_LOCALNRANKS");
    unsigned long local = v ? strtoul(v, NULL, 10) : 1;
    if (local < 1)
        local = 1;
    return avail ? (avail - avail / 10) / local : 0;
}

/* Rank 0's report: per-rank compute and communication, bytes per step. */
static void report(dist_ctx *dc, const dist_stats *ss, int model, int quiet)
{
    const size_t R = dist_size(dc), me = dist_rank(dc);
    double *comp = me == 0 ? calloc(R, sizeof *comp) : NULL;
    double *comm = me == 0 ? calloc(R, sizeof *comm) : NULL;
    dist_gather_double(dc, comp, ss->compute_total);
    dist_gather_double(dc, comm, ss->comm_total);
    if (me == 0 && comp && comm && !quiet) {
        for (size_t k = 0; k < ss->nsteps; k++)
            fprintf(stderr, "infer: %s %zu/%zu rank 0: %.3f s compute, %.3f s moving %.1f MB "
                    "out / %.1f MB in\n", model ? "stage" : "step", k + 1, ss->nsteps,
                    ss->compute_seconds[k], ss->comm_seconds[k], ss->bytes_sent[k] / 1e6,
                    ss->bytes_recv[k] / 1e6);
        for (size_t t = 0; t < R; t++)
            fprintf(stderr, "infer: rank %zu: %.3f s compute, %.3f s communication\n", t,
                    comp[t], comm[t]);
    }
    free(comp), free(comm);
}

int cli_infer_dist(const cli_infer_args *a)
{
    dist_ctx *dc = NULL;
    ppnn_status st = dist_init(&dc, NULL, NULL);
    if (st)
        return cli_fail("infer", st);
    const size_t me = dist_rank(dc), R = dist_size(dc);
    nn_model m;
    memset(&m, 0, sizeof m);
    ckks_params *params = NULL;
    ckks_relin_key rk;
    memset(&rk, 0, sizeof rk);
    uint8_t rk_id[CKKS_KEY_ID_BYTES] = {0};
    char path[1024];
    cli_key_path(path, sizeof path, a->keys, CLI_RELIN_KEY);
    hnn_plan *plan = NULL;
    ckks_ciphertext *cts = NULL, *res = NULL;
    size_t count = 0;
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    int rc = 1, printed = 0;
    double t0 = ppnn_now();

    ppnn_status mst = me == 0 ? nn_model_load(&m, a->model) : PPNN_OK;
    if ((st = dist_bcast_model(dc, &m, mst)))
        goto done;
    ppnn_status kst = me == 0 ? ckks_relin_key_load(&rk, &params, rk_id, path) : PPNN_OK;
    if ((st = dist_bcast_relin_key(dc, &rk, &params, rk_id, kst)))
        goto done;
    /* Rank 0 plans first (and prints a refusal); the plan is a function of the model and
     * the parameters, so the others then get the same one. */
    const char *preset = params->logn == 13 ? "n13" : "n14";
    int prc = me == 0 ? cli_plan_for_params("infer", &plan, &m, params, preset) : 0;
    printed = prc;
    if ((st = dist_agree(dc, prc ? PPNN_ERR_PARAM : PPNN_OK)))
        goto done;
    if (me != 0 && cli_plan_for_params("infer", &plan, &m, params, preset))
        st = ppnn_fail(PPNN_ERR_PARAM, "planning failed");
    if ((st = dist_agree(dc, st)))
        goto done;
    int brc = me == 0 ? cli_infer_load_batch(&cts, &count, &info, &params, a->in, rk_id, path,
                                             plan, &m, a->model)
                      : 0;
    printed = brc;
    if ((st = dist_agree(dc, brc ? PPNN_ERR_FORMAT : PPNN_OK)))
        goto done;
    printed = 0;
    uint64_t images = info.images;
    const size_t nbatches = 1; /* one batch per file until multi-batch files exist */
    const dist_mode mode = dist_choose_mode((dist_mode)a->mode, nbatches, R);
    if (me == 0 && !a->quiet)
        fprintf(stderr, "infer: %s on %zu ranks, %s-parallel (%s), %llu images, %zu input "
                "ciphertexts, depth %zu\n", a->model, R, mode == DIST_DATA ? "data" : "model",
                mode == DIST_DATA ? "ranks take whole batches"
                                  : "each rank computes a share of every layer",
                (unsigned long long)images, count, plan->depth);
    if (me == 0 && !(res = calloc(plan->n_outputs, sizeof *res)))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if ((st = dist_agree(dc, st)))
        goto done;
    hnn_exec_opts o = {.threads = a->threads};
    dist_stats ss;
    double t1 = ppnn_now();
    if (mode == DIST_DATA) {
        ckks_ciphertext *bin[1] = {cts}, *bout[1] = {res};
        st = dist_infer_data(dc, bout, plan, (const ckks_ciphertext *const *)bin, nbatches, &rk,
                             &o, &ss);
    } else {
        st = dist_infer_model(dc, res, plan, cts, 1, &rk, &o, rank_budget(), &ss);
    }
    double t_run = ppnn_now() - t1;
    if (st)
        goto done;
    report(dc, &ss, mode == DIST_MODEL, a->quiet);
    if (me == 0) {
        ckks_batch_info oinfo = info;
        oinfo.role = CKKS_BATCH_LOGITS;
        oinfo.shape[0] = (uint32_t)plan->n_outputs, oinfo.shape[1] = 1, oinfo.shape[2] = 1;
        st = ckks_batch_save(a->out, res, plan->n_outputs, &oinfo);
    }
    if ((st = dist_agree(dc, st)))
        goto done;
    if (me == 0)
        printf("infer: %llu images in %.3f s of server compute on %zu ranks (%.4f ms per image "
               "amortized), %.3f s total; result %s\n", (unsigned long long)images, t_run, R,
               1e3 * t_run / (double)images, ppnn_now() - t0, a->out);
    rc = 0;
done:
    if (rc && me == 0 && !printed)
        cli_fail("infer", st);
    for (size_t k = 0; cts && k < count; k++)
        ckks_ct_free(&cts[k]);
    free(cts);
    for (size_t k = 0; res && plan && k < plan->n_outputs; k++)
        ckks_ct_free(&res[k]);
    free(res);
    hnn_plan_free(plan);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    nn_model_free(&m);
    dist_finish(dc);
    return rc;
}
