/* libFuzzer harness for the IDX file reader (data_idx_read): plain or gzip input from a file,
 * so the bounded inflation (stop one byte past what the header declares) is fuzzed too. */
#include "fuzz_common.h"
#include "ppnn/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    data_idx idx;
    if (data_idx_read(&idx, fuzz_scratch(data, size)) == PPNN_OK) {
        if (idx.item_size > DATA_IDX_MAX_ITEM_BYTES && idx.ndims > 1)
            abort();
        data_idx_free(&idx);
    }
    return 0;
}
