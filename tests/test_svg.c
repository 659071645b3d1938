/* SVG plots: structure of the markup (not pixels), escaping, refusal of bad data. */
#include <stdlib.h>
#include <string.h>

#include "svg.h"
#include "testutil.h"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static char *slurp(const char *path)
{
    uint8_t *buf;
    size_t len;
    if (ppnn_read_file(&buf, &len, path, 1 << 20))
        return NULL;
    char *s = realloc(buf, len + 1);
    s[len] = 0;
    return s;
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/t.svg", tu_tmpdir());
    double x[4] = {1, 16, 256, 4096}, y1[4] = {5000, 5000, 5000, 5000}, y2[4] = {20000, 1300, 80, 5};
    svg_series s[2] = {{"channel <wise>", x, y1, 4, 1}, {"element & co", x, y2, 4, 0}};
    CHECK_OK(svg_write_loglog(path, "amortized time", "batch size", "ms / image", s, 2));
    char *t = slurp(path);
    CHECK(t != NULL);
    if (t) {
        CHECK(strncmp(t, "<?xml", 5) == 0 && strstr(t, "</svg>\n") != NULL);
        CHECK(count(t, "<polyline") == 2);
        CHECK(count(t, "<circle") == 8);
        CHECK(strstr(t, "channel &lt;wise&gt;") != NULL && strstr(t, "element &amp; co") != NULL);
        CHECK(strstr(t, ">10000<") != NULL); /* a decade tick on y */
        CHECK(count(t, "<text") == count(t, "</text>"));
        CHECK(strstr(t, "stroke-dasharray") != NULL);
        free(t);
    }
    double bad[4] = {1, 0, 2, 3};
    svg_series sb = {"bad", x, bad, 4, 0};
    CHECK_ERR(svg_write_loglog(path, "t", "x", "y", &sb, 1), PPNN_ERR_PARAM);

    const char *groups[2] = {"MNIST", "Fashion"}, *series[2] = {"element", "channel"};
    double v[4] = {98.9, 97.2, 89.1, 87.5};
    CHECK_OK(svg_write_bars(path, "accuracy", "%", groups, 2, series, 2, v, 80, 100));
    t = slurp(path);
    CHECK(t != NULL);
    if (t) {
        CHECK(count(t, "<rect") == 1 + 1 + 4 + 2); /* background, frame, bars, legend */
        CHECK(strstr(t, ">98.90<") != NULL);
        free(t);
    }
    CHECK_ERR(svg_write_bars(path, "a", "%", groups, 2, series, 2, v, 100, 80), PPNN_ERR_PARAM);
    return tu_finish("test_svg");
}
