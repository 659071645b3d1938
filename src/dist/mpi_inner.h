/* Internal helpers of the MPI half of the dist layer (only *_mpi.c include this). */
#ifndef PPNN_DIST_MPI_INNER_H
#define PPNN_DIST_MPI_INNER_H

#include <mpi.h>

#include "dist/inner.h"

struct dist_ctx {
    MPI_Comm comm;
    int rank, size;
    uint64_t sent, recv;  /* bytes moved so far by this rank (payload + headers) */
    double comm_seconds;  /* wall time spent in exchanges */
};

/* One exchange of ciphertexts: to each peer t, send[t][0 .. nsend[t]); from each peer s,
 * receive into recv[s][0 .. nrecv[s]) (structs zeroed or reusable; shaped by the call). Both
 * sides derive the counts from the partition, so only (level, size, scale) travel with the
 * data. Collective over all ranks (a rank with nothing to move still calls it): first the
 * headers, then every rank allocates what it will receive, agrees (dist_agree) and only then
 * moves the data, so a failed allocation stops every rank instead of leaving a sender
 * blocked. Entries for the rank itself are ignored. */
typedef struct dist_xfer {
    size_t *nsend, *nrecv;              /* per peer */
    const ckks_ciphertext ***send;      /* send[t][j] */
    ckks_ciphertext ***recv;            /* recv[s][j] */
} dist_xfer;

/* Allocates the per-peer count and pointer arrays (all zero); _free releases them. */
PPNN_MUST_CHECK ppnn_status _dist_xfer_new(dist_xfer *x, size_t R);
void _dist_xfer_free(dist_xfer *x, size_t R);
/* Sizes peer t's lists to ns send / nr receive entries (filled by the caller). */
PPNN_MUST_CHECK ppnn_status _dist_xfer_reserve(dist_xfer *x, size_t t, size_t ns, size_t nr);

PPNN_MUST_CHECK ppnn_status _dist_exchange(dist_ctx *dc, const dist_xfer *x,
                                           const ckks_params *prm);

/* Test-only fault injection (tests/mpi/): PPNN_DIST_FAULT="rank:k:how" makes rank `rank` fail
 * before the k-th (1-based) `unit` — a stage in model-parallel mode, a round of batches in
 * data-parallel mode; `step` here is the 0-based index — with how = "error" (a ppnn error, reported by rank 0), "exit"
 * (the process exits with status 3 without a word) or "kill" (SIGKILL). Returns the error
 * for "error", PPNN_OK otherwise (and when the variable is unset or names another rank). */
PPNN_MUST_CHECK ppnn_status _dist_fault(const dist_ctx *dc, size_t step, const char *unit);
/* Test-only: 1 when PPNN_DIST_FAULT="rank:0:how" names this rank and `how` (e.g. "unshared":
 * this rank behaves as if it could not open the batch file rank 0 reads). */
int _dist_fault_is(const dist_ctx *dc, const char *how);

#endif
