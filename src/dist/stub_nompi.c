/* The dist layer in a build without MPI (PPNN_MPI=OFF): the job cannot start, and says why.
 * No dist_ctx can exist in such a build, so the other entry points are unreachable; they
 * refuse the same way rather than pretend. */
#include <stdlib.h>

#include "dist/inner.h"

static ppnn_status no_mpi(void)
{
    return ppnn_fail(PPNN_ERR_UNSUPPORTED, "this ppnn was built without MPI (PPNN_MPI=OFF); "
                     "install libopenmpi-dev and rebuild to run under mpirun");
}

ppnn_status dist_init(dist_ctx **out, int *argc, char ***argv)
{
    (void)argc, (void)argv;
    *out = NULL;
    return no_mpi();
}

void dist_finish(dist_ctx *dc) { (void)dc; }
size_t dist_rank(const dist_ctx *dc) { (void)dc; return 0; }
size_t dist_size(const dist_ctx *dc) { (void)dc; return 1; }

ppnn_status dist_agree(dist_ctx *dc, ppnn_status mine)
{
    (void)dc;
    return mine;
}

ppnn_status dist_bcast_model(dist_ctx *dc, nn_model *m, ppnn_status root_status)
{
    (void)dc, (void)m, (void)root_status;
    return no_mpi();
}

ppnn_status dist_bcast_relin_key(dist_ctx *dc, ckks_relin_key *rk, ckks_params **params,
                                 uint8_t key_id[16], ppnn_status root_status)
{
    (void)dc, (void)rk, (void)params, (void)key_id, (void)root_status;
    return no_mpi();
}

ppnn_status dist_infer_model(dist_ctx *dc, ckks_ciphertext *out, const hnn_plan *p,
                             ckks_ciphertext *in, int consume, const ckks_relin_key *rk,
                             const hnn_exec_opts *o, uint64_t budget, dist_stats *stats)
{
    (void)dc, (void)out, (void)p, (void)in, (void)consume, (void)rk, (void)o, (void)budget;
    (void)stats;
    return no_mpi();
}

ppnn_status dist_infer_model_read(dist_ctx *dc, ckks_ciphertext *out, const hnn_plan *p,
                                  const dist_inputs *src, const ckks_relin_key *rk,
                                  const hnn_exec_opts *o, uint64_t budget, dist_stats *stats)
{
    (void)dc, (void)out, (void)p, (void)src, (void)rk, (void)o, (void)budget, (void)stats;
    return no_mpi();
}

ppnn_status dist_infer_data(dist_ctx *dc, const hnn_plan *p, const dist_batches *io,
                            const ckks_relin_key *rk, const hnn_exec_opts *o, dist_stats *stats)
{
    (void)dc, (void)p, (void)io, (void)rk, (void)o, (void)stats;
    return no_mpi();
}

ppnn_status dist_infer_file(dist_ctx *dc, hnn_file_stats *fstats, dist_stats *stats,
                            dist_mode *used_mode, const char *out_path, const char *in_path,
                            const hnn_plan *p, const uint32_t shape[3],
                            const ckks_relin_key *rk, const uint8_t key_id[16], dist_mode mode,
                            dist_read read, uint64_t budget, const hnn_exec_opts *o)
{
    (void)dc, (void)fstats, (void)stats, (void)used_mode, (void)out_path, (void)in_path;
    (void)p, (void)shape, (void)rk, (void)key_id, (void)mode, (void)read, (void)budget, (void)o;
    return no_mpi();
}

void dist_gather_double(dist_ctx *dc, double *vals, double mine)
{
    (void)dc;
    if (vals)
        vals[0] = mine;
}

void dist_gather_u64(dist_ctx *dc, uint64_t *vals, uint64_t mine)
{
    (void)dc;
    if (vals)
        vals[0] = mine;
}
