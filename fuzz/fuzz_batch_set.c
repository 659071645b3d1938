/* libFuzzer harness for multi-batch files (ckks_batch_set_open, ckks_batch_reader_open/_get):
 * the input is served as a file (memfd) because the set reads with pread; every batch is
 * opened and every ciphertext read at its stored level and at level 0. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ppnn/ckks_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ckks_params *params = NULL;
    ckks_batch_set *s = NULL;
    if (ckks_batch_set_open(&s, &params, path) == PPNN_OK) {
        for (size_t b = 0; b < ckks_batch_set_batches(s); b++) {
            ckks_batch_reader *r = NULL;
            if (ckks_batch_reader_open(&r, s, b) != PPNN_OK)
                continue;
            for (size_t i = 0; i < ckks_batch_reader_count(r); i++) {
                size_t level, sz;
                double scale;
                ckks_ciphertext ct = {0};
                ckks_batch_reader_meta(r, i, &level, &sz, &scale);
                (void)ckks_batch_reader_get(&ct, r, i, level);
                (void)ckks_batch_reader_get(&ct, r, i, 0);
                ckks_ct_free(&ct);
            }
            ckks_batch_reader_close(r);
        }
        ckks_batch_set_close(s);
        ckks_params_free(params);
    } else if (params) {
        abort(); /* a failed open must not leak a parameter set */
    }
    close(fd);
    return 0;
}
