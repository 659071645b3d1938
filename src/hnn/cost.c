/* The packing cost model (hnn.h, "packing choice").
 *
 * Level scaling. Figures are measured at the top level L (k = L+1 primes). An operation on
 * ciphertexts at level l costs, relative to the top:
 *   - add, plaintext/scalar products, squares, linear-kernel MACs: proportional to the primes,
 *     (l+1)/(L+1) (MACs are counted per prime already, so they need no scaling);
 *   - rescale: one inverse and l forward NTTs: (l+1)/(L+1) as well;
 *   - key switching (relinearize, rotate): (k+1)(k+2) NTTs and 2k(k+1) products per coefficient
 *     at k = l+1 primes (keyswitch.c), so ((l+2)(l+3)) / ((L+2)(L+3));
 *   - a hoisted rotation: the inner product and the mod-down, ~ (l+1)(l+2) / ((L+1)(L+2)).
 * Ring degree: measured figures belong to one N; for another N' every cost scales by
 * N' log N' / (N log N) (hnn_op_costs_default only). */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hnn/channel_inner.h"
#include "hnn/inner.h"

void hnn_op_costs_default(hnn_op_costs *c, unsigned logn)
{
    /* `ppnn bench costs --logn 13` and `--logn 14` on the development machine (session 6,
     * trainings paused; the key switches with their per-thread scratch), see
     * docs/compare/README.md; seconds. The two rotation figures were scaled in session 7 by
     * the ratio new / old of interleaved medians of the same bench (n13: 5 rounds, rotate
     * 1671 -> 1452 us, hoisted 2105 -> 1050 us; n14: 3 rounds, 10618 -> 9581 and
     * 12613 -> 6755 us; the machine ran slower that day, so absolute figures were not
     * mixed), when Galois keys moved to the hoisting layout (keyswitch.c): a hoisted rotation
     * no longer gathers the decomposition's digit rows and now costs less than a plain one.
     * The n13 dense MAC cost too (session 7): below 2^28 the linear kernel takes its 32-bit
     * multiply path, single-thread 100 x 845 dense product 19.6 -> 24.9 G MAC/s on a 28-bit
     * prime (2 interleaved rounds each; the 38-bit q_0 unchanged), so the chain's average per
     * multiply-add scales by (1 + 5 * 19.6 / 24.9) / 6 = 0.82; the banded sparse kernel did
     * not change measurably (12.1-13.5 G MAC/s both). `ppnn bench costs` now times both kinds
     * of prime and averages over the chain. */
    static const hnn_op_costs n13 = {13, 6, 0.0359e-9, 0.0766e-9, 24.3e-6, 43.8e-6, 42.4e-6,
                                     837e-6, 201e-6, 753e-6, 587e-6};
    static const hnn_op_costs n14 = {14, 11, 0.0437e-9, 0.0775e-9, 74.7e-6, 135.6e-6, 147.0e-6,
                                     7525e-6, 940e-6, 8061e-6, 5942e-6};
    const hnn_op_costs *ref = logn >= 14 ? &n14 : &n13;
    *c = *ref;
    if (logn != ref->logn) {
        double f = ldexp(1.0, (int)logn - (int)ref->logn) * logn / ref->logn;
        c->add *= f, c->mul_plain *= f, c->square *= f, c->relin *= f, c->rescale *= f;
        c->rotate *= f, c->rotate_hoisted *= f;
        c->logn = logn;
    }
}

static const struct {
    const char *name;
    size_t off;
} fields[] = {
    {"mac_dense", offsetof(hnn_op_costs, mac_dense)},
    {"mac_sparse", offsetof(hnn_op_costs, mac_sparse)},
    {"add", offsetof(hnn_op_costs, add)},
    {"mul_plain", offsetof(hnn_op_costs, mul_plain)},
    {"square", offsetof(hnn_op_costs, square)},
    {"relin", offsetof(hnn_op_costs, relin)},
    {"rescale", offsetof(hnn_op_costs, rescale)},
    {"rotate", offsetof(hnn_op_costs, rotate)},
    {"rotate_hoisted", offsetof(hnn_op_costs, rotate_hoisted)},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

ppnn_status hnn_op_costs_parse(hnn_op_costs *c, const char *json, size_t len)
{
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ppnn_fail(PPNN_ERR_FORMAT, "operation costs: not a JSON object");
    }
    ppnn_status st = PPNN_OK;
    const cJSON *logn = cJSON_GetObjectItemCaseSensitive(root, "logn");
    const cJSON *nq = cJSON_GetObjectItemCaseSensitive(root, "nq");
    if (!cJSON_IsNumber(logn) || logn->valuedouble < CKKS_MIN_LOGN ||
        logn->valuedouble > CKKS_MAX_LOGN || !cJSON_IsNumber(nq) || nq->valuedouble < 1 ||
        nq->valuedouble > CKKS_MAX_PRIMES)
        st = ppnn_fail(PPNN_ERR_FORMAT, "operation costs: \"logn\" and \"nq\" must be numbers "
                       "(%d..%d, 1..%d)", CKKS_MIN_LOGN, CKKS_MAX_LOGN, CKKS_MAX_PRIMES);
    else {
        c->logn = (unsigned)logn->valuedouble;
        c->nq = (size_t)nq->valuedouble;
    }
    for (size_t i = 0; i < NFIELDS && !st; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, fields[i].name);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(v->valuedouble > 0) ||
            v->valuedouble > 1e3)
            st = ppnn_fail(PPNN_ERR_FORMAT, "operation costs: \"%s\" must be a number of "
                           "seconds in (0, 1000]", fields[i].name);
        else
            *(double *)((char *)c + fields[i].off) = v->valuedouble;
    }
    cJSON_Delete(root);
    return st;
}

char *hnn_op_costs_json(const hnn_op_costs *c)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddNumberToObject(root, "logn", c->logn) &&
             cJSON_AddNumberToObject(root, "nq", (double)c->nq);
    for (size_t i = 0; i < NFIELDS && ok; i++)
        ok = cJSON_AddNumberToObject(root, fields[i].name,
                                     *(const double *)((const char *)c + fields[i].off)) != NULL;
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return s;
}

/* Relative cost of an operation at `level` against the top level (see the top of the file). */
static double lin(const hnn_op_costs *c, size_t level)
{
    return (double)(level + 1) / (double)c->nq;
}
static double ks(const hnn_op_costs *c, size_t level)
{
    double k = (double)c->nq;
    return (double)((level + 2) * (level + 3)) / ((k + 1) * (k + 2));
}
static double hoist(const hnn_op_costs *c, size_t level)
{
    double k = (double)c->nq;
    return (double)((level + 1) * (level + 2)) / (k * (k + 1));
}

/* Components of step k's inputs: the executor feeds an ACT step's squares (3 components,
 * relinearized only after the next linear step) straight into that step. */
static size_t step_comps(const hnn_plan *p, size_t k)
{
    return k > 0 && p->steps[k - 1].kind == HNN_STEP_ACT ? 3 : 2;
}

double hnn_step_macs(const hnn_plan *p, size_t k, size_t n)
{
    assert(k < p->nsteps);
    const hnn_step *s = &p->steps[k];
    if (s->kind == HNN_STEP_ACT)
        return 0;
    double terms = s->dense ? (double)s->n_out * (double)s->n_in : (double)s->nnz;
    return terms * (double)step_comps(p, k) * (double)(s->level_in + 1) * (double)n;
}

double hnn_plan_cost(const hnn_plan *p, const hnn_op_costs *c, size_t n)
{
    double t = 0;
    for (size_t i = 0; i < p->nsteps; i++) {
        const hnn_step *s = &p->steps[i];
        if (s->kind == HNN_STEP_ACT) {
            size_t sq = 0;
            for (size_t j = 0; j < s->n_in; j++)
                sq += s->square[j] != 0;
            t += (double)sq * c->square * lin(c, s->level_in) +
                 (double)s->n_in * c->add * lin(c, s->level_in);
            continue;
        }
        t += hnn_step_macs(p, i, n) * (s->dense ? c->mac_dense : c->mac_sparse);
        if (step_comps(p, i) == 3)
            t += (double)s->n_out * c->relin * ks(c, s->level_in);
        for (size_t d = 0; d < s->drop; d++)
            t += (double)s->n_out * c->rescale * lin(c, s->level_in - d);
    }
    return t;
}

double hnn_channel_plan_cost(const hnn_channel_plan *p, const hnn_op_costs *c)
{
    double t = 0;
    for (size_t i = 0; i < p->nsteps; i++) {
        const ch_step *s = &p->steps[i];
        const size_t l = s->level;
        const double no = (double)s->nout;
        ch_counts k;
        _ch_step_counts(&k, s);
        switch (s->kind) {
        case CH_STEP_ACT:
            t += no * ((c->add + c->square + c->rescale) * lin(c, l) + c->relin * ks(c, l));
            break;
        case CH_STEP_SCALE: t += no * (c->mul_plain + c->rescale) * lin(c, l); break;
        case CH_STEP_POOL:
            t += no * ((double)(k.babies + k.giants) * c->rotate_hoisted * hoist(c, l) +
                       (double)(s->n1 + s->n2) * c->add * lin(c, l));
            break;
        case CH_STEP_LINEAR:
            t += (double)(s->nin * k.babies) * c->rotate_hoisted * hoist(c, l) +
                 (double)(k.giant_rotations + k.reductions) * c->rotate * ks(c, l) +
                 (double)k.products * (c->mul_plain + c->add) * lin(c, l) +
                 no * c->rescale * lin(c, l);
            break;
        }
    }
    return t;
}

void hnn_packing_choose(hnn_packing_choice *out, double elem_batch, size_t slots,
                        double chan_image, size_t images, int threads)
{
    const double T = threads > 0 ? threads : 1;
    const size_t th = threads > 0 ? (size_t)threads : 1;
    size_t batches = (images + slots - 1) / slots, rounds = (images + th - 1) / th;
    out->element_seconds = (double)batches * elem_batch / T;
    out->channel_seconds = (double)rounds * chan_image;
    out->packing = out->channel_seconds < out->element_seconds ? HNN_PACK_CHANNEL
                                                               : HNN_PACK_ELEMENT;
    /* Within one batch the element-wise time is flat and the channel-wise one grows by one
     * image per thread and round: the first image count where element-wise is no slower. */
    double rounds_even = ceil(elem_batch / T / chan_image);
    double cross = rounds_even * T - (T - 1);
    if (cross < 1)
        cross = 1;
    out->crossover = cross > (double)slots ? slots : (size_t)cross;
}

const char *hnn_packing_name(hnn_packing p)
{
    return p == HNN_PACK_CHANNEL ? "channel-wise" : "element-wise";
}

/* The predicted cost of the model under one packing, or the planner's refusal. */
static ppnn_status plan_costs(double *elem_batch, double *chan_image, const nn_model *m,
                              const ckks_params *params, const char *preset,
                              const hnn_op_costs *c, int channel)
{
    ppnn_status st;
    if (channel) {
        hnn_channel_plan *cp = NULL;
        if (!(st = hnn_channel_plan_new(&cp, m, params)))
            *chan_image = hnn_channel_plan_cost(cp, c);
        hnn_channel_plan_free(cp);
    } else {
        hnn_plan *ep = NULL; /* the plan infer runs */
        if (!(st = hnn_plan_for_params(&ep, m, params, preset)))
            *elem_batch = hnn_plan_cost(ep, c, params->n);
        hnn_plan_free(ep);
    }
    return st;
}

ppnn_status hnn_op_costs_check(const hnn_op_costs *c, const ckks_params *params)
{
    if (c->logn != params->logn)
        return ppnn_fail(PPNN_ERR_MISMATCH, "operation costs measured at N = 2^%u, the "
                         "parameters have N = 2^%u (run `ppnn bench costs --logn %u --json`)",
                         c->logn, params->logn, params->logn);
    return PPNN_OK;
}

ppnn_status hnn_packing_predict(hnn_packing_auto *out, const nn_model *elem,
                                const nn_model *chan, const ckks_params *params,
                                const char *preset_name, const hnn_op_costs *c, int threads)
{
    memset(out, 0, sizeof *out);
    ppnn_status st = hnn_op_costs_check(c, params);
    if (st)
        return st;
    out->slots = params->slots;
    out->threads = threads > 0 ? threads : omp_get_max_threads();
    /* The refusal of one planner is a reason, not an error: keep its message. */
    ppnn_status se = plan_costs(&out->elem_batch, &out->chan_image, elem, params, preset_name,
                                c, 0);
    if (se)
        snprintf(out->why_element, sizeof out->why_element, "%s", ppnn_last_error());
    ppnn_status sc = plan_costs(&out->elem_batch, &out->chan_image, chan, params, preset_name,
                                c, 1);
    if (sc)
        snprintf(out->why_channel, sizeof out->why_channel, "%s", ppnn_last_error());
    out->element_ok = !se, out->channel_ok = !sc;
    if (se && sc)
        return ppnn_fail(se, "%s", out->why_element); /* neither packing can run the model */
    return PPNN_OK;
}

ppnn_status hnn_packing_decide_images(hnn_packing_auto *d, size_t images)
{
    if (images == 0 || images > (size_t)1 << 30)
        return ppnn_fail(PPNN_ERR_PARAM, "packing choice: %zu images (1..2^30)", images);
    assert(d->element_ok || d->channel_ok); /* hnn_packing_predict succeeded */
    d->images = images;
    hnn_packing_choice *ch = &d->choice;
    if (!d->channel_ok || !d->element_ok) {
        memset(ch, 0, sizeof *ch);
        ch->packing = d->channel_ok ? HNN_PACK_CHANNEL : HNN_PACK_ELEMENT;
        snprintf(d->reason, sizeof d->reason, "%s (the %s planner refuses the model: %s)",
                 hnn_packing_name(ch->packing), d->channel_ok ? "element-wise" : "channel-wise",
                 d->channel_ok ? d->why_element : d->why_channel);
        return PPNN_OK;
    }
    hnn_packing_choose(ch, d->elem_batch, d->slots, d->chan_image, images, d->threads);
    const int chan_wins = ch->packing == HNN_PACK_CHANNEL;
    char cross[96];
    /* crossover == slots with channel-wise still cheaper: it wins for every count of a batch */
    if (ch->crossover >= d->slots && ch->channel_seconds < ch->element_seconds)
        snprintf(cross, sizeof cross, "channel-wise up to at least %zu images", d->slots);
    else
        snprintf(cross, sizeof cross, "element-wise from %zu images", ch->crossover);
    snprintf(d->reason, sizeof d->reason,
             "%s (%zu image%s: %.3g s vs %.3g s %s predicted on %d thread%s; %s)",
             hnn_packing_name(ch->packing), images, images == 1 ? "" : "s",
             chan_wins ? ch->channel_seconds : ch->element_seconds,
             chan_wins ? ch->element_seconds : ch->channel_seconds,
             hnn_packing_name(chan_wins ? HNN_PACK_ELEMENT : HNN_PACK_CHANNEL), d->threads,
             d->threads == 1 ? "" : "s", cross);
    return PPNN_OK;
}

ppnn_status hnn_packing_decide(hnn_packing_auto *out, const nn_model *elem, const nn_model *chan,
                               const ckks_params *params, const char *preset_name,
                               const hnn_op_costs *c, size_t images, int threads)
{
    ppnn_status st = hnn_packing_predict(out, elem, chan, params, preset_name, c, threads);
    return st ? st : hnn_packing_decide_images(out, images);
}
