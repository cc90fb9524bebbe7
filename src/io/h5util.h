/* h5util.h: what every HDF5 user in mpifit shares. Debian's HDF5 is built
 * without thread safety, so every HDF5 call in the process, from any thread
 * (loader workers reading a packed dataset, the main thread writing metrics or
 * checkpoints), holds the one lock. HDF5's own error printing is turned off; our
 * callers report failures with the file name instead. */
#ifndef MF_H5UTIL_H
#define MF_H5UTIL_H
#include <hdf5.h>

void mf_h5_lock(void);
void mf_h5_unlock(void);
/* The innermost HDF5 error message of the current error stack ("" if none),
 * for messages like "cannot open x.h5: unable to open file (truncated file)". */
const char *mf_h5_error(char *buf, size_t n);

/* The end of every atomic write: if s is OK, fsync tmp, rename it to path and
 * fsync the directory (so the rename itself survives a crash); otherwise, or
 * if any of that fails, remove tmp. The previous file at path is untouched
 * unless the new one is complete. Returns the resulting status. */
#include "mpifit/status.h"
mf_status mf_commit_file(const char *tmp, const char *path, mf_status s);
#endif
