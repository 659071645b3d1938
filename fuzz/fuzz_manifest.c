/* libFuzzer harness for the names manifest parser (data_manifest_parse): parse or refuse,
 * never crash or leak; a parsed manifest has as many names as images. */
#include <stdint.h>
#include <stdlib.h>

#include "ppnn/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    data_manifest m;
    if (data_manifest_parse(&m, data, size, "fuzz") == PPNN_OK) {
        if (m.count == 0 || !m.names)
            abort();
        for (size_t i = 0; i < m.count; i++)
            if (!m.names[i])
                abort();
        data_manifest_free(&m);
    } else if (m.names) {
        abort();
    }
    return 0;
}
