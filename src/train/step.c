/* step.c: the training context, Keras' compile, the building blocks of a step
 * and the default train and test steps. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "fit_internal.h"

mf_fit_ctx *mf_fit_ctx_create(mf_model *m, uint64_t seed, int rank)
{
    mf_fit_ctx *ctx = mf_alloc(sizeof *ctx);
    ctx->model = m;
    ctx->seed = seed;
    ctx->rank = rank;
    mf_rng_seed2(&ctx->rng, seed, (uint64_t)rank);
    ctx->lr_override = NAN;
    ctx->schedule.kind = MF_SCHEDULE_CONSTANT;
    ctx->schedule.base_lr = 0.001f;
    return ctx;
}

void mf_fit_ctx_free(mf_fit_ctx *ctx)
{
    if (!ctx)
        return;
    mf_optimizer_free(ctx->opt);
    mf_free(ctx->class_weight);
    mf_free(ctx->probs);
    mf_free(ctx->dlogits);
    mf_free(ctx->weights);
    mf_free(ctx->history);
    mf_free(ctx);
}

mf_status mf_compile(mf_fit_ctx *ctx, mf_optimizer *opt, const mf_schedule *schedule, const mf_loss *loss,
                     const char *metrics)
{
    if (!opt)
        return mf_fail(MF_STATUS_INVALID, "compile: an optimizer is required");
    ctx->n_compiled = 0;
    ctx->compiled_metrics[ctx->n_compiled++] = mf_metric_mean("loss");
    /* "accuracy, top_k=3": Keras' metric names */
    const char *p = metrics ? metrics : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char tok[64];
        size_t n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n >= sizeof tok)
            return mf_fail(MF_STATUS_INVALID, "compile: metric name too long: %.*s", (int)n, p);
        memcpy(tok, p, n);
        tok[n] = '\0';
        p += strcspn(p, ",");
        if (ctx->n_compiled >= (int)(sizeof ctx->compiled_metrics / sizeof ctx->compiled_metrics[0]))
            return mf_fail(MF_STATUS_INVALID, "compile: too many metrics");
        int k = 5;
        if (strcmp(tok, "accuracy") == 0 || strcmp(tok, "sparse_categorical_accuracy") == 0)
            ctx->compiled_metrics[ctx->n_compiled++] = mf_metric_accuracy("accuracy");
        else if (strcmp(tok, "top_k") == 0 || strcmp(tok, "sparse_top_k_categorical_accuracy") == 0 ||
                 (sscanf(tok, "top_k=%d", &k) == 1 && k > 0)) {
            char name[40];
            snprintf(name, sizeof name, "top_%d_accuracy", k);
            ctx->compiled_metrics[ctx->n_compiled++] =
                mf_metric_top_k(k == 5 ? "sparse_top_k_categorical_accuracy" : name, k);
        }
        else
            return mf_fail(MF_STATUS_INVALID, "compile: unknown metric '%s'; valid: accuracy, top_k, top_k=K", tok);
    }
    mf_free(ctx->class_weight);
    ctx->class_weight = NULL;
    ctx->n_class_weight = 0;
    if (loss && loss->class_weight) {
        ctx->class_weight = mf_alloc((size_t)loss->n_classes * sizeof(float));
        memcpy(ctx->class_weight, loss->class_weight, (size_t)loss->n_classes * sizeof(float));
        ctx->n_class_weight = loss->n_classes;
    }
    if (ctx->opt && ctx->opt != opt)
        mf_optimizer_free(ctx->opt);
    ctx->opt = opt;
    if (schedule)
        ctx->schedule = *schedule;
    /* the compiled metrics come first among the tracked ones; user metrics
     * tracked before compile stay after them */
    mf_metric *user[MF_MAX_TRACKED];
    int n_user = 0;
    for (int i = 0; i < ctx->n_tracked; i++)
        if (ctx->tracked[i] < ctx->compiled_metrics ||
            ctx->tracked[i] >= ctx->compiled_metrics + sizeof ctx->compiled_metrics / sizeof ctx->compiled_metrics[0])
            user[n_user++] = ctx->tracked[i];
    ctx->n_tracked = 0;
    for (int i = 0; i < ctx->n_compiled; i++)
        ctx->tracked[ctx->n_tracked++] = &ctx->compiled_metrics[i];
    for (int i = 0; i < n_user; i++)
        ctx->tracked[ctx->n_tracked++] = user[i];
    ctx->compiled = 1;
    return MF_STATUS_OK;
}

mf_model *mf_fit_model(mf_fit_ctx *ctx) { return ctx->model; }
mf_optimizer *mf_fit_optimizer(mf_fit_ctx *ctx) { return ctx->opt; }

mf_tensor mf_fit_forward(mf_fit_ctx *ctx, const mf_batch *b, mf_mode mode)
{
    return mf_model_forward(ctx->model, b->x, b->n, mode, mode == MF_MODE_TRAIN ? &ctx->rng : NULL);
}

void mf_fit_zero_grad(mf_fit_ctx *ctx) { mf_model_zero_grad(ctx->model); }
void mf_fit_backward(mf_fit_ctx *ctx, const float *dlogits) { mf_model_backward(ctx->model, dlogits, NULL); }

float mf_fit_learning_rate(const mf_fit_ctx *ctx)
{
    if (!isnan(ctx->lr_override))
        return ctx->lr_override;
    return mf_schedule_lr(&ctx->schedule, ctx->global_step);
}

void mf_fit_set_learning_rate(mf_fit_ctx *ctx, float lr) { ctx->lr_override = lr; }
long mf_fit_global_step(const mf_fit_ctx *ctx) { return ctx->global_step; }
int  mf_fit_epoch(const mf_fit_ctx *ctx) { return ctx->epoch; }
void mf_fit_stop_training(mf_fit_ctx *ctx) { ctx->stop = 1; }

mf_status mf_apply_gradients(mf_fit_ctx *ctx)
{
    if (!ctx->opt)
        return mf_fail(MF_STATUS_INVALID, "apply_gradients: no optimizer (call mf_compile, or update the weights "
                       "in your own step)");
    size_t n = mf_model_num_params(ctx->model);
    const float *g = mf_model_grads(ctx->model);
    /* one pass; a NaN or Inf anywhere makes the sum non-finite */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += g[i] * 0.0f;
    if (acc != 0.0f)
        return mf_fail(MF_STATUS_NUMERIC, "step %ld: a gradient is NaN or infinite (learning rate %g too high?)",
                       ctx->global_step, (double)mf_fit_learning_rate(ctx));
    mf_optimizer_apply(ctx->opt, ctx->model, mf_fit_learning_rate(ctx));
    ctx->global_step++;
    return MF_STATUS_OK;
}

void mf_fit_track_metric(mf_fit_ctx *ctx, mf_metric *m)
{
    MF_ASSERT(ctx->n_tracked < MF_MAX_TRACKED);
    ctx->tracked[ctx->n_tracked++] = m;
}

void mf_fit_reset_metrics(mf_fit_ctx *ctx)
{
    for (int i = 0; i < ctx->n_tracked; i++)
        mf_metric_reset(ctx->tracked[i]);
}

void mf_fit_metrics_logs(mf_fit_ctx *ctx, mf_logs *logs)
{
    /* a metric nothing updated this epoch (e.g. one only the train step feeds,
     * during validation) has no value; it is left out rather than shown as 0 */
    for (int i = 0; i < ctx->n_tracked; i++)
        if (ctx->tracked[i]->count > 0.0)
            mf_logs_set(logs, ctx->tracked[i]->name, mf_metric_result(ctx->tracked[i]));
}

/* Keras' Model.train_step: forward, loss, backward, apply gradients, update
 * the compiled metrics, return their results. */
mf_status mf_train_step_default(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    if (!ctx->compiled)
        return mf_fail(MF_STATUS_INVALID, "fit: the default train step needs mf_compile (or pass your own train_step)");
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_TRAIN);
    const float *dlogits;
    double loss = mf_fit_compiled_loss(ctx, b, &logits, &dlogits);
    mf_fit_zero_grad(ctx);
    mf_fit_backward(ctx, dlogits);
    MF_TRY(mf_apply_gradients(ctx));
    mf_fit_update_metrics(ctx, b, &logits, loss);
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}

/* Keras' Model.test_step: forward in inference mode, loss, metrics. */
mf_status mf_test_step_default(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    if (!ctx->compiled)
        return mf_fail(MF_STATUS_INVALID, "evaluate: the default test step needs mf_compile (or pass your own test_step)");
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_INFER);
    double loss = mf_fit_compiled_loss(ctx, b, &logits, NULL);
    mf_fit_update_metrics(ctx, b, &logits, loss);
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}
