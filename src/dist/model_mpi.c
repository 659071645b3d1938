/* Model-parallel execution (dist.h): every rank runs its share of every step of the plan, as
 * the partition says; the ciphertexts a share reads arrive by point-to-point messages.
 *
 * Each rank keeps the current vector as an array of one ciphertext struct per element, with
 * data only where it holds the element. A share runs through the same hnn step functions as
 * hnn_infer, on a derived step (its rows, renumbered into a compact input array), so every
 * output is computed by the same kernel from the same inputs: the result equals hnn_infer's
 * bit for bit. A COLS share sums over the columns it holds; the exact residues of the partial
 * sums add up mod q_i to the exact residues of the whole sum.
 *
 * The unit of work is a step's rows; the streaming executor's tiles (groups of output rows of
 * a step with the inputs they read) are the same unit, so a schedule can later hand its tiles
 * to ranks instead of the per-step rows used here. */
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_inner.h"

typedef struct vec {
    size_t n;
    ckks_ciphertext *ct; /* n structs; data where this rank holds the element */
    int borrowed;        /* rank 0's view of the caller's inputs: never freed */
} vec;

static void vec_release(vec *v)
{
    for (size_t i = 0; !v->borrowed && v->ct && i < v->n; i++)
        ckks_ct_free(&v->ct[i]);
    free(v->ct);
    memset(v, 0, sizeof *v);
}

static ppnn_status vec_new(vec *v, size_t n)
{
    v->n = n, v->borrowed = 0;
    v->ct = calloc(n ? n : 1, sizeof *v->ct);
    return v->ct ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
}

static uint32_t owner_in(const dist_partition *d, size_t k, size_t i)
{
    return k ? d->steps[k - 1].owner[i] : 0;
}

/* The step rank `me` runs for a ROWS share, with its compact input list need[me]. */
typedef struct derived {
    hnn_step s;
    uint32_t *row_start, *col, *row_out;
    double *w, *bias;
} derived;

static void derived_free(derived *d)
{
    free(d->row_start), free(d->col), free(d->row_out), free(d->w), free(d->bias);
    memset(d, 0, sizeof *d);
}

static ppnn_status derive_rows(derived *d, const hnn_step *s, const dist_part_step *ps,
                               size_t me)
{
    memset(d, 0, sizeof *d);
    d->s = *s;
    const size_t nr = ps->nrows[me];
    const uint32_t *rows = ps->rows[me];
    d->s.n_out = nr;
    if (s->dense) { /* rows are a contiguous block of outputs; every input is read */
        d->s.w = s->w + (nr ? rows[0] : 0) * s->n_in;
        d->s.bias = s->bias + (nr ? rows[0] : 0);
        return PPNN_OK;
    }
    size_t nnz = 0;
    for (size_t j = 0; j < nr; j++)
        nnz += s->row_start[rows[j] + 1] - s->row_start[rows[j]];
    uint32_t *map = malloc((s->n_in ? s->n_in : 1) * sizeof *map);
    d->row_start = malloc((nr + 1) * sizeof *d->row_start);
    d->col = malloc((nnz ? nnz : 1) * sizeof *d->col);
    d->row_out = malloc((nr ? nr : 1) * sizeof *d->row_out);
    d->w = malloc((nnz ? nnz : 1) * sizeof *d->w);
    d->bias = malloc((nr ? nr : 1) * sizeof *d->bias);
    if (!map || !d->row_start || !d->col || !d->row_out || !d->w || !d->bias) {
        free(map);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    for (size_t j = 0; j < ps->nneed[me]; j++)
        map[ps->need[me][j]] = (uint32_t)j;
    size_t t = 0;
    for (size_t j = 0; j < nr; j++) {
        uint32_t r = rows[j];
        d->row_start[j] = (uint32_t)t;
        d->row_out[j] = (uint32_t)j;
        d->bias[j] = s->bias[s->row_out[r]];
        for (size_t x = s->row_start[r]; x < s->row_start[r + 1]; x++, t++)
            d->col[t] = map[s->col[x]], d->w[t] = s->w[x];
    }
    d->row_start[nr] = (uint32_t)t;
    free(map);
    d->s.n_in = ps->nneed[me];
    d->s.row_start = d->row_start, d->s.col = d->col, d->s.row_out = d->row_out;
    d->s.w = d->w, d->s.bias = d->bias, d->s.nnz = nnz;
    return PPNN_OK;
}

/* COLS: W[:, need[me]] and the bias on one rank only (zero elsewhere: it is added once). */
static ppnn_status derive_cols(derived *d, const hnn_step *s, const dist_part_step *ps,
                               size_t me)
{
    memset(d, 0, sizeof *d);
    d->s = *s;
    const size_t nc = ps->nneed[me];
    d->w = malloc((s->n_out * nc > 0 ? s->n_out * nc : 1) * sizeof *d->w);
    d->bias = calloc(s->n_out ? s->n_out : 1, sizeof *d->bias);
    if (!d->w || !d->bias)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t o = 0; o < s->n_out; o++)
        for (size_t j = 0; j < nc; j++)
            d->w[o * nc + j] = s->w[o * s->n_in + ps->need[me][j]];
    if (me == ps->bias_rank)
        memcpy(d->bias, s->bias, s->n_out * sizeof *d->bias);
    d->s.n_in = nc, d->s.w = d->w, d->s.bias = d->bias;
    return PPNN_OK;
}

/* Compact shallow copies v->ct[idx[0 .. n)] (read-only views sharing the data). */
static ckks_ciphertext *gather_view(const vec *v, const uint32_t *idx, size_t n)
{
    ckks_ciphertext *c = malloc((n ? n : 1) * sizeof *c);
    for (size_t j = 0; c && j < n; j++)
        c[j] = v->ct[idx[j]];
    return c;
}

static ppnn_status run_elems(vec *v, const hnn_step *s, const dist_part_step *ps, size_t me,
                             const hnn_exec_opts *o)
{
    const size_t n = ps->nneed[me];
    const uint32_t *idx = ps->need[me];
    if (!n)
        return PPNN_OK;
    hnn_step d = *s;
    d.n_in = d.n_out = n;
    double *beta = malloc(n * sizeof *beta);
    uint8_t *square = malloc(n);
    ckks_ciphertext *in = gather_view(v, idx, n);
    /* In place, as hnn_infer, except on the caller's inputs (rank 0's borrowed vector). */
    ckks_ciphertext *out = v->borrowed ? calloc(n, sizeof *out) : in;
    vec w = {0, NULL, 0};
    ppnn_status st = !beta || !square || !in || !out ? ppnn_fail(PPNN_ERR_NOMEM, "out of memory")
                                                     : PPNN_OK;
    if (!st && v->borrowed)
        st = vec_new(&w, v->n);
    for (size_t j = 0; !st && j < n; j++)
        beta[j] = s->beta[idx[j]], square[j] = s->square[idx[j]];
    d.beta = beta, d.square = square;
    if (!st)
        st = hnn_step_act(out, in, &d, o);
    if (out && v->borrowed) {
        for (size_t j = 0; j < n; j++) {
            if (w.ct)
                w.ct[idx[j]] = out[j];
            else
                ckks_ct_free(&out[j]);
        }
        if (w.ct) {
            vec_release(v);
            *v = w;
        }
        free(out);
    } else if (out) { /* the structs may have been reshaped (size 3): store them back */
        for (size_t j = 0; j < n; j++)
            v->ct[idx[j]] = out[j];
    }
    free(in);
    free(beta), free(square);
    return st;
}

/* Sends each peer the inputs of `need` it lacks, receives its own. */
static ppnn_status exchange_inputs(dist_ctx *dc, vec *v, const dist_partition *part, size_t k,
                                   const ckks_params *prm)
{
    const dist_part_step *ps = &part->steps[k];
    const size_t R = part->nranks, me = (size_t)dc->rank;
    dist_xfer x;
    ppnn_status st = _dist_xfer_new(&x, R);
    for (size_t t = 0; t < R && !st; t++) {
        if (t == me)
            continue;
        size_t ns = 0, nr = 0;
        for (size_t j = 0; j < ps->nneed[t]; j++)
            ns += owner_in(part, k, ps->need[t][j]) == me;
        for (size_t j = 0; j < ps->nneed[me]; j++)
            nr += owner_in(part, k, ps->need[me][j]) == t;
        if ((st = _dist_xfer_reserve(&x, t, ns, nr)))
            break;
        ns = nr = 0;
        for (size_t j = 0; j < ps->nneed[t]; j++)
            if (owner_in(part, k, ps->need[t][j]) == me)
                x.send[t][ns++] = &v->ct[ps->need[t][j]];
        for (size_t j = 0; j < ps->nneed[me]; j++)
            if (owner_in(part, k, ps->need[me][j]) == t)
                x.recv[t][nr++] = &v->ct[ps->need[me][j]];
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    _dist_xfer_free(&x, R);
    return st;
}

static ppnn_status run_rows(vec *v, const hnn_step *s, const dist_part_step *ps, size_t me,
                            const ckks_relin_key *rk, const hnn_exec_opts *o)
{
    const size_t nr = ps->nrows[me];
    vec w;
    ppnn_status st = vec_new(&w, s->n_out);
    if (st)
        return st;
    derived d;
    ckks_ciphertext *in = gather_view(v, ps->need[me], ps->nneed[me]);
    ckks_ciphertext *out = calloc(nr ? nr : 1, sizeof *out);
    if (!in || !out)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st)
        st = derive_rows(&d, s, ps, me);
    if (!st && nr) {
        st = hnn_step_linear_sums(out, in, &d.s, o);
        if (!st)
            st = hnn_step_linear_finish(out, nr, &d.s, rk, o->threads);
    }
    derived_free(&d);
    for (size_t j = 0; j < nr; j++) {
        size_t g = s->dense ? ps->rows[me][j] : s->row_out[ps->rows[me][j]];
        w.ct[g] = out[j];
    }
    free(in), free(out);
    vec_release(v);
    *v = w;
    return st;
}

/* COLS: partial sums over the held columns, sent to each output's owner and added there. */
static ppnn_status run_cols(dist_ctx *dc, vec *v, const hnn_step *s, const dist_part_step *ps,
                            const ckks_relin_key *rk, const hnn_exec_opts *o,
                            const ckks_params *prm)
{
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank, nown = ps->nrows[me];
    vec part, w;
    dist_xfer x;
    memset(&x, 0, sizeof x);
    derived d;
    memset(&d, 0, sizeof d);
    ppnn_status st = vec_new(&part, s->n_out);
    if (st)
        return st;
    if ((st = vec_new(&w, s->n_out))) {
        vec_release(&part);
        return st;
    }
    ckks_ciphertext *in = gather_view(v, ps->need[me], ps->nneed[me]);
    if (!in)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st && ps->nneed[me] && !(st = derive_cols(&d, s, ps, me)))
        st = hnn_step_linear_sums(part.ct, in, &d.s, o);
    derived_free(&d);
    free(in);
    vec_release(v); /* the held inputs are consumed */
    if (!st)
        st = _dist_xfer_new(&x, R);
    ckks_ciphertext **tmp = calloc(R, sizeof *tmp);
    if (!st && !tmp)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t t = 0; t < R && !st; t++) {
        if (t == me)
            continue;
        size_t ns = ps->nneed[me] ? ps->nrows[t] : 0, nr = ps->nneed[t] ? nown : 0;
        tmp[t] = calloc(nr ? nr : 1, sizeof **tmp);
        if (!tmp[t] || (st = _dist_xfer_reserve(&x, t, ns, nr))) {
            st = st ? st : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; j < ns; j++)
            x.send[t][j] = &part.ct[ps->rows[t][j]];
        for (size_t j = 0; j < nr; j++)
            x.recv[t][j] = &tmp[t][j];
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    /* Own outputs: the partial sums of every contributing rank, in rank order. */
    ckks_ciphertext *acc = calloc(nown ? nown : 1, sizeof *acc);
    if (!st && !acc)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < nown && !st; j++) {
        int first = 1;
        for (size_t t = 0; t < R && !st; t++) {
            if (!ps->nneed[t])
                continue;
            ckks_ciphertext *c = t == me ? &part.ct[ps->rows[me][j]] : &tmp[t][j];
            if (first)
                acc[j] = *c, memset(c, 0, sizeof *c), first = 0;
            else
                st = ckks_add_inplace(&acc[j], c);
        }
    }
    if (!st && nown)
        st = hnn_step_linear_finish(acc, nown, s, rk, o->threads);
    for (size_t j = 0; acc && j < nown; j++)
        w.ct[ps->rows[me][j]] = acc[j];
    free(acc);
    for (size_t t = 0; tmp && t < R; t++) {
        for (size_t j = 0; tmp[t] && j < x.nrecv[t]; j++)
            ckks_ct_free(&tmp[t][j]);
        free(tmp[t]);
    }
    free(tmp);
    if (x.nsend)
        _dist_xfer_free(&x, R);
    vec_release(&part);
    *v = w;
    return st;
}

/* Rank 0 receives every result into out[0 .. n) (its own moved, the others' received). */
static ppnn_status gather_results(dist_ctx *dc, ckks_ciphertext *out, vec *v,
                                  const dist_part_step *ps, const ckks_params *prm)
{
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank, n = v->n;
    dist_xfer x;
    ppnn_status st = _dist_xfer_new(&x, R);
    for (size_t t = 1; t < R && !st; t++) {
        if (me != 0 && t != me)
            continue;
        size_t cnt = 0;
        for (size_t o = 0; o < n; o++)
            cnt += ps->owner[o] == t;
        if ((st = _dist_xfer_reserve(&x, me ? 0 : t, me ? cnt : 0, me ? 0 : cnt)))
            break;
        cnt = 0;
        for (size_t o = 0; o < n; o++)
            if (ps->owner[o] == t) {
                if (me)
                    x.send[0][cnt++] = &v->ct[o];
                else
                    x.recv[t][cnt++] = &out[o];
            }
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    if (!st && me == 0)
        for (size_t o = 0; o < n; o++)
            if (ps->owner[o] == 0) {
                ckks_ct_free(&out[o]);
                out[o] = v->ct[o];
                memset(&v->ct[o], 0, sizeof v->ct[o]);
            }
    if (x.nsend)
        _dist_xfer_free(&x, R);
    return st;
}

ppnn_status dist_infer_model(dist_ctx *dc, ckks_ciphertext *out, const hnn_plan *p,
                             const ckks_ciphertext *in, const ckks_relin_key *rk,
                             const hnn_exec_opts *opts, uint64_t budget, dist_stats *stats)
{
    hnn_exec_opts dflt = {.threads = 0};
    const hnn_exec_opts *o = opts ? opts : &dflt;
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    const ckks_params *prm = rk ? rk->params : NULL;
    dist_stats local;
    dist_stats *ss = stats ? stats : &local;
    memset(ss, 0, sizeof *ss);
    dist_partition *part = NULL;
    ppnn_status st = PPNN_OK;
    if (!prm)
        st = ppnn_fail(PPNN_ERR_PARAM, "distributed inference needs the relinearization key");
    else if (p->nsteps > DIST_MAX_STEPS)
        st = ppnn_fail(PPNN_ERR_UNSUPPORTED, "plan of %zu steps (at most %d)", p->nsteps,
                       DIST_MAX_STEPS);
    if (!st)
        st = dist_partition_new(&part, p, R);
    /* Every rank computes every rank's peak: all refuse together, naming the minimum. */
    uint64_t worst = 0;
    for (size_t t = 0; !st && t < R; t++) {
        uint64_t b = dist_partition_peak_bytes(part, p, t, prm->n);
        worst = b > worst ? b : worst;
        if (t == me)
            ss->peak_estimate = b;
    }
    if (!st && budget && worst > budget)
        st = ppnn_fail(PPNN_ERR_NOMEM, "the model needs about %.0f MB per rank on %zu ranks "
                       "(budget %.0f MB per rank): use more ranks or a larger --memory",
                       (double)worst / 1048576.0, R, (double)budget / 1048576.0);
    if (!st && me == 0) /* the inputs are checked where they are: rank 0 */
        for (size_t i = 0; i < p->n_inputs && !st; i++)
            if (!ckks_params_same(in[i].params, prm) || in[i].level != p->top_level ||
                in[i].size != 2)
                st = ppnn_fail(PPNN_ERR_MISMATCH, "input ciphertext %zu: parameters, level "
                               "%zu or size %zu differ from the plan's inputs (level %zu, "
                               "size 2)", i, in[i].level, in[i].size, p->top_level);
    vec v = {p->n_inputs, NULL, 1};
    if (!st && !(v.ct = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *v.ct)))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st && me == 0)
        memcpy(v.ct, in, p->n_inputs * sizeof *in);
    if ((st = dist_agree(dc, st))) {
        free(v.ct);
        dist_partition_free(part);
        return st;
    }
    hnn_exec_opts ro = *o;
    ro.progress = NULL;
    for (size_t k = 0; k < p->nsteps && !st; k++) {
        const hnn_step *s = &p->steps[k];
        const dist_part_step *ps = &part->steps[k];
        double t0 = MPI_Wtime(), c0 = dc->comm_seconds;
        uint64_t s0 = dc->sent, r0 = dc->recv;
        st = dist_agree(dc, _dist_fault(dc, k));
        if (!st && ps->split == DIST_SPLIT_ELEMS) {
            st = run_elems(&v, s, ps, me, &ro);
        } else if (!st && ps->split == DIST_SPLIT_ROWS) {
            if (!(st = exchange_inputs(dc, &v, part, k, prm)))
                st = run_rows(&v, s, ps, me, rk, &ro);
        } else if (!st) {
            st = run_cols(dc, &v, s, ps, rk, &ro, prm);
        }
        st = dist_agree(dc, st);
        if (!st && k + 1 == p->nsteps)
            st = gather_results(dc, out, &v, ps, prm);
        double dt = MPI_Wtime() - t0, dc_ = dc->comm_seconds - c0;
        ss->comm_seconds[k] = dc_;
        ss->compute_seconds[k] = dt - dc_;
        ss->bytes_sent[k] = dc->sent - s0, ss->bytes_recv[k] = dc->recv - r0;
        ss->compute_total += dt - dc_, ss->comm_total += dc_;
        ss->nsteps = k + 1;
        if (!st && o->progress)
            o->progress(o->progress_ctx, k, s, dt);
    }
    vec_release(&v);
    dist_partition_free(part);
    return st;
}
