/* Model files (docs/model-format.md): the common ppnn container (ppnn/util.h) around a payload
 * with the layer list, normalisation, ranges and the parameter vector. All integers and floats
 * little-endian. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"

/* Model files are ppnn containers of kind NN_MODEL_FILE_KIND ("MODL"), parameter id zero
 * (a model does not depend on CKKS parameters). Version 1 was a frame of its own (magic
 * "PPNNMODL"); such files are refused with a message that says so. */
#define VERSION 2u
#define LEGACY_MAGIC "PPNNMODL"
#define HEADER_BYTES PPNN_FILE_HEADER_BYTES
#define RECORD_BYTES 32u
/* arch 32 + input shape 12 + nclasses 4 + norm 8 + out range 12 + nlayers 4 = 72 bytes before
 * the layer records, and the u64 parameter count after them. */
#define FIXED_BYTES 80u

/* ---- little-endian writer / reader over ppnn_put_* / ppnn_get_* -------------------------
 * The reader does not check bounds per field: parse_payload checks the bytes left before
 * each group of fields. */
static uint8_t *put32(uint8_t *p, uint32_t v)
{
    ppnn_put_u32(p, v);
    return p + 4;
}
static uint8_t *put64(uint8_t *p, uint64_t v)
{
    ppnn_put_u64(p, v);
    return p + 8;
}
static uint8_t *putf(uint8_t *p, float f)
{
    ppnn_put_f32(p, f);
    return p + 4;
}

typedef struct reader {
    const uint8_t *p, *end;
} reader;
static uint32_t get32(reader *r)
{
    uint32_t v = ppnn_get_u32(r->p);
    r->p += 4;
    return v;
}
static uint64_t get64(reader *r)
{
    uint64_t v = ppnn_get_u64(r->p);
    r->p += 8;
    return v;
}
static float getf(reader *r)
{
    float f = ppnn_get_f32(r->p);
    r->p += 4;
    return f;
}
static size_t left(const reader *r) { return (size_t)(r->end - r->p); }

static uint8_t *put_range(uint8_t *p, nn_range r)
{
    return putf(putf(putf(p, r.min), r.max), r.abs_p999);
}
static nn_range get_range(reader *r)
{
    nn_range v;
    v.min = getf(r), v.max = getf(r), v.abs_p999 = getf(r);
    return v;
}

ppnn_status nn_model_serialize(uint8_t **out, size_t *out_len, const nn_model *m)
{
    size_t payload = FIXED_BYTES + RECORD_BYTES * m->nlayers + 4 * m->nparams;
    size_t total = HEADER_BYTES + payload + PPNN_FILE_TRAILER_BYTES;
    uint8_t *buf = malloc(total);
    if (!buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory serialising the model");
    uint8_t *p = buf + HEADER_BYTES;
    memset(p, 0, 32);
    memcpy(p, m->arch, strnlen(m->arch, 31));
    p += 32;
    p = put32(put32(put32(p, m->input.c), m->input.h), m->input.w);
    p = put32(p, m->nclasses);
    p = putf(putf(p, m->norm_mean), m->norm_std);
    p = put_range(p, m->out_range);
    p = put32(p, (uint32_t)m->nlayers);
    for (size_t i = 0; i < m->nlayers; i++) {
        const nn_layer *l = &m->layers[i];
        uint32_t a[4] = {0, 0, 0, 0};
        switch (l->type) {
        case NN_LAYER_CONV2D: a[0] = l->out.c, a[1] = l->kernel, a[2] = l->stride, a[3] = l->pad; break;
        case NN_LAYER_DENSE: a[0] = l->out.c; break;
        case NN_LAYER_AVGPOOL: a[0] = l->kernel, a[1] = l->stride; break;
        case NN_LAYER_POLY: a[0] = (uint32_t)l->gran; break;
        case NN_LAYER_FLATTEN:
        case NN_LAYER_RELU: break;
        }
        p = put32(p, (uint32_t)l->type);
        for (int k = 0; k < 4; k++)
            p = put32(p, a[k]);
        p = put_range(p, l->in_range);
    }
    p = put64(p, m->nparams);
    for (size_t i = 0; i < m->nparams; i++)
        p = putf(p, m->params[i]);
    ppnn_file_frame(buf, total, NN_MODEL_FILE_KIND, VERSION, NULL);
    *out = buf;
    *out_len = total;
    return PPNN_OK;
}

ppnn_status nn_model_save(const nn_model *m, const char *path)
{
    uint8_t *buf;
    size_t len;
    ppnn_status st = nn_model_serialize(&buf, &len, m);
    if (st)
        return st;
    ppnn_wfile w;
    if (!(st = ppnn_wfile_open_kind(&w, path, 0644, NN_MODEL_FILE_KIND))) {
        st = ppnn_wfile_write(&w, buf, len);
        st = st ? (ppnn_wfile_abort(&w), st) : ppnn_wfile_commit(&w);
    }
    free(buf);
    return st;
}

static int range_ok(nn_range r)
{
    return isfinite(r.min) && isfinite(r.max) && isfinite(r.abs_p999) && r.abs_p999 >= 0;
}

/* Parses one layer record and appends the layer (the builder validates the shapes). */
static ppnn_status parse_layer(nn_model *m, reader *r, size_t i)
{
    uint32_t type = get32(r), a[4];
    for (int k = 0; k < 4; k++)
        a[k] = get32(r);
    nn_range rg = get_range(r);
    ppnn_status st;
    int extra = 0; /* unused arguments must be zero */
    /* The builders prefix their own messages with "layer i (type): "; so do the checks here. */
    const char *tn = nn_layer_type_name((nn_layer_type)type);
    switch (type) {
    case NN_LAYER_CONV2D: st = nn_model_add_conv2d(m, a[0], a[1], a[2], a[3]); break;
    case NN_LAYER_DENSE:
        extra = a[1] | a[2] | a[3];
        st = a[0] >= 1 && a[0] <= NN_MAX_NUMEL ? nn_model_add_dense(m, a[0])
                                                : ppnn_fail(PPNN_ERR_FORMAT, "layer %zu (%s): width %u", i, tn, a[0]);
        break;
    case NN_LAYER_AVGPOOL: extra = a[2] | a[3]; st = nn_model_add_avgpool(m, a[0], a[1]); break;
    case NN_LAYER_FLATTEN: extra = a[0] | a[1] | a[2] | a[3]; st = nn_model_add_flatten(m); break;
    case NN_LAYER_RELU: extra = a[0] | a[1] | a[2] | a[3]; st = nn_model_add_relu(m); break;
    case NN_LAYER_POLY:
        extra = a[1] | a[2] | a[3];
        st = a[0] <= NN_POLY_SQUARE ? nn_model_add_poly(m, (nn_poly_gran)a[0])
                                    : ppnn_fail(PPNN_ERR_FORMAT, "layer %zu (%s): unknown granularity %u",
                                                i, tn, a[0]);
        break;
    default: return ppnn_fail(PPNN_ERR_FORMAT, "layer %zu: unknown type %u", i, type);
    }
    if (!st && extra)
        st = ppnn_fail(PPNN_ERR_FORMAT, "layer %zu (%s): unused fields are not zero", i, tn);
    if (!st && !range_ok(rg))
        st = ppnn_fail(PPNN_ERR_FORMAT, "layer %zu (%s): non-finite range", i, tn);
    if (st)
        return st == PPNN_ERR_NOMEM ? st : PPNN_ERR_FORMAT;
    m->layers[m->nlayers - 1].in_range = rg;
    return PPNN_OK;
}

static ppnn_status parse_payload(nn_model *m, reader *r)
{
    if (left(r) < FIXED_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "payload too short (%zu bytes)", left(r));
    char arch[32];
    memcpy(arch, r->p, 32);
    r->p += 32;
    const char *nul = memchr(arch, 0, 32);
    if (!nul)
        return ppnn_fail(PPNN_ERR_FORMAT, "architecture name not terminated");
    for (const char *q = nul; q < arch + 32; q++)
        if (*q) /* NUL padding only, so a file has one canonical encoding */
            return ppnn_fail(PPNN_ERR_FORMAT, "architecture name not NUL-padded");
    nn_shape in;
    in.c = get32(r), in.h = get32(r), in.w = get32(r);
    uint32_t ncls = get32(r);
    float mean = getf(r), sd = getf(r);
    nn_range out = get_range(r);
    uint32_t nlayers = get32(r);
    if (in.c < 1 || in.c > NN_MAX_DIM || in.h < 1 || in.h > NN_MAX_DIM || in.w < 1 ||
        in.w > NN_MAX_DIM || nn_numel(in) > NN_MAX_NUMEL)
        return ppnn_fail(PPNN_ERR_FORMAT, "input shape %ux%ux%u out of range", in.c, in.h, in.w);
    if (!isfinite(mean) || !(sd > 0) || !isfinite(sd) || !range_ok(out))
        return ppnn_fail(PPNN_ERR_FORMAT, "bad normalisation or output range");
    if (nlayers < 1 || nlayers > NN_MAX_LAYERS)
        return ppnn_fail(PPNN_ERR_FORMAT, "layer count %u not in [1, %d]", nlayers, NN_MAX_LAYERS);
    if (left(r) < (size_t)nlayers * RECORD_BYTES + 8)
        return ppnn_fail(PPNN_ERR_FORMAT, "truncated layer list");
    nn_model_init(m, arch, in);
    for (size_t i = 0; i < nlayers; i++) {
        ppnn_status st = parse_layer(m, r, i);
        if (st)
            return st;
    }
    uint64_t np = get64(r);
    if (np != m->nparams || left(r) != 4 * m->nparams)
        return ppnn_fail(PPNN_ERR_FORMAT,
                         "layer list needs %zu parameters; file declares %llu and holds %zu bytes",
                         m->nparams, (unsigned long long)np, left(r));
    ppnn_status st = nn_model_finish(m);
    if (st)
        return st == PPNN_ERR_NOMEM ? st : PPNN_ERR_FORMAT;
    if (m->nclasses != ncls)
        return ppnn_fail(PPNN_ERR_FORMAT, "header says %u classes, layers give %u", ncls,
                         m->nclasses);
    for (size_t i = 0; i < m->nparams; i++) {
        m->params[i] = getf(r);
        if (!isfinite(m->params[i]))
            return ppnn_fail(PPNN_ERR_FORMAT, "parameter %zu is not finite", i);
    }
    m->norm_mean = mean, m->norm_std = sd, m->out_range = out;
    return PPNN_OK;
}

/* name: the file's path, or "model" for a buffer (messages start with it). */
static ppnn_status parse_named(nn_model *m, const uint8_t *buf, size_t len, const char *name)
{
    memset(m, 0, sizeof *m);
    if (len >= 8 && !memcmp(buf, LEGACY_MAGIC, 8))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: a version-1 model file (its own frame, before "
                         "models moved to the common ppnn container); retrain it with `ppnn "
                         "train`", name);
    ppnn_file_view v;
    ppnn_status st = ppnn_file_view_of(&v, buf, len, name, NN_MODEL_FILE_KIND, VERSION);
    if (st)
        return st;
    if (v.version != VERSION)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: model format version %u (this build reads %u)",
                         name, v.version, VERSION);
    for (size_t i = 0; i < PPNN_PARAM_ID_BYTES; i++)
        if (v.param_id[i]) /* one canonical encoding: a model does not name CKKS parameters */
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: model file with a non-zero parameter id",
                             name);
    reader r = {v.payload, v.payload + v.payload_len};
    if ((st = parse_payload(m, &r)))
        ppnn_error_context("%s", name);
    if (st)
        nn_model_free(m);
    return st;
}

ppnn_status nn_model_parse(nn_model *m, const uint8_t *buf, size_t len)
{
    return parse_named(m, buf, len, "model");
}

ppnn_status nn_model_load(nn_model *m, const char *path)
{
    uint8_t *buf;
    size_t len;
    memset(m, 0, sizeof *m);
    ppnn_status st = ppnn_read_file(&buf, &len, path, NN_MODEL_MAX_FILE);
    if (st)
        return st;
    st = parse_named(m, buf, len, path);
    free(buf);
    return st;
}
