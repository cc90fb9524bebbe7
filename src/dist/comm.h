/* comm.h: the MPI module. src/dist/comm.c is the only library file that calls
 * MPI_* (miniAMR keeps all communication in comm*.c the same way). */
#ifndef MF_COMM_H
#define MF_COMM_H
#include <stddef.h>

/* Name and version of the MPI library linked in, e.g. "Open MPI v4.1.4". */
const char *mf_comm_library_version(void);
/* MPI_Init_thread(FUNNELED) if MPI is not up yet, install MPI_Abort as the panic
 * path and tell the logger this process' rank. Returns 0, or the MPI error. */
int  mf_comm_startup(int *argc, char ***argv);
/* MPI_Finalize if mf_comm_startup initialised MPI. */
void mf_comm_shutdown(void);
int  mf_comm_world_rank(void);
int  mf_comm_world_size(void);
#endif
