/* Small SVG plots for reports (ppnn compare): log-log line charts and grouped bar charts.
 * Self-contained markup (no scripts, no external fonts); written atomically. */
#ifndef PPNN_CLI_SVG_H
#define PPNN_CLI_SVG_H

#include <stddef.h>

#include "ppnn/util.h"

typedef struct svg_series {
    const char *name;
    const double *x, *y; /* n points; all values must be > 0 for log axes */
    size_t n;
    int dashed;          /* e.g. for extrapolated data */
} svg_series;

/* Line chart with logarithmic x and y axes (decade ticks and grid). */
PPNN_MUST_CHECK ppnn_status svg_write_loglog(const char *path, const char *title,
                                             const char *xlabel, const char *ylabel,
                                             const svg_series *series, size_t nseries);

/* Grouped bar chart: values[g * nseries + s] for group g and series s; y axis from ymin to ymax. */
PPNN_MUST_CHECK ppnn_status svg_write_bars(const char *path, const char *title, const char *ylabel,
                                           const char *const *groups, size_t ngroups,
                                           const char *const *series, size_t nseries,
                                           const double *values, double ymin, double ymax);

#endif
