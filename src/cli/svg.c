/* SVG plot writer. Coordinates: a 720x440 canvas with a fixed plot area; text is escaped. */
#include "svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define W 840.0
#define H 440.0
#define LEFT 80.0
#define RIGHT 310.0 /* room for the legend (names up to ~34 characters) */
#define TOP 40.0
#define BOTTOM 60.0

static const char *const PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b"};
#define NPALETTE (sizeof PALETTE / sizeof PALETTE[0])

/* A growable string buffer; the SVG is composed in memory, then written in one atomic file. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static void sb_text(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

static void header(sbuf *b, const char *title)
{
    sb_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                 "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
              W, H, W, H);
    sb_printf(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    sb_printf(b, "<text x=\"%.1f\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">", W / 2);
    sb_text(b, title);
    sb_printf(b, "</text>\n");
}

static void axis_labels(sbuf *b, const char *xlabel, const char *ylabel)
{
    double px = LEFT + (W - LEFT - RIGHT) / 2, py = TOP + (H - TOP - BOTTOM) / 2;
    if (xlabel) {
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px, H - 15);
        sb_text(b, xlabel);
        sb_printf(b, "</text>\n");
    }
    sb_printf(b, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">",
              py, py);
    sb_text(b, ylabel);
    sb_printf(b, "</text>\n");
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"black\"/>\n", LEFT, TOP, W - LEFT - RIGHT, H - TOP - BOTTOM);
}

static void legend(sbuf *b, const char *const *names, size_t n, const int *dashed, int boxes)
{
    for (size_t s = 0; s < n; s++) {
        double y = TOP + 10 + 20.0 * (double)s, x = W - RIGHT + 12;
        const char *c = PALETTE[s % NPALETTE];
        if (boxes)
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\"/>\n", x,
                      y - 5, c);
        else
            sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                         "stroke-width=\"2\"%s/>\n", x, y, x + 22, y, c,
                      dashed && dashed[s] ? " stroke-dasharray=\"6 4\"" : "");
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 28, y + 4);
        sb_text(b, names[s]);
        sb_printf(b, "</text>\n");
    }
}

static ppnn_status finish(sbuf *b, const char *path)
{
    sb_printf(b, "</svg>\n");
    if (b->oom) {
        free(b->p);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory composing the plot", path);
    }
    ppnn_wfile w;
    ppnn_status st = ppnn_wfile_open(&w, path, 0644);
    if (!st) {
        st = ppnn_wfile_write(&w, b->p, b->len);
        if (st)
            ppnn_wfile_abort(&w);
        else
            st = ppnn_wfile_commit(&w);
    }
    free(b->p);
    return st;
}

ppnn_status svg_write_loglog(const char *path, const char *title, const char *xlabel,
                             const char *ylabel, const svg_series *series, size_t nseries)
{
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t s = 0; s < nseries; s++)
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!(x > 0) || !(y > 0) || !isfinite(x) || !isfinite(y))
                return ppnn_fail(PPNN_ERR_PARAM, "%s: log-log plot needs positive finite values "
                                                 "(series '%s' point %zu)", path, series[s].name, i);
            xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
        }
    if (!(xmin <= xmax))
        return ppnn_fail(PPNN_ERR_PARAM, "%s: nothing to plot", path);
    /* Axes span whole decades around the data. */
    double lx0 = floor(log10(xmin)), lx1 = ceil(log10(xmax));
    double ly0 = floor(log10(ymin)), ly1 = ceil(log10(ymax));
    if (lx1 <= lx0)
        lx1 = lx0 + 1;
    if (ly1 <= ly0)
        ly1 = ly0 + 1;
    double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
#define PX(v) (LEFT + (log10(v) - lx0) / (lx1 - lx0) * pw)
#define PY(v) (TOP + ph - (log10(v) - ly0) / (ly1 - ly0) * ph)
    sbuf b = {0};
    header(&b, title);
    for (double d = lx0; d <= lx1 + 1e-9; d++) {
        double x = PX(pow(10, d));
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                  x, TOP, x, TOP + ph, x, TOP + ph + 16, pow(10, d));
    }
    for (double d = ly0; d <= ly1 + 1e-9; d++) {
        double y = PY(pow(10, d));
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                  LEFT, y, LEFT + pw, y, LEFT - 6, y + 4, pow(10, d));
    }
    axis_labels(&b, xlabel, ylabel);
    const char *names[16];
    int dashed[16];
    for (size_t s = 0; s < nseries && s < 16; s++) {
        const char *c = PALETTE[s % NPALETTE];
        sb_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", c,
                  series[s].dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < series[s].n; i++)
            sb_printf(&b, "%s%.1f,%.1f", i ? " " : "", PX(series[s].x[i]), PY(series[s].y[i]));
        sb_printf(&b, "\"/>\n");
        for (size_t i = 0; i < series[s].n; i++)
            sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                      PX(series[s].x[i]), PY(series[s].y[i]), c);
        names[s] = series[s].name;
        dashed[s] = series[s].dashed;
    }
#undef PX
#undef PY
    legend(&b, names, nseries < 16 ? nseries : 16, dashed, 0);
    return finish(&b, path);
}

ppnn_status svg_write_bars(const char *path, const char *title, const char *ylabel,
                           const char *const *groups, size_t ngroups, const char *const *series,
                           size_t nseries, const double *values, double ymin, double ymax)
{
    if (!ngroups || !nseries || !(ymax > ymin))
        return ppnn_fail(PPNN_ERR_PARAM, "%s: nothing to plot", path);
    double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    double gw = pw / (double)ngroups, bw = gw * 0.8 / (double)nseries;
    sbuf b = {0};
    header(&b, title);
    for (int t = 0; t <= 5; t++) {
        double v = ymin + (ymax - ymin) * t / 5.0, y = TOP + ph - ph * t / 5.0;
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                  LEFT, y, LEFT + pw, y, LEFT - 6, y + 4, v);
    }
    axis_labels(&b, NULL, ylabel);
    for (size_t g = 0; g < ngroups; g++) {
        double gx = LEFT + gw * (double)g + gw * 0.1;
        for (size_t s = 0; s < nseries; s++) {
            double v = values[g * nseries + s];
            double f = isfinite(v) ? (v - ymin) / (ymax - ymin) : 0;
            f = f < 0 ? 0 : f > 1 ? 1 : f;
            sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                          "<title>%.4g</title></rect>\n",
                      gx + bw * (double)s, TOP + ph - f * ph, bw * 0.95, f * ph,
                      PALETTE[s % NPALETTE], v);
            sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">"
                          "%.2f</text>\n", gx + bw * ((double)s + 0.5), TOP + ph - f * ph - 3, v);
        }
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", gx + gw * 0.4,
                  TOP + ph + 16);
        sb_text(&b, groups[g]);
        sb_printf(&b, "</text>\n");
    }
    legend(&b, series, nseries, NULL, 1);
    return finish(&b, path);
}
