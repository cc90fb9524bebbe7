/* model_desc.h: the model description attributes (mpifit/checkpoint.h,
 * mf_model_desc) at any HDF5 location: a weights file's root, a checkpoint's
 * root. Callers hold mf_h5_lock(). */
#ifndef MF_MODEL_DESC_H
#define MF_MODEL_DESC_H
#include <hdf5.h>
#include "mpifit/checkpoint.h"

/* Write d's model_* attributes into loc, and its class_names too when
 * with_names (a checkpoint stores its class names itself). 0, or -1 when an
 * HDF5 call failed (mf_h5_error has why). */
int mf_model_desc_put(hid_t loc, const mf_model_desc *d, int with_names);
/* Read and check them from loc (see mf_model_desc_read for the checks and
 * statuses); `what` names the file in messages. On failure d is zeroed. */
mf_status mf_model_desc_get(hid_t loc, const char *what, mf_model_desc *d);
#endif
