/* mpifit/optim.h: optimizers and learning-rate schedules.
 *
 * An optimizer updates a model's one parameter buffer from its one gradient
 * buffer. Its state (SGD momentum; Adam m and v) lives in buffers parallel to
 * the parameter buffer (same length, same offsets), so checkpoints store each
 * as one dataset and data-parallel ranks can broadcast them in one call.
 * Weights of frozen layers are never touched. */
#ifndef MPIFIT_OPTIM_H
#define MPIFIT_OPTIM_H
#include <stddef.h>
#include "mpifit/status.h"
#include "mpifit/model.h"

typedef enum mf_optimizer_kind { MF_OPT_SGD = 0, MF_OPT_ADAM = 1 } mf_optimizer_kind;

/* Hyper-parameters (the learning rate is not one: it is passed to every
 * mf_optimizer_apply, from a schedule). Only the fields of `kind` are read and
 * validated; mf_optimizer_defaults fills all of them. */
typedef struct mf_optimizer_options {
    mf_optimizer_kind kind;
    float momentum; /* SGD, in [0, 1): 0 = plain SGD (p -= lr*g); Keras: v = m*v - lr*g; p += v */
    int nesterov; /* SGD, 0 or 1 (1 needs momentum > 0): p += m*v - lr*g with the new v */
    float beta1, beta2; /* Adam, each in [0, 1) (Keras defaults 0.9, 0.999) */
    float epsilon; /* Adam, > 0 (Keras default 1e-7), added to sqrt(v) (Keras' epsilon-hat form) */
    float weight_decay; /* >= 0; decoupled (Loshchilov & Hutter): p -= lr * wd * p, applied before the
                            gradient step, to every trainable weight (AdamW / SGDW), as Keras 3's
                            weight_decay argument; 0 = none */
} mf_optimizer_options;

/* Keras' defaults: kind as given, momentum 0, nesterov 0, beta1 0.9, beta2 0.999,
 * epsilon 1e-7, weight_decay 0 (every field, whatever the kind). */
MF_API mf_optimizer_options mf_optimizer_defaults(mf_optimizer_kind kind);

typedef struct mf_optimizer mf_optimizer;

/* An optimizer for model m (built): state buffers of mf_model_num_params(m)
 * floats, zeroed, iteration count 0. The options are copied. Free with
 * mf_optimizer_free. Returns NULL with mf_last_error() set (MF_STATUS_INVALID)
 * on a NULL argument, an unbuilt model, or bad options of o->kind: an unknown
 * kind, momentum outside [0, 1), nesterov without momentum, beta1/beta2
 * outside [0, 1), epsilon <= 0, weight_decay < 0, or any NaN. */
MF_API mf_optimizer *mf_optimizer_create(const mf_model *m, const mf_optimizer_options *o);
MF_API void mf_optimizer_free(mf_optimizer *opt); /* NULL is a no-op */
/* One update of every trainable weight of m with learning rate lr, from the
 * gradients in mf_model_grads(m) (already averaged across ranks). Only tensors
 * whose mf_param_info.trainable is 1 change, as of this call: weights of frozen
 * layers and the state buffer (BatchNorm moving statistics) are never written.
 * Increments the iteration count (Adam's bias correction uses it). m must be
 * the model the optimizer was created for (same parameter layout, asserted).
 * Every rank applying the same gradients gets bit-identical parameters. */
MF_API void mf_optimizer_apply(mf_optimizer *opt, mf_model *m, float lr);
MF_API long mf_optimizer_iterations(const mf_optimizer *opt);
MF_API void mf_optimizer_set_iterations(mf_optimizer *opt, long iterations); /* resume */
/* The state buffers, for checkpoints and broadcast: SGD with momentum has one
 * ("momentum"), plain SGD none, Adam two ("m", "v"). Each holds num_params
 * floats in the parameter buffer's layout, owned by the optimizer and writable
 * (to restore a checkpoint). Fills bufs[0..n) and names[0..n) (arrays of at
 * least 2; either may be NULL to only count) and returns n (0..2). */
MF_API int mf_optimizer_state(mf_optimizer *opt, float **bufs, const char **names);
MF_API const mf_optimizer_options *mf_optimizer_options_of(const mf_optimizer *opt);

/* ---- learning-rate schedules: lr as a function of the global step ---------- */

typedef enum mf_schedule_kind {
    MF_SCHEDULE_CONSTANT = 0,
    MF_SCHEDULE_STEP = 1, /* base * decay_rate ^ floor(s / decay_steps), s = step - warmup_steps */
    MF_SCHEDULE_COSINE = 2 /* base * 0.5 * (1 + cos(pi * min(1, s / max(1, total_steps - warmup_steps)))):
                                  base right after warm-up, 0 at total_steps and beyond */
} mf_schedule_kind;

typedef struct mf_schedule {
    mf_schedule_kind kind;
    float base_lr;
    long warmup_steps; /* step < warmup_steps: base * (step + 1) / warmup_steps; <= 0: none */
    long total_steps; /* cosine: the step where the rate reaches 0 (warm-up included) */
    float decay_rate; /* step */
    long decay_steps; /* step: period, counted after warm-up; <= 0: never decays */
    long start_step; /* the global step where this schedule's clock starts (a fine-tuning
                         phase); earlier steps get the rate of its step 0. 0 = from the start */
} mf_schedule;

/* The rate at global step `step` (0-based, >= 0; one step = one optimizer
 * update): warm-up first, then the schedule over the remaining steps, its clock
 * restarted at 0 after warm-up. Pure function: a resumed run recomputes it. */
MF_API float mf_schedule_lr(const mf_schedule *s, long step);
/* Goyal et al. (2017), "Accurate, Large Minibatch SGD": scale base_lr by the
 * number of ranks (global batch / per-rank batch), world >= 1. Pair it with a
 * warm-up: the scaled rate is too large for the first steps. */
MF_API void mf_schedule_scale_for_world(mf_schedule *s, int world);
#endif
