/* libFuzzer harness for multi-batch files (ckks_batch_set_open, ckks_batch_reader_open/_get):
 * the input is served as a file (memfd) because the set reads with pread; every batch is
 * opened and every ciphertext read at its stored level and at level 0. A fuzzer that stops at
 * the checksum tests nothing: the custom mutator reseals every frame it can walk (index and
 * batches: the index's BLAKE2b, every batch's ciphertext digests and top hash) on half of
 * the mutations, so both
 * the framing/checksum paths and the parsers behind them are exercised. */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ppnn/ckks_io.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed & 1 || sodium_init() < 0)
        return size;
    /* Frame layout: 56-byte header (payload length at 48, little-endian), payload, 32-byte
     * trailer: BLAKE2b-256 of header + payload for the index frame, and for a batch frame
     * (chunked, ppnn/util.h) each ciphertext's digest in its table and the top hash over the
     * header, metadata, lengths and table (ppnn_chunked_reseal). */
    size_t off = 0;
    while (size - off >= PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES) {
        uint64_t len = ppnn_get_u64(data + off + 48);
        if (len > size - off - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES)
            break;
        size_t body = PPNN_FILE_HEADER_BYTES + (size_t)len;
        if (memcmp(data + off + 8, CKKS_KIND_BATCH, 4) == 0)
            ppnn_chunked_reseal(data + off, body + PPNN_FILE_TRAILER_BYTES);
        else
            crypto_generichash(data + off + body, PPNN_FILE_TRAILER_BYTES, data + off, body,
                               NULL, 0);
        off += body + PPNN_FILE_TRAILER_BYTES;
    }
    return size;
}

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
