/* callbacks.c: Keras' built-in callbacks: EarlyStopping, ReduceLROnPlateau,
 * LearningRateScheduler, TerminateOnNaN, CSVLogger and ModelCheckpoint (whose
 * save hook is where the HDF5 checkpoint writer plugs in).
 *
 * Callbacks run on every rank with the same, global, logs (fit reduces the
 * metrics over the ranks first), so their decisions agree without talking. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include "fit_internal.h"

void mf_callback_free(mf_callback *cb)
{
    if (cb && cb->destroy)
        cb->destroy(cb);
}

static void destroy_plain(mf_callback *cb)
{
    mf_free(cb->user);
    mf_free(cb);
}

static mf_callback *new_callback(const char *name, size_t state_bytes)
{
    mf_callback *cb = mf_alloc(sizeof *cb);
    cb->name = name;
    cb->destroy = destroy_plain;
    cb->user = state_bytes ? mf_alloc(state_bytes) : NULL;
    return cb;
}

/* "min", "max" or "auto" (max for accuracies, min otherwise, as Keras) -> +1 max / -1 min */
static int direction(const char *mode, const char *monitor)
{
    if (mode && strcmp(mode, "max") == 0)
        return 1;
    if (mode && strcmp(mode, "min") == 0)
        return -1;
    return strstr(monitor, "acc") ? 1 : -1;
}

/* ---- EarlyStopping --------------------------------------------------------- */
typedef struct early {
    char monitor[48];
    float min_delta;
    int patience, dir, restore;
    double best;
    int wait, best_epoch, stopped_epoch;
    float *best_params, *best_state; /* copies of the buffers at the best epoch */
    size_t n_params, n_state; /* their lengths (the model's) */
    int have_best; /* the copies hold this run's best epoch */
    int got; /* buffers set_buffer restored: 1 params, 2 state */
} early;

static mf_status es_train_begin(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)logs;
    early *e = cb->user;
    e->best = e->dir > 0 ? -INFINITY : INFINITY;
    e->wait = 0;
    e->best_epoch = -1;
    e->stopped_epoch = -1;
    e->have_best = 0; /* copies of an earlier fit are not this one's best */
    e->got = 0;
    size_t np = mf_model_num_params(ctx->model), ns = mf_model_num_state(ctx->model);
    if (e->restore && (!e->best_params || e->n_params != np || e->n_state != ns)) {
        mf_free(e->best_params);
        mf_free(e->best_state);
        e->n_params = np;
        e->n_state = ns;
        e->best_params = mf_alloc((e->n_params ? e->n_params : 1) * sizeof(float));
        e->best_state = mf_alloc((e->n_state ? e->n_state : 1) * sizeof(float));
    }
    return MF_STATUS_OK;
}

static mf_status es_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    early *e = cb->user;
    double v;
    if (!mf_logs_get(logs, e->monitor, &v)) {
        mf_log_warn("EarlyStopping: '%s' is not in the epoch's logs; nothing to monitor", e->monitor);
        return MF_STATUS_OK;
    }
    /* improvement beyond min_delta in the monitored direction */
    if (e->dir * (v - e->best) > e->min_delta || e->best_epoch < 0) {
        e->best = v;
        e->best_epoch = epoch;
        e->wait = 0;
        if (e->restore) {
            mf_model *m = ctx->model;
            MF_ASSERT(e->n_params == mf_model_num_params(m) && e->n_state == mf_model_num_state(m));
            memcpy(e->best_params, mf_model_params(m), e->n_params * sizeof(float));
            memcpy(e->best_state, mf_model_state(m), e->n_state * sizeof(float));
            e->have_best = 1;
        }
        return MF_STATUS_OK;
    }
    if (++e->wait >= e->patience) {
        e->stopped_epoch = epoch;
        mf_fit_stop_training(ctx);
    }
    return MF_STATUS_OK;
}

static mf_status es_train_end(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)logs;
    early *e = cb->user;
    if (e->stopped_epoch >= 0 && ctx->rank == 0)
        mf_log_info("Epoch %d: early stopping (%s did not improve for %d epochs; best %.4f at epoch %d)",
                    e->stopped_epoch + 1, e->monitor, e->patience, e->best, e->best_epoch + 1);
    if (e->restore && e->have_best) {
        mf_model *m = ctx->model;
        memcpy(mf_model_params(m), e->best_params, e->n_params * sizeof(float));
        memcpy(mf_model_state(m), e->best_state, e->n_state * sizeof(float));
        if (ctx->rank == 0)
            mf_log_info("Restoring model weights from the end of the best epoch: %d", e->best_epoch + 1);
    } else if (e->restore && e->best_epoch >= 0 && ctx->rank == 0) {
        /* resumed from a checkpoint without the copy (written before
         * checkpoints kept it, or without restore_best_weights) */
        mf_log_warn("EarlyStopping: no copy of epoch %d's weights (the checkpoint this run resumed from has "
                    "none); the weights stay those of the last epoch",
                    e->best_epoch + 1);
    }
    return MF_STATUS_OK;
}

static int es_get_state(mf_callback *cb, double *v, int cap)
{
    early *e = cb->user;
    if (cap < 4)
        return 0;
    v[0] = e->best;
    v[1] = e->wait;
    v[2] = e->best_epoch;
    v[3] = e->stopped_epoch;
    return 4;
}

static void es_set_state(mf_callback *cb, const double *v, int n)
{
    early *e = cb->user;
    if (n < 4)
        return;
    e->best = v[0];
    e->wait = (int)v[1];
    e->best_epoch = (int)v[2];
    e->stopped_epoch = (int)v[3];
}

static int es_get_buffer(mf_callback *cb, int i, const char **name, const float **v, size_t *n)
{
    early *e = cb->user;
    if (!e->restore || !e->have_best || i < 0 || i > 1)
        return 0;
    *name = i == 0 ? "best_params" : "best_state";
    *v = i == 0 ? e->best_params : e->best_state;
    *n = i == 0 ? e->n_params : e->n_state;
    return 1;
}

static mf_status es_set_buffer(mf_callback *cb, mf_fit_ctx *ctx, const char *name, const float *v, size_t n)
{
    (void)ctx;
    early *e = cb->user;
    if (!e->restore) /* this run does not restore: the copy is not needed */
        return MF_STATUS_OK;
    int which = strcmp(name, "best_params") == 0 ? 1 : strcmp(name, "best_state") == 0 ? 2 : 0;
    if (!which)
        return MF_STATUS_OK; /* a buffer of a later version: not ours to judge */
    size_t want = which == 1 ? e->n_params : e->n_state;
    if (n != want)
        return mf_fail(MF_STATUS_DATA,
                       "EarlyStopping: the checkpoint's copy of the best weights '%s' holds %zu values, this "
                       "model has %zu",
                       name, n, want);
    memcpy(which == 1 ? e->best_params : e->best_state, v, n * sizeof(float));
    e->got |= which;
    /* a model without BatchNorm has no state buffer to restore */
    e->have_best = (e->got & 1) && ((e->got & 2) || e->n_state == 0) && e->best_epoch >= 0;
    return MF_STATUS_OK;
}

static void es_destroy(mf_callback *cb)
{
    early *e = cb->user;
    mf_free(e->best_params);
    mf_free(e->best_state);
    destroy_plain(cb);
}

mf_callback *mf_early_stopping(const char *monitor, float min_delta, int patience, const char *mode,
                               int restore_best_weights)
{
    mf_callback *cb = new_callback("EarlyStopping", sizeof(early));
    early *e = cb->user;
    mf_strlcpy(e->monitor, monitor ? monitor : "val_loss", sizeof e->monitor);
    e->min_delta = fabsf(min_delta);
    e->patience = patience > 0 ? patience : 1;
    e->dir = direction(mode, e->monitor);
    e->restore = restore_best_weights;
    cb->on_train_begin = es_train_begin;
    cb->on_epoch_end = es_epoch_end;
    cb->on_train_end = es_train_end;
    cb->destroy = es_destroy;
    cb->get_state = es_get_state;
    cb->set_state = es_set_state;
    cb->get_buffer = es_get_buffer;
    cb->set_buffer = es_set_buffer;
    return cb;
}

/* ---- ReduceLROnPlateau ----------------------------------------------------- */
typedef struct plateau {
    mf_reduce_lr_options o;
    char monitor[48];
    int dir; /* +1 max, -1 min */
    double best;
    int wait, cooldown_counter;
} plateau;

mf_reduce_lr_options mf_reduce_lr_options_default(void)
{
    mf_reduce_lr_options o;
    memset(&o, 0, sizeof o);
    o.monitor = "val_loss";
    o.factor = 0.1;
    o.patience = 10;
    o.mode = "auto";
    o.min_delta = 1e-4;
    o.cooldown = 0;
    o.min_lr = 0.0;
    o.verbose = 0;
    return o;
}

/* Keras' _reset: on_train_begin of every fit (the rate itself stays reduced) */
static mf_status rlr_train_begin(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)ctx;
    (void)logs;
    plateau *p = cb->user;
    p->best = p->dir > 0 ? -INFINITY : INFINITY;
    p->wait = 0;
    p->cooldown_counter = 0;
    return MF_STATUS_OK;
}

/* The rate becomes new_lr now: the override if there is one, else the scale
 * that makes the schedule's current rate new_lr. */
static void set_rate(mf_fit_ctx *ctx, double new_lr)
{
    if (!isnan(ctx->lr_override)) {
        ctx->lr_override = (float)new_lr;
        return;
    }
    /* new/s, not scale * new/old: the next rate is then exactly (float)new_lr */
    double s = (double)mf_schedule_lr(&ctx->schedule, ctx->global_step);
    MF_ASSERT(s > 0.0); /* old_lr = s * scale > min_lr >= 0 */
    ctx->lr_scale = new_lr / s;
}

static mf_status rlr_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    plateau *p = cb->user;
    double old_lr = (double)mf_fit_learning_rate(ctx);
    mf_logs_set(logs, "lr", old_lr);
    double current;
    if (!mf_logs_get(logs, p->monitor, &current)) {
        char have[MF_LOGS_MAX * 50] = "";
        for (int i = 0; i < logs->n; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? "," : "", logs->name[i]);
        mf_log_warn("Learning rate reduction is conditioned on metric `%s` which is not available. Available "
                    "metrics are: %s.",
                    p->monitor, have);
        return MF_STATUS_OK;
    }
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--;
        p->wait = 0;
    }
    /* NaN is never an improvement (as numpy's less/greater) */
    int better = p->dir < 0 ? current < p->best - p->o.min_delta : current > p->best + p->o.min_delta;
    if (better) {
        p->best = current;
        p->wait = 0;
    } else if (!(p->cooldown_counter > 0)) {
        p->wait++;
        if (p->wait >= p->o.patience && old_lr > (double)(float)p->o.min_lr) {
            double new_lr = old_lr * p->o.factor;
            if (new_lr < p->o.min_lr)
                new_lr = p->o.min_lr;
            set_rate(ctx, new_lr);
            if (p->o.verbose && ctx->rank == 0)
                mf_log_info("Epoch %d: ReduceLROnPlateau reducing learning rate to %g.", epoch + 1, new_lr);
            p->cooldown_counter = p->o.cooldown;
            p->wait = 0;
        }
    }
    return MF_STATUS_OK;
}

static int rlr_get_state(mf_callback *cb, double *v, int cap)
{
    plateau *p = cb->user;
    if (cap < 3)
        return 0;
    v[0] = p->best;
    v[1] = p->wait;
    v[2] = p->cooldown_counter;
    return 3;
}

static void rlr_set_state(mf_callback *cb, const double *v, int n)
{
    plateau *p = cb->user;
    if (n < 3)
        return;
    p->best = v[0];
    p->wait = (int)v[1];
    p->cooldown_counter = (int)v[2];
}

mf_callback *mf_reduce_lr_on_plateau(const mf_reduce_lr_options *opt)
{
    mf_reduce_lr_options o = opt ? *opt : mf_reduce_lr_options_default();
    const char *mode = o.mode ? o.mode : "auto";
    const char *bad = NULL;
    char why[256];
    if (!(o.factor < 1.0)) {
        snprintf(why, sizeof why, "does not support a factor >= 1.0, got %g", o.factor);
        bad = why;
    } else if (!(o.factor >= 0.0) || o.patience < 0 || o.cooldown < 0 || !(o.min_lr >= 0.0) || !isfinite(o.min_lr) ||
               !(o.min_delta >= 0.0) || !isfinite(o.min_delta)) {
        snprintf(why, sizeof why,
                 "factor must be in [0, 1), patience, cooldown, min_lr and min_delta >= 0 (got factor %g, "
                 "patience %d, cooldown %d, min_lr %g, min_delta %g)",
                 o.factor, o.patience, o.cooldown, o.min_lr, o.min_delta);
        bad = why;
    } else if (strcmp(mode, "auto") != 0 && strcmp(mode, "min") != 0 && strcmp(mode, "max") != 0) {
        snprintf(why, sizeof why, "mode must be auto, min or max, got '%.40s'", mode);
        bad = why;
    }
    if (bad) {
        mf_fail(MF_STATUS_INVALID, "ReduceLROnPlateau %s", bad);
        return NULL;
    }
    mf_callback *cb = new_callback("ReduceLROnPlateau", sizeof(plateau));
    plateau *p = cb->user;
    mf_strlcpy(p->monitor, o.monitor ? o.monitor : "val_loss", sizeof p->monitor);
    p->o = o;
    p->o.monitor = p->monitor;
    p->o.mode = NULL; /* the caller's string: only its direction is kept */
    p->dir = direction(mode, p->monitor);
    p->best = p->dir > 0 ? -INFINITY : INFINITY;
    cb->on_train_begin = rlr_train_begin;
    cb->on_epoch_end = rlr_epoch_end;
    cb->get_state = rlr_get_state;
    cb->set_state = rlr_set_state;
    return cb;
}

/* ---- LearningRateScheduler ------------------------------------------------- */
typedef struct lrs {
    float (*fn)(int epoch, float lr, void *user);
    void *user;
} lrs;

static mf_status lrs_epoch_begin(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    (void)logs;
    lrs *s = cb->user;
    float lr = s->fn(epoch, mf_fit_learning_rate(ctx), s->user);
    if (!(lr >= 0.0f) || isinf(lr))
        return mf_fail(MF_STATUS_NUMERIC, "LearningRateScheduler: epoch %d gave learning rate %g", epoch + 1,
                       (double)lr);
    mf_fit_set_learning_rate(ctx, lr);
    return MF_STATUS_OK;
}

static mf_status lrs_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    (void)cb;
    (void)epoch;
    mf_logs_set(logs, "lr", mf_fit_learning_rate(ctx));
    return MF_STATUS_OK;
}

mf_callback *mf_lr_scheduler(float (*fn)(int epoch, float lr, void *user), void *user)
{
    mf_callback *cb = new_callback("LearningRateScheduler", sizeof(lrs));
    lrs *s = cb->user;
    s->fn = fn;
    s->user = user;
    cb->on_epoch_begin = lrs_epoch_begin;
    cb->on_epoch_end = lrs_epoch_end;
    return cb;
}

/* ---- TerminateOnNaN -------------------------------------------------------- */
static mf_status nan_batch_end(mf_callback *cb, mf_fit_ctx *ctx, int step, mf_logs *logs)
{
    (void)cb;
    double loss;
    if (mf_logs_get(logs, "loss", &loss) && !isfinite(loss)) {
        if (ctx->rank == 0)
            mf_log_info("Batch %d: invalid loss, terminating training", step);
        mf_fit_stop_training(ctx);
    }
    return MF_STATUS_OK;
}

mf_callback *mf_terminate_on_nan(void)
{
    mf_callback *cb = new_callback("TerminateOnNaN", 0);
    cb->on_train_batch_end = nan_batch_end;
    return cb;
}

/* ---- CSVLogger ------------------------------------------------------------- */
typedef struct csv {
    char path[1024];
    int append, header_done;
    FILE *f;
} csv;

static mf_status csv_train_begin(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)logs;
    csv *c = cb->user;
    if (ctx->rank != 0)
        return MF_STATUS_OK;
    FILE *probe = c->append ? fopen(c->path, "r") : NULL;
    int had = 0;
    if (probe) {
        had = fgetc(probe) != EOF;
        fclose(probe);
    }
    c->f = fopen(c->path, c->append ? "a" : "w");
    if (!c->f)
        return mf_fail(MF_STATUS_IO, "CSVLogger: cannot open %s: %s", c->path, strerror(errno));
    c->header_done = had;
    return MF_STATUS_OK;
}

static mf_status csv_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    (void)ctx;
    csv *c = cb->user;
    if (!c->f)
        return MF_STATUS_OK;
    if (!c->header_done) {
        fprintf(c->f, "epoch");
        for (int i = 0; i < logs->n; i++)
            fprintf(c->f, ",%s", logs->name[i]);
        fputc('\n', c->f);
        c->header_done = 1;
    }
    fprintf(c->f, "%d", epoch);
    for (int i = 0; i < logs->n; i++)
        fprintf(c->f, ",%.17g", logs->value[i]);
    fputc('\n', c->f);
    if (fflush(c->f) != 0)
        return mf_fail(MF_STATUS_IO, "CSVLogger: writing %s: %s", c->path, strerror(errno));
    return MF_STATUS_OK;
}

static mf_status csv_train_end(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)ctx;
    (void)logs;
    csv *c = cb->user;
    if (c->f && fclose(c->f) != 0) {
        c->f = NULL;
        return mf_fail(MF_STATUS_IO, "CSVLogger: closing %s: %s", c->path, strerror(errno));
    }
    c->f = NULL;
    return MF_STATUS_OK;
}

static void csv_destroy(mf_callback *cb)
{
    csv *c = cb->user;
    if (c->f)
        fclose(c->f);
    destroy_plain(cb);
}

mf_callback *mf_csv_logger(const char *path, int append)
{
    mf_callback *cb = new_callback("CSVLogger", sizeof(csv));
    csv *c = cb->user;
    mf_strlcpy(c->path, path, sizeof c->path);
    c->append = append;
    cb->on_train_begin = csv_train_begin;
    cb->on_epoch_end = csv_epoch_end;
    cb->on_train_end = csv_train_end;
    cb->destroy = csv_destroy;
    return cb;
}

/* ---- ModelCheckpoint ------------------------------------------------------- */
typedef struct ckpt {
    char pattern[1024], monitor[48];
    int dir, best_only;
    double best;
    mf_status (*save)(mf_fit_ctx *ctx, const char *path, void *user);
    void *user;
} ckpt;

/* pattern with "{epoch}" replaced by the 1-based epoch, zero-padded to 4 */
static void expand(char *out, size_t n, const char *pattern, int epoch)
{
    const char *at = strstr(pattern, "{epoch}");
    if (!at) {
        mf_strlcpy(out, pattern, n);
        return;
    }
    snprintf(out, n, "%.*s%04d%s", (int)(at - pattern), pattern, epoch + 1, at + 7);
}

static mf_status ck_train_begin(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)ctx;
    (void)logs;
    ckpt *k = cb->user;
    k->best = k->dir > 0 ? -INFINITY : INFINITY;
    return MF_STATUS_OK;
}

static mf_status ck_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    ckpt *k = cb->user;
    if (k->best_only) {
        double v;
        if (!mf_logs_get(logs, k->monitor, &v)) {
            mf_log_warn("ModelCheckpoint: '%s' is not in the epoch's logs; saving skipped", k->monitor);
            return MF_STATUS_OK;
        }
        if (!(k->dir * (v - k->best) > 0.0))
            return MF_STATUS_OK;
        k->best = v;
    }
    char path[1100];
    expand(path, sizeof path, k->pattern, epoch);
    return k->save(ctx, path, k->user);
}

static int ck_get_state(mf_callback *cb, double *v, int cap)
{
    if (cap < 1)
        return 0;
    v[0] = ((ckpt *)cb->user)->best;
    return 1;
}

static void ck_set_state(mf_callback *cb, const double *v, int n)
{
    if (n >= 1)
        ((ckpt *)cb->user)->best = v[0];
}

mf_callback *mf_model_checkpoint(const char *pattern, const char *monitor, const char *mode, int save_best_only,
                                 mf_status (*save)(mf_fit_ctx *ctx, const char *path, void *user), void *user)
{
    mf_callback *cb = new_callback("ModelCheckpoint", sizeof(ckpt));
    ckpt *k = cb->user;
    mf_strlcpy(k->pattern, pattern, sizeof k->pattern);
    mf_strlcpy(k->monitor, monitor ? monitor : "val_loss", sizeof k->monitor);
    k->dir = direction(mode, k->monitor);
    k->best_only = save_best_only;
    k->save = save;
    k->user = user;
    cb->on_train_begin = ck_train_begin;
    cb->on_epoch_end = ck_epoch_end;
    cb->get_state = ck_get_state;
    cb->set_state = ck_set_state;
    return cb;
}
