/* ONNX importer: graphs built here with the generated protobuf-c code check the pattern
 * matching (polynomial granularity, BatchNorm and affine folding, Pad + AveragePool fusion)
 * against independently folded equivalents; malformed, cyclic, branching, unsupported,
 * dynamic, mistyped and absurd models are refused naming the node; the PyTorch fixture
 * (examples/pytorch/poly_cnn.py) agrees with PyTorch's logits in plaintext (<= 1e-5) and
 * encrypted (<= 1e-3); the ReLU fixture is refused naming its node; calibration records
 * ranges. */
#include <stdarg.h>
#include <stdio.h>

#include "onnx/onnx.pb-c.h"
#include "onnx_tu.h"

/* ---- a tiny graph builder (everything allocated is kept in a pool, freed at once) ------- */
static void *pool[4096];
static size_t npool;

static void *keep(void *p)
{
    if (!p || npool == 4096)
        abort();
    return pool[npool++] = p;
}

static void pool_free(void)
{
    while (npool)
        free(pool[--npool]);
}

static char *dup_s(const char *s) { return keep(strdup(s)); }

typedef struct {
    Onnx__GraphProto g;
    Onnx__NodeProto *nodes[128];
    Onnx__TensorProto *inits[32];
    Onnx__ValueInfoProto *ins[4], *outs[4];
} graph;

static void g_init(graph *gr)
{
    memset(gr, 0, sizeof *gr);
    onnx__graph_proto__init(&gr->g);
    gr->g.node = gr->nodes, gr->g.initializer = gr->inits;
    gr->g.input = gr->ins, gr->g.output = gr->outs;
    gr->g.name = dup_s("g");
}

static Onnx__ValueInfoProto *value_info(const char *name, const int64_t *dims, size_t nd,
                                        const char *symbolic_dim)
{
    Onnx__ValueInfoProto *v = keep(malloc(sizeof *v));
    onnx__value_info_proto__init(v);
    v->name = dup_s(name);
    Onnx__TypeProto *t = keep(malloc(sizeof *t));
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = keep(malloc(sizeof *tt));
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1, tt->elem_type = 1;
    Onnx__TensorShapeProto *sh = keep(malloc(sizeof *sh));
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = nd;
    sh->dim = keep(calloc(nd ? nd : 1, sizeof *sh->dim));
    for (size_t i = 0; i < nd; i++) {
        Onnx__TensorShapeProto__Dimension *d = keep(malloc(sizeof *d));
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) { /* symbolic */
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = dup_s(symbolic_dim);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

static void g_input(graph *gr, const char *name, const int64_t *dims, size_t nd)
{
    gr->ins[gr->g.n_input++] = value_info(name, dims, nd, "batch");
}

static void g_output(graph *gr, const char *name)
{
    gr->outs[gr->g.n_output++] = value_info(name, NULL, 0, NULL);
}

static Onnx__TensorProto *tensor(const char *name, const int64_t *dims, size_t nd,
                                 const float *data, size_t n)
{
    Onnx__TensorProto *t = keep(malloc(sizeof *t));
    onnx__tensor_proto__init(t);
    t->name = dup_s(name);
    t->n_dims = nd;
    t->dims = keep(malloc((nd ? nd : 1) * sizeof *t->dims));
    if (nd)
        memcpy(t->dims, dims, nd * sizeof *dims);
    t->has_data_type = 1, t->data_type = 1;
    t->n_float_data = n;
    t->float_data = keep(malloc((n ? n : 1) * sizeof(float)));
    memcpy(t->float_data, data, n * sizeof(float));
    return t;
}

static void g_init_tensor(graph *gr, const char *name, const int64_t *dims, size_t nd,
                          const float *data, size_t n)
{
    gr->inits[gr->g.n_initializer++] = tensor(name, dims, nd, data, n);
}

/* node(gr, "Conv", "x,W,B", "y") */
static Onnx__NodeProto *node(graph *gr, const char *op, const char *ins, const char *outs)
{
    if (gr->g.n_node == sizeof gr->nodes / sizeof *gr->nodes)
        abort();
    Onnx__NodeProto *n = keep(malloc(sizeof *n));
    onnx__node_proto__init(n);
    n->op_type = dup_s(op);
    n->name = dup_s(op);
    n->input = keep(calloc(8, sizeof(char *)));
    n->output = keep(calloc(8, sizeof(char *)));
    n->attribute = keep(calloc(8, sizeof(Onnx__AttributeProto *)));
    const char *lists[2] = {ins, outs};
    for (int k = 0; k < 2; k++) {
        char *s = dup_s(lists[k]), *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (k == 0)
                n->input[n->n_input++] = tok;
            else
                n->output[n->n_output++] = tok;
        }
    }
    gr->nodes[gr->g.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = keep(malloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = dup_s(name);
    a->has_type = 1, a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, size_t k, ...)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = k;
    a->ints = keep(malloc(k * sizeof *a->ints));
    va_list ap;
    va_start(ap, k);
    for (size_t i = 0; i < k; i++)
        a->ints[i] = va_arg(ap, int);
    va_end(ap);
}

/* Serialises the graph into a model (opset 13). */
static uint8_t *pack(graph *gr, size_t *len)
{
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1, m.ir_version = 7;
    Onnx__OperatorSetIdProto op;
    onnx__operator_set_id_proto__init(&op);
    op.domain = dup_s(""), op.has_version = 1, op.version = 13;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    m.n_opset_import = 1, m.opset_import = ops;
    m.graph = &gr->g;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = keep(malloc(*len ? *len : 1));
    onnx__model_proto__pack(&m, buf);
    return buf;
}

static ppnn_status import_graph(nn_model *m, graph *gr)
{
    size_t len;
    uint8_t *buf = pack(gr, &len);
    return onnx_import(m, buf, len, "t.onnx", NULL);
}

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5);
}

static void fill(float *v, size_t n, uint64_t seed, float scale, float offset)
{
    for (size_t i = 0; i < n; i++)
        v[i] = offset + scale * frand(&seed);
}

/* max |f(x) - g(x)| over a few random inputs (relative to max |g|). */
static double compare_models(const nn_model *a, const nn_model *b)
{
    enum { N = 8 };
    size_t nin = nn_numel(a->input);
    float *x = malloc(N * nin * sizeof *x);
    double *ya = malloc(N * a->nclasses * sizeof *ya), *yb = malloc(N * b->nclasses * sizeof *yb);
    fill(x, N * nin, 99, 2.0f, 0.5f);
    double e = 1e9;
    if (a->nclasses == b->nclasses && nin == nn_numel(b->input) && !otu_plain(a, ya, x, N) &&
        !otu_plain(b, yb, x, N)) {
        float *yf = malloc(N * b->nclasses * sizeof *yf);
        for (size_t i = 0; i < N * b->nclasses; i++)
            yf[i] = (float)yb[i];
        e = otu_rel_err(ya, yf, N * b->nclasses);
        free(yf);
    }
    free(x), free(ya), free(yb);
    return e;
}

/* ---- pattern matching ---------------------------------------------------------------------- */
static const int64_t IN4[4] = {-1, 2, 3, 3};

/* x -> a*x^2 + b*x + c -> Flatten -> Gemm, with a, b, c of the given shapes. */
static void poly_graph(graph *gr, const int64_t *adims, size_t and_, const int64_t *bdims,
                       size_t bnd, int use_pow)
{
    g_init(gr);
    g_input(gr, "x", IN4, 4);
    float a[18], b[18], c[1] = {0.25f}, w[3 * 18];
    size_t na = 1, nb = 1;
    for (size_t i = 0; i < and_; i++)
        na *= (size_t)adims[i];
    for (size_t i = 0; i < bnd; i++)
        nb *= (size_t)bdims[i];
    fill(a, na, 1, 0.2f, 0.3f), fill(b, nb, 2, 1.0f, 0.0f), fill(w, 54, 3, 1.0f, 0.0f);
    g_init_tensor(gr, "A", adims, and_, a, na);
    g_init_tensor(gr, "B", bdims, bnd, b, nb);
    g_init_tensor(gr, "C", (int64_t[]){1}, 1, c, 1);
    g_init_tensor(gr, "W", (int64_t[]){3, 18}, 2, w, 54);
    if (use_pow) {
        g_init_tensor(gr, "two", NULL, 0, (float[]){2}, 1);
        node(gr, "Pow", "x,two", "sq");
    } else {
        node(gr, "Mul", "x,x", "sq");
    }
    node(gr, "Mul", "A,sq", "t");   /* constant first: order must not matter */
    node(gr, "Mul", "x,B", "u");
    node(gr, "Add", "t,u", "v");
    node(gr, "Add", "v,C", "p");
    node(gr, "Flatten", "p", "f");
    Onnx__NodeProto *gm = node(gr, "Gemm", "f,W", "y");
    Onnx__AttributeProto *tb = attr(gm, "transB", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    tb->has_i = 1, tb->i = 1;
    g_output(gr, "y");
}

static void test_poly_granularity(void)
{
    static const struct {
        int64_t adims[4];
        size_t and_;
        int64_t bdims[4];
        size_t bnd;
        nn_poly_gran want;
    } cases[] = {
        {{2, 3, 3}, 3, {1}, 1, NN_POLY_ELEMENT},
        {{1, 2, 1, 1}, 4, {2, 1, 1}, 3, NN_POLY_CHANNEL},
        {{1}, 1, {1}, 1, NN_POLY_LAYER},
        {{2, 1, 1}, 3, {2, 3, 3}, 3, NN_POLY_ELEMENT},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int use_pow = 0; use_pow < 2; use_pow++) {
            graph gr;
            poly_graph(&gr, cases[k].adims, cases[k].and_, cases[k].bdims, cases[k].bnd,
                       use_pow);
            nn_model m;
            CHECK_OK(import_graph(&m, &gr));
            CHECK_MSG(m.nlayers == 3 && m.layers[0].type == NN_LAYER_POLY &&
                      m.layers[0].gran == cases[k].want,
                      "case %zu: %zu layers, gran %d", k, m.nlayers,
                      m.nlayers ? (int)m.layers[0].gran : -1);
            /* Coefficients: a at element i is A broadcast, c = 0.25 everywhere. */
            if (m.nlayers == 3) {
                float a, b, c;
                nn_poly_coef(&m.layers[0], 17, &a, &b, &c);
                CHECK(fabsf(c - 0.25f) < 1e-7f);
                CHECK(a > 0.19f && a < 0.41f);
            }
            nn_model_free(&m);
            pool_free();
        }
    /* Plain x*x: a square layer. */
    graph gr;
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 4}, 2);
    node(&gr, "Mul", "x,x", "y");
    g_output(&gr, "y");
    nn_model m;
    CHECK_OK(import_graph(&m, &gr));
    CHECK(m.nlayers == 1 && m.layers[0].gran == NN_POLY_SQUARE);
    nn_model_free(&m);
    pool_free();
}

/* Conv -> [BN | Mul+Add per channel] -> Flatten -> Gemm, against the same net with the affine
 * map folded by hand: identical function, and no extra layer. */
static void conv_affine_graph(graph *gr, int kind, const float *W, const float *B,
                              const float *s, const float *t)
{
    g_init(gr);
    g_input(gr, "x", IN4, 4);
    float g[2], beta[2], mean[2] = {0.3f, -0.2f}, var[2] = {0.5f, 2.0f}, w[3 * 18];
    fill(w, 54, 7, 1.0f, 0.0f);
    g_init_tensor(gr, "W", (int64_t[]){2, 2, 3, 3}, 4, W, 36);
    g_init_tensor(gr, "B", (int64_t[]){2}, 1, B, 2);
    g_init_tensor(gr, "G", (int64_t[]){3, 18}, 2, w, 54);
    Onnx__NodeProto *cv = node(gr, "Conv", "x,W,B", "c");
    attr_ints(cv, "pads", 4, 1, 1, 1, 1);
    const char *after = "c";
    if (kind == 1) {
        for (int i = 0; i < 2; i++) /* BN with scale g, bias beta such that s, t result */
            g[i] = s[i] * sqrtf(var[i] + 1e-5f), beta[i] = t[i] + mean[i] * s[i];
        g_init_tensor(gr, "g", (int64_t[]){2}, 1, g, 2);
        g_init_tensor(gr, "beta", (int64_t[]){2}, 1, beta, 2);
        g_init_tensor(gr, "mean", (int64_t[]){2}, 1, mean, 2);
        g_init_tensor(gr, "var", (int64_t[]){2}, 1, var, 2);
        node(gr, "BatchNormalization", "c,g,beta,mean,var", "bn");
        after = "bn";
    } else if (kind == 2) {
        g_init_tensor(gr, "s", (int64_t[]){2, 1, 1}, 3, s, 2);
        g_init_tensor(gr, "t", (int64_t[]){1, 2, 1, 1}, 4, t, 2);
        node(gr, "Mul", "c,s", "cs");
        node(gr, "Add", "cs,t", "bn");
        after = "bn";
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%s", after);
    node(gr, "Flatten", buf, "f");
    Onnx__NodeProto *gm = node(gr, "Gemm", "f,G", "y");
    Onnx__AttributeProto *tb = attr(gm, "transB", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    tb->has_i = 1, tb->i = 1;
    g_output(gr, "y");
}

static void test_affine_folding(void)
{
    float W[36], B[2] = {0.1f, -0.4f}, s[2] = {1.5f, -0.7f}, t[2] = {0.2f, 0.9f};
    fill(W, 36, 5, 1.0f, 0.0f);
    float Wf[36], Bf[2];
    for (int o = 0; o < 2; o++) {
        for (int k = 0; k < 18; k++)
            Wf[o * 18 + k] = W[o * 18 + k] * s[o];
        Bf[o] = B[o] * s[o] + t[o];
    }
    graph ref_g;
    conv_affine_graph(&ref_g, 0, Wf, Bf, s, t);
    nn_model ref;
    CHECK_OK(import_graph(&ref, &ref_g));
    for (int kind = 1; kind <= 2; kind++) {
        graph gr;
        conv_affine_graph(&gr, kind, W, B, s, t);
        nn_model m;
        CHECK_OK(import_graph(&m, &gr));
        CHECK_MSG(m.nlayers == ref.nlayers, "%s not folded: %zu layers (want %zu)",
                  kind == 1 ? "BatchNorm" : "Mul/Add", m.nlayers, ref.nlayers);
        double e = compare_models(&m, &ref);
        CHECK_MSG(e < 1e-5, "folded %d differs by %g", kind, e);
        nn_model_free(&m);
    }
    nn_model_free(&ref);
    pool_free();

    /* An input affine map (x*2 - 1) folds into the normalisation and MatMul + Add into one
     * dense layer: same function, one layer. */
    graph gr;
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 4}, 2);
    float w[8];
    fill(w, 8, 11, 1.0f, 0.0f);
    g_init_tensor(&gr, "two", NULL, 0, (float[]){2}, 1);
    g_init_tensor(&gr, "one", NULL, 0, (float[]){1}, 1);
    g_init_tensor(&gr, "M", (int64_t[]){4, 2}, 2, w, 8);
    node(&gr, "Mul", "x,two", "a");
    node(&gr, "Sub", "a,one", "b");
    g_init_tensor(&gr, "bias", (int64_t[]){2}, 1, (float[]){0.5f, -2.0f}, 2);
    node(&gr, "MatMul", "b,M", "mm");
    node(&gr, "Add", "mm,bias", "y"); /* MatMul + Add: the bias of one dense layer */
    g_output(&gr, "y");
    nn_model m;
    CHECK_OK(import_graph(&m, &gr));
    CHECK(m.nlayers == 1);
    float x[4] = {0.1f, 0.5f, -0.3f, 0.9f}, y[2], xn[4];
    for (int i = 0; i < 4; i++) /* the model's input is (x - mean) / std of what it is fed */
        xn[i] = (x[i] - m.norm_mean) / m.norm_std;
    CHECK_OK(nn_predict(&m, y, xn, 1));
    for (int o = 0; o < 2; o++) {
        double want = o ? -2.0 : 0.5;
        for (int i = 0; i < 4; i++)
            want += (2.0 * x[i] - 1) * w[i * 2 + o];
        CHECK_MSG(fabs(y[o] - want) < 1e-5, "input affine: %g vs %g", y[o], want);
    }
    nn_model_free(&m);
    pool_free();
}

/* Pad(1) + AveragePool(2, stride 2) (what PyTorch exports for AvgPool2d(2, 2, padding=1)) vs a
 * direct computation. */
static void test_pad_pool(void)
{
    graph gr;
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 2, 4, 4}, 4);
    g_init_tensor(&gr, "pads", (int64_t[]){8}, 1, (float[]){0, 0, 1, 1, 0, 0, 1, 1}, 8);
    node(&gr, "Pad", "x,pads", "p");
    Onnx__NodeProto *ap = node(&gr, "AveragePool", "p", "y");
    attr_ints(ap, "kernel_shape", 2, 2, 2);
    attr_ints(ap, "strides", 2, 2, 2);
    g_output(&gr, "y");
    /* Tensor protos store dims as int64 but the builder took a float initializer: Pad's pads
     * are read as numbers either way. */
    nn_model m;
    CHECK_OK(import_graph(&m, &gr));
    CHECK(m.nlayers >= 1 && m.layers[0].type == NN_LAYER_CONV2D && m.layers[0].pad == 1);
    float x[32], y[18];
    fill(x, 32, 13, 1.0f, 0.0f);
    CHECK_OK(nn_predict(&m, y, x, 1));
    double err = 0;
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                double sum = 0;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int iy = oy * 2 + i - 1, ix = ox * 2 + j - 1;
                        if (iy >= 0 && iy < 4 && ix >= 0 && ix < 4)
                            sum += x[(c * 4 + iy) * 4 + ix];
                    }
                err = fmax(err, fabs(y[(c * 3 + oy) * 3 + ox] - sum / 4));
            }
    CHECK_MSG(err < 1e-6, "Pad + AveragePool off by %g", err);
    nn_model_free(&m);
    pool_free();
}

/* ---- refusals ---------------------------------------------------------------------------- */
static void expect_refusal(graph *gr, ppnn_status code, const char *want1, const char *want2)
{
    nn_model m;
    CHECK_ERR(import_graph(&m, gr), code);
    const char *msg = ppnn_last_error();
    CHECK_MSG(strstr(msg, "t.onnx") && strstr(msg, want1) && (!want2 || strstr(msg, want2)),
              "message '%s' lacks '%s' / '%s'", msg, want1, want2 ? want2 : "");
    CHECK(m.nlayers == 0 && m.params == NULL);
    pool_free();
}

static void conv_then(graph *gr, const char *op)
{
    g_init(gr);
    g_input(gr, "x", (int64_t[]){1, 1, 4, 4}, 4);
    float W[9] = {0};
    g_init_tensor(gr, "W", (int64_t[]){1, 1, 3, 3}, 4, W, 9);
    node(gr, "Conv", "x,W", "c");
    node(gr, op, "c", "r");
    node(gr, "Flatten", "r", "y");
    g_output(gr, "y");
}

static void test_refusals(void)
{
    graph gr;
    conv_then(&gr, "Relu");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "node 1 'Relu' (Relu)", "polynomial");
    conv_then(&gr, "MaxPool");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "(MaxPool)", "AveragePool");
    conv_then(&gr, "Softmax");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "(Softmax)", "logits");

    /* A cycle: a = b*b, b = a*a. */
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 4}, 2);
    node(&gr, "Mul", "x,b", "a");
    node(&gr, "Mul", "a,a", "b");
    g_output(&gr, "b");
    expect_refusal(&gr, PPNN_ERR_FORMAT, "cycle", NULL);

    /* An undefined input. */
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 4}, 2);
    node(&gr, "Mul", "x,nowhere", "y");
    g_output(&gr, "y");
    expect_refusal(&gr, PPNN_ERR_FORMAT, "'nowhere'", "never defined");

    /* A dynamic spatial dimension. */
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 1, -1, 4}, 4);
    node(&gr, "Mul", "x,x", "y");
    g_output(&gr, "y");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "dynamic", NULL);

    /* Initializers: dims that disagree with the data, a string dtype, absurd dims. */
    conv_then(&gr, "Identity");
    gr.inits[0]->n_float_data = 5;
    expect_refusal(&gr, PPNN_ERR_FORMAT, "dims give 9 elements", "holds 5");
    conv_then(&gr, "Identity");
    gr.inits[0]->data_type = 8;
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "data type 8", NULL);
    conv_then(&gr, "Identity");
    gr.inits[0]->dims[2] = (int64_t)1 << 40;
    gr.inits[0]->dims[3] = (int64_t)1 << 40;
    expect_refusal(&gr, PPNN_ERR_FORMAT, "initializer 'W'", NULL);

    /* A skip connection (branch) and a cubic. */
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 1, 4, 4}, 4);
    float W[9] = {0};
    g_init_tensor(&gr, "W", (int64_t[]){1, 1, 3, 3}, 4, W, 9);
    Onnx__NodeProto *cv = node(&gr, "Conv", "x,W", "c");
    attr_ints(cv, "pads", 4, 1, 1, 1, 1);
    node(&gr, "Add", "c,x", "y");
    g_output(&gr, "y");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "(Add)", "branches");
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 4}, 2);
    node(&gr, "Mul", "x,x", "s");
    node(&gr, "Mul", "s,x", "y");
    g_output(&gr, "y");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "degree above 2", NULL);

    /* Unsupported attributes are refused, not ignored. */
    conv_then(&gr, "Identity");
    attr_ints(gr.nodes[0], "dilations", 2, 2, 2);
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "dilations 2x2", NULL);
    conv_then(&gr, "Identity");
    attr(gr.nodes[0], "bogus", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)->has_i = 1;
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "attribute 'bogus'", NULL);

    /* More layers than a ppnn model holds: refused while lowering, naming the node. */
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 1, 2, 2}, 4);
    g_init_tensor(&gr, "W", (int64_t[]){1, 1, 1, 1}, 4, (float[]){0.5f}, 1);
    for (int k = 0; k < 30; k++) { /* 30 x (conv + x*x) = 60 layers, + flatten: fits */
        char in[16], mid[16], out[16];
        snprintf(in, sizeof in, k ? "s%d" : "x", k - 1);
        snprintf(mid, sizeof mid, "c%d", k), snprintf(out, sizeof out, "s%d", k);
        char ins[40], sq[40];
        snprintf(ins, sizeof ins, "%s,W", in), snprintf(sq, sizeof sq, "%s,%s", mid, mid);
        node(&gr, "Conv", ins, mid);
        node(&gr, "Mul", sq, out);
    }
    node(&gr, "Flatten", "s29", "y");
    g_output(&gr, "y");
    nn_model big;
    CHECK_OK(import_graph(&big, &gr));
    CHECK(big.nlayers == 61);
    nn_model_free(&big);
    pool_free();
    g_init(&gr);
    g_input(&gr, "x", (int64_t[]){1, 1, 2, 2}, 4);
    g_init_tensor(&gr, "W", (int64_t[]){1, 1, 1, 1}, 4, (float[]){0.5f}, 1);
    for (int k = 0; k < 40; k++) {
        char ins[16], mid[16], out[16], sq[40];
        snprintf(ins, sizeof ins, k ? "s%d,W" : "x,W", k - 1);
        snprintf(mid, sizeof mid, "c%d", k), snprintf(out, sizeof out, "s%d", k);
        snprintf(sq, sizeof sq, "%s,%s", mid, mid);
        node(&gr, "Conv", ins, mid);
        node(&gr, "Mul", sq, out);
    }
    node(&gr, "Flatten", "s39", "y");
    g_output(&gr, "y");
    expect_refusal(&gr, PPNN_ERR_UNSUPPORTED, "more than 64 layers", "(Conv)");

    /* Not protobuf at all; empty. */
    nn_model m;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34};
    CHECK_ERR(onnx_import(&m, junk, sizeof junk, "junk.onnx", NULL), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "junk.onnx") != NULL);
    CHECK_ERR(onnx_import(&m, junk, 0, "empty.onnx", NULL), PPNN_ERR_FORMAT);
}

/* ---- the PyTorch fixture --------------------------------------------------------------- */
static void test_pytorch_fixture(void)
{
    enum { N = 16 };
    nn_model m;
    CHECK_OK(onnx_import_file(&m, PPNN_SOURCE_DIR "/tests/data/onnx/poly_cnn.onnx", NULL));
    if (!m.nlayers)
        return;
    /* BN folded into the first conv; Pad + AveragePool fused; polys element then channel. */
    size_t convs = 0, polys = 0, dense = 0;
    for (size_t i = 0; i < m.nlayers; i++) {
        convs += m.layers[i].type == NN_LAYER_CONV2D;
        dense += m.layers[i].type == NN_LAYER_DENSE;
        if (m.layers[i].type == NN_LAYER_POLY)
            CHECK(m.layers[i].gran == (polys++ ? NN_POLY_CHANNEL : NN_POLY_ELEMENT));
    }
    CHECK_MSG(convs == 3 && polys == 2 && dense == 1 && m.nlayers == 7,
              "%zu layers: %zu conv, %zu poly, %zu dense", m.nlayers, convs, polys, dense);
    data_set ds;
    CHECK_OK(data_load(&ds, "mnist", DATA_SPLIT_TEST, 0, N));
    float ref[N * 10], *x = malloc(N * 784 * sizeof *x);
    FILE *f = fopen(PPNN_SOURCE_DIR "/tests/data/onnx/poly_cnn_logits.csv", "r");
    CHECK(f != NULL);
    for (size_t i = 0; f && i < N * 10; i++)
        CHECK(fscanf(f, "%f%*[,\n]", &ref[i]) == 1);
    if (f)
        fclose(f);
    nn_model_normalize(&m, x, ds.pixels, N);
    double y[N * 10];
    CHECK_OK(otu_plain(&m, y, x, N));
    double e = otu_rel_err(y, ref, N * 10);
    CHECK_MSG(e <= 1e-5, "plaintext vs PyTorch: relative error %g", e);
    char why[512] = "";
    CHECK_MSG(otu_encrypted(&m, y, x, N, why, sizeof why) == 0, "%s", why);
    double ee = otu_rel_err(y, ref, N * 10);
    CHECK_MSG(ee <= 1e-3, "encrypted vs PyTorch: relative error %g", ee);
    fprintf(stderr, "poly_cnn: plaintext vs PyTorch %.2e, encrypted (test ring) %.2e\n", e, ee);

    /* Calibration records the ranges the planner uses: the input is p/255 in [0, 1]. */
    otu_source src = {x, 784};
    CHECK_OK(onnx_calibrate(&m, otu_fill, &src, N));
    CHECK(m.layers[0].in_range.min >= 0 && m.layers[0].in_range.max <= 1 &&
          m.layers[0].in_range.max > 0.9f);
    CHECK(m.out_range.max > m.out_range.min);
    CHECK_ERR(onnx_calibrate(&m, otu_fill, &src, 0), PPNN_ERR_PARAM);

    /* Truncations of the fixture are refused cleanly. */
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, PPNN_SOURCE_DIR "/tests/data/onnx/poly_cnn.onnx",
                            ONNX_MAX_FILE));
    nn_model t;
    for (size_t cut = 1; cut < len; cut += len / 23 + 1)
        CHECK(onnx_import(&t, buf, cut, "cut.onnx", NULL) != PPNN_OK && t.params == NULL);
    free(buf);
    free(x);
    data_set_free(&ds);
    nn_model_free(&m);

    CHECK_ERR(onnx_import_file(&m, PPNN_SOURCE_DIR "/tests/data/onnx/relu_cnn.onnx", NULL),
              PPNN_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(ppnn_last_error(), "'/2/Relu' (Relu)") != NULL, "%s", ppnn_last_error());
}

/* TensorProto reading (test-case data): round trip through raw_data and float_data,
 * truncations, a raw length that is not a whole number of elements, dims that claim more. */
static void test_tensor_io(void)
{
    const float v[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.5f, 8.0f};
    Onnx__TensorProto *t = tensor("t", (int64_t[]){2, 3}, 2, v, 6);
    for (int raw = 0; raw < 2; raw++) {
        uint8_t rawbuf[24];
        if (raw) { /* the same values as little-endian raw bytes */
            for (int i = 0; i < 6; i++) {
                uint32_t u;
                memcpy(&u, &v[i], 4);
                for (int b = 0; b < 4; b++)
                    rawbuf[4 * i + b] = (uint8_t)(u >> (8 * b));
            }
            t->n_float_data = 0;
            t->has_raw_data = 1, t->raw_data.len = 24, t->raw_data.data = rawbuf;
        }
        size_t len = onnx__tensor_proto__get_packed_size(t);
        uint8_t *buf = keep(malloc(len));
        onnx__tensor_proto__pack(t, buf);
        onnx_tensor o;
        CHECK_OK(onnx_tensor_parse(&o, buf, len, "t.pb"));
        CHECK(o.rank == 2 && o.dims[0] == 2 && o.dims[1] == 3 && o.numel == 6 &&
              o.data && !memcmp(o.data, v, sizeof v));
        onnx_tensor_free(&o);
        for (size_t cut = 1; cut < len; cut++) {
            ppnn_status st = onnx_tensor_parse(&o, buf, cut, "cut.pb");
            /* A prefix is refused, or (when only trailing fields such as the name are cut)
             * gives exactly the same tensor: never different numbers. */
            CHECK(st != PPNN_OK || (o.numel == 6 && !memcmp(o.data, v, sizeof v)));
            onnx_tensor_free(&o);
        }
        if (raw) {
            t->raw_data.len = 23;
            len = onnx__tensor_proto__get_packed_size(t);
            onnx__tensor_proto__pack(t, buf);
            CHECK_ERR(onnx_tensor_parse(&o, buf, len, "odd.pb"), PPNN_ERR_FORMAT);
            t->raw_data.len = 24;
        }
        t->dims[0] = 1000000; /* claims 3e6 elements, holds 6: refused before allocating */
        len = onnx__tensor_proto__get_packed_size(t);
        buf = keep(malloc(len));
        onnx__tensor_proto__pack(t, buf);
        CHECK_ERR(onnx_tensor_parse(&o, buf, len, "big.pb"), PPNN_ERR_FORMAT);
        CHECK(strstr(ppnn_last_error(), "big.pb") != NULL);
        t->dims[0] = 2;
    }
    pool_free();
}

/* Bytes of the fixture flipped one at a time: import succeeds or fails with a message,
 * never crashes (ASan / UBSan runs make this strict). */
static void test_corrupted_fixture(void)
{
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, PPNN_SOURCE_DIR "/fuzz/corpus/fuzz_onnx/tiny.onnx",
                            ONNX_MAX_FILE));
    if (!buf)
        return;
    size_t refused = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t saved = buf[i];
        buf[i] ^= (uint8_t)(0x5a + i);
        nn_model m;
        ppnn_fail(PPNN_OK, "%s", "");
        if (onnx_import(&m, buf, len, "flip.onnx", NULL) == PPNN_OK) {
            nn_model_free(&m);
        } else {
            CHECK(ppnn_last_error()[0] != 0);
            refused++;
        }
        buf[i] = saved;
    }
    CHECK(refused > len / 4); /* most flips break the structure or a checked value */
    free(buf);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_poly_granularity();
    test_affine_folding();
    test_pad_pool();
    test_refusals();
    test_pytorch_fixture();
    test_tensor_io();
    test_corrupted_fixture();
    return tu_finish("test_onnx_import");
}
