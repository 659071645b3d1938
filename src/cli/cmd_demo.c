/* ppnn demo: the main job end to end, through the same code paths as the CLI commands.
 *   1. model: a cached element-wise (BEAA) student, or train one (ReLU teacher, then the
 *      polynomial student by knowledge distillation);
 *   2. in a temporary directory: keygen -> encrypt -> infer (server: relin.key only, the secret
 *      key is moved away while it runs) -> decrypt;
 *   3. report plaintext vs encrypted accuracy, agreement, max logit error, client and server
 *      times (total and per image) and upload bytes per image. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ppnn/ckks.h"
#include "ppnn/hnn.h"
#include "ppnn/data.h"
#include "ppnn/nn.h"

static const char *usage_text =
    "usage: ppnn demo [--data mnist|fashion] [--count B] [--threads T] [--models DIR]\n"
    "                 [--retrain] [--serve]\n"
    "Runs keygen -> encrypt -> infer -> decrypt on the first B test images (default 4096 = one\n"
    "full n13 batch) and compares with plaintext inference. The trained model is cached in\n"
    "DIR (default: $PPNN_MODEL_DIR, else data/models); the first run trains it (a ReLU teacher,\n"
    "then the element-wise quadratic student by distillation; a few minutes on 2 cores).\n"
    "--serve runs the server step through `ppnn serve` on loopback (in this process) and the\n"
    "`ppnn submit` client instead of the infer command.\n";

/* Runs a subcommand in-process with a NULL-terminated argument list; returns its exit code. */
static int run(int (*cmd)(int, char **), const char *name, ...)
{
    char *argv[40];
    int argc = 0;
    argv[argc++] = (char *)name;
    va_list ap;
    va_start(ap, name);
    for (char *a; argc < 39 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    ppnn_paths_begin(0); /* a new command: its own inputs, no --force */
    return cmd(argc, argv);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* What this run created, so that a failed run leaves nothing behind. */
typedef struct demo_made {
    char parent[PATH_MAX], teacher[PATH_MAX];
    int made_parent, made_dir, trained_teacher, trained_student;
} demo_made;

/* Trains the teacher and the distilled student unless the student is cached. data_tag names
 * the cache files (data_cache_tag: no path, no slash). */
static int ensure_model(const char *dir, const char *data, const char *data_tag,
                        const char *threads, char *student, size_t len, int retrain,
                        demo_made *made)
{
    char *teacher = made->teacher;
    if (snprintf(student, len, "%s/%s-cryptonets-element-kd.ppnn", dir, data_tag) >= (int)len ||
        snprintf(teacher, sizeof made->teacher, "%s/%s-teacher.ppnn", dir, data_tag) >=
            (int)sizeof made->teacher)
        return cli_error("demo", "model directory path too long");
    if (!retrain && file_exists(student)) {
        printf("demo: using the cached model %s (--retrain to train a new one)\n", student);
        return 0;
    }
    snprintf(made->parent, sizeof made->parent, "%s", dir);
    char *slash = strrchr(made->parent, '/');
    if (slash && slash != made->parent) {
        *slash = 0; /* e.g. data/ for data/models */
        if (cli_make_dir_new("demo", made->parent, 0755, &made->made_parent))
            return 1;
    }
    if (cli_make_dir_new("demo", dir, 0755, &made->made_dir))
        return 1;
    printf("demo: training the ReLU teacher (%s/teacher), then the element-wise student by "
           "distillation\n", data);
    if (retrain || !file_exists(teacher)) {
        made->trained_teacher = 1;
        /* The recipe of scripts/accuracy_table.sh with fewer teacher epochs, so that a first
         * run stays within minutes on 2 cores: the student is what the demo encrypts. */
        if (run(cmd_train, "train", "--data", data, "--arch", "teacher", "--act", "relu",
                "--epochs", "6", "--shift", "2", "--seed", "1", "--threads", threads, "--out",
                teacher, (char *)NULL))
            return 1;
    }
    made->trained_student = 1;
    return run(cmd_train, "train", "--data", data, "--arch", "cryptonets", "--act", "element",
               "--teacher", teacher, "--kd-temp", "4", "--kd-alpha", "0.5", "--kd-offline",
               "--epochs", "20", "--shift", "1", "--seed", "1", "--threads", threads, "--out",
               student, (char *)NULL);
}

/* Reads the logits written by `ppnn decrypt` (image,prediction,logit_0..). */
static int read_pred_csv(const char *path, double *logits, size_t images, size_t classes)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char line[4096];
    if (!fgets(line, sizeof line, fp)) {
        fclose(fp);
        return -1;
    }
    for (size_t b = 0; b < images; b++) {
        if (!fgets(line, sizeof line, fp)) {
            fclose(fp);
            return -1;
        }
        char *p = line;
        strtol(p, &p, 10); /* image */
        p++;
        strtol(p, &p, 10); /* prediction */
        for (size_t c = 0; c < classes; c++) {
            if (*p != ',') {
                fclose(fp);
                return -1;
            }
            logits[b * classes + c] = strtod(p + 1, &p);
        }
    }
    fclose(fp);
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    const char *data = "mnist", *models = NULL, *threads = "0";
    size_t count = 4096, nthreads = 0;
    int retrain = 0, serve = 0;
    static const struct option opts[] = {{"data", 1, 0, 'd'},    {"count", 1, 0, 'n'},
                                         {"threads", 1, 0, 't'}, {"models", 1, 0, 'm'},
                                         {"retrain", 0, 0, 'r'}, {"serve", 0, 0, 's'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'n':
            if (cli_parse_size("demo", "--count", optarg, 1, 4096, &count))
                return 1;
            break;
        case 't':
            if (cli_parse_size("demo", "--threads", optarg, 1, 1024, &nthreads))
                return 1;
            threads = optarg;
            break;
        case 'm': models = optarg; break;
        case 'r': retrain = 1; break;
        case 's': serve = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("demo", argc, argv);
        }
    }
    if (optind != argc)
        return cli_error("demo", "unexpected argument '%s'", argv[optind]);
    char mdir[PATH_MAX];
    const char *env = getenv("PPNN_MODEL_DIR");
    snprintf(mdir, sizeof mdir, "%s", models ? models : env && *env ? env : "data/models");
    char threads_buf[32];
    if (!nthreads) {
        snprintf(threads_buf, sizeof threads_buf, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
        threads = threads_buf;
    }

    char model[PATH_MAX], tag[96];
    static demo_made made; /* two PATH_MAX buffers: not on the stack */
    memset(&made, 0, sizeof made);
    nn_model m = {0};
    data_set ds = {0};
    ckks_params *params = NULL;
    hnn_plan *plan = NULL;
    float *x = NULL, *pl = NULL;
    double *el = NULL;
    char tmp[] = "/tmp/ppnn-demo-XXXXXX";
    char keys[1100] = "", batch[1100] = "", result[1100] = "", pred[1100] = "", sk[1100] = "",
         sk_away[1100] = "";
    int rc = 1, have_tmp = 0;
    /* Everything that can be refused is refused before keygen: the data, the model's input
     * shape, and whether its plan fits the n13 parameters (ReLU, too deep, ...). */
    ppnn_status st = data_cache_tag(tag, sizeof tag, data);
    if (!st)
        st = data_load(&ds, data, DATA_SPLIT_TEST, 0, count);
    if (st) {
        cli_fail("demo", st);
        goto done;
    }
    if (ensure_model(mdir, data, tag, threads, model, sizeof model, retrain, &made))
        goto done;
    if ((st = nn_model_load(&m, model))) {
        cli_fail("demo", st);
        goto done;
    }
    if ((st = nn_model_check_images(&m, ds.channels, ds.rows, ds.cols)) ||
        (st = data_check_classes(m.nclasses))) {
        ppnn_error_context("%s on %s", model, data);
        cli_fail("demo", st);
        goto done;
    }
    ckks_spec spec;
    if ((st = ckks_preset(&spec, "n13")) || (st = ckks_params_new(&params, &spec))) {
        cli_fail("demo", st);
        goto done;
    }
    if ((st = hnn_plan_for_params(&plan, &m, params, "n13"))) {
        cli_fail("demo", st);
        goto done;
    }
    size_t classes = m.nclasses, npx = ds.channels * ds.rows * ds.cols;
    x = malloc(count * npx * sizeof *x), pl = malloc(count * classes * sizeof *pl);
    el = malloc(count * classes * sizeof *el);
    if (!x || !pl || !el) {
        cli_error("demo", "out of memory");
        goto done;
    }
    nn_model_normalize(&m, x, ds.pixels, count);
    if ((st = nn_predict(&m, pl, x, count))) {
        cli_fail("demo", st);
        goto done;
    }
    if (!mkdtemp(tmp)) {
        cli_error("demo", "cannot create a temporary directory: %s", strerror(errno));
        goto done;
    }
    have_tmp = 1;
    int too_long = snprintf(keys, sizeof keys, "%s/keys", tmp) >= (int)sizeof keys;
    too_long |= snprintf(batch, sizeof batch, "%s/batch.ct", tmp) >= (int)sizeof batch;
    too_long |= snprintf(result, sizeof result, "%s/result.ct", tmp) >= (int)sizeof result;
    too_long |= snprintf(pred, sizeof pred, "%s/pred.csv", tmp) >= (int)sizeof pred;
    too_long |= snprintf(sk, sizeof sk, "%s/%s", keys, CLI_SECRET_KEY) >= (int)sizeof sk;
    too_long |= snprintf(sk_away, sizeof sk_away, "%s/client-only.key", tmp) >= (int)sizeof sk_away;
    if (too_long) {
        cli_error("demo", "temporary path too long");
        goto done;
    }
    char count_s[32];
    snprintf(count_s, sizeof count_s, "%zu", count);

    printf("\n== client: keygen\n");
    double t0 = ppnn_now();
    if (run(cmd_keygen, "keygen", "--params", "n13", "--out", keys, (char *)NULL))
        goto done;
    double t_keygen = ppnn_now() - t0;
    printf("== client: encrypt %zu %s test images\n", count, data);
    t0 = ppnn_now();
    if (run(cmd_encrypt, "encrypt", "--keys", keys, "--data", data, "--split", "test",
            "--offset", "0", "--count", count_s, "--threads", threads, "--out", batch,
            (char *)NULL))
        goto done;
    double t_enc = ppnn_now() - t0;
    long long upload = file_size(batch);
    /* The server never sees the secret key: move it out of the key directory meanwhile. */
    if (rename(sk, sk_away) != 0) {
        cli_error("demo", "cannot move the secret key aside: %s", strerror(errno));
        goto done;
    }
    printf("== server: %s (key directory holds only public.key and relin.key)\n",
           serve ? "ppnn serve on loopback, ppnn submit" : "infer");
    fflush(stdout);
    t0 = ppnn_now();
    int irc = serve ? cli_demo_serve(tmp, model, keys, batch, result, nthreads)
                    : run(cmd_infer, "infer", "--model", model, "--keys", keys, "--in", batch,
                          "--out", result, "--threads", threads, (char *)NULL);
    double t_inf = ppnn_now() - t0;
    if (rename(sk_away, sk) != 0 || irc)
        goto done;
    printf("== client: decrypt\n");
    t0 = ppnn_now();
    /* Exact decryption: the demo measures the homomorphic error, and its files never leave
     * this process's temporary directory (the CLI default floods released logits). */
    if (run(cmd_decrypt, "decrypt", "--keys", keys, "--in", result, "--out", pred, "--data", data,
            "--split", "test", "--offset", "0", "--logits", "--exact", (char *)NULL))
        goto done;
    double t_dec = ppnn_now() - t0;
    if (read_pred_csv(pred, el, count, classes)) {
        cli_error("demo", "%s: cannot read the decrypted logits", pred);
        goto done;
    }
    size_t ok_plain = 0, ok_enc = 0, agree = 0;
    double max_err = 0;
    for (size_t b = 0; b < count; b++) {
        double pd[64];
        for (size_t k = 0; k < classes && k < 64; k++) {
            pd[k] = pl[b * classes + k];
            max_err = fmax(max_err, fabs(pd[k] - el[b * classes + k]));
        }
        size_t yp = ppnn_argmax(pd, classes), ye = ppnn_argmax(el + b * classes, classes);
        ok_plain += yp == ds.labels[b];
        ok_enc += ye == ds.labels[b];
        agree += yp == ye;
    }
    double client = t_keygen + t_enc + t_dec;
    printf("\n== ppnn demo: %s, %zu test images, model %s (%s), parameters n13 (N = 8192, "
           "128-bit)\n", data, count, model, m.arch);
    printf("plaintext accuracy      %6.2f %%\n", 100.0 * (double)ok_plain / (double)count);
    printf("encrypted accuracy      %6.2f %%\n", 100.0 * (double)ok_enc / (double)count);
    printf("agreement               %6.2f %% (%zu / %zu predictions identical)\n",
           100.0 * (double)agree / (double)count, agree, count);
    printf("max |logit error|       %.2e (measured)\n", max_err);
    printf("planner's logit error   estimate %.2e (high probability), worst-case bound %.2g\n",
           plan->est_error, plan->bound_error);
    printf("client time             %.2f s total (keygen %.2f, encrypt %.2f, decrypt %.2f), "
           "%.3f ms per image\n", client, t_keygen, t_enc, t_dec, 1e3 * client / (double)count);
    printf("server time             %.2f s total, %.3f ms per image amortized%s\n", t_inf,
           1e3 * t_inf / (double)count,
           serve ? " (through the service: upload, queue, run, download)" : "");
    printf("upload                  %.1f MB, %.1f KB per image\n", (double)upload / 1e6,
           (double)upload / 1e3 / (double)count);
    rc = 0;
done:
    if (have_tmp) {
        const char *files[] = {sk, sk_away, batch, result, pred};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++)
            unlink(files[i]);
        char p[1200];
        const char *keyfiles[] = {CLI_PUBLIC_KEY, CLI_RELIN_KEY, CLI_GALOIS_KEY};
        for (size_t i = 0; i < 3; i++) {
            if (snprintf(p, sizeof p, "%s/%s", keys, keyfiles[i]) < (int)sizeof p)
                unlink(p);
        }
        rmdir(keys);
        rmdir(tmp);
    }
    if (rc) { /* a failed run leaves no model it trained and no directory it made */
        if (made.trained_student)
            unlink(model);
        if (made.trained_teacher)
            unlink(made.teacher);
        if (made.made_dir)
            rmdir(mdir);
        if (made.made_parent)
            rmdir(made.parent);
    }
    free(x);
    free(pl);
    free(el);
    hnn_plan_free(plan);
    ckks_params_free(params);
    data_set_free(&ds);
    nn_model_free(&m);
    return rc;
}
