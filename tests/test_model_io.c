/* Model files: round trip, and truncated / corrupted / inconsistent files refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>


#include "nn/inner.h"
#include "testutil.h"

#define HDR 56      /* container header bytes before the payload (docs/model-format.md) */
#define REC0 (HDR + 72) /* first layer record */

static void make_model(nn_model *m, const char *arch, nn_act act)
{
    CHECK_OK(nn_arch_build(m, arch, act, (nn_shape){1, 28, 28}, 10));
    nn_rng r;
    nn_rng_seed(&r, 3, "io");
    for (size_t i = 0; i < m->nparams; i++)
        m->params[i] = nn_rng_sym(&r);
    m->norm_mean = 0.13f, m->norm_std = 0.31f;
    for (size_t i = 0; i < m->nlayers; i++)
        m->layers[i].in_range = (nn_range){-1.0f - (float)i, 2.0f + (float)i, 1.5f + (float)i};
    m->out_range = (nn_range){-9, 11, 8};
}

static int same_model(const nn_model *a, const nn_model *b)
{
    if (strcmp(a->arch, b->arch) || a->nlayers != b->nlayers || a->nparams != b->nparams ||
        a->nclasses != b->nclasses || a->norm_mean != b->norm_mean ||
        a->norm_std != b->norm_std || memcmp(&a->out_range, &b->out_range, sizeof a->out_range) ||
        memcmp(&a->input, &b->input, sizeof a->input))
        return 0;
    for (size_t i = 0; i < a->nlayers; i++) {
        const nn_layer *x = &a->layers[i], *y = &b->layers[i];
        if (x->type != y->type || memcmp(&x->in, &y->in, sizeof x->in) ||
            memcmp(&x->out, &y->out, sizeof x->out) || x->kernel != y->kernel ||
            x->stride != y->stride || x->pad != y->pad || x->gran != y->gran ||
            x->nweight != y->nweight || x->ncoef != y->ncoef ||
            memcmp(&x->in_range, &y->in_range, sizeof x->in_range))
            return 0;
    }
    return !memcmp(a->params, b->params, a->nparams * sizeof *a->params);
}

static void test_round_trip(void)
{
    static const char *archs[] = {"cryptonets", "deep", "teacher"};
    for (int k = 0; k < 3; k++) {
        for (int act = 0; act <= NN_ACT_SQUARE; act++) {
            nn_model m, l;
            make_model(&m, archs[k], (nn_act)act);
            const char *path = tu_write("m.ppnn", "", 0);
            CHECK_OK(nn_model_save(&m, path));
            CHECK_OK(nn_model_load(&l, path));
            CHECK(same_model(&m, &l));
            /* Loaded and original model give identical logits. */
            float x[2 * 784], y1[20], y2[20];
            for (int i = 0; i < 2 * 784; i++)
                x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
            CHECK_OK(nn_predict(&m, y1, x, 2));
            CHECK_OK(nn_predict(&l, y2, x, 2));
            CHECK(!memcmp(y1, y2, sizeof y1));
            nn_model_free(&m);
            nn_model_free(&l);
        }
    }
    /* The planner-facing accessors agree with the layout. */
    nn_model m;
    make_model(&m, "cryptonets", NN_ACT_CHANNEL);
    CHECK(nn_model_depth(&m) == 5);
    const nn_layer *p = &m.layers[1];
    CHECK(p->type == NN_LAYER_POLY && p->ncoef == 5 && nn_numel(p->in) == 845);
    float a, b, c;
    nn_poly_coef(p, 2 * 169 + 7, &a, &b, &c);
    CHECK(a == p->coef[2] && b == p->coef[5 + 2] && c == p->coef[10 + 2]);
    nn_model_free(&m);
    CHECK_OK(nn_arch_build(&m, "deep", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    CHECK(nn_model_depth(&m) <= 9);
    nn_model_free(&m);
}

static void reseal(uint8_t *buf, size_t len)
{
    ppnn_file_reseal(buf, len);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void expect_refused(const uint8_t *buf, size_t len, const char *what)
{
    nn_model m;
    ppnn_status st = nn_model_parse(&m, buf, len);
    CHECK_MSG(st == PPNN_ERR_FORMAT && ppnn_last_error()[0], "%s: got %s (%s)", what,
              ppnn_status_name(st), ppnn_last_error());
    if (st == PPNN_OK)
        nn_model_free(&m);
}

static void test_refusals(void)
{
    nn_model m;
    make_model(&m, "cryptonets", NN_ACT_ELEMENT);
    uint8_t *good, *buf;
    size_t len;
    CHECK_OK(nn_model_serialize(&good, &len, &m));
    buf = malloc(len);
    /* Truncated anywhere: header, layer list, parameters. */
    size_t cuts[] = {0, 7, 55, 56, 100, REC0 + 40, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        expect_refused(good, cuts[i], "truncated");
    /* Corrupted: one flipped bit in the payload breaks the checksum; bad magic / version. */
    size_t flips[] = {HDR, REC0 + 3, len - 2};
    for (size_t i = 0; i < 3; i++) {
        memcpy(buf, good, len);
        buf[flips[i]] ^= 0x10;
        expect_refused(buf, len, "bit flip");
    }
    memcpy(buf, good, len);
    buf[0] = 'X';
    expect_refused(buf, len, "magic");
    memcpy(buf, good, len);
    memcpy(buf + 8, "SKEY", 4); /* another kind of ppnn file */
    reseal(buf, len);
    expect_refused(buf, len, "kind");
    for (uint32_t ver = 0; ver < 4; ver++) { /* only version 2 is a model in the container */
        if (ver == 2)
            continue;
        memcpy(buf, good, len);
        put32(buf + 12, ver);
        reseal(buf, len);
        expect_refused(buf, len, "version");
    }
    memcpy(buf, good, len);
    buf[16 + 5] = 1; /* a parameter id: models have none */
    reseal(buf, len);
    expect_refused(buf, len, "parameter id");
    /* A version-1 file (its own frame "PPNNMODL"): refused, saying what it is */
    memcpy(buf, good, len);
    memcpy(buf, "PPNNMODL", 8);
    expect_refused(buf, len, "legacy frame");
    CHECK_MSG(strstr(ppnn_last_error(), "version-1 model file") != NULL, "%s", ppnn_last_error());
    CHECK(!memcmp(good + 8, NN_MODEL_FILE_KIND, 4) && good[12] == 2 && len == HDR + 80 +
          32 * m.nlayers + 4 * m.nparams + 32);
    /* Inconsistent but correctly checksummed: every one must be caught by validation. */
    struct {
        size_t off;
        uint32_t val;
        const char *what;
    } edits[] = {
        {HDR + 68, 0, "zero layers"},
        {HDR + 68, 1000000, "huge layer count"},
        {HDR + 68, 5, "layer count too small for the payload"},
        {HDR + 32, 0, "zero input channels"},
        {HDR + 36, 1u << 30, "huge input height"},
        {HDR + 44, 7, "class count disagrees"},
        {REC0 + 0, 42, "unknown layer type"},
        {REC0 + 8, 64, "conv kernel larger than input"},
        {REC0 + 12, 0, "conv stride 0"},
        {REC0 + 4, 6, "conv channel count disagrees with parameter count"},
        {REC0 + 32 + 4, 9, "unknown poly granularity"},
        {REC0 + 32 + 8, 1, "non-zero unused field"},
        {REC0 + 3 * 32 + 4, 1u << 31, "huge dense width"},
        {REC0 + 3 * 32 + 4, 99, "dense width disagrees with parameter count"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(buf, good, len);
        put32(buf + edits[i].off, edits[i].val);
        reseal(buf, len);
        expect_refused(buf, len, edits[i].what);
    }
    /* A window larger than its input is named once ("layer 0 (conv2d): layer 0 (conv2d): ..."
     * used to repeat the prefix). */
    memcpy(buf, good, len);
    put32(buf + REC0 + 8, 64);
    reseal(buf, len);
    expect_refused(buf, len, "conv kernel larger than input");
    const char *msg = ppnn_last_error(), *first = strstr(msg, "layer 0 (conv2d)");
    CHECK_MSG(first && !strstr(first + 1, "layer 0 (conv2d)"), "%s", msg);
    /* Garbage after the architecture name's NUL; a NaN parameter; a zero normalisation scale. */
    memcpy(buf, good, len);
    buf[HDR + 30] = 'x';
    reseal(buf, len);
    expect_refused(buf, len, "arch padding");
    memcpy(buf, good, len);
    put32(buf + len - PPNN_FILE_TRAILER_BYTES - 4, 0x7fc00000u); /* the last parameter */
    reseal(buf, len);
    expect_refused(buf, len, "NaN parameter");
    memcpy(buf, good, len);
    put32(buf + HDR + 52, 0);
    reseal(buf, len);
    expect_refused(buf, len, "zero std");
    /* Unchanged copy still parses (the edits above are what made the difference). */
    memcpy(buf, good, len);
    nn_model l;
    CHECK_OK(nn_model_parse(&l, buf, len));
    nn_model_free(&l);
    CHECK_ERR(nn_model_load(&l, "/no/such/model.ppnn"), PPNN_ERR_IO);
    free(buf);
    free(good);
    nn_model_free(&m);
}

int main(void)
{
    test_round_trip();
    test_refusals();
    return tu_finish("test_model_io");
}
