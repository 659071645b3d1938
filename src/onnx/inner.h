/* Internal types of the onnx layer: the validated graph, values during lowering, the list of
 * pending layers the folding passes rewrite before the nn_model is built. */
#ifndef PPNN_ONNX_INNER_H
#define PPNN_ONNX_INNER_H

#include "onnx/onnx.pb-c.h"
#include "ppnn/onnx.h"

/* ---- graph (graph.c) ---------------------------------------------------------------------- */
typedef struct onnx_graph {
    Onnx__ModelProto *model;
    const Onnx__GraphProto *g;
    const char *file;       /* for messages */
    int64_t opset;          /* version of the default ("" / "ai.onnx") domain */
    size_t *order;          /* g->node indices in topological order */
    size_t nvalues;         /* value ids: every initializer, input and node output name */
    const char **names;     /* names[id] (pointers into the protobuf) */
    size_t *slots, nslots;  /* open-addressing hash table of ids + 1 (0 = empty) */
    const Onnx__TensorProto **init;   /* init[id]: initializer or binding (NULL otherwise) */
    size_t data_input;      /* value id of the one non-constant graph input */
    const Onnx__ValueInfoProto *data_info;
    size_t output;          /* value id of the graph output */
    Onnx__TensorProto **bound; /* unpacked bindings (owned) */
    size_t nbound;
} onnx_graph;

PPNN_MUST_CHECK ppnn_status onnx_graph_load(onnx_graph *g, const uint8_t *buf, size_t len,
                                            const char *file, const onnx_import_opts *opts);
void onnx_graph_free(onnx_graph *g);
/* Value id of name, or SIZE_MAX. */
size_t onnx_graph_find(const onnx_graph *g, const char *name);
/* Protobuf allocator that refuses to allocate more than `limit` bytes in total, so a small
 * file cannot make the parser allocate gigabytes. */
typedef struct onnx_alloc_budget {
    size_t used, limit;
} onnx_alloc_budget;
void onnx_allocator_init(ProtobufCAllocator *a, onnx_alloc_budget *b, size_t limit);

/* ---- tensors (tensor.c) ------------------------------------------------------------------- */
PPNN_MUST_CHECK ppnn_status onnx_tensor_from_proto(onnx_tensor *t, const Onnx__TensorProto *p,
                                                   const char *what);

/* ---- attributes (attr.c): a missing attribute leaves *out at its default --------------- */
typedef struct onnx_node_ctx {
    const onnx_graph *g;
    const Onnx__NodeProto *n;
    size_t pos;             /* position in topological order */
} onnx_node_ctx;
/* Fails naming the node: "<file>: node <pos> '<name>' (<op>): <message>". */
ppnn_status onnx_node_fail(const onnx_node_ctx *c, ppnn_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Refuses any attribute not in the NULL-terminated list `allowed`. */
PPNN_MUST_CHECK ppnn_status onnx_attr_check(const onnx_node_ctx *c, const char *const *allowed);
PPNN_MUST_CHECK ppnn_status onnx_attr_int(const onnx_node_ctx *c, const char *name,
                                          int64_t *out);
PPNN_MUST_CHECK ppnn_status onnx_attr_float(const onnx_node_ctx *c, const char *name,
                                            float *out);
/* Up to cap ints; *n = count (unchanged when absent). */
PPNN_MUST_CHECK ppnn_status onnx_attr_ints(const onnx_node_ctx *c, const char *name,
                                           int64_t *out, size_t cap, size_t *n);
/* String attribute copied into buf (unchanged when absent). */
PPNN_MUST_CHECK ppnn_status onnx_attr_string(const onnx_node_ctx *c, const char *name,
                                             char *buf, size_t cap);
const Onnx__AttributeProto *onnx_attr_find(const Onnx__NodeProto *n, const char *name);

/* ---- values during lowering (poly.c) -------------------------------------------------------
 * A value is either a constant tensor or a quadratic a*h^2 + b*h + c of the chain's current
 * head h (the output of the last layer emitted, epoch `epoch`), with one coefficient per
 * element of h. Pad nodes leave pending pads on an identity value. */
typedef enum { OV_NONE = 0, OV_CONST, OV_SYM } onnx_value_kind;

typedef struct onnx_value {
    onnx_value_kind kind;
    onnx_tensor t;          /* OV_CONST (owned) */
    size_t epoch;           /* OV_SYM */
    float *a, *b, *c;       /* OV_SYM: numel(head) each (owned) */
    uint32_t pads[4];       /* OV_SYM: pending zero pads top, left, bottom, right */
} onnx_value;

/* The chain's head: ONNX dims including the batch dimension (dims[0]). */
typedef struct onnx_head {
    size_t epoch;
    size_t rank;            /* 2 (N, K) or 4 (N, C, H, W); rank 3 inputs become C = 1 */
    int64_t dims[4];
    size_t numel;           /* per image */
} onnx_head;

void onnx_value_clear(onnx_value *v);
PPNN_MUST_CHECK ppnn_status onnx_value_identity(onnx_value *v, const onnx_head *h);
int onnx_value_is_identity(const onnx_value *v, size_t numel);
/* Broadcasts constant t to the per-image shape of h (numbers of h->numel floats into out).
 * Fails (returns non-zero, message in *why) when t does not broadcast to h's shape without
 * enlarging it or varies along the batch dimension. */
int onnx_broadcast(float *out, const onnx_tensor *t, const onnx_head *h, const char **why);
/* Elementwise op on values; either may be constant, not both. op: '+', '-', '*', '/'.
 * Fails with a reason (degree above 2, division by the chain value, ...). */
int onnx_sym_binary(onnx_value *out, char op, const onnx_value *x, const onnx_value *y,
                    const onnx_head *h, const char **why);
/* Constant elementwise op with ONNX broadcasting: out = x op y ('+', '-', '*', '/', '^'). */
int onnx_const_binary(onnx_tensor *out, char op, const onnx_tensor *x, const onnx_tensor *y,
                      const char **why);

/* ---- pending layers (lower.c builds them, fold.c rewrites them) -------------------------- */
typedef enum { PL_CONV, PL_DENSE, PL_POOL, PL_FLATTEN, PL_POLY } pl_kind;

typedef struct pl_layer {
    pl_kind kind;
    nn_shape in, out;
    uint32_t kernel, stride, pad;   /* PL_CONV, PL_POOL */
    float *w, *bias;                /* PL_CONV [oc][ic][k][k], PL_DENSE [out][in] (owned) */
    float *a, *b, *c;               /* PL_POLY: per element of `in` (owned) */
    size_t node;                    /* position of the node it came from (messages) */
} pl_layer;

typedef struct pl_list {
    size_t n, cap;
    pl_layer *l;
    float norm_mean, norm_std;      /* input normalisation (affine input maps fold here) */
} pl_list;

PPNN_MUST_CHECK ppnn_status pl_push(pl_list *p, const pl_layer *l);
void pl_list_free(pl_list *p);
/* Folds affine poly layers into their neighbours (fold.c). */
PPNN_MUST_CHECK ppnn_status onnx_fold(pl_list *p);
/* Builds the nn_model (granularity of each poly from its coefficients). */
PPNN_MUST_CHECK ppnn_status onnx_build_model(nn_model *m, const pl_list *p, nn_shape input,
                                             const char *arch);

/* Lowers the validated graph into pending layers (lower.c). */
PPNN_MUST_CHECK ppnn_status onnx_lower(pl_list *p, nn_shape *input, const onnx_graph *g);

#endif
