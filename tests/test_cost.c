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

int main(void)
{
    test_json();
    test_choice();
    test_plan_costs();
    return tu_finish("cost");
}
