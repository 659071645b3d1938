/* Mode names and the launcher check (dist.h): plain code, in builds with and without MPI. */
#include <stdlib.h>
#include <string.h>

#include "dist/inner.h"

static const char *const mode_names[] = {"auto", "model", "data"};

int dist_mode_parse(const char *s)
{
    for (int m = 0; m < 3; m++)
        if (!strcmp(s, mode_names[m]))
            return m;
    return -1;
}

const char *dist_mode_name(dist_mode m)
{
    return (unsigned)m < 3 ? mode_names[m] : "?";
}

static const char *const read_names[] = {"auto", "shared", "root"};

int dist_read_parse(const char *s)
{
    for (int r = 0; r < 3; r++)
        if (!strcmp(s, read_names[r]))
            return r;
    return -1;
}

const char *dist_read_name(dist_read r)
{
    return (unsigned)r < 3 ? read_names[r] : "?";
}

int dist_launched(void)
{
    /* Open MPI's mpirun, MPICH/Hydra and Slurm's srun (PMI), PMIx-based launchers. */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

size_t dist_launch_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v)
            return (size_t)strtoul(v, NULL, 10);
    }
    return 0;
}

dist_mode dist_choose_mode(dist_mode asked, size_t nbatches, size_t nranks)
{
    if (asked != DIST_AUTO)
        return asked;
    return nbatches >= nranks && nbatches > 1 ? DIST_DATA : DIST_MODEL;
}
