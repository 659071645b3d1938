/* libFuzzer harness for the public-key loader (ckks_public_key_load). */
#include "fuzz_common.h"

static ppnn_status load(ckks_params **params, const char *path)
{
    ckks_public_key pk;
    uint8_t id[CKKS_KEY_ID_BYTES];
    ppnn_status st = ckks_public_key_load(&pk, params, id, path);
    if (!st)
        ckks_public_key_free(&pk);
    return st;
}

FUZZ_KEY_HARNESS(load)
