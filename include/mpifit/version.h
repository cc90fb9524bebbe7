/* mpifit/version.h: library version and the MF_API export macro. */
#ifndef MPIFIT_VERSION_H
#define MPIFIT_VERSION_H
#include "mpifit/version_gen.h"

/* The library is built with -fvisibility=hidden; only MF_API names are exported
 * from a shared libmpifit (ggml's GGML_API, Lua's LUA_API). */
#if defined(__GNUC__)
#define MF_API __attribute__((visibility("default")))
#define MF_PRINTF_ATTR(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define MF_API
#define MF_PRINTF_ATTR(fmt, args)
#endif

/* Version of the library actually linked, "MAJOR.MINOR.PATCH". Never NULL. */
MF_API const char *mf_version(void);
/* One line naming the linked BLAS, MPI library, HDF5 and TurboJPEG versions
 * (for bug reports and `mpifit --version`). Static storage, never NULL. */
MF_API const char *mf_build_info(void);
#endif
