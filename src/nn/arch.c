/* Named architectures: each maps to a layer list; "act" places take the chosen activation.
 *
 * Multiplicative depth (CKKS levels: one per linear layer, one per quadratic activation):
 *   cryptonets: conv, act, dense, act, dense                                  = 5 levels
 *   deep:       conv, act, pool, conv, act, pool, dense, act, dense           = 9 levels
 *               (fits the 9 levels of the n14 preset; the pools' 1/k^2 could be folded into
 *               the next layer but are counted here)
 *   teacher, teacher-wide: ReLU only, never encrypted. */
#include <string.h>

#include "nn/inner.h"

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

#define TRY(x)                                                                                 \
    do {                                                                                       \
        ppnn_status st_ = (x);                                                                 \
        if (st_)                                                                               \
            return st_;                                                                        \
    } while (0)

/* CryptoNets (Gilad-Bachrach et al. 2016): 28x28 -> conv 5x5/2 pad 1 -> 13x13x5 = 845. */
static ppnn_status build_cryptonets(nn_model *m, nn_act act, uint32_t ncls)
{
    TRY(nn_model_add_conv2d(m, 5, 5, 2, 1));
    TRY(add_act(m, act));
    TRY(nn_model_add_flatten(m));
    TRY(nn_model_add_dense(m, 100));
    TRY(add_act(m, act));
    return nn_model_add_dense(m, ncls);
}

/* 28x28 -> conv 5x5 (8) 24x24 -> pool 12x12 -> conv 5x5 (16) 8x8 -> pool 4x4x16 = 256. */
static ppnn_status build_deep(nn_model *m, nn_act act, uint32_t ncls)
{
    TRY(nn_model_add_conv2d(m, 8, 5, 1, 0));
    TRY(add_act(m, act));
    TRY(nn_model_add_avgpool(m, 2, 2));
    TRY(nn_model_add_conv2d(m, 16, 5, 1, 0));
    TRY(add_act(m, act));
    TRY(nn_model_add_avgpool(m, 2, 2));
    TRY(nn_model_add_flatten(m));
    TRY(nn_model_add_dense(m, 100));
    TRY(add_act(m, act));
    return nn_model_add_dense(m, ncls);
}

/* A wider ReLU network used as distillation teacher. */
static ppnn_status build_teacher(nn_model *m, nn_act act, uint32_t ncls)
{
    (void)act;
    TRY(nn_model_add_conv2d(m, 16, 3, 1, 1));
    TRY(nn_model_add_relu(m));
    TRY(nn_model_add_avgpool(m, 2, 2));
    TRY(nn_model_add_conv2d(m, 32, 3, 1, 1));
    TRY(nn_model_add_relu(m));
    TRY(nn_model_add_avgpool(m, 2, 2));
    TRY(nn_model_add_flatten(m));
    TRY(nn_model_add_dense(m, 128));
    TRY(nn_model_add_relu(m));
    return nn_model_add_dense(m, ncls);
}

/* A stronger ReLU teacher for the deep students (issue 14: a teacher clearly better than the
 * student): 28x28 -> conv 3x3 (32) -> pool 14x14 -> conv 3x3 (64) -> pool 7x7 -> conv 3x3 (128)
 * -> dense 256 -> dense. About 9 M multiply-adds per image, 8x the plain teacher. */
static ppnn_status build_teacher_wide(nn_model *m, nn_act act, uint32_t ncls)
{
    (void)act;
    TRY(nn_model_add_conv2d(m, 32, 3, 1, 1));
    TRY(nn_model_add_relu(m));
    TRY(nn_model_add_avgpool(m, 2, 2));
    TRY(nn_model_add_conv2d(m, 64, 3, 1, 1));
    TRY(nn_model_add_relu(m));
    TRY(nn_model_add_avgpool(m, 2, 2));
    TRY(nn_model_add_conv2d(m, 128, 3, 1, 1));
    TRY(nn_model_add_relu(m));
    TRY(nn_model_add_flatten(m));
    TRY(nn_model_add_dense(m, 256));
    TRY(nn_model_add_relu(m));
    return nn_model_add_dense(m, ncls);
}

static const struct {
    const char *name;
    ppnn_status (*build)(nn_model *, nn_act, uint32_t);
} archs[] = {
    {"cryptonets", build_cryptonets},
    {"deep", build_deep},
    {"teacher", build_teacher},
    {"teacher-wide", build_teacher_wide},
};

const char *nn_arch_names(void) { return "cryptonets, deep, teacher, teacher-wide"; }

ppnn_status nn_arch_build(nn_model *m, const char *arch, nn_act act, nn_shape input,
                          uint32_t nclasses)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        if (strcmp(arch, archs[i].name))
            continue;
        nn_model_init(m, arch, input);
        ppnn_status st = archs[i].build(m, act, nclasses);
        if (!st)
            st = nn_model_finish(m);
        if (st) {
            ppnn_error_context("architecture %s", arch);
            nn_model_free(m);
        }
        return st;
    }
    return ppnn_fail(PPNN_ERR_PARAM, "unknown architecture '%s' (%s)", arch, nn_arch_names());
}
