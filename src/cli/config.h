/* config.h: INI job configuration (parsed with libinih). Rank 0 parses; later
 * issues broadcast the text so every rank builds the identical config.
 * Every key is documented in configs/README.md (a test checks that each key
 * of the table in config.c appears there). */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H
#include <stdio.h>
#include "mpifit/status.h"

#define MF_CFG_PATH 1024
#define MF_CFG_MAX_KEYS 96 /* keys in the table (config.c asserts it fits) */

typedef struct mf_config {
    struct {
        char arch[32]; /* mobilenet_v2 | small_cnn */
        char keras[MF_CFG_PATH]; /* a Keras model description (.json or full-model .h5), or "none" */
        float alpha; /* MobileNetV2 width multiplier */
        int input_size; /* square input side, >= 32 */
        int classes; /* 0 = number of class folders */
        float dropout; /* rate before the classifier */
        float bn_momentum; /* 0 = the architecture's own */
        char weights[MF_CFG_PATH]; /* Keras .h5 weights, or "none" */
        int freeze_base; /* transfer learning: train only the head */
        char trainable_from[64]; /* fine-tuning: the first trainable layer, or "none" */
        int train_bn; /* BatchNorm in the trainable part trains too */
    } model;
    struct {
        char train[MF_CFG_PATH]; /* class-folder dir, packed .h5, or "synthetic" */
        char validation[MF_CFG_PATH]; /* same, or "none" */
        int batch_size; /* per rank */
        int augment;
        float crop_scale_min;
        int flip;
        int threads; /* decoding threads per rank, 0 = auto */
        int prefetch; /* batch buffers, 0 = threads + 2 */
        float validation_split; /* carve validation out of train (0 = off) */
        int drop_remainder;
        char on_bad_image[8]; /* skip | fail */
        float max_image_mb; /* larger image files are bad images */
    } data;
    struct {
        char name[16]; /* adam | sgd */
        float learning_rate;
        float momentum;
        int nesterov;
        float weight_decay; /* decoupled (AdamW / SGDW style) */
        char schedule[16]; /* constant | step | cosine */
        float warmup_epochs;
        float decay_rate; /* step schedule: factor per decay_epochs */
        float decay_epochs;
    } optimizer;
    struct {
        int epochs;
        long seed;
        int steps_per_epoch; /* 0 = the whole training set */
        int verbose; /* 0 silent, 1 progress bar, 2 one line per epoch */
        int progress_every; /* plain progress lines every N steps, 0 = 10 per epoch */
        int accumulate_steps; /* micro-batches per optimizer step */
        int profile; /* per-layer-kind timing table at the end */
        int preempted_exit_status; /* mpifit train's exit status after a preemption checkpoint (75) */
        char class_weight[512]; /* "none", "w0, w1, ..." or "name:w, ..." (mf_config_class_weights) */
    } train;
    struct mf_config_callbacks { /* Keras' EarlyStopping and ReduceLROnPlateau, off unless enabled */
        int early_stopping;
        char early_stopping_monitor[16]; /* val_loss | val_accuracy | loss | accuracy */
        float early_stopping_min_delta;
        int early_stopping_patience;
        char early_stopping_mode[8]; /* auto | min | max */
        int early_stopping_restore_best_weights;
        int reduce_lr_on_plateau;
        char reduce_lr_monitor[16];
        double reduce_lr_factor; /* < 1 (mf_config_validate) */
        int reduce_lr_patience;
        double reduce_lr_min_lr;
        int reduce_lr_cooldown;
        double reduce_lr_min_delta;
        char reduce_lr_mode[8];
    } callbacks;
    struct {
        char dir[MF_CFG_PATH];
        char checkpoint_every[16]; /* "epoch" or a number of steps */
        int checkpoint_steps; /* parsed by mf_config_validate: 0 = every epoch, else every N steps */
        int keep; /* newest checkpoints kept, 0 = all */
        char save_best[48]; /* metric to keep best.h5 for, or "none" */
        int metrics_flush_steps;
        int trace; /* trace-rank<r>.json timelines */
    } output;
    struct {
        int epochs; /* a second phase after [train] epochs, 0 = none */
        float learning_rate;
        char trainable_from[64]; /* the first trainable layer in that phase */
        char schedule[16]; /* constant | step | cosine */
        float warmup_epochs;
    } finetune;
    struct {
        int threads; /* compute threads per rank, 0 = auto */
        int overlap; /* allreduce buckets during backward */
        float bucket_mb;
        int sync_batchnorm;
        int deterministic; /* docs/deterministic.md */
        int chunk; /* its rows per chunk */
        int scale_lr; /* Goyal et al.: learning rate x ranks */
        int check_identical; /* debug: hash parameters across ranks every step */
        char compress[8]; /* none | fp16 | bf16: gradients on the wire */
        float timeout; /* seconds a collective may wait (the watchdog), 0 = off */
    } dist;

    char path[MF_CFG_PATH]; /* the file it came from */
    char *text; /* the file's text followed by the --set lines (for checkpoints) */
    int line[MF_CFG_MAX_KEYS]; /* where each key of the table was set: its line in path, -1 --set, 0 default */
} mf_config;

/* Defaults of every key (the values configs/README.md lists). */
void mf_config_defaults(mf_config *c);
/* Parse path over the defaults. Errors (MF_STATUS_CONFIG / _IO) name
 * path:line, the section and key, the bad value and the valid choices. */
mf_status mf_config_load(mf_config *c, const char *path);
/* The same from text already read (rank 0 reads the file and broadcasts the
 * text, so every rank parses the identical bytes); path is for messages. */
mf_status mf_config_parse(mf_config *c, const char *path, const char *text);
/* The whole file as a NUL-terminated mf_alloc'ed string. */
mf_status mf_config_read_file(const char *path, char **text);
/* Apply one "section.key=value" override (from --set), checked the same way;
 * errors name the --set argument. */
mf_status mf_config_set(mf_config *c, const char *assignment);
/* Cross-key checks after loading and overrides (e.g. validation_split with a
 * validation dir). */
mf_status mf_config_validate(mf_config *c);
void mf_config_free(mf_config *c);
/* With [model] keras the description is the model: [model] arch, alpha,
 * input_size and dropout would be silently ignored, so setting any of them
 * (in the file or by --set) is an error naming where. */
mf_status mf_config_check_keras(const mf_config *c);
/* Where [section] key got its value, for messages about it: "path:line",
 * "--set section.key" or "path" (the default). */
void mf_config_where(const mf_config *c, const char *section, const char *key, char *buf, size_t n);
/* [train] class_weight for the classes `names` (n of them, in label order)
 * into w (n floats), and *given = 0 for "none" (then w is all 1). Forms:
 * "2, 1, 0.5" (exactly n weights, in class order) or "bean_rust: 2,
 * healthy: 0.5" (by class folder name; classes not named weigh 1); weights
 * are finite, >= 0, not all 0. Errors (MF_STATUS_CONFIG) name where the key
 * was set and the unknown class (with the valid names) or the wrong count.
 * names NULL: the syntax only (w and n unused). */
mf_status mf_config_class_weights(const mf_config *c, const char *const *names, int n, float *w, int *given);
/* The keys whose values differ between two configs, one line each
 * ("  [train] epochs: 3 -> 5\n") into out (truncated at n); their count. */
int mf_config_diff(const mf_config *was, const mf_config *now, char *out, size_t n);
/* One line per key: "[section] key = default  - help" (for docs and tests). */
void mf_config_print_keys(FILE *f);
#endif
