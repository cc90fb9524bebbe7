/* comm.c: everything that talks to MPI. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include "comm.h"
#include "../core/core.h"

static int started_here;

const char *mf_comm_library_version(void)
{
    static char buf[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(buf, &len);
    /* Open MPI's string runs on with a package description and a newline;
     * the first line is the part worth printing. */
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    char *comma = strchr(buf, ',');
    if (comma)
        *comma = '\0';
    return buf;
}

static void abort_world(int code)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down)
        MPI_Abort(MPI_COMM_WORLD, code);
}

int mf_comm_startup(int *argc, char ***argv)
{
    int up = 0, provided = 0;
    MPI_Initialized(&up);
    if (!up) {
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return rc;
        started_here = 1;
    }
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mf_log_set_rank(rank, size);
    mf_set_abort_handler(abort_world);
    return 0;
}

void mf_comm_shutdown(void)
{
    int down = 0;
    MPI_Finalized(&down);
    if (started_here && !down)
        MPI_Finalize();
    mf_set_abort_handler(NULL);
    started_here = 0;
}

int mf_comm_world_rank(void)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

int mf_comm_world_size(void)
{
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}
