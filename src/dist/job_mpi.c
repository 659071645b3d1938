/* The file-level job over the ranks (dist.h: dist_infer_file): rank 0 reads the (multi-)batch
 * file and writes the result file; the batches go through the model-parallel or data-parallel
 * executor. The results (n_outputs ciphertexts per batch, small) stay in rank 0's memory until
 * every rank agreed that every batch succeeded; only then is the result file written, through
 * the atomic batch-set writer. So a job stopped from outside (mpirun's SIGTERM when a rank
 * dies) leaves no temporary file either, but in the short window of that final write. */
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_inner.h"
#include "ppnn/ckks_io.h"

typedef struct job {
    ckks_params *fp; /* the file's parameters (its ciphertexts point to them) */
    ckks_batch_set *set;
    ckks_ciphertext *results; /* nbatches x n_outputs */
    const hnn_plan *p;
    size_t nbatches;
    uint64_t images;
    double read_seconds;
} job;

/* Rank 0: the input file against the key, the packing, the shape and the plan. */
static ppnn_status open_input(job *j, const char *in_path, const ckks_relin_key *rk,
                              const uint8_t key_id[16], const uint32_t shape[3])
{
    ppnn_status st = ckks_batch_set_open(&j->set, &j->fp, in_path);
    if (!st && !ckks_params_same(j->fp, rk->params))
        st = ppnn_fail(PPNN_ERR_MISMATCH, "%s was made for other parameters than the key",
                       in_path);
    if (st)
        return st;
    ckks_batch_info info;
    ckks_batch_set_info(&info, j->set, (size_t)-1);
    if (memcmp(info.key_id, key_id, CKKS_KEY_ID_BYTES) != 0)
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s was encrypted under different keys than the "
                         "relinearization key (key ids differ)", in_path);
    if (info.role != CKKS_BATCH_INPUT || info.packing != CKKS_PACKING_ELEMENT)
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s is not an element-wise encrypted input batch",
                         in_path);
    if (shape && (info.shape[0] != shape[0] || info.shape[1] != shape[1] ||
                  info.shape[2] != shape[2]))
        return ppnn_fail(PPNN_ERR_MISMATCH, "the model expects %ux%ux%u inputs but %s holds "
                         "%ux%ux%u images", shape[0], shape[1], shape[2], in_path,
                         info.shape[0], info.shape[1], info.shape[2]);
    j->nbatches = ckks_batch_set_batches(j->set);
    j->images = info.images;
    return PPNN_OK;
}

/* Rank 0: batch b's inputs at the plan's top level (seeded ones stay seeded). */
static ppnn_status load_batch(void *ctx, size_t b, ckks_ciphertext *in)
{
    job *j = ctx;
    double t0 = ppnn_now();
    ckks_batch_reader *r = NULL;
    ppnn_status st = ckks_batch_reader_open(&r, j->set, b);
    if (!st && ckks_batch_reader_count(r) != j->p->n_inputs)
        st = ppnn_fail(PPNN_ERR_MISMATCH, "batch %zu holds %zu ciphertexts, the model needs %zu",
                       b + 1, ckks_batch_reader_count(r), j->p->n_inputs);
    for (size_t i = 0; !st && i < j->p->n_inputs; i++) {
        size_t level, size;
        double scale;
        ckks_batch_reader_meta(r, i, &level, &size, &scale);
        if (size != 2 || level < j->p->top_level)
            st = ppnn_fail(PPNN_ERR_MISMATCH, "batch %zu: ciphertext %zu is at level %zu, the "
                           "model needs %zu", b + 1, i, level, j->p->top_level);
        else
            st = ckks_batch_reader_get(&in[i], r, i, j->p->top_level);
    }
    ckks_batch_reader_close(r);
    j->read_seconds += ppnn_now() - t0;
    return st;
}

static ppnn_status store_batch(void *ctx, size_t b, ckks_ciphertext *out)
{
    job *j = ctx;
    for (size_t c = 0; c < j->p->n_outputs; c++) { /* the buffers move */
        ckks_ciphertext *r = &j->results[b * j->p->n_outputs + c];
        ckks_ct_free(r);
        *r = out[c];
        memset(&out[c], 0, sizeof out[c]);
    }
    return PPNN_OK;
}

static ppnn_status write_output(job *j, const char *out_path, const ckks_params *prm)
{
    uint64_t *images = malloc((j->nbatches ? j->nbatches : 1) * sizeof *images);
    if (!images)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    ckks_batch_info info;
    for (size_t b = 0; b < j->nbatches; b++) {
        ckks_batch_set_info(&info, j->set, b);
        images[b] = info.images;
    }
    ckks_batch_set_info(&info, j->set, (size_t)-1);
    info.role = CKKS_BATCH_LOGITS;
    info.shape[0] = (uint32_t)j->p->n_outputs, info.shape[1] = 1, info.shape[2] = 1;
    ckks_batch_set_writer *w = NULL;
    ppnn_status st = ckks_batch_set_create(&w, out_path, prm, &info, j->nbatches, images);
    free(images);
    for (size_t b = 0; !st && b < j->nbatches; b++)
        st = ckks_batch_set_append(w, j->results + b * j->p->n_outputs, j->p->n_outputs);
    if (!st)
        return ckks_batch_set_finish(w);
    ckks_batch_set_abort(w);
    return st;
}

ppnn_status dist_infer_file(dist_ctx *dc, hnn_file_stats *fstats, dist_stats *stats,
                            dist_mode *used_mode, const char *out_path, const char *in_path,
                            const hnn_plan *p, const uint32_t shape[3],
                            const ckks_relin_key *rk, const uint8_t key_id[16], dist_mode mode,
                            uint64_t budget, const hnn_exec_opts *o)
{
    const size_t me = (size_t)dc->rank, R = (size_t)dc->size;
    job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    ppnn_status st = me == 0 ? open_input(&j, in_path, rk, key_id, shape) : PPNN_OK;
    if (!st && me == 0 &&
        !(j.results = calloc(j.nbatches * p->n_outputs + 1, sizeof *j.results)))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the results");
    st = dist_agree(dc, st);
    uint64_t nb = j.nbatches;
    if (!st)
        MPI_Bcast(&nb, 1, MPI_UINT64_T, 0, dc->comm);
    const dist_mode m = dist_choose_mode(mode, (size_t)nb, R);
    if (used_mode)
        *used_mode = m;
    double t0 = ppnn_now();
    if (!st && m == DIST_DATA) {
        dist_batches io = {(size_t)nb, load_batch, store_batch, &j};
        st = dist_infer_data(dc, p, &io, rk, o, stats);
    }
    ckks_ciphertext *in = NULL, *out = NULL;
    if (!st && m != DIST_DATA && me == 0) {
        in = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *in);
        out = calloc(p->n_outputs ? p->n_outputs : 1, sizeof *out);
        if (!in || !out)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    dist_stats one, *ss = stats;
    for (uint64_t b = 0; !st && m != DIST_DATA && b < nb; b++) {
        ppnn_status ls = me == 0 ? load_batch(&j, (size_t)b, in) : PPNN_OK;
        if ((st = dist_agree(dc, ls)))
            break;
        /* the batch is released as it is sent: rank 0 never holds a whole batch after that */
        st = dist_infer_model(dc, out, p, in, 1, rk, o, budget, b ? &one : ss);
        if (!st && b && ss) /* per-stage figures summed over batches */
            for (size_t k = 0; k < one.nsteps; k++) {
                ss->compute_seconds[k] += one.compute_seconds[k];
                ss->comm_seconds[k] += one.comm_seconds[k];
                ss->bytes_sent[k] += one.bytes_sent[k], ss->bytes_recv[k] += one.bytes_recv[k];
                ss->compute_total += one.compute_seconds[k], ss->comm_total += one.comm_seconds[k];
            }
        for (size_t i = 0; in && i < p->n_inputs; i++)
            ckks_ct_free(&in[i]);
        if (!st && me == 0)
            st = store_batch(&j, (size_t)b, out);
        st = dist_agree(dc, st);
    }
    const double server = ppnn_now() - t0;
    /* Written only when every rank succeeded with every batch. */
    if (!st && me == 0)
        st = write_output(&j, out_path, rk->params);
    st = dist_agree(dc, st);
    if (fstats && me == 0) {
        memset(fstats, 0, sizeof *fstats);
        fstats->nbatches = (size_t)nb, fstats->images = j.images;
        fstats->server_seconds = server;
    }
    for (size_t i = 0; in && i < p->n_inputs; i++)
        ckks_ct_free(&in[i]);
    for (size_t i = 0; out && i < p->n_outputs; i++)
        ckks_ct_free(&out[i]);
    free(in), free(out);
    for (size_t i = 0; j.results && i < j.nbatches * p->n_outputs; i++)
        ckks_ct_free(&j.results[i]);
    free(j.results);
    ckks_batch_set_close(j.set);
    ckks_params_free(j.fp);
    return st;
}
