/* synthetic.h: the synthetic "beans-like" dataset (mpifit make-dataset
 * synthetic-beans): leaf photos drawn procedurally in the three beans classes,
 * written as a class-folder tree of JPEGs. Learnable, not trivial, and needs no
 * download, so the quickstart can train on it anywhere. */
#ifndef MF_SYNTHETIC_H
#define MF_SYNTHETIC_H
#include <stdint.h>
#include "mpifit/status.h"

/* The beans class names, sorted (= label order). */
#define MF_SYNTH_NUM_CLASSES 3
extern const char *const mf_synth_class_names[MF_SYNTH_NUM_CLASSES];

/* Draw one size x size RGB8 image of class `label` (0 angular_leaf_spot,
 * 1 bean_rust, 2 healthy) into rgb (size*size*3 bytes), fully determined by
 * (seed). */
void mf_synth_draw(uint8_t *rgb, int size, int label, uint64_t seed);

typedef struct mf_synth_options {
    int      n_train;       /* images in train/, spread evenly over the classes */
    int      n_validation;  /* images in validation/ */
    int      n_test;        /* images in test/ (0: no test/ folder) */
    int      size;          /* square side in pixels (beans: 500) */
    int      quality;       /* JPEG quality */
    uint64_t seed;
} mf_synth_options;

/* Write OUT/{train,validation[,test]}/<class>/<class>_NNNN.jpg. OUT may exist;
 * files are written to a temporary name and renamed, so an interrupted run never
 * leaves a half-written JPEG. Errors name the path. Uses `threads` threads. */
mf_status mf_synth_write_dataset(const char *out_dir, const mf_synth_options *opt, int threads);
#endif
