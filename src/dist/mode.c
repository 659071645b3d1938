/* Mode names and the launcher check (dist.h): plain code, in builds with and without MPI. */
#include <stdlib.h>
#include <string.h>

#include "dist/inner.h"

static const char *const mode_names[] = {"auto", "model", "data"};
static const char *const read_names[] = {"auto", "shared", "root"};

/* Index of s in a table of 3 names, or -1; and the name of index i, or "?". */
static int name_index(const char *const names[3], const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static const char *name_at(const char *const names[3], unsigned i)
{
    return i < 3 ? names[i] : "?";
}

int dist_mode_parse(const char *s) { return name_index(mode_names, s); }
const char *dist_mode_name(dist_mode m) { return name_at(mode_names, (unsigned)m); }
int dist_read_parse(const char *s) { return name_index(read_names, s); }
const char *dist_read_name(dist_read r) { return name_at(read_names, (unsigned)r); }

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
