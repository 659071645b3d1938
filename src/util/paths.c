/* The path policy of every file ppnn reads or writes (contract in ppnn/util.h, "paths").
 *
 * Why each rule exists:
 *   - inputs must be regular files: open(2) of a FIFO blocks until a writer appears and a
 *     character device may never end, so `--in fifo` used to hang every command. The file is
 *     opened O_NONBLOCK (which cannot block on a FIFO) and checked with fstat before any read.
 *   - an output must not be one of the command's inputs (same st_dev/st_ino, or the same
 *     resolved path when the output does not exist yet): `infer --in b.ct --out b.ct` used to
 *     replace its own input with exit 0.
 *   - an existing file of another kind is not replaced without --force: the kind is the
 *     four-character code of the container header ("SKEY", "CTXT", "MODL", ...; anything else is
 *     "other"), so `encrypt --out KEYDIR/secret.key` cannot destroy the secret key.
 *   - character devices and FIFOs named as outputs are written through, never replaced
 *     (renaming a temporary file over /dev/null, as root, replaces /dev/null itself).
 *   - paths that do not fit in PATH_MAX are refused, never truncated.
 * The inputs of the current command are remembered per thread (like ppnn_last_error) between
 * ppnn_paths_begin() calls; a program that never calls it (a library user re-saving a model it
 * loaded) gets every rule but that one. */
#include "ppnn/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INPUTS 64

typedef struct input_rec {
    dev_t dev;
    ino_t ino;
    char *real; /* realpath at the time it was read, or NULL */
} input_rec;

static _Thread_local input_rec inputs[MAX_INPUTS];
static _Thread_local size_t ninputs;
static _Thread_local int force_replace;
static _Thread_local int tracking; /* inputs are remembered only after ppnn_paths_begin() */

void ppnn_paths_begin(int force)
{
    for (size_t i = 0; i < ninputs; i++)
        free(inputs[i].real);
    memset(inputs, 0, sizeof inputs);
    ninputs = 0;
    force_replace = force;
    tracking = 1;
}

static ppnn_status check_length(const char *path)
{
    /* + ".tmp.XXXXXX" of the atomic writer, + NUL */
    size_t n = strlen(path);
    if (n == 0)
        return ppnn_fail(PPNN_ERR_PARAM, "empty file name");
    if (n + 12 > PATH_MAX)
        return ppnn_fail(PPNN_ERR_PARAM, "path too long (%zu bytes; the limit is %d): %.40s...", n,
                         PATH_MAX - 12, path);
    return PPNN_OK;
}

static void remember(const struct stat *sb, const char *path)
{
    if (!tracking)
        return;
    for (size_t i = 0; i < ninputs; i++)
        if (inputs[i].dev == sb->st_dev && inputs[i].ino == sb->st_ino)
            return;
    if (ninputs == MAX_INPUTS) { /* forget the oldest: a command reads a handful of files */
        free(inputs[0].real);
        memmove(inputs, inputs + 1, (MAX_INPUTS - 1) * sizeof *inputs);
        ninputs--;
    }
    inputs[ninputs].dev = sb->st_dev;
    inputs[ninputs].ino = sb->st_ino;
    inputs[ninputs].real = realpath(path, NULL);
    ninputs++;
}

ppnn_status ppnn_path_open_input(int *fd_out, const char *path)
{
    *fd_out = -1;
    ppnn_status st = check_length(path);
    if (st)
        return st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ppnn_fail(PPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ppnn_fail(PPNN_ERR_IO, "%s: not a regular file (FIFOs, devices and directories "
                                      "are not read)", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return ppnn_fail(PPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    remember(&sb, path);
    *fd_out = fd;
    return PPNN_OK;
}

/* The kind of an existing regular file: its container code, "MODL" for version-1 model files
 * (their own frame, magic "PPNNMODL"), or "" (not a ppnn file). */
static void file_kind(char kind[5], const char *path)
{
    static const uint8_t magic[8] = {'P', 'P', 'N', 'N', 0, '\r', '\n', 0x1a};
    memset(kind, 0, 5);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    uint8_t h[12];
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n == (ssize_t)sizeof h && !memcmp(h, magic, 8))
        memcpy(kind, h + 8, 4);
    else if (n >= 8 && !memcmp(h, "PPNNMODL", 8))
        memcpy(kind, "MODL", 4);
}

static const char *kind_name(const char *kind)
{
    static const char *names[][2] = {
        {"SKEY", "secret key"},       {"PKEY", "public key"}, {"RKEY", "relinearization key"},
        {"GKEY", "Galois keys"},      {"CBAT", "ciphertext batch"}, {"MODL", "model"},
        {"PARM", "CKKS parameters"},
    };
    if (!kind[0])
        return "non-ppnn";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncmp(kind, names[i][0], 4))
            return names[i][1];
    return "ppnn";
}

/* realpath of a path that may not exist yet: realpath(dirname) + "/" + basename. */
static char *resolve_new(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    char *rdir = dir ? realpath(dir, NULL) : NULL;
    free(dir);
    if (!rdir)
        return NULL;
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(rdir) + strlen(base) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", rdir, base);
    free(rdir);
    return out;
}

ppnn_status ppnn_path_check_output(int *through, const char *path, const char *kind)
{
    *through = 0;
    ppnn_status st = check_length(path);
    if (st)
        return st;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT)
            return ppnn_fail(PPNN_ERR_IO, "%s: %s", path, strerror(errno));
        char *r = resolve_new(path);
        for (size_t i = 0; r && i < ninputs; i++)
            if (inputs[i].real && !strcmp(inputs[i].real, r))
                st = ppnn_fail(PPNN_ERR_PARAM, "%s is also an input of this command; write the "
                                               "output to another file", path);
        free(r);
        return st;
    }
    for (size_t i = 0; i < ninputs; i++)
        if (inputs[i].dev == sb.st_dev && inputs[i].ino == sb.st_ino)
            return ppnn_fail(PPNN_ERR_PARAM, "%s is also an input of this command; write the "
                                             "output to another file", path);
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) {
        *through = 1;
        return PPNN_OK;
    }
    if (S_ISDIR(sb.st_mode))
        return ppnn_fail(PPNN_ERR_IO, "%s is a directory, not an output file", path);
    if (!S_ISREG(sb.st_mode))
        return ppnn_fail(PPNN_ERR_IO, "%s: not a regular file, a character device or a FIFO", path);
    char old[5];
    file_kind(old, path);
    const char *new_kind = kind ? kind : "";
    if (sb.st_size > 0 && strncmp(old, new_kind, 4) && !force_replace)
        return ppnn_fail(PPNN_ERR_PARAM, "%s exists and holds a %s file; refusing to replace it "
                                         "with a %s file (--force overwrites it)", path,
                         kind_name(old), kind_name(new_kind));
    return PPNN_OK;
}

ppnn_status ppnn_path_join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = 0;
        return ppnn_fail(PPNN_ERR_PARAM, "path too long (%zu bytes; the limit is %zu): %.40s...",
                         strlen(dir) + 1 + strlen(name), len - 1, dir);
    }
    return check_length(buf);
}
