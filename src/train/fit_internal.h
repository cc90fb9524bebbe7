/* fit_internal.h: the training context shared by step.c, fit.c and callbacks.c. */
#ifndef MF_FIT_INTERNAL_H
#define MF_FIT_INTERNAL_H
#include "mpifit/fit.h"
#include "../core/core.h"
#include "fit_state.h"

/* Deterministic mode's state (deterministic.c; docs/deterministic.md). */
typedef struct mf_det mf_det;

struct mf_fit_ctx {
    mf_model *model; /* not owned */
    uint64_t seed;
    int rank;
    mf_rng rng; /* dropout masks, per rank */
    /* compile */
    mf_optimizer *opt; /* owned */
    mf_schedule schedule;
    int schedule_given; /* compiled with a schedule (a checkpoint's does not replace it) */
    int compiled;
    float *class_weight; /* n_classes or NULL */
    int n_class_weight;
    mf_metric compiled_metrics[8]; /* [0] = "loss" Mean, then accuracy metrics */
    int n_compiled;
    mf_metric *tracked[MF_MAX_TRACKED]; /* compiled ones first, then the user's */
    int n_tracked;
    /* scratch for the loss: (rows, C) probabilities and gradient, rows weights */
    float *probs, *dlogits, *weights;
    size_t scratch_rows, scratch_c;
    /* progress of training */
    long global_step; /* optimizer steps taken */
    int epoch;
    int stop;
    float lr_override; /* NaN: follow the schedule */
    double lr_scale; /* ReduceLROnPlateau's factor on the schedule's rate, 1 = none */
    int in_test; /* a test pass is under way: class weights do not apply */
    int data_epoch; /* the training loader's epoch and position */
    int data_step;
    int data_started;
    /* data parallelism */
    mf_comm *comm; /* NULL: one process */
    mf_grad_sync *gsync;
    uint64_t planned_trainable; /* mf_model_trainable_signature the buckets were planned for */
    mf_dist_options dist;
    int grad_sync_on; /* backward starts bucket allreduces */
    int accumulate; /* micro-batches per step in the default train step */
    mf_det *det; /* deterministic mode, or NULL */
    /* where training stands (checkpoints store it, resume restores it) */
    int epoch_step; /* steps done in ctx->epoch */
    int epoch_done; /* ctx->epoch finished (validation and callbacks included) */
    int restored; /* a checkpoint was loaded: the next fit starts where it stands */
    double last_step_s, last_wait_s, last_epoch_ips;
    double last_opt_s; /* the optimizer's part of the last step */
    /* the last step's time split, every rank's: [4 r + k], k = compute,
     * exposed gradient-allreduce wait, data wait, optimizer (seconds) */
    double *rank_times;
    int rank_times_n;
    /* callback states and buffers from a loaded checkpoint, applied after
     * on_train_begin (the buffers' arrays are owned until then) */
    int n_cb_state;
    mf_fit_cb_state cb_state[MF_MAX_CB_STATES];
    int n_cb_buffer;
    mf_fit_cb_buffer cb_buffer[MF_MAX_CB_BUFFERS];
    int restored_stopped; /* the loaded checkpoint was written after a callback stopped training */
    /* history: logs of every finished epoch */
    mf_logs *history;
    int n_history, cap_history;
};

mf_det *mf_det_create(int chunk);
void mf_det_free(mf_det *d);
int mf_det_chunk(const mf_det *d);
/* The built-in test step in deterministic mode: forward in chunks, each
 * row's loss rounded to a multiple of 2^-24 before it is added (exact sums in
 * any grouping of rows, batches and ranks). */
mf_status mf_det_test_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs);
/* The built-in train step in deterministic mode. */
mf_status mf_det_train_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs);
/* mf_apply_gradients after the gradients are final (the NaN check, the
 * optimizer, the step count, the identical-parameters check). */
mf_status mf_fit_apply_update(mf_fit_ctx *ctx);
/* Install (on = 1) or remove the backward hook that feeds the bucketed
 * gradient allreduce (a no-op without one). */
void mf_fit_hook_backward(mf_fit_ctx *ctx, int on);
/* Rows [j * rows, (j + 1) * rows) of b as a batch of their own (xs floats
 * per sample): micro-batches and deterministic mode's chunks. */
mf_batch mf_batch_part(const mf_batch *b, int j, int rows, size_t xs);
/* mf_fit_update_metrics with the batch's loss sum given (loss * rows). */
void mf_fit_update_metrics_sum(mf_fit_ctx *ctx, const mf_batch *b, const mf_tensor *logits, double loss_sum);

/* Free the callback buffers a loaded checkpoint left in ctx. */
void mf_fit_drop_cb_buffers(mf_fit_ctx *ctx);

/* Sum the tracked metrics over the ranks and put the global results into logs
 * (for every tracked metric whose name the logs of any rank have, so every
 * rank ends with the same names and values even when its own shard held only
 * padding); images is summed too. Collective when distributed; a no-op
 * otherwise. */
mf_status mf_fit_reduce_logs(mf_fit_ctx *ctx, mf_logs *logs, double *images);

/* Keras' epoch progress output (progress.c). */
typedef struct mf_progress {
    FILE *f;
    int tty, verbose, every, total;
    double t0, last_draw;
    int drawn; /* characters of the in-place line drawn so far */
} mf_progress;
void mf_progress_begin(mf_progress *p, FILE *f, int verbose, int every, int total, int epoch, int epochs);
void mf_progress_step(mf_progress *p, int done, const mf_logs *logs);
void mf_progress_end(mf_progress *p, int done, const mf_logs *logs, double images_per_s);
#endif
