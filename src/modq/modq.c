/* Modular arithmetic constants and number theory for word-size primes. */
#include "ppnn/modq.h"

#include <assert.h>

void mq_modulus_init(mq_modulus *m, uint64_t q)
{
    assert(q > 2 && (q & 1) && q < ((uint64_t)1 << 61));
    m->q = q;
    m->bits = 64 - (unsigned)__builtin_clzll(q);
    /* floor(2^128 / q) = floor((2^128 - 1) / q) because odd q > 1 does not divide 2^128. */
    mq_u128 ratio = ~(mq_u128)0 / q;
    m->ratio_lo = (uint64_t)ratio;
    m->ratio_hi = (uint64_t)(ratio >> 64);
    m->one_shoup = m->r52 = m->r52_shoup = m->r104 = m->r104_shoup = 0;
    if (q >= ((uint64_t)1 << 50))
        return;
    m->one_shoup = (uint64_t)(((mq_u128)1 << 52) / q);
    m->r52 = (uint64_t)(((mq_u128)1 << 52) % q);
    m->r52_shoup = (uint64_t)(((mq_u128)m->r52 << 52) / q);
    m->r104 = (uint64_t)(((mq_u128)m->r52 * m->r52) % q);
    m->r104_shoup = (uint64_t)(((mq_u128)m->r104 << 52) / q);
}

uint64_t mq_pow(uint64_t a, uint64_t e, const mq_modulus *m)
{
    uint64_t r = 1 % m->q, b = a;
    while (e) {
        if (e & 1)
            r = mq_mul(r, b, m);
        b = mq_mul(b, b, m);
        e >>= 1;
    }
    return r;
}

uint64_t mq_inv(uint64_t a, const mq_modulus *m)
{
    assert(a % m->q != 0);
    return mq_pow(a % m->q, m->q - 2, m); /* Fermat: q is prime */
}
