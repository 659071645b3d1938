/* libFuzzer harness for the relinearization-key loader (ckks_relin_key_load). */
#include "fuzz_common.h"

static ppnn_status load(ckks_params **params, const char *path)
{
    ckks_relin_key rk;
    ppnn_status st = ckks_relin_key_load(&rk, params, NULL, path);
    if (!st)
        ckks_relin_key_free(&rk);
    return st;
}

FUZZ_KEY_HARNESS(load)
