/* mpifit/fit.h: Keras' compile / fit / evaluate / predict, with overridable
 * train and test steps (TensorFlow 2.2's Model.train_step), metrics, callbacks
 * and the progress bar.
 *
 * An mf_fit_ctx is what Keras calls the compiled model: the model (not owned),
 * an optimizer and learning-rate schedule, the loss, the tracked metrics, the
 * dropout rng, the step counters and the training history. fit() runs epochs of
 * steps over a loader; a step is either mf_train_step_default or the user's
 * function, which may use the building blocks below (forward, compiled loss,
 * backward, apply gradients, update metrics) or do something else entirely and
 * return its own name -> value logs. fit still does everything around the step:
 * metric resets, progress, callbacks, validation, history.
 *
 * Display rule (as Keras): fit shows the logs the step returns, exactly as
 * returned. The built-in step returns the results of the tracked metrics, which
 * are running means over the epoch (reset by fit at every epoch begin), so
 * "loss" is the epoch's mean so far; a custom step that returns a raw batch
 * value gets that value shown as is. */
#ifndef MPIFIT_FIT_H
#define MPIFIT_FIT_H
#include <stdio.h>
#include "mpifit/data.h"
#include "mpifit/model.h"
#include "mpifit/optim.h"
#include "mpifit/comm.h"

/* ---- logs: Keras' logs dict ------------------------------------------------ */
#define MF_LOGS_MAX 32
typedef struct mf_logs {
    int n;
    char name[MF_LOGS_MAX][48];
    double value[MF_LOGS_MAX];
} mf_logs;
MF_API void mf_logs_clear(mf_logs *l);
/* Set (or overwrite) name = v. Names beyond MF_LOGS_MAX are dropped (MF_ASSERT in debug). */
MF_API void mf_logs_set(mf_logs *l, const char *name, double v);
/* 1 and *v if present, else 0. */
MF_API int mf_logs_get(const mf_logs *l, const char *name, double *v);

/* ---- metrics: Keras Metric objects as a small vector of sums --------------- */
typedef enum mf_metric_kind {
    MF_METRIC_MEAN = 0, /* weighted mean of values */
    MF_METRIC_SPARSE_ACCURACY = 1, /* argmax(logits) == label, weighted */
    MF_METRIC_SPARSE_TOP_K = 2 /* label among the k largest logits, weighted */
} mf_metric_kind;

/* State is (total, count): update adds to both, result = total / count, and
 * summing the states of all ranks gives the exact global value. */
typedef struct mf_metric {
    char name[40];
    mf_metric_kind kind;
    int k;
    double total, count;
} mf_metric;
MF_API mf_metric mf_metric_mean(const char *name);
MF_API mf_metric mf_metric_accuracy(const char *name);
MF_API mf_metric mf_metric_top_k(const char *name, int k);
MF_API void mf_metric_reset(mf_metric *m);
MF_API void mf_metric_update(mf_metric *m, double value, double weight); /* MEAN */
/* ACCURACY / TOP_K from logits (N, C), labels (N), weights (N) or NULL. */
MF_API void mf_metric_update_logits(mf_metric *m, const float *logits, const int32_t *labels, const float *weights,
                                    int N, int C);
MF_API double mf_metric_result(const mf_metric *m); /* 0 when count == 0 */

/* ---- loss ----------------------------------------------------------------- */
/* Sparse categorical cross-entropy from logits with Keras semantics: per-sample
 * weight = batch weight (0 for padding and skipped images) x class_weight[label];
 * the batch loss is sum(w_i * l_i) / N over the batch's N rows. class_weight
 * weights training only (Keras' fit argument): validation and evaluate see the
 * plain loss, and accuracy metrics are never class-weighted (Keras' `metrics`
 * are unweighted; only `weighted_metrics` take sample weights). */
typedef struct mf_loss {
    const float *class_weight; /* n_classes values, or NULL (all 1) */
    int n_classes;
} mf_loss;

/* ---- the context ----------------------------------------------------------- */
typedef struct mf_fit_ctx mf_fit_ctx;

/* A context for model m (built; not owned). seed and rank seed the dropout rng
 * (mf_rng_seed2(seed, rank)), so a run is reproducible for a given world size. */
MF_API mf_fit_ctx *mf_fit_ctx_create(mf_model *m, uint64_t seed, int rank);
MF_API void mf_fit_ctx_free(mf_fit_ctx *ctx); /* frees the optimizer and callbacks it owns */
/* Keras' compile: the optimizer (ownership passes to ctx), the learning-rate
 * schedule (copied), the loss (class weights copied; NULL = plain), and the
 * metrics as a comma list: "accuracy", "top_k" or "top_k=K" (Keras names:
 * "accuracy", "sparse_top_k_categorical_accuracy"). A "loss" Mean is always
 * tracked. MF_STATUS_INVALID names an unknown metric and the valid ones. */
MF_API mf_status mf_compile(mf_fit_ctx *ctx, mf_optimizer *opt, const mf_schedule *schedule, const mf_loss *loss,
                            const char *metrics);
MF_API mf_model *mf_fit_model(mf_fit_ctx *ctx);
MF_API mf_optimizer *mf_fit_optimizer(mf_fit_ctx *ctx); /* NULL before compile */

/* ---- data parallelism -------------------------------------------------------- */
typedef struct mf_dist_options {
    size_t bucket_bytes; /* gradient allreduce bucket size (default 4 MiB) */
    int overlap; /* 1: start each bucket's allreduce as soon as backward produced it */
    int sync_batchnorm; /* 1: BatchNorm statistics over the global batch */
    int check_identical; /* debug: after every step, compare a hash of the parameters across ranks */
    mf_compress compress; /* gradients on the wire: floats, or 16 bits with error feedback (mf_grad_sync_set_compress) */
} mf_dist_options;
MF_API mf_dist_options mf_dist_options_default(void);
/* Make ctx data-parallel over comm: gradients are averaged over the ranks by
 * mf_apply_gradients (bucketed, overlapped with backward), metrics are summed
 * over the ranks before every report, BatchNorm moving statistics are averaged
 * before validation, and fit starts from rank 0's weights and optimizer state.
 * Call after mf_compile. Layers may be frozen or unfrozen later (between
 * steps, on every rank alike): see mf_fit_sync_trainable. The context's rank
 * must be comm's. Collective. */
MF_API mf_status mf_fit_distribute(mf_fit_ctx *ctx, mf_comm *comm, const mf_dist_options *o);
/* Deterministic mode (docs/deterministic.md): the built-in train step runs
 * each batch as chunks of `chunk` rows (chunk must divide every batch) with
 * per-chunk ("ghost") BatchNorm statistics and dropout streams, and sums the
 * chunks' gradients exactly (fixed point, int64), so weights, optimizer
 * state, BatchNorm statistics and metrics after any number of steps are
 * bit-identical for any number of ranks and threads given the same global
 * batch. chunk 0 turns it off. Not with gradient accumulation or synchronized
 * BatchNorm; mf_fit refuses it with a train_step of one's own. Call after
 * mf_fit_distribute (or without it for one process). */
MF_API mf_status mf_fit_set_deterministic(mf_fit_ctx *ctx, int chunk);
/* Deterministic mode's chunk, or 0 when the mode is off. */
MF_API int mf_fit_deterministic(const mf_fit_ctx *ctx);
/* Collective: check that every rank trains the same layers (an error naming
 * the ranks that differ otherwise) and, if the trainable set changed since the
 * gradient buckets were planned, plan them again. mf_fit calls it before every
 * train step, so callbacks may freeze or unfreeze layers; a loop of one's own
 * calls it after changing trainability (mf_fit_zero_grad re-plans too, without
 * the cross-rank check). A change between mf_fit_zero_grad and
 * mf_apply_gradients is an error. */
MF_API mf_status mf_fit_sync_trainable(mf_fit_ctx *ctx);
MF_API mf_comm *mf_fit_comm(mf_fit_ctx *ctx); /* NULL when not distributed */
/* Rank 0's parameters, BatchNorm statistics and optimizer state (and step
 * count) to every rank; fit does it when it starts. Collective. */
MF_API mf_status mf_fit_broadcast_state(mf_fit_ctx *ctx);
/* Gradient accumulation: the default train step splits each batch into k
 * micro-batches (batch_size must be a multiple of k), runs forward/backward on
 * each with the loss scaled by 1/k, and reduces across ranks only once, after
 * the last (as DDP's no_sync). 1 = off. */
MF_API mf_status mf_fit_set_accumulation(mf_fit_ctx *ctx, int k);
/* 0: backward passes do not start the gradient allreduce (the first k-1
 * micro-batches of accumulation); mf_apply_gradients still reduces everything. */
MF_API void mf_fit_set_grad_sync(mf_fit_ctx *ctx, int on);

/* Building blocks of a step. */
/* Forward pass of the batch (training: BatchNorm batch statistics, dropout
 * from the context's rng). The view is valid until the next forward. */
MF_API mf_tensor mf_fit_forward(mf_fit_ctx *ctx, const mf_batch *b, mf_mode mode);
/* The compiled loss of logits for the batch; if dlogits is not NULL, *dlogits
 * points to its gradient (context scratch, valid until the next call). The
 * class weights apply except in the default test step and during fit's
 * validation and mf_evaluate (Keras: class_weight weights fit's training
 * data only). */
MF_API double mf_fit_compiled_loss(mf_fit_ctx *ctx, const mf_batch *b, const mf_tensor *logits, const float **dlogits);
/* Zero the gradient buffer / back-propagate dlogits, accumulating into it. */
MF_API void mf_fit_zero_grad(mf_fit_ctx *ctx);
MF_API void mf_fit_backward(mf_fit_ctx *ctx, const float *dlogits);
/* Finish the step: make the gradient buffer the global average (across ranks,
 * once MPI is wired) and run the optimizer at the current learning rate.
 * Whatever filled the gradient buffer gets the same treatment. Fails with
 * MF_STATUS_INVALID without an optimizer (no compile) and MF_STATUS_NUMERIC if
 * a gradient is NaN/Inf (TerminateOnNaN's job is the loss). */
MF_API mf_status mf_apply_gradients(mf_fit_ctx *ctx);
/* Update the compiled metrics (loss Mean weighted by the batch's valid rows,
 * and the accuracy metrics) and read every tracked metric's result. */
MF_API void mf_fit_update_metrics(mf_fit_ctx *ctx, const mf_batch *b, const mf_tensor *logits, double loss);
MF_API void mf_fit_metrics_logs(mf_fit_ctx *ctx, mf_logs *logs);
/* Track a metric the user's step owns: fit resets it at each epoch begin (and
 * reduces it across ranks). The pointer must stay valid while ctx is used. */
MF_API void mf_fit_track_metric(mf_fit_ctx *ctx, mf_metric *m);
MF_API void mf_fit_reset_metrics(mf_fit_ctx *ctx);

/* The default steps (Keras' Model.train_step / test_step). */
MF_API mf_status mf_train_step_default(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user);
MF_API mf_status mf_test_step_default(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user);

/* State that steps and callbacks may read or steer. */
/* The rate the next step uses: the override when one is set, else the
 * compiled schedule at the global step times the plateau scale (1 until
 * ReduceLROnPlateau reduces it; see mf_reduce_lr_on_plateau). */
MF_API float mf_fit_learning_rate(const mf_fit_ctx *ctx);
MF_API void mf_fit_set_learning_rate(mf_fit_ctx *ctx, float lr); /* override the schedule (LearningRateScheduler) */
/* Follow schedule s from now on (ends an override of mf_fit_set_learning_rate
 * and a ReduceLROnPlateau reduction: the new schedule starts at its own rates). */
MF_API void mf_fit_set_schedule(mf_fit_ctx *ctx, const mf_schedule *s);
MF_API long mf_fit_global_step(const mf_fit_ctx *ctx); /* optimizer steps taken */
MF_API int mf_fit_epoch(const mf_fit_ctx *ctx);
MF_API void mf_fit_stop_training(mf_fit_ctx *ctx); /* Keras' model.stop_training = True */
MF_API int mf_fit_history_len(const mf_fit_ctx *ctx); /* epochs recorded */
MF_API const mf_logs *mf_fit_history(const mf_fit_ctx *ctx, int i);
/* Where training stands: the epoch under way (or next, once finished) and the
 * steps done in it. After mf_checkpoint_load the next fit continues from
 * here; otherwise each fit starts at its initial_epoch, as in Keras. */
MF_API int mf_fit_position(const mf_fit_ctx *ctx, int *step_in_epoch);
/* Seconds the last train step computed, and waited for its batch. */
MF_API double mf_fit_last_step_seconds(const mf_fit_ctx *ctx);
/* The last training step's time split on every rank: *t points to 4 values
 * per rank, [4 r + k] for k = 0 compute (forward, loss, backward: the step
 * minus the two below), 1 exposed gradient-allreduce wait, 2 data wait before
 * the step, 3 optimizer (seconds); returns the number of ranks (0 before the
 * first step). Gathered by mf_fit after every step (one small allreduce);
 * metrics.h5 stores it as /step/compute_r<r>, comm_wait_r<r>, data_wait_r<r>,
 * optimizer_r<r>. */
MF_API int mf_fit_rank_times(const mf_fit_ctx *ctx, const double **t);
MF_API double mf_fit_last_wait_seconds(const mf_fit_ctx *ctx);
/* Seconds mf_apply_gradients has waited, in total, for the gradient allreduce
 * to finish (what backward did not hide); 0 when not distributed or alone. */
MF_API double mf_fit_allreduce_wait_seconds(const mf_fit_ctx *ctx);
/* Global images per second of the last finished epoch. */
MF_API double mf_fit_last_epoch_images_per_s(const mf_fit_ctx *ctx);

/* ---- callbacks ------------------------------------------------------------- */
typedef struct mf_callback mf_callback;
/* Keras' hook points. Any hook may be NULL. A hook returning non-OK stops
 * fit, which returns that status. */
struct mf_callback {
    const char *name;
    mf_status (*on_train_begin)(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs);
    mf_status (*on_train_end)(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs);
    mf_status (*on_epoch_begin)(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs);
    mf_status (*on_epoch_end)(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs);
    mf_status (*on_train_batch_begin)(mf_callback *cb, mf_fit_ctx *ctx, int step, mf_logs *logs);
    mf_status (*on_train_batch_end)(mf_callback *cb, mf_fit_ctx *ctx, int step, mf_logs *logs);
    mf_status (*on_test_begin)(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs);
    mf_status (*on_test_end)(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs);
    void (*destroy)(mf_callback *cb); /* frees cb itself; NULL for user-owned callbacks */
    /* State that checkpoints keep (EarlyStopping's best value and wait):
     * write at most cap values, return how many; restore them (called by fit
     * right after on_train_begin when a checkpoint was loaded). Optional. */
    int (*get_state)(mf_callback *cb, double *v, int cap);
    void (*set_state)(mf_callback *cb, const double *v, int n);
    /* Float buffers that checkpoints keep besides those values (EarlyStopping's
     * copy of the best epoch's weights), one dataset each: get_buffer
     * describes buffer i = 0, 1, ... (name, data, length; the data stays the
     * callback's) and returns 0 past the last one or while it holds none;
     * set_buffer gets one back by name, right after set_state (copy v: it is
     * freed afterwards). A buffer set_buffer cannot take (a length that does
     * not fit the model) is its error, and stops fit. Optional. */
    int (*get_buffer)(mf_callback *cb, int i, const char **name, const float **v, size_t *n);
    mf_status (*set_buffer)(mf_callback *cb, mf_fit_ctx *ctx, const char *name, const float *v, size_t n);
    void *user;
};

/* EarlyStopping: stop when `monitor` (e.g. "val_loss") has not improved by
 * min_delta for `patience` epochs; mode "min", "max" or "auto" (max for names
 * containing "acc", else min); optionally restore the best epoch's weights
 * (parameters and BatchNorm statistics) when training ends, as Keras 3 does.
 * Checkpoints keep its state and, with restore_best_weights, its copy of the
 * best weights, so a resumed run stops at the same epoch with the same
 * weights as an uninterrupted one. */
MF_API mf_callback *mf_early_stopping(const char *monitor, float min_delta, int patience, const char *mode,
                                      int restore_best_weights);
/* ReduceLROnPlateau (Keras' defaults from mf_reduce_lr_options_default). */
typedef struct mf_reduce_lr_options {
    const char *monitor; /* "val_loss" */
    double factor; /* 0.1: new_lr = lr * factor; must be < 1 */
    int patience; /* 10 epochs without improvement */
    const char *mode; /* "auto": max for names containing "acc", else min */
    double min_delta; /* 1e-4: an improvement must beat the best by more */
    int cooldown; /* 0 epochs of rest after a reduction */
    double min_lr; /* 0: lower bound of a reduced rate */
    int verbose; /* 1: rank 0 prints each reduction */
} mf_reduce_lr_options;
MF_API mf_reduce_lr_options mf_reduce_lr_options_default(void);
/* ReduceLROnPlateau, with Keras' decisions exactly (keras/callbacks/
 * reduce_lr_on_plateau.py): at each epoch end "lr" joins the logs (the rate
 * before any reduction), then, with current = logs[monitor]: in cooldown the
 * cooldown counter drops by one and wait is reset; current < best - min_delta
 * (mode min; > best + min_delta for max) is an improvement (best = current,
 * wait = 0); otherwise, out of cooldown, wait grows and at wait >= patience,
 * if old_lr > min_lr: new_lr = max(old_lr * factor, min_lr), cooldown starts,
 * wait = 0, and with verbose rank 0 prints "Epoch N: ReduceLROnPlateau
 * reducing learning rate to X.".
 *
 * With a schedule (the CLI's constant, step or cosine) Keras cannot set the
 * rate at all; here the reduction is a scale on the schedule kept in the
 * context: scale = new_lr / schedule(now), so the rate is exactly new_lr at
 * the decision and the schedule keeps its shape afterwards (a cosine goes on
 * decaying from the reduced level, and may go below min_lr, which bounds the
 * reduction only). While an override is set (mf_fit_set_learning_rate,
 * LearningRateScheduler) the override itself is reduced, as Keras sets
 * optimizer.learning_rate. The scale lives in the context, not the
 * callback: it survives the next fit (as Keras' optimizer keeps a reduced
 * rate) and checkpoints store it with the schedule; the callback's best,
 * wait and cooldown counter are its checkpointed state. The monitored values
 * are global (fit reduces every metric over the ranks before callbacks run),
 * so every rank takes the same decisions.
 * NULL, with mf_last_error() set, if factor >= 1 (Keras' ValueError) or an
 * option is out of range. */
MF_API mf_callback *mf_reduce_lr_on_plateau(const mf_reduce_lr_options *o);
/* LearningRateScheduler: lr = fn(epoch, current lr, user) at each epoch begin. */
MF_API mf_callback *mf_lr_scheduler(float (*fn)(int epoch, float lr, void *user), void *user);
/* TerminateOnNaN: stop as soon as a batch's "loss" is NaN or infinite. */
MF_API mf_callback *mf_terminate_on_nan(void);
/* CSVLogger: one row per epoch (epoch, then every log in order) to path. */
MF_API mf_callback *mf_csv_logger(const char *path, int append);
/* ModelCheckpoint: at each epoch end call save(ctx, path, user) with path from
 * the pattern ("{epoch}" -> the 1-based epoch number, zero-padded to 4); with
 * save_best_only only when `monitor` improved (mode as EarlyStopping). The save
 * hook is where the HDF5 writer plugs in. */
MF_API mf_callback *mf_model_checkpoint(const char *pattern, const char *monitor, const char *mode, int save_best_only,
                                        mf_status (*save)(mf_fit_ctx *ctx, const char *path, void *user), void *user);
/* Fine-tuning, Keras' second transfer-learning phase, in the same fit: at the
 * start of epoch `at_epoch` (0-based) train `trainable_from` and every later
 * layer (mf_model_set_trainable_from with train_bn), restart the optimizer's
 * state (as Keras' recompile with a new optimizer does) and follow `schedule`,
 * whose clock starts at that step (its start_step is set then). History,
 * metrics and checkpoints go on across the phases; the phase and where it
 * started are checkpointed, so a run resumed in either phase continues as the
 * uninterrupted one. */
MF_API mf_callback *mf_finetune(int at_epoch, const char *trainable_from, int train_bn, const mf_schedule *schedule);
MF_API void mf_callback_free(mf_callback *cb); /* calls destroy; NULL is a no-op */

/* ---- fit / evaluate / predict ----------------------------------------------- */
typedef mf_status (*mf_step_fn)(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user);

/* Why fit asks for a checkpoint. */
typedef enum mf_checkpoint_reason {
    MF_CHECKPOINT_EPOCH = 0, /* an epoch ended (after validation and callbacks) */
    MF_CHECKPOINT_STEPS = 1, /* checkpoint_every steps passed */
    MF_CHECKPOINT_PREEMPT = 2 /* a preemption signal arrived (mf_preemption_install) */
} mf_checkpoint_reason;
/* Collective: called on every rank at the same point (see mf_checkpoint_save). */
typedef mf_status (*mf_checkpoint_fn)(mf_fit_ctx *ctx, mf_checkpoint_reason why, void *user);

/* Preemption: SIGTERM and SIGUSR1 set a flag; fit checks it at every step
 * boundary on every rank (one tiny allreduce), finishes, asks for a
 * checkpoint and returns MF_STATUS_PREEMPTED. A second signal exits at once
 * (status 128 + signal) without touching any checkpoint: the last good one
 * stays, a half-written temporary file is ignored and removed on resume. */
MF_API void mf_preemption_install(void);
MF_API int mf_preemption_requested(void); /* signal number, or 0 */

typedef struct mf_fit_options {
    int epochs; /* train until this epoch (exclusive, 0-based) */
    int initial_epoch; /* start here (resume) */
    int steps_per_epoch; /* 0 = one pass over the training loader */
    int validation_steps; /* 0 = the whole validation loader */
    int verbose; /* 0 silent, 1 progress bar (plain lines off a TTY), 2 one line per epoch */
    int verbose_all_ranks; /* progress from every rank, not only rank 0 (debugging) */
    int progress_every; /* off a TTY with verbose 1: a line every this many steps (0 = 10 lines/epoch) */
    mf_step_fn train_step; /* NULL = mf_train_step_default */
    mf_step_fn test_step; /* NULL = mf_test_step_default */
    void *step_user; /* handed to both steps */
    mf_callback **callbacks; /* not owned */
    int n_callbacks;
    FILE *out; /* progress stream, NULL = stdout */
    mf_checkpoint_fn checkpoint; /* NULL: none; see mf_checkpoint_reason */
    void *checkpoint_user;
    int checkpoint_every; /* 0: at every epoch end; N > 0: every N optimizer steps */
} mf_fit_options;
MF_API mf_fit_options mf_fit_options_default(void);

/* Train. The loaders must be created for this rank (training loader with
 * training = 1, validation with training = 0). Returns the first failure of a
 * step, a callback or the data (naming it); the history keeps the epochs done. */
MF_API mf_status mf_fit(mf_fit_ctx *ctx, mf_loader *train, mf_loader *validation, const mf_fit_options *o);
/* Keras' evaluate: one pass (or `steps`) of the test step over data; logs gets
 * the metric results ("loss", "accuracy", ...). */
MF_API mf_status mf_evaluate(mf_fit_ctx *ctx, mf_loader *data, int steps, mf_logs *logs);
/* Class probabilities (softmax of the logits) of N samples x (N, H, W, 3):
 * probs (N, C). Inference mode, in chunks of up to `batch` samples. */
MF_API void mf_predict(mf_fit_ctx *ctx, const float *x, int N, int batch, float *probs);
#endif
