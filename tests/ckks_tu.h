/* Helpers shared by the tests/test_ckks_*.c executables (header-only, static). */
#ifndef PPNN_CKKS_TU_H
#define PPNN_CKKS_TU_H

#include <math.h>
#include <stdlib.h>

#include "ppnn/ckks.h"
#include "testutil.h"

/* Bits of precision of got[] against want[]: -log2(max |got - want|) (60 when exact). */
static inline double ctu_bits(const double *got, const double *want, size_t n)
{
    double err = 0;
    for (size_t i = 0; i < n; i++)
        err = fmax(err, fabs(got[i] - want[i]));
    return err > 0 ? -log2(err) : 60.0;
}

/* Deterministic values in [-1, 1) (xorshift; tests must be reproducible). */
static inline void ctu_values(double *v, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (double)(x >> 11) * 0x1p-52 - 1.0;
    }
}

/* A small insecure test ring: N = 2^logn, nq primes (q_0 q0bits, others qbits), P pbits. */
static inline ckks_params *ctu_params(unsigned logn, size_t nq, unsigned q0bits, unsigned qbits,
                                      unsigned pbits)
{
    ckks_spec s = {0};
    s.logn = logn;
    s.nq = nq;
    s.q_bits[0] = q0bits;
    for (size_t i = 1; i < nq; i++)
        s.q_bits[i] = qbits;
    s.p_bits = pbits;
    s.insecure_for_testing = 1;
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &s));
    if (!p)
        exit(1);
    return p;
}

/* The smallest secure set that files may carry: N = 4096 (109-bit limit), q0 28 bits, two
 * 24-bit rescale primes, P p_bits (30 or 31: two different parameter sets), scale 2^24. */
static inline ckks_params *ctu_file_params(unsigned p_bits)
{
    ckks_spec spec = {0};
    spec.logn = 12;
    spec.nq = 3;
    spec.q_bits[0] = 28;
    spec.q_bits[1] = spec.q_bits[2] = 24;
    spec.p_bits = p_bits;
    spec.scale = 0x1p24;
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &spec));
    if (!p)
        exit(1);
    return p;
}

/* name inside the test's temporary directory (rotating static buffers, 4 live at a time). */
static inline const char *ctu_tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", tu_tmpdir(), name);
    return b;
}

/* Encrypts values (count) at the top level and default scale with the secret key. */
static inline void ctu_encrypt(ckks_ciphertext *ct, const ckks_secret_key *sk, const double *v,
                               size_t count, size_t level, double scale)
{
    ckks_plaintext pt = {0};
    CHECK_OK(ckks_encode(&pt, sk->params, v, count, level, scale));
    CHECK_OK(ckks_encrypt_sk(ct, sk, &pt));
    ckks_pt_free(&pt);
}

/* Decrypts and decodes count values. */
static inline void ctu_decrypt(double *out, size_t count, const ckks_secret_key *sk,
                               const ckks_ciphertext *ct)
{
    ckks_plaintext pt = {0};
    CHECK_OK(ckks_decrypt(&pt, sk, ct));
    CHECK_OK(ckks_decode(out, count, &pt));
    ckks_pt_free(&pt);
}

#endif
