/* Encrypted-inference benchmark for `ppnn bench infer` (issue 5). */
#ifndef PPNN_BENCH_INFER_H
#define PPNN_BENCH_INFER_H

#include <stdio.h>

#include "ppnn/hnn.h"

#define BENCH_INFER_MAX_LAYERS 64

typedef struct bench_infer_result {
    char preset[16], arch[32];
    size_t batch;
    int threads;
    double server_seconds;         /* hnn_infer wall time for the batch */
    double amortized_ms;           /* server_seconds / batch, in ms */
    double client_encrypt_seconds; /* hnn_encrypt_batch wall time for the batch */
    double upload_bytes_per_image; /* seeded ciphertexts, bit-packed c0 + seed, / batch */
    size_t peak_rss_bytes;         /* of this process (client and server together) */
    size_t agree;                  /* encrypted vs plaintext predictions */
    double max_logit_error;
    double est_logit_error;        /* the planner's high-probability estimate */
    double bound_logit_error;      /* the planner's worst-case bound (not the expected error) */
    size_t nlayers;
    struct {
        const char *name;          /* step name ("conv2d", "act", "dense", ...) */
        size_t layer;              /* model layer index */
        double seconds;
        double macs;               /* LINEAR: coefficient multiply-adds (0 for ACT) */
    } layers[BENCH_INFER_MAX_LAYERS];
} bench_infer_result;

/* Builds `arch` (nn_arch_build with element-wise quadratics) fitted on the first `batch` MNIST
 * test images (nn_model_init_params: ReLU-fitted activations, ranges recorded; no training, the
 * cost does not depend on the weights), plans it for preset `preset`, generates keys, encrypts
 * the batch, runs the server with `threads` threads (0 = all cores), decrypts and compares with
 * the plaintext forward pass. */
PPNN_MUST_CHECK ppnn_status bench_infer(bench_infer_result *r, const char *preset,
                                        const char *arch, size_t batch, int threads);
/* Writes r as one JSON object (top-level keys server_seconds, amortized_ms,
 * client_encrypt_seconds, upload_bytes_per_image, peak_rss_bytes, layers, ...; a LINEAR
 * layer also has gmacs = macs / seconds / 1e9, its relinearizations and rescales included). */
void bench_infer_json(FILE *f, const bench_infer_result *r);
/* Human-readable summary. */
void bench_infer_print(FILE *f, const bench_infer_result *r);

/* Throughput of the linear kernel on one prime < 2^50 and one component: multiply-adds per
 * second (x 1e9) of an n_out x n_in dense product over n coefficients (or, with k > 0, of a
 * sparse product whose rows have k terms, grouped 5 rows per input set like a 5-channel conv). */
double bench_linear_gmacs(size_t n_out, size_t n_in, size_t n, size_t k, int threads,
                          hnn_kernel kernel);

#endif
