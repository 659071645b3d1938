/* The first failure of an OpenMP loop. ppnn_fail messages live in thread-local storage, so a
 * worker's message is invisible to the thread that called the loop: the first failing worker
 * copies its code and message here (under one critical section), the other workers see the
 * code set and stop early, and the caller re-records it on its own thread. */
#include "ppnn/util.h"

#include <string.h>

void ppnn_first_error_keep(ppnn_first_error *f, ppnn_status e)
{
    if (!e)
        return;
#pragma omp critical(ppnn_first_error)
    if (!f->st) {
        snprintf(f->msg, sizeof f->msg, "%s", ppnn_last_error());
#pragma omp atomic write
        f->st = e;
    }
}

int ppnn_first_error_set(const ppnn_first_error *f)
{
    ppnn_status s;
#pragma omp atomic read
    s = f->st;
    return s != PPNN_OK;
}

ppnn_status ppnn_first_error_status(const ppnn_first_error *f)
{
    return f->st ? ppnn_fail(f->st, "%s", f->msg) : PPNN_OK;
}
