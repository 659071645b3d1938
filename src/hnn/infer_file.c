/* A whole batch file to a result file under a memory budget (hnn.h, hnn_infer_file): the one
 * library call `ppnn infer`, the service and MPI ranks share. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hnn/inner.h"

/* MemAvailable, lowered by $PPNN_MEMORY_LIMIT (bytes) when set: to share a machine between
 * jobs, and to test the refusals. */
uint64_t hnn_memory_available(void)
{
    const char *lim = getenv("PPNN_MEMORY_LIMIT");
    uint64_t cap = lim && *lim ? strtoull(lim, NULL, 10) : 0;
    FILE *fp = fopen("/proc/meminfo", "r");
    if (!fp)
        return cap;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(fp);
    uint64_t avail = (uint64_t)kb * 1024;
    return cap && (cap < avail || !avail) ? cap : avail;
}

uint64_t hnn_memory_default(void)
{
    uint64_t a = hnn_memory_available();
    return a ? a / 10 * 6 : (uint64_t)4 << 30;
}

/* Inputs of one batch, pulled from its streamed reader. */
typedef struct {
    const ckks_batch_reader *r;
    ckks_ciphertext *cache;
    ckks_ct_pool *pool; /* the run's: inputs reuse the buffers of earlier ones */
} reader_src;

static ppnn_status reader_get(hnn_source *s, size_t i, size_t level, const ckks_ciphertext **out)
{
    reader_src *c = s->ctx;
    if (!c->cache[i].data)
        ckks_ct_attach(&c->cache[i], c->pool);
    ppnn_status st = ckks_batch_reader_get(&c->cache[i], c->r, i, level);
    *out = &c->cache[i];
    return st;
}

static void reader_release(hnn_source *s, size_t i)
{
    ckks_ct_free(&((reader_src *)s->ctx)->cache[i]);
}

typedef struct {
    const hnn_file_opts *o;
    hnn_file_stats *stats;
    hnn_progress pr;
    const hnn_schedule *s;
} prog_ctx;

static void on_step(void *vctx, size_t k, const hnn_step *st, double seconds)
{
    prog_ctx *c = vctx;
    if (k < sizeof c->stats->step_seconds / sizeof c->stats->step_seconds[0])
        c->stats->step_seconds[k] += seconds;
    if (!c->o->progress)
        return;
    c->pr.step = st, c->pr.step_index = k, c->pr.step_seconds = seconds;
    c->o->progress(c->o->progress_ctx, &c->pr);
}

static void on_tile(void *vctx, size_t stage, size_t done, size_t ntiles)
{
    prog_ctx *c = vctx;
    if (!c->o->progress)
        return;
    c->pr.stage = stage, c->pr.step = NULL;
    c->pr.fraction = ((double)stage + (double)done / (double)ntiles) / (double)c->s->nstages;
    c->o->progress(c->o->progress_ctx, &c->pr);
}

/* Checks batch b's ciphertexts against the plan before any is read. */
static ppnn_status check_batch(const ckks_batch_reader *r, const hnn_plan *p,
                               const ckks_params *prm, const char *in, size_t b, size_t nb)
{
    if (ckks_batch_reader_count(r) != p->n_inputs)
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s: batch %zu of %zu holds %zu ciphertexts, the "
                         "model needs %zu", in, b + 1, nb, ckks_batch_reader_count(r),
                         p->n_inputs);
    for (size_t i = 0; i < p->n_inputs; i++) {
        size_t level, size;
        double scale;
        ckks_batch_reader_meta(r, i, &level, &size, &scale);
        if (size != 2 || level < p->top_level)
            return ppnn_fail(PPNN_ERR_MISMATCH, "%s: ciphertext %zu is at level %zu (size %zu), "
                             "the model needs level %zu", in, i, level, size, p->top_level);
        if (!(fabs(scale / prm->scale - 1) <= 0x1p-30))
            return ppnn_fail(PPNN_ERR_MISMATCH, "%s: ciphertext %zu has scale 2^%.2f; the plan "
                             "needs the parameters' scale 2^%.2f", in, i, log2(scale),
                             log2(prm->scale));
    }
    return PPNN_OK;
}

/* The directory of path ("." when it has none) into buf. */
static const char *dir_of(char *buf, size_t len, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ".";
    size_t n = (size_t)(slash - path);
    if (n == 0)
        return "/";
    if (n >= len)
        n = len - 1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return buf;
}

ppnn_status hnn_infer_file(hnn_file_stats *stats, const char *out_path, const char *in_path,
                           const hnn_plan *p, const uint32_t shape[3], const ckks_relin_key *rk,
                           const uint8_t key_id[CKKS_KEY_ID_BYTES], const hnn_file_opts *opts)
{
    hnn_file_stats dummy;
    hnn_file_opts dflt;
    memset(&dflt, 0, sizeof dflt);
    dflt.allow_spill = 1;
    const hnn_file_opts *o = opts ? opts : &dflt;
    if (!stats)
        stats = &dummy;
    memset(stats, 0, sizeof *stats);
    const ckks_params *prm = rk->params;
    /* The budget and the schedule first: nothing is read when the model cannot fit. */
    uint64_t mem = o->memory_bytes ? o->memory_bytes : hnn_memory_default();
    const uint64_t key = 2ull * prm->nq * (prm->nq + 1) * prm->n * sizeof(uint64_t);
    const uint64_t fixed = key + HNN_MEMORY_OVERHEAD;
    if (mem <= fixed)
        return ppnn_fail(PPNN_ERR_NOMEM, "memory budget %.0f MB is below the minimum this model "
                         "needs at N = %zu: %.0f MB (keys and process) + %.0f MB (ciphertexts)",
                         (double)mem / 1e6, prm->n, (double)fixed / 1e6,
                         (double)hnn_schedule_min_bytes(p, prm->n, 1, o->allow_spill) / 1e6);
    hnn_schedule_opts so = o->sched;
    so.budget_bytes = mem - fixed;
    so.inputs_streamed = 1;
    so.allow_spill = o->allow_spill;
    hnn_schedule *s = NULL;
    ppnn_status st = hnn_schedule_new(&s, p, prm->n, &so);
    if (st) {
        if (st == PPNN_ERR_NOMEM) { /* name the whole-process minimum */
            uint64_t min = hnn_schedule_min_bytes(p, prm->n, 1, o->allow_spill);
            uint64_t in_mem = hnn_schedule_min_bytes(p, prm->n, 1, 0);
            if (o->allow_spill)
                st = ppnn_fail(PPNN_ERR_NOMEM, "memory budget %.0f MB is below the minimum this "
                               "model needs at N = %zu: %.0f MB spilling to scratch (%.0f MB "
                               "without)", (double)mem / 1e6, prm->n, (double)(min + fixed) / 1e6,
                               (double)(in_mem + fixed) / 1e6);
            else
                st = ppnn_fail(PPNN_ERR_NOMEM, "memory budget %.0f MB is below the minimum this "
                               "model needs at N = %zu without spilling: %.0f MB",
                               (double)mem / 1e6, prm->n, (double)(in_mem + fixed) / 1e6);
        }
        return st;
    }
    stats->schedule_peak_bytes = s->peak_bytes;
    stats->budget_bytes = so.budget_bytes;
    ckks_params *pp = (ckks_params *)prm;
    ckks_batch_set *set = NULL;
    ckks_batch_set_writer *w = NULL;
    ckks_ct_pool *pool = NULL;
    ckks_batch_info info;
    uint64_t *images = NULL;
    size_t nb = 0;
    if ((st = ckks_batch_set_open(&set, &pp, in_path)))
        goto out;
    if (o->input_checksum)
        ckks_batch_set_trust(set, o->input_checksum);
    ckks_batch_set_info(&info, set, SIZE_MAX);
    nb = ckks_batch_set_batches(set);
    if (memcmp(info.key_id, key_id, CKKS_KEY_ID_BYTES) != 0) {
        st = ppnn_fail(PPNN_ERR_MISMATCH, "%s was encrypted under different keys than the "
                       "relinearization key (key ids differ)", in_path);
        goto out;
    }
    if (info.role != CKKS_BATCH_INPUT || info.packing != CKKS_PACKING_ELEMENT) {
        st = ppnn_fail(PPNN_ERR_MISMATCH, "%s is not an element-wise encrypted input batch",
                       in_path);
        goto out;
    }
    if (shape && memcmp(shape, info.shape, sizeof info.shape) != 0) {
        st = ppnn_fail(PPNN_ERR_MISMATCH, "the model expects %ux%ux%u inputs but %s holds "
                       "%ux%ux%u images", shape[0], shape[1], shape[2], in_path, info.shape[0],
                       info.shape[1], info.shape[2]);
        goto out;
    }
    if (!(images = malloc(nb * sizeof *images))) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t b = 0; b < nb; b++) {
        ckks_batch_info bi;
        ckks_batch_set_info(&bi, set, b);
        images[b] = bi.images;
        stats->images += bi.images;
    }
    stats->nbatches = nb;
    ckks_batch_info oinfo = info;
    oinfo.role = CKKS_BATCH_LOGITS;
    oinfo.shape[0] = (uint32_t)p->n_outputs, oinfo.shape[1] = 1, oinfo.shape[2] = 1;
    if ((st = ckks_batch_set_create(&w, out_path, prm, &oinfo, nb, images)))
        goto out;
    char dbuf[512];
    const char *scratch = o->scratch_dir ? o->scratch_dir : dir_of(dbuf, sizeof dbuf, out_path);
    prog_ctx pc = {o, stats, {0}, s};
    pc.pr.nbatches = nb, pc.pr.nstages = s->nstages;
    /* One buffer pool for every batch, capped at the schedule's peak (see hnn_exec_opts). */
    if ((st = ckks_ct_pool_new(&pool, prm->n, s->peak_bytes, o->pool_flags)))
        goto out;
    hnn_exec_opts eo = {.threads = o->threads, .kernel = o->kernel, .progress = on_step,
                        .progress_ctx = &pc, .on_tile = on_tile, .schedule = s,
                        .scratch_dir = scratch, .cancel = o->cancel,
                        .spilled_bytes = &stats->spill_bytes, .pool = pool,
                        .input_seconds = &stats->input_seconds};
    for (size_t b = 0; b < nb && !st; b++) {
        pc.pr.batch = b;
        double t0 = ppnn_now();
        ckks_batch_reader *r = NULL;
        reader_src rs = {NULL, NULL, pool};
        ckks_ciphertext *res = calloc(p->n_outputs, sizeof *res);
        if (!res)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        /* Opening verifies the batch's top hash; every input is verified by its digest when
         * the executor's loader reads it (on the loader's thread, cache-hot), so nothing is
         * computed on an unverified byte and a corrupted ciphertext fails the run naming it. */
        if (!st)
            st = ckks_batch_reader_open(&r, set, b);
        if (!st)
            st = check_batch(r, p, prm, in_path, b, nb);
        if (!st && !(rs.cache = calloc(p->n_inputs, sizeof *rs.cache)))
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        rs.r = r;
        hnn_source src = {p->n_inputs, reader_get, reader_release, &rs};
        if (!st)
            st = hnn_infer_source(res, p, &src, rk, &eo);
        stats->server_seconds += ppnn_now() - t0;
        if (!st)
            st = ckks_batch_set_append(w, res, p->n_outputs);
        for (size_t c = 0; res && c < p->n_outputs; c++)
            ckks_ct_free(&res[c]);
        for (size_t i = 0; rs.cache && i < p->n_inputs; i++)
            ckks_ct_free(&rs.cache[i]);
        free(res), free(rs.cache);
        ckks_batch_reader_close(r);
    }
    if (!st) {
        st = ckks_batch_set_finish(w);
        w = NULL;
    }
out:
    if (pool) {
        ckks_ct_pool_stats ps;
        ckks_ct_pool_get_stats(&ps, pool);
        stats->pool_peak_bytes = ps.peak;
        ckks_ct_pool_free(pool);
    }
    ckks_batch_set_abort(w);
    ckks_batch_set_close(set);
    hnn_schedule_free(s);
    free(images);
    return st;
}
