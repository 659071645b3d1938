/* The image tensor: allocation, the file-signature dispatch, the directory loader (sorted,
 * strict), shape checks and optional resizing. The decoders live in png.c, npy.c, dicom.cpp. */
#include <dirent.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/inner.h"

size_t _data_checked_product(const size_t *f, size_t n, size_t cap)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++) {
        if (f[i] == 0 || p > cap / f[i])
            return 0;
        p *= f[i];
    }
    return p;
}

static char *dup_name(const char *name, size_t index, int indexed)
{
    size_t len = strlen(name) + (indexed ? 24 : 1);
    char *s = malloc(len);
    if (s)
        snprintf(s, len, indexed ? "%s[%zu]" : "%s", name, index);
    return s;
}

ppnn_status _data_images_alloc(data_images *out, size_t count, size_t c, size_t h, size_t w,
                               const char *name)
{
    memset(out, 0, sizeof *out);
    if (c == 0 || c > DATA_IMAGE_MAX_CHANNELS || h == 0 || h > DATA_IMAGE_MAX_SIDE || w == 0 ||
        w > DATA_IMAGE_MAX_SIDE)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: image shape %zux%zux%zu is outside the limits "
                         "(1..%d channels, 1..%d pixels a side)", name, c, h, w,
                         DATA_IMAGE_MAX_CHANNELS, DATA_IMAGE_MAX_SIDE);
    const size_t f[4] = {count, c, h, w};
    size_t total = _data_checked_product(f, 4, DATA_IMAGES_MAX_VALUES);
    if (!total)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %zu images of %zux%zux%zu are empty or more than "
                         "the %zu values one tensor may hold", name, count, c, h, w,
                         DATA_IMAGES_MAX_VALUES);
    out->values = malloc(total * sizeof *out->values);
    out->names = calloc(count, sizeof *out->names);
    if (!out->values || !out->names) {
        data_images_free(out);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory for %zu images", name, count);
    }
    out->count = count, out->c = c, out->h = h, out->w = w;
    for (size_t i = 0; i < count; i++) {
        if (!(out->names[i] = dup_name(name, i, count > 1))) {
            data_images_free(out);
            return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
        }
    }
    return PPNN_OK;
}

void _data_free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void data_images_free(data_images *im)
{
    if (!im)
        return;
    _data_free_names(im->names, im->count);
    if (im->values) /* a patient's images: wiped before the heap reuses them */
        sodium_memzero(im->values, im->count * im->c * im->h * im->w * sizeof *im->values);
    free(im->values);
    memset(im, 0, sizeof *im);
}

ppnn_status data_images_from_set(data_images *out, const data_set *ds, size_t first_index)
{
    ppnn_status st = _data_images_alloc(out, ds->count, ds->channels, ds->rows, ds->cols,
                                        ds->source);
    if (st)
        return st;
    data_normalize(out->values, ds->pixels, ds->count * ds->channels * ds->rows * ds->cols);
    for (size_t i = 0; i < ds->count; i++) /* the index within the split, not the selection */
        snprintf(out->names[i], strlen(ds->source) + 24, "%s[%zu]", ds->source, first_index + i);
    return PPNN_OK;
}

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

ppnn_status data_images_read_file(data_images *out, const char *path)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    ppnn_status st = ppnn_read_file(&buf, &len, path, DATA_IMAGE_MAX_FILE);
    if (st)
        return st;
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
        st = data_png_parse(out, buf, len, path);
    else if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        st = data_npy_parse(out, buf, len, path);
    else if (len >= 132 && memcmp(buf + 128, "DICM", 4) == 0)
        st = data_dicom_parse(out, buf, len, path);
    else
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: not a PNG, NumPy .npy or DICOM (Part 10) file", path);
    free(buf);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted paths of the regular, non-hidden files of dir (a subdirectory is an error). */
static ppnn_status list_dir(char ***out, size_t *n, const char *dir)
{
    *out = NULL, *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return ppnn_fail(PPNN_ERR_IO, "%s: cannot open directory", dir);
    size_t cap = 0;
    char **v = NULL;
    ppnn_status st = PPNN_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p || (*n == cap && !(v = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v)))) {
            free(p);
            st = ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory listing the directory", dir);
            break;
        }
        size_t dl = strlen(dir);
        while (dl > 1 && dir[dl - 1] == '/') /* "scans/" names its files "scans/a.png" */
            dl--;
        snprintf(p, len, "%.*s/%s", (int)dl, dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: not a regular file (directories are not read "
                           "recursively)", p);
            free(p);
            break;
        }
        v[(*n)++] = p;
    }
    closedir(d);
    if (!st && *n == 0)
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: no image files in the directory", dir);
    if (st) {
        _data_free_names(v, *n);
        *n = 0;
        return st;
    }
    qsort(v, *n, sizeof *v, cmp_str);
    *out = v;
    return PPNN_OK;
}

/* Replaces im by its H x W -> want->h x want->w area resize. */
static ppnn_status resize_images(data_images *im, const data_shape *want)
{
    const size_t planes = im->count * im->c, osz = want->h * want->w, isz = im->h * im->w;
    if (planes > DATA_IMAGES_MAX_VALUES / osz)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: resizing to %zux%zu exceeds the tensor limit",
                         im->names[0], want->h, want->w);
    float *v = malloc(planes * osz * sizeof *v);
    if (!v)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory resizing %s", im->names[0]);
    for (size_t p = 0; p < planes; p++)
        data_resize_area(v + p * osz, want->h, want->w, im->values + p * isz, im->h, im->w);
    sodium_memzero(im->values, planes * isz * sizeof *im->values);
    free(im->values);
    im->values = v, im->h = want->h, im->w = want->w;
    return PPNN_OK;
}

/* Appends src's images to dst (taking src's names), growing dst geometrically. */
static ppnn_status append(data_images *dst, size_t *cap, data_images *src)
{
    const size_t numel = src->c * src->h * src->w;
    if (dst->count + src->count > *cap) {
        size_t ncap = *cap ? *cap : 16;
        while (ncap < dst->count + src->count)
            ncap *= 2;
        if (ncap > DATA_IMAGES_MAX_VALUES / numel)
            ncap = DATA_IMAGES_MAX_VALUES / numel;
        if (ncap < dst->count + src->count)
            return ppnn_fail(PPNN_ERR_PARAM, "%s: more images than one tensor may hold (%zu "
                             "values)", src->names[0], DATA_IMAGES_MAX_VALUES);
        float *v = malloc(ncap * numel * sizeof *v); /* not realloc: the old block is wiped */
        if (v && dst->values) {
            memcpy(v, dst->values, dst->count * numel * sizeof *v);
            sodium_memzero(dst->values, dst->count * numel * sizeof *v);
            free(dst->values);
        }
        if (v)
            dst->values = v;
        char **nm = v ? realloc(dst->names, ncap * sizeof *nm) : NULL;
        if (!nm)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory loading %s", src->names[0]);
        dst->names = nm;
        *cap = ncap;
    }
    memcpy(dst->values + dst->count * numel, src->values, src->count * numel * sizeof *src->values);
    memcpy(dst->names + dst->count, src->names, src->count * sizeof *src->names);
    dst->count += src->count;
    dst->c = src->c, dst->h = src->h, dst->w = src->w;
    free(src->names); /* the strings now belong to dst */
    src->names = NULL;
    data_images_free(src); /* wipes src's values */
    return PPNN_OK;
}

static ppnn_status load_one(data_images *out, size_t *cap, const char *path,
                            const data_load_opts *o)
{
    data_images im;
    ppnn_status st = data_images_read_file(&im, path);
    if (st)
        return st;
    /* Shape every image must have: the requested one, else that of the first image. */
    data_shape want = {out->c, out->h, out->w};
    if (o->want)
        want = *o->want;
    const int have_want = o->want || out->count;
    if (have_want && (im.c != want.c || im.h != want.h || im.w != want.w)) {
        if (!o->resize || im.c != want.c) {
            st = ppnn_fail(PPNN_ERR_MISMATCH, "%s: image is %zux%zux%zu (CxHxW) but %s %zux%zux%zu%s",
                           path, im.c, im.h, im.w, o->want ? "the model expects" : "the first image is",
                           want.c, want.h, want.w,
                           im.c != want.c ? "" : " (pass --resize to scale it)");
            goto fail;
        }
        if ((st = resize_images(&im, &want)))
            goto fail;
    }
    if (o->max_images && out->count + im.count > o->max_images) {
        st = ppnn_fail(PPNN_ERR_PARAM, "%s: more than %zu images in total", path, o->max_images);
        goto fail;
    }
    if ((st = append(out, cap, &im)))
        goto fail;
    return PPNN_OK;
fail:
    data_images_free(&im);
    return st;
}

ppnn_status data_images_load(data_images *out, const char *const *paths, size_t npaths,
                             const data_load_opts *opts)
{
    static const data_load_opts none = {NULL, 0, 0};
    const data_load_opts *o = opts ? opts : &none;
    memset(out, 0, sizeof *out);
    if (npaths == 0)
        return ppnn_fail(PPNN_ERR_PARAM, "no image files given");
    size_t cap = 0;
    ppnn_status st = PPNN_OK;
    for (size_t i = 0; i < npaths && !st; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0) {
            st = ppnn_fail(PPNN_ERR_IO, "%s: no such file or directory", paths[i]);
        } else if (S_ISDIR(sb.st_mode)) {
            char **files;
            size_t n;
            if ((st = list_dir(&files, &n, paths[i])))
                break;
            for (size_t k = 0; k < n && !st; k++)
                st = load_one(out, &cap, files[k], o);
            _data_free_names(files, n);
        } else {
            st = load_one(out, &cap, paths[i], o);
        }
    }
    if (st)
        data_images_free(out);
    return st;
}
