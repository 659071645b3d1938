/* Running a model on an encrypted batch file: the one path shared by `ppnn infer` and the
 * service's workers (plan for the keys' parameters with as few levels as the model needs, refuse
 * what cannot fit in memory before reading the batch, validate the batch against model and keys,
 * run, write the logits atomically). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"

/* The budget a named preset offers, without building its parameter set. */
static void budget_for_preset(hnn_budget *b, const char *name)
{
    ckks_spec spec;
    memset(b, 0, sizeof *b);
    if (ckks_preset(&spec, name) != PPNN_OK)
        return;
    b->name = name;
    b->levels = spec.nq - 1;
    b->log2_scale = log2(spec.scale);
    b->log2_q0 = spec.q_bits[0] - 0.5;
    b->logn = spec.logn;
}

ppnn_status hnn_plan_for_params(hnn_plan **plan, const nn_model *m, const ckks_params *params)
{
    hnn_budget b, alt[2];
    hnn_budget_from_params(&b, params, params->logn == 13 ? "n13" : "n14");
    budget_for_preset(&alt[0], "n13");
    budget_for_preset(&alt[1], "n14");
    /* Use as few levels as the model needs: every unused prime above them would only make each
     * operation slower (the inputs are mod-switched down to the plan's top level). */
    for (size_t levels = 1; levels < b.levels; levels++) {
        hnn_budget fewer = b;
        fewer.levels = levels;
        if (hnn_plan_new(plan, m, &fewer, NULL, 0) == PPNN_OK)
            return PPNN_OK;
    }
    return hnn_plan_new(plan, m, &b, alt, 2);
}

/* MemAvailable from /proc/meminfo in bytes, or 0 when unknown. */
static uint64_t mem_available(void)
{
    FILE *fp = fopen("/proc/meminfo", "r");
    if (!fp)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(fp);
    return (uint64_t)kb * 1024;
}

struct hnn_batch_job {
    hnn_plan *plan;
    const ckks_relin_key *rk;
    ckks_params *params; /* the key's, borrowed: the batch must have been made for it */
    ckks_ciphertext *cts;
    size_t count;
    ckks_batch_info info;
};

void hnn_batch_job_free(hnn_batch_job *job)
{
    if (!job)
        return;
    for (size_t k = 0; job->cts && k < job->count; k++)
        ckks_ct_free(&job->cts[k]);
    free(job->cts);
    hnn_plan_free(job->plan);
    free(job);
}

static ppnn_status job_check(hnn_batch_job *job, const nn_model *m, const uint8_t *key_id,
                             const char *model_name, const char *in, const char *key_name)
{
    const hnn_plan *plan = job->plan;
    const ckks_batch_info *info = &job->info;
    if (memcmp(info->key_id, key_id, CKKS_KEY_ID_BYTES) != 0)
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s was encrypted under different keys than %s (key "
                         "ids differ); encrypt with the secret key that made this relin.key",
                         in, key_name);
    if (info->role != CKKS_BATCH_INPUT || info->packing != CKKS_PACKING_ELEMENT)
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s is not an element-wise encrypted input batch", in);
    if (info->shape[0] != m->input.c || info->shape[1] != m->input.h ||
        info->shape[2] != m->input.w || job->count != plan->n_inputs)
        return ppnn_fail(PPNN_ERR_MISMATCH, "model %s expects %ux%ux%u inputs but %s holds "
                         "%ux%ux%u images", model_name, m->input.c, m->input.h, m->input.w, in,
                         info->shape[0], info->shape[1], info->shape[2]);
    for (size_t k = 0; k < job->count; k++) {
        ckks_ciphertext *ct = &job->cts[k];
        if (ct->size != 2 || ct->level < plan->top_level)
            return ppnn_fail(PPNN_ERR_MISMATCH, "%s: ciphertext %zu is at level %zu, the model "
                             "needs %zu", in, k, ct->level, plan->top_level);
        if (ct->level > plan->top_level) {
            ppnn_status st = ckks_mod_switch(ct, plan->top_level);
            if (st)
                return st;
        }
    }
    return PPNN_OK;
}

ppnn_status hnn_batch_job_open(hnn_batch_job **out, const nn_model *m, const char *model_name,
                               const ckks_relin_key *rk, const ckks_params *params,
                               const uint8_t key_id[CKKS_KEY_ID_BYTES], const char *key_name,
                               const char *in)
{
    *out = NULL;
    hnn_batch_job *job = calloc(1, sizeof *job);
    if (!job)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    job->rk = rk;
    ppnn_status st = hnn_plan_for_params(&job->plan, m, params);
    if (st)
        goto fail;
    /* Refuse, before reading the batch, a model whose ciphertexts cannot fit in memory (rather
     * than being killed half-way). The batch file is read whole before it is unpacked. */
    uint64_t avail = mem_available();
    struct stat sb;
    uint64_t need = hnn_plan_peak_bytes(job->plan, params->n) +
                    (stat(in, &sb) == 0 ? (uint64_t)sb.st_size : 0);
    if (avail && need > avail - avail / 10) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "model %s needs about %.1f GB for its ciphertexts at N = "
                       "%zu but only %.1f GB of memory is available; use a machine with more "
                       "memory or a smaller model", model_name, (double)need / 1e9, params->n,
                       (double)avail / 1e9);
        goto fail;
    }
    job->params = (ckks_params *)params;
    if ((st = ckks_batch_load(&job->cts, &job->count, &job->info, &job->params, in)))
        goto fail;
    if ((st = job_check(job, m, key_id, model_name, in, key_name)))
        goto fail;
    *out = job;
    return PPNN_OK;
fail:
    hnn_batch_job_free(job);
    return st;
}

const hnn_plan *hnn_batch_job_plan(const hnn_batch_job *job) { return job->plan; }
const ckks_batch_info *hnn_batch_job_info(const hnn_batch_job *job) { return &job->info; }

ppnn_status hnn_batch_job_run(hnn_batch_job *job, const char *out, const hnn_exec_opts *opts)
{
    const hnn_plan *plan = job->plan;
    ckks_ciphertext *res = calloc(plan->n_outputs, sizeof *res);
    if (!res)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    ppnn_status st = hnn_infer(res, plan, job->cts, job->rk, opts);
    if (!st) {
        ckks_batch_info oinfo = job->info;
        oinfo.role = CKKS_BATCH_LOGITS;
        oinfo.shape[0] = (uint32_t)plan->n_outputs, oinfo.shape[1] = 1, oinfo.shape[2] = 1;
        st = ckks_batch_save(out, res, plan->n_outputs, &oinfo);
    }
    for (size_t k = 0; k < plan->n_outputs; k++)
        ckks_ct_free(&res[k]);
    free(res);
    return st;
}
