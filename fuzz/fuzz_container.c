/* libFuzzer harness for the file container and bit unpacking: refuse or accept, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static void try_container(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return;
    if (size)
        memcpy(buf, data, size);
    ppnn_file_view v;
    if (ppnn_file_parse(&v, buf, size, "fuzz", "TEST", 1) == PPNN_OK)
        ppnn_file_close(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_raw_and_resealed(data, size, try_container); /* resealed: reaches the accept path */
    /* Interpret the input as a bit-packed array of 17-bit values below 100000. */
    size_t n = size * 8 / 17;
    uint64_t *out = malloc((n ? n : 1) * sizeof *out);
    if (out && ppnn_packed_bytes(n, 17) <= size) {
        ppnn_status st = ppnn_bitunpack(out, data, n, 17, 100000, "fuzz");
        (void)st;
    }
    free(out);
    return 0;
}
