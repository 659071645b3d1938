/* Minimal test helpers shared by all tests/test_*.c executables (each is one ctest test). */
#ifndef PPNN_TESTUTIL_H
#define PPNN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ppnn/util.h"

extern int tu_checks, tu_failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        tu_checks++;                                                                           \
        if (!(cond)) {                                                                         \
            tu_failures++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                   \
    do {                                                                                       \
        tu_checks++;                                                                           \
        if (!(cond)) {                                                                         \
            tu_failures++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* expr must return PPNN_OK. */
#define CHECK_OK(expr)                                                                         \
    do {                                                                                       \
        ppnn_status tu_st_ = (expr);                                                           \
        tu_checks++;                                                                           \
        if (tu_st_ != PPNN_OK) {                                                               \
            tu_failures++;                                                                     \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,               \
                    ppnn_last_error());                                                        \
        }                                                                                      \
    } while (0)

/* expr must fail with exactly `code` and leave a non-empty message. */
#define CHECK_ERR(expr, code)                                                                  \
    do {                                                                                       \
        ppnn_fail(PPNN_OK, "%s", "");                                                          \
        ppnn_status tu_st_ = (expr);                                                           \
        tu_checks++;                                                                           \
        if (tu_st_ != (code) || ppnn_last_error()[0] == 0) {                                   \
            tu_failures++;                                                                     \
            fprintf(stderr, "%s:%d: %s: expected %s, got %s (%s)\n", __FILE__, __LINE__,       \
                    #expr, ppnn_status_name(code), ppnn_status_name(tu_st_),                   \
                    ppnn_last_error());                                                        \
        }                                                                                      \
    } while (0)

/* Prints "<name>: N passed, M failed" and returns the process exit code. */
int tu_finish(const char *name);
/* A fresh temporary directory for this test process (removed by tu_finish). */
const char *tu_tmpdir(void);
/* Writes a file into the temp dir; returns its path (static buffer rotation of 8). */
const char *tu_write(const char *name, const void *buf, size_t len);
/* Writes an 8x8 IDX data set into <tmpdir>/tiny (16 images per split, pixel i of the split is
 * (i * mul) mod 256, label of image b is b mod 10) and returns its directory. */
const char *tu_tiny_data(unsigned mul);
/* Path to a file in the repository source tree. */
const char *tu_source_path(const char *rel);
/* Set when PPNN_TEST_REDUCED is in the environment (sanitizer runs): tests shrink workloads. */
int tu_reduced(void);

#endif
