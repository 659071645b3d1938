/* libFuzzer harness for the ciphertext-batch loader as the server runs it (ckks_batch_parse):
 * against the evaluation keys' parameters, and with parameters rebuilt from the file when its
 * parameter block was mutated. */
#include "fuzz_common.h"

static ppnn_status parse(const uint8_t *data, size_t size, ckks_params **params)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return PPNN_ERR_NOMEM;
    if (size)
        memcpy(buf, data, size);
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    ckks_batch_info info;
    ppnn_status st = ckks_batch_parse(&cts, &count, &info, params, buf, size, "fuzz");
    if (!st) {
        for (size_t i = 0; i < count; i++) /* one positive scale per batch, levels in range */
            if (cts[i].scale != cts[0].scale || !(cts[i].scale > 0) ||
                cts[i].level >= cts[i].params->nq)
                abort();
        for (size_t i = 0; i < count; i++)
            ckks_ct_free(&cts[i]);
        free(cts);
    }
    return st;
}

static void try_one(const uint8_t *data, size_t size)
{
    ckks_params *seed = (ckks_params *)fuzz_seed_params(), *p = seed;
    ppnn_status st = parse(data, size, &p);
    (void)st;
    if (p != seed)
        abort();
    if (fuzz_params_block_changed(data, size)) {
        ckks_params *own = NULL;
        if (parse(data, size, &own) == PPNN_OK)
            ckks_params_free(own);
        else if (own)
            abort(); /* a failed load must not leak a parameter set */
    }
}

FUZZ_CONTAINER_HARNESS(try_one)
