/* version.c: the library's version. (What it is linked against:
 * src/lib/build_info.c.) */
#include "mpifit/version.h"

const char *mf_version(void) { return MF_VERSION_STRING; }
