/* Error reporting, strict number parsing and the progress bar shared by the subcommands. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "ppnn/dist.h"

int cli_error(const char *cmd, const char *fmt, ...)
{
    /* Under an MPI launcher only rank 0 speaks: every rank parses the same flags, and the
     * other ranks' failures reach rank 0 through dist_agree, which names the rank. */
    if (dist_launched() && dist_launch_rank() != 0)
        return 1;
    va_list ap;
    fprintf(stderr, "ppnn %s: error: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_usage_error(const char *cmd, int argc, char **argv)
{
    const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    cli_error(cmd, "unknown option or missing argument '%s' (see 'ppnn %s --help')", bad, cmd);
    return 2;
}

int cli_fail(const char *cmd, ppnn_status st)
{
    const char *msg = ppnn_last_error();
    return cli_error(cmd, "%s", msg[0] ? msg : ppnn_status_name(st));
}

int cli_check_output(const char *cmd, const char *path, const char *kind)
{
    int through;
    ppnn_status st = ppnn_path_check_output(&through, path, kind);
    return st ? cli_fail(cmd, st) : 0;
}

int cli_print_json(const char *cmd, cJSON *root, int ok)
{
    char *s = ok && root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return cli_error(cmd, "out of memory formatting the JSON output");
    int bad = puts(s) < 0 || fflush(stdout) != 0;
    cJSON_free(s);
    return bad ? cli_error(cmd, "cannot write the JSON output: %s", strerror(errno)) : 0;
}

cJSON *cli_json_u64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t lo, size_t hi,
                   size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return cli_error(cmd, "%s: '%s' is not an integer in [%zu, %zu]", opt, s, lo, hi);
    *out = (size_t)v;
    return 0;
}

int cli_parse_bytes(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mult = 1;
    if (end != s && *end && !end[1]) {
        switch (*end) {
        case 'k': case 'K': mult = 0x1p10; end++; break;
        case 'm': case 'M': mult = 0x1p20; end++; break;
        case 'g': case 'G': mult = 0x1p30; end++; break;
        default: break;
        }
    }
    v *= mult;
    if (errno || end == s || *end || !isfinite(v) || !(v >= 1) || v > 0x1p50)
        return cli_error(cmd, "%s: '%s' is not a size (bytes, or a number with K, M or G: "
                         "e.g. 400M, 8G)", opt, s);
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return cli_error(cmd, "%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

void cli_progress_start(cli_progress *p, const char *label, size_t total)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->start = ppnn_now();
    p->tty = isatty(STDERR_FILENO);
}

static void draw(cli_progress *p, const char *extra, int final)
{
    double el = ppnn_now() - p->start;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "%s%s [%s] %zu/%zu %5.1f%% %s elapsed %.1fs ETA %.1fs%s", p->tty ? "\r" : "",
            p->label, bar, p->done, p->total, 100 * frac, extra ? extra : "", el, eta,
            p->tty && !final ? "\033[K" : "\n");
    if (final && p->tty)
        fputc('\n', stderr);
    fflush(stderr);
}

void cli_progress_update(cli_progress *p, size_t done, const char *extra)
{
    p->done = done;
    double now = ppnn_now();
    double every = p->tty ? 0.1 : 2.0;
    if (now - p->last_draw >= every) {
        p->last_draw = now;
        draw(p, extra, 0);
    }
}

void cli_progress_finish(cli_progress *p, const char *extra)
{
    p->done = p->total;
    draw(p, extra, 1);
}
