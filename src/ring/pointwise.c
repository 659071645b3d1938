/* Portable pointwise kernels on one prime (add, sub, neg, mul, muladd, scalar mul, extension)
 * and the portable kernel table. */
#include "inner.h"

void ring_add_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const uint64_t q = p->q;
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_add(a[j], b[j], q);
}

void ring_sub_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    const uint64_t q = p->q;
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_sub(a[j], b[j], q);
}

void ring_neg_portable(uint64_t *r, const uint64_t *a, const ring_prime *p)
{
    const uint64_t q = p->q;
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_neg(a[j], q);
}

void ring_mul_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_mul(a[j], b[j], &p->mod);
}

/* r + a*b <= (q-1) + (q-1)^2 < 2^122: one 128-bit Barrett reduction. */
void ring_muladd_portable(uint64_t *r, const uint64_t *a, const uint64_t *b,
                            const ring_prime *p)
{
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_reduce128((mq_u128)a[j] * b[j] + r[j], &p->mod);
}

void ring_mul_scalar_portable(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    const uint64_t q = p->q, ws = mq_shoup(w, q);
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_mul_shoup(a[j], w, ws, q);
}

/* r += w*a: mq_mul_shoup is canonical, one conditional subtraction for the sum. */
void ring_muladd_scalar_portable(uint64_t *r, const uint64_t *a, uint64_t w,
                                   const ring_prime *p)
{
    const uint64_t q = p->q, ws = mq_shoup(w, q);
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_add(r[j], mq_mul_shoup(a[j], w, ws, q), q);
}

/* a + q - b is in (0, 2q) < 2^62: a valid Shoup input. */
void ring_sub_mul_scalar_portable(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                                  const ring_prime *p)
{
    const uint64_t q = p->q, ws = mq_shoup(w, q);
    for (size_t j = 0; j < p->n; j++)
        r[j] = mq_mul_shoup(a[j] + q - b[j], w, ws, q);
}

void ring_extend_single_portable(uint64_t *r, const uint64_t *a, const ring_prime *from,
                                 const ring_prime *to)
{
    const uint64_t qf = from->q, half = qf >> 1, qt = to->q;
    for (size_t j = 0; j < from->n; j++) {
        uint64_t x = a[j];
        /* x > qf/2 stands for the negative value x - qf. */
        r[j] = x > half ? mq_neg(mq_reduce64(qf - x, &to->mod), qt) : mq_reduce64(x, &to->mod);
    }
}

const ring_kernels ring_kernels_portable = {
    .name = "portable",
    .impl = RING_IMPL_PORTABLE,
    .ntt_forward = ring_ntt_forward_portable,
    .ntt_inverse = ring_ntt_inverse_portable,
    .add = ring_add_portable,
    .sub = ring_sub_portable,
    .neg = ring_neg_portable,
    .mul = ring_mul_portable,
    .muladd = ring_muladd_portable,
    .mul_scalar = ring_mul_scalar_portable,
    .extend_single = ring_extend_single_portable,
    .muladd_scalar = ring_muladd_scalar_portable,
    .sub_mul_scalar = ring_sub_mul_scalar_portable,
};
