/* ppnn eval: plaintext accuracy of a model file on a dataset split. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "ppnn/nn.h"

static const char *usage_text =
    "usage: ppnn eval --model M.ppnn [--data mnist|fashion|DIR] [--split test|train]\n"
    "                 [--offset K] [--count N] [--json] [--threads T] [--predictions P.csv]\n"
    "       ppnn eval --model M.ppnn --images PATH... [--resize] [--predictions P.csv]\n"
    "Prints the plaintext accuracy (overall and per class). --json prints one JSON object:\n"
    "{\"accuracy\": fraction, \"per_class\": [fractions], \"correct\", \"images\", ...}.\n"
    "--predictions writes the plaintext logits in the CSV format of `ppnn decrypt`, so\n"
    "encrypted and plaintext predictions can be compared image by image.\n"
    "--images (PNG, .npy, DICOM files or directories, as for `ppnn encrypt --images`) has no\n"
    "labels: it prints 'file,prediction' per image (and writes --predictions with a file\n"
    "column, as `ppnn decrypt --names` does).\n";

/* Plaintext logits of every image of ds, in the CSV format of `ppnn decrypt`. */
static ppnn_status write_predictions(const char *path, const nn_model *m, const data_set *ds)
{
    size_t n = ds->count, numel = nn_numel(m->input), classes = m->nclasses;
    float *x = malloc(n * numel * sizeof *x), *lf = malloc(n * classes * sizeof *lf);
    double *ld = malloc(n * classes * sizeof *ld);
    ppnn_status st = PPNN_OK;
    if (!x || !lf || !ld)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st) {
        nn_model_normalize(m, x, ds->pixels, n);
        st = nn_predict(m, lf, x, n);
    }
    for (size_t i = 0; !st && i < n * classes; i++)
        ld[i] = lf[i];
    if (!st)
        st = cli_write_predictions(path, ld, n, classes, 1, NULL);
    free(x);
    free(lf);
    free(ld);
    return st;
}

/* eval --images: plaintext predictions of image files, printed beside their names. */
static int eval_images(const nn_model *m, const cli_image_source *src, const char *pred_path)
{
    data_images im;
    const data_shape want = {m->input.c, m->input.h, m->input.w};
    if (cli_load_images("eval", &im, src, &want, 0))
        return 1;
    const size_t n = im.count, classes = m->nclasses;
    float *lf = malloc(n * classes * sizeof *lf);
    double *ld = malloc(n * classes * sizeof *ld);
    ppnn_status st = lf && ld ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st) {
        nn_model_normalize_unit(m, im.values, im.values, n);
        st = nn_predict(m, lf, im.values, n);
    }
    for (size_t i = 0; !st && i < n * classes; i++)
        ld[i] = lf[i];
    if (!st && pred_path)
        st = cli_write_predictions(pred_path, ld, n, classes, 1, (const char *const *)im.names);
    if (!st) {
        printf("file,prediction\n");
        for (size_t b = 0; b < n; b++)
            printf("%s,%zu\n", im.names[b], ppnn_argmaxf(lf + b * classes, classes));
    }
    free(lf);
    free(ld);
    data_images_free(&im);
    return st ? cli_fail("eval", st) : 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = "mnist", *split_s = "test", *pred_path = NULL;
    const char *images = NULL;
    size_t offset = 0, count = 0, threads = 1;
    int json = 0, resize = 0, idx_opts = 0;
    static const struct option opts[] = {
        {"model", 1, 0, 'm'}, {"data", 1, 0, 'd'},    {"split", 1, 0, 's'},
        {"offset", 1, 0, 'o'}, {"count", 1, 0, 'n'},  {"json", 0, 0, 'J'},
        {"threads", 1, 0, 'j'}, {"predictions", 1, 0, 'P'}, {"help", 0, 0, 'h'},
        {"images", 1, 0, 'I'}, {"resize", 0, 0, 'R'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg, idx_opts = 1; break;
        case 's': split_s = optarg, idx_opts = 1; break;
        case 'I': images = optarg; break;
        case 'R': resize = 1; break;
        case 'J': json = 1; break;
        case 'P': pred_path = optarg; break;
        case 'o':
            bad = cli_parse_size("eval", "--offset", optarg, 0, 1u << 30, &offset), idx_opts = 1;
            break;
        case 'n':
            bad = cli_parse_size("eval", "--count", optarg, 1, 1u << 30, &count), idx_opts = 1;
            break;
        case 'j': bad = cli_parse_size("eval", "--threads", optarg, 1, 256, &threads); break;
        case 'h': fputs(usage_text, stdout); return 0;
        default:
            return cli_usage_error("eval", argc, argv);
        }
        if (bad)
            return 1;
    }
    cli_image_source src = {data, split_s, offset, count, NULL, 0, resize};
    if (cli_collect_image_paths("eval", &src, images, argc, argv))
        return 1;
    if (!model || (images && (idx_opts || json)) || (!images && resize)) {
        free(src.paths);
        return cli_error("eval", !model ? "--model is required"
                         : !images ? "--resize applies to --images only"
                                   : "--images takes no --data/--split/--offset/--count/--json");
    }
    nn_set_threads((int)threads);
    if (images) {
        nn_model mi;
        ppnn_status st = nn_model_load(&mi, model);
        int rc = st ? cli_fail("eval", st) : eval_images(&mi, &src, pred_path);
        nn_model_free(&mi);
        free(src.paths);
        return rc;
    }
    data_split split;
    ppnn_status st = data_split_parse(&split, split_s);
    if (st)
        return cli_fail("eval", st);
    nn_model m;
    if ((st = nn_model_load(&m, model)))
        return cli_fail("eval", st);
    data_set ds;
    if ((st = data_load(&ds, data, split, offset, count))) {
        nn_model_free(&m);
        return cli_fail("eval", st);
    }
    if (pred_path && cli_check_output("eval", pred_path, NULL)) {
        nn_model_free(&m);
        data_set_free(&ds);
        return 1;
    }
    size_t correct[DATA_NUM_CLASSES], total[DATA_NUM_CLASSES], sc = 0, st_total = 0;
    st = nn_evaluate(&m, &ds, correct, total); /* refuses another class count */
    if (!st && pred_path)
        st = write_predictions(pred_path, &m, &ds);
    if (st) {
        nn_model_free(&m);
        data_set_free(&ds);
        return cli_fail("eval", st);
    }
    for (int k = 0; k < DATA_NUM_CLASSES; k++)
        sc += correct[k], st_total += total[k];
    double acc = st_total ? (double)sc / (double)st_total : 0;
    size_t depth = nn_model_depth(&m);
    int rc = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        int ok = o != NULL;
        ok &= cJSON_AddStringToObject(o, "model", model) != NULL;
        ok &= cJSON_AddStringToObject(o, "arch", m.arch) != NULL;
        ok &= cJSON_AddStringToObject(o, "data", data) != NULL;
        ok &= cJSON_AddStringToObject(o, "split", split_s) != NULL;
        ok &= cJSON_AddNumberToObject(o, "images", (double)st_total) != NULL;
        ok &= cJSON_AddNumberToObject(o, "correct", (double)sc) != NULL;
        ok &= cJSON_AddNumberToObject(o, "accuracy", acc) != NULL;
        cJSON *pc = cJSON_AddArrayToObject(o, "per_class"); /* owned by o */
        for (int k = 0; ok && pc && k < DATA_NUM_CLASSES; k++)
            ok &= cJSON_AddItemToArray(pc, cJSON_CreateNumber(
                      total[k] ? (double)correct[k] / (double)total[k] : 0.0));
        ok &= pc != NULL;
        ok &= (depth == SIZE_MAX ? cJSON_AddNullToObject(o, "depth")
                                 : cJSON_AddNumberToObject(o, "depth", (double)depth)) != NULL;
        rc = cli_print_json("eval", o, ok);
    } else {
        printf("%s (%s): accuracy %.2f%% (%zu/%zu) on %s/%s\n", model, m.arch, 100 * acc, sc,
               st_total, data, split_s);
        printf("  per class:");
        for (int k = 0; k < DATA_NUM_CLASSES; k++)
            printf(" %d:%.2f%%", k,
                   total[k] ? 100.0 * (double)correct[k] / (double)total[k] : 0.0);
        printf("\n");
    }
    nn_model_free(&m);
    data_set_free(&ds);
    return rc;
}
