/* libFuzzer harness for the key loaders: the input is written to a file and loaded as each
 * kind of key (secret, public, relinearization, Galois); all must refuse or accept cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppnn/ckks_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/ppnn-fuzz-key-%d", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    ckks_params *p = NULL;
    ckks_secret_key sk;
    if (ckks_secret_key_load(&sk, &p, path) == PPNN_OK) {
        ckks_secret_key_free(&sk);
        ckks_params_free(p);
        p = NULL;
    }
    ckks_public_key pk;
    if (ckks_public_key_load(&pk, &p, NULL, path) == PPNN_OK) {
        ckks_public_key_free(&pk);
        ckks_params_free(p);
        p = NULL;
    }
    ckks_relin_key rk;
    if (ckks_relin_key_load(&rk, &p, NULL, path) == PPNN_OK) {
        ckks_relin_key_free(&rk);
        ckks_params_free(p);
        p = NULL;
    }
    ckks_galois_keys gk;
    if (ckks_galois_keys_load(&gk, &p, NULL, path) == PPNN_OK) {
        ckks_galois_keys_free(&gk);
        ckks_params_free(p);
        p = NULL;
    }
    if (p)
        abort();
    unlink(path);
    return 0;
}
