/* Channel-wise packing: client encryption/decryption and the server's evaluation of a plan
 * (the steps of hnn/channel_inner.h). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hnn/channel_inner.h"

#define TRY(x)                                                                                 \
    do {                                                                                       \
        if ((st = (x)))                                                                        \
            goto done;                                                                         \
    } while (0)

ppnn_status hnn_channel_encrypt(ckks_ciphertext *ct, const hnn_channel_plan *plan,
                                const ckks_secret_key *sk, const float *x)
{
    const ckks_params *params = plan->params;
    if (!ckks_params_same(sk->params, params))
        return ppnn_fail(PPNN_ERR_MISMATCH, "secret key of other parameters than the plan");
    double *v = calloc(params->slots, sizeof *v);
    if (!v)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise encryption)");
    /* Frame r*C + c holds channel c of copy r (channel_inner.h). */
    for (size_t r = 0; r < plan->reps; r++)
        for (size_t c = 0; c < plan->in_c; c++)
            for (size_t j = 0; j < plan->in_hw; j++)
                v[(r * plan->in_c + c) * plan->frame + j] = x[c * plan->in_hw + j];
    ckks_plaintext pt = {0};
    ppnn_status st = ckks_encode(&pt, params, v, params->slots, plan->top_level, plan->in_scale);
    if (!st)
        st = ckks_encrypt_sk(ct, sk, &pt);
    ckks_pt_free(&pt);
    sodium_memzero(v, params->slots * sizeof *v);
    free(v);
    return st;
}

/* Per-image scratch of the evaluation. */
typedef struct ch_work {
    ckks_ciphertext *cur, *next; /* max_cts each */
    ckks_ciphertext *baby;       /* max over steps of nin * n1 */
    ckks_ciphertext inner, tmp;
    size_t nbaby, ncts;
} ch_work;

static void work_free(ch_work *w)
{
    for (size_t i = 0; i < w->ncts; i++) {
        if (w->cur)
            ckks_ct_free(&w->cur[i]);
        if (w->next)
            ckks_ct_free(&w->next[i]);
    }
    for (size_t i = 0; w->baby && i < w->nbaby; i++)
        ckks_ct_free(&w->baby[i]);
    ckks_ct_free(&w->inner);
    ckks_ct_free(&w->tmp);
    free(w->cur);
    free(w->next);
    free(w->baby);
}

static ppnn_status work_new(ch_work *w, const hnn_channel_plan *plan)
{
    memset(w, 0, sizeof *w);
    w->nbaby = 1;
    for (size_t i = 0; i < plan->nsteps; i++) {
        const ch_step *s = &plan->steps[i];
        size_t need = s->kind == CH_STEP_LINEAR ? s->nin * s->n1 : s->n1 > s->n2 ? s->n1 : s->n2;
        if (need > w->nbaby)
            w->nbaby = need;
    }
    w->ncts = plan->max_cts;
    w->cur = calloc(w->ncts, sizeof *w->cur);
    w->next = calloc(w->ncts, sizeof *w->next);
    w->baby = calloc(w->nbaby, sizeof *w->baby);
    if (!w->cur || !w->next || !w->baby) {
        work_free(w);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise evaluation)");
    }
    return PPNN_OK;
}

/* acc (+)= x, where acc may not hold a value yet (*have = 0). */
static ppnn_status accumulate(ckks_ciphertext *acc, int *have, const ckks_ciphertext *x)
{
    if (*have)
        return ckks_add_inplace(acc, x);
    *have = 1;
    return ckks_ct_copy(acc, x);
}

/* LINEAR (channel_inner.h): the baby rotations of every input ciphertext (hoisted), then per
 * output ciphertext the giant steps over inner sums, the reduction, the bias, the rescale. */
static ppnn_status eval_linear(ckks_ciphertext *out, const ch_step *s, const ckks_ciphertext *in,
                               const ckks_galois_keys *gk, ch_work *w)
{
    ppnn_status st = PPNN_OK;
    for (size_t g = 0; g < s->nin && !st; g++)
        st = ckks_rotate_hoisted(&w->baby[g * s->n1], &in[g], s->baby, s->n1, gk);
    for (size_t h = 0; h < s->nout && !st; h++) {
        int have_acc = 0;
        for (size_t gi = 0; gi < s->n2 && !st; gi++) {
            int have_inner = 0;
            const size_t base = (h * s->n2 + gi) * s->nin * s->n1;
            for (size_t t = 0; t < s->nin * s->n1 && !st; t++) {
                if (!s->nz[base + t])
                    continue;
                if (!(st = ckks_mul_plain(&w->tmp, &w->baby[t], &s->pt[base + t])))
                    st = accumulate(&w->inner, &have_inner, &w->tmp);
            }
            if (st || !have_inner)
                continue;
            if (s->giant[gi] == 0) {
                st = accumulate(&out[h], &have_acc, &w->inner);
            } else if (!(st = ckks_rotate(&w->tmp, &w->inner, s->giant[gi], gk))) {
                st = accumulate(&out[h], &have_acc, &w->tmp);
            }
        }
        if (!st && !have_acc) /* the planner keeps one plaintext per output (channel.c) */
            st = ppnn_fail(PPNN_ERR_PARAM, "channel-wise plan: output %zu has no terms", h);
        for (size_t sh = s->m; sh < s->period && !st; sh <<= 1)
            if (!(st = ckks_rotate(&w->tmp, &out[h], (int)sh, gk)))
                st = ckks_add_inplace(&out[h], &w->tmp);
        if (!st && !(st = ckks_add_plain(&out[h], &out[h], &s->add[h])))
            st = ckks_rescale(&out[h]);
    }
    return st;
}

/* POOL: window sums, both rotation sets hoisted (the giant steps all rotate one sum). */
static ppnn_status eval_pool(ckks_ciphertext *out, const ch_step *s, const ckks_ciphertext *in,
                             const ckks_galois_keys *gk, ch_work *w)
{
    ppnn_status st = PPNN_OK;
    for (size_t h = 0; h < s->nout && !st; h++) {
        int have = 0;
        st = ckks_rotate_hoisted(w->baby, &in[h], s->baby, s->n1, gk);
        for (size_t b = 0; b < s->n1 && !st; b++)
            st = accumulate(&w->inner, &have, &w->baby[b]);
        if (!st)
            st = ckks_rotate_hoisted(w->baby, &w->inner, s->giant, s->n2, gk);
        have = 0;
        for (size_t g = 0; g < s->n2 && !st; g++)
            st = accumulate(&out[h], &have, &w->baby[g]);
    }
    return st;
}

static ppnn_status eval_step(ckks_ciphertext *out, const ch_step *s, const ckks_ciphertext *in,
                             const ckks_relin_key *rk, const ckks_galois_keys *gk, ch_work *w)
{
    ppnn_status st = PPNN_OK;
    switch (s->kind) {
    case CH_STEP_LINEAR: return eval_linear(out, s, in, gk, w);
    case CH_STEP_POOL: return eval_pool(out, s, in, gk, w);
    case CH_STEP_ACT:
        for (size_t h = 0; h < s->nout && !st; h++)
            if (!(st = ckks_add_plain(&w->tmp, &in[h], &s->add[h])) &&
                !(st = ckks_square(&out[h], &w->tmp)) && !(st = ckks_relinearize(&out[h], rk)))
                st = ckks_rescale(&out[h]);
        return st;
    case CH_STEP_SCALE:
        for (size_t h = 0; h < s->nout && !st; h++)
            if (!(st = ckks_mul_plain(&out[h], &in[h], &s->pt[h])))
                st = ckks_rescale(&out[h]);
        return st;
    }
    return ppnn_fail(PPNN_ERR_PARAM, "channel-wise plan: unknown step kind %d", (int)s->kind);
}

ppnn_status hnn_channel_eval(ckks_ciphertext *out, const hnn_channel_plan *plan,
                             const ckks_ciphertext *in, const ckks_relin_key *rk,
                             const ckks_galois_keys *gk)
{
    if (!ckks_params_same(in->params, plan->params) || !ckks_params_same(rk->params, plan->params)
        || !ckks_params_same(gk->params, plan->params))
        return ppnn_fail(PPNN_ERR_MISMATCH,
                         "ciphertext or evaluation keys of other parameters than the plan");
    if (in->level != plan->top_level || in->size != 2)
        return ppnn_fail(PPNN_ERR_MISMATCH,
                         "input ciphertext at level %zu (size %zu); the plan expects a fresh "
                         "ciphertext at level %zu",
                         in->level, in->size, plan->top_level);
    ch_work w;
    ppnn_status st = work_new(&w, plan);
    if (st)
        return st;
    TRY(ckks_ct_copy(&w.cur[0], in));
    for (size_t i = 0; i < plan->nsteps; i++) {
        TRY(eval_step(w.next, &plan->steps[i], w.cur, rk, gk, &w));
        ckks_ciphertext *t = w.cur;
        w.cur = w.next;
        w.next = t;
    }
    TRY(ckks_ct_copy(out, &w.cur[0]));
done:
    if (st)
        ppnn_error_context("channel-wise evaluation");
    work_free(&w);
    return st;
}

ppnn_status hnn_channel_eval_batch(ckks_ciphertext *out, const hnn_channel_plan *plan,
                                   const ckks_ciphertext *in, size_t count,
                                   const ckks_relin_key *rk, const ckks_galois_keys *gk,
                                   int threads)
{
    ppnn_first_error first = {0};
    int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t i = 0; i < count; i++) {
        if (ppnn_first_error_set(&first))
            continue;
        ppnn_status s = hnn_channel_eval(&out[i], plan, &in[i], rk, gk);
        if (s) {
            ppnn_error_context("image %zu", i);
            ppnn_first_error_keep(&first, s);
        }
    }
    return ppnn_first_error_status(&first);
}

ppnn_status hnn_channel_decrypt(double *logits, const hnn_channel_plan *plan,
                                const ckks_secret_key *sk, const ckks_ciphertext *ct,
                                const ckks_flood *flood)
{
    if (!ckks_params_same(sk->params, plan->params) || !ckks_params_same(ct->params, plan->params))
        return ppnn_fail(PPNN_ERR_MISMATCH, "key or ciphertext of other parameters than the plan");
    return ckks_decrypt_release(logits, plan->nclasses, sk, ct, flood);
}
