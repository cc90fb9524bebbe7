/* mpifit/status.h: error reporting.
 *
 * Three tiers (see STYLE.md 3.4):
 *  1. bugs and broken invariants -> MF_ASSERT (internal), always on, abort the job;
 *  2. user and environment errors -> functions return an mf_status < 0 and leave a
 *     message for mf_last_error() naming the file/line/rank and what is wrong;
 *  3. MPI/HDF5 failures are turned into (2) by the module that calls them. */
#ifndef MPIFIT_STATUS_H
#define MPIFIT_STATUS_H
#include "mpifit/version.h"

typedef enum mf_status {
    MF_STATUS_OK = 0,
    MF_STATUS_INVALID = -1, /* bad argument to an API call                 */
    MF_STATUS_CONFIG = -2, /* bad configuration value or file             */
    MF_STATUS_IO = -3, /* file missing, unreadable, unwritable        */
    MF_STATUS_DATA = -4, /* bad input data (JPEG, dataset layout)       */
    MF_STATUS_SHAPE = -5, /* incompatible tensor shapes                  */
    MF_STATUS_NOMEM = -6, /* allocation refused (recoverable sites only) */
    MF_STATUS_MPI = -7, /* an MPI call failed                          */
    MF_STATUS_HDF5 = -8, /* an HDF5 call failed                         */
    MF_STATUS_NUMERIC = -9, /* NaN/Inf where a number was required         */
    MF_STATUS_PREEMPTED = -10 /* stopped on request (signal), checkpoint written */
} mf_status;

/* Message of the most recent failure on this thread ("" if none). Thread-local
 * storage owned by the library; valid until the next failure on this thread. */
MF_API const char *mf_last_error(void);
/* Short name of a status code, e.g. "config". Static storage. */
MF_API const char *mf_status_name(mf_status s);
/* Forget the last error message of this thread. */
MF_API void mf_clear_error(void);
#endif
