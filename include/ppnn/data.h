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

/* Images with labels, pixels as raw bytes 0..255 (CHW per image, image after image). */
typedef struct data_set {
    size_t count;
    size_t channels; /* 1 for the IDX3 datasets; C of a 4-dimensional (N, C, H, W) IDX file */
    size_t rows, cols;
    uint8_t *pixels; /* count * channels * rows * cols */
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
/* The same for 16-bit samples (16-bit PNG): x = p / 65535, in [0, 1]. */
void data_normalize_u16(float *out, const uint16_t *samples, size_t n);

/* ---- image tensors (docs/images.md) -----------------------------------------------------
 * The one type every image source becomes: `count` images of one shape C x H x W, values in
 * [0, 1] as float (CHW order per image, image after image), and where each image came from.
 * PNG, NumPy .npy, DICOM files and the IDX datasets all produce it; `ppnn encrypt`, `ppnn eval`
 * and the importer's calibration consume it. Float rather than bytes so that 16-bit PNG and
 * windowed 12/16-bit DICOM keep their precision; 8-bit sources map through data_normalize. */
typedef struct data_shape {
    size_t c, h, w;
} data_shape;

typedef struct data_images {
    size_t count, c, h, w;
    float *values; /* count * c * h * w, each in [0, 1] */
    char **names;  /* count NUL-terminated names: "dir/a.png", "x.npy[3]", "ct.dcm[2]" */
} data_images;

/* Limits every reader enforces before allocating (a hostile header cannot exhaust memory). */
#define DATA_IMAGE_MAX_SIDE 16384                  /* H and W of one image */
#define DATA_IMAGE_MAX_CHANNELS 64                 /* C (PNG and DICOM give 1 or 3) */
#define DATA_IMAGE_MAX_FILE ((size_t)1 << 30)      /* bytes of one input file */
#define DATA_IMAGES_MAX_VALUES ((size_t)1 << 28)   /* floats of one tensor (1 GiB) */

/* Decoders of one in-memory file into a fresh tensor (`name` labels the images and every error
 * message). Each validates all header fields against the bytes present before allocating.
 *   PNG (libspng): 1/2/4/8/16-bit grey -> C = 1; RGB and palette -> C = 3; an alpha channel or
 *     tRNS chunk is accepted only when every pixel is opaque (then dropped), else refused;
 *     samples are used as stored (no gamma / colour-profile conversion).
 *   NumPy .npy (format 1.0-3.0): dtype uint8 (x = p/255) or float32 (values must be finite and
 *     in [0, 1]), either byte order; shape (H, W), (N, H, W) or (N, C, H, W); C or Fortran order.
 *   DICOM (DCMTK, src/data/dicom.cpp): uncompressed MONOCHROME1/2, 8 or 16 bits allocated,
 *     signed or unsigned, any number of frames; rescale slope/intercept applied, then the linear
 *     window of the file's Window Center/Width (the first pair) or, without one, of the
 *     minimum/maximum modality value of the file; MONOCHROME1 is inverted (1 - x). */
PPNN_MUST_CHECK ppnn_status data_png_parse(data_images *out, const uint8_t *buf, size_t len,
                                           const char *name);
PPNN_MUST_CHECK ppnn_status data_npy_parse(data_images *out, const uint8_t *buf, size_t len,
                                           const char *name);
PPNN_MUST_CHECK ppnn_status data_dicom_parse(data_images *out, const uint8_t *buf, size_t len,
                                             const char *name);

/* Reads one file and decodes it by its signature (PNG, "\x93NUMPY", DICOM "DICM" at 128). */
PPNN_MUST_CHECK ppnn_status data_images_read_file(data_images *out, const char *path);

/* Options of data_images_load. want == NULL: every image must have the shape of the first.
 * resize: scale H x W to want's (area averaging, docs/images.md); C must still match. */
typedef struct data_load_opts {
    const data_shape *want;
    int resize;
    size_t max_images; /* refuse more images than this (0: no limit beyond the value cap) */
} data_load_opts;

/* Loads files and directories (a directory: every regular, non-hidden file in it, sorted by
 * name with strcmp; not recursive) in the order given, into one tensor. Any file that is not a
 * PNG, .npy or DICOM image, or whose shape differs (naming both shapes), fails the whole load. */
PPNN_MUST_CHECK ppnn_status data_images_load(data_images *out, const char *const *paths,
                                             size_t npaths, const data_load_opts *opts);

/* The IDX data set's pixels as a tensor (through data_normalize); names "<source>[i]". */
PPNN_MUST_CHECK ppnn_status data_images_from_set(data_images *out, const data_set *ds,
                                                 size_t first_index);
void data_images_free(data_images *im);

/* ---- the names manifest (client side) ------------------------------------------------------
 * `ppnn encrypt --images` keeps the images' names in a JSON file beside the batch
 * (OUT.names.json) that never goes to the server; `ppnn decrypt --names` puts them back next to
 * the predictions. It records the key id and shape of the batch so that a manifest is not paired
 * with another batch's results by mistake:
 *   {"format": "ppnn-names", "version": 1, "key_id": "<hex>", "images": N,
 *    "shape": [C, H, W], "names": ["a.png", ...]} */
#define DATA_MANIFEST_MAX_BYTES ((size_t)1 << 28)
#define DATA_MANIFEST_KEY_ID_BYTES 16
typedef struct data_manifest {
    size_t count;
    data_shape shape;
    uint8_t key_id[DATA_MANIFEST_KEY_ID_BYTES];
    char **names; /* count strings, owned */
} data_manifest;
PPNN_MUST_CHECK ppnn_status data_manifest_save(const char *path, const data_images *im,
                                               const uint8_t key_id[DATA_MANIFEST_KEY_ID_BYTES]);
/* Parses and validates (every field present, of the right type and consistent). */
PPNN_MUST_CHECK ppnn_status data_manifest_parse(data_manifest *out, const uint8_t *buf,
                                                size_t len, const char *name);
PPNN_MUST_CHECK ppnn_status data_manifest_load(data_manifest *out, const char *path);
void data_manifest_free(data_manifest *m);

/* Area-averaging resize of one channel plane ih x iw -> oh x ow (every output pixel is the
 * mean of the input over its footprint, with fractional weights at the edges). Never
 * allocates; dst and src must not alias. */
void data_resize_area(float *dst, size_t oh, size_t ow, const float *src, size_t ih, size_t iw);

#ifdef __cplusplus
}
#endif
#endif
