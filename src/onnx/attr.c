/* Node attributes: typed getters that check the attribute's declared type, a whitelist check
 * (an attribute ppnn does not interpret is refused, never ignored), node-naming errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx/inner.h"

ppnn_status onnx_node_fail(const onnx_node_ctx *c, ppnn_status code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ppnn_fail(code, "%s: node %zu '%s' (%s): %s", c->g->file, c->pos,
                     c->n->name ? c->n->name : "", c->n->op_type, msg);
}

const Onnx__AttributeProto *onnx_attr_find(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

ppnn_status onnx_attr_check(const onnx_node_ctx *c, const char *const *allowed)
{
    for (size_t i = 0; i < c->n->n_attribute; i++) {
        const char *nm = c->n->attribute[i]->name ? c->n->attribute[i]->name : "";
        size_t k = 0;
        while (allowed[k] && strcmp(allowed[k], nm))
            k++;
        if (!allowed[k])
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "attribute '%s' is not supported",
                                  nm);
    }
    return PPNN_OK;
}

static ppnn_status want(const onnx_node_ctx *c, const Onnx__AttributeProto *a,
                        Onnx__AttributeProto__AttributeType t, const char *tname)
{
    if (a->has_type && a->type != t)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "attribute '%s' must be %s", a->name, tname);
    return PPNN_OK;
}

ppnn_status onnx_attr_int(const onnx_node_ctx *c, const char *name, int64_t *out)
{
    const Onnx__AttributeProto *a = onnx_attr_find(c->n, name);
    if (!a)
        return PPNN_OK;
    ppnn_status st = want(c, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an int");
    if (!st && !a->has_i)
        st = onnx_node_fail(c, PPNN_ERR_FORMAT, "attribute '%s' has no value", name);
    if (!st)
        *out = a->i;
    return st;
}

ppnn_status onnx_attr_float(const onnx_node_ctx *c, const char *name, float *out)
{
    const Onnx__AttributeProto *a = onnx_attr_find(c->n, name);
    if (!a)
        return PPNN_OK;
    ppnn_status st = want(c, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a float");
    if (!st && !a->has_f)
        st = onnx_node_fail(c, PPNN_ERR_FORMAT, "attribute '%s' has no value", name);
    if (!st)
        *out = a->f;
    return st;
}

ppnn_status onnx_attr_ints(const onnx_node_ctx *c, const char *name, int64_t *out, size_t cap,
                           size_t *n)
{
    const Onnx__AttributeProto *a = onnx_attr_find(c->n, name);
    if (!a)
        return PPNN_OK;
    ppnn_status st = want(c, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "a list of ints");
    if (st)
        return st;
    if (a->n_ints > cap)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "attribute '%s' has %zu values (at most "
                              "%zu: 2-D images)", name, a->n_ints, cap);
    if (a->n_ints) /* protobuf-c leaves an empty repeated field NULL */
        memcpy(out, a->ints, a->n_ints * sizeof *out);
    *n = a->n_ints;
    return PPNN_OK;
}

ppnn_status onnx_attr_string(const onnx_node_ctx *c, const char *name, char *buf, size_t cap)
{
    const Onnx__AttributeProto *a = onnx_attr_find(c->n, name);
    if (!a)
        return PPNN_OK;
    ppnn_status st = want(c, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a string");
    if (st)
        return st;
    size_t len = a->has_s ? a->s.len : 0;
    if (len >= cap || (len && memchr(a->s.data, 0, len)))
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "attribute '%s' is not a short string", name);
    if (len) /* an empty string's data may be NULL (found by fuzz_onnx) */
        memcpy(buf, a->s.data, len);
    buf[len] = 0;
    return PPNN_OK;
}
