/* build_info.c: what the library was built with and is linked against. The
 * one file that spans every module, so it sits on the library's top floor
 * (docs/ARCHITECTURE.md); each module answers for its own dependency. */
#include <stdio.h>
#include "mpifit/version.h"
#include "../tensor/gemm.h"
#include "../dist/comm.h"
#include "../io/h5util.h"
#include "../data/jpeg.h"

const char *mf_build_info(void)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "mpifit %s; BLAS: %s; MPI: %s; HDF5 %s; TurboJPEG API %s", mf_version(), mf_blas_info(),
             mf_comm_library_version(), mf_h5_library_version(), mf_jpeg_api_version());
    return buf;
}
