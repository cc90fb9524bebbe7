/* mpifit/checkpoint.h: weights in Keras' HDF5 layout.
 *
 * Keras 2's model.save_weights("x.h5") layout, which keras.applications'
 * pretrained files use too: root attributes layer_names, backend,
 * keras_version; one group per layer with attribute weight_names; each weight
 * at /<layer>/<layer>/<weight>:0 in Keras' own layout (Conv2D kernels HWIO,
 * depthwise kernels (K,K,C,1), Dense kernels (in, out), BatchNormalization
 * gamma, beta, moving_mean, moving_variance). mpifit keeps every weight in
 * exactly those layouts, so loading is by name with a shape check and no
 * transposition. */
#ifndef MPIFIT_CHECKPOINT_H
#define MPIFIT_CHECKPOINT_H
#include "mpifit/model.h"

typedef struct mf_weights_report {
    int  loaded_layers;         /* layers whose every weight came from the file */
    int  missing_layers;        /* layers with weights that the file does not have */
    char missing[1024];         /* their names, comma-separated (truncated with "...") */
    int  file_layers;           /* layers with weights in the file */
} mf_weights_report;

/* Load every weight of m whose layer exists in the file, by name (Keras'
 * load_weights(by_name=True)); layers absent from the file keep their values
 * and are listed in the report. A layer present with a different weight shape
 * is an error naming the layer, the weight and both shapes, and nothing is
 * changed. Collective: no (rank 0 reads; others receive a broadcast). */
MF_API mf_status mf_weights_load_keras(mf_model *m, const char *path, mf_weights_report *report);
/* Write every weight of m in Keras' layout, atomically (path.tmp, fsync,
 * rename): h5py and Keras' load_weights read the result. */
MF_API mf_status mf_weights_save_keras(mf_model *m, const char *path);
#endif
