/* The one argmax (src/util/argmax.c): first index on ties, NaN never wins, both precisions agree
 * (the copies it replaced let a NaN in slot 0 win every image). */
#include <math.h>

#include "testutil.h"

int main(void)
{
    const double d[] = {1, 3, 3, 2};
    const float f[] = {1, 3, 3, 2};
    CHECK(ppnn_argmax(d, 4) == 1 && ppnn_argmaxf(f, 4) == 1);
    CHECK(ppnn_argmax(d, 1) == 0 && ppnn_argmaxf(f, 1) == 0);
    const double dn[] = {NAN, -5, NAN, -1};
    const float fn[] = {NAN, -5, NAN, -1};
    CHECK(ppnn_argmax(dn, 4) == 3 && ppnn_argmaxf(fn, 4) == 3);
    const double inf[] = {-INFINITY, INFINITY, 1e308};
    CHECK(ppnn_argmax(inf, 3) == 1);
    /* every permutation position of a unique maximum is found */
    for (size_t k = 0; k < 10; k++) {
        double v[10];
        float w[10];
        for (size_t i = 0; i < 10; i++)
            v[i] = w[i] = (float)(i == k ? 100 : (double)(i % 3));
        CHECK(ppnn_argmax(v, 10) == k && ppnn_argmaxf(w, 10) == k);
    }
    return tu_finish("test_argmax");
}
