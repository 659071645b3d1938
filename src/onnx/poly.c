/* Symbolic quadratics: every elementwise node on the chain's value is evaluated on
 * coefficient arrays (value = a·h² + b·h + c per element of the head h), so x*x, Pow(x, 2),
 * a*x*x + b*x + c, Horner forms, BatchNormalization and plain affine Mul/Add all arrive at
 * one (a, b, c) per element whatever order the exporter wrote them in. Constants broadcast
 * with ONNX's multidirectional rules, but may neither enlarge the tensor nor vary along the
 * batch dimension (a per-image network cannot depend on the image's index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/inner.h"

void onnx_value_clear(onnx_value *v)
{
    onnx_tensor_free(&v->t);
    free(v->a), free(v->b), free(v->c);
    memset(v, 0, sizeof *v);
}

static ppnn_status alloc_sym(onnx_value *v, const onnx_head *h)
{
    memset(v, 0, sizeof *v);
    v->kind = OV_SYM;
    v->epoch = h->epoch;
    v->a = calloc(h->numel, sizeof *v->a);
    v->b = calloc(h->numel, sizeof *v->b);
    v->c = calloc(h->numel, sizeof *v->c);
    if (!v->a || !v->b || !v->c) {
        onnx_value_clear(v);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a tensor of %zu elements", h->numel);
    }
    return PPNN_OK;
}

ppnn_status onnx_value_identity(onnx_value *v, const onnx_head *h)
{
    ppnn_status st = alloc_sym(v, h);
    for (size_t i = 0; !st && i < h->numel; i++)
        v->b[i] = 1;
    return st;
}

int onnx_value_is_identity(const onnx_value *v, size_t numel)
{
    for (size_t i = 0; i < numel; i++)
        if (v->a[i] != 0 || v->b[i] != 1 || v->c[i] != 0)
            return 0;
    return 1;
}

/* Index into a tensor of dims td (rank tr) broadcast against out dims od (rank orank) for the
 * out coordinates coord[0..orank). */
static size_t bcast_offset(const size_t *coord, const int64_t *od, size_t orank,
                           const int64_t *td, size_t tr)
{
    size_t off = 0;
    for (size_t j = 0; j < tr; j++) {
        size_t oj = orank - tr + j;
        size_t cj = td[j] == 1 ? 0 : coord[oj];
        off = off * (size_t)td[j] + cj;
    }
    (void)od;
    return off;
}

int onnx_broadcast(float *out, const onnx_tensor *t, const onnx_head *h, const char **why)
{
    if (t->rank > h->rank) {
        *why = "the constant has a higher rank than the tensor (it would enlarge it)";
        return 1;
    }
    for (size_t j = 0; j < t->rank; j++) {
        size_t oj = h->rank - t->rank + j;
        if (t->dims[j] == 1)
            continue;
        if (oj == 0) {
            *why = "the constant varies along the batch dimension";
            return 1;
        }
        if (t->dims[j] != h->dims[oj]) {
            *why = "the constant's shape does not broadcast to the tensor's";
            return 1;
        }
    }
    size_t coord[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < h->numel; i++) {
        size_t r = i;
        for (size_t j = h->rank; j-- > 1;) {
            coord[j] = r % (size_t)h->dims[j];
            r /= (size_t)h->dims[j];
        }
        coord[0] = 0;
        out[i] = t->data[bcast_offset(coord, h->dims, h->rank, t->dims, t->rank)];
    }
    return 0;
}

int onnx_sym_binary(onnx_value *out, char op, const onnx_value *x, const onnx_value *y,
                    const onnx_head *h, const char **why)
{
    const size_t n = h->numel;
    if (alloc_sym(out, h)) {
        *why = "out of memory";
        return 1;
    }
    if (x->kind == OV_SYM && y->kind == OV_SYM) {
        for (size_t i = 0; i < n; i++) {
            double a1 = x->a[i], b1 = x->b[i], c1 = x->c[i], a2 = y->a[i], b2 = y->b[i],
                   c2 = y->c[i];
            if (op == '+' || op == '-') {
                double s = op == '+' ? 1 : -1;
                out->a[i] = (float)(a1 + s * a2), out->b[i] = (float)(b1 + s * b2);
                out->c[i] = (float)(c1 + s * c2);
            } else if (op == '*') {
                if (a1 * a2 != 0 || a1 * b2 + b1 * a2 != 0) {
                    *why = "the product has degree above 2 (ppnn activations are quadratic)";
                    onnx_value_clear(out);
                    return 1;
                }
                out->a[i] = (float)(a1 * c2 + b1 * b2 + c1 * a2);
                out->b[i] = (float)(b1 * c2 + c1 * b2);
                out->c[i] = (float)(c1 * c2);
            } else {
                *why = "division by the tensor is not a polynomial";
                onnx_value_clear(out);
                return 1;
            }
        }
        return 0;
    }
    const onnx_value *s = x->kind == OV_SYM ? x : y, *k = x->kind == OV_SYM ? y : x;
    float *kv = malloc(n * sizeof *kv);
    if (!kv || onnx_broadcast(kv, &k->t, h, why)) {
        if (!kv)
            *why = "out of memory";
        free(kv);
        onnx_value_clear(out);
        return 1;
    }
    int sym_first = x->kind == OV_SYM;
    for (size_t i = 0; i < n; i++) {
        double a = s->a[i], b = s->b[i], c = s->c[i], v = kv[i];
        switch (op) {
        case '+': c += v; break;
        case '-':
            if (sym_first)
                c -= v;
            else
                a = -a, b = -b, c = v - c;
            break;
        case '*': a *= v, b *= v, c *= v; break;
        default: /* '/' */
            if (!sym_first || v == 0) {
                *why = sym_first ? "division by zero" : "division by the tensor is not a polynomial";
                free(kv);
                onnx_value_clear(out);
                return 1;
            }
            a /= v, b /= v, c /= v;
        }
        out->a[i] = (float)a, out->b[i] = (float)b, out->c[i] = (float)c;
    }
    free(kv);
    return 0;
}

int onnx_const_binary(onnx_tensor *out, char op, const onnx_tensor *x, const onnx_tensor *y,
                      const char **why)
{
    memset(out, 0, sizeof *out);
    size_t r = x->rank > y->rank ? x->rank : y->rank;
    int64_t od[ONNX_MAX_RANK];
    size_t numel = 1;
    for (size_t j = 0; j < r; j++) {
        int64_t dx = j + x->rank >= r ? x->dims[j + x->rank - r] : 1;
        int64_t dy = j + y->rank >= r ? y->dims[j + y->rank - r] : 1;
        if (dx != dy && dx != 1 && dy != 1) {
            *why = "constant shapes do not broadcast";
            return 1;
        }
        od[j] = dx == 1 ? dy : dx;
        numel *= (size_t)od[j];
    }
    if (numel > x->numel + y->numel && numel > ((size_t)1 << 24)) {
        *why = "constant broadcast too large";
        return 1;
    }
    out->data = malloc((numel ? numel : 1) * sizeof *out->data);
    if (!out->data) {
        *why = "out of memory";
        return 1;
    }
    out->rank = r, out->numel = numel;
    memcpy(out->dims, od, r * sizeof *od);
    size_t coord[ONNX_MAX_RANK];
    for (size_t i = 0; i < numel; i++) {
        size_t rem = i;
        for (size_t j = r; j-- > 0;) {
            coord[j] = od[j] ? rem % (size_t)od[j] : 0;
            rem = od[j] ? rem / (size_t)od[j] : 0;
        }
        double a = x->data[bcast_offset(coord, od, r, x->dims, x->rank)];
        double b = y->data[bcast_offset(coord, od, r, y->dims, y->rank)];
        double v = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b
                   : op == '/' ? a / b : pow(a, b);
        out->data[i] = (float)v;
    }
    return 0;
}
