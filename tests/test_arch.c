/* Architectures as layer specs: the named ones build the documented layer lists, custom specs
 * (colour input included) build theirs, every malformed spec is refused naming the token, and a
 * colour data set (4-dimensional IDX files) trains to an accuracy only its channels allow. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ppnn/nn.h"
#include "testrng.h"
#include "testutil.h"

static void test_named(void)
{
    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    static const nn_layer_type want[6] = {NN_LAYER_CONV2D, NN_LAYER_POLY, NN_LAYER_FLATTEN,
                                          NN_LAYER_DENSE, NN_LAYER_POLY, NN_LAYER_DENSE};
    CHECK(m.nlayers == 6);
    for (size_t i = 0; i < 6 && i < m.nlayers; i++)
        CHECK(m.layers[i].type == want[i]);
    CHECK(m.layers[0].out.c == 5 && m.layers[0].out.h == 13 && m.layers[0].kernel == 5 &&
          m.layers[0].stride == 2 && m.layers[0].pad == 1);
    CHECK(m.layers[3].out.c == 100 && m.layers[5].out.c == 10 && nn_model_depth(&m) == 5);
    CHECK(strcmp(m.arch, "cryptonets") == 0);
    nn_model_free(&m);
    CHECK_OK(nn_arch_build(&m, "deep", NN_ACT_CHANNEL, (nn_shape){1, 28, 28}, 10));
    CHECK(nn_model_depth(&m) == 9 && m.layers[2].type == NN_LAYER_AVGPOOL &&
          m.layers[5].out.h == 4 && m.layers[5].out.c == 16 && m.layers[1].gran == NN_POLY_CHANNEL);
    nn_model_free(&m);
    CHECK_OK(nn_arch_build(&m, "teacher", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    CHECK(nn_model_depth(&m) == SIZE_MAX && m.layers[1].type == NN_LAYER_RELU &&
          m.layers[7].out.c == 128);
    nn_model_free(&m);
    char spec[256];
    CHECK(nn_arch_spec(spec, sizeof spec, "cryptonets", 7) &&
          strcmp(spec, "conv5x5s2p1c5,act,flatten,dense100,act,dense7") == 0);
    CHECK(nn_arch_spec(spec, sizeof spec, "nope", 10) == NULL);
    CHECK_ERR(nn_arch_build(&m, "nope", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10), PPNN_ERR_PARAM);
}

static void test_custom_colour(void)
{
    nn_model m;
    CHECK_OK(nn_arch_build_spec(&m, "custom", "conv3x3p1c4,square,avgpool2s2,conv3x3c6,act,flatten,"
                                "dense20,relu,dense10", NN_ACT_LAYER, (nn_shape){3, 16, 16}, 10));
    CHECK(m.nlayers == 9 && m.input.c == 3);
    CHECK(m.layers[0].in.c == 3 && m.layers[0].out.c == 4 && m.layers[0].out.h == 16);
    CHECK(m.layers[1].type == NN_LAYER_POLY && m.layers[1].gran == NN_POLY_SQUARE);
    CHECK(m.layers[2].out.h == 8 && m.layers[3].out.h == 6 && m.layers[3].out.c == 6);
    CHECK(m.layers[4].gran == NN_POLY_LAYER && m.layers[7].type == NN_LAYER_RELU);
    CHECK(strcmp(m.arch, "custom") == 0);
    nn_model_free(&m);
}

static void bad_spec(const char *spec, const char *needle)
{
    nn_model m;
    ppnn_fail(PPNN_OK, "%s", "");
    ppnn_status st = nn_arch_build_spec(&m, "custom", spec, NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10);
    CHECK_MSG(st == PPNN_ERR_PARAM && strstr(ppnn_last_error(), needle), "'%s': %s (%s)", spec,
              ppnn_status_name(st), ppnn_last_error());
    CHECK(m.layers == NULL && m.params == NULL);
}

static void test_bad_specs(void)
{
    bad_spec("", "empty");
    bad_spec("conv5x4c5,flatten,dense10", "token 1 'conv5x4c5'");
    bad_spec("conv5x5s2p1c5,,dense10", "token 2 '' (character 15)");
    bad_spec("conv5x5s2p1c5,act,flatten,dense0,act,dense10", "token 4 'dense0'");
    bad_spec("conv5x5s2p1c5,act,dense100,act", "last layer must be dense10");
    bad_spec("conv5x5s2p1c5,act,dense100,act,dense9", "last layer must be dense10");
    bad_spec("conv5x5c5,Act,dense10", "token 2 'Act'");
    bad_spec("conv5x5 c5,dense10", "token 1");
    bad_spec("conv5x5c5s2,dense10", "token 1");     /* order: kernel, stride, pad, channels */
    bad_spec("avgpool2s,dense10", "token 1 'avgpool2s'");
    bad_spec("dense99999999999,dense10", "token 1");
    bad_spec("conv30x30c2,flatten,dense10", "token 1 'conv30x30c2': ");  /* bigger than 28x28 */
    bad_spec("dense10,", "token 2");
    char many[1024] = "";
    for (int i = 0; i < 70; i++)
        strcat(many, "relu,");
    strcat(many, "dense10");
    bad_spec(many, "more than 64 layers");
}

/* 4-dimensional IDX (N, 3, 8, 8): class k has a bright square in quadrant k / 3 (of 4) of
 * channel k % 3 on noise: the classes that share a quadrant differ only in the channel. */
static void write_colour_idx(const char *dir, const char *prefix, size_t n, uint64_t seed)
{
    uint64_t r = seed;
    size_t isz = 3 * 8 * 8;
    uint8_t *img = malloc(20 + n * isz), *lab = malloc(8 + n);
    const uint8_t ih[20] = {0, 0, 8, 4, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                            (uint8_t)n, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 8};
    const uint8_t lh[8] = {0, 0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                           (uint8_t)n};
    memcpy(img, ih, 20);
    memcpy(lab, lh, 8);
    for (size_t i = 0; i < n; i++) {
        uint8_t k = (uint8_t)(trng_next(&r) % 10), *p = img + 20 + i * isz;
        lab[8 + i] = k;
        for (size_t j = 0; j < isz; j++)
            p[j] = (uint8_t)(trng_next(&r) % 60);
        size_t ch = k % 3, qy = (k / 3) / 2, qx = (k / 3) % 2;
        for (size_t y = 0; y < 4; y++)
            for (size_t x = 0; x < 4; x++)
                p[ch * 64 + (qy * 4 + y) * 8 + qx * 4 + x] = (uint8_t)(180 + trng_next(&r) % 60);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(img, 1, 20 + n * isz, f) == 20 + n * isz);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    f = fopen(path, "wb");
    CHECK(f && fwrite(lab, 1, 8 + n, f) == 8 + n);
    fclose(f);
    free(img);
    free(lab);
}

static void test_colour_training(void)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/colour", tu_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    write_colour_idx(dir, "train", tu_reduced() ? 1000 : 2000, 1);
    write_colour_idx(dir, "t10k", 500, 2);
    data_set tr, te;
    CHECK_OK(data_load(&tr, dir, DATA_SPLIT_TRAIN, 0, 0));
    CHECK_OK(data_load(&te, dir, DATA_SPLIT_TEST, 0, 0));
    CHECK(tr.channels == 3 && tr.rows == 8 && tr.cols == 8);
    nn_model m;
    CHECK_OK(nn_arch_build_spec(&m, "custom", "conv3x3p1c6,act,avgpool2,flatten,dense10",
                                NN_ACT_ELEMENT, nn_shape_of_set(&tr), 10));
    CHECK(m.input.c == 3 && m.input.h == 8);
    nn_train_config c;
    nn_train_config_default(&c);
    c.epochs = 4, c.lr = 3e-3, c.batch = 32, c.seed = 3, c.shift = 0;
    CHECK_OK(nn_model_init_params(&m, &tr, c.seed));
    CHECK_OK(nn_train(&m, &tr, &c));
    size_t cor[10], tot[10], sc = 0, st = 0;
    CHECK_OK(nn_evaluate(&m, &te, cor, tot));
    for (int k = 0; k < 10; k++)
        sc += cor[k], st += tot[k];
    double acc = (double)sc / (double)st;
    fprintf(stderr, "colour: accuracy %.1f %% on 500 held-out images\n", 100 * acc);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    /* A grey model cannot take them. */
    nn_model g;
    CHECK_OK(nn_arch_build_spec(&g, "custom", "conv3x3c2,relu,dense10", NN_ACT_ELEMENT,
                                (nn_shape){1, 8, 8}, 10));
    CHECK_ERR(nn_train(&g, &tr, &c), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "3x8x8") != NULL);
    nn_model_free(&g);
    nn_model_free(&m);
    data_set_free(&tr);
    data_set_free(&te);
}

int main(void)
{
    test_named();
    test_custom_colour();
    test_bad_specs();
    test_colour_training();
    return tu_finish("test_arch");
}
