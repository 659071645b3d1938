/* The MPI job (dist.h): start-up, agreement on failures, broadcasts of the model and the
 * relinearization key, and the exchange of ciphertexts between ranks. */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/mpi_inner.h"

#define MSG_LEN 512
#define TAG_HEADER 1
#define TAG_DATA 2
/* Header of a ciphertext on the wire: level, size | seeded << 8, scale (bits), seed (32 bytes). */
#define HDR_WORDS 7

/* mpirun stops the other ranks with SIGTERM when one rank dies (a crash, a kill, an exit
 * without MPI_Finalize). Rank 0 then says so in one line; nothing has been written, since the
 * result is written only after every rank agreed that its work succeeded. */
static void on_term_root(int sig)
{
    static const char msg[] = "ppnn: error: the MPI job was stopped (another rank failed or was "
                              "killed); no result was written\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(128 + sig);
}

static void on_term_quiet(int sig)
{
    _exit(128 + sig);
}

ppnn_status dist_init(dist_ctx **out, int *argc, char ***argv)
{
    *out = NULL;
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ppnn_fail(PPNN_ERR_IO, "MPI_Init failed");
    dist_ctx *dc = calloc(1, sizeof *dc);
    if (!dc)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    dc->comm = MPI_COMM_WORLD;
    MPI_Comm_rank(dc->comm, &dc->rank);
    MPI_Comm_size(dc->comm, &dc->size);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dc->rank == 0 ? on_term_root : on_term_quiet;
    sigaction(SIGTERM, &sa, NULL);
    *out = dc;
    return PPNN_OK;
}

void dist_finish(dist_ctx *dc)
{
    if (!dc)
        return;
    /* From here on the job is over, successful or with its failure reported: a SIGTERM from
     * mpirun (a peer that left first with a failure status) needs no second message. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term_quiet;
    sigaction(SIGTERM, &sa, NULL);
    free(dc);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}

size_t dist_rank(const dist_ctx *dc) { return (size_t)dc->rank; }
size_t dist_size(const dist_ctx *dc) { return (size_t)dc->size; }

ppnn_status dist_agree(dist_ctx *dc, ppnn_status mine)
{
    int key = mine ? dc->rank : INT_MAX, first = INT_MAX;
    MPI_Allreduce(&key, &first, 1, MPI_INT, MPI_MIN, dc->comm);
    if (first == INT_MAX)
        return PPNN_OK;
    /* The first failing rank's code and message, for every rank (rank 0 prints it). */
    struct {
        int code;
        char msg[MSG_LEN];
    } e;
    memset(&e, 0, sizeof e);
    if (first == dc->rank) {
        e.code = (int)mine;
        snprintf(e.msg, sizeof e.msg, "%s", ppnn_last_error());
    }
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, dc->comm);
    e.msg[MSG_LEN - 1] = 0;
    if (first == 0)
        return ppnn_fail((ppnn_status)e.code, "%s", e.msg);
    return ppnn_fail((ppnn_status)e.code, "rank %d: %s", first, e.msg);
}

/* Broadcasts len bytes of buf from rank 0 in pieces below INT_MAX. */
static void bcast_bytes(dist_ctx *dc, void *buf, size_t len)
{
    const size_t piece = (size_t)1 << 30;
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        MPI_Bcast((uint8_t *)buf + off, (int)n, MPI_BYTE, 0, dc->comm);
    }
}

ppnn_status dist_bcast_model(dist_ctx *dc, nn_model *m, ppnn_status root_status)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ppnn_status st = dc->rank == 0 ? root_status : PPNN_OK;
    if (!st && dc->rank == 0)
        st = nn_model_serialize(&buf, &len, m);
    if ((st = dist_agree(dc, st)))
        return st;
    uint64_t len64 = len;
    MPI_Bcast(&len64, 1, MPI_UINT64_T, 0, dc->comm);
    if (dc->rank != 0 && !(buf = malloc(len64 ? len64 : 1)))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the model");
    if ((st = dist_agree(dc, st))) {
        free(buf);
        return st;
    }
    bcast_bytes(dc, buf, len64);
    if (dc->rank != 0)
        st = nn_model_parse(m, buf, len64);
    free(buf);
    return dist_agree(dc, st);
}

ppnn_status dist_bcast_relin_key(dist_ctx *dc, ckks_relin_key *rk, ckks_params **params,
                                 uint8_t key_id[16], ppnn_status root_status)
{
    ppnn_status st = dist_agree(dc, dc->rank == 0 ? root_status : PPNN_OK);
    if (st)
        return st;
    ckks_spec spec;
    uint8_t id[CKKS_PARAM_ID_BYTES];
    if (dc->rank == 0)
        spec = (*params)->spec, memcpy(id, (*params)->id, sizeof id);
    MPI_Bcast(&spec, (int)sizeof spec, MPI_BYTE, 0, dc->comm);
    MPI_Bcast(id, (int)sizeof id, MPI_BYTE, 0, dc->comm);
    MPI_Bcast(key_id, 16, MPI_BYTE, 0, dc->comm);
    if (dc->rank != 0) {
        memset(rk, 0, sizeof *rk);
        st = ckks_params_new(params, &spec);
        if (!st && memcmp((*params)->id, id, sizeof id) != 0)
            st = ppnn_fail(PPNN_ERR_MISMATCH, "the parameters rebuilt from rank 0's spec differ");
    }
    if ((st = dist_agree(dc, st)))
        return st;
    const ckks_params *p = *params;
    size_t words = p->nq * (p->nq + 1) * p->n;
    if (dc->rank != 0) {
        rk->params = p;
        rk->k.b = malloc(words * sizeof(uint64_t));
        rk->k.a = malloc(words * sizeof(uint64_t));
        if (!rk->k.b || !rk->k.a)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the relinearization key");
    }
    if ((st = dist_agree(dc, st)))
        return st;
    /* b travels; a is the uniform polynomial expanded from the seed (half the bytes). */
    bcast_bytes(dc, rk->k.b, words * sizeof(uint64_t));
    MPI_Bcast(rk->k.seed, CKKS_SEED_BYTES, MPI_BYTE, 0, dc->comm);
    if (dc->rank != 0)
        ckks_switch_key_expand_a(&rk->k, p);
    return PPNN_OK;
}

void dist_gather_double(dist_ctx *dc, double *vals, double mine)
{
    MPI_Gather(&mine, 1, MPI_DOUBLE, vals, 1, MPI_DOUBLE, 0, dc->comm);
}

void dist_gather_u64(dist_ctx *dc, uint64_t *vals, uint64_t mine)
{
    MPI_Gather(&mine, 1, MPI_UINT64_T, vals, 1, MPI_UINT64_T, 0, dc->comm);
}

/* ---- exchange ------------------------------------------------------------------------------*/
ppnn_status _dist_xfer_new(dist_xfer *x, size_t R)
{
    x->nsend = calloc(R, sizeof *x->nsend);
    x->nrecv = calloc(R, sizeof *x->nrecv);
    x->send = calloc(R, sizeof *x->send);
    x->recv = calloc(R, sizeof *x->recv);
    if (!x->nsend || !x->nrecv || !x->send || !x->recv) {
        _dist_xfer_free(x, R);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    return PPNN_OK;
}

void _dist_xfer_free(dist_xfer *x, size_t R)
{
    for (size_t t = 0; t < R; t++) {
        if (x->send)
            free(x->send[t]);
        if (x->recv)
            free(x->recv[t]);
    }
    free(x->nsend), free(x->nrecv), free(x->send), free(x->recv);
    memset(x, 0, sizeof *x);
}

ppnn_status _dist_xfer_reserve(dist_xfer *x, size_t t, size_t ns, size_t nr)
{
    x->nsend[t] = ns, x->nrecv[t] = nr;
    x->send[t] = calloc(ns ? ns : 1, sizeof **x->send);
    x->recv[t] = calloc(nr ? nr : 1, sizeof **x->recv);
    if (!x->send[t] || !x->recv[t])
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    return PPNN_OK;
}

static int seeded(const ckks_ciphertext *c)
{
    return c->has_seed && c->size == 2;
}

/* Words that travel: c_0 only when c_1 comes from the seed. */
static size_t wire_words(const ckks_ciphertext *c)
{
    return (seeded(c) ? 1 : c->size) * (c->level + 1) * c->params->n;
}

ppnn_status _dist_exchange(dist_ctx *dc, const dist_xfer *x, const ckks_params *prm)
{
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    double t0 = MPI_Wtime();
    size_t nreq = 0, nhs = 0, nhr = 0;
    for (size_t t = 0; t < R; t++)
        if (t != me)
            nreq += x->nsend[t] + x->nrecv[t] + 2, nhs += x->nsend[t], nhr += x->nrecv[t];
    MPI_Request *req = malloc((nreq ? nreq : 1) * sizeof *req);
    uint64_t *hs = malloc((HDR_WORDS * nhs + 1) * sizeof *hs), *hr = malloc((HDR_WORDS * nhr + 1) * sizeof *hr);
    ppnn_status st = !req || !hs || !hr ? ppnn_fail(PPNN_ERR_NOMEM, "out of memory") : PPNN_OK;
    if ((st = dist_agree(dc, st))) {
        free(req), free(hs), free(hr);
        return st;
    }
    /* Headers: (level, size, scale) of every ciphertext, one message per pair of ranks. */
    size_t nr = 0, os = 0, orr = 0;
    for (size_t t = 0; t < R; t++) {
        if (t == me)
            continue;
        if (x->nrecv[t])
            MPI_Irecv(hr + orr, (int)(HDR_WORDS * x->nrecv[t]), MPI_UINT64_T, (int)t, TAG_HEADER,
                      dc->comm, &req[nr++]);
        orr += HDR_WORDS * x->nrecv[t];
    }
    for (size_t t = 0; t < R; t++) {
        if (t == me)
            continue;
        for (size_t j = 0; j < x->nsend[t]; j++) {
            const ckks_ciphertext *c = x->send[t][j];
            /* A seeded ciphertext travels as (c_0, seed): half the bytes (has_seed). */
            uint64_t *h = hs + os + HDR_WORDS * j;
            h[0] = c->level, h[1] = c->size | (uint64_t)seeded(c) << 8;
            memcpy(&h[2], &c->scale, sizeof(double));
            memcpy(&h[3], c->seed, CKKS_SEED_BYTES);
        }
        if (x->nsend[t])
            MPI_Isend(hs + os, (int)(HDR_WORDS * x->nsend[t]), MPI_UINT64_T, (int)t, TAG_HEADER,
                      dc->comm, &req[nr++]);
        os += HDR_WORDS * x->nsend[t];
    }
    MPI_Waitall((int)nr, req, MPI_STATUSES_IGNORE);
    dc->sent += HDR_WORDS * nhs * sizeof(uint64_t), dc->recv += HDR_WORDS * nhr * sizeof(uint64_t);
    /* Shape every receiving ciphertext before any data moves. */
    orr = 0;
    for (size_t t = 0; t < R && !st; t++) {
        if (t == me)
            continue;
        for (size_t j = 0; j < x->nrecv[t] && !st; j++) {
            const uint64_t *h = hr + orr + HDR_WORDS * j;
            double scale;
            memcpy(&scale, &h[2], sizeof scale);
            const uint64_t size = h[1] & 0xff, seed = h[1] >> 8;
            if (h[0] >= prm->nq || size < 1 || size > 3 || seed > 1 || (seed && size != 2))
                st = ppnn_fail(PPNN_ERR_FORMAT, "rank %zu sent a ciphertext of level %llu, "
                               "size %llu", t, (unsigned long long)h[0],
                               (unsigned long long)h[1]);
            else
                st = ckks_ct_init(x->recv[t][j], prm, h[0], size, scale);
            if (!st && seed) {
                x->recv[t][j]->has_seed = 1;
                memcpy(x->recv[t][j]->seed, &h[3], CKKS_SEED_BYTES);
            }
        }
        orr += HDR_WORDS * x->nrecv[t];
    }
    if ((st = dist_agree(dc, st))) {
        free(req), free(hs), free(hr);
        return st;
    }
    /* Data: one message per ciphertext, straight from / into its buffer (no packing copy);
     * messages between two ranks with one tag arrive in the order they were sent. */
    nr = 0;
    for (size_t t = 0; t < R; t++)
        for (size_t j = 0; t != me && j < x->nrecv[t]; j++) {
            ckks_ciphertext *c = x->recv[t][j];
            MPI_Irecv(c->data, (int)wire_words(c), MPI_UINT64_T, (int)t, TAG_DATA, dc->comm,
                      &req[nr++]);
            dc->recv += wire_words(c) * sizeof(uint64_t);
        }
    for (size_t t = 0; t < R; t++)
        for (size_t j = 0; t != me && j < x->nsend[t]; j++) {
            const ckks_ciphertext *c = x->send[t][j];
            MPI_Isend(c->data, (int)wire_words(c), MPI_UINT64_T, (int)t, TAG_DATA, dc->comm,
                      &req[nr++]);
            dc->sent += wire_words(c) * sizeof(uint64_t);
        }
    MPI_Waitall((int)nr, req, MPI_STATUSES_IGNORE);
    /* c_1 of the seeded ones, from the seed (in parallel: ~0.1 ms each at N = 2^13). */
    for (size_t t = 0; t < R; t++) {
        if (t == me)
            continue;
#pragma omp parallel for schedule(dynamic)
        for (size_t j = 0; j < x->nrecv[t]; j++) {
            ckks_ciphertext *c = x->recv[t][j];
            if (c->has_seed)
                ckks_expand_seed(ckks_ct_poly(c, 1, 0), prm, c->level, c->seed);
        }
    }
    free(req), free(hs), free(hr);
    dc->comm_seconds += MPI_Wtime() - t0;
    return PPNN_OK;
}

int _dist_fault_is(const dist_ctx *dc, const char *how)
{
    const char *f = getenv("PPNN_DIST_FAULT");
    unsigned rank = 0, at = 0;
    char h[16] = "";
    return f && sscanf(f, "%u:%u:%15s", &rank, &at, h) == 3 && rank == (unsigned)dc->rank &&
           !strcmp(h, how);
}

ppnn_status _dist_fault(const dist_ctx *dc, size_t step, const char *unit)
{
    const char *f = getenv("PPNN_DIST_FAULT");
    unsigned rank = 0, at = 0;
    char how[16] = "";
    if (!f || sscanf(f, "%u:%u:%15s", &rank, &at, how) != 3 || rank != (unsigned)dc->rank ||
        at != step + 1)
        return PPNN_OK;
    if (!strcmp(how, "exit"))
        _exit(3);
    if (!strcmp(how, "kill"))
        raise(SIGKILL);
    return ppnn_fail(PPNN_ERR_IO, "injected failure before %s %zu (PPNN_DIST_FAULT)", unit,
                     step + 1);
}
