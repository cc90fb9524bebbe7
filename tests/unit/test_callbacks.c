/* test_callbacks.c: ReduceLROnPlateau against hand-computed Keras traces (min
 * and max mode, patience, cooldown, min_lr, min_delta, a NaN), its
 * composition with a cosine schedule and with an override; ReduceLROnPlateau
 * and EarlyStopping(restore_best_weights) across a checkpoint and resume: the
 * same learning rates, stop epoch and restored weights, bit for bit, as an
 * uninterrupted run; and a checkpoint from before the buffers and the scale
 * (which loads, without them). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include "mpifit.h"
#include "core/core.h"
#include "synth/synthetic.h"
#include "test.h"

static char dir[64];
static mf_loader *loader;

/* The run's monitored sequence: a step sets logs[name] = v[epoch] (NaN past
 * the end); train: a real training step first, else only the step counter
 * moves (a zero gradient through Adam changes no weight). */
typedef struct trace {
    const char *name;
    const double *v;
    int n;
    int train;
} trace;

static mf_status trace_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    const trace *t = user;
    if (t->train) {
        MF_TRY(mf_train_step_default(ctx, b, logs, NULL));
    } else {
        mf_fit_zero_grad(ctx);
        MF_TRY(mf_apply_gradients(ctx));
    }
    int e = mf_fit_epoch(ctx);
    mf_logs_set(logs, t->name, e < t->n ? t->v[e] : NAN);
    return MF_STATUS_OK;
}

static mf_fit_ctx *make_ctx(mf_model **m, const mf_schedule *s, uint64_t seed)
{
    MF_CHECK(mf_small_cnn(m, 16, 3, 4, 0.0f, seed) == MF_STATUS_OK);
    mf_fit_ctx *ctx = mf_fit_ctx_create(*m, 5, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_ADAM);
    MF_CHECK(mf_compile(ctx, mf_optimizer_create(*m, &oo), s, NULL, "accuracy") == MF_STATUS_OK);
    return ctx;
}

static void free_ctx(mf_fit_ctx *ctx, mf_model *m)
{
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
}

static mf_fit_options options(trace *t, mf_callback **cbs, int n, int epochs, int steps)
{
    mf_fit_options o = mf_fit_options_default();
    o.epochs = epochs;
    o.steps_per_epoch = steps;
    o.verbose = 0;
    o.train_step = trace_step;
    o.step_user = t;
    o.callbacks = cbs;
    o.n_callbacks = n;
    return o;
}

static double logged_lr(mf_fit_ctx *ctx, int e)
{
    double lr = -1.0;
    MF_CHECK_MSG(mf_logs_get(mf_fit_history(ctx, e), "lr", &lr), "epoch %d has no lr", e + 1);
    return lr;
}

/* ---- the min-mode trace, worked by hand with keras/callbacks/reduce_lr_on_plateau.py:
 * factor 0.5, patience 2, cooldown 2, min_lr 0.02, min_delta 0.1, lr 0.1
 *   e0  1.00  < inf: best 1.0
 *   e1  0.95  not < 0.9: wait 1
 *   e2  0.85  < 0.9: best 0.85, wait 0
 *   e3  0.80  not < 0.75: wait 1
 *   e4  0.80  wait 2 >= 2: lr 0.1 -> 0.05, cooldown 2, wait 0
 *   e5  0.90  cooldown 2 -> 1 (wait 0); still in cooldown: nothing
 *   e6  0.90  cooldown 1 -> 0; out of it: wait 1
 *   e7  0.90  wait 2: 0.05 -> 0.025, cooldown 2
 *   e8  0.60  cooldown -> 1; 0.6 < 0.75: best 0.6
 *   e9  0.60  cooldown -> 0; not < 0.5: wait 1
 *   e10 0.55  wait 2: max(0.0125, min_lr 0.02) = 0.02, cooldown 2
 *   e11 0.55  cooldown -> 1
 *   e12 0.55  cooldown -> 0, wait 1
 *   e13 0.55  wait 2, but lr 0.02 is not > min_lr: no reduction, wait is not reset
 *   e14 0.55  wait 3
 *   e15 NaN   never an improvement: wait 4
 * "lr" in the logs is the rate of the epoch (before its reduction). */
static const double min_trace[16] = {1.0, 0.95, 0.85, 0.80, 0.80, 0.9,  0.9,  0.9,
                                     0.6, 0.6,  0.55, 0.55, 0.55, 0.55, 0.55, NAN};
static const float min_logged[16] = {0.1f,   0.1f,   0.1f,   0.1f,  0.1f,  0.05f, 0.05f, 0.05f,
                                     0.025f, 0.025f, 0.025f, 0.02f, 0.02f, 0.02f, 0.02f, 0.02f};

static mf_reduce_lr_options min_options(void)
{
    mf_reduce_lr_options o = mf_reduce_lr_options_default();
    o.monitor = "score";
    o.factor = 0.5;
    o.patience = 2;
    o.cooldown = 2;
    o.min_lr = 0.02;
    o.min_delta = 0.1;
    o.mode = "min";
    return o;
}

/* EarlyStopping's and ReduceLROnPlateau's checkpoint hook for the tests:
 * save at the end of the epochs listed in `at` (-1 ends the list), to
 * DIR/<prefix>-E.h5. */
typedef struct saver {
    const char *prefix;
    int at[4];
    mf_callback **cbs;
    int n_cbs;
} saver;

static mf_status save_at(mf_fit_ctx *ctx, mf_checkpoint_reason why, void *user)
{
    saver *s = user;
    int e = mf_fit_epoch(ctx);
    for (int i = 0; i < 4 && s->at[i] >= 0; i++)
        if (why == MF_CHECKPOINT_EPOCH && s->at[i] == e) {
            char path[160];
            snprintf(path, sizeof path, "%s/%s-%d.h5", dir, s->prefix, e);
            mf_checkpoint_info info = {NULL, NULL, 0, s->cbs, s->n_cbs, NULL};
            return mf_checkpoint_save(ctx, path, &info);
        }
    return MF_STATUS_OK;
}

static void test_min_trace(void)
{
    mf_model *m;
    mf_schedule s = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.1f};
    mf_fit_ctx *ctx = make_ctx(&m, &s, 3);
    mf_reduce_lr_options ro = min_options();
    ro.verbose = 1;
    mf_callback *cb = mf_reduce_lr_on_plateau(&ro);
    MF_CHECK(cb != NULL);
    trace t = {"score", min_trace, 16, 0};
    mf_fit_options o = options(&t, &cb, 1, 16, 1);
    saver sv = {"plateau", {5, -1}, &cb, 1};
    o.checkpoint = save_at;
    o.checkpoint_user = &sv;
    MF_CHECK(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK);
    MF_CHECK(mf_fit_history_len(ctx) == 16);
    for (int e = 0; e < 16 && e < mf_fit_history_len(ctx); e++)
        MF_CHECK_MSG(logged_lr(ctx, e) == (double)min_logged[e], "min trace, epoch %d: lr %.9g, Keras %.9g", e + 1,
                     logged_lr(ctx, e), (double)min_logged[e]);
    MF_CHECK(mf_fit_learning_rate(ctx) == 0.02f);
    double st[16];
    MF_CHECK(cb->get_state(cb, st, 16) == 3);
    MF_CHECK_MSG(st[0] == 0.6 && st[1] == 4 && st[2] == 0, "state best %g wait %g cooldown %g, Keras 0.6 4 0", st[0],
                 st[1], st[2]);
    /* the reduced rate stays for the next fit, and each fit starts Keras'
     * counters afresh (on_train_begin's _reset) */
    trace nan = {"score", NULL, 0, 0}; /* NaN: no improvement */
    mf_fit_options o2 = options(&nan, &cb, 1, 19, 1);
    o2.initial_epoch = 16;
    MF_CHECK(mf_fit(ctx, loader, NULL, &o2) == MF_STATUS_OK);
    MF_CHECK(logged_lr(ctx, 16) == (double)0.02f);
    mf_callback_free(cb);
    free_ctx(ctx, m);

    /* resumed at the end of e5 (in cooldown, wait 0, best 0.85, scale 0.5): the
     * same rates to the end, and the same final state */
    ctx = make_ctx(&m, &s, 4);
    cb = mf_reduce_lr_on_plateau(&ro);
    char path[160];
    snprintf(path, sizeof path, "%s/plateau-5.h5", dir);
    MF_CHECK(mf_checkpoint_load(ctx, path, NULL) == MF_STATUS_OK);
    MF_CHECK(mf_fit_learning_rate(ctx) == 0.05f); /* the scale came along */
    o = options(&t, &cb, 1, 16, 1);
    MF_CHECK(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK);
    MF_CHECK(mf_fit_history_len(ctx) == 16);
    for (int e = 0; e < 16 && e < mf_fit_history_len(ctx); e++)
        MF_CHECK_MSG(logged_lr(ctx, e) == (double)min_logged[e], "resumed min trace, epoch %d: lr %.9g, Keras %.9g",
                     e + 1, logged_lr(ctx, e), (double)min_logged[e]);
    MF_CHECK(cb->get_state(cb, st, 16) == 3 && st[0] == 0.6 && st[1] == 4 && st[2] == 0);
    mf_callback_free(cb);
    free_ctx(ctx, m);

    /* without the callback's state the resumed run decides otherwise (the
     * comparison can fail): a fresh best at e6 delays the e7 reduction */
    ctx = make_ctx(&m, &s, 4);
    cb = mf_reduce_lr_on_plateau(&ro);
    MF_CHECK(mf_checkpoint_load(ctx, path, NULL) == MF_STATUS_OK);
    cb->set_state = NULL;
    MF_CHECK(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK);
    MF_CHECK(mf_fit_history_len(ctx) == 16 && logged_lr(ctx, 8) != (double)min_logged[8]);
    mf_callback_free(cb);
    free_ctx(ctx, m);
}

/* ---- the max-mode trace ("acc" in the name: auto is max), by hand:
 * factor 0.1, patience 1, cooldown 0, min_lr 0, min_delta 0.05, lr 0.001
 *   e0 0.50 best | e1 0.50 not > 0.55: reduce (1) | e2 0.60 > 0.55: best
 *   e3 0.60 reduce (2) | e4 0.55 reduce (3) | e5 0.64 > 0.60 but not by 0.05: reduce (4)
 *   e6 0.70 > 0.65: best | e7 NaN: reduce (5)
 * each reduction is Keras' float(float32 lr) * 0.1, stored as float32 */
static void test_max_trace(void)
{
    static const double v[8] = {0.5, 0.5, 0.6, 0.6, 0.55, 0.64, 0.70, NAN};
    static const int before[8] = {0, 0, 1, 1, 2, 3, 4, 4}; /* reductions before each epoch's decision */
    float rate[6] = {0.001f};
    for (int k = 1; k < 6; k++)
        rate[k] = (float)((double)rate[k - 1] * 0.1);
    mf_model *m;
    mf_schedule s = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.001f};
    mf_fit_ctx *ctx = make_ctx(&m, &s, 3);
    mf_reduce_lr_options ro = mf_reduce_lr_options_default();
    ro.monitor = "acc_score";
    ro.patience = 1;
    ro.min_delta = 0.05;
    mf_callback *cb = mf_reduce_lr_on_plateau(&ro);
    trace t = {"acc_score", v, 8, 0};
    mf_fit_options o = options(&t, &cb, 1, 8, 1);
    MF_CHECK(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK);
    for (int e = 0; e < 8 && e < mf_fit_history_len(ctx); e++)
        MF_CHECK_MSG(logged_lr(ctx, e) == (double)rate[before[e]], "max trace, epoch %d: lr %.9g, Keras %.9g", e + 1,
                     logged_lr(ctx, e), (double)rate[before[e]]);
    MF_CHECK(mf_fit_learning_rate(ctx) == rate[5]);
    double st[16];
    MF_CHECK(cb->get_state(cb, st, 16) == 3 && st[0] == 0.70 && st[1] == 0 && st[2] == 0);
    mf_callback_free(cb);

    /* an override (LearningRateScheduler, mf_fit_set_learning_rate) is
     * reduced itself, as Keras sets optimizer.learning_rate */
    mf_fit_set_learning_rate(ctx, 0.3f);
    ro = mf_reduce_lr_options_default();
    ro.monitor = "score";
    ro.patience = 0;
    ro.factor = 0.5;
    cb = mf_reduce_lr_on_plateau(&ro);
    trace up = {"score", (const double[]){0, 0, 0, 0, 0, 0, 0, 0, 1.0, 2.0}, 10, 0}; /* e9 worse than e8 */
    o = options(&up, &cb, 1, 10, 1);
    o.initial_epoch = 8;
    MF_CHECK(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK);
    MF_CHECK(mf_fit_learning_rate(ctx) == (float)((double)0.3f * 0.5));
    mf_callback_free(cb);
    free_ctx(ctx, m);

    /* Keras' ValueError for factor >= 1, and other bad options */
    ro = mf_reduce_lr_options_default();
    ro.factor = 1.0;
    MF_CHECK(mf_reduce_lr_on_plateau(&ro) == NULL);
    MF_CHECK_MSG(strstr(mf_last_error(), "does not support a factor >= 1.0") != NULL, "got: %s", mf_last_error());
    ro.factor = 0.5;
    ro.mode = "down";
    MF_CHECK(mf_reduce_lr_on_plateau(&ro) == NULL && strstr(mf_last_error(), "auto, min or max"));
}

/* ---- with a schedule: the reduction is a scale on it, so a cosine keeps its
 * shape (rate / cosine(step) is the factor from the reduction on) */
static void test_schedule_scale(void)
{
    mf_model *m;
    mf_schedule s = {.kind = MF_SCHEDULE_COSINE, .base_lr = 0.1f, .total_steps = 20};
    mf_fit_ctx *ctx = make_ctx(&m, &s, 3);
    mf_reduce_lr_options ro = mf_reduce_lr_options_default();
    ro.monitor = "score";
    ro.patience = 0;
    ro.factor = 0.5;
    ro.min_delta = 0.0;
    mf_callback *cb = mf_reduce_lr_on_plateau(&ro);
    static const double v[8] = {3, 2, 2.5, 1, 0.5, 0.4, 0.3, 0.2}; /* one plateau: e2 */
    trace t = {"score", v, 8, 0};
    mf_fit_options o = options(&t, &cb, 1, 8, 2);
    MF_CHECK(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK);
    for (int e = 0; e < 8 && e < mf_fit_history_len(ctx); e++) {
        double cosine = (double)mf_schedule_lr(&s, 2L * (e + 1)); /* the next step's rate at e's end */
        double want = e <= 2 ? 1.0 : 0.5;
        MF_CHECK_MSG(fabs(logged_lr(ctx, e) / cosine - want) < 1e-6, "epoch %d: lr %.9g, cosine %.9g, ratio %.9g",
                     e + 1, logged_lr(ctx, e), cosine, logged_lr(ctx, e) / cosine);
    }
    mf_callback_free(cb);
    free_ctx(ctx, m);
}

/* ---- EarlyStopping(restore_best_weights) across a checkpoint ------------- */

/* copies of the weights at the end of two epochs */
typedef struct snaps {
    int at[2];
    float *p[2], *s[2];
} snaps;

static mf_status snap_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    (void)logs;
    snaps *sn = cb->user;
    mf_model *m = mf_fit_model(ctx);
    for (int i = 0; i < 2; i++)
        if (sn->at[i] == epoch) {
            size_t np = mf_model_num_params(m), ns = mf_model_num_state(m);
            sn->p[i] = mf_alloc(np * sizeof(float));
            sn->s[i] = mf_alloc(ns * sizeof(float));
            memcpy(sn->p[i], mf_model_params(m), np * sizeof(float));
            memcpy(sn->s[i], mf_model_state(m), ns * sizeof(float));
        }
    return MF_STATUS_OK;
}

static int same_weights(mf_model *m, const float *p, const float *s)
{
    return p && s && memcmp(mf_model_params(m), p, mf_model_num_params(m) * sizeof(float)) == 0 &&
        memcmp(mf_model_state(m), s, mf_model_num_state(m) * sizeof(float)) == 0;
}

/* An older checkpoint: without the user block that holds the whole-file
 * checksum line (HDF5's signature first, as in files written before it),
 * then `what` deleted (a link, or an attribute of a group). */
static void make_old(const char *from, const char *to, const char *group, const char *attr)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "tail -c +513 '%s' > '%s'", from, to);
    MF_CHECK(system(cmd) == 0);
    hid_t h = H5Fopen(to, H5F_ACC_RDWR, H5P_DEFAULT);
    MF_CHECK(h >= 0);
    if (attr) {
        hid_t g = H5Gopen2(h, group, H5P_DEFAULT);
        MF_CHECK(g >= 0 && H5Adelete(g, attr) >= 0);
        H5Gclose(g);
    } else {
        MF_CHECK(H5Ldelete(h, group, H5P_DEFAULT) >= 0);
    }
    H5Fclose(h);
}

/* score: best at e1, then worse: with patience 3, the stop is at e4 */
static const double es_trace[10] = {5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2};

/* A run of EarlyStopping("score", patience 3, restore) on real training from
 * checkpoint `from` (NULL: from the start); its model and context. */
static mf_fit_ctx *es_run(mf_model **m, const char *from, saver *sv, snaps *sn)
{
    mf_schedule s = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.01f};
    mf_fit_ctx *ctx = make_ctx(m, &s, from ? 99 : 3); /* another init: the checkpoint must bring the weights */
    mf_callback snap = {.name = "Snapshots", .on_epoch_end = snap_epoch_end, .user = sn};
    mf_callback *cbs[2] = {mf_early_stopping("score", 0.0f, 3, "min", 1), &snap};
    if (from)
        MF_CHECK_MSG(mf_checkpoint_load(ctx, from, NULL) == MF_STATUS_OK, "%s", mf_last_error());
    trace t = {"score", es_trace, 10, 1};
    mf_fit_options o = options(&t, cbs, sn ? 2 : 1, 10, 0);
    if (sv) {
        sv->cbs = cbs;
        sv->n_cbs = 1;
        o.checkpoint = save_at;
        o.checkpoint_user = sv;
    }
    MF_CHECK_MSG(mf_fit(ctx, loader, NULL, &o) == MF_STATUS_OK, "%s", mf_last_error());
    mf_callback_free(cbs[0]);
    return ctx;
}

static void test_early_stopping_resume(void)
{
    /* uninterrupted: stops at e4 (5 epochs) with e1's weights; checkpoints after e2 and e4 */
    mf_model *m0;
    saver sv = {"es", {2, 4, -1}, NULL, 0};
    snaps sn = {{1, 4}, {NULL, NULL}, {NULL, NULL}};
    mf_fit_ctx *ctx0 = es_run(&m0, NULL, &sv, &sn);
    MF_CHECK_MSG(mf_fit_history_len(ctx0) == 5, "stopped after %d epochs, want 5", mf_fit_history_len(ctx0));
    MF_CHECK_MSG(same_weights(m0, sn.p[0], sn.s[0]), "the final weights are not those of the best epoch (2)");
    MF_CHECK_MSG(sn.p[1] && !same_weights(m0, sn.p[1], sn.s[1]), "training did not change the weights after e1");
    char p2[160], p4[160], old[160];
    snprintf(p2, sizeof p2, "%s/es-2.h5", dir);
    snprintf(p4, sizeof p4, "%s/es-4.h5", dir);
    MF_CHECK(access(p2, F_OK) == 0 && access(p4, F_OK) == 0);
    /* the copy is in the checkpoint, checksummed like the rest */
    hid_t f = H5Fopen(p2, H5F_ACC_RDONLY, H5P_DEFAULT);
    MF_CHECK(f >= 0 && H5Lexists(f, "callback_buffers", H5P_DEFAULT) > 0 &&
             H5Lexists(f, "callback_buffers/EarlyStopping/best_params", H5P_DEFAULT) > 0 &&
             H5Lexists(f, "callback_buffers/EarlyStopping/best_state", H5P_DEFAULT) > 0);
    H5Fclose(f);
    MF_CHECK(mf_checkpoint_check(p2, NULL) == MF_STATUS_OK);

    /* resumed after e2: the same stop epoch and the same weights, bit for bit */
    mf_model *m1;
    mf_fit_ctx *ctx1 = es_run(&m1, p2, NULL, NULL);
    MF_CHECK_MSG(mf_fit_history_len(ctx1) == 5, "resumed run stopped after %d epochs, want 5",
                 mf_fit_history_len(ctx1));
    MF_CHECK_MSG(same_weights(m1, mf_model_params(m0), mf_model_state(m0)),
                 "resumed run ends with other weights than the uninterrupted one");
    free_ctx(ctx1, m1);

    /* resumed from the stop epoch's checkpoint: no more training, the best weights */
    ctx1 = es_run(&m1, p4, NULL, NULL);
    MF_CHECK_MSG(mf_fit_history_len(ctx1) == 5, "a run resumed after its early stop trained on (%d epochs)",
                 mf_fit_history_len(ctx1));
    MF_CHECK(same_weights(m1, mf_model_params(m0), mf_model_state(m0)));
    free_ctx(ctx1, m1);

    /* a checkpoint without the copy (as written before it was kept): it loads,
     * training stops at the same epoch, but the weights stay the last epoch's
     * (the comparison above can fail) */
    snprintf(old, sizeof old, "%s/es-2-old.h5", dir);
    make_old(p2, old, "callback_buffers", NULL);
    ctx1 = es_run(&m1, old, NULL, NULL);
    MF_CHECK(mf_fit_history_len(ctx1) == 5);
    MF_CHECK(same_weights(m1, sn.p[1], sn.s[1]) && !same_weights(m1, mf_model_params(m0), mf_model_state(m0)));
    free_ctx(ctx1, m1);

    /* a copy that does not fit the model is refused by name */
    snprintf(old, sizeof old, "%s/es-2-bad.h5", dir);
    make_old(p2, old, "callback_buffers/EarlyStopping/best_state", NULL);
    {
        hid_t h = H5Fopen(old, H5F_ACC_RDWR, H5P_DEFAULT);
        hsize_t d = 3;
        float three[3] = {1, 2, 3};
        hid_t sp = H5Screate_simple(1, &d, NULL);
        hid_t ds = H5Dcreate2(h, "callback_buffers/EarlyStopping/best_state", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        MF_CHECK(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, three) >= 0);
        H5Dclose(ds);
        H5Sclose(sp);
        H5Fclose(h);
    }
    mf_schedule s = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.01f};
    ctx1 = make_ctx(&m1, &s, 3);
    MF_CHECK(mf_checkpoint_load(ctx1, old, NULL) == MF_STATUS_OK);
    mf_callback *es = mf_early_stopping("score", 0.0f, 3, "min", 1);
    trace t = {"score", es_trace, 10, 1};
    mf_fit_options o = options(&t, &es, 1, 10, 0);
    MF_CHECK(mf_fit(ctx1, loader, NULL, &o) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "'best_state' holds 3 values"), "got: %s", mf_last_error());
    mf_callback_free(es);
    free_ctx(ctx1, m1);

    /* a checkpoint from before the plateau scale loads with scale 1 */
    snprintf(old, sizeof old, "%s/plateau-old.h5", dir);
    char p5[160];
    snprintf(p5, sizeof p5, "%s/plateau-5.h5", dir);
    make_old(p5, old, "schedule", "lr_scale");
    s.base_lr = 0.1f;
    ctx1 = make_ctx(&m1, &s, 3);
    MF_CHECK(mf_checkpoint_load(ctx1, old, NULL) == MF_STATUS_OK);
    MF_CHECK(mf_fit_learning_rate(ctx1) == 0.1f);
    free_ctx(ctx1, m1);

    for (int i = 0; i < 2; i++) {
        mf_free(sn.p[i]);
        mf_free(sn.s[i]);
    }
    free_ctx(ctx0, m0);
}

int main(void)
{
    mf_test_dir_make(dir, sizeof dir, "callbacks");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char data[128];
    snprintf(data, sizeof data, "%s/data", dir);
    mf_synth_options so = {.n_train = 24, .n_validation = 3, .size = 24, .quality = 90, .seed = 2};
    MF_CHECK(mf_synth_write_dataset(data, &so, 1) == MF_STATUS_OK);
    strcat(data, "/train");
    mf_dataset *ds;
    mf_dataset_options d = mf_dataset_options_default();
    MF_CHECK(mf_dataset_open(&ds, data, &d) == MF_STATUS_OK);
    mf_loader_options lo = mf_loader_options_default();
    lo.batch_size = 8;
    lo.input_size = 16;
    lo.training = 1;
    lo.augment = 0;
    lo.threads = 1;
    lo.seed = 5;
    MF_CHECK(mf_loader_create(&loader, ds, &lo) == MF_STATUS_OK);

    test_min_trace();
    test_max_trace();
    test_schedule_scale();
    test_early_stopping_resume();

    mf_loader_free(loader);
    mf_dataset_free(ds);
    mf_test_dir_remove(dir);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
