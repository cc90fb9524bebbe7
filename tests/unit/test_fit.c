/* test_fit.c: fit / evaluate / predict end to end on a small learnable problem,
 * Keras' display rule for custom steps, the built-in callbacks, and the
 * progress output on a terminal and off it. */
#define _XOPEN_SOURCE 700 /* posix_openpt: a pseudo-terminal for the progress bar */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "mpifit.h"
#include "core/core.h"
#include "data/jpeg.h"
#include "test.h"

static char dir[64];

/* 3 classes by dominant colour (red, green, blue) with noise and a random
 * darker square: learnable, not constant. */
static void make_data(const char *split, int per_class, uint64_t seed)
{
    const char *cls[3] = {"blue", "green", "red"}; /* sorted: labels 0, 1, 2 */
    mf_rng r;
    mf_rng_seed(&r, seed);
    for (int c = 0; c < 3; c++) {
        char p[256];
        snprintf(p, sizeof p, "mkdir -p %s/%s/%s", dir, split, cls[c]);
        MF_CHECK(system(p) == 0);
        for (int k = 0; k < per_class; k++) {
            uint8_t rgb[16 * 16 * 3];
            int ch = c == 0 ? 2 : c == 1 ? 1 : 0; /* blue, green, red */
            int sx = (int)mf_rng_below(&r, 10), sy = (int)mf_rng_below(&r, 10);
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                    for (int q = 0; q < 3; q++) {
                        float v = (q == ch ? 170.0f : 70.0f) + 30.0f * mf_rng_normal(&r);
                        if (x >= sx && x < sx + 6 && y >= sy && y < sy + 6)
                            v *= 0.6f;
                        rgb[(y * 16 + x) * 3 + q] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
            uint8_t *jpg;
            size_t len;
            MF_CHECK(mf_jpeg_encode(rgb, 16, 16, 95, &jpg, &len) == MF_STATUS_OK);
            snprintf(p, sizeof p, "%s/%s/%s/%03d.jpg", dir, split, cls[c], k);
            FILE *f = fopen(p, "wb");
            fwrite(jpg, 1, len, f);
            fclose(f);
            mf_free(jpg);
        }
    }
}

static mf_loader *loader(mf_dataset **ds, const char *split, int training)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, split);
    mf_dataset_options d = mf_dataset_options_default();
    MF_CHECK(mf_dataset_open(ds, p, &d) == MF_STATUS_OK);
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = 8;
    o.input_size = 16;
    o.training = training;
    o.augment = 0;
    o.threads = 2;
    o.seed = 5;
    mf_loader *l;
    MF_CHECK(mf_loader_create(&l, *ds, &o) == MF_STATUS_OK);
    return l;
}

static mf_fit_ctx *compiled(mf_model **m, float lr)
{
    MF_CHECK(mf_small_cnn(m, 16, 3, 8, 0.0f, 3) == MF_STATUS_OK);
    mf_fit_ctx *ctx = mf_fit_ctx_create(*m, 3, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_ADAM);
    mf_schedule s = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = lr};
    MF_CHECK(mf_compile(ctx, mf_optimizer_create(*m, &oo), &s, NULL, "accuracy,top_k=2") == MF_STATUS_OK);
    return ctx;
}

/* the learnable problem: >= 0.9 validation accuracy in 8 epochs */
static void test_learns(mf_loader *tl, mf_loader *vl)
{
    mf_model *m;
    mf_fit_ctx *ctx = compiled(&m, 0.01f);
    mf_fit_options o = mf_fit_options_default();
    o.epochs = 8;
    o.verbose = 0;
    MF_CHECK(mf_fit(ctx, tl, vl, &o) == MF_STATUS_OK);
    MF_CHECK(mf_fit_history_len(ctx) == 8);
    double acc = 0, first_loss = 0, last_loss = 0, top2 = 0;
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 7), "val_accuracy", &acc));
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 0), "loss", &first_loss));
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 7), "loss", &last_loss));
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 7), "top_2_accuracy", &top2));
    printf("learnable problem: loss %.3f -> %.3f, val_accuracy %.3f\n", first_loss, last_loss, acc);
    MF_CHECK_MSG(acc >= 0.9, "val_accuracy %.3f after 8 epochs, want >= 0.9", acc);
    MF_CHECK(last_loss < first_loss);
    MF_CHECK(top2 >= acc);
    /* evaluate gives the same numbers as fit's last validation */
    mf_logs ev;
    MF_CHECK(mf_evaluate(ctx, vl, 0, &ev) == MF_STATUS_OK);
    double ev_acc = -1;
    MF_CHECK(mf_logs_get(&ev, "accuracy", &ev_acc));
    MF_CHECK_NEAR(ev_acc, acc, 1e-12);
    /* predict: probabilities that sum to 1 and agree with the accuracy */
    const mf_batch *b;
    MF_CHECK(mf_loader_begin_epoch(vl, 0) == MF_STATUS_OK);
    MF_CHECK(mf_loader_next(vl, &b) == MF_STATUS_OK);
    float p[8 * 3];
    mf_predict(ctx, b->x, 8, 3, p);
    for (int i = 0; i < 8; i++)
        MF_CHECK_NEAR(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2], 1.0, 1e-5);
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
}

/* Keras' rule: values returned by the step are shown as returned */
typedef struct raw_step {
    mf_optimizer *opt;
    mf_metric mean;
    double last;
} raw_step;
static mf_status my_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    raw_step *r = user;
    mf_tensor z = mf_fit_forward(ctx, b, MF_MODE_TRAIN);
    float probs[24], d[24];
    double loss = mf_softmax_xent_forward(probs, z.data, b->y, b->w, b->n, 3);
    mf_softmax_xent_backward(d, probs, b->y, b->w, b->n, 3, 1.0f);
    mf_fit_zero_grad(ctx);
    mf_fit_backward(ctx, d);
    mf_optimizer_apply(r->opt, mf_fit_model(ctx), 0.01f);
    mf_metric_update(&r->mean, loss, 1.0);
    r->last = loss;
    mf_logs_set(logs, "mean_loss", mf_metric_result(&r->mean));
    mf_logs_set(logs, "raw_loss", loss);
    return MF_STATUS_OK;
}

static void test_display_rule(mf_loader *tl)
{
    mf_model *m;
    MF_CHECK(mf_small_cnn(&m, 16, 3, 8, 0.0f, 3) == MF_STATUS_OK);
    mf_fit_ctx *ctx = mf_fit_ctx_create(m, 3, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
    raw_step r = {mf_optimizer_create(m, &oo), mf_metric_mean("mean_loss"), 0};
    mf_fit_track_metric(ctx, &r.mean);
    mf_fit_options o = mf_fit_options_default();
    o.epochs = 2;
    o.verbose = 0;
    o.train_step = my_step;
    o.step_user = &r;
    MF_CHECK(mf_fit(ctx, tl, NULL, &o) == MF_STATUS_OK);
    double raw = 0, mean = 0;
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 1), "raw_loss", &raw));
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 1), "mean_loss", &mean));
    MF_CHECK_MSG(raw == r.last, "a raw value must be shown exactly as returned");
    /* the tracked mean was reset at the epoch begin: it covers epoch 2 only (12 steps) */
    MF_CHECK(r.mean.count == 12.0);
    MF_CHECK(mean == r.mean.total / 12.0 && mean != raw);
    /* fit without compile and without a step of one's own is an error that says so */
    o.train_step = NULL;
    MF_CHECK(mf_fit(ctx, tl, NULL, &o) == MF_STATUS_INVALID);
    MF_CHECK(strstr(mf_last_error(), "mf_compile") != NULL);
    mf_optimizer_free(r.opt);
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
}

static float halve(int epoch, float lr, void *user)
{
    (void)user;
    return epoch == 0 ? lr : lr * 0.5f;
}

static mf_status save_hook(mf_fit_ctx *ctx, const char *path, void *user)
{
    (void)ctx;
    int *n = user;
    (*n)++;
    FILE *f = fopen(path, "w");
    if (!f)
        return mf_fail(MF_STATUS_IO, "cannot write %s", path);
    fclose(f);
    return MF_STATUS_OK;
}

/* A train step that changes nothing and reports loss NaN from its 3rd call. */
static mf_status nan_from_third(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)ctx;
    (void)b;
    int *calls = user;
    mf_logs_set(logs, "loss", ++*calls >= 3 ? NAN : 1.0);
    return MF_STATUS_OK;
}

static void test_callbacks(mf_loader *tl, mf_loader *vl)
{
    mf_model *m;
    mf_fit_ctx *ctx = compiled(&m, 0.01f);
    char csv[128], ck[128], ck2[128];
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    snprintf(ck, sizeof ck, "%s/ckpt-{epoch}.bin", dir);
    int saves = 0;
    /* EarlyStopping on a monitor that cannot improve by 10: stops after patience + 1 epochs */
    mf_callback *cbs[4] = {mf_early_stopping("val_loss", 10.0f, 2, "auto", 1), mf_lr_scheduler(halve, NULL),
                           mf_csv_logger(csv, 0),
                           mf_model_checkpoint(ck, "val_accuracy", "auto", 0, save_hook, &saves)};
    mf_fit_options o = mf_fit_options_default();
    o.epochs = 10;
    o.verbose = 0;
    o.callbacks = cbs;
    o.n_callbacks = 4;
    MF_CHECK(mf_fit(ctx, tl, vl, &o) == MF_STATUS_OK);
    MF_CHECK_MSG(mf_fit_history_len(ctx) == 3, "EarlyStopping(patience 2) ran %d epochs", mf_fit_history_len(ctx));
    double lr = 0;
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 2), "lr", &lr));
    MF_CHECK_NEAR(lr, 0.01 * 0.25, 1e-9);
    MF_CHECK(saves == 3);
    snprintf(ck2, sizeof ck2, "%s/ckpt-0003.bin", dir);
    MF_CHECK(access(ck2, F_OK) == 0);
    FILE *f = fopen(csv, "r");
    char line[512];
    int rows = 0;
    MF_CHECK(f && fgets(line, sizeof line, f) &&
             strncmp(line, "epoch,loss,accuracy,top_2_accuracy,val_loss,", 44) == 0);
    MF_CHECK(strstr(line, ",lr\n") != NULL); /* LearningRateScheduler's log, before CSVLogger's row */
    while (f && fgets(line, sizeof line, f))
        rows++;
    if (f)
        fclose(f);
    MF_CHECK(rows == 3);
    /* restore_best_weights: the weights (and BN statistics) are those of the end of
     * epoch 1, the only "improvement" by 10, so evaluating gives epoch 1's val_loss */
    mf_logs ev;
    double best = 0, now = -1;
    MF_CHECK(mf_evaluate(ctx, vl, 0, &ev) == MF_STATUS_OK && mf_logs_get(&ev, "loss", &now));
    MF_CHECK(mf_logs_get(mf_fit_history(ctx, 0), "val_loss", &best));
    MF_CHECK_MSG(now == best, "restored weights give val_loss %.9g, epoch 1 had %.9g", now, best);
    for (int i = 0; i < 4; i++)
        mf_callback_free(cbs[i]);

    /* TerminateOnNaN: an absurd learning rate makes the loss explode */
    mf_fit_set_learning_rate(ctx, 1e30f);
    mf_callback *nan = mf_terminate_on_nan();
    o.callbacks = &nan;
    o.n_callbacks = 1;
    o.epochs = 5;
    mf_status s = mf_fit(ctx, tl, NULL, &o);
    /* either the callback stops it, or the NaN gradient check does: never a silent NaN run */
    MF_CHECK(s == MF_STATUS_OK || s == MF_STATUS_NUMERIC);
    double loss = 0;
    int n = mf_fit_history_len(ctx);
    MF_CHECK(n <= 3 + 5);
    if (s == MF_STATUS_OK)
        MF_CHECK(mf_logs_get(mf_fit_history(ctx, n - 1), "loss", &loss) && !isfinite(loss));
    mf_callback_free(nan);

    /* ... and it is the callback that stops training: a step that reports a
     * NaN loss from its 3rd call on (weights untouched) runs 3 times with
     * TerminateOnNaN, and every step of every epoch without it */
    int calls = 0;
    mf_fit_options q = mf_fit_options_default();
    q.epochs = n + 2;
    q.initial_epoch = n;
    q.verbose = 0;
    q.train_step = nan_from_third;
    q.step_user = &calls;
    nan = mf_terminate_on_nan();
    q.callbacks = &nan;
    q.n_callbacks = 1;
    MF_CHECK(mf_fit(ctx, tl, NULL, &q) == MF_STATUS_OK);
    MF_CHECK_MSG(calls == 3, "TerminateOnNaN let %d steps run (the 3rd reported NaN)", calls);
    int steps = mf_loader_steps(tl);
    calls = 0;
    q.callbacks = NULL;
    q.n_callbacks = 0;
    q.initial_epoch = n + 2;
    q.epochs = n + 4;
    MF_CHECK(mf_fit(ctx, tl, NULL, &q) == MF_STATUS_OK);
    MF_CHECK_MSG(calls == 2 * steps, "without the callback %d steps ran, expected %d", calls, 2 * steps);
    mf_callback_free(nan);
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
}

/* progress: plain lines off a terminal, Keras' bar on one */
static void test_progress(mf_loader *tl)
{
    char path[128];
    snprintf(path, sizeof path, "%s/progress.txt", dir);
    FILE *f = fopen(path, "w+");
    mf_model *m;
    mf_fit_ctx *ctx = compiled(&m, 0.001f);
    mf_fit_options o = mf_fit_options_default();
    o.epochs = 1;
    o.verbose = 1;
    o.progress_every = 4;
    o.out = f;
    MF_CHECK(mf_fit(ctx, tl, NULL, &o) == MF_STATUS_OK);
    rewind(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    MF_CHECK_MSG(strchr(text, '\r') == NULL && strchr(text, '\033') == NULL, "control characters off a TTY");
    MF_CHECK(strstr(text, "Epoch 1/1\n") && strstr(text, "4/12 - ETA: ") && strstr(text, "8/12 - ETA: "));
    MF_CHECK(strstr(text, "12/12 - ") && strstr(text, "img/s - loss: ") && strstr(text, " - accuracy: "));
    /* a pseudo-terminal: the bar */
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    MF_CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    FILE *tty = fdopen(slave, "w");
    o.out = tty;
    MF_CHECK(mf_fit(ctx, tl, NULL, &o) == MF_STATUS_OK);
    fclose(tty);
    /* everything the slave side wrote; after its close, read() ends with EIO */
    n = 0;
    for (ssize_t got; n < sizeof text - 1 && (got = read(master, text + n, sizeof text - 1 - n)) > 0;)
        n += (size_t)got;
    text[n] = '\0';
    close(master);
    MF_CHECK_MSG(strstr(text, "12/12 [==============================] - ") != NULL, "no full bar in: %s", text);
    MF_CHECK(strchr(text, '\r') != NULL);
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
}

int main(void)
{
    mf_test_dir_make(dir, sizeof dir, "fit");
    make_data("train", 32, 1);
    make_data("val", 10, 2);
    mf_dataset *tds, *vds;
    mf_loader *tl = loader(&tds, "train", 1), *vl = loader(&vds, "val", 0);
    test_learns(tl, vl);
    test_display_rule(tl);
    test_callbacks(tl, vl);
    test_progress(tl);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(tds);
    mf_dataset_free(vds);
    mf_test_dir_remove(dir);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
