/* finetune.c: Keras' two-phase transfer learning in one fit. Phase one trains
 * the head over a frozen base; at epoch `at` this callback unfreezes the top
 * of the base, restarts the optimizer (Keras recompiles with a new optimizer
 * at a lower rate) and switches to the fine-tuning schedule. Everything
 * derived from trainability follows by itself: the memory plan at the next
 * forward, the gradient buckets at the next step (mf_fit_sync_trainable, which
 * also checks that every rank agrees).
 *
 * Checkpointed state: whether the switch happened and at which global step
 * (the schedule's clock), so a run resumed in phase two re-enters it with the
 * optimizer state the checkpoint restored, and one resumed at the boundary
 * switches exactly as the uninterrupted run did. */
#include <string.h>
#include "fit_internal.h"

typedef struct finetune {
    int at; /* 0-based epoch where phase two starts */
    char from[64]; /* first trainable layer of phase two */
    int train_bn;
    mf_schedule schedule;
    int switched;
    int resumed; /* a checkpoint written in phase two was loaded: re-enter it */
    long start_step; /* global step of the switch */
} finetune;

/* Trainability and schedule of phase two; fresh: also restart the optimizer. */
static mf_status enter(finetune *f, mf_fit_ctx *ctx, int fresh)
{
    MF_TRY(mf_model_set_trainable_from(ctx->model, f->from, f->train_bn));
    if (fresh) {
        f->start_step = ctx->global_step;
        float *bufs[4];
        int n = ctx->opt ? mf_optimizer_state(ctx->opt, bufs, NULL) : 0;
        for (int i = 0; i < n; i++)
            memset(bufs[i], 0, mf_model_num_params(ctx->model) * sizeof(float));
        if (ctx->opt)
            mf_optimizer_set_iterations(ctx->opt, 0);
    }
    mf_schedule s = f->schedule;
    s.start_step = f->start_step;
    /* re-entered after a resume: a reduction or override made in phase two
     * (ReduceLROnPlateau, LearningRateScheduler) came back with the checkpoint */
    double scale = ctx->lr_scale;
    float override = ctx->lr_override;
    mf_fit_set_schedule(ctx, &s);
    if (!fresh) {
        ctx->lr_scale = scale;
        ctx->lr_override = override;
    }
    f->switched = 1;
    if (ctx->rank == 0)
        mf_log_info("Epoch %d: fine-tuning from layer %s%s: %zu trainable parameters, learning rate %g%s",
                    ctx->epoch + 1, f->from, f->train_bn ? " (BatchNorm included)" : "",
                    mf_model_count_trainable(ctx->model), (double)mf_fit_learning_rate(ctx), fresh ? "" : " (resumed)");
    return MF_STATUS_OK;
}

static void ft_destroy(mf_callback *cb)
{
    mf_free(cb->user);
    mf_free(cb);
}

static mf_status ft_train_begin(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)ctx;
    (void)logs;
    finetune *f = cb->user;
    f->switched = f->resumed = 0;
    f->start_step = 0;
    return MF_STATUS_OK;
}

static mf_status ft_epoch_begin(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    (void)logs;
    finetune *f = cb->user;
    if (f->resumed && !f->switched)
        return enter(f, ctx, 0);
    if (epoch >= f->at && !f->switched)
        return enter(f, ctx, 1);
    return MF_STATUS_OK;
}

static int ft_get_state(mf_callback *cb, double *v, int cap)
{
    finetune *f = cb->user;
    if (cap < 2)
        return 0;
    v[0] = f->switched;
    v[1] = (double)f->start_step;
    return 2;
}

/* Right after on_train_begin of a resumed run. If the checkpoint was written
 * in phase two, the next epoch begin (the resumed one, even mid-epoch)
 * re-enters it, keeping the optimizer state the checkpoint restored. */
static void ft_set_state(mf_callback *cb, const double *v, int n)
{
    finetune *f = cb->user;
    if (n < 2 || v[0] == 0.0 || !(v[1] >= 0.0 && v[1] < 9.0e15))
        return;
    f->start_step = (long)v[1];
    f->resumed = 1;
}

mf_callback *mf_finetune(int at_epoch, const char *trainable_from, int train_bn, const mf_schedule *schedule)
{
    mf_callback *cb = mf_alloc(sizeof *cb);
    finetune *f = mf_alloc(sizeof *f);
    cb->name = "FineTune";
    cb->user = f;
    f->at = at_epoch > 0 ? at_epoch : 0;
    mf_strlcpy(f->from, trainable_from ? trainable_from : "", sizeof f->from);
    f->train_bn = train_bn != 0;
    f->schedule = *schedule;
    cb->on_train_begin = ft_train_begin;
    cb->on_epoch_begin = ft_epoch_begin;
    cb->get_state = ft_get_state;
    cb->set_state = ft_set_state;
    cb->destroy = ft_destroy;
    return cb;
}
