#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tu_checks, tu_failures;
static char tmpdir[256];

const char *tu_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/ppnn-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

const char *tu_write(const char *name, const void *buf, size_t len)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    FILE *fp = fopen(p, "wb");
    if (!fp || (len && fwrite(buf, 1, len, fp) != len)) {
        perror(p);
        exit(2);
    }
    fclose(fp);
    return p;
}

const char *tu_tiny_data(unsigned mul)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/tiny", tu_tmpdir());
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        exit(2);
    }
    uint8_t img[16 + 1024], lab[8 + 16];
    static const uint8_t ih[16] = {0, 0, 8, 3, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0, 0, 8};
    static const uint8_t lh[8] = {0, 0, 8, 1, 0, 0, 0, 16};
    memcpy(img, ih, 16);
    for (size_t i = 0; i < 1024; i++)
        img[16 + i] = (uint8_t)(i * mul);
    memcpy(lab, lh, 8);
    for (size_t i = 0; i < 16; i++)
        lab[8 + i] = (uint8_t)(i % 10);
    tu_write("tiny/t10k-images-idx3-ubyte", img, sizeof img);
    tu_write("tiny/t10k-labels-idx1-ubyte", lab, sizeof lab);
    tu_write("tiny/train-images-idx3-ubyte", img, sizeof img);
    tu_write("tiny/train-labels-idx1-ubyte", lab, sizeof lab);
    return dir;
}

const char *tu_source_path(const char *rel)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", PPNN_SOURCE_DIR, rel);
    return p;
}

int tu_reduced(void) { return getenv("PPNN_TEST_REDUCED") != NULL; }

int tu_finish(const char *name)
{
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
    printf("%s: %d passed, %d failed\n", name, tu_checks - tu_failures, tu_failures);
    return tu_failures ? 1 : 0;
}
