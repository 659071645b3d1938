/* ppnn data layer: IDX image/label files (plain or gzip) and the named datasets.
 *
 * Datasets: "mnist" ($PPNN_DATA_DIR/mnist, else ./data/mnist, else the source tree's data/mnist,
 * fetched by scripts/setup.sh), "fashion" (/usr/share/datasets/fashion-mnist from the Debian
 * package dataset-fashion-mnist), or any directory holding the four standard IDX files
 * (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
 * t10k-labels-idx1-ubyte; each optionally with a .gz suffix). */
#ifndef PPNN_DATA_H
#define PPNN_DATA_H

#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest decompressed IDX file we accept (the MNIST training images are 47 MB). */
#define DATA_IDX_MAX_BYTES ((size_t)1 << 30)
#define DATA_NUM_CLASSES 10

/* A parsed IDX file of unsigned bytes (type 0x08): dims[0] items of dims[1]*...*dims[ndims-1]. */
typedef struct data_idx {
    size_t ndims;
    size_t dims[4];
    size_t count;      /* dims[0] */
    size_t item_size;  /* product of the remaining dims (1 for labels) */
    uint8_t *values;   /* count * item_size bytes, owned */
} data_idx;

/* Parses an in-memory IDX file. `name` is used in error messages. Validates the magic,
 * element type (only unsigned byte), number of dims (1..4), that the product of dims does not
 * overflow and matches the payload length exactly. */
PPNN_MUST_CHECK ppnn_status data_idx_parse(data_idx *out, const uint8_t *buf, size_t len,
                                           const char *name);
/* Reads (decompressing .gz transparently) and parses an IDX file. */
PPNN_MUST_CHECK ppnn_status data_idx_read(data_idx *out, const char *path);
void data_idx_free(data_idx *idx);

typedef enum { DATA_SPLIT_TRAIN = 0, DATA_SPLIT_TEST = 1 } data_split;

/* Images with labels, pixels as raw bytes 0..255 (row-major, image after image). */
typedef struct data_set {
    size_t count;
    size_t rows, cols;
    uint8_t *pixels; /* count * rows * cols */
    uint8_t *labels; /* count, each in 0..9 */
    char source[4096]; /* PATH_MAX on Linux: the image file the set was read from */
} data_set;

/* Loads `count` images starting at `offset` of a split (count == 0: all from offset on; an
 * offset at or past the end is an error, never an empty set).
 * Checks labels are 0..9 and that image and label files agree on the count. */
PPNN_MUST_CHECK ppnn_status data_load(data_set *out, const char *name_or_dir, data_split split,
                                      size_t offset, size_t count);
void data_set_free(data_set *ds);

/* A file-name-safe tag for a data set, for caches of models trained on it: "mnist" and
 * "fashion" as they are; a directory as "<its base name, [A-Za-z0-9._-] only>-<16 hex digits of
 * a hash of its resolved path>" (so "a/b" and "c/b" differ and no '/' ever reaches a file name). */
PPNN_MUST_CHECK ppnn_status data_cache_tag(char *buf, size_t buflen, const char *name_or_dir);

/* Labels are 0..DATA_NUM_CLASSES-1: scoring predictions of a model with another number of
 * classes against them is refused (PPNN_ERR_MISMATCH), by eval (nn_evaluate), decrypt --data,
 * demo and compare alike. */
PPNN_MUST_CHECK ppnn_status data_check_classes(size_t nclasses);

/* "train" / "test" -> split; returns PPNN_ERR_PARAM for anything else. */
PPNN_MUST_CHECK ppnn_status data_split_parse(data_split *out, const char *s);
/* Resolves a dataset name to the directory that holds its files (into buf). */
PPNN_MUST_CHECK ppnn_status data_resolve_dir(char *buf, size_t buflen, const char *name_or_dir);

/* The one place pixels become network inputs: x = p / 255 (the correctly rounded float32
 * quotient), in [0, 1]. Every path calls it — encrypt, the planner's inputs (hnn_plan_inputs),
 * nn_model_normalize (eval, train, demo, compare, bench) — so that all of them encrypt and
 * evaluate bit-identical inputs. */
void data_normalize(float *out, const uint8_t *pixels, size_t n);

#ifdef __cplusplus
}
#endif
#endif
