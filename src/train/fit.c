/* fit.c: Keras' Model.fit / evaluate / predict around a (default or user)
 * train step: epochs, metric resets, progress, callbacks, validation and the
 * history. Everything here is the same whatever the step does. */
#include <math.h>
#include <string.h>
#include <signal.h>
#include "fit_internal.h"
#include "../core/trace.h"

mf_fit_options mf_fit_options_default(void)
{
    mf_fit_options o;
    memset(&o, 0, sizeof o);
    o.epochs = 1;
    o.verbose = 1;
    return o;
}

int mf_fit_history_len(const mf_fit_ctx *ctx) { return ctx->n_history; }

const mf_logs *mf_fit_history(const mf_fit_ctx *ctx, int i)
{
    MF_ASSERT(i >= 0 && i < ctx->n_history);
    return &ctx->history[i];
}

static void history_push(mf_fit_ctx *ctx, const mf_logs *logs)
{
    ctx->history = mf_grow(ctx->history, ctx->n_history, &ctx->cap_history, 16, sizeof *ctx->history);
    ctx->history[ctx->n_history++] = *logs;
}

/* Run hook `h` of every callback; the first failure stops fit on every rank.
 * Some callbacks write on rank 0 only (CSV, weights.h5, metrics.h5), so a full
 * disk fails there alone: the status goes through the step-boundary
 * agreement, and every rank stops with rank 0's message instead of the others
 * waiting for it in the next collective. (No callback makes collective calls
 * of its own, so a rank that skips the rest after a failure cannot leave the
 * others waiting inside one.) */
#define CALLBACKS(o, h, ...)                                                  \
    do {                                                                      \
        mf_status cb_s_ = MF_STATUS_OK;                                       \
        for (int cb_i_ = 0; cb_i_ < (o)->n_callbacks; cb_i_++) {              \
            mf_callback *cb_ = (o)->callbacks[cb_i_];                         \
            if (cb_->h && (cb_s_ = cb_->h(cb_, __VA_ARGS__)) != MF_STATUS_OK) \
                break;                                                        \
        }                                                                     \
        cb_s_ = mf_fit_agree(ctx, cb_s_);                                     \
        if (cb_s_ != MF_STATUS_OK)                                            \
            return cb_s_;                                                     \
    } while (0)

mf_status mf_fit_reduce_logs(mf_fit_ctx *ctx, mf_logs *logs, double *images)
{
    if (!ctx->comm || mf_comm_size(ctx->comm) == 1)
        return MF_STATUS_OK;
    /* one allreduce per report: (total, count, in the logs) of every tracked
     * metric, and the images, so rank 0 shows the true global values. The
     * presence is summed too: a rank whose validation shard was all padding
     * has no "loss" of its own, and without the others' it would lack
     * val_loss, and EarlyStopping or ReduceLROnPlateau would decide otherwise
     * there than on rank 0. */
    double v[3 * MF_MAX_TRACKED + 1];
    int n = 0;
    for (int i = 0; i < ctx->n_tracked; i++) {
        v[n++] = ctx->tracked[i]->total;
        v[n++] = ctx->tracked[i]->count;
        v[n++] = mf_logs_get(logs, ctx->tracked[i]->name, NULL) ? 1.0 : 0.0;
    }
    v[n++] = images ? *images : 0.0;
    MF_TRY(mf_comm_allreduce_sum(ctx->comm, v, n));
    for (int i = 0; i < ctx->n_tracked; i++) {
        mf_metric global = *ctx->tracked[i];
        global.total = v[3 * i];
        global.count = v[3 * i + 1];
        if (v[3 * i + 2] > 0.0 && global.count > 0.0)
            mf_logs_set(logs, global.name, mf_metric_result(&global));
    }
    if (images)
        *images = v[n - 1];
    return MF_STATUS_OK;
}

mf_status mf_fit_agree(mf_fit_ctx *ctx, mf_status s)
{
    if (!ctx->comm || mf_comm_size(ctx->comm) == 1)
        return s;
    return mf_comm_agree(ctx->comm, s);
}

/* A step failed somewhere inside (possibly before the gradient allreduce that
 * the other ranks are waiting in): no collective can be trusted to complete
 * any more, so with several ranks the job ends here, loudly. */
static mf_status step_failed(mf_fit_ctx *ctx, mf_status s)
{
    if (ctx->comm && mf_comm_size(ctx->comm) > 1) {
        char msg[1100];
        snprintf(msg, sizeof msg, "error: step %ld failed: %s", ctx->global_step, mf_last_error());
        mf_comm_abort(ctx->comm, 1, msg);
    }
    return s;
}

/* BatchNorm moving statistics drift apart with per-rank batch statistics:
 * average them so evaluation and checkpoints see one model. */
mf_status mf_fit_average_state(mf_fit_ctx *ctx)
{
    if (!ctx->comm || mf_comm_size(ctx->comm) == 1 || mf_model_num_state(ctx->model) == 0)
        return MF_STATUS_OK;
    return mf_comm_average_floats(ctx->comm, mf_model_state(ctx->model), mf_model_num_state(ctx->model));
}

/* One pass of the test step over `data` (Keras' evaluate without the reset of
 * callbacks); logs get the global values. */
static mf_status run_test_pass(mf_fit_ctx *ctx, mf_loader *data, int steps, mf_step_fn step, void *user, mf_logs *logs)
{
    mf_fit_reset_metrics(ctx);
    MF_TRY(mf_fit_average_state(ctx));
    MF_TRY(mf_fit_agree(ctx, mf_loader_begin_epoch(data, 0)));
    int n = mf_loader_steps(data);
    if (steps > 0 && steps < n)
        n = steps;
    mf_logs_clear(logs);
    for (int s = 0; s < n; s++) {
        const mf_batch *b;
        MF_TRY(mf_fit_agree(ctx, mf_loader_next(data, &b)));
        if (mf_fault_hit("usr1_in_validation")) /* the fault tests: preempted while validating */
            raise(SIGUSR1);
        mf_logs_clear(logs);
        mf_status st = step(ctx, b, logs, user);
        if (st != MF_STATUS_OK)
            return step_failed(ctx, st);
    }
    return mf_fit_reduce_logs(ctx, logs, NULL);
}

/* The test pass, with the class weights off (they weight fit's training data only). */
static mf_status run_test(mf_fit_ctx *ctx, mf_loader *data, int steps, mf_step_fn step, void *user, mf_logs *logs)
{
    ctx->in_test = 1;
    mf_status s = run_test_pass(ctx, data, steps, step, user, logs);
    ctx->in_test = 0;
    return s;
}

mf_status mf_evaluate(mf_fit_ctx *ctx, mf_loader *data, int steps, mf_logs *logs)
{
    return run_test(ctx, data, steps, mf_test_step_default, NULL, logs);
}

/* The next training batch; the loader's epochs follow the training epochs in
 * full-pass mode and simply continue with steps_per_epoch. */
static mf_status next_train_batch(mf_fit_ctx *ctx, mf_loader *train, const mf_batch **b)
{
    if (!ctx->data_started) {
        /* first batch of this fit: where the data stood (0, or a restored position) */
        MF_TRY(mf_loader_begin_epoch_at(train, ctx->data_epoch, ctx->data_step));
        ctx->data_started = 1;
    }
    if (ctx->data_step >= mf_loader_steps(train)) {
        ctx->data_epoch++;
        MF_TRY(mf_loader_begin_epoch(train, ctx->data_epoch));
        ctx->data_step = 0;
    }
    MF_TRY(mf_loader_next(train, b));
    ctx->data_step++;
    return MF_STATUS_OK;
}

int mf_fit_position(const mf_fit_ctx *ctx, int *step_in_epoch)
{
    if (step_in_epoch)
        *step_in_epoch = ctx->epoch_done ? 0 : ctx->epoch_step;
    return ctx->epoch_done ? ctx->epoch + 1 : ctx->epoch;
}

/* The last step's split on every rank (ctx->rank_times): this rank's slot
 * filled, the others zero, summed over the ranks (exact: one value per slot).
 * One small allreduce per step; metrics.h5 stores the split of every rank, so
 * a slow rank shows. */
static mf_status gather_rank_times(mf_fit_ctx *ctx, double comm_s)
{
    int world = ctx->comm ? mf_comm_size(ctx->comm) : 1, rank = ctx->comm ? mf_comm_rank(ctx->comm) : 0;
    if (ctx->rank_times_n != 4 * world) {
        mf_free(ctx->rank_times);
        ctx->rank_times = mf_alloc(4 * (size_t)world * sizeof *ctx->rank_times);
        ctx->rank_times_n = 4 * world;
    }
    memset(ctx->rank_times, 0, 4 * (size_t)world * sizeof *ctx->rank_times);
    double *t = ctx->rank_times + 4 * (size_t)rank;
    double compute = ctx->last_step_s - comm_s - ctx->last_opt_s;
    t[0] = compute > 0.0 ? compute : 0.0;
    t[1] = comm_s;
    t[2] = ctx->last_wait_s;
    t[3] = ctx->last_opt_s;
    if (world > 1)
        MF_TRY(mf_comm_allreduce_sum(ctx->comm, ctx->rank_times, 4 * world));
    return MF_STATUS_OK;
}

int mf_fit_rank_times(const mf_fit_ctx *ctx, const double **t)
{
    *t = ctx->rank_times;
    return ctx->rank_times_n / 4;
}

double mf_fit_last_step_seconds(const mf_fit_ctx *ctx) { return ctx->last_step_s; }
double mf_fit_last_wait_seconds(const mf_fit_ctx *ctx) { return ctx->last_wait_s; }
double mf_fit_last_epoch_images_per_s(const mf_fit_ctx *ctx) { return ctx->last_epoch_ips; }

/* Callback states and buffers a checkpoint brought, by callback name (the
 * states first: a buffer may need them). A buffer no callback takes is
 * dropped. The first callback that refuses a buffer is the result. */
static mf_status restore_callback_states(mf_fit_ctx *ctx, const mf_fit_options *o)
{
    for (int k = 0; k < ctx->n_cb_state; k++)
        for (int i = 0; i < o->n_callbacks; i++) {
            mf_callback *cb = o->callbacks[i];
            if (cb->set_state && cb->name && strcmp(cb->name, ctx->cb_state[k].name) == 0)
                cb->set_state(cb, ctx->cb_state[k].v, ctx->cb_state[k].n);
        }
    ctx->n_cb_state = 0;
    mf_status s = MF_STATUS_OK;
    for (int k = 0; k < ctx->n_cb_buffer && s == MF_STATUS_OK; k++) {
        const mf_fit_cb_buffer *b = &ctx->cb_buffer[k];
        for (int i = 0; i < o->n_callbacks && s == MF_STATUS_OK; i++) {
            mf_callback *cb = o->callbacks[i];
            if (cb->set_buffer && cb->name && strcmp(cb->name, b->callback) == 0)
                s = cb->set_buffer(cb, ctx, b->name, b->v, b->n);
        }
    }
    mf_fit_drop_cb_buffers(ctx);
    return s;
}

/* Has any rank been asked to stop? One tiny allreduce at every step boundary,
 * so all ranks stop after the same step. */
static int preempted(mf_fit_ctx *ctx)
{
    double flag = mf_preemption_requested() ? 1.0 : 0.0;
    if (ctx->comm && mf_comm_size(ctx->comm) > 1 && mf_comm_allreduce_sum(ctx->comm, &flag, 1) != MF_STATUS_OK)
        return 1; /* cannot agree: stop rather than run on alone */
    return flag > 0.0;
}

static mf_status checkpoint(mf_fit_ctx *ctx, const mf_fit_options *o, mf_checkpoint_reason why)
{
    if (!o->checkpoint)
        return MF_STATUS_OK;
    double t0 = mf_now();
    mf_status s = o->checkpoint(ctx, why, o->checkpoint_user);
    if (mf_trace_on())
        mf_trace_span("checkpoint", "checkpoint", MF_TRACE_COMPUTE, t0, mf_now());
    return s;
}

/* Where fit starts: initial_epoch (Keras: each fit counts from it), or where a
 * context restored from a checkpoint stands (epoch *first, step *resume_step). */
static void start_position(mf_fit_ctx *ctx, const mf_fit_options *o, int *first, int *resume_step)
{
    *resume_step = 0;
    *first = o->initial_epoch;
    if (ctx->restored) {
        *first = mf_fit_position(ctx, resume_step);
        ctx->restored = 0;
        if (o->initial_epoch > *first) {
            *first = o->initial_epoch;
            *resume_step = 0;
        }
    } else {
        ctx->data_started = 0; /* a new fit: the data order starts at epoch initial_epoch */
        ctx->data_epoch = *first;
        ctx->data_step = 0;
    }
}

/* A full pass per epoch: the loader's epoch is the training epoch, so a
 * resumed run sees the same order. Collective. */
static mf_status begin_epoch_data(mf_fit_ctx *ctx, mf_loader *train, const mf_fit_options *o, int epoch, int s0)
{
    if (o->steps_per_epoch == 0 && (ctx->data_epoch != epoch || ctx->data_step != s0 || !ctx->data_started)) {
        ctx->data_epoch = epoch;
        MF_TRY(mf_fit_agree(ctx, mf_loader_begin_epoch_at(train, epoch, s0)));
        ctx->data_started = 1;
        ctx->data_step = s0;
    }
    return MF_STATUS_OK;
}

/* Steps s0 .. steps-1 of the epoch: batch, train step, global metrics,
 * callbacks, progress, step checkpoints; a preemption request checkpoints and
 * stops. *done: steps finished; *images: images trained on, all ranks. */
static mf_status run_steps(mf_fit_ctx *ctx, mf_loader *train, const mf_fit_options *o, mf_step_fn train_step,
                           mf_progress *prog, int epoch, int s0, int steps, mf_logs *logs, int *done, double *images)
{
    FILE *out = prog->f;
    for (int s = s0; s < steps && !ctx->stop; s++) {
        if (preempted(ctx)) {
            if (prog->drawn)
                fputc('\n', out);
            MF_TRY(checkpoint(ctx, o, MF_CHECKPOINT_PREEMPT));
            return mf_fail(MF_STATUS_PREEMPTED, "stopped by signal %d at epoch %d, step %d of %d (global step %ld)",
                           mf_preemption_requested(), epoch + 1, s, steps, ctx->global_step);
        }
        const mf_batch *b;
        mf_comm_set_context(ctx->comm, "epoch %d, step %d", epoch + 1, s + 1); /* for the watchdog */
        double tw = mf_now();
        mf_status st = mf_fit_agree(ctx, next_train_batch(ctx, train, &b));
        ctx->last_wait_s = mf_now() - tw;
        if (mf_trace_on())
            mf_trace_span("data", "wait for the batch", MF_TRACE_COMPUTE, tw, tw + ctx->last_wait_s);
        if (st != MF_STATUS_OK) {
            if (prog->drawn)
                fputc('\n', out);
            return st;
        }
        mf_logs_clear(logs);
        CALLBACKS(o, on_train_batch_begin, ctx, s, logs);
        mf_logs_clear(logs);
        /* a callback (or the step before) may have frozen or unfrozen layers:
         * every rank must agree, and the gradient buckets follow */
        MF_TRY(mf_fit_sync_trainable(ctx));
        double ts = mf_now(), comm0 = mf_fit_allreduce_wait_seconds(ctx);
        ctx->last_opt_s = 0.0;
        st = train_step(ctx, b, logs, o->step_user);
        ctx->last_step_s = mf_now() - ts;
        if (st != MF_STATUS_OK) {
            if (prog->drawn)
                fputc('\n', out);
            return step_failed(ctx, st);
        }
        if (mf_trace_on()) {
            char name[48];
            snprintf(name, sizeof name, "step %ld", ctx->global_step);
            mf_trace_span("step", name, MF_TRACE_COMPUTE, ts, ts + ctx->last_step_s);
        }
        MF_TRY(gather_rank_times(ctx, mf_fit_allreduce_wait_seconds(ctx) - comm0));
        double batch_images = b->n_valid;
        MF_TRY(mf_fit_reduce_logs(ctx, logs, &batch_images));
        *images += batch_images;
        *done = s + 1;
        ctx->epoch_step = *done;
        CALLBACKS(o, on_train_batch_end, ctx, s, logs);
        mf_progress_step(prog, *done, logs);
        if (o->checkpoint_every > 0 && ctx->global_step % o->checkpoint_every == 0 && *done < steps)
            MF_TRY(checkpoint(ctx, o, MF_CHECKPOINT_STEPS));
    }
    return MF_STATUS_OK;
}

/* Validation at the end of an epoch: its metrics join logs as val_<name>. */
static mf_status validate(mf_fit_ctx *ctx, mf_loader *validation, const mf_fit_options *o, mf_step_fn test_step,
                          mf_logs *logs)
{
    mf_logs vlogs;
    mf_logs_clear(&vlogs);
    mf_comm_set_context(ctx->comm, "validation after epoch %d", ctx->epoch + 1);
    CALLBACKS(o, on_test_begin, ctx, &vlogs);
    MF_TRY(run_test(ctx, validation, o->validation_steps, test_step, o->step_user, &vlogs));
    CALLBACKS(o, on_test_end, ctx, &vlogs);
    for (int i = 0; i < vlogs.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "val_%s", vlogs.name[i]);
        mf_logs_set(logs, name, vlogs.value[i]);
    }
    return MF_STATUS_OK;
}

/* One epoch from step s0: data, steps, BatchNorm statistics averaged over the
 * ranks, validation, callbacks, history and the epoch's checkpoint. */
static mf_status run_epoch(mf_fit_ctx *ctx, mf_loader *train, mf_loader *validation, const mf_fit_options *o,
                           mf_step_fn train_step, mf_step_fn test_step, int verbose, int epoch, int s0, mf_logs *logs)
{
    ctx->epoch = epoch;
    ctx->epoch_done = 0;
    ctx->epoch_step = s0;
    MF_TRY(begin_epoch_data(ctx, train, o, epoch, s0));
    int steps = o->steps_per_epoch > 0 ? o->steps_per_epoch : mf_loader_steps(train);
    if (s0 == 0)
        mf_fit_reset_metrics(ctx); /* resuming mid-epoch keeps the restored running metrics */
    mf_logs_clear(logs);
    CALLBACKS(o, on_epoch_begin, ctx, epoch, logs);
    mf_progress prog;
    mf_progress_begin(&prog, o->out ? o->out : stdout, verbose, o->progress_every, steps, epoch, o->epochs);
    double t0 = mf_now(), images = 0.0;
    int done = s0;
    MF_TRY(run_steps(ctx, train, o, train_step, &prog, epoch, s0, steps, logs, &done, &images));
    double dt = mf_now() - t0;
    MF_TRY(mf_fit_average_state(ctx));
    if (validation && !ctx->stop)
        MF_TRY(validate(ctx, validation, o, test_step, logs));
    ctx->last_epoch_ips = dt > 0 ? images / dt : 0.0;
    mf_progress_end(&prog, done, logs, ctx->last_epoch_ips);
    CALLBACKS(o, on_epoch_end, ctx, epoch, logs);
    history_push(ctx, logs); /* last, as Keras' History: it sees what callbacks added (lr) */
    ctx->epoch_done = 1;
    if (o->checkpoint_every == 0 || (o->checkpoint_every > 0 && ctx->global_step % o->checkpoint_every == 0))
        MF_TRY(checkpoint(ctx, o, MF_CHECKPOINT_EPOCH));
    return MF_STATUS_OK;
}

mf_status mf_fit(mf_fit_ctx *ctx, mf_loader *train, mf_loader *validation, const mf_fit_options *o)
{
    mf_step_fn train_step = o->train_step ? o->train_step : mf_train_step_default;
    mf_step_fn test_step = o->test_step ? o->test_step : mf_test_step_default;
    if (ctx->det && train_step != mf_train_step_default)
        return mf_fail(MF_STATUS_INVALID,
                       "fit: deterministic mode runs the built-in train step (chunked, docs/deterministic.md); a "
                       "train_step of one's own would run its own forward over the whole batch");
    int verbose = ctx->rank == 0 || o->verbose_all_ranks ? o->verbose : 0; /* rank 0 speaks for the job */
    int first, resume_step;
    /* a checkpoint written where a callback (EarlyStopping) stopped training:
     * the run it continues had ended there, so this fit trains no epoch */
    int stopped = ctx->restored && ctx->restored_stopped;
    ctx->restored_stopped = 0;
    start_position(ctx, o, &first, &resume_step);
    if (o->epochs <= first)
        return mf_fail(MF_STATUS_INVALID, "fit: epochs (%d) must be greater than the first epoch to run (%d)",
                       o->epochs, first);
    ctx->stop = stopped;
    if (stopped && ctx->rank == 0)
        mf_log_info("training had been stopped by a callback at the end of epoch %d (the checkpoint's): no more "
                    "epochs run",
                    first);
    /* every rank starts from rank 0's weights, statistics and optimizer state */
    MF_TRY(mf_fit_broadcast_state(ctx));
    mf_logs logs;
    mf_logs_clear(&logs);
    CALLBACKS(o, on_train_begin, ctx, &logs);
    MF_TRY(mf_fit_agree(ctx, restore_callback_states(ctx, o)));
    for (int epoch = first; epoch < o->epochs && !ctx->stop; epoch++)
        MF_TRY(run_epoch(ctx, train, validation, o, train_step, test_step, verbose, epoch,
                         epoch == first ? resume_step : 0, &logs));
    CALLBACKS(o, on_train_end, ctx, &logs);
    return MF_STATUS_OK;
}

void mf_predict(mf_fit_ctx *ctx, const float *x, int N, int batch, float *probs)
{
    mf_shape in = mf_model_input_shape(ctx->model), out = mf_model_output_shape(ctx->model);
    size_t sample = mf_shape_sample_numel(&in);
    int C = out.d[1];
    MF_ASSERT(out.ndim == 2 && batch > 0);
    for (int s = 0; s < N; s += batch) {
        int n = N - s < batch ? N - s : batch;
        mf_tensor y = mf_model_forward(ctx->model, x + (size_t)s * sample, n, MF_MODE_INFER, NULL);
        mf_softmax(probs + (size_t)s * C, y.data, n, C);
    }
}
