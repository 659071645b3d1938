/* Architectures as layer specs (docs/training.md, "Layer specs").
 *
 * A spec is a comma-separated list of layer tokens, applied in order to the input C x H x W:
 *   conv<K>x<K>[s<S>][p<P>]c<C>  conv2d: square K x K kernel, stride S (1), zero padding P (0),
 *                                C output channels             e.g. conv5x5s2p1c5, conv3x3c16
 *   avgpool<K>[s<S>]             average pooling K x K, stride S (default K)    e.g. avgpool2
 *   flatten                      C x H x W -> vector (dense flattens by itself; for clarity)
 *   dense<N>                     fully connected, N outputs; the last layer must be
 *                                dense<classes>
 *   act                          the activation chosen with --act
 *   relu | square | element | channel | layer
 *                                that activation, whatever --act says
 * Numbers are decimal, 1..NN_MAX_DIM (padding 0..NN_MAX_DIM); no spaces. Errors name the
 * token's position (1-based) and its text.
 *
 * The named architectures are specs (multiplicative depth: one level per linear layer, one per
 * quadratic activation):
 *   cryptonets: conv, act, dense, act, dense                                  = 5 levels
 *   deep:       conv, act, pool, conv, act, pool, dense, act, dense           = 9 levels
 *               (fits the 9 levels of the n14 preset; the pools' 1/k^2 could be folded into
 *               the next layer but are counted here)
 *   teacher, teacher-wide: ReLU only, never encrypted. */
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"

static const struct {
    const char *name;
    const char *spec; /* %u: the number of classes */
} archs[] = {
    /* CryptoNets (Gilad-Bachrach et al. 2016): 28x28 -> conv 5x5/2 pad 1 -> 13x13x5 = 845. */
    {"cryptonets", "conv5x5s2p1c5,act,flatten,dense100,act,dense%u"},
    /* 28x28 -> conv 5x5 (8) 24x24 -> pool 12x12 -> conv 5x5 (16) 8x8 -> pool 4x4x16 = 256. */
    {"deep", "conv5x5c8,act,avgpool2,conv5x5c16,act,avgpool2,flatten,dense100,act,dense%u"},
    /* A wider ReLU network used as distillation teacher. */
    {"teacher", "conv3x3p1c16,relu,avgpool2,conv3x3p1c32,relu,avgpool2,flatten,dense128,relu,"
                "dense%u"},
    /* A stronger teacher for the deep students (issue 14: a teacher clearly better than the
     * student): conv 3x3 (32) - pool - conv 3x3 (64) - pool - conv 3x3 (128) - dense 256, about
     * 9 M multiply-adds per image, 8x the plain teacher. */
    {"teacher-wide", "conv3x3p1c32,relu,avgpool2,conv3x3p1c64,relu,avgpool2,conv3x3p1c128,relu,"
                     "flatten,dense256,relu,dense%u"},
};

const char *nn_arch_names(void) { return "cryptonets, deep, teacher, teacher-wide"; }

static ppnn_status add_act(nn_model *m, nn_act act)
{
    switch (act) {
    case NN_ACT_RELU: return nn_model_add_relu(m);
    case NN_ACT_ELEMENT: return nn_model_add_poly(m, NN_POLY_ELEMENT);
    case NN_ACT_CHANNEL: return nn_model_add_poly(m, NN_POLY_CHANNEL);
    case NN_ACT_LAYER: return nn_model_add_poly(m, NN_POLY_LAYER);
    case NN_ACT_SQUARE: return nn_model_add_poly(m, NN_POLY_SQUARE);
    }
    return ppnn_fail(PPNN_ERR_PARAM, "unknown activation %d", (int)act);
}

/* Reads a decimal number in [lo, NN_MAX_DIM] at *p; 0 on success. */
static int number(const char **p, uint32_t lo, uint32_t *out)
{
    const char *s = *p;
    uint32_t v = 0;
    if (*s < '0' || *s > '9')
        return 1;
    while (*s >= '0' && *s <= '9') {
        v = 10 * v + (uint32_t)(*s++ - '0');
        if (v > NN_MAX_DIM)
            return 1;
    }
    if (v < lo)
        return 1;
    *p = s, *out = v;
    return 0;
}

/* A literal prefix at *p (advanced past it when present). */
static int prefix(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n))
        return 0;
    *p += n;
    return 1;
}

typedef enum { TOK_BAD, TOK_CONV, TOK_POOL, TOK_FLATTEN, TOK_DENSE, TOK_ACT } tok_kind;

typedef struct token {
    tok_kind kind;
    uint32_t k, s, p, c; /* conv/pool: kernel, stride, pad, channels; dense: c = outputs */
    nn_act act;
    const char *expect;  /* TOK_BAD: what was expected */
} token;

/* Parses one token of length len (it must be consumed exactly). */
static token parse_token(const char *t, size_t len, nn_act placeholder)
{
    char buf[64];
    token tk = {TOK_BAD, 0, 1, 0, 0, NN_ACT_RELU, "a layer: conv<K>x<K>[s<S>][p<P>]c<C>, "
                "avgpool<K>[s<S>], flatten, dense<N>, act, relu, square, element, channel or layer"};
    if (len >= sizeof buf)
        return tk;
    memcpy(buf, t, len);
    buf[len] = 0;
    const char *p = buf;
    static const struct { const char *name; nn_act act; } acts[] = {
        {"relu", NN_ACT_RELU},       {"square", NN_ACT_SQUARE}, {"element", NN_ACT_ELEMENT},
        {"channel", NN_ACT_CHANNEL}, {"layer", NN_ACT_LAYER}};
    if (!strcmp(buf, "act"))
        return (token){TOK_ACT, 0, 0, 0, 0, placeholder, NULL};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (!strcmp(buf, acts[i].name))
            return (token){TOK_ACT, 0, 0, 0, 0, acts[i].act, NULL};
    if (!strcmp(buf, "flatten"))
        return (token){TOK_FLATTEN, 0, 0, 0, 0, NN_ACT_RELU, NULL};
    if (prefix(&p, "conv")) {
        uint32_t k2;
        tk.expect = "conv<K>x<K>[s<S>][p<P>]c<C> with a square kernel, e.g. conv5x5s2p1c5";
        if (number(&p, 1, &tk.k) || !prefix(&p, "x") || number(&p, 1, &k2) || k2 != tk.k)
            return tk;
        if (prefix(&p, "s") && number(&p, 1, &tk.s))
            return tk;
        if (prefix(&p, "p") && number(&p, 0, &tk.p))
            return tk;
        if (!prefix(&p, "c") || number(&p, 1, &tk.c) || *p)
            return tk;
        tk.kind = TOK_CONV;
        return tk;
    }
    if (prefix(&p, "avgpool")) {
        tk.expect = "avgpool<K>[s<S>], e.g. avgpool2 or avgpool3s2";
        if (number(&p, 1, &tk.k))
            return tk;
        tk.s = tk.k;
        if (prefix(&p, "s") && number(&p, 1, &tk.s))
            return tk;
        if (*p)
            return tk;
        tk.kind = TOK_POOL;
        return tk;
    }
    if (prefix(&p, "dense")) {
        tk.expect = "dense<N>, e.g. dense100";
        if (number(&p, 1, &tk.c) || *p)
            return tk;
        tk.kind = TOK_DENSE;
        return tk;
    }
    return tk;
}

/* Appends the layers of spec to m (started with nn_model_init). */
static ppnn_status add_spec(nn_model *m, const char *spec, nn_act placeholder, uint32_t nclasses)
{
    if (!*spec)
        return ppnn_fail(PPNN_ERR_PARAM, "layer spec is empty");
    const char *t = spec;
    token last = {TOK_BAD, 0, 0, 0, 0, NN_ACT_RELU, NULL};
    for (size_t pos = 1;; pos++) {
        const char *end = strchr(t, ',');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        token tk = parse_token(t, len, placeholder);
        const int tl = len > 40 ? 40 : (int)len;
        if (tk.kind == TOK_BAD)
            return ppnn_fail(PPNN_ERR_PARAM, "layer spec: token %zu '%.*s' (character %zu): "
                             "expected %s", pos, tl, t, (size_t)(t - spec) + 1, tk.expect);
        if (m->nlayers >= NN_MAX_LAYERS)
            return ppnn_fail(PPNN_ERR_PARAM, "layer spec: token %zu: more than %d layers", pos,
                             NN_MAX_LAYERS);
        ppnn_status st = PPNN_OK;
        switch (tk.kind) {
        case TOK_CONV: st = nn_model_add_conv2d(m, tk.c, tk.k, tk.s, tk.p); break;
        case TOK_POOL: st = nn_model_add_avgpool(m, tk.k, tk.s); break;
        case TOK_FLATTEN: st = nn_model_add_flatten(m); break;
        case TOK_DENSE: st = nn_model_add_dense(m, tk.c); break;
        case TOK_ACT: st = add_act(m, tk.act); break;
        case TOK_BAD: break;
        }
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", ppnn_last_error());
            return ppnn_fail(st, "layer spec: token %zu '%.*s': %s", pos, tl, t, msg);
        }
        last = tk;
        if (!end)
            break;
        t = end + 1;
    }
    if (last.kind != TOK_DENSE || last.c != nclasses)
        return ppnn_fail(PPNN_ERR_PARAM, "layer spec: the last layer must be dense%u (one output "
                         "per class)", nclasses);
    return PPNN_OK;
}

ppnn_status nn_arch_build_spec(nn_model *m, const char *name, const char *spec, nn_act act,
                               nn_shape input, uint32_t nclasses)
{
    nn_model_init(m, name, input);
    ppnn_status st = add_spec(m, spec, act, nclasses);
    if (!st)
        st = nn_model_finish(m);
    if (st)
        nn_model_free(m);
    return st;
}

const char *nn_arch_spec(char *buf, size_t len, const char *arch, uint32_t nclasses)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        if (strcmp(arch, archs[i].name))
            continue;
        snprintf(buf, len, archs[i].spec, nclasses); /* its only conversion: the classes */
        return buf;
    }
    return NULL;
}

ppnn_status nn_arch_build(nn_model *m, const char *arch, nn_act act, nn_shape input,
                          uint32_t nclasses)
{
    char spec[256];
    if (!nn_arch_spec(spec, sizeof spec, arch, nclasses))
        return ppnn_fail(PPNN_ERR_PARAM, "unknown architecture '%s' (%s)", arch,
                         nn_arch_names());
    ppnn_status st = nn_arch_build_spec(m, arch, spec, act, input, nclasses);
    if (st)
        ppnn_error_context("architecture %s", arch);
    return st;
}
