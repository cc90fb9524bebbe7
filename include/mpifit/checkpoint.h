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
#include "mpifit/fit.h"

typedef struct mf_weights_report {
    int loaded_layers; /* layers whose every weight came from the file */
    int missing_layers; /* layers with weights that the file does not have */
    char missing[1024]; /* their names, comma-separated (truncated with "...") */
    int file_layers; /* layers with weights in the file */
} mf_weights_report;

/* Load every weight of m whose layer exists in the file, by name (Keras'
 * load_weights(by_name=True)); layers absent from the file keep their values
 * and are listed in the report. A layer present with a different weight shape
 * is an error naming the layer, the weight and both shapes; on that or any
 * other failure (a damaged dataset) nothing is changed. Collective: no (rank
 * 0 reads; others receive a broadcast). */
MF_API mf_status mf_weights_load_keras(mf_model *m, const char *path, mf_weights_report *report);
/* Write every weight of m in Keras' layout, atomically (path.tmp, fsync,
 * rename): h5py and Keras' load_weights read the result. */
MF_API mf_status mf_weights_save_keras(mf_model *m, const char *path);

/* ---- what a weights file is for: the model to rebuild, its class names ------ *
 *
 * Weights files and checkpoints that mpifit writes carry the description of
 * their model as root attributes, so that `mpifit predict --weights w.h5`
 * needs no config and no training folder:
 *   model_arch         string: "mobilenet_v2" or "small_cnn"
 *   model_alpha        float64: MobileNetV2's width multiplier
 *   model_input_size   int64: the square input side in pixels
 *   model_classes      int64: outputs of the classifier
 *   model_dropout      float64: the dropout rate before the classifier
 *   model_bn_momentum  float64: BatchNormalization momentum, 0 = the architecture's own
 *   class_names        model_classes strings, in label order (or none stored:
 *                      the names are not known)
 * Strings are written fixed-length, as Keras writes its own (a checkpoint's
 * class_names are variable-length); either form is read.
 * Keras' load_weights reads only layer_names and the layer groups and ignores
 * these, so the file stays a Keras weights file. */
/* arch of a model described by a Keras model_config stored in the same file
 * (a [model] keras run's weights.h5, a Keras full-model file): input_size,
 * classes and class_names only, the rest unused */
#define MF_MODEL_DESC_KERAS "keras"
typedef struct mf_model_desc {
    char arch[32];
    float alpha;
    int input_size;
    int classes;
    float dropout;
    float bn_momentum;
    char **class_names; /* `classes` names in label order, or NULL when not known */
} mf_model_desc;

/* mf_weights_save_keras, plus desc as root attributes (desc NULL: none).
 * desc->class_names, when not NULL, has desc->classes entries. */
MF_API mf_status mf_weights_save_keras_desc(mf_model *m, const char *path, const mf_model_desc *desc);
/* The model description stored in a weights file or checkpoint. Every value
 * is checked (type, one element, range: an architecture mpifit builds,
 * input_size 32..4096, classes 1..100000 and as many class names, dropout in
 * [0, 0.99], bn_momentum in [0, 1]); a file with a whole-file checksum
 * (checkpoints) must match it. Errors name the file and the attribute:
 * MF_STATUS_CONFIG when an attribute is not there at all (a Keras file from
 * elsewhere, or written before mpifit stored them: the caller must get the
 * model from a config instead), MF_STATUS_DATA when one is there but wrong,
 * MF_STATUS_IO when the file cannot be opened. On success d owns
 * mf_alloc'ed class names: free with mf_model_desc_free. Not collective. */
MF_API mf_status mf_model_desc_read(const char *path, mf_model_desc *d);
/* Free d's class names and zero it; NULL or a zeroed desc is a no-op. */
MF_API void mf_model_desc_free(mf_model_desc *d);

/* ---- checkpoints: everything a stopped run needs to continue exactly ------- *
 *
 * One HDF5 file (format "mpifit-checkpoint", version 1):
 *   /model_weights      every weight and BatchNorm statistic, Keras layout (so the
 *                       file is also a Keras weights file for mf_weights_load_keras)
 *   /optimizer          kind, hyper-parameters, iterations; one dataset per state
 *                       buffer (Adam m, v; SGD momentum), the parameter layout
 *   /schedule           the learning-rate schedule, any override and ReduceLROnPlateau's
 *                       scale on it (lr_scale)
 *   /ranks/rng          (world, 4) uint64: every rank's dropout rng
 *   /ranks/metrics      (world, 2 x tracked): every rank's running metric sums
 *   /history            (epochs, names) float64: the logs of every finished epoch
 *   /callbacks/<name>   callback states (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint)
 *   /callback_buffers/<name>/<buffer>
 *                       callback float buffers (EarlyStopping with restore_best_weights:
 *                       best_params and best_state, the best epoch's weights)
 *   attributes          position (epoch, step in epoch, global step, data order),
 *                       `stopped` (a callback ended training at this epoch's end),
 *                       seed, world size, config text, class names, mpifit version,
 *                       the model description (model_arch ... as a weights file,
 *                       when given), and `complete` = 1, written last: a file
 *                       without it is not a checkpoint.
 *
 * lr_scale, stopped and /callback_buffers came later: a checkpoint without
 * them loads as one with scale 1, not stopped, and no buffers. */
typedef struct mf_checkpoint_info {
    const char *config_text; /* stored as is, or NULL */
    const char *const *class_names; /* or NULL */
    int n_classes;
    mf_callback *const *callbacks; /* their get_state is stored */
    int n_callbacks;
    const mf_model_desc *model; /* its model_* attributes are stored, or NULL (the
                                   class names stored are always the ones above) */
} mf_checkpoint_info;

typedef struct mf_checkpoint_summary {
    int epoch; /* the epoch to run next (or under way) */
    int step_in_epoch; /* steps of it already done */
    long global_step;
    int world_size; /* of the run that wrote it */
} mf_checkpoint_summary;

/* Collective. Average BatchNorm statistics over the ranks, gather every rank's
 * rng and metric sums, and let rank 0 write `path` atomically: path.tmp in the
 * same directory, fsync, rename, fsync of the directory. A failure (disk full,
 * unwritable directory) removes the temporary file, leaves every earlier
 * checkpoint as it was, and is returned on every rank. */
MF_API mf_status mf_checkpoint_save(mf_fit_ctx *ctx, const char *path, const mf_checkpoint_info *info);
/* Collective. Rank 0 reads and checks the file (format, completeness, every
 * layer's name and shape: the first mismatch is named), then every rank gets
 * the weights, optimizer state, position, history and callback states. With
 * the same world size the run continues bit for bit; with another, the data
 * order re-shards and the dropout streams restart (not bit-identical). The
 * learning-rate schedule: a context compiled with one keeps it (so a resumed
 * run follows its own config, world size and steps per epoch; rank 0 logs how
 * it differs from the stored one), one compiled without takes the stored one.
 * A failed load (damaged, another architecture or optimizer) changes nothing. */
MF_API mf_status mf_checkpoint_load(mf_fit_ctx *ctx, const char *path, mf_checkpoint_summary *out);
/* Open path and check that it is a complete checkpoint (not collective). */
MF_API mf_status mf_checkpoint_check(const char *path, mf_checkpoint_summary *out);
/* The newest complete checkpoint (ckpt-EPOCH-STEP.h5) in dir: corrupt or
 * incomplete ones are reported (file and reason) and skipped. MF_STATUS_IO if
 * there is none. */
MF_API mf_status mf_checkpoint_latest(const char *dir, char *path, size_t n);
/* What a checkpoint was written for: its config text (NULL if none) and
 * class names, mf_alloc'ed (rank 0 compares them with the run that resumes).
 * Not collective. Free with mf_checkpoint_meta_free. */
typedef struct mf_checkpoint_meta {
    char *config;
    char **class_names;
    int n_classes;
} mf_checkpoint_meta;
MF_API mf_status mf_checkpoint_read_meta(const char *path, mf_checkpoint_meta *m);
MF_API void mf_checkpoint_meta_free(mf_checkpoint_meta *m);
/* ---- the metrics file: what a run has done, as it goes ------------------------ *
 *
 *   /epoch/<name>  one row per epoch: epoch, every log (loss, accuracy, val_...),
 *                  lr, images_per_s, wall_time
 *   /step/<name>   one row per optimizer step: global_step, loss, lr, step_time,
 *                  data_wait, and each rank r's split of the step (mf_fit_rank_times):
 *                  compute_r<r>, comm_wait_r<r>, data_wait_r<r>, optimizer_r<r>
 * float64, chunked and extendible, NaN where a row has no value; each dataset
 * has a `units` attribute; the root has config, class_names, world_size,
 * mpifit_version. Rows are appended as the run goes and the file is opened
 * only to write them (every epoch and every flush_every steps) and closed right
 * after, so h5dump and h5py can read it while the run is going. */
typedef struct mf_metrics_options {
    const char *config_text;
    const char *const *class_names;
    int n_classes;
    int world_size;
    int flush_every; /* steps between writes of the step rows (0: 100) */
    int resume_epoch; /* >= 0: continue the file: keep epoch rows < this */
    long resume_step; /* ... and step rows <= this global step */
} mf_metrics_options;

/* A callback (rank 0's job) that keeps path up to date. Creates the file, or
 * with resume_epoch >= 0 cuts it back to the checkpoint and continues it, so a
 * resumed run neither duplicates nor loses rows. Write failures are reported
 * (once per flush) and retried at the next flush; they do not stop training. */
MF_API mf_callback *mf_metrics_h5_writer(const char *path, const mf_metrics_options *o);
/* Write what is buffered now (before a checkpoint). */
MF_API mf_status mf_metrics_h5_flush(mf_callback *writer);

/* ---- a directory of checkpoints (rank 0's job) --------------------------- */

/* dir/ckpt-EEEE-SSSSSSS.h5: epoch, then global step, zero-padded, so the
 * names sort in the order they were written. */
MF_API void mf_checkpoint_name(char *buf, size_t n, const char *dir, int epoch, long step);
/* The ckpt-*.h5 names (not paths) of dir, newest first by (epoch, step) as
 * numbers; their count, or -1 if dir cannot be read. Free with
 * mf_checkpoint_list_free. */
MF_API int mf_checkpoint_list(const char *dir, char ***names);
MF_API void mf_checkpoint_list_free(char **names, int n);
/* Delete all but the newest `keep` ckpt-*.h5 of dir (keep <= 0: none). */
MF_API void mf_checkpoint_prune(const char *dir, int keep);
/* Delete *.h5.tmp in dir: what writers that were killed left (never a
 * complete checkpoint: those are renamed into place). */
MF_API void mf_checkpoint_remove_temporaries(const char *dir);
/* dir/best.h5 becomes a second name (hard link) of checkpoint, swapped in
 * atomically. MF_STATUS_IO with the reason if it cannot. */
MF_API mf_status mf_checkpoint_mark_best(const char *dir, const char *checkpoint);

/* Hold dir/.lock (flock, exclusive) for as long as *fd stays open: a second
 * run on the same output directory fails at its start with a clear message
 * instead of pruning this run's checkpoints. Released by mf_output_unlock or
 * when the process ends, however it ends. */
MF_API mf_status mf_output_lock(const char *dir, int *fd);
MF_API void mf_output_unlock(int fd);

/* Copy a checkpoint's weights, and its model description and class names
 * when it has them, into a Keras-layout weights file (atomically). */
MF_API mf_status mf_checkpoint_export_keras(const char *checkpoint, const char *out);
#endif
