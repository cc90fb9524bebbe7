/* version.c: what was built and what it is linked against. */
#include <hdf5.h>
#include <stdio.h>
#include <turbojpeg.h>
#include "mpifit/version.h"
#include "../tensor/gemm.h"
#include "../dist/comm.h"

const char *mf_version(void) { return MF_VERSION_STRING; }

const char *mf_build_info(void)
{
    static char buf[512];
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, sizeof buf, "mpifit %s; BLAS: %s; MPI: %s; HDF5 %u.%u.%u; TurboJPEG API %s",
             MF_VERSION_STRING, mf_blas_info(), mf_comm_library_version(), maj, min, rel,
#ifdef TJFLAG_LIMITSCANS
             "2.1+"
#else
             "2.0"
#endif
    );
    return buf;
}
