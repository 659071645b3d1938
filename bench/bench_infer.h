/* Encrypted-inference benchmark for `ppnn bench infer` (issue 5). */
#ifndef PPNN_BENCH_INFER_H
#define PPNN_BENCH_INFER_H

#include <stdint.h>
#include <stdio.h>

#include "ppnn/data.h"
#include "ppnn/hnn.h"

#define BENCH_INFER_MAX_LAYERS 64

typedef struct bench_infer_result {
    char preset[16], arch[32];
    size_t batch;
    int threads;
    double server_seconds;         /* hnn_infer_file: reading the batch file + computing */
    double server_cpu_seconds;     /* CPU time (all threads) of the same phase */
    double amortized_ms;           /* server_seconds / batch, in ms */
    double client_encrypt_seconds; /* hnn_encrypt_batch wall time for the batch (in memory) */
    double client_write_seconds;   /* hnn_encrypt_batch_write: encrypt + write the batch file */
    double client_write_cpu_seconds; /* CPU time (all threads) of the same */
    double upload_bytes_per_image; /* seeded ciphertexts, bit-packed c0 + seed, / batch */
    size_t peak_rss_bytes;         /* of the server phase alone (VmHWM reset before it) */
    uint64_t memory_budget_bytes;  /* --memory (0: the default fraction of available memory) */
    uint64_t schedule_peak_bytes;  /* the schedule's computed peak (ciphertexts + weights) */
    uint64_t spill_bytes;          /* written to scratch */
    uint64_t pool_peak_bytes;      /* the ciphertext buffer pool's most bytes (in use + kept) */
    double input_seconds;          /* of server_seconds: reading/unpacking/expanding inputs */
    double server_minor_faults;    /* page faults of the server phase (getrusage) */
    size_t agree;                  /* encrypted vs plaintext predictions */
    double max_logit_error;
    double est_logit_error;        /* the planner's high-probability estimate */
    double bound_logit_error;      /* the planner's worst-case bound (not the expected error) */
    size_t nlayers;
    struct {
        const char *name;          /* step name ("conv2d", "act", "dense", ...) */
        size_t layer;              /* model layer index */
        double seconds;
        double macs;               /* LINEAR: coefficient multiply-adds (hnn_step_macs; 0 for ACT) */
    } layers[BENCH_INFER_MAX_LAYERS];
} bench_infer_result;

typedef struct bench_infer_opts {
    const char *preset, *arch; /* parameters, architecture (when no model is given) */
    const char *model;         /* a trained model file, or NULL */
    const char *data;          /* images: mnist (default) or fashion */
    size_t batch;
    int threads;
    uint64_t memory_bytes;     /* 0: default */
    const char *scratch_dir;   /* NULL: the temporary directory of the run */
    /* The server phase (NULL: hnn_infer_file). bench_dist.c runs it over MPI ranks: it gets
     * the model too, to hand it to the other ranks. */
    PPNN_MUST_CHECK ppnn_status (*server)(void *ctx, hnn_file_stats *fs, const char *out_path,
                                          const char *in_path, const nn_model *m,
                                          const hnn_plan *p, const uint32_t shape[3],
                                          const ckks_relin_key *rk, const uint8_t key_id[16],
                                          const hnn_file_opts *fo);
    void *server_ctx;
} bench_infer_opts;

/* The client/server flow on one batch, through the files the CLI uses: builds `arch`
 * (element-wise quadratics fitted on the first `batch` test images; no training, the cost does
 * not depend on the weights) or loads `model`, plans it with hnn_plan_for_params (what `ppnn
 * infer` runs), generates keys, encrypts the batch and writes it to a temporary batch file,
 * frees it, then runs the server exactly as `ppnn infer` does (hnn_infer_file: streamed input,
 * memory budget, per-step times, peak RSS of this phase only), and decrypts and compares the
 * results with the plaintext forward pass. */
PPNN_MUST_CHECK ppnn_status bench_infer(bench_infer_result *r, const bench_infer_opts *o);
/* The model (built from o->arch and the first o->batch test images, or o->model), the
 * parameters of o->preset and the plan infer runs (hnn_plan_for_params). The caller frees
 * them (data_set_free, nn_model_free, ckks_params_free, hnn_plan_free) after success or failure. */
PPNN_MUST_CHECK ppnn_status bench_model_plan(data_set *ds, nn_model *m, ckks_params **prm,
                                             hnn_plan **plan, const bench_infer_opts *o);
/* User + system CPU seconds of this process (all threads). */
double bench_cpu_seconds(void);
double bench_minor_faults(void); /* minor page faults of the process so far */
/* macs / seconds / 1e9 of step k (the step's wall seconds, its rescales and relinearizations
 * included), 0 for an ACT step. */
double bench_step_gmacs(const bench_infer_result *r, size_t k);
/* Writes r as one JSON object (cJSON; keys server_seconds, amortized_ms, peak_rss_bytes,
 * schedule_peak_bytes, spill_bytes, steps [{step, layer, name, seconds, macs, gmac_per_s}],
 * ...). */
void bench_infer_json(FILE *f, const bench_infer_result *r);
/* Human-readable summary. */
void bench_infer_print(FILE *f, const bench_infer_result *r);

/* Throughput of the linear kernel on one prime q < 2^50 and one component: multiply-adds per
 * second (x 1e9) of an n_out x n_in dense product over n coefficients (or, with k > 0, of a
 * sparse product whose rows have k terms, grouped 5 rows per input set like a 5-channel conv).
 * The kernel's speed depends on q (primes below 2^28 take the 32-bit multiply path). */
double bench_linear_gmacs(size_t n_out, size_t n_in, size_t n, size_t k, int threads,
                          hnn_kernel kernel, uint64_t q);

#endif
