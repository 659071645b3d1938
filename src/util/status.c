/* Per-thread error messages for ppnn_status codes. */
#include "ppnn/util.h"

#include <stdarg.h>
#include <string.h>

/* One buffer per thread: the message belongs to the thread that saw the failure, like errno. */
static _Thread_local char last_error[512];

ppnn_status ppnn_fail(ppnn_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

void ppnn_error_context(const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* Truncation of an over-long message is acceptable; compose piecewise to say so. */
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3)
        n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t room = sizeof last_error - n - 3, m = strlen(old);
    if (m > room)
        m = room;
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = 0;
}

const char *ppnn_last_error(void) { return last_error; }

const char *ppnn_status_name(ppnn_status code)
{
    switch (code) {
    case PPNN_OK: return "ok";
    case PPNN_ERR_IO: return "I/O error";
    case PPNN_ERR_FORMAT: return "bad file format";
    case PPNN_ERR_PARAM: return "invalid parameter";
    case PPNN_ERR_INSECURE: return "insecure parameters";
    case PPNN_ERR_MISMATCH: return "mismatch";
    case PPNN_ERR_DEPTH: return "not enough levels";
    case PPNN_ERR_NOMEM: return "out of memory";
    case PPNN_ERR_NUMERIC: return "numerical error";
    case PPNN_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}
