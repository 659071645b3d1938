/* The names manifest: which file each slot of a batch came from, kept by the client
 * (include/ppnn/data.h). Written and read with cJSON; atomic write. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/inner.h"

#define MANIFEST_FORMAT "ppnn-names"
#define MANIFEST_VERSION 1

ppnn_status data_manifest_save(const char *path, const data_images *im,
                               const uint8_t key_id[DATA_MANIFEST_KEY_ID_BYTES])
{
    char hex[2 * DATA_MANIFEST_KEY_ID_BYTES + 1];
    for (size_t i = 0; i < DATA_MANIFEST_KEY_ID_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", key_id[i]);
    cJSON *root = cJSON_CreateObject();
    const int shape[3] = {(int)im->c, (int)im->h, (int)im->w};
    cJSON *names = NULL; /* owned by root */
    int ok = root && cJSON_AddStringToObject(root, "format", MANIFEST_FORMAT) &&
             cJSON_AddNumberToObject(root, "version", MANIFEST_VERSION) &&
             cJSON_AddStringToObject(root, "key_id", hex) &&
             cJSON_AddNumberToObject(root, "images", (double)im->count) &&
             cJSON_AddItemToObject(root, "shape", cJSON_CreateIntArray(shape, 3)) &&
             (names = cJSON_AddArrayToObject(root, "names"));
    for (size_t i = 0; ok && i < im->count; i++)
        ok = cJSON_AddItemToArray(names, cJSON_CreateString(im->names[i]));
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory writing the names manifest", path);
    ppnn_wfile w;
    ppnn_status st = ppnn_wfile_open(&w, path, 0600);
    if (!st) {
        st = ppnn_wfile_write(&w, text, strlen(text));
        if (!st)
            st = ppnn_wfile_write(&w, "\n", 1);
        if (st)
            ppnn_wfile_abort(&w);
        else
            st = ppnn_wfile_commit(&w);
    }
    free(text);
    return st;
}

static ppnn_status bad(const char *name, const char *what)
{
    return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a valid ppnn names manifest (%s)", name, what);
}

/* A JSON number that is an integer in [lo, hi]. */
static int get_size(const cJSON *v, double lo, double hi, size_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != (double)(size_t)v->valuedouble)
        return 0;
    *out = (size_t)v->valuedouble;
    return 1;
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

ppnn_status data_manifest_parse(data_manifest *out, const uint8_t *buf, size_t len,
                                const char *name)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    ppnn_status st = PPNN_OK;
    if (!cJSON_IsObject(root)) {
        st = bad(name, "not a JSON object");
        goto done;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format"),
                *ver = cJSON_GetObjectItemCaseSensitive(root, "version"),
                *kid = cJSON_GetObjectItemCaseSensitive(root, "key_id"),
                *imgs = cJSON_GetObjectItemCaseSensitive(root, "images"),
                *shape = cJSON_GetObjectItemCaseSensitive(root, "shape"),
                *names = cJSON_GetObjectItemCaseSensitive(root, "names");
    size_t version, count, dims[3];
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, MANIFEST_FORMAT)) {
        st = bad(name, "format is not \"" MANIFEST_FORMAT "\"");
        goto done;
    }
    if (!get_size(ver, 1, 1e6, &version) || version != MANIFEST_VERSION) {
        st = ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: names manifest version not supported", name);
        goto done;
    }
    if (!cJSON_IsString(kid) || strlen(kid->valuestring) != 2 * DATA_MANIFEST_KEY_ID_BYTES) {
        st = bad(name, "key_id");
        goto done;
    }
    for (size_t i = 0; i < DATA_MANIFEST_KEY_ID_BYTES; i++) {
        int hi = hexval(kid->valuestring[2 * i]), lo = hexval(kid->valuestring[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            st = bad(name, "key_id");
            goto done;
        }
        out->key_id[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 3 ||
        !get_size(cJSON_GetArrayItem(shape, 0), 1, DATA_IMAGE_MAX_CHANNELS, &dims[0]) ||
        !get_size(cJSON_GetArrayItem(shape, 1), 1, DATA_IMAGE_MAX_SIDE, &dims[1]) ||
        !get_size(cJSON_GetArrayItem(shape, 2), 1, DATA_IMAGE_MAX_SIDE, &dims[2])) {
        st = bad(name, "shape");
        goto done;
    }
    /* names are as many as the images (an array is never bigger than the text it came from). */
    if (!get_size(imgs, 1, (double)len, &count) || !cJSON_IsArray(names) ||
        (size_t)cJSON_GetArraySize(names) != count) {
        st = bad(name, "images and names disagree");
        goto done;
    }
    out->names = calloc(count, sizeof *out->names);
    if (!out->names) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    out->count = count;
    out->shape = (data_shape){dims[0], dims[1], dims[2]};
    size_t i = 0;
    for (const cJSON *e = names->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            st = bad(name, "a name is not a string");
            goto done;
        }
        if (!(out->names[i] = strdup(e->valuestring))) {
            st = ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (st)
        data_manifest_free(out);
    return st;
}

ppnn_status data_manifest_load(data_manifest *out, const char *path)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    ppnn_status st = ppnn_read_file(&buf, &len, path, DATA_MANIFEST_MAX_BYTES);
    if (st)
        return st;
    st = data_manifest_parse(out, buf, len, path);
    free(buf);
    return st;
}

void data_manifest_free(data_manifest *m)
{
    if (!m)
        return;
    _data_free_names(m->names, m->count);
    memset(m, 0, sizeof *m);
}
