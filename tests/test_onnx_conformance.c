/* The ONNX backend test cases of Debian's libonnx-testdata (node/ and pytorch-converted/) for
 * the operators ppnn supports: each case's model is imported (inputs after the first are
 * bound as constants), run on its test_data_set_0 inputs through the plaintext engine
 * (relative error <= 1e-5 against output_0.pb) and, when its depth fits a small test ring,
 * through the encrypted engine (<= 1e-3). Cases the importer refuses are skipped with the
 * refusal as the reason; any imported case that disagrees fails. */
#include <dirent.h>
#include <stdio.h>
#include <ctype.h>

#include "onnx_tu.h"

#define TESTDATA "/usr/share/libonnx-testdata/data"

static const char *const keywords[] = {"conv", "gemm", "averagepool", "avgpool", "batchnorm",
                                       "flatten", "test_add", "test_mul", "test_sub", "test_pow",
                                       "matmul", "reshape", "identity", "dropout", "pad",
                                       "linear", NULL};

/* Cases that must pass (a regression in any of them fails the test, not just a count). */
static const char *const required[] = {
    "test_basic_conv_with_padding", "test_conv_with_strides_padding",
    "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_autopad_same",
    "test_gemm_transposeB", "test_averagepool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_precomputed_same_upper",
    "test_globalaveragepool", "test_batchnorm_example", "test_flatten_axis1", "test_matmul_2d",
    "test_pow_bcast_scalar", "test_AvgPool2d", "test_Conv2d_padding", "test_BatchNorm2d_eval",
    "test_Linear", "test_ZeroPad2d", NULL};

static int passed, skipped, failed, enc_passed, enc_skipped, required_seen;

static int matches(const char *name)
{
    char low[256];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof low; n++)
        low[n] = (char)tolower((unsigned char)name[n]);
    low[n] = 0;
    for (size_t i = 0; keywords[i]; i++)
        if (strstr(low, keywords[i]))
            return 1;
    return 0;
}

static int is_required(const char *name)
{
    for (size_t i = 0; required[i]; i++)
        if (!strcmp(required[i], name))
            return 1;
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    return ppnn_read_file(&buf, len, path, ONNX_MAX_FILE) ? NULL : buf;
}

static void skip(const char *name, const char *why)
{
    skipped++;
    printf("SKIP %-55s %s\n", name, why);
    CHECK_MSG(!is_required(name), "%s must pass but was skipped: %s", name, why);
}

static void run_case(const char *dir, const char *name)
{
    char path[1200];
    size_t mlen = 0, nb = 0;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    uint8_t *model = slurp(path, &mlen), *bufs[4] = {0};
    onnx_binding binds[4];
    onnx_tensor in = {0}, ref = {0};
    nn_model m = {0};
    if (!model) {
        skip(name, "no model.onnx");
        return;
    }
    required_seen += is_required(name);
    for (size_t k = 1; k < 5; k++) {
        size_t len;
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, k);
        if (!(bufs[nb] = slurp(path, &len)))
            break;
        binds[nb] = (onnx_binding){NULL, bufs[nb], len};
        nb++;
    }
    onnx_import_opts o;
    onnx_import_opts_default(&o);
    o.bindings = binds, o.nbindings = nb;
    size_t ilen = 0, olen = 0;
    snprintf(path, sizeof path, "%s/test_data_set_0/input_0.pb", dir);
    uint8_t *ib = slurp(path, &ilen);
    snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
    uint8_t *ob = slurp(path, &olen);
    char why[600];
    if (!ib || !ob) {
        skip(name, "no test_data_set_0 input/output");
    } else if (onnx_import(&m, model, mlen, name, &o)) {
        snprintf(why, sizeof why, "%s", ppnn_last_error());
        skip(name, why);
    } else if (onnx_tensor_parse(&in, ib, ilen, "input_0") ||
               onnx_tensor_parse(&ref, ob, olen, "output_0")) {
        failed++;
        CHECK_MSG(0, "%s: test data unreadable: %s", name, ppnn_last_error());
    } else {
        size_t n = in.rank >= 2 ? (size_t)in.dims[0] : 1, nin = nn_numel(m.input);
        if (n == 0 || in.numel != n * nin || ref.numel != n * m.nclasses) {
            snprintf(why, sizeof why, "imported, but the data do not split into %zu images "
                     "of %zu -> %u values", n, nin, m.nclasses);
            failed++;
            CHECK_MSG(0, "%s: %s", name, why);
        } else {
            double *y = malloc(ref.numel * sizeof *y);
            CHECK_OK(otu_plain(&m, y, in.data, n));
            double e = otu_rel_err(y, ref.data, ref.numel), ee = -1;
            int ok = e <= 1e-5;
            if (ok && n <= 512) {
                if (otu_encrypted(&m, y, in.data, n, why, sizeof why) == 0) {
                    ee = otu_rel_err(y, ref.data, ref.numel);
                    ok = ee <= 1e-3;
                    enc_passed += ok;
                } else {
                    enc_skipped++;
                    printf("     %-55s encrypted skipped: %s\n", name, why);
                }
            }
            if (ok)
                passed++;
            else
                failed++;
            printf("%s %-55s plain %.2e  encrypted %s%.2e  (%zu layers, depth %zu)\n",
                   ok ? "PASS" : "FAIL", name, e, ee < 0 ? "n/a " : "", ee < 0 ? 0 : ee,
                   m.nlayers, nn_model_depth(&m));
            CHECK_MSG(ok, "%s disagrees: plaintext %.3g (<= 1e-5), encrypted %.3g (<= 1e-3)",
                      name, e, ee);
            free(y);
        }
    }
    nn_model_free(&m);
    onnx_tensor_free(&in), onnx_tensor_free(&ref);
    free(model), free(ib), free(ob);
    for (size_t k = 0; k < nb; k++)
        free(bufs[k]);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_folder(const char *folder)
{
    char base[512];
    snprintf(base, sizeof base, "%s/%s", TESTDATA, folder);
    DIR *d = opendir(base);
    CHECK_MSG(d != NULL, "%s missing (Debian package libonnx-testdata)", base);
    if (!d)
        return;
    char *names[2048];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 2048)
        if (e->d_name[0] != '.' && matches(e->d_name))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char dir[800];
        snprintf(dir, sizeof dir, "%s/%s", base, names[i]);
        run_case(dir, names[i]);
        free(names[i]);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    run_folder("node");
    run_folder("pytorch-converted");
    printf("onnx conformance: %d passed (%d also encrypted, %d encrypted skipped), %d skipped, "
           "%d failed\n", passed, enc_passed, enc_skipped, skipped, failed);
    int nreq = 0;
    while (required[nreq])
        nreq++;
    CHECK_MSG(required_seen == nreq, "only %d of the %d required cases found", required_seen,
              nreq);
    return tu_finish("test_onnx_conformance");
}
