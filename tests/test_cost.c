/* The packing cost model: the costs' JSON round trip and refusals, the choice and its crossover
 * against a brute-force scan, and that predicted costs follow the plans' operation counts
 * (more work, more seconds; element-wise batch cost independent of the images). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"

static void test_json(void)
{
    hnn_op_costs c, d;
    hnn_op_costs_default(&c, 13);
    char *s = hnn_op_costs_json(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_OK(hnn_op_costs_parse(&d, s, strlen(s)));
    CHECK(d.logn == 13 && d.nq == c.nq && d.relin == c.relin && d.mac_dense == c.mac_dense &&
          d.rotate_hoisted == c.rotate_hoisted);
    /* Each field missing, or zero, negative or infinite, is refused; so is a non-object. */
    static const char *const names[] = {"mac_dense", "mac_sparse", "add", "mul_plain", "square",
                                        "relin", "rescale", "rotate", "rotate_hoisted"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char key[64], *bad = malloc(strlen(s) + 64);
        snprintf(key, sizeof key, "\"%s\":", names[i]);
        char *at = strstr(s, key);
        CHECK_MSG(at != NULL, "%s", key);
        if (!at || !bad) {
            free(bad);
            continue;
        }
        static const char *const vals[] = {"0", "-1", "1e999", "\"x\""};
        for (size_t v = 0; v < 4; v++) {
            char *end = at + strlen(key);
            while (*end == ' ' || *end == '\t')
                end++;
            size_t n = strspn(end, "0123456789.eE-+");
            snprintf(bad, strlen(s) + 64, "%.*s%s%s", (int)(end - s), s, vals[v], end + n);
            CHECK_ERR(hnn_op_costs_parse(&d, bad, strlen(bad)), PPNN_ERR_FORMAT);
        }
        /* Renamed key = missing field. */
        snprintf(bad, strlen(s) + 64, "%.*s\"zz_%s", (int)(at - s), s, at + 1);
        CHECK_ERR(hnn_op_costs_parse(&d, bad, strlen(bad)), PPNN_ERR_FORMAT);
        free(bad);
    }
    CHECK_ERR(hnn_op_costs_parse(&d, "[1,2]", 5), PPNN_ERR_FORMAT);
    CHECK_ERR(hnn_op_costs_parse(&d, "{", 1), PPNN_ERR_FORMAT);
    CHECK_ERR(hnn_op_costs_parse(&d, s, strlen(s) / 2), PPNN_ERR_FORMAT);
    free(s);
}

/* The choice agrees with a direct comparison at every image count, and the crossover is the
 * first count where element-wise is no slower. */
static void test_choice(void)
{
    static const struct {
        double elem, chan;
        size_t slots;
        int threads;
    } cases[] = {{0.92, 0.033, 4096, 2}, {0.92, 0.033, 4096, 1}, {40, 0.7, 8192, 2},
                 {0.01, 1.0, 4096, 2},   {100, 0.001, 512, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        hnn_packing_choice ch;
        size_t first = 0;
        for (size_t b = 1; b <= 3 * cases[k].slots; b++) {
            hnn_packing_choose(&ch, cases[k].elem, cases[k].slots, cases[k].chan, b,
                               cases[k].threads);
            double t = cases[k].threads, e = ceil((double)b / (double)cases[k].slots) *
                                                 cases[k].elem / t,
                   c = ceil((double)b / t) * cases[k].chan;
            CHECK(fabs(ch.element_seconds - e) < 1e-9 && fabs(ch.channel_seconds - c) < 1e-9);
            CHECK(ch.packing == (c < e ? HNN_PACK_CHANNEL : HNN_PACK_ELEMENT));
            if (!first && b <= cases[k].slots && c >= e)
                first = b;
        }
        if (!first)
            first = cases[k].slots;
        CHECK_MSG(ch.crossover == first, "case %zu: crossover %zu, scan %zu", k, ch.crossover,
                  first);
    }
}

static void build(nn_model *m, uint32_t c1, uint32_t hidden)
{
    nn_model_init(m, "cost", (nn_shape){1, 8, 8});
    CHECK_OK(nn_model_add_conv2d(m, c1, 3, 2, 1));
    CHECK_OK(nn_model_add_poly(m, NN_POLY_CHANNEL));
    CHECK_OK(nn_model_add_flatten(m));
    CHECK_OK(nn_model_add_dense(m, hidden));
    CHECK_OK(nn_model_add_poly(m, NN_POLY_CHANNEL));
    CHECK_OK(nn_model_add_dense(m, 3));
    CHECK_OK(nn_model_finish(m));
    m->nclasses = 3;
    for (size_t li = 0; li < m->nlayers; li++) {
        nn_layer *l = &m->layers[li];
        for (size_t i = 0; i < l->nweight; i++)
            l->weight[i] = 0.05f * (float)((i * 7) % 11) - 0.25f;
        for (size_t i = 0; i < l->ncoef; i++)
            l->coef[i] = i < l->ncoef / 3 ? 0.1f : 0.3f;
    }
}

static void test_plan_costs(void)
{
    ckks_params *p = ctu_params(10, 6, 45, 30, 50);
    hnn_op_costs c;
    hnn_op_costs_default(&c, 10);
    hnn_budget bud;
    hnn_budget_from_params(&bud, p, "test");
    double ce[2] = {0}, cc[2] = {0};
    for (int big = 0; big < 2; big++) {
        nn_model m;
        build(&m, big ? 4 : 2, big ? 24 : 8);
        hnn_plan *ep = NULL;
        hnn_channel_plan *cp = NULL;
        CHECK_OK(hnn_plan_new(&ep, &m, &bud, NULL, 0));
        CHECK_OK(hnn_channel_plan_new(&cp, &m, p));
        if (ep)
            ce[big] = hnn_plan_cost(ep, &c, p->n);
        if (cp)
            cc[big] = hnn_channel_plan_cost(cp, &c);
        hnn_plan_free(ep);
        hnn_channel_plan_free(cp);
        nn_model_free(&m);
    }
    CHECK(ce[0] > 0 && cc[0] > 0 && ce[1] > ce[0] && cc[1] > cc[0]);
    /* Costs scale linearly with the operation costs. */
    nn_model m;
    build(&m, 2, 8);
    hnn_plan *ep = NULL;
    CHECK_OK(hnn_plan_new(&ep, &m, &bud, NULL, 0));
    hnn_op_costs c2 = c;
    double *f = &c2.mac_dense;
    for (double *q = f; q <= &c2.rotate_hoisted; q++)
        *q *= 2;
    if (ep)
        CHECK(fabs(hnn_plan_cost(ep, &c2, p->n) - 2 * ce[0]) < 1e-9 * ce[0] + 1e-15);
    hnn_plan_free(ep);
    nn_model_free(&m);
    ckks_params_free(p);
}

/* hnn_step_macs: weights x components (2 for the encrypted inputs, 3 for an ACT step's
 * unrelinearized squares) x primes x N; nothing for an ACT step. */
static void test_step_macs(void)
{
    ckks_params *p = ctu_params(10, 6, 45, 30, 50);
    hnn_budget bud;
    hnn_budget_from_params(&bud, p, "test");
    nn_model m;
    build(&m, 2, 8);
    hnn_plan *ep = NULL;
    CHECK_OK(hnn_plan_new(&ep, &m, &bud, NULL, 0));
    CHECK(ep && ep->nsteps == 5);
    if (ep && ep->nsteps == 5) {
        const hnn_step *s = ep->steps;
        const double n = (double)p->n;
        /* conv 3x3/2, pad 1, on 8x8: 2 + 3 + 3 + 3 taps per axis in bounds, 2 channels. */
        CHECK(s[0].kind == HNN_STEP_LINEAR && !s[0].dense && s[0].nnz <= 2 * 11 * 11);
        CHECK(hnn_step_macs(ep, 0, p->n) == (double)s[0].nnz * 2 * (double)(s[0].level_in + 1) * n);
        CHECK(hnn_step_macs(ep, 1, p->n) == 0);
        CHECK(s[2].kind == HNN_STEP_LINEAR && s[2].dense && s[2].n_in == 32 && s[2].n_out == 8);
        CHECK(hnn_step_macs(ep, 2, p->n) == 8.0 * 32 * 3 * (double)(s[2].level_in + 1) * n);
        CHECK(hnn_step_macs(ep, 4, p->n) == 3.0 * 8 * 3 * (double)(s[4].level_in + 1) * n);
    }
    hnn_plan_free(ep);
    nn_model_free(&m);
    ckks_params_free(p);
}

/* hnn_packing_decide: few images channel-wise, a full batch element-wise, the choice switches
 * once at the crossover, costs are honoured, bad input refused, a planner's refusal a reason. */
static void test_decide(void)
{
    ckks_params *p = ctu_params(10, 6, 45, 30, 50);
    hnn_op_costs c;
    hnn_op_costs_default(&c, 10);
    nn_model m;
    build(&m, 2, 32); /* hidden 32: at 8 the default costs (session 6) put the crossover at 1 image */
    hnn_packing_auto d;
    CHECK_OK(hnn_packing_decide(&d, &m, &m, p, "test", &c, 1, 2));
    CHECK(d.element_ok && d.channel_ok && d.elem_batch > 0 && d.chan_image > 0);
    CHECK_MSG(d.choice.packing == HNN_PACK_CHANNEL, "1 image: %s", d.reason);
    CHECK(strstr(d.reason, "channel-wise (1 image: ") == d.reason);
    const size_t cross = d.choice.crossover;
    CHECK_MSG(cross > 1 && cross < p->slots, "crossover %zu", cross);
    /* One switch, at the crossover, up to a full batch. */
    for (size_t b = 1; b <= p->slots; b++) {
        CHECK_OK(hnn_packing_decide_images(&d, b));
        CHECK_MSG(d.choice.packing == (b < cross ? HNN_PACK_CHANNEL : HNN_PACK_ELEMENT),
                  "%zu images: %s", b, d.reason);
        CHECK(d.choice.crossover == cross);
    }
    CHECK(strstr(d.reason, "element-wise (") == d.reason);
    char want[64];
    snprintf(want, sizeof want, "element-wise from %zu images", cross);
    CHECK_MSG(strstr(d.reason, want) != NULL, "%s", d.reason);
    /* Costs honoured: dearer rotations move the crossover down (never up), to 1 at the end;
     * dearer element-wise kernels move it up, to channel-wise for a whole batch. */
    size_t last = cross;
    for (double k = 2; k <= 4096; k *= 4) {
        hnn_op_costs r = c;
        r.rotate *= k, r.rotate_hoisted *= k;
        CHECK_OK(hnn_packing_decide(&d, &m, &m, p, "test", &r, 1, 2));
        CHECK_MSG(d.choice.crossover <= last, "rotations x%g: crossover %zu after %zu", k,
                  d.choice.crossover, last);
        last = d.choice.crossover;
    }
    CHECK(last == 1 && d.choice.packing == HNN_PACK_ELEMENT);
    hnn_op_costs e = c;
    e.mac_dense *= 1e4, e.mac_sparse *= 1e4; /* the element-wise kernels only */
    CHECK_OK(hnn_packing_decide(&d, &m, &m, p, "test", &e, p->slots, 2));
    CHECK_MSG(d.choice.packing == HNN_PACK_CHANNEL, "%s", d.reason);
    CHECK(strstr(d.reason, "channel-wise up to at least") != NULL);
    /* More server threads: channel-wise runs images in parallel, element-wise one batch on all
     * of them — both scale, so the crossover stays within one thread-round of 1 thread's. */
    CHECK_OK(hnn_packing_decide(&d, &m, &m, p, "test", &c, 1, 1));
    CHECK(d.threads == 1 && strstr(d.reason, "on 1 thread;") != NULL);
    /* Refusals. */
    hnn_op_costs w;
    hnn_op_costs_default(&w, 13);
    CHECK_ERR(hnn_packing_decide(&d, &m, &m, p, "test", &w, 1, 2), PPNN_ERR_MISMATCH);
    CHECK_ERR(hnn_packing_decide(&d, &m, &m, p, "test", &c, 0, 2), PPNN_ERR_PARAM);
    CHECK_ERR(hnn_packing_decide(&d, &m, &m, p, "test", &c, ((size_t)1 << 30) + 1, 2),
              PPNN_ERR_PARAM);
    nn_model_free(&m);
    /* A planner's refusal decides: with 3 levels the element-wise planner refuses this net (its
     * dense layer needs level 4) and the channel-wise one accepts it, so channel-wise is
     * chosen even for a full batch, and the reason says why. */
    ckks_params_free(p);
    p = ctu_params(10, 4, 45, 30, 50);
    nn_model_init(&m, "pool", (nn_shape){1, 8, 8});
    CHECK_OK(nn_model_add_conv2d(&m, 2, 3, 1, 1));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_avgpool(&m, 2, 2));
    CHECK_OK(nn_model_add_flatten(&m));
    CHECK_OK(nn_model_add_dense(&m, 3));
    CHECK_OK(nn_model_finish(&m));
    m.nclasses = 3;
    for (size_t li = 0; li < m.nlayers; li++) {
        nn_layer *l = &m.layers[li];
        for (size_t i = 0; i < l->nweight; i++)
            l->weight[i] = 0.01f * (float)((i * 5) % 7) - 0.03f;
        for (size_t i = 0; i < l->ncoef; i++)
            l->coef[i] = 0.2f;
    }
    CHECK_OK(hnn_packing_decide(&d, &m, &m, p, "test", &c, p->slots, 2));
    CHECK_MSG(d.channel_ok && !d.element_ok && d.choice.packing == HNN_PACK_CHANNEL &&
                  strstr(d.reason, "the element-wise planner refuses the model: ") != NULL,
              "%s", d.reason);
    nn_model_free(&m);
    ckks_params_free(p);
}

int main(void)
{
    test_json();
    test_choice();
    test_plan_costs();
    test_step_macs();
    test_decide();
    return tu_finish("cost");
}
