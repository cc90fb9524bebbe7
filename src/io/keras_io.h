/* keras_io.h: Keras-layout weight groups inside any HDF5 location (a weights
 * file's root, or a checkpoint's /model_weights). Callers hold mf_h5_lock(). */
#ifndef MF_KERAS_IO_H
#define MF_KERAS_IO_H
#include <hdf5.h>
#include "mpifit/checkpoint.h"

/* The Keras version mpifit's files claim, at the root of a full model and on
 * every weights group: the Keras whose model.to_json() form mpifit writes
 * (class "Functional": the Keras of TensorFlow >= 2.4), one value everywhere. */
#define MF_KERAS_VERSION "2.13.1"

/* Write every layer of m (layer_names/weight_names attributes, datasets
 * <layer>/<layer>/<weight>:0) into loc; `what` names the file for messages. */
mf_status mf_keras_write_group(hid_t loc, mf_model *m, const char *what);
/* Read by layer name from loc: every shape is checked before any weight is
 * written; layers absent from loc are counted in r. */
mf_status mf_keras_read_group(hid_t loc, mf_model *m, const char *what, mf_weights_report *r);
#endif
