/* The predictions CSV shared by `ppnn decrypt` (encrypted logits) and `ppnn eval --predictions`
 * (plaintext logits). */
#include <string.h>

#include "cli.h"

/* RFC 4180 field: quoted (with doubled quotes) when it holds a comma, quote or line break. */
static void put_csv_field(FILE *fp, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

ppnn_status cli_write_predictions(const char *path, const double *logits, size_t images,
                                  size_t classes, int with_logits, const char *const *names)
{
    ppnn_wfile w;
    ppnn_status st = ppnn_wfile_open(&w, path, 0644);
    if (st)
        return st;
    fprintf(w.fp, names ? "image,file,prediction" : "image,prediction");
    for (size_t c = 0; with_logits && c < classes; c++)
        fprintf(w.fp, ",logit_%zu", c);
    fputc('\n', w.fp);
    for (size_t b = 0; b < images; b++) {
        const double *l = logits + b * classes;
        fprintf(w.fp, "%zu,", b);
        if (names) {
            put_csv_field(w.fp, names[b]);
            fputc(',', w.fp);
        }
        fprintf(w.fp, "%zu", ppnn_argmax(l, classes));
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
