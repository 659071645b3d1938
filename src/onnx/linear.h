/* Lowering of the linear nodes (Conv, AveragePool, GlobalAveragePool, Gemm, MatMul) and Pad:
 * attribute checks, window geometry (pads, auto_pad, strides, fused Pad), and the choice of
 * nn layer (linear.c). Internal to the onnx layer. */
#ifndef PPNN_ONNX_LINEAR_H
#define PPNN_ONNX_LINEAR_H

#include "onnx/inner.h"

typedef struct onnx_linear_ctx {
    const onnx_graph *g;
    pl_list *pl;
    const onnx_head *head; /* the node's data input */
    const nn_shape *cur;   /* its nn shape */
    int flat;              /* the nn tensor is flat (a dense layer produced it) */
} onnx_linear_ctx;

typedef struct onnx_linear_result {
    int pad_only;          /* Pad: no layer; add pads[] to the value's pending pads */
    uint32_t pads[4];      /* top, left, bottom, right */
    pl_layer layer;        /* otherwise: the layer to append (weights owned) */
    size_t rank;           /* ONNX rank and dims of the output (dims[0] = batch) */
    int64_t dims[4];
    int flat;              /* the layer's nn output is flat although the ONNX one is CxHxW */
    float *post_scale;     /* NULL, or a per-element factor on the layer's output (owned):
                            * the node's value is post_scale[i] * layer output[i] */
} onnx_linear_result;

/* consts[k] = input k+1 of the node (constant) or NULL; fused = pending zero pads of the
 * data input (top, left, bottom, right) from preceding Pad nodes. */
PPNN_MUST_CHECK ppnn_status onnx_linear_lower(onnx_linear_result *r, const onnx_linear_ctx *w,
                                              const onnx_node_ctx *c, const uint32_t fused[4],
                                              const onnx_tensor *const consts[3]);

/* A zero padding (top, left, bottom, right) that no Conv/AveragePool absorbs, as an exact
 * dense layer (e.g. a Pad whose output is the graph's). */
PPNN_MUST_CHECK ppnn_status onnx_linear_pad(onnx_linear_result *r, const onnx_linear_ctx *w,
                                            const onnx_node_ctx *c, const uint32_t pads[4]);

#endif
