/* fit_state.h: what a checkpoint keeps of a training context, as plain data.
 *
 * io/checkpoint_h5.c writes and reads this; only train/ knows the inside of
 * mf_fit_ctx (fit_internal.h). The model, optimizer and communicator come
 * through the public accessors of mpifit/fit.h. */
#ifndef MF_FIT_STATE_H
#define MF_FIT_STATE_H
#include <stdint.h>
#include "mpifit/fit.h"
#include "mpifit/optim.h"

#define MF_MAX_TRACKED 32 /* metrics a context tracks */
#define MF_MAX_CB_STATES 8 /* callback states a checkpoint carries */
#define MF_CB_STATE_LEN 16 /* doubles per callback state */

#define MF_MAX_CB_BUFFERS 8 /* callback float buffers a checkpoint carries */

typedef struct mf_fit_cb_state {
    char name[32]; /* the callback's name (EarlyStopping, ModelCheckpoint) */
    double v[MF_CB_STATE_LEN];
    int n;
} mf_fit_cb_state;

/* One float buffer of a callback (mf_callback.get_buffer / set_buffer). */
typedef struct mf_fit_cb_buffer {
    char callback[32]; /* the callback's name */
    char name[32]; /* the buffer's (EarlyStopping: best_params, best_state) */
    size_t n;
    float *v; /* n floats, mf_alloc'ed */
} mf_fit_cb_buffer;

typedef struct mf_fit_state {
    /* where training stands */
    int epoch, step_in_epoch; /* the epoch to run next (or under way), steps of it done */
    long global_step; /* optimizer steps taken */
    int data_epoch, data_step, data_started; /* the training loader's place */
    uint64_t seed;
    mf_schedule schedule; /* the run's schedule (restore does not take it: see below) */
    float lr_override; /* NaN: follow the schedule */
    double lr_scale; /* on the schedule's rate (ReduceLROnPlateau), 1 = none */
    int stopped; /* a callback stopped training at the end of this epoch (EarlyStopping) */
    /* this rank */
    int rank, world;
    int have_rng; /* rng is this rank's stream (restore: else it restarts) */
    uint64_t rng[4]; /* the dropout stream */
    int n_metrics;
    const char *metric_names[MF_MAX_TRACKED];
    double metric_sums[2 * MF_MAX_TRACKED]; /* (total, count) of each tracked metric */
} mf_fit_state;

/* The state of ctx now (names point into ctx; valid while it lives). */
void mf_fit_state_get(const mf_fit_ctx *ctx, mf_fit_state *st);
/* Put a loaded state into ctx: position, learning-rate override and plateau
 * scale, this rank's dropout stream (restarted from the seed and step when
 * !have_rng) and metric sums, the history (ctx takes the mf_alloc'ed array),
 * callback states and buffers (ctx takes the buffers' arrays; both are handed
 * to callbacks with these names when fit begins). The next fit starts where
 * the state stands; if a callback had stopped training there, it runs no
 * epoch (only on_train_begin and on_train_end). A context compiled with a
 * schedule keeps it (the CLI computes it for this run's world size and steps
 * per epoch) and rank 0 reports how it differs from the stored one; one
 * compiled without takes the stored schedule. */
void mf_fit_state_restore(mf_fit_ctx *ctx, const mf_fit_state *st, mf_logs *history, int n_history,
                          const mf_fit_cb_state *cb, int n_cb, mf_fit_cb_buffer *buf, int n_buf);

/* A failure that some ranks may not share: agree at the step boundary, so
 * either every rank goes on or every rank stops with the failing rank's
 * message. Collective when distributed; returns s alone. */
mf_status mf_fit_agree(mf_fit_ctx *ctx, mf_status s);
/* Average BatchNorm moving statistics over the ranks (collective; no-op alone). */
mf_status mf_fit_average_state(mf_fit_ctx *ctx);
#endif
