/* The predictions CSV shared by `ppnn decrypt` (encrypted logits) and `ppnn eval --predictions`
 * (plaintext logits). */
#include "cli.h"

ppnn_status cli_write_predictions(const char *path, const double *logits, size_t images,
                                  size_t classes, int with_logits)
{
    ppnn_wfile w;
    ppnn_status st = ppnn_wfile_open(&w, path, 0644);
    if (st)
        return st;
    fprintf(w.fp, "image,prediction");
    for (size_t c = 0; with_logits && c < classes; c++)
        fprintf(w.fp, ",logit_%zu", c);
    fputc('\n', w.fp);
    for (size_t b = 0; b < images; b++) {
        const double *l = logits + b * classes;
        fprintf(w.fp, "%zu,%zu", b, ppnn_argmax(l, classes));
        for (size_t c = 0; with_logits && c < classes; c++)
            fprintf(w.fp, ",%.6f", l[c]);
        fputc('\n', w.fp);
    }
    if (ferror(w.fp)) {
        ppnn_wfile_abort(&w);
        return ppnn_fail(PPNN_ERR_IO, "%s: write failed", path);
    }
    return ppnn_wfile_commit(&w);
}
