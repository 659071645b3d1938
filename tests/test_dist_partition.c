/* Partition of a plan between ranks and the ranks' shares (dist.h), in every build (no MPI):
 * the executor's stages; every output has one owner; ROWS shares cover B's rows once, COLS
 * shares A's rows (or the held inputs) once; a whole distributed run simulated in one process
 * (each rank's share on exactly the inputs it lists, partial sums added in rank order) gives
 * hnn_infer's result ciphertexts bit for bit for 1 to 4 ranks; per-rank peaks shrink with the
 * ranks; mode names and the automatic mode choice. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hnn_tu.h"
#include "ppnn/dist.h"
#include "ppnn/hnn.h"
#include "testutil.h"

static size_t out_of_row(const hnn_step *s, size_t r)
{
    return s->dense ? r : s->row_out[r];
}

static int ascending(const uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] <= v[i - 1])
            return 0;
    return 1;
}

/* Structural invariants of d for plan p; returns the number of violations. */
static size_t check_partition(const dist_partition *d, const hnn_plan *p)
{
    const size_t R = d->nranks;
    size_t bad = 0, k = 0;
    for (size_t g = 0; g < d->nstages; g++) {
        const dist_part_stage *s = &d->stages[g];
        const hnn_step *a = s->a != HNN_NO_STEP ? &p->steps[s->a] : NULL, *b = &p->steps[s->b];
        /* stages cover the plan's steps in order */
        bad += (a ? s->a : s->act != HNN_NO_STEP ? s->act : s->b) != k;
        k = s->b + 1;
        /* dense B: COLS after A or an activation; sparse B: COLS only after A (pruned) */
        if (b->dense)
            bad += s->tiling != (a || s->act != HNN_NO_STEP ? HNN_TILE_COLS : HNN_TILE_ROWS);
        else
            bad += s->tiling == HNN_TILE_COLS && !a;
        const size_t nitems = s->tiling == HNN_TILE_ROWS ? b->n_out : a ? a->n_out : s->n_in;
        uint8_t *seen = calloc(nitems ? nitems : 1, 1);
        for (size_t t = 0; t < R; t++) {
            bad += !ascending(s->items[t], s->nitems[t]) + !ascending(s->need[t], s->nneed[t]);
            for (size_t j = 0; j < s->nitems[t]; j++) {
                uint32_t r = s->items[t][j];
                bad += r >= nitems || seen[r]++;
                if (s->tiling == HNN_TILE_ROWS)
                    bad += s->owner[out_of_row(b, r)] != t;
                else if (!a) /* without A a COLS share is what the rank holds */
                    bad += (g ? d->stages[g - 1].owner[r] : 0) != t;
            }
        }
        for (size_t i = 0; i < nitems; i++)
            bad += seen[i] != 1;
        free(seen);
        for (size_t o = 0; o < b->n_out; o++)
            bad += s->owner[o] >= R || (o && s->tiling == HNN_TILE_COLS &&
                                        s->owner[o] < s->owner[o - 1]);
        if (s->tiling == HNN_TILE_COLS)
            bad += s->nitems[s->bias_rank] == 0;
    }
    return bad + (k != p->nsteps);
}

static void free_cts(ckks_ciphertext *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        ckks_ct_free(&c[i]);
    free(c);
}

/* Runs d in one process: each rank's share reads only its need[] list. Returns the outputs. */
static ckks_ciphertext *simulate(const dist_partition *d, const hnn_plan *p,
                                 const ckks_ciphertext *in, const ckks_relin_key *rk)
{
    const size_t R = d->nranks;
    hnn_exec_opts o = {.threads = 1};
    ckks_ciphertext *cur = calloc(p->n_inputs, sizeof *cur);
    for (size_t i = 0; i < p->n_inputs; i++)
        CHECK_OK(ckks_ct_copy(&cur[i], &in[i]));
    size_t ncur = p->n_inputs;
    for (size_t g = 0; g < d->nstages; g++) {
        const dist_part_stage *s = &d->stages[g];
        const hnn_step *b = &p->steps[s->b];
        ckks_ciphertext *next = calloc(b->n_out, sizeof *next);
        ckks_ciphertext **part = calloc(R, sizeof *part);
        for (size_t t = 0; t < R; t++) {
            ckks_ciphertext *mine = calloc(s->nneed[t] + 1, sizeof *mine);
            for (size_t j = 0; j < s->nneed[t]; j++)
                mine[j] = cur[s->need[t][j]]; /* views: the share must not modify them */
            hnn_plan *sp = NULL;
            if (s->nitems[t])
                CHECK_OK(dist_share_plan(&sp, p, d, g, t));
            if (sp && s->tiling == HNN_TILE_ROWS) {
                ckks_ciphertext *out = calloc(s->nitems[t], sizeof *out);
                CHECK(sp->n_inputs == s->nneed[t] && sp->n_outputs == s->nitems[t]);
                CHECK_OK(hnn_infer(out, sp, mine, rk, &o));
                for (size_t j = 0; j < s->nitems[t]; j++)
                    next[out_of_row(b, s->items[t][j])] = out[j];
                free(out);
            } else if (sp) { /* COLS: the share's outputs are partial sums, unfinished */
                hnn_exec_opts raw = o;
                raw.raw_outputs = 1;
                part[t] = calloc(b->n_out, sizeof **part);
                CHECK(sp->n_inputs == s->nneed[t] && sp->n_outputs == b->n_out);
                CHECK_OK(hnn_infer(part[t], sp, mine, rk, &raw));
                for (size_t o2 = 0; o2 < b->n_out; o2++) /* at B's level, before the rescale */
                    CHECK(part[t][o2].level == b->level_in && part[t][o2].size == 3);
            }
            hnn_plan_free(sp);
            free(mine);
        }
        if (s->tiling == HNN_TILE_COLS) {
            for (size_t o2 = 0; o2 < b->n_out; o2++) {
                int first = 1;
                for (size_t t = 0; t < R; t++) {
                    if (!part[t])
                        continue;
                    if (first)
                        next[o2] = part[t][o2], memset(&part[t][o2], 0, sizeof next[o2]);
                    else
                        CHECK_OK(ckks_add_inplace(&next[o2], &part[t][o2]));
                    first = 0;
                }
            }
            CHECK_OK(hnn_step_linear_finish(next, b->n_out, b, rk, 1));
        }
        for (size_t t = 0; t < R; t++)
            free_cts(part[t], part[t] ? b->n_out : 0);
        free(part);
        free_cts(cur, ncur);
        cur = next, ncur = b->n_out;
    }
    return cur;
}

static size_t count_diff(const ckks_ciphertext *a, const ckks_ciphertext *b, size_t n)
{
    size_t bad = 0;
    for (size_t c = 0; c < n; c++) {
        size_t words = a[c].size * (a[c].level + 1) * a[c].params->n;
        bad += !b[c].data || a[c].size != b[c].size || a[c].level != b[c].level ||
               a[c].scale != b[c].scale || memcmp(a[c].data, b[c].data, words * 8) != 0;
    }
    return bad;
}

static void prepare(nn_model *m)
{
    m->norm_mean = 0, m->norm_std = 1;
    for (size_t k = 0; k < m->nlayers; k++)
        m->layers[k].in_range = (nn_range){-4, 4, 4};
    m->out_range = (nn_range){-4, 4, 4};
    for (size_t k = 0; k < m->nlayers; k++) { /* any weights: only exactness is checked */
        nn_layer *l = &m->layers[k];
        for (size_t i = 0; i < l->nweight; i++)
            l->weight[i] = 0.3f * (float)((i * 7919) % 13) / 13.0f - 0.15f;
        for (size_t i = 0; i < l->ncoef; i++)
            l->coef[i] = i < l->ncoef / 3 ? 0.2f : i < 2 * l->ncoef / 3 ? 0.5f : 0.0f;
    }
}

/* Zeroes about 80 % of layer k's weights (deterministically): a pruned layer, run in CSR. */
static void prune(nn_model *m, size_t k)
{
    nn_layer *l = &m->layers[k];
    uint32_t h = 2024;
    for (size_t t = 0; t < l->nweight; t++) {
        h = h * 1103515245u + 12345u;
        if ((h >> 16) % 5)
            l->weight[t] = 0;
    }
}

static void check_model(nn_model *m, size_t nq, const char *name, size_t max_ranks,
                        int prune_layer)
{
    prepare(m);
    if (prune_layer >= 0)
        prune(m, (size_t)prune_layer);
    htu_world w;
    if (!htu_world_new(&w, m, 8, nq, 49, 30, 49)) {
        htu_world_free(&w);
        return;
    }
    const ckks_params *prm = w.prm;
    const hnn_plan *p = w.plan;
    const ckks_relin_key *rk = &w.rk;
    const size_t B = prm->slots, nin = p->n_inputs;
    double *x = malloc(B * sizeof *x);
    ckks_ciphertext *in = calloc(nin, sizeof *in), *ref = calloc(p->n_outputs, sizeof *ref);
    for (size_t k = 0; k < nin; k++) {
        ctu_values(x, B, 30 + k);
        ctu_encrypt(&in[k], &w.sk, x, B, p->top_level, prm->scale);
    }
    hnn_exec_opts o = {.threads = 1};
    CHECK_OK(hnn_infer(ref, p, in, rk, &o));
    if (prune_layer >= 0) { /* the pruned dense layer after the conv: a COLS stage over CSR */
        hnn_schedule *sc = NULL;
        CHECK_OK(hnn_schedule_new(&sc, p, prm->n, NULL));
        CHECK_MSG(sc && sc->stages[0].tiling == HNN_TILE_COLS && sc->stages[0].sparse_cols &&
                  !p->steps[sc->stages[0].b].dense, "%s: stage 0 is not COLS over CSR", name);
        hnn_schedule_free(sc);
    }
    uint64_t single = 0;
    for (size_t R = 1; R <= max_ranks; R++) {
        dist_partition *d = NULL;
        CHECK_OK(dist_partition_new(&d, p, R));
        if (!d)
            break;
        CHECK_MSG(check_partition(d, p) == 0, "%s on %zu ranks", name, R);
        ckks_ciphertext *got = simulate(d, p, in, rk);
        CHECK_MSG(count_diff(ref, got, p->n_outputs) == 0, "%s on %zu ranks: results differ "
                  "from hnn_infer", name, R);
        free_cts(got, p->n_outputs);
        uint64_t worst = 0;
        size_t moves = 0;
        for (size_t t = 0; t < R; t++) {
            uint64_t b = dist_partition_peak_bytes(d, p, t, prm->n, DIST_PEAK_CONSUME);
            worst = b > worst ? b : worst;
            /* every rank streaming its own stage-0 inputs holds no more */
            CHECK(dist_partition_peak_bytes(d, p, t, prm->n, DIST_PEAK_STREAMED) <= b);
        }
        for (size_t g = 0; g < d->nstages; g++)
            moves += dist_partition_moves(d, g);
        if (R == 1) {
            single = worst;
            CHECK(moves == 0);
        } else {
            CHECK_MSG(worst < single, "%s: %zu ranks peak %llu >= 1 rank %llu", name, R,
                      (unsigned long long)worst, (unsigned long long)single);
        }
        fprintf(stderr, "test_dist_partition %s, %zu ranks: %zu stages, %zu ciphertexts move, "
                "peak per rank %.2f of one rank\n", name, R, d->nstages, moves,
                (double)worst / (double)single);
        dist_partition_free(d);
    }
    free_cts(in, nin);
    free_cts(ref, p->n_outputs);
    free(x);
    htu_world_free(&w);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const size_t maxr = tu_reduced() ? 2 : 4;
    /* CryptoNets shape: [conv][act]dense then [act]dense, both split by columns. */
    nn_model a;
    nn_model_init(&a, "cnets", (nn_shape){1, 12, 12});
    CHECK_OK(nn_model_add_conv2d(&a, 5, 5, 2, 1));
    CHECK_OK(nn_model_add_poly(&a, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_flatten(&a));
    CHECK_OK(nn_model_add_dense(&a, 12));
    CHECK_OK(nn_model_add_poly(&a, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_dense(&a, 3));
    CHECK_OK(nn_model_finish(&a));
    check_model(&a, 6, "cryptonets-shaped", maxr, -1);
    hnn_budget bud = {"test", 5, 30, 49, 8};
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, &a, &bud, NULL, 0));
    dist_partition *d = NULL;
    if (p)
        CHECK_OK(dist_partition_new(&d, p, 2));
    if (d) {
        CHECK(d->nstages == 2 && d->stages[0].tiling == HNN_TILE_COLS &&
              d->stages[1].tiling == HNN_TILE_COLS && d->stages[1].a == HNN_NO_STEP);
        /* rank 1 reads a band of the image (plus the conv's halo), not all of it */
        CHECK(d->stages[0].nneed[1] > 0 && d->stages[0].nneed[1] < p->n_inputs);
        dist_partition *none = NULL;
        CHECK_ERR(dist_partition_new(&none, p, 0), PPNN_ERR_PARAM);
        CHECK(none == NULL);
    }
    dist_partition_free(d);
    hnn_plan_free(p);
    nn_model_free(&a);

    /* Pruned: the dense layer after a 405-output conv in CSR, split by columns like the dense
     * one (each rank's share a CSR restricted to its columns). */
    nn_model pr;
    nn_model_init(&pr, "pruned", (nn_shape){1, 20, 20});
    CHECK_OK(nn_model_add_conv2d(&pr, 5, 5, 2, 1));
    CHECK_OK(nn_model_add_poly(&pr, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_flatten(&pr));
    CHECK_OK(nn_model_add_dense(&pr, 12));
    CHECK_OK(nn_model_add_poly(&pr, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_dense(&pr, 3));
    CHECK_OK(nn_model_finish(&pr));
    check_model(&pr, 6, "pruned cryptonets-shaped", maxr, 3);
    nn_model_free(&pr);

    nn_model b; /* two convs and an avgpool: ROWS stages with halos */
    nn_model_init(&b, "twoconv", (nn_shape){1, 10, 10});
    CHECK_OK(nn_model_add_conv2d(&b, 3, 3, 1, 0));
    CHECK_OK(nn_model_add_poly(&b, NN_POLY_CHANNEL));
    CHECK_OK(nn_model_add_avgpool(&b, 2, 2));
    CHECK_OK(nn_model_add_conv2d(&b, 4, 3, 1, 1));
    CHECK_OK(nn_model_add_poly(&b, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_flatten(&b));
    CHECK_OK(nn_model_add_dense(&b, 3));
    CHECK_OK(nn_model_finish(&b));
    check_model(&b, 7, "two convs + avgpool", maxr, -1);
    nn_model_free(&b);

    nn_model c; /* the deep architecture on 16x16 inputs */
    CHECK_OK(nn_arch_build(&c, "deep", NN_ACT_ELEMENT, (nn_shape){1, 16, 16}, 10));
    check_model(&c, 10, "deep", tu_reduced() ? 2 : 3, -1);
    nn_model_free(&c);

    CHECK(dist_mode_parse("auto") == DIST_AUTO && dist_mode_parse("model") == DIST_MODEL &&
          dist_mode_parse("data") == DIST_DATA && dist_mode_parse("rows") == -1);
    CHECK(!strcmp(dist_mode_name(DIST_DATA), "data") && !strcmp(dist_mode_name((dist_mode)7), "?"));
    CHECK(dist_read_parse("auto") == DIST_READ_AUTO && dist_read_parse("shared") == DIST_READ_SHARED &&
          dist_read_parse("root") == DIST_READ_ROOT && dist_read_parse("data") == -1);
    CHECK(!strcmp(dist_read_name(DIST_READ_ROOT), "root") && !strcmp(dist_read_name((dist_read)3), "?"));
    CHECK(dist_choose_mode(DIST_AUTO, 1, 2) == DIST_MODEL);
    CHECK(dist_choose_mode(DIST_AUTO, 4, 2) == DIST_DATA);
    CHECK(dist_choose_mode(DIST_AUTO, 3, 4) == DIST_MODEL);
    CHECK(dist_choose_mode(DIST_DATA, 1, 2) == DIST_DATA);
    return tu_finish("test_dist_partition");
}
