/* Image sources for `ppnn encrypt` and `ppnn eval`: an IDX data set or image files, as one
 * image tensor (data_images). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/data.h"
#include "ppnn/nn.h"

int cli_collect_image_paths(const char *cmd, cli_image_source *src, const char *first,
                            int argc, char **argv)
{
    src->paths = NULL, src->npaths = 0;
    if (!first) {
        if (optind != argc)
            return cli_error(cmd, "unexpected argument '%s'", argv[optind]);
        return 0;
    }
    size_t n = 1 + (size_t)(argc - optind);
    src->paths = malloc(n * sizeof *src->paths);
    if (!src->paths)
        return cli_error(cmd, "out of memory");
    src->paths[0] = first;
    for (int i = optind; i < argc; i++)
        src->paths[1 + (size_t)(i - optind)] = argv[i];
    src->npaths = n;
    return 0;
}

int cli_want_shape(const char *cmd, data_shape *out, int *have, const char *model,
                   const char *shape)
{
    *have = 0;
    if (model && shape)
        return cli_error(cmd, "give the input shape with --model or --shape, not both");
    if (model) {
        nn_model m;
        ppnn_status st = nn_model_load(&m, model);
        if (st)
            return cli_fail(cmd, st);
        *out = (data_shape){m.input.c, m.input.h, m.input.w};
        nn_model_free(&m);
        *have = 1;
    } else if (shape) {
        unsigned long v[3];
        char tail;
        if (sscanf(shape, "%lux%lux%lu%c", &v[0], &v[1], &v[2], &tail) != 3 || !v[0] ||
            v[0] > DATA_IMAGE_MAX_CHANNELS || !v[1] || v[1] > DATA_IMAGE_MAX_SIDE || !v[2] ||
            v[2] > DATA_IMAGE_MAX_SIDE || strchr(shape, '-') || strchr(shape, ' '))
            return cli_error(cmd, "--shape '%s': expected CxHxW (e.g. 1x28x28, 3x32x32)", shape);
        *out = (data_shape){v[0], v[1], v[2]};
        *have = 1;
    }
    return 0;
}

int cli_load_images(const char *cmd, data_images *out, const cli_image_source *src,
                    const data_shape *want, size_t max_images)
{
    ppnn_status st;
    memset(out, 0, sizeof *out);
    if (src->paths) {
        if (src->resize && !want)
            return cli_error(cmd, "--resize needs the target shape: give --model M or --shape "
                             "CxHxW");
        data_load_opts o = {want, src->resize, max_images};
        if ((st = data_images_load(out, src->paths, src->npaths, &o)))
            return cli_fail(cmd, st);
        return 0;
    }
    if (src->resize)
        return cli_error(cmd, "--resize applies to --images only");
    data_split split;
    if ((st = data_split_parse(&split, src->split)))
        return cli_fail(cmd, st);
    data_set ds;
    if ((st = data_load(&ds, src->data, split, src->offset, src->count)))
        return cli_fail(cmd, st);
    if (max_images && ds.count > max_images) {
        cli_error(cmd, "%zu images are more than the %zu slots; pass --count <= %zu", ds.count,
                  max_images, max_images);
        data_set_free(&ds);
        return 1;
    }
    if (want && (want->c != ds.channels || want->h != ds.rows || want->w != ds.cols)) {
        cli_error(cmd, "%s images are %zux%zux%zu (CxHxW) but the model expects %zux%zux%zu",
                  src->data, ds.channels, ds.rows, ds.cols, want->c, want->h, want->w);
        data_set_free(&ds);
        return 1;
    }
    st = data_images_from_set(out, &ds, src->offset);
    data_set_free(&ds);
    return st ? cli_fail(cmd, st) : 0;
}

int cli_check_names(const char *cmd, data_manifest *out, const char *path, const uint8_t *key_id,
                    size_t images)
{
    ppnn_status st = data_manifest_load(out, path);
    if (st)
        return cli_fail(cmd, st);
    if (memcmp(out->key_id, key_id, DATA_MANIFEST_KEY_ID_BYTES) != 0)
        cli_error(cmd, "%s was written for a batch under other keys; use the manifest written "
                  "with the batch these results came from", path);
    else if (out->count != images)
        cli_error(cmd, "%s names %zu images but the results hold %zu; use the manifest written "
                  "with the batch these results came from", path, out->count, images);
    else
        return 0;
    data_manifest_free(out);
    return 1;
}
