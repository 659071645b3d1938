/* Pattern matching: walks the graph in topological order and lowers every node onto the
 * chain of pending layers. Elementwise nodes stay symbolic (poly.c) until a linear node or the
 * output needs the value; then the quadratic becomes a poly layer (fold.c later folds affine
 * ones into their neighbours). Conv / AveragePool that no nn window layer expresses are
 * lowered to an exact dense layer (linear.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/inner.h"
#include "onnx/linear.h"

typedef struct {
    const onnx_graph *g;
    onnx_value *vals;
    onnx_head head;
    nn_shape cur;   /* nn shape of the head */
    int flat;       /* the nn tensor is flat although the ONNX one is C x H x W */
    pl_list *pl;
} lowerer;

static ppnn_status get_const(lowerer *L, const onnx_node_ctx *c, size_t id)
{
    onnx_value *v = &L->vals[id];
    if (v->kind != OV_NONE || !L->g->init[id])
        return PPNN_OK;
    char what[300];
    snprintf(what, sizeof what, "%s: initializer '%s'", L->g->file, L->g->names[id]);
    ppnn_status st = onnx_tensor_from_proto(&v->t, L->g->init[id], what);
    if (!st)
        v->kind = OV_CONST;
    (void)c;
    return st;
}

/* Value of input k (NULL when omitted). */
static ppnn_status input(lowerer *L, const onnx_node_ctx *c, size_t k, onnx_value **out)
{
    *out = NULL;
    if (k >= c->n->n_input || !c->n->input[k][0])
        return PPNN_OK;
    size_t id = onnx_graph_find(L->g, c->n->input[k]);
    ppnn_status st = get_const(L, c, id);
    if (st)
        return st;
    if (L->vals[id].kind == OV_NONE)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "input '%s' is not available (an "
                              "optional output ppnn does not compute)", c->n->input[k]);
    *out = &L->vals[id];
    return PPNN_OK;
}

static ppnn_status need_const(lowerer *L, const onnx_node_ctx *c, size_t k, onnx_value **out,
                              const char *role)
{
    ppnn_status st = input(L, c, k, out);
    if (st)
        return st;
    if (!*out)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "missing input %zu (%s)", k, role);
    if ((*out)->kind != OV_CONST)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "input %zu (%s) must be a constant "
                              "(an initializer), not computed from the data", k, role);
    return PPNN_OK;
}

/* The data input of a node must be the chain's current value. */
static ppnn_status need_head(lowerer *L, const onnx_node_ctx *c, size_t k, onnx_value **out)
{
    ppnn_status st = input(L, c, k, out);
    if (st)
        return st;
    if (!*out)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "missing data input %zu", k);
    if ((*out)->kind != OV_SYM)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "input %zu must be computed from the "
                              "data tensor, not a constant", k);
    if ((*out)->epoch != L->head.epoch)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "reads '%s', computed before the last "
                              "layer: ppnn runs chains of layers (no branches or skip "
                              "connections)", c->n->input[k]);
    return PPNN_OK;
}

static ppnn_status set_output(lowerer *L, const onnx_node_ctx *c, size_t k, onnx_value *v)
{
    if (k >= c->n->n_output || !c->n->output[k][0]) {
        onnx_value_clear(v);
        return PPNN_OK;
    }
    size_t id = onnx_graph_find(L->g, c->n->output[k]);
    onnx_value_clear(&L->vals[id]);
    L->vals[id] = *v;
    memset(v, 0, sizeof *v);
    return PPNN_OK;
}

static ppnn_status copy_value(onnx_value *dst, const onnx_value *src, const onnx_head *h)
{
    memset(dst, 0, sizeof *dst);
    if (src->kind == OV_CONST) {
        dst->kind = OV_CONST;
        dst->t = src->t;
        dst->t.data = malloc((src->t.numel ? src->t.numel : 1) * sizeof(float));
        if (!dst->t.data)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        memcpy(dst->t.data, src->t.data, src->t.numel * sizeof(float));
        return PPNN_OK;
    }
    ppnn_status st = onnx_value_identity(dst, h);
    if (st)
        return st;
    dst->epoch = src->epoch;
    memcpy(dst->a, src->a, h->numel * sizeof(float));
    memcpy(dst->b, src->b, h->numel * sizeof(float));
    memcpy(dst->c, src->c, h->numel * sizeof(float));
    memcpy(dst->pads, src->pads, sizeof dst->pads);
    return PPNN_OK;
}

static int has_pads(const onnx_value *v) { return v->pads[0] | v->pads[1] | v->pads[2] | v->pads[3]; }

/* A layer was appended: the head moves on (new epoch, new shape). Values of older epochs can
 * no longer be read (need_head refuses them as branches), so their coefficient arrays are
 * freed: memory stays bounded by the values of one epoch, whatever the graph's length. */
static void advance(lowerer *L, size_t rank, const int64_t *dims, nn_shape nn, int flat)
{
    for (size_t i = 0; i < L->g->nvalues; i++) {
        onnx_value *v = &L->vals[i];
        if (v->kind == OV_SYM && v->epoch == L->head.epoch && v->a) {
            free(v->a), free(v->b), free(v->c);
            v->a = v->b = v->c = NULL; /* kind and epoch stay: a later read is a branch */
        }
    }
    L->head.epoch++;
    L->head.rank = rank;
    memcpy(L->head.dims + 1, dims + 1, (rank - 1) * sizeof *dims);
    L->head.numel = nn_numel(nn);
    L->cur = nn;
    L->flat = flat;
}

/* Turns v (a quadratic of the head) into a poly layer unless it is the identity; afterwards
 * v is the identity of the new head. Pending pads stay with v. */
static ppnn_status materialise(lowerer *L, const onnx_node_ctx *c, onnx_value *v)
{
    if (onnx_value_is_identity(v, L->head.numel))
        return PPNN_OK;
    if (has_pads(v))
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "elementwise op between Pad and the "
                              "layer it pads");
    pl_layer l = {.kind = PL_POLY, .in = L->cur, .out = L->cur, .a = v->a, .b = v->b, .c = v->c,
                  .node = c->pos};
    ppnn_status st = pl_push(L->pl, &l);
    if (st)
        return onnx_node_fail(c, st, "%s", ppnn_last_error());
    v->a = v->b = v->c = NULL; /* moved into the layer */
    int64_t dims[4];
    memcpy(dims, L->head.dims, sizeof dims);
    advance(L, L->head.rank, dims, L->cur, L->flat);
    return onnx_value_identity(v, &L->head);
}

static ppnn_status emit_layer(lowerer *L, const onnx_node_ctx *c, pl_layer *l, size_t rank,
                              const int64_t *dims, int flat)
{
    l->node = c->pos;
    l->in = L->cur;
    ppnn_status st = pl_push(L->pl, l);
    if (st) {
        free(l->w), free(l->bias);
        return onnx_node_fail(c, st, "%s", ppnn_last_error());
    }
    advance(L, rank, dims, l->out, flat);
    return PPNN_OK;
}

/* Appends layer l for node c; the node's output is the new head, times post_scale[i] per
 * element when given (owned, freed here). */
static ppnn_status emit(lowerer *L, const onnx_node_ctx *c, pl_layer *l, size_t rank,
                        const int64_t *dims, int flat, float *post_scale)
{
    ppnn_status st = emit_layer(L, c, l, rank, dims, flat);
    onnx_value v;
    if (!st)
        st = onnx_value_identity(&v, &L->head);
    if (!st && post_scale)
        for (size_t i = 0; i < L->head.numel; i++)
            v.b[i] = post_scale[i];
    free(post_scale);
    return st ? st : set_output(L, c, 0, &v);
}

/* A Pad whose output reaches anything but a Conv / AveragePool: the padding becomes an exact
 * dense layer, and v the identity of its output. */
static ppnn_status settle_pads(lowerer *L, const onnx_node_ctx *c, onnx_value *v)
{
    if (!v || v->kind != OV_SYM || !has_pads(v))
        return PPNN_OK;
    onnx_linear_ctx wl = {L->g, L->pl, &L->head, &L->cur, L->flat};
    onnx_linear_result r;
    ppnn_status st = onnx_linear_pad(&r, &wl, c, v->pads);
    if (st)
        return st;
    if ((st = emit_layer(L, c, &r.layer, r.rank, r.dims, r.flat)))
        return st;
    onnx_value_clear(v);
    return onnx_value_identity(v, &L->head);
}

/* ---- elementwise -------------------------------------------------------------------------- */
static ppnn_status binary(lowerer *L, const onnx_node_ctx *c, char op)
{
    static const char *const none[] = {NULL};
    static const char *const legacy[] = {"broadcast", "axis", "consumed_inputs", NULL};
    ppnn_status st = onnx_attr_check(c, L->g->opset < 7 ? legacy : none);
    onnx_value *x, *y;
    if (st || (st = input(L, c, 0, &x)) || (st = input(L, c, 1, &y)))
        return st;
    if (!x || !y)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "needs two inputs");
    if (onnx_attr_find(c->n, "axis"))
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "legacy broadcast with 'axis'");
    onnx_value out = {0};
    const char *why = NULL;
    if (x->kind == OV_CONST && y->kind == OV_CONST) {
        if (onnx_const_binary(&out.t, op, &x->t, &y->t, &why))
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "%s", why);
        out.kind = OV_CONST;
        return set_output(L, c, 0, &out);
    }
    for (size_t k = 0; k < 2; k++) {
        onnx_value *v;
        if ((st = input(L, c, k, &v)) || (v->kind == OV_SYM && (st = need_head(L, c, k, &v))) ||
            (st = settle_pads(L, c, v)))
            return st;
    }
    if (op == '^') {
        /* Pow(x, e): e must be the constant 2 (or 1) everywhere. */
        if (y->kind != OV_CONST || x->kind != OV_SYM)
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "only Pow(x, constant) is supported");
        float e = y->t.numel ? y->t.data[0] : 0;
        for (size_t i = 0; i < y->t.numel; i++)
            if (y->t.data[i] != e)
                e = NAN;
        if (e == 1)
            return copy_value(&out, x, &L->head) ? PPNN_ERR_NOMEM : set_output(L, c, 0, &out);
        if (e != 2)
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "exponent %g: only Pow(x, 2) is a "
                                  "quadratic activation", (double)e);
        if (onnx_sym_binary(&out, '*', x, x, &L->head, &why))
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "%s", why);
        return set_output(L, c, 0, &out);
    }
    if (onnx_sym_binary(&out, op, x, y, &L->head, &why))
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "%s", why);
    return set_output(L, c, 0, &out);
}

static ppnn_status neg(lowerer *L, const onnx_node_ctx *c)
{
    static const char *const allowed[] = {"consumed_inputs", NULL};
    onnx_value *x, out = {0};
    ppnn_status st = onnx_attr_check(c, allowed);
    if (st || (st = input(L, c, 0, &x)))
        return st;
    if (!x)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "needs an input");
    if (x->kind == OV_SYM && ((st = need_head(L, c, 0, &x)) || (st = settle_pads(L, c, x))))
        return st;
    if ((st = copy_value(&out, x, &L->head)))
        return st;
    if (x->kind == OV_CONST) {
        for (size_t i = 0; i < out.t.numel; i++)
            out.t.data[i] = -out.t.data[i];
    } else {
        for (size_t i = 0; i < L->head.numel; i++)
            out.a[i] = -out.a[i], out.b[i] = -out.b[i], out.c[i] = -out.c[i];
    }
    return set_output(L, c, 0, &out);
}

static ppnn_status identity(lowerer *L, const onnx_node_ctx *c)
{
    static const char *const drop_attrs[] = {"ratio", "seed", "is_test", "consumed_inputs", NULL};
    static const char *const none[] = {NULL};
    int dropout = !strcmp(c->n->op_type, "Dropout");
    ppnn_status st = onnx_attr_check(c, dropout ? drop_attrs : none);
    int64_t is_test = 1;
    if (st || (st = onnx_attr_int(c, "is_test", &is_test)))
        return st;
    if (dropout && !is_test)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Dropout in training mode (is_test = 0)");
    onnx_value *x, *tm, out;
    if ((st = input(L, c, 0, &x)))
        return st;
    if (!x)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "needs an input");
    if (x->kind == OV_SYM && (st = need_head(L, c, 0, &x)))
        return st;
    if (dropout && (st = input(L, c, 2, &tm)) == PPNN_OK && tm &&
        (tm->kind != OV_CONST || (tm->t.numel && tm->t.data[0] != 0)))
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Dropout with training_mode set");
    if (st || (st = copy_value(&out, x, &L->head)))
        return st;
    return set_output(L, c, 0, &out); /* a Dropout mask output stays unavailable */
}

static ppnn_status constant(lowerer *L, const onnx_node_ctx *c)
{
    const Onnx__NodeProto *n = c->n;
    onnx_value out = {0};
    out.kind = OV_CONST;
    if (n->n_attribute != 1)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Constant needs exactly one attribute");
    const Onnx__AttributeProto *a = n->attribute[0];
    if (!a->name) /* protobuf-c leaves an absent name NULL (found by fuzz_onnx) */
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "Constant attribute without a name");
    char what[300];
    snprintf(what, sizeof what, "%s: node %zu (Constant)", L->g->file, c->pos);
    ppnn_status st = PPNN_OK;
    if (!strcmp(a->name, "value") && a->t) {
        st = onnx_tensor_from_proto(&out.t, a->t, what);
    } else if ((!strcmp(a->name, "value_float") && a->has_f) ||
               (!strcmp(a->name, "value_int") && a->has_i)) {
        out.t.numel = 1;
        out.t.data = malloc(sizeof(float));
        if (!out.t.data)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        out.t.data[0] = a->has_f && !strcmp(a->name, "value_float") ? a->f : (float)a->i;
    } else if (!strcmp(a->name, "value_floats") || !strcmp(a->name, "value_ints")) {
        int fl = !strcmp(a->name, "value_floats");
        size_t cnt = fl ? a->n_floats : a->n_ints;
        out.t.rank = 1, out.t.dims[0] = (int64_t)cnt, out.t.numel = cnt;
        out.t.data = malloc((cnt ? cnt : 1) * sizeof(float));
        if (!out.t.data)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < cnt; i++)
            out.t.data[i] = fl ? a->floats[i] : (float)a->ints[i];
    } else {
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Constant attribute '%s' is not "
                              "supported", a->name);
    }
    if (st)
        return st;
    return set_output(L, c, 0, &out);
}

static ppnn_status batchnorm(lowerer *L, const onnx_node_ctx *c)
{
    static const char *const allowed[] = {"epsilon", "momentum", "spatial", "is_test",
                                          "training_mode", "consumed_inputs", NULL};
    float eps = 1e-5f;
    int64_t spatial = 1, training = 0;
    ppnn_status st = onnx_attr_check(c, allowed);
    if (st || (st = onnx_attr_float(c, "epsilon", &eps)) ||
        (st = onnx_attr_int(c, "spatial", &spatial)) ||
        (st = onnx_attr_int(c, "training_mode", &training)))
        return st;
    size_t nout = 0;
    for (size_t k = 0; k < c->n->n_output; k++)
        nout += c->n->output[k][0] != 0;
    if (training || spatial != 1 || nout != 1)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "only inference-mode BatchNormalization "
                              "(one output, spatial = 1) is supported");
    onnx_value *x, *p[4];
    static const char *const roles[] = {"scale", "bias", "mean", "var"};
    if ((st = need_head(L, c, 0, &x)) || (st = settle_pads(L, c, x)))
        return st;
    if (L->head.rank < 2)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "needs a channel dimension");
    size_t C = (size_t)L->head.dims[1], inner = L->head.numel / C;
    for (int k = 0; k < 4; k++) {
        if ((st = need_const(L, c, (size_t)k + 1, &p[k], roles[k])))
            return st;
        if (p[k]->t.numel != C)
            return onnx_node_fail(c, PPNN_ERR_FORMAT, "%s has %zu values for %zu channels",
                                  roles[k], p[k]->t.numel, C);
    }
    onnx_value out;
    if ((st = copy_value(&out, x, &L->head)))
        return st;
    for (size_t i = 0; i < L->head.numel; i++) {
        size_t ch = i / inner;
        double var = p[3]->t.data[ch] + (double)eps;
        if (!(var > 0)) {
            onnx_value_clear(&out);
            return onnx_node_fail(c, PPNN_ERR_FORMAT, "variance + epsilon <= 0 in channel %zu",
                                  ch);
        }
        double s = p[0]->t.data[ch] / sqrt(var), t = p[1]->t.data[ch] - p[2]->t.data[ch] * s;
        out.a[i] = (float)(out.a[i] * s), out.b[i] = (float)(out.b[i] * s);
        out.c[i] = (float)(out.c[i] * s + t);
    }
    return set_output(L, c, 0, &out);
}

/* ---- shapes ------------------------------------------------------------------------------- */
static ppnn_status flatten_to_2d(lowerer *L, const onnx_node_ctx *c, onnx_value *x)
{
    ppnn_status st = materialise(L, c, x);
    if (st)
        return st;
    if (L->head.rank == 2) {
        onnx_value out;
        return copy_value(&out, x, &L->head) ? PPNN_ERR_NOMEM : set_output(L, c, 0, &out);
    }
    int64_t dims[4] = {L->head.dims[0], (int64_t)L->head.numel, 1, 1};
    pl_layer l = {.kind = PL_FLATTEN, .out = {(uint32_t)L->head.numel, 1, 1}};
    return emit(L, c, &l, 2, dims, 0, NULL);
}

static ppnn_status flatten(lowerer *L, const onnx_node_ctx *c)
{
    static const char *const allowed[] = {"axis", NULL};
    int64_t axis = 1;
    onnx_value *x;
    ppnn_status st = onnx_attr_check(c, allowed);
    if (st || (st = onnx_attr_int(c, "axis", &axis)) || (st = need_head(L, c, 0, &x)) ||
        (st = settle_pads(L, c, x)))
        return st;
    if (axis < 0)
        axis += (int64_t)L->head.rank;
    if (axis != 1)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Flatten with axis %lld: only axis 1 "
                              "keeps the batch dimension apart", (long long)axis);
    return flatten_to_2d(L, c, x);
}

static ppnn_status reshape(lowerer *L, const onnx_node_ctx *c)
{
    static const char *const allowed[] = {"allowzero", NULL};
    onnx_value *x, *s;
    ppnn_status st = onnx_attr_check(c, allowed);
    if (st || (st = need_head(L, c, 0, &x)) || (st = settle_pads(L, c, x)) ||
        (st = need_const(L, c, 1, &s, "shape")))
        return st;
    int64_t allowzero = 0;
    if ((st = onnx_attr_int(c, "allowzero", &allowzero)))
        return st;
    const float *d = s->t.data;
    int ok = s->t.numel == 2 &&
             (d[0] == -1 || (d[0] == 0 && !allowzero) || d[0] == (float)L->head.dims[0]) &&
             (d[1] == -1 || d[1] == (float)L->head.numel) && !(d[0] == -1 && d[1] == -1);
    if (!ok)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Reshape to anything but (N, %zu) is "
                              "not supported (ppnn layers see one image as C x H x W or a "
                              "vector)", L->head.numel);
    return flatten_to_2d(L, c, x);
}

/* ---- data input ---------------------------------------------------------------------------- */
static ppnn_status set_input(lowerer *L, nn_shape *input)
{
    const onnx_graph *g = L->g;
    const Onnx__ValueInfoProto *vi = g->data_info;
    const char *nm = g->names[g->data_input];
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: input '%s' is not a tensor", g->file, nm);
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 1 && tt->elem_type != 11)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: input '%s' has element type %d (float "
                         "expected)", g->file, nm, (int)tt->elem_type);
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (!sh || sh->n_dim < 1 || sh->n_dim > 4)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: input '%s' must have a known shape of "
                         "rank 1 (K, one image), 2 (N, K), 3 (N, H, W) or 4 (N, C, H, W)",
                         g->file, nm);
    /* A rank-1 input is one image without a batch dimension: give it a virtual one. */
    const size_t virt = sh->n_dim == 1, rank = sh->n_dim + virt;
    int64_t dims[4] = {1, 1, 1, 1};
    for (size_t i = virt; i < rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i - virt];
        int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (i == 0) {
            dims[0] = fixed && d->dim_value > 0 ? d->dim_value : 1;
            continue;
        }
        if (!fixed || d->dim_value < 1 || d->dim_value > NN_MAX_DIM)
            return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: input '%s' has a dynamic or "
                             "out-of-range dimension %zu: ppnn needs fixed image sizes (1..%d)",
                             g->file, nm, i, NN_MAX_DIM);
        dims[i] = d->dim_value;
    }
    L->head.rank = rank;
    memcpy(L->head.dims, dims, sizeof dims);
    nn_shape s = rank == 4 ? (nn_shape){(uint32_t)dims[1], (uint32_t)dims[2], (uint32_t)dims[3]}
                 : rank == 3 ? (nn_shape){(uint32_t)dims[1], (uint32_t)dims[2], 1}
                             : (nn_shape){(uint32_t)dims[1], 1, 1};
    if (nn_numel(s) > NN_MAX_NUMEL)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: input '%s' has %zu elements per image "
                         "(limit %u)", g->file, nm, nn_numel(s), NN_MAX_NUMEL);
    L->head.numel = nn_numel(s);
    L->cur = *input = s;
    return onnx_value_identity(&L->vals[g->data_input], &L->head);
}

/* What to use instead of an op ppnn does not run. */
static const char *instead(const char *op)
{
    static const char *const acts[] = {"Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Elu",
                                       "Selu", "Celu", "Softplus", "Softsign", "HardSigmoid",
                                       "HardSwish", "Gelu", "Mish", "Erf", "Abs", "Clip", NULL};
    for (size_t i = 0; acts[i]; i++)
        if (!strcmp(op, acts[i]))
            return "use a polynomial activation instead (x*x, Pow(x, 2) or a*x*x + b*x + c "
                   "written with Mul/Add)";
    if (!strcmp(op, "MaxPool") || !strcmp(op, "GlobalMaxPool") || !strcmp(op, "LpPool"))
        return "use AveragePool instead";
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax"))
        return "export the logits without it (ppnn returns logits; the argmax is the same)";
    return "ppnn supports Conv, Gemm, MatMul, Add, Sub, Mul, Div, Neg, Pow, "
           "BatchNormalization, AveragePool, GlobalAveragePool, Flatten, Reshape, Pad, "
           "Identity, Dropout and Constant";
}

static ppnn_status lower_node(lowerer *L, const onnx_node_ctx *c)
{
    const char *op = c->n->op_type;
    if (!strcmp(op, "Add")) return binary(L, c, '+');
    if (!strcmp(op, "Sub")) return binary(L, c, '-');
    if (!strcmp(op, "Mul")) return binary(L, c, '*');
    if (!strcmp(op, "Div")) return binary(L, c, '/');
    if (!strcmp(op, "Pow")) return binary(L, c, '^');
    if (!strcmp(op, "Neg")) return neg(L, c);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return identity(L, c);
    if (!strcmp(op, "Constant")) return constant(L, c);
    if (!strcmp(op, "BatchNormalization")) return batchnorm(L, c);
    if (!strcmp(op, "Flatten")) return flatten(L, c);
    if (!strcmp(op, "Reshape")) return reshape(L, c);
    onnx_linear_ctx wl = {L->g, L->pl, &L->head, &L->cur, L->flat};
    onnx_value *x = NULL;
    int windowed = !strcmp(op, "Conv") || !strcmp(op, "AveragePool") ||
                   !strcmp(op, "GlobalAveragePool") || !strcmp(op, "Pad") ||
                   !strcmp(op, "Gemm") || !strcmp(op, "MatMul");
    if (!windowed)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "operator %s is not supported: %s", op,
                              instead(op));
    ppnn_status st = need_head(L, c, 0, &x);
    if (st)
        return st;
    if (!strcmp(op, "Pad") || !strcmp(op, "Conv") || !strcmp(op, "AveragePool")) {
        /* Pads are zeros of the value itself: an elementwise map must be applied first. */
        if (!has_pads(x) && (st = materialise(L, c, x)))
            return st;
    } else if ((st = settle_pads(L, c, x)) || (st = materialise(L, c, x))) {
        return st;
    }
    onnx_value *consts[3] = {NULL, NULL, NULL};
    for (size_t k = 1; k < c->n->n_input && k < 4; k++) {
        if ((st = input(L, c, k, &consts[k - 1])))
            return st;
        if (consts[k - 1] && consts[k - 1]->kind != OV_CONST)
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "input %zu must be a constant (an "
                                  "initializer), not computed from the data", k);
    }
    if (c->n->n_input > 4)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "too many inputs");
    onnx_linear_result r;
    memset(&r, 0, sizeof r);
    const onnx_tensor *ct[3] = {consts[0] ? &consts[0]->t : NULL, consts[1] ? &consts[1]->t : NULL,
                                consts[2] ? &consts[2]->t : NULL};
    if ((st = onnx_linear_lower(&r, &wl, c, x->pads, ct)))
        return st;
    if (r.pad_only) {
        onnx_value out;
        if ((st = copy_value(&out, x, &L->head)))
            return st;
        for (int k = 0; k < 4; k++)
            out.pads[k] += r.pads[k];
        return set_output(L, c, 0, &out);
    }
    return emit(L, c, &r.layer, r.rank, r.dims, r.flat, r.post_scale);
}

ppnn_status onnx_lower(pl_list *p, nn_shape *input, const onnx_graph *g)
{
    lowerer L;
    memset(&L, 0, sizeof L);
    L.g = g, L.pl = p;
    L.vals = calloc(g->nvalues, sizeof *L.vals);
    if (!L.vals)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", g->file);
    ppnn_status st = set_input(&L, input);
    for (size_t k = 0; !st && k < g->g->n_node; k++) {
        onnx_node_ctx c = {g, g->g->node[g->order[k]], k};
        st = lower_node(&L, &c);
    }
    if (!st) {
        onnx_value *out = &L.vals[g->output];
        onnx_node_ctx c = {g, NULL, g->g->n_node};
        Onnx__NodeProto fake = ONNX__NODE_PROTO__INIT;
        fake.name = (char *)"output";
        fake.op_type = (char *)"graph output";
        c.n = &fake;
        if (out->kind != OV_SYM)
            st = ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: the graph output '%s' does not depend on "
                           "the input", g->file, g->names[g->output]);
        else if (out->epoch != L.head.epoch)
            st = onnx_node_fail(&c, PPNN_ERR_UNSUPPORTED, "the output is computed before the "
                                "last layer (a branch): ppnn runs chains of layers");
        else if (!(st = settle_pads(&L, &c, out)))
            st = materialise(&L, &c, out);
        if (!st && p->n == 0)
            st = ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: the graph computes no layer", g->file);
    }
    for (size_t i = 0; i < g->nvalues; i++)
        onnx_value_clear(&L.vals[i]);
    free(L.vals);
    return st;
}
