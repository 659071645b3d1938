/* ppnn infer under mpirun: the same job as cmd_infer.c spread over the ranks (dist.h). Rank 0
 * alone reads the model, the relinearization key and the batch file, and alone writes the
 * result; the model and the key reach the other ranks by broadcast, the ciphertexts by
 * point-to-point messages (dist_infer_file). Only rank 0 prints: a failure on any rank is
 * agreed by all (dist_agree) and reported once, by rank 0, naming the rank; a rank that dies
 * makes mpirun stop the others. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/dist.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"

/* Per-rank memory: --memory, else the default fraction of this node's available memory shared
 * by the ranks on the node (Open MPI and MPICH publish the local rank count). */
static uint64_t rank_budget(uint64_t memory)
{
    if (memory)
        return memory;
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!v)
        v = getenv("MPI_LOCALNRANKS");
    unsigned long local = v ? strtoul(v, NULL, 10) : 1;
    return hnn_memory_default() / (local ? local : 1);
}

/* Rank 0's report: per-stage figures of rank 0, then compute and communication per rank. */
static void report(dist_ctx *dc, const dist_stats *ss, int model, int quiet)
{
    const size_t R = dist_size(dc), me = dist_rank(dc);
    double *comp = me == 0 ? calloc(R, sizeof *comp) : NULL;
    double *comm = me == 0 ? calloc(R, sizeof *comm) : NULL;
    dist_gather_double(dc, comp, ss->compute_total);
    dist_gather_double(dc, comm, ss->comm_total);
    if (me == 0 && comp && comm && !quiet) {
        for (size_t k = 0; model && k < ss->nsteps; k++)
            fprintf(stderr, "infer: stage %zu/%zu rank 0: %.3f s compute, %.3f s moving %.1f MB "
                    "out / %.1f MB in\n", k + 1, ss->nsteps, ss->compute_seconds[k],
                    ss->comm_seconds[k], ss->bytes_sent[k] / 1e6, ss->bytes_recv[k] / 1e6);
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
    char path[4096];
    ppnn_status pst = cli_key_path(path, sizeof path, a->keys, CLI_RELIN_KEY);
    hnn_plan *plan = NULL;
    int rc = 1;
    double t0 = ppnn_now();
    ppnn_status mst = me == 0 ? nn_model_load(&m, a->model) : PPNN_OK;
    if ((st = dist_bcast_model(dc, &m, mst)))
        goto done;
    ppnn_status kst = me != 0 ? PPNN_OK : pst ? pst : ckks_relin_key_load(&rk, &params, rk_id, path);
    if ((st = dist_bcast_relin_key(dc, &rk, &params, rk_id, kst)))
        goto done;
    /* The plan is a function of the model and the parameters: every rank gets the same. */
    if ((st = dist_agree(dc, hnn_plan_for_params(&plan, &m, params, NULL))))
        goto done;
    if (me == 0 && !a->quiet)
        fprintf(stderr, "infer: %s on %zu ranks, depth %zu, planner's bound on the logit error "
                "%.2g\n", a->model, R, plan->depth, plan->est_error);
    const uint32_t shape[3] = {m.input.c, m.input.h, m.input.w};
    hnn_exec_opts o = {.threads = a->threads};
    hnn_file_stats fs;
    dist_stats ss;
    dist_mode used = DIST_MODEL;
    st = dist_infer_file(dc, &fs, &ss, &used, me == 0 ? a->out : NULL, me == 0 ? a->in : NULL,
                         plan, shape, &rk, rk_id, (dist_mode)a->mode, (dist_read)a->read, rank_budget(a->memory),
                         &o);
    if (st)
        goto done;
    report(dc, &ss, used == DIST_MODEL, a->quiet);
    if (me == 0)
        printf("infer: %llu images in %zu batch%s on %zu ranks, %s-parallel (%s; %s), %.3f s "
               "of server time (%.4f ms per image amortized), %.3f s total; result %s\n",
               (unsigned long long)fs.images, fs.nbatches, fs.nbatches == 1 ? "" : "es", R,
               used == DIST_DATA ? "data" : "model",
               used == DIST_DATA ? "ranks take whole batches"
                                 : "each rank computes a share of every layer",
               ss.read == DIST_READ_SHARED ? "every rank reads its share of the batch file"
                                           : "rank 0 reads the batch file and sends the shares",
               fs.server_seconds, 1e3 * fs.server_seconds / (double)fs.images,
               ppnn_now() - t0, a->out);
    rc = 0;
done:
    if (rc && me == 0)
        cli_fail("infer", st);
    hnn_plan_free(plan);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    nn_model_free(&m);
    dist_finish(dc);
    return rc;
}
