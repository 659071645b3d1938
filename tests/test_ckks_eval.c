/* CKKS evaluator: every operation against plaintext arithmetic, precision in bits against a
 * stated floor; levels and scales tracked down to level 0; mismatches and exhausted levels are
 * errors. Parameters: the n13 preset (scale 2^28, q_0 38 bits). */
#include <string.h>

#include "ckks_tu.h"

/* Floors, bits of max absolute slot error for |values| <= 1 (fresh sk ciphertexts carry ~18
 * bits, see test_ckks_encrypt.c):
 *   linear ops (add, sub, constants, integer and real scalars): the fresh noise, at most
 *     doubled: 15 (17 measured); the integer multiple k=3 amplifies it 3x: 13;
 *   anything followed by a rescale: the rescale rounding r0 + r1*s has coefficient sigma
 *     sqrt(N/18) ~ 2^4.4, slot max ~ 2^(4.4 + 6 + 2) / 2^28 -> ~15.5 bits: floor 13;
 *   down to level 0 (5 products in a chain): each level adds ~1 bit of error: 11. */
#define FLOOR_LINEAR 15.0
#define FLOOR_MUL 13.0
#define FLOOR_CHAIN 11.0

typedef struct fixture {
    ckks_params *p;
    ckks_secret_key sk;
    ckks_relin_key rk;
    size_t h;
    double *x, *y, *want, *got;
    ckks_ciphertext cx, cy, cz;
} fixture;

static void check_bits(fixture *f, const ckks_ciphertext *ct, double floor_bits, const char *what)
{
    ctu_decrypt(f->got, f->h, &f->sk, ct);
    double bits = ctu_bits(f->got, f->want, f->h);
    printf("  %-28s level %zu: %5.1f bits (floor %.0f)\n", what, ct->level, bits, floor_bits);
    CHECK_MSG(bits >= floor_bits, "%s: %.1f bits < %.1f", what, bits, floor_bits);
}

static void test_linear(fixture *f)
{
    size_t h = f->h;
    CHECK_OK(ckks_add(&f->cz, &f->cx, &f->cy));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] + f->y[i];
    check_bits(f, &f->cz, FLOOR_LINEAR, "add");
    CHECK_OK(ckks_sub(&f->cz, &f->cx, &f->cy));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] - f->y[i];
    check_bits(f, &f->cz, FLOOR_LINEAR, "sub");
    CHECK_OK(ckks_negate(&f->cz, &f->cz));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->y[i] - f->x[i];
    check_bits(f, &f->cz, FLOOR_LINEAR, "negate (in place)");
    CHECK_OK(ckks_add_inplace(&f->cz, &f->cx)); /* (y - x) + x */
    memcpy(f->want, f->y, h * sizeof *f->want);
    check_bits(f, &f->cz, FLOOR_LINEAR, "add_inplace");
    CHECK_OK(ckks_add_const(&f->cz, &f->cx, -0.75));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] - 0.75;
    check_bits(f, &f->cz, FLOOR_LINEAR, "add_const");
    ckks_plaintext pt = {0};
    CHECK_OK(ckks_encode(&pt, f->p, f->y, h, f->cx.level, f->cx.scale));
    CHECK_OK(ckks_add_plain(&f->cz, &f->cx, &pt));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] + f->y[i];
    check_bits(f, &f->cz, FLOOR_LINEAR, "add_plain");
    CHECK_OK(ckks_mul_int(&f->cz, &f->cx, -3));
    for (size_t i = 0; i < h; i++)
        f->want[i] = -3 * f->x[i];
    check_bits(f, &f->cz, FLOOR_LINEAR - 2, "mul_int -3");
    /* Real scalar at wscale = q_level: the rescale returns exactly to the input scale. */
    size_t l = f->cx.level;
    CHECK_OK(ckks_mul_scalar(&f->cz, &f->cx, 0.3141592, (double)f->p->q[l]));
    CHECK_OK(ckks_rescale(&f->cz));
    CHECK(f->cz.level == l - 1 && f->cz.scale == f->cx.scale);
    for (size_t i = 0; i < h; i++)
        f->want[i] = 0.3141592 * f->x[i];
    check_bits(f, &f->cz, FLOOR_MUL, "mul_scalar + rescale");
    /* Plaintext product at the default scale, rescaled. */
    CHECK_OK(ckks_mul_plain(&f->cz, &f->cx, &pt));
    CHECK_OK(ckks_rescale(&f->cz));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] * f->y[i];
    check_bits(f, &f->cz, FLOOR_MUL, "mul_plain + rescale");
    ckks_pt_free(&pt);
}

static void test_mul(fixture *f)
{
    size_t h = f->h;
    CHECK_OK(ckks_mul(&f->cz, &f->cx, &f->cy));
    CHECK(f->cz.size == 3);
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] * f->y[i];
    check_bits(f, &f->cz, FLOOR_MUL, "mul (3 components)");
    CHECK_OK(ckks_relinearize(&f->cz, &f->rk));
    CHECK(f->cz.size == 2);
    check_bits(f, &f->cz, FLOOR_MUL, "mul + relin");
    CHECK_OK(ckks_rescale(&f->cz));
    check_bits(f, &f->cz, FLOOR_MUL, "mul + relin + rescale");
    /* Lazy relinearization (the hnn pattern): a linear combination of 3-component squares,
     * relinearized once, then rescaled. */
    ckks_ciphertext sq = {0};
    CHECK_OK(ckks_square(&f->cz, &f->cx));
    CHECK_OK(ckks_square(&sq, &f->cy));
    CHECK(f->cz.size == 3 && sq.size == 3);
    CHECK_OK(ckks_mul_int(&sq, &sq, 2));
    CHECK_OK(ckks_sub(&f->cz, &f->cz, &sq));
    CHECK_OK(ckks_relinearize(&f->cz, &f->rk));
    CHECK_OK(ckks_rescale(&f->cz));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] * f->x[i] - 2 * f->y[i] * f->y[i];
    check_bits(f, &f->cz, FLOOR_MUL - 1, "x^2 - 2y^2, relin, rescale");
    /* Mixed sizes: x^2 (3 components, scale^2) + y brought to scale^2 by a real scalar. */
    CHECK_OK(ckks_square(&f->cz, &f->cx));
    CHECK_OK(ckks_mul_scalar(&sq, &f->cy, 1.0, f->cx.scale));
    CHECK(sq.size == 2);
    CHECK_OK(ckks_add(&f->cz, &sq, &f->cz));
    CHECK(f->cz.size == 3);
    CHECK_OK(ckks_sub(&f->cz, &f->cz, &sq));
    CHECK_OK(ckks_sub(&f->cz, &sq, &f->cz)); /* y - x^2 */
    CHECK_OK(ckks_relinearize(&f->cz, &f->rk));
    CHECK_OK(ckks_rescale(&f->cz));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->y[i] - f->x[i] * f->x[i];
    check_bits(f, &f->cz, FLOOR_MUL, "y - x^2 (mixed sizes)");
    /* Rescaling a 3-component ciphertext works, at a cost: the rounding error of c_2 is
     * multiplied by s^2 (~2^6 per coefficient), about 6 bits: floor FLOOR_MUL - 7. */
    CHECK_OK(ckks_square(&f->cz, &f->cx));
    CHECK_OK(ckks_rescale(&f->cz));
    CHECK(f->cz.size == 3);
    CHECK_OK(ckks_relinearize(&f->cz, &f->rk));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] * f->x[i];
    check_bits(f, &f->cz, FLOOR_MUL - 7, "square, rescale, relin");
    ckks_ct_free(&sq);
    /* Aliased output: x := x * x in place. */
    ckks_ciphertext t = {0};
    CHECK_OK(ckks_ct_copy(&t, &f->cx));
    CHECK_OK(ckks_mul(&t, &t, &f->cy));
    CHECK_OK(ckks_relinearize(&t, &f->rk));
    CHECK_OK(ckks_rescale(&t));
    for (size_t i = 0; i < h; i++)
        f->want[i] = f->x[i] * f->y[i];
    check_bits(f, &t, FLOOR_MUL, "mul in place");
    ckks_ct_free(&t);
}

/* x^(2^k)-style chain (x <- x*y with |y| <= 1 kept near 1), down to level 0; then one more
 * rescale must fail with PPNN_ERR_DEPTH. */
static void test_chain(fixture *f)
{
    size_t h = f->h;
    ckks_ciphertext acc = {0}, fy = {0};
    double *yy = malloc(h * sizeof *yy);
    for (size_t i = 0; i < h; i++)
        yy[i] = 0.5 + 0.5 * f->y[i] * f->y[i];
    CHECK_OK(ckks_ct_copy(&acc, &f->cx));
    memcpy(f->want, f->x, h * sizeof *f->want);
    while (acc.level > 0) {
        ctu_encrypt(&fy, &f->sk, yy, h, acc.level, acc.scale);
        CHECK_OK(ckks_mul(&acc, &acc, &fy));
        CHECK_OK(ckks_relinearize(&acc, &f->rk));
        CHECK_OK(ckks_rescale(&acc));
        for (size_t i = 0; i < h; i++)
            f->want[i] *= yy[i];
    }
    check_bits(f, &acc, FLOOR_CHAIN, "chain of products");
    CHECK_ERR(ckks_rescale(&acc), PPNN_ERR_DEPTH);
    /* At level 0 a product's scale 2^56 exceeds q_0 (38 bits): refused, not garbage. */
    ctu_encrypt(&fy, &f->sk, yy, h, 0, acc.scale);
    CHECK_ERR(ckks_mul(&acc, &acc, &fy), PPNN_ERR_DEPTH);
    CHECK(strstr(ppnn_last_error(), "level 0") != NULL);
    CHECK_ERR(ckks_mul_scalar(&acc, &acc, 0.5, (double)f->p->q[0]), PPNN_ERR_DEPTH);
    CHECK(acc.level == 0 && acc.size == 2);
    CHECK(acc.level == 0);
    ckks_ct_free(&acc);
    ckks_ct_free(&fy);
    free(yy);
}

static void test_errors(fixture *f)
{
    ckks_ciphertext low = {0};
    CHECK_OK(ckks_ct_copy(&low, &f->cy));
    CHECK_OK(ckks_mod_switch(&low, low.level - 1));
    CHECK(low.level == f->cy.level - 1);
    CHECK_ERR(ckks_add(&f->cz, &f->cx, &low), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "level") != NULL);
    CHECK_ERR(ckks_mul(&f->cz, &f->cx, &low), PPNN_ERR_MISMATCH);
    CHECK_ERR(ckks_mod_switch(&low, low.level + 1), PPNN_ERR_PARAM);
    /* Mod-switched ciphertexts still decrypt to the same values. */
    memcpy(f->want, f->y, f->h * sizeof *f->want);
    check_bits(f, &low, FLOOR_LINEAR, "mod_switch");
    /* Scale mismatch: x*y (scale^2) + x. */
    CHECK_OK(ckks_mul(&f->cz, &f->cx, &f->cy));
    CHECK_ERR(ckks_add(&f->cz, &f->cz, &f->cx), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "scale") != NULL);
    CHECK_ERR(ckks_mul(&low, &f->cz, &f->cz), PPNN_ERR_PARAM); /* 3 components */
    CHECK_ERR(ckks_mul_scalar(&f->cz, &f->cx, 1e45, 0x1p40), PPNN_ERR_NUMERIC); /* > Q_5/2 */
    CHECK_ERR(ckks_add_const(&f->cz, &f->cx, 1e300), PPNN_ERR_NUMERIC);
    /* Different parameter sets. */
    ckks_params *other = ctu_params(5, 2, 30, 30, 30);
    ckks_secret_key sk2;
    CHECK_OK(ckks_keygen_secret(&sk2, other));
    double v[2] = {1, 2};
    ckks_ciphertext c2 = {0};
    ctu_encrypt(&c2, &sk2, v, 2, 1, f->cx.scale);
    CHECK_ERR(ckks_add(&f->cz, &f->cx, &c2), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "parameter") != NULL);
    CHECK_ERR(ckks_relinearize(&c2, &f->rk), PPNN_ERR_MISMATCH);
    ckks_ct_free(&c2);
    ckks_secret_key_free(&sk2);
    ckks_params_free(other);
    ckks_ct_free(&low);
}

/* Builds the preset's parameters, keys and random x, y (seeds sx, sy); x, y encrypted at the
 * top level. Returns 0 if the parameters could not be built. */
static int fixture_init(fixture *f, const char *preset, uint64_t sx, uint64_t sy)
{
    memset(f, 0, sizeof *f);
    ckks_spec s;
    CHECK_OK(ckks_preset(&s, preset));
    CHECK_OK(ckks_params_new(&f->p, &s));
    if (!f->p)
        return 0;
    CHECK_OK(ckks_keygen_secret(&f->sk, f->p));
    CHECK_OK(ckks_keygen_relin(&f->rk, &f->sk));
    f->h = f->p->slots;
    f->x = malloc(f->h * sizeof(double));
    f->y = malloc(f->h * sizeof(double));
    f->want = malloc(f->h * sizeof(double));
    f->got = malloc(f->h * sizeof(double));
    ctu_values(f->x, f->h, sx);
    ctu_values(f->y, f->h, sy);
    size_t top = f->p->nq - 1;
    ctu_encrypt(&f->cx, &f->sk, f->x, f->h, top, f->p->scale);
    ctu_encrypt(&f->cy, &f->sk, f->y, f->h, top, f->p->scale);
    return 1;
}

static void fixture_free(fixture *f)
{
    ckks_ct_free(&f->cx);
    ckks_ct_free(&f->cy);
    ckks_ct_free(&f->cz);
    ckks_relin_key_free(&f->rk);
    ckks_secret_key_free(&f->sk);
    ckks_params_free(f->p);
    free(f->x);
    free(f->y);
    free(f->want);
    free(f->got);
}

/* ckks_rescale_split: at every level, the split layout of a ciphertext rescales to exactly
 * ckks_rescale's words, level and scale; level 0 is refused. */
static void test_rescale_split(fixture *f)
{
    const size_t n = f->p->n;
    ckks_ciphertext a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    for (size_t l = f->p->nq - 1; l >= 1; l--) {
        CHECK_OK(ckks_ct_copy(&a, &f->cx));
        CHECK_OK(ckks_mod_switch(&a, l));
        CHECK_OK(ckks_mul_int_to_scale(&a, &a, 3 + (int64_t)l, a.scale * (double)(3 + l)));
        CHECK_OK(ckks_ct_init(&b, f->p, l, 2, a.scale));
        CHECK_OK(ckks_ct_reserve(&b, (2 * l + 2) * n));
        for (size_t k = 0; k < 2; k++)
            for (size_t i = 0; i <= l; i++)
                memcpy(ckks_ct_split_poly(&b, k, i), ckks_ct_poly(&a, k, i), n * sizeof(uint64_t));
        CHECK_OK(ckks_rescale(&a));
        CHECK_OK(ckks_rescale_split(&b));
        CHECK(b.level == l - 1 && b.size == 2 && b.scale == a.scale);
        CHECK_MSG(memcmp(a.data, b.data, 2 * l * n * sizeof(uint64_t)) == 0,
                  "rescale_split at level %zu differs from rescale", l);
    }
    CHECK_ERR(ckks_rescale_split(&b), PPNN_ERR_DEPTH);
    ckks_ct_free(&a);
    ckks_ct_free(&b);
}

/* n14 (scale 2^34): x * y^10 through all 10 levels. Each rescale adds ~2^-21 (see
 * FLOOR_MUL with 6 more bits of scale), ten of them ~2^-19.4; ~18.6 measured, floor 17. */
static void test_n14_depth(void)
{
    fixture f;
    if (!fixture_init(&f, "n14", 31, 32))
        return;
    for (size_t i = 0; i < f.h; i++)
        f.y[i] = 0.5 + 0.5 * fabs(f.y[i]);
    memcpy(f.want, f.x, f.h * sizeof *f.want);
    size_t levels = 0;
    while (f.cx.level > 0) {
        ctu_encrypt(&f.cy, &f.sk, f.y, f.h, f.cx.level, f.cx.scale);
        CHECK_OK(ckks_mul(&f.cx, &f.cx, &f.cy));
        CHECK_OK(ckks_relinearize(&f.cx, &f.rk));
        CHECK_OK(ckks_rescale(&f.cx));
        for (size_t i = 0; i < f.h; i++)
            f.want[i] *= f.y[i];
        levels++;
    }
    CHECK(levels >= 9);
    check_bits(&f, &f.cx, 17, "n14: 10 products");
    CHECK_ERR(ckks_rescale(&f.cx), PPNN_ERR_DEPTH);
    fixture_free(&f);
}

int main(void)
{
    fixture f;
    if (fixture_init(&f, "n13", 1, 2)) {
        test_linear(&f);
        test_mul(&f);
        test_chain(&f);
        test_rescale_split(&f);
        test_errors(&f);
        fixture_free(&f);
    }
    test_n14_depth();
    return tu_finish("test_ckks_eval");
}
