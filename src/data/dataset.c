/* Named datasets, splits, offset/count selection and pixel normalisation. */
#include "ppnn/data.h"

#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef PPNN_SOURCE_DATA_DIR
#define PPNN_SOURCE_DATA_DIR "data"
#endif
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

ppnn_status data_resolve_dir(char *buf, size_t buflen, const char *name)
{
    if (strcmp(name, "fashion") == 0) {
        snprintf(buf, buflen, "%s", FASHION_DIR);
        if (!is_dir(buf))
            return ppnn_fail(PPNN_ERR_IO,
                             "dataset fashion: %s not found (install the Debian package "
                             "dataset-fashion-mnist, or run scripts/setup.sh)", FASHION_DIR);
        return PPNN_OK;
    }
    if (strcmp(name, "mnist") == 0) {
        const char *env = getenv("PPNN_DATA_DIR");
        const char *cands[3] = {NULL, "data", PPNN_SOURCE_DATA_DIR};
        if (env && *env)
            cands[0] = env;
        for (int i = 0; i < 3; i++) {
            if (!cands[i])
                continue;
            ppnn_status st = ppnn_path_join(buf, buflen, cands[i], "mnist");
            if (st)
                return st;
            if (is_dir(buf))
                return PPNN_OK;
            if (env && *env)
                break; /* an explicit PPNN_DATA_DIR is not second-guessed */
        }
        return ppnn_fail(PPNN_ERR_IO, "dataset mnist: %s not found (run scripts/setup.sh, or set "
                                      "PPNN_DATA_DIR to the directory that holds mnist/)", buf);
    }
    if (!is_dir(name))
        return ppnn_fail(PPNN_ERR_PARAM,
                         "dataset '%s': not 'mnist', 'fashion' or a directory of IDX files", name);
    if ((size_t)snprintf(buf, buflen, "%s", name) >= buflen)
        return ppnn_fail(PPNN_ERR_PARAM, "dataset directory path too long (%zu bytes)",
                         strlen(name));
    return PPNN_OK;
}

ppnn_status data_cache_tag(char *buf, size_t buflen, const char *name)
{
    if (!strcmp(name, "mnist") || !strcmp(name, "fashion")) {
        snprintf(buf, buflen, "%s", name);
        return PPNN_OK;
    }
    char *real = realpath(name, NULL);
    if (!real)
        return ppnn_fail(PPNN_ERR_PARAM, "dataset '%s': not 'mnist', 'fashion' or a directory",
                         name);
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64: a cache key, not a security boundary */
    for (const char *p = real; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3u;
    const char *base = strrchr(real, '/');
    base = base && base[1] ? base + 1 : "root";
    char safe[41];
    size_t n = 0;
    for (; base[n] && n < sizeof safe - 1; n++) {
        char c = base[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        safe[n] = ok ? c : '_';
    }
    safe[n] = 0;
    free(real);
    if ((size_t)snprintf(buf, buflen, "%s-%016llx", safe, (unsigned long long)h) >= buflen)
        return ppnn_fail(PPNN_ERR_PARAM, "dataset tag too long");
    return PPNN_OK;
}

ppnn_status data_check_classes(size_t nclasses)
{
    if (nclasses != DATA_NUM_CLASSES)
        return ppnn_fail(PPNN_ERR_MISMATCH, "the model has %zu classes but the labels are 0..%d "
                         "(%d classes)", nclasses, DATA_NUM_CLASSES - 1, DATA_NUM_CLASSES);
    return PPNN_OK;
}

ppnn_status data_split_parse(data_split *out, const char *s)
{
    if (strcmp(s, "train") == 0)
        *out = DATA_SPLIT_TRAIN;
    else if (strcmp(s, "test") == 0)
        *out = DATA_SPLIT_TEST;
    else
        return ppnn_fail(PPNN_ERR_PARAM, "unknown split '%s' (use train or test)", s);
    return PPNN_OK;
}

/* Finds <dir>/<base> or <dir>/<base>.gz; a FIFO or device by that name is refused by name
 * (the readers would refuse it too, with a less helpful "not found"). */
static ppnn_status find_file(char *buf, size_t buflen, const char *dir, const char *base)
{
    char gzbase[80];
    snprintf(gzbase, sizeof gzbase, "%s.gz", base);
    const char *names[2] = {base, gzbase};
    for (int i = 0; i < 2; i++) {
        ppnn_status st = ppnn_path_join(buf, buflen, dir, names[i]);
        if (st)
            return st;
        struct stat sb;
        if (stat(buf, &sb) == 0)
            return S_ISREG(sb.st_mode) ? PPNN_OK
                                       : ppnn_fail(PPNN_ERR_IO, "%s: not a regular file", buf);
    }
    return ppnn_fail(PPNN_ERR_IO, "%s/%s[.gz]: not found", dir, base);
}

ppnn_status data_load(data_set *out, const char *name, data_split split, size_t offset,
                      size_t count)
{
    memset(out, 0, sizeof *out);
    char dir[PATH_MAX], ipath[PATH_MAX], lpath[PATH_MAX];
    ppnn_status st = data_resolve_dir(dir, sizeof dir, name);
    if (st)
        return st;
    const char *prefix = split == DATA_SPLIT_TRAIN ? "train" : "t10k";
    char base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if ((st = find_file(ipath, sizeof ipath, dir, base)))
        return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if ((st = find_file(lpath, sizeof lpath, dir, base)))
        return st;

    data_idx im, lb;
    if ((st = data_idx_read(&im, ipath)))
        return st;
    if ((st = data_idx_read(&lb, lpath))) {
        data_idx_free(&im);
        return st;
    }
    /* (count, rows, cols), or (count, channels, rows, cols) for colour data sets. */
    const size_t d0 = im.ndims == 4 ? 2 : 1;
    if ((im.ndims != 3 && im.ndims != 4) || im.dims[d0] == 0 || im.dims[d0 + 1] == 0 ||
        (im.ndims == 4 && (im.dims[1] == 0 || im.dims[1] > DATA_IMAGE_MAX_CHANNELS))) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: expected an image file of (count, rows, cols) or "
                       "(count, channels <= %d, rows, cols)", ipath, DATA_IMAGE_MAX_CHANNELS);
        goto done;
    }
    if (lb.ndims != 1) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: expected a 1-dimensional label file", lpath);
        goto done;
    }
    if (im.count != lb.count) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s has %zu images but %s has %zu labels", ipath, im.count,
                       lpath, lb.count);
        goto done;
    }
    for (size_t i = 0; i < lb.count; i++) {
        if (lb.values[i] >= DATA_NUM_CLASSES) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: label %u at index %zu is out of range 0..9", lpath,
                           lb.values[i], i);
            goto done;
        }
    }
    if (offset >= im.count) { /* would select nothing: an error, not an empty success */
        st = ppnn_fail(PPNN_ERR_PARAM, "%s split of %s has %zu images; offset %zu is past the end",
                       prefix, name, im.count, offset);
        goto done;
    }
    if (count && count > im.count - offset) {
        st = ppnn_fail(PPNN_ERR_PARAM, "%s split of %s has %zu images; offset %zu + count %zu is out "
                                       "of range", prefix, name, im.count, offset, count);
        goto done;
    }
    if (count == 0)
        count = im.count - offset;
    out->count = count;
    out->channels = im.ndims == 4 ? im.dims[1] : 1;
    out->rows = im.dims[d0];
    out->cols = im.dims[d0 + 1];
    size_t isz = im.item_size;
    out->pixels = malloc(count * isz + 1);
    out->labels = malloc(count + 1);
    if (!out->pixels || !out->labels) {
        data_set_free(out);
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory loading %s", ipath);
        goto done;
    }
    memcpy(out->pixels, im.values + offset * isz, count * isz);
    memcpy(out->labels, lb.values + offset, count);
    snprintf(out->source, sizeof out->source, "%s", ipath);
done:
    data_idx_free(&im);
    data_idx_free(&lb);
    return st;
}

void data_set_free(data_set *ds)
{
    if (!ds)
        return;
    if (ds->pixels) /* the images a client encrypts: wiped before the heap reuses them */
        sodium_memzero(ds->pixels, ds->count * ds->channels * ds->rows * ds->cols);
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void data_normalize(float *out, const uint8_t *pixels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)pixels[i] / 255.0f; /* correctly rounded; p * (1/255) is not (126 bytes) */
}

void data_normalize_u16(float *out, const uint16_t *samples, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)samples[i] * (1.0f / 65535.0f);
}
