/* TensorProto -> float tensor: dtype, dims and the data actually present are checked against
 * each other before anything is allocated (the element count can never exceed the bytes in
 * the file, whatever the dims claim). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/inner.h"

enum { /* TensorProto.DataType values used here (onnx.proto) */
    DT_FLOAT = 1, DT_UINT8 = 2, DT_INT8 = 3, DT_UINT16 = 4, DT_INT16 = 5, DT_INT32 = 6,
    DT_INT64 = 7, DT_BOOL = 9, DT_DOUBLE = 11
};

static size_t elem_bytes(int32_t dt)
{
    switch (dt) {
    case DT_FLOAT: case DT_INT32: return 4;
    case DT_DOUBLE: case DT_INT64: return 8;
    case DT_UINT16: case DT_INT16: return 2;
    case DT_UINT8: case DT_INT8: case DT_BOOL: return 1;
    default: return 0;
    }
}

static double raw_value(const uint8_t *p, int32_t dt)
{
    uint64_t u = 0;
    for (size_t k = elem_bytes(dt); k-- > 0;)
        u = u << 8 | p[k]; /* little-endian, as onnx.proto requires for raw_data */
    switch (dt) {
    case DT_FLOAT: { uint32_t v = (uint32_t)u; float f; memcpy(&f, &v, 4); return f; }
    case DT_DOUBLE: { double d; memcpy(&d, &u, 8); return d; }
    case DT_INT32: return (double)(int32_t)(uint32_t)u;
    case DT_INT64: return (double)(int64_t)u;
    case DT_INT16: return (double)(int16_t)(uint16_t)u;
    case DT_INT8: return (double)(int8_t)(uint8_t)u;
    default: return (double)u; /* unsigned types and bool */
    }
}

void onnx_tensor_free(onnx_tensor *t)
{
    if (!t)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

ppnn_status onnx_tensor_from_proto(onnx_tensor *t, const Onnx__TensorProto *p, const char *what)
{
    memset(t, 0, sizeof *t);
    if (p->n_external_data || (p->has_data_location &&
                               p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: external tensor data is not supported "
                         "(save the model with the weights inside)", what);
    int32_t dt = p->has_data_type ? p->data_type : 0;
    size_t esz = elem_bytes(dt);
    if (!esz)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: tensor data type %d is not supported "
                         "(float, double or integer)", what, (int)dt);
    if (p->n_dims > ONNX_MAX_RANK)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: rank %zu above %d", what, p->n_dims,
                         ONNX_MAX_RANK);
    size_t numel = 1;
    for (size_t i = 0; i < p->n_dims; i++) {
        if (p->dims[i] < 0 || (p->dims[i] > 0 && numel > SIZE_MAX / 16 / (size_t)p->dims[i]))
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: bad dimension %lld", what,
                             (long long)p->dims[i]);
        numel *= (size_t)p->dims[i];
        t->dims[i] = p->dims[i];
    }
    t->rank = p->n_dims;
    size_t have;
    if (p->has_raw_data) {
        if (p->raw_data.len % esz)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: raw data of %zu bytes is not a whole number "
                             "of %zu-byte elements", what, p->raw_data.len, esz);
        have = p->raw_data.len / esz;
    } else {
        have = dt == DT_FLOAT ? p->n_float_data
               : dt == DT_DOUBLE ? p->n_double_data
               : dt == DT_INT64 ? p->n_int64_data
                                : p->n_int32_data;
    }
    if (have != numel)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: dims give %zu elements but the tensor holds %zu",
                         what, numel, have);
    t->numel = numel;
    t->data = malloc((numel ? numel : 1) * sizeof *t->data);
    if (!t->data)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory for %zu elements", what, numel);
    for (size_t i = 0; i < numel; i++) {
        double v = p->has_raw_data ? raw_value(p->raw_data.data + i * esz, dt)
                   : dt == DT_FLOAT ? p->float_data[i]
                   : dt == DT_DOUBLE ? p->double_data[i]
                   : dt == DT_INT64 ? (double)p->int64_data[i]
                                    : (double)p->int32_data[i];
        t->data[i] = (float)v;
    }
    if (dt == DT_FLOAT || dt == DT_DOUBLE)
        for (size_t i = 0; i < numel; i++)
            if (!isfinite(t->data[i])) {
                onnx_tensor_free(t);
                return ppnn_fail(PPNN_ERR_FORMAT, "%s: non-finite value at element %zu", what,
                                 i);
            }
    return PPNN_OK;
}

ppnn_status onnx_tensor_parse(onnx_tensor *t, const uint8_t *buf, size_t len, const char *name)
{
    memset(t, 0, sizeof *t);
    ProtobufCAllocator a;
    onnx_alloc_budget b;
    onnx_allocator_init(&a, &b, len * 256 + ((size_t)1 << 20));
    Onnx__TensorProto *p = onnx__tensor_proto__unpack(&a, len, buf);
    if (!p)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a TensorProto (malformed protobuf)", name);
    ppnn_status st = onnx_tensor_from_proto(t, p, name);
    onnx__tensor_proto__free_unpacked(p, &a);
    return st;
}
