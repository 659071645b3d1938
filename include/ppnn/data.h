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
/* Largest item (one image: product of dims[1..]) we accept: 16384 pixels (128 x 128).
 * Element-wise packing encrypts one ciphertext per pixel, so a batch of such images at n13 is
 * already ~1.6 GB of ciphertexts and 256 MB of floats to encode; an IDX header declaring more
 * is refused before anything is allocated for it (MNIST items are 784 bytes). */
#define DATA_IDX_MAX_ITEM_BYTES ((size_t)1 << 14)
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
    char source[640];
} data_set;

/* Loads `count` images starting at `offset` of a split (count == 0: all from offset on).
 * Checks labels are 0..9 and that image and label files agree on the count. */
PPNN_MUST_CHECK ppnn_status data_load(data_set *out, const char *name_or_dir, data_split split,
                                      size_t offset, size_t count);
void data_set_free(data_set *ds);

/* "train" / "test" -> split; returns PPNN_ERR_PARAM for anything else. */
PPNN_MUST_CHECK ppnn_status data_split_parse(data_split *out, const char *s);
/* Resolves a dataset name to the directory that holds its files (into buf). */
PPNN_MUST_CHECK ppnn_status data_resolve_dir(char *buf, size_t buflen, const char *name_or_dir);

/* The one place pixels become network inputs: x = p / 255, in [0, 1]. */
void data_normalize(float *out, const uint8_t *pixels, size_t n);

#ifdef __cplusplus
}
#endif
#endif
