/* Every JSON the CLI prints is valid JSON that round-trips through cJSON, whatever the names in
 * it: a model path and an architecture name holding '"' and '\\' (issue 13 item 11; eval --json
 * used to print them raw). Runs the ppnn binary ($PPNN_BIN) and parses its stdout. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/nn.h"
#include "testutil.h"

/* Runs cmd, returns its stdout parsed (NULL on a non-zero exit or invalid JSON). */
static cJSON *run_json(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int rc = pclose(p);
    CHECK_MSG(rc == 0, "%s: exit status %d", cmd, rc);
    cJSON *j = cJSON_Parse(out);
    CHECK_MSG(j != NULL, "%s: not JSON: %s", cmd, out);
    return rc == 0 ? j : (cJSON_Delete(j), NULL);
}

/* Single-quotes s for /bin/sh. */
static void shell_quote(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    buf[o++] = '\'';
    for (; *s && o + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(buf + o, "'\\''", 4);
            o += 4;
        } else {
            buf[o++] = *s;
        }
    }
    buf[o++] = '\'';
    buf[o] = 0;
}

static void test_eval_json(const char *bin)
{
    char data[512];
    snprintf(data, sizeof data, "%s", tu_tiny_data(13));
    data_set ds;
    CHECK_OK(data_load(&ds, data, DATA_SPLIT_TEST, 0, 0));

    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 8, 8}, 10));
    CHECK_OK(nn_model_init_params(&m, &ds, 1));
    static const char arch[] = "q\"u\\o\ttab";
    snprintf(m.arch, sizeof m.arch, "%s", arch);
    char model[512], qmodel[1100], qdata[1100], cmd[4000];
    snprintf(model, sizeof model, "%s/we\"ird\\name 'x'.ppnn", tu_tmpdir());
    CHECK_OK(nn_model_save(&m, model));
    shell_quote(qmodel, sizeof qmodel, model);
    shell_quote(qdata, sizeof qdata, data);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --json", bin, qmodel, qdata);
    cJSON *j = run_json(cmd);
    const cJSON *v = cJSON_GetObjectItem(j, "model");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, model));
    v = cJSON_GetObjectItem(j, "arch");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, arch));
    v = cJSON_GetObjectItem(j, "images");
    CHECK(cJSON_IsNumber(v) && v->valuedouble == 16);
    v = cJSON_GetObjectItem(j, "per_class");
    CHECK(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 10);
    cJSON_Delete(j);
    nn_model_free(&m);
    data_set_free(&ds);
}

static void test_bench_json(const char *bin)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s bench ckks --logn 12 --json", bin);
    cJSON *j = run_json(cmd);
    const cJSON *pr = cJSON_GetObjectItem(j, "primes");
    CHECK(cJSON_IsArray(pr) && cJSON_GetArraySize(pr) >= 1);
    const cJSON *sp = cJSON_GetObjectItem(j, "special_prime");
    CHECK(cJSON_IsNumber(sp) && sp->valuedouble > 1e9);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "relin")));
    cJSON_Delete(j);
}

int main(void)
{
    const char *bin = getenv("PPNN_BIN");
    if (!bin) {
        fprintf(stderr, "test_cli_json: PPNN_BIN is not set (run through ctest)\n");
        return 1;
    }
    test_eval_json(bin);
    test_bench_json(bin);
    return tu_finish("test_cli_json");
}
