/* The first failure of an OpenMP loop reaches the calling thread with its own message
 * (src/util/first_error.c), and later failures do not overwrite it. */
#include <omp.h>
#include <string.h>

#include "testutil.h"

int main(void)
{
    ppnn_first_error f = {0};
    CHECK(!ppnn_first_error_set(&f));
    CHECK_OK(ppnn_first_error_status(&f));
    ppnn_first_error_keep(&f, PPNN_OK); /* no-op */
    CHECK(!ppnn_first_error_set(&f));
    /* iteration 7 fails on some worker thread; the others succeed (or stop early) */
#pragma omp parallel for num_threads(4) schedule(dynamic, 1)
    for (int i = 0; i < 64; i++) {
        if (ppnn_first_error_set(&f))
            continue;
        if (i == 7)
            ppnn_first_error_keep(&f, ppnn_fail(PPNN_ERR_NUMERIC, "iteration %d overflowed", i));
        else
            ppnn_first_error_keep(&f, PPNN_OK);
    }
    /* a later failure does not replace the first */
    ppnn_first_error_keep(&f, ppnn_fail(PPNN_ERR_IO, "late"));
    CHECK(ppnn_first_error_set(&f));
    ppnn_fail(PPNN_OK, "%s", ""); /* the caller's own message is replaced by the worker's */
    CHECK(ppnn_first_error_status(&f) == PPNN_ERR_NUMERIC);
    CHECK_MSG(!strcmp(ppnn_last_error(), "iteration 7 overflowed"), "%s", ppnn_last_error());
    return tu_finish("test_first_error");
}
