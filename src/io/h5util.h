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
#endif
