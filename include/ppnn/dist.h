/* ppnn dist layer: encrypted inference spread over the ranks of an MPI job (DESIGN.md §8:
 * dist/ -> hnn). `mpirun -n R ppnn infer ...` runs one process per rank:
 *   - model-parallel: every step of the plan is split between the ranks (a partition computed
 *     identically by every rank from the plan alone), the ciphertexts a rank needs reach it by
 *     point-to-point messages, rank 0 reads the batch and writes the result;
 *   - data-parallel: with several batches, ranks take whole batches.
 * Both give the same result ciphertexts as hnn_infer, bit for bit: every output is computed by
 * the same kernels from the same inputs, or (a dense step split by input columns) as a sum of
 * exact partial sums mod q_i.
 *
 * The partition (this header's first part) is plain code on a plan and is built and tested in
 * every build; the MPI parts exist when ppnn is built with PPNN_MPI (CMake, on when MPI is
 * found); without it dist_init refuses with PPNN_ERR_UNSUPPORTED. */
#ifndef PPNN_DIST_H
#define PPNN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "ppnn/ckks.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"
#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- partition of a plan between R ranks ----------------------------------------------------
 * The unit is the streaming executor's stage (hnn.h): [LINEAR A] [ACT] LINEAR B, grouped as
 * hnn_schedule_new groups them. The plan's input vector is held by rank 0 (it read the batch);
 * after a stage, each of B's outputs has one owner. A stage is split like the executor tiles it:
 *   ROWS  (B sparse: conv, avgpool): rank t computes a band of B's rows (contiguous in the
 *         executor's tile order, i.e. positions across all channels, equal work per rank),
 *         the intermediates (A outputs, squared) those rows read, from the stage inputs need[t]
 *         it receives. The share is an ordinary plan of the same steps restricted to those rows
 *         (dist_share_plan), run by the streaming executor: fused, tiled and under the rank's
 *         budget. The intermediates at the edge of a band are computed by both neighbours (no
 *         squares move).
 *   COLS  (B dense): rank t computes a contiguous run of A's rows (or, without A, the stage
 *         inputs it holds), squares them and sums W_B[:, those] · squares into a partial sum of
 *         every B output; the share is a plan too (dist_share_plan), run by the same executor,
 *         tile by tile, with its outputs left unfinished. Each partial sum goes to the output's
 *         owner (contiguous blocks), which adds them and relinearizes / rescales once. Exact
 *         modular sums: the result equals a single product bit for bit.
 * The last stage's outputs are gathered on rank 0. */
typedef struct dist_part_stage {
    size_t a, act, b;     /* plan steps (HNN_NO_STEP when absent) */
    hnn_tiling tiling;
    size_t n_in, n_out;   /* stage inputs, B outputs */
    uint32_t *owner;      /* B's n_out outputs: the rank holding each after the stage */
    size_t *nitems;       /* per rank: ROWS: B rows; COLS: A rows (stage inputs without A) */
    uint32_t **items;     /* ascending */
    size_t *nneed;        /* per rank: stage inputs it reads (held or received), ascending */
    uint32_t **need;
    size_t bias_rank;     /* COLS: the one rank whose partial sums carry B's bias */
} dist_part_stage;

typedef struct dist_partition {
    size_t nranks, nstages;
    dist_part_stage *stages;
} dist_partition;

/* Splits plan p between nranks >= 1 ranks (the same result on every rank). Errors:
 * PPNN_ERR_NOMEM, PPNN_ERR_PARAM (nranks == 0 or above 65536). */
PPNN_MUST_CHECK ppnn_status dist_partition_new(dist_partition **out, const hnn_plan *p,
                                               size_t nranks);
void dist_partition_free(dist_partition *d); /* NULL is a no-op */

/* The share of stage g on `rank` as a plan of its own, inputs = need[rank] in order (free
 * with hnn_plan_free):
 *   ROWS: outputs = items[rank] (B rows; output j is B row items[rank][j]'s output);
 *   COLS: A's rows items[rank] (or, without A, the activation on the inputs items[rank]) and
 *         B restricted to the columns they produce, every one of B's n_out outputs (B's bias
 *         only on bias_rank). Run with hnn_exec_opts.raw_outputs, its outputs are the rank's
 *         partial sums (before relinearization and rescale), which the owners add in rank
 *         order and finish once (hnn_step_linear_finish). */
PPNN_MUST_CHECK ppnn_status dist_share_plan(hnn_plan **out, const hnn_plan *p,
                                            const dist_partition *d, size_t g, size_t rank);

/* Upper bound on the ciphertext bytes rank `rank` holds at once while running p under d on a
 * ring of degree n: what --memory is compared with per rank, and the cap of the rank's buffer
 * pool. Where the stage-0 inputs are (flags):
 *   0                  rank 0 holds all of them through the first stage (dist_infer_model);
 *   DIST_PEAK_CONSUME  rank 0 holds only those its own first share reads once the others are
 *                      sent (dist_infer_model with consume);
 *   DIST_PEAK_STREAMED every rank reads its own as its tiles need them, each freed after its
 *                      last tile (dist_infer_model_read). */
enum { DIST_PEAK_CONSUME = 1, DIST_PEAK_STREAMED = 2 };
uint64_t dist_partition_peak_bytes(const dist_partition *d, const hnn_plan *p, size_t rank,
                                   size_t n, unsigned flags);
/* Ciphertexts stage g moves between ranks in total (inputs, partial sums, final gather). */
size_t dist_partition_moves(const dist_partition *d, size_t g);
/* Bytes rank `rank` sends and receives in stage g on a ring of degree n (ciphertext words and
 * the 56-byte header each; plan inputs travel seeded, as (c_0, seed)): exactly what the MPI
 * executor moves (test_mpi_dist compares), for the scaling model of docs/scaling.md. */
void dist_partition_traffic(uint64_t *sent, uint64_t *recv, const dist_partition *d,
                            const hnn_plan *p, size_t g, size_t rank, size_t n);
/* What rank `rank` computes in stage g: multiply-adds (per coefficient and prime) of A's rows
 * (the halo intermediates of ROWS shares on every rank that needs them) and of B (COLS: every
 * output over the rank's columns), activations, and B outputs it relinearizes / rescales. */
typedef struct dist_work {
    uint64_t a_terms, b_terms;
    size_t acts, finishes;
} dist_work;
void dist_partition_work(dist_work *w, const dist_partition *d, const hnn_plan *p, size_t g,
                         size_t rank);

/* ---- the MPI job ----------------------------------------------------------------------------*/
typedef enum { DIST_AUTO = 0, DIST_MODEL = 1, DIST_DATA = 2 } dist_mode;

/* Parses "auto", "model" or "data"; -1 for anything else. */
int dist_mode_parse(const char *s);
const char *dist_mode_name(dist_mode m);

/* Who reads the batch file (dist_infer_file):
 *   SHARED: every rank opens the same path (rank 0's, made absolute) and reads only the
 *           ciphertexts its own share needs (model-parallel: its stage-0 inputs; data-parallel:
 *           its own batches); every rank verifies the batches it reads and their checksums must
 *           equal rank 0's copy (a shared file system, or the same file on every node);
 *   ROOT:   rank 0 reads everything and sends each rank its share (no shared file needed);
 *   AUTO:   SHARED when every rank can open the path and holds the same file, else ROOT. */
typedef enum { DIST_READ_AUTO = 0, DIST_READ_SHARED = 1, DIST_READ_ROOT = 2 } dist_read;
/* Parses "auto", "shared" or "root"; -1 for anything else. */
int dist_read_parse(const char *s);
const char *dist_read_name(dist_read r);

/* 1 when this process was started by an MPI launcher (mpirun/mpiexec, srun), judged from the
 * environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK), in builds with or without MPI. */
int dist_launched(void);
/* This process's rank as the launcher published it (OMPI_COMM_WORLD_RANK, PMI_RANK,
 * PMIX_RANK), before MPI_Init; 0 when not launched. */
size_t dist_launch_rank(void);

typedef struct dist_ctx dist_ctx; /* the job: communicator, rank, counters */

/* MPI_Init (thread level FUNNELED: OpenMP threads inside a rank never call MPI). Errors:
 * PPNN_ERR_UNSUPPORTED in a build without MPI. dist_finish(NULL) is a no-op; it calls
 * MPI_Finalize. Only one dist_ctx per process. */
PPNN_MUST_CHECK ppnn_status dist_init(dist_ctx **out, int *argc, char ***argv);
void dist_finish(dist_ctx *dc);
size_t dist_rank(const dist_ctx *dc);
size_t dist_size(const dist_ctx *dc);

/* Collective: every rank passes its own status; all return the first failure (lowest rank)
 * with that rank's message ("rank R: ..."), or PPNN_OK. Use after any local work that can
 * fail, so that no rank waits forever for a peer that has given up. */
PPNN_MUST_CHECK ppnn_status dist_agree(dist_ctx *dc, ppnn_status mine);

/* Collective: rank 0's model reaches every rank (serialized, broadcast, parsed); other ranks'
 * *m is initialised by the call. */
PPNN_MUST_CHECK ppnn_status dist_bcast_model(dist_ctx *dc, nn_model *m, ppnn_status root_status);
/* Collective: rank 0's relinearization key, its parameters and key id reach every rank;
 * other ranks get a fresh *params (caller frees) and *rk. */
PPNN_MUST_CHECK ppnn_status dist_bcast_relin_key(dist_ctx *dc, ckks_relin_key *rk,
                                                 ckks_params **params,
                                                 uint8_t key_id[16], ppnn_status root_status);

/* Per-step observability (bench, docs/scaling.md). */
#define DIST_MAX_STEPS 64
typedef struct dist_stats {
    size_t nsteps;                           /* model-parallel: stages; data-parallel: steps */
    double compute_seconds[DIST_MAX_STEPS];  /* this rank's work, per stage (per step) */
    double comm_seconds[DIST_MAX_STEPS];     /* waiting for / moving ciphertexts */
    uint64_t bytes_sent[DIST_MAX_STEPS];     /* this rank's payload + headers */
    uint64_t bytes_recv[DIST_MAX_STEPS];
    double compute_total, comm_total;
    uint64_t peak_estimate;                  /* dist_partition_peak_bytes of this rank */
    dist_read read;                          /* dist_infer_file: SHARED or ROOT, as run */
} dist_stats;

/* Collective, model-parallel: runs p split by a partition of dist_size ranks. On rank 0, in
 * holds the n_inputs input ciphertexts (as for hnn_infer) and out receives the n_outputs
 * results; on other ranks in and out are ignored (may be NULL). rk on every rank. consume:
 * rank 0 frees (ckks_ct_free) each input once it has been sent and its own first share does
 * not read it, so it never holds the whole batch past the first exchange (the caller still
 * frees the array); 0 leaves in untouched.
 * budget > 0: refuse (every rank, before any work) when a rank's peak estimate exceeds it,
 * naming the smallest per-rank budget that works. stats may be NULL. Every rank's
 * ciphertexts but the results come from o->pool when set (it must outlive the call), else
 * from a pool of the call's own capped at the rank's peak estimate.
 * Results equal hnn_infer's bit for bit. Errors: as hnn_infer, the failing rank named. */
PPNN_MUST_CHECK ppnn_status dist_infer_model(dist_ctx *dc, ckks_ciphertext *out,
                                             const hnn_plan *p, ckks_ciphertext *in, int consume,
                                             const ckks_relin_key *rk, const hnn_exec_opts *o,
                                             uint64_t budget, dist_stats *stats);

/* Collective, model-parallel with every rank reading its own inputs: as dist_infer_model, but
 * no input travels; each rank calls src->get(ctx, i, ct) for every stage-0 input i its share
 * reads, once, as the tiles of its share need it (ct holds no buffer but may be attached to
 * the rank's buffer pool: shape it through the ckks calls or the batch reader, never assign
 * a buffer; the input at the plan's top level, size 2; called from up to o->threads OpenMP
 * threads at once for distinct i, so get must be thread-safe). A get failure
 * on any rank stops every rank. Results equal hnn_infer's bit for bit. */
typedef struct dist_inputs {
    PPNN_MUST_CHECK ppnn_status (*get)(void *ctx, size_t i, ckks_ciphertext *ct);
    void *ctx;
} dist_inputs;
PPNN_MUST_CHECK ppnn_status dist_infer_model_read(dist_ctx *dc, ckks_ciphertext *out,
                                                  const hnn_plan *p, const dist_inputs *src,
                                                  const ckks_relin_key *rk,
                                                  const hnn_exec_opts *o, uint64_t budget,
                                                  dist_stats *stats);

/* Collective, data-parallel: nbatches batches (known on every rank); batch b runs whole on
 * rank b mod R (hnn_infer with o), one round of R batches at a time. On rank 0, load(ctx, b,
 * in) fills in[0 .. n_inputs) with batch b's inputs (at the plan's top level) and store(ctx, b,
 * out) takes batch b's n_outputs results (called in batch order; it may keep the buffers by
 * zeroing the structs); rank 0 sends each batch to its rank and gathers the results, so a rank
 * holds one batch at a time (rank 0: its own plus the one it is sending). With every_rank,
 * each rank calls load for its own batches (the file is visible to all) and nothing but the
 * results travels; store stays on rank 0. */
typedef struct dist_batches {
    size_t nbatches;
    PPNN_MUST_CHECK ppnn_status (*load)(void *ctx, size_t b, ckks_ciphertext *in);
    PPNN_MUST_CHECK ppnn_status (*store)(void *ctx, size_t b, ckks_ciphertext *out);
    void *ctx;
    int every_rank;
} dist_batches;
PPNN_MUST_CHECK ppnn_status dist_infer_data(dist_ctx *dc, const hnn_plan *p,
                                            const dist_batches *io, const ckks_relin_key *rk,
                                            const hnn_exec_opts *o, dist_stats *stats);

/* Collective: the file-level job, as hnn_infer_file but over the ranks. Rank 0 opens in_path
 * (a batch or multi-batch file) and checks it against key_id, the element-wise input role,
 * shape and the plan; with read SHARED (or AUTO, when every rank can open it and holds the
 * same file) every rank reads its own share of it, else rank 0 reads each batch and sends the
 * shares. Rank 0 writes every result to out_path atomically (nothing there on any failure on
 * any rank). mode as dist_choose_mode with the file's batch count; budget: per rank (0:
 * none). *used_mode receives the mode run, stats->read the read mode. Other ranks pass NULL
 * paths. stats (per rank) and fstats (rank 0: batches, images, seconds) may be NULL. */
PPNN_MUST_CHECK ppnn_status dist_infer_file(dist_ctx *dc, hnn_file_stats *fstats,
                                            dist_stats *stats, dist_mode *used_mode,
                                            const char *out_path, const char *in_path,
                                            const hnn_plan *p, const uint32_t shape[3],
                                            const ckks_relin_key *rk,
                                            const uint8_t key_id[16], dist_mode mode,
                                            dist_read read, uint64_t budget,
                                            const hnn_exec_opts *o);

/* The mode DIST_AUTO resolves to: data-parallel when there are at least as many batches as
 * ranks (no communication inside a batch), else model-parallel. */
dist_mode dist_choose_mode(dist_mode asked, size_t nbatches, size_t nranks);

/* Collective: gathers a value per rank on rank 0 (vals[0 .. dist_size) there; elsewhere vals
 * may be NULL), for reports. */
void dist_gather_double(dist_ctx *dc, double *vals, double mine);
void dist_gather_u64(dist_ctx *dc, uint64_t *vals, uint64_t mine);

#ifdef __cplusplus
}
#endif
#endif
