/* Internal header of the ppnn command-line tool: one file per subcommand (cmd_*.c). */
#ifndef PPNN_CLI_H
#define PPNN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ppnn/util.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* Prints "ppnn CMD: error: <msg>" (one line) to stderr and returns the exit code 1. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An unknown option or one missing its argument (getopt returned '?' or ':'; call getopt with
 * opterr = 0): prints "ppnn CMD: error: unknown option or missing argument 'X' (see 'ppnn CMD
 * --help')" and returns the exit code 2 (usage errors), instead of the whole usage text. */
int cli_usage_error(const char *cmd, int argc, char **argv);
/* Same, for a failed library call: prints ppnn_last_error(). Exit code 1. */
int cli_fail(const char *cmd, ppnn_status st);

/* Refuses, before any work, an output path the library would refuse when writing it (ppnn/util.h,
 * "paths"; kind: the container code of the file to write, NULL for CSV/text). Call it after the
 * command's inputs are read. Prints the error and returns 1, else 0. */
int cli_check_output(const char *cmd, const char *path, const char *kind);

/* JSON output goes through cJSON, never printf (names and paths may hold '"' or '\\').
 * cli_print_json prints root as one line on stdout and frees it; ok = 0 (an item could not be
 * made or added: out of memory) or a failed print gives an error and exit code 1. */
struct cJSON;
int cli_print_json(const char *cmd, struct cJSON *root, int ok);
/* An exact unsigned integer (cJSON numbers are doubles: primes above 2^53 would be rounded). */
struct cJSON *cli_json_u64(uint64_t v);

/* --packing element|channel|auto (packing.c), the same in keygen, encrypt, infer, decrypt and
 * submit: *packing = CLI_PACK_*, or an error (returns 1 after printing it). */
enum { CLI_PACK_ELEMENT = 0, CLI_PACK_CHANNEL = 1, CLI_PACK_AUTO = 2 };
int cli_parse_packing(const char *cmd, const char *s, int *packing);
/* The value of the last --NAME V / --NAME=V in argv (NULL: none), for the commands that
 * dispatch on an option before parsing the others. */
const char *cli_arg_value(int argc, char **argv, const char *name);
/* infer: the packing to run. No --packing: element-wise (the file is checked later);
 * --packing P with --in FILE: cli_follow_packing, *is_auto = (P is auto); 1 on error. */
int cli_dispatch_packing(const char *cmd, int argc, char **argv, int *packing, int *is_auto);
/* The packing batch file `path` records (CLI_PACK_ELEMENT or _CHANNEL); 1 on error (printed). */
int cli_file_packing(const char *cmd, const char *path, int *packing);
/* infer / decrypt / submit: *packing = what `path` records; `asked` (CLI_PACK_*) must be auto
 * or the same. 1 on error (printed). */
int cli_follow_packing(const char *cmd, const char *path, int asked, int *packing);
/* "CMD: packing: channel-wise (recorded in PATH)" on stderr: what --packing auto followed,
 * printed once the command's checks passed (a refusal stays one line). */
void cli_announce_packing(const char *cmd, const char *path, int packing);
/* Operation costs: `ppnn bench costs --json` output at path, or the built-in figures for
 * 2^logn (path NULL). 1 on error (printed, naming the file). */
struct hnn_op_costs;
PPNN_MUST_CHECK ppnn_status cli_read_costs(struct hnn_op_costs *c, const char *path,
                                           unsigned logn); /* the same, not printed */
int cli_load_costs(const char *cmd, struct hnn_op_costs *c, const char *path, unsigned logn);
/* --packing auto for `images` images of m on params (hnn_packing_decide with the costs of
 * costs_path or the built-in ones, `threads` server threads, 0: this machine's): *packing and
 * why = "<choice and reason> [<costs> costs]" (the caller prints it with "CMD: packing: "
 * once its checks passed). 1 on error (printed). */
struct nn_model;
struct ckks_params;
int cli_packing_auto(const char *cmd, int *packing, char *why, size_t len,
                     const struct nn_model *m,
                     const struct ckks_params *params, const char *costs_path, size_t images,
                     int threads);

/* Strict numeric option parsing: the whole string must be a number in [lo, hi]. */
int cli_parse_size(const char *cmd, const char *opt, const char *s, size_t lo, size_t hi,
                   size_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     double *out);

/* A progress bar on stderr (only redrawn when stderr is a terminal or every ~2 s otherwise). */
typedef struct cli_progress {
    const char *label;
    size_t total, done;
    double start, last_draw;
    int tty;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, size_t total);
/* extra: optional text after the bar (loss, accuracy...). */
void cli_progress_update(cli_progress *p, size_t done, const char *extra);
void cli_progress_finish(cli_progress *p, const char *extra);

/* Key directory layout: KEYDIR/secret.key (0600, client only), relin.key, galois.key
 * (channel-wise packing only), public.key (keygen --public-key only: see cmd_keygen.c). */
#define CLI_SECRET_KEY "secret.key"
#define CLI_PUBLIC_KEY "public.key"
#define CLI_RELIN_KEY "relin.key"
#define CLI_GALOIS_KEY "galois.key"
/* buf = dir/file; PPNN_ERR_PARAM "path too long" rather than a truncated path. */
PPNN_MUST_CHECK ppnn_status cli_key_path(char *buf, size_t len, const char *dir, const char *file);
/* Creates dir (mode) unless it exists as a directory; prints an error and returns 1 otherwise. */
int cli_make_dir(const char *cmd, const char *dir, unsigned mode);
/* The same; *made = 1 when this call created it (so a failed command can remove it again). */
int cli_make_dir_new(const char *cmd, const char *dir, unsigned mode, int *made);

/* Parses a byte count: an integer or a number with K, M or G (powers of 1024); prints an error
 * and returns 1 when it is not one. */
int cli_parse_bytes(const char *cmd, const char *opt, const char *s, uint64_t *out);

/* ppnn infer under mpirun (infer_dist.c): the same job spread over the ranks. */
typedef struct cli_infer_args {
    const char *model, *keys, *in, *out;
    int threads, quiet;
    int mode;        /* dist_mode */
    uint64_t memory; /* --memory per rank (0: default) */
    int read;        /* dist_read */
} cli_infer_args;
int cli_infer_dist(const cli_infer_args *a);

/* Writes predictions as CSV "image,prediction[,logit_0,...,logit_{classes-1}]" (one line per
 * image, prediction = argmax of the logits) atomically: `ppnn decrypt --logits` and `ppnn eval
 * --predictions` write the same format so the two can be compared line by line. */
/* names (NULL: none) adds a "file" column after "image" with each image's source (CSV-quoted). */
PPNN_MUST_CHECK ppnn_status cli_write_predictions(const char *path, const double *logits,
                                                  size_t images, size_t classes,
                                                  int with_logits, const char *const *names);

/* Image input of encrypt and eval (images.c): either an IDX data set (--data/--split/--offset/
 * --count) or image files and directories (--images PATH...), optionally checked against /
 * resized to the model's input shape. */
struct data_images;
struct data_shape;
typedef struct cli_image_source {
    const char *data, *split; /* IDX data set and split */
    size_t offset, count;     /* count 0: all from offset */
    const char **paths;       /* --images: npaths files or directories (NULL: use data) */
    size_t npaths;
    int resize;               /* --resize: scale H x W to `want` */
} cli_image_source;
/* Loads the images into out (at most max_images, 0 = no limit); want may be NULL. Prints the
 * error and returns 1 on failure. */
int cli_load_images(const char *cmd, struct data_images *out, const cli_image_source *src,
                    const struct data_shape *want, size_t max_images);
/* Collects --images PATH... : the option's argument and every positional argument after
 * getopt (which moves them to argv[optind..argc)). Returns 1 (error printed) when positional
 * arguments are given without --images. */
int cli_collect_image_paths(const char *cmd, cli_image_source *src, const char *first,
                            int argc, char **argv);
/* The wanted input shape from --model M (its input) or --shape CxHxW; *have = 0 when neither
 * is given. Prints the error and returns 1 on failure. */
int cli_want_shape(const char *cmd, struct data_shape *out, int *have, const char *model,
                   const char *shape);

/* Loads the names manifest at path and checks it belongs to a batch of `images` images under
 * key_id (CKKS_KEY_ID_BYTES). Prints the error and returns 1 on failure. */
struct data_manifest;
int cli_check_names(const char *cmd, struct data_manifest *out, const char *path,
                    const uint8_t *key_id, size_t images);

/* Subcommands. */
int cmd_data(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_submit(int argc, char **argv);

/* ppnn demo --serve (demo_serve.c): the server step through an in-process `ppnn serve` on
 * loopback (temporary state in tmp) and the submit client; writes result like infer would. */
int cli_demo_serve(const char *tmp, const char *model, const char *keys, const char *batch,
                   const char *result, size_t threads);

/* Channel-wise packing (cmd_channel.c): the encrypt and infer paths; the decryption of
 * per-image logit ciphertexts (slots 0..classes-1). */
int cli_channel_infer(int argc, char **argv, int announce); /* announce: --packing auto */
struct ckks_secret_key;
/* Encrypts the loaded images (values in [0, 1]) channel-wise for model_path's plan into out. */
int cli_channel_encrypt_images(const char *out, const struct ckks_secret_key *sk,
                               const struct ckks_params *params, const char *model_path,
                               const struct data_images *im);
struct ckks_ciphertext;
struct ckks_flood;
int cli_channel_logits(double *logits, const struct ckks_secret_key *sk,
                       const struct ckks_ciphertext *cts, size_t images, size_t classes,
                       const struct ckks_flood *flood);

#endif
