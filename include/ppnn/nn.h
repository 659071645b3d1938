/* ppnn nn layer: plaintext float32 networks — layers, training, model files.
 *
 * A model is a list of layers over per-image tensors in CHW order (channel, row, column;
 * row-major). A batch of n images is n such tensors back to back. Supported layers:
 *   conv2d   (square kernel, stride, zero padding, bias)
 *   dense    (fully connected on the flattened CHW input, bias)
 *   avgpool  (square window, stride, no padding)
 *   flatten  (CHW -> vector; memory layout unchanged)
 *   relu
 *   poly     y = a*x^2 + b*x + c with granularity
 *              element: own (a,b,c) per position of every feature map (BEAA),
 *              channel: one (a,b,c) per channel, layer: one (a,b,c) for the whole layer,
 *              square:  fixed y = x^2 (no trainable parameters).
 *
 * What an encrypted-inference planner needs (all public fields of nn_model / nn_layer):
 *   - the layer list with input/output shapes (nn_layer.in / .out),
 *   - weights and biases (nn_layer.weight / .bias, layouts documented on nn_layer),
 *   - activation coefficients (nn_poly_coef() gives (a,b,c) for any element),
 *   - input normalisation (nn_model.norm_mean / norm_std, see nn_model_normalize),
 *   - per-layer input ranges observed on training data (nn_layer.in_range) and the range of
 *     the logits (nn_model.out_range),
 *   - the multiplicative depth (nn_model_depth()).
 * The file format is documented in docs/model-format.md. This layer depends only on util and
 * data (never on ckks). */
#ifndef PPNN_NN_H
#define PPNN_NN_H

#include "ppnn/data.h"
#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values stored in model files: never renumber. */
typedef enum {
    NN_LAYER_CONV2D = 1,
    NN_LAYER_DENSE = 2,
    NN_LAYER_AVGPOOL = 3,
    NN_LAYER_FLATTEN = 4,
    NN_LAYER_RELU = 5,
    NN_LAYER_POLY = 6
} nn_layer_type;

typedef enum {
    NN_POLY_ELEMENT = 0,
    NN_POLY_CHANNEL = 1,
    NN_POLY_LAYER = 2,
    NN_POLY_SQUARE = 3
} nn_poly_gran;

/* Activation kinds a builder can put in the "act" places of an architecture. */
typedef enum {
    NN_ACT_RELU = 0,
    NN_ACT_ELEMENT,
    NN_ACT_CHANNEL,
    NN_ACT_LAYER,
    NN_ACT_SQUARE
} nn_act;

/* Limits the loader enforces (and the builders respect). */
#define NN_MAX_LAYERS 64
#define NN_MAX_DIM 4096          /* any single c, h, w, kernel, stride, pad */
#define NN_MAX_NUMEL (1u << 24)  /* elements of one per-image tensor */
#define NN_MAX_PARAMS (1u << 26) /* trainable floats of one model */

typedef struct nn_shape {
    uint32_t c, h, w;
} nn_shape;

/* Observed values of a tensor: min, max and the 99.9th percentile of |x|. */
typedef struct nn_range {
    float min, max, abs_p999;
} nn_range;

typedef struct nn_layer {
    nn_layer_type type;
    nn_shape in, out;    /* per image; dense/flatten outputs are {n, 1, 1} */
    uint32_t kernel;     /* conv2d, avgpool: square window side */
    uint32_t stride;     /* conv2d, avgpool */
    uint32_t pad;        /* conv2d: zero padding on every side */
    nn_poly_gran gran;   /* poly */
    /* Parameters; pointers into nn_model.params (NULL with count 0 when absent).
     *   conv2d: weight[out.c][in.c][kernel][kernel], bias[out.c]
     *   dense:  weight[out.c][in.c*in.h*in.w] (input index in CHW order), bias[out.c]
     *   poly:   coef = a[ncoef] then b[ncoef] then c[ncoef], ncoef = in.c*in.h*in.w (element),
     *           in.c (channel), 1 (layer), 0 (square; a = 1, b = c = 0 implied). */
    float *weight, *bias, *coef;
    size_t nweight, nbias, ncoef;
    nn_range in_range;   /* range of this layer's input on training data (0s if not recorded) */
} nn_layer;

typedef struct nn_model {
    char arch[32];        /* architecture name (informational, NUL-terminated) */
    nn_shape input;       /* per-image input shape, e.g. {1, 28, 28} */
    uint32_t nclasses;    /* logits per image = last layer's output numel */
    /* Input normalisation: x = (pixel/255 - norm_mean) / norm_std. */
    float norm_mean, norm_std;
    nn_range out_range;   /* range of the logits on training data */
    size_t nlayers;
    nn_layer *layers;
    size_t nparams;       /* all trainable floats, layer by layer (weight, bias, coef) */
    float *params;
} nn_model;

static inline size_t nn_numel(nn_shape s) { return (size_t)s.c * s.h * s.w; }
/* The per-image shape of a data set's images (C x H x W). */
static inline nn_shape nn_shape_of_set(const data_set *ds)
{
    return (nn_shape){(uint32_t)ds->channels, (uint32_t)ds->rows, (uint32_t)ds->cols};
}

/* ---- building a model -------------------------------------------------------------------
 * nn_model_init starts an empty model for the given input; the nn_model_add_* calls append a
 * layer whose input is the previous layer's output (shape errors -> PPNN_ERR_PARAM);
 * nn_model_finish allocates the parameter vector (zeroed) and sets the layer pointers. No
 * layer may be added after nn_model_finish. nn_model_free(NULL) is a no-op. */
void nn_model_init(nn_model *m, const char *arch, nn_shape input);
PPNN_MUST_CHECK ppnn_status nn_model_add_conv2d(nn_model *m, uint32_t out_c, uint32_t kernel,
                                                uint32_t stride, uint32_t pad);
PPNN_MUST_CHECK ppnn_status nn_model_add_dense(nn_model *m, uint32_t out);
PPNN_MUST_CHECK ppnn_status nn_model_add_avgpool(nn_model *m, uint32_t kernel, uint32_t stride);
PPNN_MUST_CHECK ppnn_status nn_model_add_flatten(nn_model *m);
PPNN_MUST_CHECK ppnn_status nn_model_add_relu(nn_model *m);
PPNN_MUST_CHECK ppnn_status nn_model_add_poly(nn_model *m, nn_poly_gran gran);
PPNN_MUST_CHECK ppnn_status nn_model_finish(nn_model *m);
void nn_model_free(nn_model *m);

/* Builds a named architecture: "cryptonets", "deep" (two conv + avgpool, 9 levels) or
 * "teacher" (wider ReLU net; its activations are always ReLU). `act` replaces each activation
 * placeholder. Parameters are zero: initialise them with nn_model_init_params. */
PPNN_MUST_CHECK ppnn_status nn_arch_build(nn_model *m, const char *arch, nn_act act,
                                          nn_shape input, uint32_t nclasses);
/* Builds the model of a layer spec (grammar in src/nn/arch.c and docs/training.md), e.g.
 * "conv5x5s2p1c5,act,flatten,dense100,act,dense10"; `act` fills the "act" tokens; the last
 * layer must be dense<nclasses>. `name` is recorded as the model's arch. Errors name the token
 * (position and text) and what was expected, or the shape problem it causes. */
PPNN_MUST_CHECK ppnn_status nn_arch_build_spec(nn_model *m, const char *name, const char *spec,
                                               nn_act act, nn_shape input, uint32_t nclasses);
/* The spec of a named architecture for nclasses (into buf), or NULL for an unknown name. */
const char *nn_arch_spec(char *buf, size_t len, const char *arch, uint32_t nclasses);
/* Names accepted by nn_arch_build, comma separated (for help texts). */
const char *nn_arch_names(void);
PPNN_MUST_CHECK ppnn_status nn_act_parse(nn_act *out, const char *s);
const char *nn_layer_type_name(nn_layer_type t);
const char *nn_poly_gran_name(nn_poly_gran g);

/* Multiplicative depth under CKKS: one level per conv2d/dense/avgpool (a rescale) and one per
 * polynomial activation; ReLU layers make the model unsuitable (returns SIZE_MAX). */
size_t nn_model_depth(const nn_model *m);

/* (a, b, c) of poly layer `l` at element index i of its per-image input (CHW order). */
void nn_poly_coef(const nn_layer *l, size_t i, float *a, float *b, float *c);

/* ---- inference -------------------------------------------------------------------------- */
/* Refuses (PPNN_ERR_MISMATCH, "model expects CxHxW inputs but the images are RxC") images the
 * model cannot take: channels x rows x cols. Every caller that feeds a data set to a model
 * checks this first — nn_model_normalize reads n * numel(input) pixels and trusts it. */
PPNN_MUST_CHECK ppnn_status nn_model_check_images(const nn_model *m, size_t channels,
                                                  size_t rows, size_t cols);
/* Pixels (bytes 0..255, n images of numel(m->input) pixels each) -> network inputs with the
 * model's normalisation. */
void nn_model_normalize(const nn_model *m, float *out, const uint8_t *pixels, size_t n);
/* The same from an image tensor's values in [0, 1] (data_images): x = (v - mean) / std. */
void nn_model_normalize_unit(const nn_model *m, float *out, const float *values, size_t n);

/* A reusable forward workspace for up to max_batch images of one model. */
typedef struct nn_work nn_work;
PPNN_MUST_CHECK ppnn_status nn_work_new(nn_work **out, const nn_model *m, size_t max_batch);
void nn_work_free(nn_work *w);
/* Runs the network on n <= max_batch normalised inputs (n * numel(input) floats); returns the
 * logits (n * nclasses floats), valid until the next call with this workspace. */
const float *nn_forward(nn_work *w, const float *x, size_t n);
/* Same for any n, allocating internally: logits must hold n * nclasses floats. */
PPNN_MUST_CHECK ppnn_status nn_predict(const nn_model *m, float *logits, const float *x,
                                       size_t n);
/* Classifies a data set: correct[k] / total[k] per class (arrays of m->nclasses). */
PPNN_MUST_CHECK ppnn_status nn_evaluate(const nn_model *m, const data_set *ds, size_t *correct,
                                        size_t *total);

/* Threads for the OpenMP loops (0 = OpenMP's default); OpenBLAS is set to one thread. Results
 * are bit-identical for any thread count. Call before training / inference. */
void nn_set_threads(int n);

/* ---- model files (docs/model-format.md) ------------------------------------------------- */
PPNN_MUST_CHECK ppnn_status nn_model_save(const nn_model *m, const char *path);
PPNN_MUST_CHECK ppnn_status nn_model_load(nn_model *m, const char *path);
/* Parses an in-memory model file; validates every count and dimension before allocating. */
PPNN_MUST_CHECK ppnn_status nn_model_parse(nn_model *m, const uint8_t *buf, size_t len);
/* Serialises into a malloc'd buffer. */
PPNN_MUST_CHECK ppnn_status nn_model_serialize(uint8_t **out, size_t *out_len,
                                               const nn_model *m);
#define NN_MODEL_MAX_FILE ((size_t)1 << 28)
/* The kind the path policy gives model files (ppnn/util.h, "paths"). */
#define NN_MODEL_FILE_KIND "MODL"

/* ---- training --------------------------------------------------------------------------- */
typedef enum { NN_OPT_ADAM = 0, NN_OPT_SGD = 1 } nn_optimizer;

typedef struct nn_train_progress {
    size_t epoch, epochs;     /* 1-based epoch */
    size_t batch, batches;    /* 1-based batch within the epoch */
    double loss;              /* running mean loss over this epoch */
    double accuracy;          /* running training accuracy over this epoch */
    size_t images;            /* images seen in this epoch */
} nn_train_progress;

typedef struct nn_train_config {
    size_t epochs, batch;
    double lr;                /* peak learning rate; cosine decay to 0 over all steps */
    nn_optimizer optimizer;
    double momentum;          /* SGD */
    double clip_norm;         /* global gradient-norm clip, 0 = off */
    double weight_decay;      /* decoupled (AdamW-style) on conv/dense weights, 0 = off */
    uint64_t seed;            /* initialisation, shuffling and augmentation */
    size_t shift;             /* random translation of up to +-shift pixels, 0 = off */
    double range_penalty;     /* weight of the penalty on poly inputs beyond their init range */
    const nn_model *teacher;  /* distillation teacher or NULL */
    double kd_temp, kd_alpha;
    /* Offline distillation: teacher logits computed once per image on the unaugmented
     * images (instead of per batch on the augmented ones) — several times faster when the
     * teacher is larger than the student. */
    int kd_offline;
    /* Gradual magnitude pruning of the dense layers before the classifier to this fraction
     * of zero weights, in [0, 1); 0 = off (schedule in src/nn/prune.c, docs/training.md). */
    double prune;
    /* Called after each batch (may be NULL). */
    void (*progress)(void *ctx, const nn_train_progress *p);
    void *progress_ctx;
} nn_train_config;

/* Defaults: Adam, lr 1e-3, batch 64, clip 5, T = 4, alpha = 0.5, 10 epochs, seed 1. */
void nn_train_config_default(nn_train_config *c);

/* Initialises weights (He-uniform, zero bias) from the seed, and poly coefficients from a
 * least-squares fit of ReLU on the input range observed on `ds` (first images). */
PPNN_MUST_CHECK ppnn_status nn_model_init_params(nn_model *m, const data_set *ds,
                                                 uint64_t seed);
/* Trains m in place on ds (normalisation is taken from ds's pixel statistics when
 * m->norm_std == 0). A NaN/Inf loss stops with PPNN_ERR_NUMERIC naming epoch, batch and the
 * first layer with a non-finite output; the model must then be discarded. */
PPNN_MUST_CHECK ppnn_status nn_train(nn_model *m, const data_set *ds, const nn_train_config *c);
/* Fraction of zero weights in the dense layers before the classifier (what --prune prunes;
 * 0 when there are none). */
double nn_model_pruned_fraction(const nn_model *m);
/* Records in_range of every layer and out_range over the first `count` images of ds. */
PPNN_MUST_CHECK ppnn_status nn_record_ranges(nn_model *m, const data_set *ds, size_t count);
/* A source of network inputs: writes images first .. first+n-1 (n <= 256) as n *
 * numel(m->input) floats, already normalised. Errors propagate to the caller. */
typedef ppnn_status (*nn_input_fill)(void *ctx, float *x, size_t first, size_t n);
/* Same as nn_record_ranges over `count` (> 0) images from any source (calibration of imported
 * models, images that are not IDX). */
PPNN_MUST_CHECK ppnn_status nn_record_ranges_from(nn_model *m, nn_input_fill fill, void *ctx,
                                                  size_t count);

#ifdef __cplusplus
}
#endif
#endif
