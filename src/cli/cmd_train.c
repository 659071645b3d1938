/* ppnn train: train a plaintext model (ReLU teacher or polynomial student, optionally by
 * distillation from a teacher) and write it as a model file. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/nn.h"

static const char *usage_text =
    "usage: ppnn train --out M.ppnn [--data mnist|fashion|DIR] [--arch A | --layers SPEC]\n"
    "                  [--act ACT]\n"
    "                  [--teacher T.ppnn [--kd-temp T] [--kd-alpha A] [--kd-offline]]\n"
    "                  [--epochs E] [--seed S]\n"
    "                  [--lr LR] [--batch B] [--optimizer adam|sgd] [--momentum M] [--clip C]\n"
    "                  [--weight-decay W] [--shift P] [--range-penalty L] [--count N]\n"
    "                  [--holdout N] [--threads T] [--prune F]\n"
    "Trains on the training split (never the test split). Defaults: --data mnist --arch\n"
    "cryptonets --act element --epochs 10 --seed 1 --lr 0.001 --batch 64 --optimizer adam\n"
    "--clip 5 --kd-temp 4 --kd-alpha 0.5.\n"
    "  --arch      cryptonets, deep (9 levels), teacher or teacher-wide (ReLU)\n"
    "  --layers    a layer spec instead, e.g. conv5x5s2p1c5,act,flatten,dense100,act,dense10\n"
    "              (conv<K>x<K>[s<S>][p<P>]c<C>, avgpool<K>[s<S>], flatten, dense<N>, act,\n"
    "              relu, square, element, channel, layer; docs/training.md). The input shape\n"
    "              C x H x W is the data's (4-dimensional IDX files hold colour images)\n"
    "  --act       relu, element (BEAA), channel, layer or square\n"
    "  --kd-offline teacher logits once per unaugmented image instead of per batch (faster)\n"
    "  --shift P   random translations of up to P pixels (augmentation)\n"
    "  --count N   use only the first N training images\n"
    "  --holdout N keep the last N training images out of training and report accuracy on them\n"
    "  --threads T OpenMP threads (default 1; the result does not depend on it)\n"
    "  --prune F   magnitude pruning of the dense layers before the classifier to a fraction F\n"
    "              of zero weights: cubic ramp over the first half of the steps, then\n"
    "              fine-tuning at the final mask (docs/training.md); the planner runs them\n"
    "              in CSR\n";

typedef struct train_ui {
    cli_progress bar;
    char label[48];
    double start, run_start;
} train_ui;

static void on_progress(void *ctx, const nn_train_progress *p)
{
    train_ui *ui = ctx;
    if (p->batch == 1) {
        snprintf(ui->label, sizeof ui->label, "epoch %zu/%zu", p->epoch, p->epochs);
        cli_progress_start(&ui->bar, ui->label, p->batches);
        ui->start = ppnn_now();
    }
    char extra[160];
    double now = ppnn_now(), el = now - ui->start;
    if (!ui->run_start)
        ui->run_start = now;
    /* Whole-run ETA from the fraction of all batches done so far. */
    double done = (double)((p->epoch - 1) * p->batches + p->batch);
    double frac = done / (double)(p->epochs * p->batches), run_el = now - ui->run_start;
    snprintf(extra, sizeof extra, " loss %.4f acc %.2f%% %.0f img/s run ETA %.0fs", p->loss,
             100 * p->accuracy, el > 0.01 ? (double)p->images / el : 0.0,
             frac > 0 ? run_el * (1 - frac) / frac : 0.0);
    if (p->batch == p->batches)
        cli_progress_finish(&ui->bar, extra);
    else
        cli_progress_update(&ui->bar, p->batch, extra);
}

static int print_holdout(const nn_model *m, const data_set *ds)
{
    size_t correct[DATA_NUM_CLASSES], total[DATA_NUM_CLASSES], c = 0, t = 0;
    ppnn_status st = nn_evaluate(m, ds, correct, total);
    if (st)
        return cli_fail("train", st);
    for (int k = 0; k < DATA_NUM_CLASSES; k++)
        c += correct[k], t += total[k];
    printf("holdout accuracy %.2f%% (%zu/%zu)\n", t ? 100.0 * (double)c / (double)t : 0.0, c, t);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    const char *data = "mnist", *arch = "cryptonets", *act_s = "element", *teacher_path = NULL;
    const char *layers = NULL;
    int arch_given = 0;
    const char *out = NULL;
    size_t count = 0, holdout = 0, threads = 1;
    nn_train_config cfg;
    nn_train_config_default(&cfg);
    static const struct option opts[] = {
        {"data", 1, 0, 'd'},      {"arch", 1, 0, 'a'},         {"act", 1, 0, 'A'},
        {"layers", 1, 0, 'L'},
        {"teacher", 1, 0, 'T'},   {"kd-temp", 1, 0, 't'},      {"kd-alpha", 1, 0, 'k'},
        {"epochs", 1, 0, 'e'},    {"seed", 1, 0, 's'},         {"lr", 1, 0, 'l'},
        {"batch", 1, 0, 'b'},     {"optimizer", 1, 0, 'O'},    {"momentum", 1, 0, 'm'},
        {"clip", 1, 0, 'c'},      {"weight-decay", 1, 0, 'w'}, {"shift", 1, 0, 'S'},
        {"range-penalty", 1, 0, 'r'}, {"count", 1, 0, 'n'},    {"holdout", 1, 0, 'H'},
        {"threads", 1, 0, 'j'},   {"out", 1, 0, 'o'},          {"help", 0, 0, 'h'},
        {"kd-offline", 0, 0, 'K'}, {"prune", 1, 0, 'P'},
        {0, 0, 0, 0}};
    int c;
    size_t seed = 1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': arch = optarg, arch_given = 1; break;
        case 'L': layers = optarg; break;
        case 'A': act_s = optarg; break;
        case 'T': teacher_path = optarg; break;
        case 'K': cfg.kd_offline = 1; break;
        case 'o': out = optarg; break;
        case 't': bad = cli_parse_double("train", "--kd-temp", optarg, 0.1, 100, &cfg.kd_temp); break;
        case 'k': bad = cli_parse_double("train", "--kd-alpha", optarg, 0, 1, &cfg.kd_alpha); break;
        case 'e': bad = cli_parse_size("train", "--epochs", optarg, 1, 10000, &cfg.epochs); break;
        case 's': bad = cli_parse_size("train", "--seed", optarg, 0, SIZE_MAX, &seed); break;
        case 'l': bad = cli_parse_double("train", "--lr", optarg, 1e-9, 10, &cfg.lr); break;
        case 'b': bad = cli_parse_size("train", "--batch", optarg, 1, 4096, &cfg.batch); break;
        case 'm': bad = cli_parse_double("train", "--momentum", optarg, 0, 0.999, &cfg.momentum); break;
        case 'c': bad = cli_parse_double("train", "--clip", optarg, 0, 1e6, &cfg.clip_norm); break;
        case 'w': bad = cli_parse_double("train", "--weight-decay", optarg, 0, 1, &cfg.weight_decay); break;
        case 'S': bad = cli_parse_size("train", "--shift", optarg, 0, 8, &cfg.shift); break;
        case 'r': bad = cli_parse_double("train", "--range-penalty", optarg, 0, 1e6, &cfg.range_penalty); break;
        case 'n': bad = cli_parse_size("train", "--count", optarg, 1, 1u << 30, &count); break;
        case 'H': bad = cli_parse_size("train", "--holdout", optarg, 0, 1u << 30, &holdout); break;
        case 'P': bad = cli_parse_double("train", "--prune", optarg, 0, 0.999, &cfg.prune); break;
        case 'j': bad = cli_parse_size("train", "--threads", optarg, 1, 256, &threads); break;
        case 'O':
            if (!strcmp(optarg, "adam"))
                cfg.optimizer = NN_OPT_ADAM;
            else if (!strcmp(optarg, "sgd"))
                cfg.optimizer = NN_OPT_SGD;
            else
                bad = cli_error("train", "--optimizer: '%s' is not adam or sgd", optarg);
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default:
            return cli_usage_error("train", argc, argv);
        }
        if (bad)
            return 1;
    }
    if (optind != argc)
        return cli_error("train", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_error("train", "--out is required");
    if (layers && arch_given)
        return cli_error("train", "give --arch or --layers, not both");
    if (layers)
        arch = "custom";
    cfg.seed = seed;
    nn_act act;
    ppnn_status st = nn_act_parse(&act, act_s);
    if (st)
        return cli_fail("train", st);
    nn_set_threads((int)threads);

    nn_model teacher = {0}, m = {0};
    data_set ds = {0}, hold = {0};
    int rc = 1;
    if (teacher_path) {
        if ((st = nn_model_load(&teacher, teacher_path)))
            goto fail;
        cfg.teacher = &teacher;
    }
    if ((st = data_load(&ds, data, DATA_SPLIT_TRAIN, 0, count)))
        goto fail;
    if (cli_check_output("train", out, NN_MODEL_FILE_KIND))
        goto done;
    if (holdout) {
        if (holdout >= ds.count) {
            rc = cli_error("train", "--holdout %zu leaves no training images", holdout);
            goto done;
        }
        if ((st = data_load(&hold, data, DATA_SPLIT_TRAIN, ds.count - holdout, holdout)))
            goto fail;
        ds.count -= holdout; /* the tail of the buffer is simply unused */
    }
    if ((st = layers ? nn_arch_build_spec(&m, arch, layers, act, nn_shape_of_set(&ds),
                                          DATA_NUM_CLASSES)
                     : nn_arch_build(&m, arch, act, nn_shape_of_set(&ds), DATA_NUM_CLASSES)))
        goto fail;
    if ((st = nn_model_init_params(&m, &ds, cfg.seed)))
        goto fail;
    train_ui ui;
    memset(&ui, 0, sizeof ui);
    cfg.progress = on_progress;
    cfg.progress_ctx = &ui;
    double t0 = ppnn_now();
    if ((st = nn_train(&m, &ds, &cfg)))
        goto fail;
    double el = ppnn_now() - t0;
    if ((st = nn_model_save(&m, out)))
        goto fail;
    size_t depth = nn_model_depth(&m);
    printf("trained %s/%s on %zu images of %s: %zu epochs in %.1f s (%.2f s/epoch), %zu "
           "parameters, depth %s%zu -> %s\n",
           arch, act_s, ds.count, data, cfg.epochs, el, el / (double)cfg.epochs, m.nparams,
           depth == SIZE_MAX ? "n/a (relu) " : "", depth == SIZE_MAX ? (size_t)0 : depth, out);
    if (cfg.prune > 0)
        printf("pruned: %.1f%% of the weights of the dense layers before the classifier are "
               "zero\n", 100 * nn_model_pruned_fraction(&m));
    rc = holdout ? print_holdout(&m, &hold) : 0;
    goto done;
fail:
    rc = cli_fail("train", st);
done:
    nn_model_free(&m);
    nn_model_free(&teacher);
    data_set_free(&ds);
    data_set_free(&hold);
    return rc;
}
