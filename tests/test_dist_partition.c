/* Partition of a plan between ranks (dist.h), in every build (no MPI needed): every output has
 * one owner; ROWS shares cover every row once and read exactly their inputs; COLS shares are
 * the held inputs; activations stay where their inputs are; work is balanced; the dense step
 * after an activation is split by columns; per-rank peaks shrink with the ranks; mode names
 * and the automatic mode choice. */
#include <stdlib.h>
#include <string.h>

#include "ppnn/dist.h"
#include "ppnn/hnn.h"
#include "testutil.h"

static int ascending(const uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] <= v[i - 1])
            return 0;
    return 1;
}

static uint32_t held_by(const dist_partition *d, size_t k, size_t i)
{
    return k ? d->steps[k - 1].owner[i] : 0;
}

/* Structural invariants of d for plan p; returns the number of violations. */
static size_t check_partition(const dist_partition *d, const hnn_plan *p)
{
    const size_t R = d->nranks;
    size_t bad = 0;
    uint32_t *seen = calloc(1 << 20, sizeof *seen);
    for (size_t k = 0; k < p->nsteps; k++) {
        const hnn_step *s = &p->steps[k];
        const dist_part_step *ps = &d->steps[k];
        for (size_t o = 0; o < s->n_out; o++)
            bad += ps->owner[o] >= R;
        for (size_t t = 0; t < R; t++)
            bad += !ascending(ps->need[t], ps->nneed[t]);
        if (ps->split == DIST_SPLIT_ELEMS) {
            for (size_t o = 0; o < s->n_out; o++)
                bad += ps->owner[o] != held_by(d, k, o);
            for (size_t t = 0; t < R; t++)
                for (size_t j = 0; j < ps->nneed[t]; j++)
                    bad += held_by(d, k, ps->need[t][j]) != t;
        } else if (ps->split == DIST_SPLIT_COLS) {
            size_t total = 0;
            for (size_t t = 0; t < R; t++) {
                total += ps->nneed[t];
                for (size_t j = 0; j < ps->nneed[t]; j++)
                    bad += held_by(d, k, ps->need[t][j]) != t;
                for (size_t j = 0; j < ps->nrows[t]; j++)
                    bad += ps->owner[ps->rows[t][j]] != t;
            }
            bad += total != s->n_in || !s->dense || ps->nneed[ps->bias_rank] == 0;
        } else {
            memset(seen, 0, s->n_out * sizeof *seen);
            for (size_t t = 0; t < R; t++) {
                memset(seen + s->n_out, 0, s->n_in * sizeof *seen);
                for (size_t j = 0; j < ps->nrows[t]; j++) {
                    uint32_t r = ps->rows[t][j];
                    seen[r]++;
                    bad += ps->owner[s->dense ? r : s->row_out[r]] != t;
                    for (size_t x = 0; !s->dense && x < s->row_start[r + 1] - s->row_start[r]; x++)
                        seen[s->n_out + s->col[s->row_start[r] + x]] = 1;
                }
                /* need[t] is exactly the inputs its rows read (all of them for dense rows) */
                size_t nread = 0;
                for (size_t i = 0; i < s->n_in; i++)
                    nread += s->dense ? ps->nrows[t] > 0 : seen[s->n_out + i];
                bad += nread != ps->nneed[t];
                for (size_t j = 0; !s->dense && j < ps->nneed[t]; j++)
                    bad += !seen[s->n_out + ps->need[t][j]];
            }
            for (size_t r = 0; r < s->n_out; r++)
                bad += seen[r] != 1;
        }
    }
    free(seen);
    return bad;
}

/* Largest ROWS work share over the mean (terms per row + 1, as the partition weighs them). */
static double imbalance(const dist_partition *d, const hnn_plan *p, size_t k)
{
    const hnn_step *s = &p->steps[k];
    const dist_part_step *ps = &d->steps[k];
    double total = 0, mx = 0;
    for (size_t t = 0; t < d->nranks; t++) {
        double w = 0;
        for (size_t j = 0; j < ps->nrows[t]; j++) {
            uint32_t r = ps->rows[t][j];
            w += 1.0 + (s->dense ? (double)s->n_in : s->row_start[r + 1] - s->row_start[r]);
        }
        total += w, mx = w > mx ? w : mx;
    }
    return mx / (total / (double)d->nranks);
}

static hnn_plan *plan_of(nn_model *m, size_t levels)
{
    m->norm_mean = 0, m->norm_std = 1;
    for (size_t k = 0; k < m->nlayers; k++)
        m->layers[k].in_range = (nn_range){-2, 2, 2};
    m->out_range = (nn_range){-2, 2, 2};
    for (size_t i = 0; i < m->nparams; i++) /* any weights: only the structure matters */
        m->params[i] = 0.01f * (float)((i * 7919) % 13) - 0.05f;
    hnn_budget b = {"test", levels, 30, 49, 8};
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, m, &b, NULL, 0));
    return p;
}

static void check_model(nn_model *m, size_t levels, const char *name)
{
    hnn_plan *p = plan_of(m, levels);
    if (!p)
        return;
    const size_t n = 256;
    uint64_t single = 0;
    for (size_t R = 1; R <= 6; R++) {
        dist_partition *d = NULL;
        CHECK_OK(dist_partition_new(&d, p, R));
        if (!d)
            break;
        CHECK_MSG(check_partition(d, p) == 0, "%s on %zu ranks", name, R);
        uint64_t worst = 0;
        for (size_t t = 0; t < R; t++) {
            uint64_t b = dist_partition_peak_bytes(d, p, t, n);
            worst = b > worst ? b : worst;
        }
        if (R == 1) {
            single = worst;
            for (size_t k = 0; k < p->nsteps; k++) /* one rank moves nothing */
                CHECK(dist_partition_moves(d, p, k) == 0);
        } else {
            CHECK_MSG(worst < single, "%s: %zu ranks peak %llu >= 1 rank %llu", name, R,
                      (unsigned long long)worst, (unsigned long long)single);
        }
        for (size_t k = 0; k < p->nsteps; k++)
            if (d->steps[k].split == DIST_SPLIT_ROWS && p->steps[k].n_out >= 8 * R)
                CHECK_MSG(imbalance(d, p, k) < 1.35, "%s step %zu on %zu ranks: imbalance %.2f",
                          name, k, R, imbalance(d, p, k));
        if (R == 2) {
            fprintf(stderr, "test_dist_partition %s, 2 ranks:", name);
            for (size_t k = 0; k < p->nsteps; k++)
                fprintf(stderr, " %s/%s:%zu", p->steps[k].name,
                        d->steps[k].split == DIST_SPLIT_ROWS   ? "rows"
                        : d->steps[k].split == DIST_SPLIT_COLS ? "cols"
                                                               : "elems",
                        dist_partition_moves(d, p, k));
            fprintf(stderr, "; peak per rank %.2f of one rank\n", (double)worst / (double)single);
        }
        dist_partition_free(d);
    }
    hnn_plan_free(p);
}

int main(void)
{
    /* CryptoNets shape: the conv's inputs all sit on rank 0 (contiguous rows); the dense
     * step after the activation moves 12 partial sums per rank instead of 720 inputs. */
    nn_model a;
    nn_model_init(&a, "cnets", (nn_shape){1, 24, 24});
    CHECK_OK(nn_model_add_conv2d(&a, 5, 5, 2, 1));
    CHECK_OK(nn_model_add_poly(&a, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_flatten(&a));
    CHECK_OK(nn_model_add_dense(&a, 12));
    CHECK_OK(nn_model_add_poly(&a, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_dense(&a, 3));
    CHECK_OK(nn_model_finish(&a));
    check_model(&a, 5, "cryptonets-shaped");
    hnn_plan *p = plan_of(&a, 5);
    dist_partition *d = NULL;
    CHECK_OK(dist_partition_new(&d, p, 2));
    if (d) {
        CHECK(d->steps[0].split == DIST_SPLIT_ROWS && d->steps[1].split == DIST_SPLIT_ELEMS);
        CHECK(d->steps[2].split == DIST_SPLIT_COLS);
        CHECK(dist_partition_moves(d, p, 2) < p->steps[2].n_in / 4);
        /* contiguous blocks for the first conv: rank 0 takes the first rows */
        CHECK(d->steps[0].rows[0][0] == 0 && d->steps[0].nrows[0] > 0 && d->steps[0].nrows[1] > 0);
    }
    dist_partition_free(d);
    CHECK_ERR(dist_partition_new(&d, p, 0), PPNN_ERR_PARAM);
    hnn_plan_free(p);
    nn_model_free(&a);

    nn_model b; /* the deep architecture on 16x16 inputs: two convs and two avgpools */
    CHECK_OK(nn_arch_build(&b, "deep", NN_ACT_ELEMENT, (nn_shape){1, 16, 16}, 10));
    check_model(&b, 9, "deep");
    nn_model_free(&b);

    CHECK(dist_mode_parse("auto") == DIST_AUTO && dist_mode_parse("model") == DIST_MODEL &&
          dist_mode_parse("data") == DIST_DATA && dist_mode_parse("rows") == -1);
    CHECK(!strcmp(dist_mode_name(DIST_DATA), "data"));
    CHECK(dist_choose_mode(DIST_AUTO, 1, 2) == DIST_MODEL);
    CHECK(dist_choose_mode(DIST_AUTO, 4, 2) == DIST_DATA);
    CHECK(dist_choose_mode(DIST_AUTO, 3, 4) == DIST_MODEL);
    CHECK(dist_choose_mode(DIST_DATA, 1, 2) == DIST_DATA);
    return tu_finish("test_dist_partition");
}
