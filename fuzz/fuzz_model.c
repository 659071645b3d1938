/* libFuzzer harness for the model-file parser: any input must parse or be refused, never
 * crash; a parsed model must re-serialise to the same bytes. Each input is tried as is and
 * "resealed" (payload length and BLAKE2b checksum fixed up), so mutations reach the payload
 * validation instead of stopping at the checksum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/nn.h"

static void try_parse(const uint8_t *data, size_t size)
{
    nn_model m;
    if (nn_model_parse(&m, data, size) != PPNN_OK)
        return;
    uint8_t *again;
    size_t len;
    if (nn_model_serialize(&again, &len, &m) != PPNN_OK)
        abort();
    if (len != size || memcmp(again, data, size))
        abort();
    free(again);
    nn_model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_parse(data, size);
    if (size < PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    ppnn_file_reseal(copy, size); /* models are ppnn containers (kind MODL) */
    try_parse(copy, size);
    free(copy);
    return 0;
}
