/* ppnn compare: reproduces BEAA's comparison with the channel-wise method (arXiv 2403.10920):
 * trains or reuses the ReLU teacher and the element-wise and channel-wise distilled students
 * (CryptoNets-size or the deep net), measures plaintext and encrypted accuracy, and the inference time per batch size of
 * both packings, then writes a report (compare_report.c). */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "compare.h"

static const char *usage_text =
    "usage: ppnn compare --out DIR [--data mnist|fashion] [--arch cryptonets|deep]\n"
    "                    [--batches 1,16,64,256,1024,4096] [--models MDIR] [--params n13|n14]\n"
    "                    [--count N] [--teacher-arch teacher|teacher-wide] [--teacher-epochs E]\n"
    "                    [--epochs E] [--test N] [--channel-images N] [--threads T]\n"
    "                    [--skip-element] [--costs FILE] [--teacher-model M]\n"
    "                    [--element-model M] [--channel-model M]\n"
    "Element-wise (BEAA, one image per slot) vs channel-wise packing (one image per ciphertext)\n"
    "of the CryptoNets-size net (--arch cryptonets, default; n13) or the deep net (--arch deep:\n"
    "two conv + avgpool, n14). Models are trained on first use and cached in MDIR (default\n"
    "DIR/../models), named by data set, architecture, training images and epochs. Defaults:\n"
    "--data mnist --count 0 (all) --teacher-arch teacher --teacher-epochs 2 --epochs 3\n"
    "--test 0 (all) --channel-images 64; batches up to the slots of the parameters.\n"
    "Element-wise times are measured at every batch size; channel-wise times are measured on\n"
    "--channel-images images and extrapolated linearly. Writes DIR/compare.md, amortized.svg\n"
    "and accuracy.svg. --skip-element leaves the element-wise encrypted columns \"not measured\"\n"
    "(quick runs). The report also shows what --packing auto would choose at each batch size\n"
    "(cost model with the operation costs of --costs FILE, from `ppnn bench costs --json`, or\n"
    "the built-in ones) next to the lower envelope of the two measured curves.\n";

static const char *model_tag[CMP_NMODELS] = {"teacher", "element-kd", "channel-kd"};

static int parse_batches(cmp_config *c, const char *s)
{
    c->nbatches = 0;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 65536 || c->nbatches == CMP_MAX_BATCHES)
            return cli_error("compare", "--batches: '%s' is not a list of 1..%d sizes in 1..65536",
                             s, CMP_MAX_BATCHES);
        c->batches[c->nbatches++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return cli_error("compare", "--batches: unexpected '%s'", s);
    }
    for (size_t i = 1; i < c->nbatches; i++) /* insertion sort, few entries */
        for (size_t j = i; j > 0 && c->batches[j - 1] > c->batches[j]; j--) {
            size_t t = c->batches[j];
            c->batches[j] = c->batches[j - 1];
            c->batches[j - 1] = t;
        }
    return c->nbatches ? 0 : cli_error("compare", "--batches is empty");
}

static void epoch_line(void *ctx, const nn_train_progress *p)
{
    const char *name = ctx;
    if (p->batch == p->batches)
        fprintf(stderr, "compare: %s epoch %zu/%zu: loss %.4f, training accuracy %.2f%%\n", name,
                p->epoch, p->epochs, p->loss, 100 * p->accuracy);
}

/* A model stands for what the report calls it: the teacher has ReLU activations only, the
 * element-wise student per-element quadratics, the channel-wise one per-channel quadratics. */
static ppnn_status check_role(const nn_model *m, int which)
{
    static const char *role[CMP_NMODELS] = {"the ReLU teacher", "the element-wise student",
                                            "the channel-wise student"};
    size_t acts = 0;
    for (size_t k = 0; k < m->nlayers; k++) {
        const nn_layer *l = &m->layers[k];
        int ok = 1;
        if (l->type == NN_LAYER_RELU)
            ok = which == CMP_TEACHER;
        else if (l->type == NN_LAYER_POLY)
            ok = (which == CMP_ELEMENT && l->gran == NN_POLY_ELEMENT) ||
                 (which == CMP_CHANNEL && l->gran == NN_POLY_CHANNEL);
        else
            continue;
        acts++;
        if (!ok)
            return ppnn_fail(PPNN_ERR_PARAM, "layer %zu's activation does not fit %s", k,
                             role[which]);
    }
    return acts ? PPNN_OK
                : ppnn_fail(PPNN_ERR_PARAM, "no activation layer: not %s", role[which]);
}

/* Loads MDIR/<data>-<tag>-n<count>-e<epochs>[-t<teacher epochs>].ppnn or trains and saves
 * it (with the activation ranges recorded on the training set). */
static ppnn_status get_model(nn_model *m, cmp_results *r, int which, const cmp_config *c,
                             const data_set *train, const nn_model *teacher)
{
    size_t epochs = which == CMP_TEACHER ? c->teacher_epochs : c->epochs;
    char *path = r->model_path[which];
    /* The cryptonets names are those of earlier versions (caches stay valid). */
    const int deep = strcmp(c->arch, "cryptonets") != 0, wide = strcmp(c->teacher_arch, "teacher");
    char tname[64]; /* the teacher a student learnt from: t<E>, or <arch>-e<E> */
    if (wide)
        snprintf(tname, sizeof tname, "%s-e%zu", c->teacher_arch, c->teacher_epochs);
    else
        snprintf(tname, sizeof tname, "t%zu", c->teacher_epochs);
    int n;
    if (c->given[which]) /* trained elsewhere (e.g. scripts/ablation_deep.sh) */
        n = snprintf(path, sizeof r->model_path[which], "%s", c->given[which]);
    else if (which == CMP_TEACHER)
        n = snprintf(path, sizeof r->model_path[which], "%s/%s-%s-n%zu-e%zu.ppnn", c->models,
                     c->data_tag, wide ? c->teacher_arch : model_tag[which], train->count,
                     epochs);
    else /* a student also depends on its teacher */
        n = snprintf(path, sizeof r->model_path[which], "%s/%s-%s%s%s-n%zu-e%zu-%s.ppnn",
                     c->models, c->data_tag, deep ? c->arch : "", deep ? "-" : "",
                     model_tag[which], train->count, epochs, tname);
    if (n < 0 || (size_t)n >= sizeof r->model_path[which])
        return ppnn_fail(PPNN_ERR_PARAM, "model directory path too long: %s", c->models);
    struct stat sb;
    if (c->given[which] || !stat(path, &sb)) {
        r->cached[which] = 1;
        fprintf(stderr, "compare: %s %s\n", c->given[which] ? "using" : "reusing", path);
        ppnn_status st = nn_model_load(m, path);
        if (!st && ((st = nn_model_check_images(m, train->channels, train->rows, train->cols)) ||
                    (st = data_check_classes(m->nclasses)) || (st = check_role(m, which))))
            ppnn_error_context("%s", path);
        return st;
    }
    static const nn_act acts[CMP_NMODELS] = {NN_ACT_RELU, NN_ACT_ELEMENT, NN_ACT_CHANNEL};
    ppnn_status st = nn_arch_build(m, which == CMP_TEACHER ? c->teacher_arch : c->arch, acts[which],
                                   nn_shape_of_set(train),
                                   DATA_NUM_CLASSES);
    if (st)
        return st;
    nn_train_config tc;
    nn_train_config_default(&tc);
    tc.epochs = epochs;
    tc.teacher = which == CMP_TEACHER ? NULL : teacher;
    tc.progress = epoch_line;
    tc.progress_ctx = (void *)model_tag[which];
    double t0 = ppnn_now();
    if ((st = nn_model_init_params(m, train, tc.seed)) || (st = nn_train(m, train, &tc)) ||
        (st = nn_record_ranges(m, train, train->count < 2048 ? train->count : 2048)) ||
        (st = nn_model_save(m, path)))
        return st;
    r->saved[which] = 1;
    r->train_seconds[which] = ppnn_now() - t0;
    fprintf(stderr, "compare: trained %s in %.0f s -> %s\n", model_tag[which],
            r->train_seconds[which], path);
    return PPNN_OK;
}

static double accuracy_pct(const nn_model *m, const data_set *test, ppnn_status *st)
{
    size_t correct[DATA_NUM_CLASSES], total[DATA_NUM_CLASSES], c = 0, t = 0;
    *st = nn_evaluate(m, test, correct, total);
    for (int k = 0; k < DATA_NUM_CLASSES && !*st; k++)
        c += correct[k], t += total[k];
    return t ? 100.0 * (double)c / (double)t : 0.0;
}

/* Scores decrypted logits of n images against the plaintext logits and the labels (slot k of
 * r's encrypted arrays). */
static void score(cmp_results *r, int k, const double *dec, const float *ref,
                  const uint8_t *labels, size_t n)
{
    size_t ok = 0, okp = 0, agree = 0;
    double err = 0;
    for (size_t b = 0; b < n; b++) {
        size_t pe = ppnn_argmax(dec + b * 10, 10), pp = ppnn_argmaxf(ref + b * 10, 10);
        ok += pe == labels[b];
        okp += pp == labels[b];
        agree += pe == pp;
        for (size_t c = 0; c < 10; c++)
            err = fmax(err, fabs(dec[b * 10 + c] - ref[b * 10 + c]));
    }
    r->enc_count[k] = n;
    r->enc_acc[k] = 100.0 * (double)ok / (double)n;
    r->enc_plain_acc[k] = 100.0 * (double)okp / (double)n;
    r->agree[k] = 100.0 * (double)agree / (double)n;
    r->max_err[k] = err;
}

/* Element-wise: one real run per batch size (encrypt B images, infer, decrypt); the accuracy
 * comes from the largest batch. */
static ppnn_status run_element(cmp_results *r, const cmp_config *c, const nn_model *m,
                               const data_set *test, const ckks_params *prm,
                               const ckks_secret_key *sk, const ckks_relin_key *rk)
{
    hnn_plan *p = NULL; /* the plan `ppnn infer` runs for these parameters */
    ppnn_status st = hnn_plan_for_params(&p, m, prm, c->preset);
    if (st)
        return st;
    const size_t numel = nn_numel(m->input), bmax = c->batches[c->nbatches - 1];
    ckks_ciphertext *in = calloc(numel, sizeof *in), *out = calloc(10, sizeof *out);
    float *x = malloc(bmax * numel * sizeof *x), *ref = malloc(bmax * 10 * sizeof *ref);
    double *dec = malloc(bmax * 10 * sizeof *dec);
    if (!in || !out || !x || !ref || !dec)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (element-wise batch)");
    if (!st) { /* plaintext reference on normalised inputs; the plan takes hnn_plan_inputs */
        nn_model_normalize(m, x, test->pixels, bmax);
        st = nn_predict(m, ref, x, bmax);
        hnn_plan_inputs(x, m, test->pixels, bmax);
    }
    hnn_exec_opts eo = {0};
    eo.threads = c->threads;
    for (size_t i = 0; i < c->nbatches && !st; i++) {
        size_t B = c->batches[i];
        double t0 = ppnn_now();
        if ((st = hnn_encrypt_batch(in, sk, x, B, numel, c->threads)))
            break;
        double t1 = ppnn_now();
        if ((st = hnn_infer(out, p, in, rk, &eo)))
            break;
        double t2 = ppnn_now();
        if ((st = hnn_decrypt_batch(dec, sk, out, 10, B, 0)))
            break;
        r->elem_encrypt[i] = t1 - t0;
        r->elem_server[i] = t2 - t1;
        fprintf(stderr, "compare: element-wise batch %zu: server %.2f s (%.3f ms/image), client "
                "encryption %.2f s\n", B, t2 - t1, 1e3 * (t2 - t1) / (double)B, t1 - t0);
        if (i + 1 == c->nbatches) {
            size_t n = B < c->channel_images ? B : c->channel_images;
            score(r, 0, dec, ref, test->labels, n); /* the images both packings encrypt */
            r->elem_acc_sample = r->enc_acc[0];
            r->sample_count = n;
            score(r, 0, dec, ref, test->labels, B);
        }
    }
    r->elem_measured = !st;
    r->elem_est_err = p->est_error, r->elem_bound_err = p->bound_error;
    for (size_t k = 0; in && k < numel; k++)
        ckks_ct_free(&in[k]);
    for (size_t k = 0; out && k < 10; k++)
        ckks_ct_free(&out[k]);
    free(in), free(out), free(x), free(ref), free(dec);
    hnn_plan_free(p);
    return st;
}

/* Channel-wise: channel_images images, OpenMP over images; totals extrapolated linearly:
 * total(B) = ceil(B/T) * T * wall/n (T images in flight at a time, each as slow as measured). */
static ppnn_status run_channel(cmp_results *r, const cmp_config *c, const nn_model *m,
                               const data_set *test, const ckks_params *prm,
                               const ckks_secret_key *sk, const ckks_relin_key *rk)
{
    hnn_channel_plan *plan = NULL;
    ppnn_status st = hnn_channel_plan_new(&plan, m, prm);
    if (st)
        return st;
    hnn_channel_plan_stats(&r->chan_stats, plan);
    size_t nrot = hnn_channel_rotations(NULL, 0, plan), n = c->channel_images;
    const size_t numel = nn_numel(m->input);
    int *steps = malloc((nrot + 1) * sizeof *steps);
    float *x = malloc(n * numel * sizeof *x), *ref = malloc(n * 10 * sizeof *ref);
    double *dec = malloc(n * 10 * sizeof *dec), *lat = calloc(n, sizeof *lat);
    ckks_galois_keys gk = {0};
    if (!steps || !x || !ref || !dec || !lat)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise sample)");
    double t0 = ppnn_now();
    if (!st) {
        hnn_channel_rotations(steps, nrot, plan);
        st = ckks_keygen_galois(&gk, sk, steps, nrot, 0);
    }
    r->chan_keygen = ppnn_now() - t0;
    if (!st) {
        nn_model_normalize(m, x, test->pixels, n);
        st = nn_predict(m, ref, x, n);
    }
    int threads = c->threads > 0 ? c->threads : omp_get_max_threads();
    ppnn_first_error shared = {0};
    ppnn_first_error_keep(&shared, st);
    double enc = 0, wall0 = ppnn_now();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(+ : enc)
    for (size_t b = 0; b < n; b++) {
        if (ppnn_first_error_set(&shared))
            continue;
        ckks_ciphertext in = {0}, out = {0};
        double a = ppnn_now();
        ppnn_status s = hnn_channel_encrypt(&in, plan, sk, x + b * numel);
        double e = ppnn_now();
        if (!s)
            s = hnn_channel_eval(&out, plan, &in, rk, &gk);
        lat[b] = ppnn_now() - e;
        enc += e - a;
        if (!s)
            s = hnn_channel_decrypt(dec + b * 10, plan, sk, &out, 0);
        if (s) {
            ppnn_error_context("image %zu", b);
            ppnn_first_error_keep(&shared, s);
        }
        ckks_ct_free(&in);
        ckks_ct_free(&out);
    }
    r->chan_wall = ppnn_now() - wall0;
    st = ppnn_first_error_status(&shared);
    if (!st) {
        double sum = 0;
        for (size_t b = 0; b < n; b++)
            sum += lat[b];
        r->chan_latency = sum / (double)n;
        r->chan_encrypt = enc / (double)n;
        for (size_t i = 0; i < c->nbatches; i++) {
            size_t B = c->batches[i], rounds = (B + (size_t)threads - 1) / (size_t)threads;
            r->chan_total[i] = (double)rounds * (double)threads * r->chan_wall / (double)n;
        }
        size_t bmax = c->batches[c->nbatches - 1], ns = n < bmax ? n : bmax;
        score(r, 1, dec, ref, test->labels, ns); /* the images both packings encrypt */
        r->chan_acc_sample = r->enc_acc[1];
        score(r, 1, dec, ref, test->labels, n);
        fprintf(stderr, "compare: channel-wise: %zu images in %.1f s on %d threads (%.3f s "
                "latency per image)\n", n, r->chan_wall, threads, r->chan_latency);
    }
    ckks_galois_keys_free(&gk);
    free(steps), free(x), free(ref), free(dec), free(lat);
    hnn_channel_plan_free(plan);
    return st;
}

/* What --packing auto would choose at each batch size: the decision encrypt makes
 * (hnn_packing_predict + hnn_packing_decide_images with the costs main loaded). */
static ppnn_status predict(cmp_results *r, const cmp_config *c, const nn_model *elem,
                           const nn_model *chan, const ckks_params *prm)
{
    hnn_packing_auto d;
    ppnn_status st = hnn_packing_predict(&d, elem, chan, prm, c->preset, &r->costs, r->threads);
    for (size_t i = 0; i < c->nbatches && !st; i++)
        if (!(st = hnn_packing_decide_images(&d, c->batches[i])))
            r->choice[i] = d.choice.packing;
    if (st)
        return st;
    r->pred_elem_batch = d.elem_batch;
    r->pred_chan_image = d.chan_image;
    r->pred_crossover = d.choice.crossover;
    return PPNN_OK;
}

static void read_cpu(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            colon += 2;
            colon[strcspn(colon, "\n")] = 0;
            snprintf(buf, len, "%s", colon);
            break;
        }
    }
    fclose(f);
}

static int parse_args(cmp_config *c, int argc, char **argv, char *models_buf, size_t mlen)
{
    static const struct option opts[] = {
        {"data", 1, 0, 'd'},   {"batches", 1, 0, 'b'},        {"out", 1, 0, 'o'},
        {"models", 1, 0, 'm'}, {"params", 1, 0, 'p'},         {"count", 1, 0, 'n'},
        {"epochs", 1, 0, 'e'}, {"teacher-epochs", 1, 0, 'E'}, {"test", 1, 0, 't'},
        {"channel-images", 1, 0, 'c'}, {"threads", 1, 0, 'j'}, {"skip-element", 0, 0, 'S'},
        {"arch", 1, 0, 'a'}, {"teacher-arch", 1, 0, 'T'}, {"costs", 1, 0, 'C'},
        {"teacher-model", 1, 0, '0'}, {"element-model", 1, 0, '1'}, {"channel-model", 1, 0, '2'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    size_t threads = 0;
    int ch, bad = 0;
    optind = 1;
    opterr = 0;
    while (!bad && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': c->data = optarg; break;
        case 'b': bad = parse_batches(c, optarg); break;
        case 'o': c->out = optarg; break;
        case 'm': c->models = optarg; break;
        case 'p': c->preset = optarg; break;
        case 'n': bad = cli_parse_size("compare", "--count", optarg, 0, 1u << 30, &c->count); break;
        case 'e': bad = cli_parse_size("compare", "--epochs", optarg, 1, 1000, &c->epochs); break;
        case 'E':
            bad = cli_parse_size("compare", "--teacher-epochs", optarg, 1, 1000,
                                 &c->teacher_epochs);
            break;
        case 't': bad = cli_parse_size("compare", "--test", optarg, 0, 1u << 30, &c->test); break;
        case 'c':
            bad = cli_parse_size("compare", "--channel-images", optarg, 1, 100000,
                                 &c->channel_images);
            break;
        case 'j': bad = cli_parse_size("compare", "--threads", optarg, 1, 256, &threads); break;
        case 'S': c->skip_element = 1; break;
        case 'a': c->arch = optarg; break;
        case 'T': c->teacher_arch = optarg; break;
        case 'C': c->costs = optarg; break;
        case '0': c->given[CMP_TEACHER] = optarg; break;
        case '1': c->given[CMP_ELEMENT] = optarg; break;
        case '2': c->given[CMP_CHANNEL] = optarg; break;
        case 'h': fputs(usage_text, stdout); return -1;
        default:
            return cli_usage_error("compare", argc, argv);
        }
    }
    if (bad)
        return bad;
    if (optind != argc)
        return cli_error("compare", "unexpected argument '%s'", argv[optind]);
    if (!c->out)
        return cli_error("compare", "--out DIR is required");
    if (strcmp(c->arch, "cryptonets") && strcmp(c->arch, "deep"))
        return cli_error("compare", "--arch: '%s' is not cryptonets or deep", c->arch);
    if (strcmp(c->teacher_arch, "teacher") && strcmp(c->teacher_arch, "teacher-wide"))
        return cli_error("compare", "--teacher-arch: '%s' is not teacher or teacher-wide",
                         c->teacher_arch);
    if (!c->preset) /* the deep net needs the 9 levels of n14 */
        c->preset = strcmp(c->arch, "deep") ? "n13" : "n14";
    c->threads = (int)threads;
    if (!c->models) {
        snprintf(models_buf, mlen, "%s/../models", c->out);
        c->models = models_buf;
    }
    size_t used = 0;
    for (int i = 0; i < argc && used + 2 < sizeof c->command; i++)
        used += (size_t)snprintf(c->command + used, sizeof c->command - used, "%s%s",
                                 i ? " " : "ppnn ", argv[i]);
    return 0;
}

int cmd_compare(int argc, char **argv)
{
    cmp_config c = {.data = "mnist", .arch = "cryptonets", .teacher_arch = "teacher",
                    .teacher_epochs = 2, .epochs = 3, .channel_images = 64};
    char models_buf[1024];
    int rc = parse_args(&c, argc, argv, models_buf, sizeof models_buf);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!c.nbatches) { /* default: powers of 4 from 1 up to the slots of the preset */
        ckks_spec sp;
        ppnn_status pst = ckks_preset(&sp, c.preset);
        if (pst)
            return cli_fail("compare", pst);
        size_t slots = (size_t)1 << (sp.logn - 1);
        for (size_t b = 1; b < slots && c.nbatches < CMP_MAX_BATCHES - 1; b *= 4)
            c.batches[c.nbatches++] = b;
        c.batches[c.nbatches++] = slots;
    }
    nn_set_threads(c.threads);

    static cmp_results r; /* large; one per process */
    memset(&r, 0, sizeof r);
    r.threads = c.threads > 0 ? c.threads : omp_get_max_threads();
    read_cpu(r.cpu, sizeof r.cpu);
    data_set train = {0}, test = {0};
    nn_model models[CMP_NMODELS];
    memset(models, 0, sizeof models);
    ckks_params *prm = NULL;
    ckks_secret_key sk = {0};
    ckks_relin_key rk = {0};
    ckks_spec spec;
    /* Everything that can be refused is refused before any directory is made or model trained:
     * the parameter set, the batch sizes against its slots, the data. */
    ppnn_status st = ckks_preset(&spec, c.preset);
    if (!st)
        st = ckks_params_new(&prm, &spec);
    if (!st && c.batches[c.nbatches - 1] > prm->slots)
        st = ppnn_fail(PPNN_ERR_PARAM, "batch %zu exceeds the %zu slots of %s",
                       c.batches[c.nbatches - 1], prm->slots, c.preset);
    if (!st && !(st = cli_read_costs(&r.costs, c.costs, prm->logn)))
        st = hnn_op_costs_check(&r.costs, prm);
    r.costs_from_file = c.costs != NULL;
    if (!st)
        st = data_cache_tag(c.data_tag, sizeof c.data_tag, c.data);
    if (!st)
        st = data_load(&train, c.data, DATA_SPLIT_TRAIN, 0, c.count);
    if (!st)
        st = data_load(&test, c.data, DATA_SPLIT_TEST, 0, c.test);
    if (!st && (test.count < c.batches[c.nbatches - 1] || test.count < c.channel_images))
        st = ppnn_fail(PPNN_ERR_PARAM, "%zu test images: fewer than the largest batch (%zu) or "
                       "--channel-images (%zu)", test.count, c.batches[c.nbatches - 1],
                       c.channel_images);
    int made_out = 0, made_models = 0, reported = 0;
    if (st) {
        reported = cli_fail("compare", st);
    } else if (cli_make_dir_new("compare", c.out, 0755, &made_out) ||
               cli_make_dir_new("compare", c.models, 0755, &made_models)) {
        st = PPNN_ERR_IO;
        reported = 1;
    }
    for (int k = 0; k < CMP_NMODELS && !st; k++)
        st = get_model(&models[k], &r, k, &c, &train, &models[CMP_TEACHER]);
    r.test_count = test.count;
    for (int k = 0; k < CMP_NMODELS && !st; k++)
        r.plain_acc[k] = accuracy_pct(&models[k], &test, &st);
    if (!st && !(st = ckks_keygen_secret(&sk, prm)))
        st = ckks_keygen_relin(&rk, &sk);
    if (!st) {
        r.slots = prm->slots;
        r.n = prm->n;
        r.levels = prm->nq - 1;
        r.logqp = prm->logqp;
        st = run_channel(&r, &c, &models[CMP_CHANNEL], &test, prm, &sk, &rk);
    }
    if (!st && !c.skip_element) {
        ppnn_status es = run_element(&r, &c, &models[CMP_ELEMENT], &test, prm, &sk, &rk);
        if (es) /* reported as "not measured" rather than aborting the comparison */
            fprintf(stderr, "compare: element-wise not measured: %s\n", ppnn_last_error());
    }
    if (!st)
        st = predict(&r, &c, &models[CMP_ELEMENT], &models[CMP_CHANNEL], prm);
    rc = st ? (reported ? 1 : cli_fail("compare", st)) : cmp_write_report(&c, &r);
    if (rc) { /* no partial output: models this run trained, directories it made */
        for (int k = 0; k < CMP_NMODELS; k++)
            if (r.saved[k])
                unlink(r.model_path[k]);
        if (made_models)
            rmdir(c.models);
        if (made_out)
            rmdir(c.out); /* only if empty: a half-written report stays visible */
    }
    ckks_relin_key_free(&rk);
    ckks_secret_key_free(&sk);
    ckks_params_free(prm);
    for (int k = 0; k < CMP_NMODELS; k++)
        nn_model_free(&models[k]);
    data_set_free(&train);
    data_set_free(&test);
    return rc;
}
