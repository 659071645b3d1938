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
    "Prints the plaintext accuracy (overall and per class). --json prints one JSON object:\n"
    "{\"accuracy\": fraction, \"per_class\": [fractions], \"correct\", \"images\", ...}.\n"
    "--predictions writes the plaintext logits in the CSV format of `ppnn decrypt`, so\n"
    "encrypted and plaintext predictions can be compared image by image.\n";

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
        st = cli_write_predictions(path, ld, n, classes, 1);
    free(x);
    free(lf);
    free(ld);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = "mnist", *split_s = "test", *pred_path = NULL;
    size_t offset = 0, count = 0, threads = 1;
    int json = 0;
    static const struct option opts[] = {
        {"model", 1, 0, 'm'}, {"data", 1, 0, 'd'},    {"split", 1, 0, 's'},
        {"offset", 1, 0, 'o'}, {"count", 1, 0, 'n'},  {"json", 0, 0, 'J'},
        {"threads", 1, 0, 'j'}, {"predictions", 1, 0, 'P'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 's': split_s = optarg; break;
        case 'J': json = 1; break;
        case 'P': pred_path = optarg; break;
        case 'o': bad = cli_parse_size("eval", "--offset", optarg, 0, 1u << 30, &offset); break;
        case 'n': bad = cli_parse_size("eval", "--count", optarg, 1, 1u << 30, &count); break;
        case 'j': bad = cli_parse_size("eval", "--threads", optarg, 1, 256, &threads); break;
        case 'h': fputs(usage_text, stdout); return 0;
        default:
            return cli_usage_error("eval", argc, argv);
        }
        if (bad)
            return 1;
    }
    if (optind != argc)
        return cli_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!model)
        return cli_error("eval", "--model is required");
    nn_set_threads((int)threads);
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
