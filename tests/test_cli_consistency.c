/* The CLI applies one rule per question (issue 13 item 12), run through $PPNN_BIN:
 *   - scoring against labels 0..9 needs a 10-class model: eval refuses another class count, and
 *     so does decrypt --data on that model's encrypted logits (it used to accept them);
 *   - --packing element|channel is accepted by keygen, encrypt and infer alike, and anything
 *     else is refused by all three with the same message. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ppnn/nn.h"
#include "testutil.h"

static const char *bin;
static char err[4096];

/* Runs "cd TMP && BIN args", stderr captured in err; returns the exit status. */
static int run(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>stderr.txt >/dev/null", tu_tmpdir(), bin,
             args);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/stderr.txt", tu_tmpdir());
    FILE *f = fopen(cmd, "r");
    size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
    err[n] = 0;
    if (f)
        fclose(f);
    return rc;
}

static void test_classes(void)
{
    data_set ds;
    char d[512];
    snprintf(d, sizeof d, "%s/tiny", tu_tmpdir());
    CHECK_OK(data_load(&ds, d, DATA_SPLIT_TEST, 0, 0));
    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 8, 8}, 5));
    CHECK_OK(nn_model_init_params(&m, &ds, 1));
    for (size_t i = 0; i < m.nparams; i++) /* small logits: the n13 plan fits */
        m.params[i] *= 0.1f;
    CHECK_OK(nn_record_ranges(&m, &ds, ds.count));
    char path[600];
    snprintf(path, sizeof path, "%s/five.ppnn", tu_tmpdir());
    CHECK_OK(nn_model_save(&m, path));
    nn_model_free(&m);
    data_set_free(&ds);

    CHECK(run("eval --model five.ppnn --data tiny") != 0);
    CHECK_MSG(strstr(err, "the model has 5 classes but the labels are 0..9"), "eval: %s", err);
    CHECK(run("keygen --out k") == 0);
    CHECK(run("encrypt --keys k --data tiny --out b.ct") == 0);
    CHECK_MSG(run("infer --model five.ppnn --keys k --in b.ct --out r.ct") == 0, "infer: %s", err);
    CHECK(run("decrypt --keys k --in r.ct --out p.csv") == 0); /* no labels: fine */
    CHECK(run("decrypt --keys k --in r.ct --out q.csv --data tiny") != 0);
    CHECK_MSG(strstr(err, "the model has 5 classes but the labels are 0..9"), "decrypt: %s", err);
    struct stat sb;
    char q[600];
    snprintf(q, sizeof q, "%s/q.csv", tu_tmpdir());
    CHECK(stat(q, &sb) != 0);
}

static void test_packing(void)
{
    CHECK(run("keygen --out k2 --packing element") == 0);
    CHECK(run("encrypt --keys k2 --data tiny --count 4 --packing element --out e.ct") == 0);
    CHECK(run("train --data tiny --count 16 --epochs 1 --out t.ppnn") == 0);
    CHECK(run("infer --model t.ppnn --keys k2 --in e.ct --out er.ct --packing element") == 0);
    const char *cmds[] = {"keygen --out k3 --packing diagonal",
                          "encrypt --keys k2 --data tiny --packing diagonal --out x.ct",
                          "infer --model t.ppnn --keys k2 --in e.ct --out x.ct --packing diagonal",
                          ("encrypt --keys k2 --data tiny --packing channel --packing diagonal "
                           "--model t.ppnn --out x.ct"),
                          "decrypt --keys k2 --in e.ct --out x.csv --packing diagonal",
                          "infer --model t.ppnn --keys k2 --in e.ct --out x.ct --packing=diagonal"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        CHECK_MSG(run(cmds[i]) != 0, "%s: accepted", cmds[i]);
        CHECK_MSG(strstr(err, "--packing must be element, channel or auto, not 'diagonal'"), "%s: %s",
                  cmds[i], err);
    }
}

int main(void)
{
    bin = getenv("PPNN_BIN");
    if (!bin) {
        fprintf(stderr, "test_cli_consistency: PPNN_BIN is not set (run through ctest)\n");
        return 1;
    }
    tu_tiny_data(29);
    test_classes();
    test_packing();
    return tu_finish("test_cli_consistency");
}
