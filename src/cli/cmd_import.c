/* ppnn import: an ONNX model -> a ppnn model file, with ranges calibrated on images. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/data.h"
#include "ppnn/onnx.h"

static const char *usage_text =
    "usage: ppnn import --onnx MODEL.onnx --out M.ppnn [--calibrate mnist|fashion|DIR|IMAGES]\n"
    "                   [--count N] [--split train|test] [--norm-mean M] [--norm-std S]\n"
    "Imports an ONNX model (docs/onnx.md lists the operators) as a ppnn model. The graph's\n"
    "input is taken to be (p/255 - M) / S for pixel bytes p (default M = 0, S = 1: p/255).\n"
    "--calibrate records the value ranges the encrypted planner needs on the first N\n"
    "(default 1000) images of a split, exactly as `ppnn train` records them, or of an image\n"
    "file or directory (PNG, .npy, DICOM: docs/images.md); without it the planner falls back\n"
    "to worst-case bounds.\n";

/* Calibration images as [0,1] values (IDX data sets through data_normalize, image files as
 * their readers decode them), normalised for the model on demand. */
typedef struct {
    const nn_model *m;
    const data_images *im;
} image_source;

static ppnn_status fill_images(void *ctx, float *x, size_t first, size_t n)
{
    const image_source *s = ctx;
    nn_model_normalize_unit(s->m, x, s->im->values + first * s->im->c * s->im->h * s->im->w, n);
    return PPNN_OK;
}

/* DATA: mnist, fashion or a directory of IDX files (split, first `count` images), or else an
 * image file or directory (PNG, .npy, DICOM; the first `count` images, docs/images.md). */
static ppnn_status calibrate(nn_model *m, const char *data, data_split split, size_t count)
{
    data_set ds;
    data_images im;
    memset(&im, 0, sizeof im);
    ppnn_status st = data_load(&ds, data, split, 0, count);
    if (!st) {
        st = data_images_from_set(&im, &ds, 0);
        data_set_free(&ds);
    } else {
        char idx_msg[512];
        snprintf(idx_msg, sizeof idx_msg, "%s", ppnn_last_error());
        data_shape want = {m->input.c, m->input.h, m->input.w};
        data_load_opts o = {0};
        o.want = &want;
        const char *paths[1] = {data};
        if ((st = data_images_load(&im, paths, 1, &o)))
            st = ppnn_fail(st, "--calibrate %s: neither an IDX data set (%s) nor images (%s)",
                           data, idx_msg, ppnn_last_error());
        else if (count && im.count > count)
            im.count = count;
    }
    if (!st && (m->input.c != im.c || m->input.h != im.h || m->input.w != im.w))
        st = ppnn_fail(PPNN_ERR_MISMATCH, "calibration images %s are %zux%zux%zu but the model "
                       "takes %ux%ux%u", data, im.c, im.h, im.w, m->input.c, m->input.h,
                       m->input.w);
    image_source src = {m, &im};
    if (!st)
        st = onnx_calibrate(m, fill_images, &src, im.count);
    data_images_free(&im);
    return st;
}

static void print_model(const nn_model *m, const char *out, int calibrated)
{
    printf("imported %s: input %ux%ux%u, %u outputs, %zu layers, depth %zu%s\n", out,
           m->input.c, m->input.h, m->input.w, m->nclasses, m->nlayers, nn_model_depth(m),
           calibrated ? ", ranges calibrated" : ", no calibration (worst-case bounds)");
    for (size_t i = 0; i < m->nlayers; i++) {
        const nn_layer *l = &m->layers[i];
        printf("  %2zu %-8s %ux%ux%u -> %ux%ux%u", i, nn_layer_type_name(l->type), l->in.c,
               l->in.h, l->in.w, l->out.c, l->out.h, l->out.w);
        if (l->type == NN_LAYER_CONV2D || l->type == NN_LAYER_AVGPOOL)
            printf("  k%u s%u p%u", l->kernel, l->stride, l->pad);
        if (l->type == NN_LAYER_POLY)
            printf("  %s", nn_poly_gran_name(l->gran));
        if (calibrated)
            printf("  in [%.3g, %.3g]", (double)l->in_range.min, (double)l->in_range.max);
        printf("\n");
    }
}

int cmd_import(int argc, char **argv)
{
    const char *onnx = NULL, *out = NULL, *data = NULL, *split_s = "train";
    size_t count = 1000;
    double mean = 0, std = 1;
    static const struct option opts[] = {
        {"onnx", 1, 0, 'i'},  {"out", 1, 0, 'o'},      {"calibrate", 1, 0, 'c'},
        {"count", 1, 0, 'n'}, {"split", 1, 0, 's'},    {"norm-mean", 1, 0, 'M'},
        {"norm-std", 1, 0, 'S'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i': onnx = optarg; break;
        case 'o': out = optarg; break;
        case 'c': data = optarg; break;
        case 's': split_s = optarg; break;
        case 'n': bad = cli_parse_size("import", "--count", optarg, 1, 1u << 20, &count); break;
        case 'M': bad = cli_parse_double("import", "--norm-mean", optarg, -1e6, 1e6, &mean); break;
        case 'S': bad = cli_parse_double("import", "--norm-std", optarg, 1e-9, 1e6, &std); break;
        case 'h': fputs(usage_text, stdout); return 0;
        default:
            return cli_error("import", "unknown or incomplete option '%s' (see ppnn import "
                             "--help)", argv[optind - 1]);
        }
        if (bad)
            return 1;
    }
    if (optind != argc)
        return cli_error("import", "unexpected argument '%s'", argv[optind]);
    if (!onnx || !out)
        return cli_error("import", "--onnx and --out are required");
    data_split split;
    ppnn_status st = data_split_parse(&split, split_s);
    if (st)
        return cli_fail("import", st);
    onnx_import_opts o;
    onnx_import_opts_default(&o);
    o.norm_mean = (float)mean, o.norm_std = (float)std;
    nn_model m;
    if ((st = onnx_import_file(&m, onnx, &o)))
        return cli_fail("import", st);
    if (data && (st = calibrate(&m, data, split, count))) {
        nn_model_free(&m);
        return cli_fail("import", st);
    }
    if ((st = nn_model_save(&m, out))) {
        nn_model_free(&m);
        return cli_fail("import", st);
    }
    print_model(&m, out, data != NULL);
    nn_model_free(&m);
    return 0;
}
