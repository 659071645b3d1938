/* The file-level job over the ranks (dist.h: dist_infer_file): every rank reads its own share
 * of the (multi-)batch file when all see the same file (else rank 0 reads and sends), rank 0
 * writes the result file; the batches go through the model-parallel or data-parallel
 * executor. The results (n_outputs ciphertexts per batch, small) stay in rank 0's memory until
 * every rank agreed that every batch succeeded; only then is the result file written, through
 * the atomic batch-set writer. So a job stopped from outside (mpirun's SIGTERM when a rank
 * dies) leaves no temporary file either, but in the short window of that final write. */
#include <limits.h>
#include <stdio.h>
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

/* Batch b's reader (opening verifies its top hash; each input is verified by its own digest
 * when get_input reads it, so a rank hashes exactly its share), its count checked. */
static ppnn_status open_batch(ckks_batch_reader **r, const job *j, size_t b)
{
    ppnn_status st = ckks_batch_reader_open(r, j->set, b);
    if (!st && ckks_batch_reader_count(*r) != j->p->n_inputs)
        st = ppnn_fail(PPNN_ERR_MISMATCH, "batch %zu holds %zu ciphertexts, the model needs %zu",
                       b + 1, ckks_batch_reader_count(*r), j->p->n_inputs);
    return st;
}

/* Input i of batch b at the plan's top level (seeded ones stay seeded). Thread-safe. */
static ppnn_status get_input(ckks_ciphertext *ct, const ckks_batch_reader *r, const hnn_plan *p,
                             size_t b, size_t i)
{
    size_t level, size;
    double scale;
    ckks_batch_reader_meta(r, i, &level, &size, &scale);
    if (size != 2 || level < p->top_level)
        return ppnn_fail(PPNN_ERR_MISMATCH, "batch %zu: ciphertext %zu is at level %zu, the "
                         "model needs %zu", b + 1, i, level, p->top_level);
    return ckks_batch_reader_get(ct, r, i, p->top_level);
}

/* Batch b's inputs (rank 0, or every rank reading its own batches). */
static ppnn_status load_batch(void *ctx, size_t b, ckks_ciphertext *in)
{
    job *j = ctx;
    double t0 = ppnn_now();
    ckks_batch_reader *r = NULL;
    ppnn_status st = open_batch(&r, j, b);
    for (size_t i = 0; !st && i < j->p->n_inputs; i++)
        st = get_input(&in[i], r, j->p, b, i);
    ckks_batch_reader_close(r);
    j->read_seconds += ppnn_now() - t0;
    return st;
}

/* dist_inputs over one batch's reader: a rank's own stage-0 inputs. */
typedef struct batch_src {
    const ckks_batch_reader *r;
    const hnn_plan *p;
    size_t b;
} batch_src;

static ppnn_status src_get(void *ctx, size_t i, ckks_ciphertext *ct)
{
    const batch_src *bs = ctx;
    return get_input(ct, bs->r, bs->p, bs->b, i);
}

/* SHARED / AUTO: rank 0's path (absolute) reaches every rank, each opens it, checks it like
 * rank 0 and compares every batch's checksum with rank 0's. *shared = 1 when every rank holds
 * the same file; with SHARED a rank that does not is an error (named), with AUTO every rank
 * falls back to ROOT (the others close their copy). */
static ppnn_status open_shared(dist_ctx *dc, job *j, int *shared, const char *in_path,
                               const ckks_relin_key *rk, const uint8_t key_id[16],
                               dist_read rd)
{
    const size_t me = (size_t)dc->rank;
    *shared = 0;
    if (rd == DIST_READ_ROOT || dc->size == 1)
        return PPNN_OK;
    char path[PATH_MAX + 1] = "";
    uint64_t nb = j->nbatches;
    if (me == 0 && !realpath(in_path, path))
        snprintf(path, sizeof path, "%s", in_path);
    MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, dc->comm);
    MPI_Bcast(&nb, 1, MPI_UINT64_T, 0, dc->comm);
    path[PATH_MAX] = 0;
    uint8_t *sums = calloc(nb ? nb : 1, PPNN_FILE_TRAILER_BYTES), mine[PPNN_FILE_TRAILER_BYTES];
    ppnn_status st = sums ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t b = 0; !st && me == 0 && b < nb; b++)
        st = ckks_batch_set_checksum(sums + b * PPNN_FILE_TRAILER_BYTES, j->set, b);
    if ((st = dist_agree(dc, st))) {
        free(sums);
        return st;
    }
    MPI_Bcast(sums, (int)(nb * PPNN_FILE_TRAILER_BYTES), MPI_BYTE, 0, dc->comm);
    ppnn_status ls = me == 0 ? PPNN_OK : open_input(j, path, rk, key_id, NULL);
    if (!ls && me != 0 && _dist_fault_is(dc, "unshared"))
        ls = ppnn_fail(PPNN_ERR_IO, "%s: not visible on this rank (PPNN_DIST_FAULT)", path);
    if (!ls && j->nbatches != nb)
        ls = ppnn_fail(PPNN_ERR_MISMATCH, "%s holds %zu batches here, %llu on rank 0", path,
                       j->nbatches, (unsigned long long)nb);
    for (size_t b = 0; !ls && me != 0 && b < nb; b++)
        if (!(ls = ckks_batch_set_checksum(mine, j->set, b)) &&
            memcmp(mine, sums + b * PPNN_FILE_TRAILER_BYTES, sizeof mine) != 0)
            ls = ppnn_fail(PPNN_ERR_MISMATCH, "%s: batch %zu differs from rank 0's copy", path,
                           b + 1);
    free(sums);
    if (rd == DIST_READ_SHARED) {
        if ((st = dist_agree(dc, ls)))
            return st;
        *shared = 1;
        return PPNN_OK;
    }
    int ok = !ls, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, dc->comm);
    if (!all && me != 0) { /* ROOT: the others' copies are not used */
        ckks_batch_set_close(j->set);
        ckks_params_free(j->fp);
        j->set = NULL, j->fp = NULL, j->nbatches = 0;
    }
    *shared = all;
    return PPNN_OK;
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
                            dist_read read, uint64_t budget, const hnn_exec_opts *o)
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
    int shared = 0;
    if (!st)
        st = open_shared(dc, &j, &shared, in_path, rk, key_id, read);
    if (stats)
        stats->read = shared ? DIST_READ_SHARED : DIST_READ_ROOT;
    uint64_t nb = j.nbatches;
    if (!st)
        MPI_Bcast(&nb, 1, MPI_UINT64_T, 0, dc->comm);
    const dist_mode m = dist_choose_mode(mode, (size_t)nb, R);
    if (used_mode)
        *used_mode = m;
    double t0 = ppnn_now();
    if (!st && m == DIST_DATA) {
        dist_batches io = {(size_t)nb, load_batch, store_batch, &j, shared};
        st = dist_infer_data(dc, p, &io, rk, o, stats);
    }
    ckks_ciphertext *in = NULL, *out = NULL;
    if (!st && m != DIST_DATA && (me == 0 || shared)) {
        in = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *in);
        out = calloc(p->n_outputs ? p->n_outputs : 1, sizeof *out);
        if (!in || !out)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    dist_stats one, *ss = stats;
    for (uint64_t b = 0; !st && m != DIST_DATA && b < nb; b++) {
        ckks_batch_reader *r = NULL;
        ppnn_status ls = shared ? open_batch(&r, &j, (size_t)b)
                         : me == 0 ? load_batch(&j, (size_t)b, in) : PPNN_OK;
        if ((st = dist_agree(dc, ls))) {
            ckks_batch_reader_close(r);
            break;
        }
        batch_src bs = {r, p, (size_t)b};
        dist_inputs src = {src_get, &bs};
        /* shared: every rank reads only its own share; else the batch is released as it is
         * sent: rank 0 never holds a whole batch after that */
        if (shared)
            st = dist_infer_model_read(dc, out, p, &src, rk, o, budget, b ? &one : ss);
        else
            st = dist_infer_model(dc, out, p, in, 1, rk, o, budget, b ? &one : ss);
        ckks_batch_reader_close(r);
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
    if (stats) /* the executors reset the statistics */
        stats->read = shared ? DIST_READ_SHARED : DIST_READ_ROOT;
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
