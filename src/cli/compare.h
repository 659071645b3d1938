/* ppnn compare: element-wise (BEAA) vs channel-wise packing. Shared between the measuring
 * command (cmd_compare.c) and the report writer (compare_report.c). */
#ifndef PPNN_CLI_COMPARE_H
#define PPNN_CLI_COMPARE_H

#include <stddef.h>

#include "ppnn/hnn.h"

#define CMP_MAX_BATCHES 16

/* Models compared: the ReLU teacher (plaintext only) and the two distilled students. */
enum { CMP_TEACHER = 0, CMP_ELEMENT = 1, CMP_CHANNEL = 2, CMP_NMODELS = 3 };

typedef struct cmp_config {
    const char *data, *out, *models, *preset;
    const char *arch;         /* student architecture: cryptonets or deep */
    const char *teacher_arch; /* teacher or teacher-wide */
    size_t batches[CMP_MAX_BATCHES], nbatches; /* sorted ascending */
    size_t count;          /* training images (0 = all) */
    size_t teacher_epochs, epochs;
    size_t test;           /* test images for plaintext accuracy (0 = all) */
    size_t channel_images; /* encrypted sample of the channel-wise packing */
    int threads;
    int skip_element;      /* do not run the element-wise encrypted measurement */
    const char *costs;     /* JSON of `ppnn bench costs` (NULL: built-in figures) */
    const char *given[CMP_NMODELS]; /* --teacher-model / --element-model / --channel-model */
    char command[1024];    /* the command line, for the report */
    char data_tag[96];     /* data_cache_tag(data): names the cached models */
} cmp_config;

typedef struct cmp_results {
    char model_path[CMP_NMODELS][1024];
    int cached[CMP_NMODELS];  /* loaded (MDIR or given); otherwise trained (and saved) here */
    int saved[CMP_NMODELS];   /* saved by this run: removed again if the run fails */
    double train_seconds[CMP_NMODELS];
    double plain_acc[CMP_NMODELS]; /* percent on `test_count` test images */
    size_t test_count;
    /* Encrypted: percent correct, agreement with the plaintext argmax (percent), max |logit
     * error|, images. [0] element-wise, [1] channel-wise. */
    double enc_acc[2], enc_plain_acc[2], agree[2], max_err[2];
    double elem_est_err, elem_bound_err; /* the planner's estimate and worst-case bound */
    size_t enc_count[2];
    /* Element-wise encrypted accuracy on the channel-wise sample (the first
     * sample_count test images, sample_count = min(channel sample, largest batch)). */
    double elem_acc_sample, chan_acc_sample;
    size_t sample_count;
    /* Element-wise, measured per batch size: server seconds, client encryption seconds. */
    double elem_server[CMP_MAX_BATCHES], elem_encrypt[CMP_MAX_BATCHES];
    int elem_measured;
    /* Channel-wise: `channel_images` images evaluated in parallel over images on `threads`
     * threads in wall time chan_wall; mean single-image latency; extrapolated totals. */
    double chan_wall, chan_latency, chan_encrypt, chan_keygen;
    double chan_total[CMP_MAX_BATCHES];
    hnn_channel_stats chan_stats;
    /* The packing cost model (hnn_packing_decide) with the costs of cfg->costs or the built-in
     * ones: predicted single-thread seconds of one element-wise batch and one channel-wise
     * image, and the choice per batch size. */
    double pred_elem_batch, pred_chan_image;
    hnn_packing choice[CMP_MAX_BATCHES];
    size_t pred_crossover;
    int costs_from_file;
    hnn_op_costs costs; /* loaded and checked before any work */
    int threads;
    char cpu[256];
    size_t slots, n, levels;
    unsigned logqp;
} cmp_results;

/* Writes DIR/compare.md, DIR/amortized.svg and DIR/accuracy.svg; prints the headline deltas. */
int cmp_write_report(const cmp_config *cfg, const cmp_results *r);

#endif
