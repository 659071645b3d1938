/* Internal header of the ppnn command-line tool: one file per subcommand (cmd_*.c). */
#ifndef PPNN_CLI_H
#define PPNN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "ppnn/util.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* Prints "ppnn CMD: error: <msg>" (one line) to stderr and returns the exit code 1. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for a failed library call: prints ppnn_last_error(). Exit code 1. */
int cli_fail(const char *cmd, ppnn_status st);

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

/* Key directory layout: KEYDIR/secret.key (0600, client only), public.key, relin.key,
 * galois.key (channel-wise packing only). */
#define CLI_SECRET_KEY "secret.key"
#define CLI_PUBLIC_KEY "public.key"
#define CLI_RELIN_KEY "relin.key"
#define CLI_GALOIS_KEY "galois.key"
void cli_key_path(char *buf, size_t len, const char *dir, const char *file);
/* Creates dir (mode) unless it exists as a directory; prints an error and returns 1 otherwise. */
int cli_make_dir(const char *cmd, const char *dir, unsigned mode);

/* Writes predictions as CSV "image,prediction[,logit_0,...,logit_{classes-1}]" (one line per
 * image, prediction = argmax of the logits) atomically: `ppnn decrypt --logits` and `ppnn eval
 * --predictions` write the same format so the two can be compared line by line. */
PPNN_MUST_CHECK ppnn_status cli_write_predictions(const char *path, const double *logits,
                                                  size_t images, size_t classes,
                                                  int with_logits);

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
int cmd_serve(int argc, char **argv);
int cmd_submit(int argc, char **argv);

/* ppnn demo --serve (demo_serve.c): the server step through an in-process `ppnn serve` on
 * loopback (temporary state in tmp) and the submit client; writes result like infer would. */
int cli_demo_serve(const char *tmp, const char *model, const char *keys, const char *batch,
                   const char *result, size_t threads);

/* Channel-wise packing (cmd_channel.c): 1 if argv asks for --packing channel; the encrypt and
 * infer paths; the decryption of per-image logit ciphertexts (slots 0..classes-1). */
int cli_wants_channel(int argc, char **argv);
int cli_channel_encrypt(int argc, char **argv);
int cli_channel_infer(int argc, char **argv);
struct ckks_secret_key;
struct ckks_ciphertext;
int cli_channel_logits(double *logits, const struct ckks_secret_key *sk,
                       const struct ckks_ciphertext *cts, size_t images, size_t classes,
                       unsigned release_bits);

#endif
