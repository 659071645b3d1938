/* Area-averaging resize (what `--resize` does; docs/images.md).
 *
 * Output pixel (y, x) covers the input rectangle [y*ih/oh, (y+1)*ih/oh) x [x*iw/ow, (x+1)*iw/ow)
 * in input-pixel units; its value is the mean of the input over that rectangle, each input pixel
 * weighted by the area it shares with it. Downscaling by an integer factor is then exactly the
 * block mean (no aliasing, unlike point-sampled bilinear); upscaling gives each output the
 * input pixel it lies in, blended across the boundary it straddles. A constant image stays
 * constant and values stay in [min, max] of the input, so [0, 1] is preserved. */
#include "data/inner.h"

/* Overlap of [lo, hi) with the unit cell [i, i + 1). */
static double overlap(double lo, double hi, size_t i)
{
    double a = lo > (double)i ? lo : (double)i, b = hi < (double)i + 1 ? hi : (double)i + 1;
    return b > a ? b - a : 0;
}

void data_resize_area(float *dst, size_t oh, size_t ow, const float *src, size_t ih, size_t iw)
{
    const double sy = (double)ih / (double)oh, sx = (double)iw / (double)ow;
    for (size_t y = 0; y < oh; y++) {
        const double y0 = (double)y * sy, y1 = (double)(y + 1) * sy;
        size_t i0 = (size_t)y0, i1 = (size_t)y1 + 1;
        i1 = i1 > ih ? ih : i1;
        for (size_t x = 0; x < ow; x++) {
            const double x0 = (double)x * sx, x1 = (double)(x + 1) * sx;
            size_t j0 = (size_t)x0, j1 = (size_t)x1 + 1;
            j1 = j1 > iw ? iw : j1;
            double acc = 0, wsum = 0;
            for (size_t i = i0; i < i1; i++) {
                double wy = overlap(y0, y1, i);
                if (wy == 0)
                    continue;
                for (size_t j = j0; j < j1; j++) {
                    double wgt = wy * overlap(x0, x1, j);
                    acc += wgt * src[i * iw + j];
                    wsum += wgt;
                }
            }
            /* wsum = sy * sx up to rounding; dividing by the sum keeps constants exact. */
            dst[y * ow + x] = (float)(acc / wsum);
        }
    }
}
