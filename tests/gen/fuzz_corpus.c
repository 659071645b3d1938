/* Writes seed inputs for the ckks fuzz harnesses (fuzz/corpus/): a small batch file.
 * Build: gcc -std=c17 -Iinclude tests/gen/fuzz_corpus.c build/libppnn.a -lsodium -lz -lm -fopenmp
 * Run from the repository root. */
#include <math.h>
#include <string.h>

#include "ppnn/ckks_io.h"

int main(void)
{
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = 12, spec.nq = 2, spec.q_bits[0] = 30, spec.q_bits[1] = 24, spec.p_bits = 30;
    spec.scale = 0x1p24;
    ckks_params *p;
    ckks_secret_key sk;
    if (ckks_params_new(&p, &spec) || ckks_keygen_secret(&sk, p))
        return 1;
    double v[4] = {0.5, -0.25, 1, 0};
    ckks_plaintext pt = {0};
    ckks_ciphertext ct[2] = {{0}};
    if (ckks_encode(&pt, p, v, 4, 1, p->scale) || ckks_encrypt_sk(&ct[0], &sk, &pt) ||
        ckks_encode(&pt, p, v, 4, 0, p->scale) || ckks_encrypt_sk(&ct[1], &sk, &pt))
        return 1;
    ct[1].has_seed = 0; /* one unseeded ciphertext exercises the full-component path */
    ckks_batch_info info = {{0}, CKKS_PACKING_ELEMENT, 4, {1, 1, 2}, CKKS_BATCH_INPUT};
    ckks_key_id(info.key_id, &sk);
    if (ckks_batch_save("fuzz/corpus/fuzz_ckks_batch/small.ct", ct, 2, &info))
        return 1;
    if (ckks_secret_key_save("fuzz/corpus/fuzz_ckks_keys/secret.key", &sk))
        return 1;
    puts("wrote fuzz/corpus/fuzz_ckks_batch/small.ct and fuzz/corpus/fuzz_ckks_keys/secret.key");
    return 0;
}
