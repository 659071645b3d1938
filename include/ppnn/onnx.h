/* ppnn onnx layer: imports an ONNX model (protobuf, parsed by code protoc-c generates from
 * Debian's onnx.proto) as an ordinary nn_model. Depends on nn and util only (never on ckks).
 *
 * The graph must be a chain: one data input (N x C x H x W, N x H x W or N x K; the batch
 * dimension symbolic or fixed, every other dimension fixed), one output, every node reading
 * the value the chain has reached (no branches). Nodes map to nn layers (docs/onnx.md):
 *   Conv, Gemm, MatMul, AveragePool, GlobalAveragePool  -> conv2d / dense / avgpool
 *   Flatten, Reshape to (N, K)                           -> flatten
 *   Add, Sub, Mul, Div, Neg, Pow(x, 2), BatchNormalization on the chain's value with constants
 *     -> collected symbolically into a quadratic a*x^2 + b*x + c per element; an affine result
 *        is folded into the neighbouring linear layer (or the input normalisation), a
 *        quadratic one becomes a poly layer of the granularity its coefficients have
 *        (square, layer, channel, element)
 *   Pad (constant 0)                                     -> fused into the next Conv/AveragePool
 *   Identity, Dropout (inference), Constant, initializers
 * Everything else is refused (PPNN_ERR_UNSUPPORTED) with a message naming the node, its op,
 * its position and what to use instead. */
#ifndef PPNN_ONNX_H
#define PPNN_ONNX_H

#include "ppnn/nn.h"
#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest ONNX file accepted (weights inline; external data is refused). */
#define ONNX_MAX_FILE ((size_t)1 << 30)
#define ONNX_MAX_NODES 100000
/* A Conv/AveragePool that no nn window layer expresses (non-square kernel, unequal strides,
 * asymmetric pads, count_include_pad = 0 with pads) is lowered to an exact dense layer when
 * its matrix has at most this many entries. */
#define ONNX_MAX_DENSE_FALLBACK ((size_t)1 << 23)

/* A constant graph input bound at import (the conformance suite passes weights as inputs).
 * name NULL: the unnamed bindings bind the 2nd, 3rd, ... non-initializer graph inputs in
 * order (the first is the data). */
typedef struct onnx_binding {
    const char *name;
    const uint8_t *tensor; /* serialized TensorProto */
    size_t len;
} onnx_binding;

typedef struct onnx_import_opts {
    /* Input normalisation of the imported model: the graph's input is (p/255 - mean) / std
     * for pixel bytes p. Defaults (onnx_import_opts_default): mean 0, std 1 (input p/255). */
    float norm_mean, norm_std;
    const onnx_binding *bindings;
    size_t nbindings;
} onnx_import_opts;

void onnx_import_opts_default(onnx_import_opts *o);

/* Imports a serialized ModelProto into m (initialised by this call; free with nn_model_free).
 * `name` (the file name) starts every error message. Errors: PPNN_ERR_FORMAT (malformed
 * protobuf, cycles, missing values, tensors whose data does not match their dims or dtype,
 * sizes beyond the limits), PPNN_ERR_UNSUPPORTED (ops, attributes or shapes ppnn cannot run),
 * PPNN_ERR_NOMEM. Ranges are not recorded: see onnx_calibrate. */
PPNN_MUST_CHECK ppnn_status onnx_import(nn_model *m, const uint8_t *buf, size_t len,
                                        const char *name, const onnx_import_opts *opts);
/* Reads the file (at most ONNX_MAX_FILE bytes) and imports it. */
PPNN_MUST_CHECK ppnn_status onnx_import_file(nn_model *m, const char *path,
                                             const onnx_import_opts *opts);

/* ---- tensors (TensorProto) ---------------------------------------------------------------- */
#define ONNX_MAX_RANK 8
typedef struct onnx_tensor {
    size_t rank;
    int64_t dims[ONNX_MAX_RANK];
    size_t numel;
    float *data; /* numel floats, owned (float, double and integer types are converted) */
} onnx_tensor;

/* Parses a serialized TensorProto (e.g. a test_data_set_0/input_0.pb). The element count is
 * checked against the bytes present before allocating. */
PPNN_MUST_CHECK ppnn_status onnx_tensor_parse(onnx_tensor *t, const uint8_t *buf, size_t len,
                                              const char *name);
void onnx_tensor_free(onnx_tensor *t);

/* ---- calibration ---------------------------------------------------------------------------
 * The planner needs the range of every layer's input and of the logits (nn_layer.in_range,
 * nn_model.out_range), recorded exactly as training records them (nn_record_ranges_from). The
 * data come from a source of images: fill(ctx, x, first, n) writes images first..first+n-1 as
 * network inputs (n * numel(m->input) floats, already normalised by the model's
 * normalisation); `count` images are used. */
PPNN_MUST_CHECK ppnn_status onnx_calibrate(nn_model *m, nn_input_fill fill, void *ctx,
                                           size_t count);

#ifdef __cplusplus
}
#endif
#endif
