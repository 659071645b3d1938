/* libFuzzer harness for the model-file parser: any input must parse or be refused, never
 * crash; a parsed model must be self-consistent and re-serialise to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_model m;
    if (nn_model_parse(&m, data, size) != PPNN_OK)
        return 0;
    uint8_t *again;
    size_t len;
    if (nn_model_serialize(&again, &len, &m) != PPNN_OK)
        abort();
    if (len != size || memcmp(again, data, size))
        abort();
    free(again);
    nn_model_free(&m);
    return 0;
}
