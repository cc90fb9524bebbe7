/* mpifit/data.h: image datasets and the batch loader.
 *
 * A dataset is a list of labelled JPEG images, from either
 *   - a class-folder tree (Keras' image_dataset_from_directory semantics): the
 *     class names are the sorted sub-folder names and a label is its folder's
 *     index; *.jpg / *.jpeg in any case; other files ignored with one summary
 *     warning; or
 *   - a packed HDF5 file written by `mpifit pack` (one split of it).
 * Both read the same way; the loader does not know which it has.
 *
 * The loader turns a dataset into batches for one rank: the epoch's global
 * order (the same permutation on every rank), this rank's slice of every global
 * batch, decoding + augmentation + preprocessing in background threads into a
 * bounded ring of batch buffers. */
#ifndef MPIFIT_DATA_H
#define MPIFIT_DATA_H
#include <stdint.h>
#include "mpifit/status.h"
#include "mpifit/tensor.h"

typedef struct mf_dataset mf_dataset;

typedef enum mf_subset {
    MF_SUBSET_ALL = 0, /* every image */
    MF_SUBSET_TRAINING, /* all but the validation_split fraction */
    MF_SUBSET_VALIDATION /* the last validation_split fraction of the seeded shuffle */
} mf_subset;

typedef struct mf_dataset_options {
    float validation_split; /* 0 = none; in (0, 1) with subset TRAINING/VALIDATION */
    mf_subset subset;
    uint64_t seed; /* shuffle before carving the split (Keras: same seed for both subsets) */
    const char *split; /* packed files: which split ("train", "validation", "test");
                                     NULL = the only split, or "path.h5:split" in the path */
    int quiet; /* 1: no summary warnings (tests) */
    size_t max_image_bytes; /* an image file larger than this is a bad image (never read into memory);
                               0 = 64 MiB */
} mf_dataset_options;

MF_API mf_dataset_options mf_dataset_options_default(void);

/* Open a class-folder tree or a packed .h5 file. Errors (MF_STATUS_IO, _DATA)
 * name the path: missing directory, a class folder with no images, no class
 * folders at all, a packed file without the requested split. */
MF_API mf_status mf_dataset_open(mf_dataset **out, const char *path, const mf_dataset_options *opt);
MF_API void mf_dataset_free(mf_dataset *ds); /* NULL is a no-op */
MF_API int mf_dataset_size(const mf_dataset *ds);
MF_API int mf_dataset_num_classes(const mf_dataset *ds);
MF_API const char *mf_dataset_class_name(const mf_dataset *ds, int c);
MF_API int mf_dataset_label(const mf_dataset *ds, int i);
/* Where image i comes from, for messages: a file path, or "file.h5:split/name". */
MF_API const char *mf_dataset_source(const mf_dataset *ds, int i);
/* Number of non-image files ignored while scanning (0 for packed files). */
MF_API int mf_dataset_num_ignored(const mf_dataset *ds);
/* MF_STATUS_DATA naming both datasets and the first difference if their class
 * lists differ (train and validation must agree). */
MF_API mf_status mf_dataset_same_classes(const mf_dataset *a, const mf_dataset *b);
/* Read image i's JPEG bytes into *buf (grown with mf_alloc as needed; *cap is its
 * size). Thread-safe. MF_STATUS_IO with the path and reason on failure. */
MF_API mf_status mf_dataset_read(const mf_dataset *ds, int i, uint8_t **buf, size_t *cap, size_t *len);

/* Decode one JPEG file, resize the whole image to input_size x input_size and
 * preprocess it to [-1, 1], as the loader does for evaluation: x gets
 * input_size^2 * 3 floats. Errors name the path and the reason. */
MF_API mf_status mf_image_load(const char *path, int input_size, float *x);

/* ---- sharding (pure functions; the same on every rank) -------------------- */

/* Training: each step takes a global batch of batch*world consecutive entries of
 * the epoch's permutation and rank r takes entries [r*batch, (r+1)*batch) of it,
 * so 2 ranks x batch B see exactly what 1 rank x batch 2B sees. With
 * drop_remainder the last partial global batch is dropped; without, it is
 * completed by wrapping around to the start of the permutation (a few samples
 * are seen twice that epoch). Every rank runs the same number of steps. */
MF_API int mf_shard_train_steps(int n, int world, int batch, int drop_remainder);
/* idx: steps * batch entries, this rank's sample indices in step order. */
MF_API void mf_shard_train_indices(int *idx, int n, int rank, int world, int batch, uint64_t seed, int epoch,
                                   int shuffle, int drop_remainder);
/* Evaluation: global batches cover 0..n-1 in order exactly once; entries past n
 * are -1 (padding, weight 0). Every rank runs the same number of steps. */
MF_API int mf_shard_eval_steps(int n, int world, int batch);
MF_API void mf_shard_eval_indices(int *idx, int n, int rank, int world, int batch);

/* ---- the loader ------------------------------------------------------------ */

typedef enum mf_bad_image_policy {
    MF_BAD_IMAGE_SKIP = 0, /* report once (path, reason), weight 0 in its batch, count it */
    MF_BAD_IMAGE_FAIL = 1 /* stop with the path and reason */
} mf_bad_image_policy;

typedef struct mf_loader_options {
    int batch_size; /* per rank */
    int input_size; /* square side of the model input */
    int training; /* 1: shuffled, sharded as for training, augmented if augment;
                               0: in order, each sample exactly once, never augmented */
    int augment; /* random resized crop + horizontal flip (training only) */
    float crop_scale_min; /* random crop keeps [crop_scale_min, 1] of the image area */
    float crop_ratio_max; /* aspect ratio of the crop in [1/r, r] */
    int flip; /* random horizontal flip when augmenting */
    int drop_remainder; /* training: drop the last partial global batch */
    int threads; /* decoding threads (>= 1) */
    int prefetch; /* batch buffers in the ring (>= threads + 1) */
    int rank, world;
    uint64_t seed;
    mf_bad_image_policy on_bad_image;
} mf_loader_options;

MF_API mf_loader_options mf_loader_options_default(void);
/* Decoding threads when the user does not say: half of the cores this process
 * may run on (its affinity mask, which mpirun --bind-to and srun
 * --cpus-per-task set per rank), at least 1; the other half train. */
MF_API int mf_loader_default_threads(void);

/* One batch: x (batch, size, size, 3) in [-1, 1] (MobileNetV2's
 * preprocess_input), labels y, weights w (1, or 0 for padding and skipped
 * images), index (dataset index or -1). Always batch_size rows. */
typedef struct mf_batch {
    float *x;
    int32_t *y;
    float *w;
    int32_t *index;
    int n; /* rows = batch_size */
    int n_valid; /* rows with weight 1 */
    int step; /* position in the epoch */
} mf_batch;

typedef struct mf_loader mf_loader;

/* Start the worker threads. The loader keeps a pointer to ds (which must
 * outlive it). Errors: MF_STATUS_INVALID on bad options, naming the option. */
MF_API mf_status mf_loader_create(mf_loader **out, mf_dataset *ds, const mf_loader_options *opt);
/* Stop and join the workers, free everything. Safe at any point, also after an
 * error and mid-epoch. NULL is a no-op. */
MF_API void mf_loader_free(mf_loader *l);
/* Plan epoch `epoch` (its permutation and this rank's slice) and let the workers
 * start on it. Any unconsumed batches of the previous epoch are discarded. */
MF_API mf_status mf_loader_begin_epoch(mf_loader *l, int epoch);
/* The same, starting at `step` of that epoch without decoding the steps before
 * it (resuming a run mid-epoch). */
MF_API mf_status mf_loader_begin_epoch_at(mf_loader *l, int epoch, int step);
MF_API int mf_loader_steps(const mf_loader *l);
/* The next batch of the epoch, in order; blocks until it is ready. The batch
 * stays valid until the next call. MF_STATUS_DATA / _IO with the path when an
 * image is bad under on_bad_image = fail; MF_STATUS_INVALID past the last step. */
MF_API mf_status mf_loader_next(mf_loader *l, const mf_batch **out);

typedef struct mf_loader_stats {
    long images; /* decoded this epoch */
    long bad_images; /* skipped this epoch */
    double wait_seconds; /* time mf_loader_next spent blocked this epoch */
} mf_loader_stats;
MF_API mf_loader_stats mf_loader_epoch_stats(const mf_loader *l);
#endif
