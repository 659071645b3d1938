/* Key directory conventions shared by keygen / encrypt / infer / decrypt. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

ppnn_status cli_key_path(char *buf, size_t len, const char *dir, const char *file)
{
    return ppnn_path_join(buf, len, dir, file);
}

int cli_make_dir(const char *cmd, const char *dir, unsigned mode)
{
    int made;
    return cli_make_dir_new(cmd, dir, mode, &made);
}

int cli_make_dir_new(const char *cmd, const char *dir, unsigned mode, int *made)
{
    *made = 0;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return cli_error(cmd, "%s exists and is not a directory", dir);
        return 0;
    }
    if (mkdir(dir, (mode_t)mode) != 0)
        return cli_error(cmd, "cannot create directory %s: %s", dir, strerror(errno));
    *made = 1;
    return 0;
}
