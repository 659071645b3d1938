/* libFuzzer harness for the Galois-key loader (ckks_galois_keys_load). */
#include "fuzz_common.h"

static ppnn_status load(ckks_params **params, const char *path)
{
    ckks_galois_keys gk;
    ppnn_status st = ckks_galois_keys_load(&gk, params, NULL, path);
    if (!st) {
        for (size_t g = 0; g < gk.count; g++) /* loaded elements are valid automorphisms */
            if (gk.elements[g] % 2 == 0 || gk.elements[g] == 1 ||
                gk.elements[g] >= 2 * gk.params->n)
                abort();
        ckks_galois_keys_free(&gk);
    }
    return st;
}

FUZZ_KEY_HARNESS(load)
