/* The importer's entry points: load and validate the graph, lower it, fold, build the model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/inner.h"

void onnx_import_opts_default(onnx_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->norm_mean = 0.0f;
    o->norm_std = 1.0f;
}

ppnn_status onnx_import(nn_model *m, const uint8_t *buf, size_t len, const char *name,
                        const onnx_import_opts *opts)
{
    onnx_import_opts def;
    if (!opts) {
        onnx_import_opts_default(&def);
        opts = &def;
    }
    memset(m, 0, sizeof *m);
    if (!(opts->norm_std > 0) || !isfinite(opts->norm_mean))
        return ppnn_fail(PPNN_ERR_PARAM, "input normalisation needs std > 0");
    onnx_graph g;
    ppnn_status st = onnx_graph_load(&g, buf, len, name, opts);
    if (st)
        return st;
    pl_list p = {0, 0, NULL, opts->norm_mean, opts->norm_std};
    nn_shape input;
    st = onnx_lower(&p, &input, &g);
    if (!st)
        st = onnx_fold(&p);
    if (!st) {
        char arch[32];
        const char *base = strrchr(g.file, '/');
        snprintf(arch, sizeof arch, "onnx:%s", base ? base + 1 : g.file);
        if ((st = onnx_build_model(m, &p, input, arch)))
            ppnn_error_context("%s", g.file);
    }
    pl_list_free(&p);
    onnx_graph_free(&g);
    return st;
}

ppnn_status onnx_import_file(nn_model *m, const char *path, const onnx_import_opts *opts)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(m, 0, sizeof *m);
    ppnn_status st = ppnn_read_file(&buf, &len, path, ONNX_MAX_FILE);
    if (st)
        return st;
    st = onnx_import(m, buf, len, path, opts);
    free(buf);
    return st;
}
