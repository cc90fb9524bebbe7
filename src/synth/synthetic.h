/* synthetic.h: the synthetic "beans-like" dataset (mpifit make-dataset
 * synthetic-beans): leaf photos drawn procedurally in the three beans classes,
 * written as a class-folder tree of JPEGs. Learnable, not trivial, and needs no
 * download, so the quickstart can train on it anywhere.
 *
 * Each picture: one bean leaflet (ovate, pointed tip, sometimes a heart-shaped
 * base; 55-85% of the frame, any rotation, varied green, pale midrib and
 * lateral veins) over soil, a dark gap or out-of-focus foliage, with its
 * shadow, uneven lighting, a colour cast, slight blur and sensor noise.
 * angular_leaf_spot: angular grey-brown to dark brown lesions bounded by the
 * small veins (the larger ones spread over several areoles, cut apart by the
 * veins), some with a yellow margin; bean_rust: many small round orange to
 * rust-brown pustules in pale yellow halos; healthy: a clean leaf. Every class
 * may carry a few tiny blemishes and some yellow mottling. */
#ifndef MF_SYNTHETIC_H
#define MF_SYNTHETIC_H
#include <stdint.h>
#include "mpifit/status.h"

/* The beans class names, sorted (= label order). */
#define MF_SYNTH_NUM_CLASSES 3
extern const char *const mf_synth_class_names[MF_SYNTH_NUM_CLASSES];

/* Image sides accepted by the drawing functions. */
#define MF_SYNTH_MIN_SIZE 16
#define MF_SYNTH_MAX_SIZE 4096

/* Draw one size x size RGB8 image of class `label` (0 angular_leaf_spot,
 * 1 bean_rust, 2 healthy) into rgb (size*size*3 bytes), fully determined by
 * (size, label, seed): the same on every run, thread and platform with IEEE
 * floats. For a given seed the leaf, background and lighting do not depend on
 * the label; only the disease features do. Thread-safe. size must be in
 * [MF_SYNTH_MIN_SIZE, MF_SYNTH_MAX_SIZE] and label valid (asserted). Takes a
 * few milliseconds at 500 px. */
void mf_synth_draw(uint8_t *rgb, int size, int label, uint64_t seed);

/* mf_synth_draw that also returns the leaf's coverage (size*size bytes,
 * 255 = leaf or petiole, 0 = background, in between on the anti-aliased edge)
 * when leaf_mask is not NULL: for tests and for segmentation experiments. */
void mf_synth_draw_ex(uint8_t *rgb, uint8_t *leaf_mask, int size, int label, uint64_t seed);

typedef struct mf_synth_options {
    int n_train; /* images in train/, spread evenly over the classes */
    int n_validation; /* images in validation/ */
    int n_test; /* images in test/ (0: no test/ folder) */
    int size; /* square side in pixels (beans: 500) */
    int quality; /* JPEG quality, 1..100 */
    uint64_t seed;
} mf_synth_options;

/* Write OUT/{train,validation[,test]}/<class>/<class>_NNNN.jpg. Image i of a
 * split has class i % 3, number i / 3 within its class and a seed derived from
 * (seed, split, i), so the tree is byte-identical whatever `threads` (>= 1) is,
 * and a larger run reproduces a smaller one's files. OUT and its folders may
 * exist (mkdir -p); files from an earlier, larger run are left alone. Files are
 * written to "<name>.tmp" and renamed, so an interrupted run never leaves a
 * half-written JPEG. Errors: MF_STATUS_INVALID for bad options,
 * MF_STATUS_IO naming the path and the system's reason. */
mf_status mf_synth_write_dataset(const char *out_dir, const mf_synth_options *opt, int threads);
#endif
