/* libFuzzer harness for the IDX parser: any input must parse or be refused, never crash. */
#include <stdint.h>
#include <stdlib.h>

#include "ppnn/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    data_idx idx;
    if (data_idx_parse(&idx, data, size, "fuzz") == PPNN_OK) {
        if (idx.count * idx.item_size > size)
            abort();
        data_idx_free(&idx);
    }
    return 0;
}
