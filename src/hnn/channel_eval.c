/* Channel-wise packing: client encryption/decryption and the server's evaluation of a plan
 * (the steps of hnn/channel_inner.h). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    for (size_t r = 0; r < plan->reps; r++)
        for (size_t j = 0; j < plan->in_numel; j++)
            v[r * plan->frame + j] = x[j];
    ckks_plaintext pt = {0};
    ppnn_status st = ckks_encode(&pt, params, v, params->slots, plan->top_level, plan->in_scale);
    if (!st)
        st = ckks_encrypt_sk(ct, sk, &pt);
    ckks_pt_free(&pt);
    free(v);
    return st;
}

static ppnn_status rotate_or_copy(ckks_ciphertext *out, const ckks_ciphertext *a, int step,
                                  const ckks_galois_keys *gk)
{
    return step ? ckks_rotate(out, a, step, gk) : ckks_ct_copy(out, a);
}

/* The linear steps (channel_inner.h): acc = sum_g rot(sum_b pt[g*n1+b] (.) rot(x, baby[b]),
 * giant[g]), then the rotate-and-add reduction over the period/m blocks. baby holds n1
 * ciphertexts (scratch). */
static ppnn_status eval_linear(ckks_ciphertext *acc, const ch_step *s, const ckks_ciphertext *x,
                               const ckks_galois_keys *gk, ckks_ciphertext *baby,
                               ckks_ciphertext *inner, ckks_ciphertext *tmp)
{
    ppnn_status st = PPNN_OK;
    for (size_t b = 0; b < s->n1 && !st; b++)
        st = rotate_or_copy(&baby[b], x, s->baby[b], gk);
    for (size_t g = 0; g < s->n2 && !st; g++) {
        for (size_t b = 0; b < s->n1 && !st; b++) {
            const ckks_plaintext *d = &s->pt[g * s->n1 + b];
            st = b == 0 ? ckks_mul_plain(inner, &baby[0], d) : ckks_mul_plain(tmp, &baby[b], d);
            if (!st && b)
                st = ckks_add_inplace(inner, tmp);
        }
        if (st)
            break;
        if (g == 0)
            st = rotate_or_copy(acc, inner, s->giant[0], gk);
        else if (!(st = rotate_or_copy(tmp, inner, s->giant[g], gk)))
            st = ckks_add_inplace(acc, tmp);
    }
    for (size_t sh = s->m; sh < s->period && !st; sh <<= 1)
        if (!(st = ckks_rotate(tmp, acc, (int)sh, gk)))
            st = ckks_add_inplace(acc, tmp);
    return st;
}

static size_t max_baby(const hnn_channel_plan *plan)
{
    size_t n = 1;
    for (size_t i = 0; i < plan->nsteps; i++)
        if (plan->steps[i].kind != CH_STEP_ACT && plan->steps[i].n1 > n)
            n = plan->steps[i].n1;
    return n;
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
    const size_t nbaby = max_baby(plan);
    ckks_ciphertext x = {0}, tmp = {0}, inner = {0};
    ckks_ciphertext *baby = calloc(nbaby, sizeof *baby);
    ppnn_status st = PPNN_OK;
    if (!baby)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise evaluation)");
    TRY(ckks_ct_copy(&x, in));
    for (size_t i = 0; i < plan->nsteps; i++) {
        const ch_step *s = &plan->steps[i];
        switch (s->kind) {
        case CH_STEP_ACT:
            TRY(ckks_add_plain(&x, &x, &s->add));
            TRY(ckks_square(out, &x));
            TRY(ckks_relinearize(out, rk));
            break;
        case CH_STEP_CONV:
        case CH_STEP_DENSE:
            TRY(eval_linear(out, s, &x, gk, baby, &inner, &tmp));
            TRY(ckks_add_plain(out, out, &s->add));
            break;
        }
        TRY(ckks_rescale(out));
        if (i + 1 < plan->nsteps)
            TRY(ckks_ct_copy(&x, out));
    }
done:
    if (st)
        ppnn_error_context("channel-wise evaluation");
    ckks_ct_free(&x);
    ckks_ct_free(&tmp);
    ckks_ct_free(&inner);
    for (size_t b = 0; b < nbaby; b++)
        ckks_ct_free(&baby[b]);
    free(baby);
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
                                unsigned release_bits)
{
    if (!ckks_params_same(sk->params, plan->params) || !ckks_params_same(ct->params, plan->params))
        return ppnn_fail(PPNN_ERR_MISMATCH, "key or ciphertext of other parameters than the plan");
    return ckks_decrypt_release(logits, plan->nclasses, sk, ct, release_bits);
}
