/* libFuzzer harness for the secret-key loader (ckks_secret_key_load). */
#include "fuzz_common.h"

static ppnn_status load(ckks_params **params, const char *path)
{
    ckks_secret_key sk;
    ppnn_status st = ckks_secret_key_load(&sk, params, path);
    if (!st) {
        uint8_t id[CKKS_KEY_ID_BYTES];
        ckks_key_id(id, &sk); /* a loaded key is usable */
        ckks_secret_key_free(&sk);
    }
    return st;
}

FUZZ_KEY_HARNESS(load)
