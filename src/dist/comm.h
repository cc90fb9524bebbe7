/* comm.h (private): the MPI library's version string, for mf_build_info().
 * The public API is mpifit/comm.h. */
#ifndef MF_COMM_PRIVATE_H
#define MF_COMM_PRIVATE_H
const char *mf_comm_library_version(void);
#endif
