/* The path policy (src/util/paths.c): non-regular inputs, outputs equal to inputs, kinds,
 * --force, write-through for FIFOs and character devices, length limits. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static const uint8_t PID[PPNN_PARAM_ID_BYTES] = {7};

static void write_container(const char *path, const char *kind)
{
    ppnn_file_writer fw;
    CHECK_OK(ppnn_file_create(&fw, path, 0600, kind, 1, PID, 3));
    CHECK_OK(ppnn_file_put(&fw, "abc", 3));
    CHECK_OK(ppnn_file_finish(&fw));
}

static void test_inputs(void)
{
    char fifo[PATH_MAX];
    CHECK_OK(ppnn_path_join(fifo, sizeof fifo, tu_tmpdir(), "in.fifo"));
    CHECK(mkfifo(fifo, 0600) == 0);
    int fd;
    /* without O_NONBLOCK this open would block forever (no writer) */
    CHECK_ERR(ppnn_path_open_input(&fd, fifo), PPNN_ERR_IO);
    CHECK(strstr(ppnn_last_error(), "not a regular file") != NULL);
    uint8_t *buf;
    size_t len;
    CHECK_ERR(ppnn_read_file(&buf, &len, fifo, 100), PPNN_ERR_IO);
    CHECK_ERR(ppnn_read_file(&buf, &len, tu_tmpdir(), 100), PPNN_ERR_IO);
    CHECK_ERR(ppnn_read_file(&buf, &len, "/dev/zero", 100), PPNN_ERR_IO);
    const char *reg = tu_write("in.bin", "hello", 5);
    CHECK_OK(ppnn_path_open_input(&fd, reg));
    CHECK(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK));
    close(fd);
}

static void test_outputs(void)
{
    const char *dir = tu_tmpdir();
    char sk[PATH_MAX], ct[PATH_MAX], csv[PATH_MAX], fresh[PATH_MAX], alias[PATH_MAX];
    CHECK_OK(ppnn_path_join(sk, sizeof sk, dir, "secret.key"));
    CHECK_OK(ppnn_path_join(ct, sizeof ct, dir, "b.ct"));
    CHECK_OK(ppnn_path_join(csv, sizeof csv, dir, "p.csv"));
    CHECK_OK(ppnn_path_join(fresh, sizeof fresh, dir, "fresh.ct"));
    write_container(sk, "SKEY");
    write_container(ct, "CBAT");
    const char *text = tu_write("p.csv", "image,prediction\n", 17);
    CHECK(!strcmp(text, csv));
    int through;
    /* another kind is refused, the same kind and new files are fine */
    CHECK_ERR(ppnn_path_check_output(&through, sk, "CBAT"), PPNN_ERR_PARAM);
    CHECK(strstr(ppnn_last_error(), "holds a secret key file") != NULL);
    CHECK_ERR(ppnn_path_check_output(&through, sk, NULL), PPNN_ERR_PARAM);
    CHECK_ERR(ppnn_path_check_output(&through, csv, "CBAT"), PPNN_ERR_PARAM);
    CHECK_OK(ppnn_path_check_output(&through, ct, "CBAT"));
    CHECK_OK(ppnn_path_check_output(&through, csv, NULL));
    CHECK_OK(ppnn_path_check_output(&through, fresh, "CBAT"));
    CHECK(!through);
    /* before ppnn_paths_begin, inputs are not tracked: a library user may rewrite what it read */
    ppnn_file_view v0;
    CHECK_OK(ppnn_file_open(&v0, ct, "CBAT", 1, 1000));
    ppnn_file_close(&v0);
    CHECK_OK(ppnn_path_check_output(&through, ct, "CBAT"));
    ppnn_paths_begin(0);
    /* the writer applies the policy: the secret key survives a write of another kind */
    ppnn_file_writer fw;
    CHECK_ERR(ppnn_file_create(&fw, sk, 0600, "CBAT", 1, PID, 3), PPNN_ERR_PARAM);
    ppnn_file_view v;
    CHECK_OK(ppnn_file_open(&v, sk, "SKEY", 1, 1000));
    ppnn_file_close(&v);
    /* --force replaces a file of another kind */
    ppnn_paths_begin(1);
    CHECK_OK(ppnn_path_check_output(&through, csv, "CBAT"));
    ppnn_paths_begin(0);
    /* an input of the current command is never an output, by inode or through another name */
    CHECK_OK(ppnn_file_open(&v, ct, "CBAT", 1, 1000));
    ppnn_file_close(&v);
    CHECK_ERR(ppnn_path_check_output(&through, ct, "CBAT"), PPNN_ERR_PARAM);
    CHECK(strstr(ppnn_last_error(), "is also an input") != NULL);
    CHECK_OK(ppnn_path_join(alias, sizeof alias, dir, "alias.ct"));
    CHECK(link(ct, alias) == 0);
    CHECK_ERR(ppnn_path_check_output(&through, alias, "CBAT"), PPNN_ERR_PARAM);
    ppnn_paths_begin(1); /* --force does not allow it either; a new command forgets inputs */
    CHECK_OK(ppnn_path_check_output(&through, ct, "CBAT"));
    CHECK_OK(ppnn_file_open(&v, ct, "CBAT", 1, 1000));
    ppnn_file_close(&v);
    CHECK_ERR(ppnn_path_check_output(&through, alias, "CBAT"), PPNN_ERR_PARAM);
    ppnn_paths_begin(0);
    /* an input that was removed since: the resolved name still matches */
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, alias, 1000));
    free(buf);
    CHECK(unlink(alias) == 0);
    char dotted[PATH_MAX];
    snprintf(dotted, sizeof dotted, "%s/./alias.ct", dir);
    CHECK_ERR(ppnn_path_check_output(&through, dotted, "CBAT"), PPNN_ERR_PARAM);
    ppnn_paths_begin(0);
    /* directories are refused, devices and FIFOs written through */
    CHECK_ERR(ppnn_path_check_output(&through, dir, NULL), PPNN_ERR_IO);
    CHECK_OK(ppnn_path_check_output(&through, "/dev/null", NULL));
    CHECK(through);
    ppnn_wfile w;
    CHECK_OK(ppnn_wfile_open(&w, "/dev/null", 0644));
    CHECK_OK(ppnn_wfile_write(&w, "x", 1));
    CHECK_OK(ppnn_wfile_commit(&w));
    struct stat sb;
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
    CHECK_OK(ppnn_wfile_open(&w, "/dev/null", 0644));
    ppnn_wfile_abort(&w);
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
}

static void test_lengths(void)
{
    char small[16];
    CHECK_ERR(ppnn_path_join(small, sizeof small, "0123456789", "secret.key"), PPNN_ERR_PARAM);
    CHECK(small[0] == 0);
    CHECK_OK(ppnn_path_join(small, sizeof small, "0123", "secret.key"));
    CHECK(!strcmp(small, "0123/secret.key"));
    size_t n = PATH_MAX + 10;
    char *huge = malloc(n + 1);
    memset(huge, 'a', n);
    huge[n] = 0;
    int through, fd;
    CHECK_ERR(ppnn_path_check_output(&through, huge, NULL), PPNN_ERR_PARAM);
    CHECK(strstr(ppnn_last_error(), "path too long") != NULL);
    CHECK_ERR(ppnn_path_open_input(&fd, huge), PPNN_ERR_PARAM);
    ppnn_wfile w;
    CHECK_ERR(ppnn_wfile_open(&w, huge, 0644), PPNN_ERR_PARAM);
    free(huge);
}

int main(void)
{
    test_inputs();
    test_outputs();
    test_lengths();
    return tu_finish("test_paths");
}
