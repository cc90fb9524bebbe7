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
    ctx->lr_scale = 1.0;
    ctx->grad_sync_on = 1;
    ctx->accumulate = 1;
    ctx->dist = mf_dist_options_default();
    ctx->schedule.kind = MF_SCHEDULE_CONSTANT;
    ctx->schedule.base_lr = 0.001f;
    return ctx;
}

void mf_fit_ctx_free(mf_fit_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->gsync)
        mf_model_set_backward_hook(ctx->model, NULL, NULL);
    mf_grad_sync_free(ctx->gsync);
    mf_det_free(ctx->det);
    mf_free(ctx->rank_times);
    mf_optimizer_free(ctx->opt);
    mf_free(ctx->class_weight);
    mf_free(ctx->probs);
    mf_free(ctx->dlogits);
    mf_free(ctx->weights);
    mf_free(ctx->history);
    mf_fit_drop_cb_buffers(ctx);
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
        } else
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
    ctx->schedule_given = schedule != NULL;
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

mf_dist_options mf_dist_options_default(void)
{
    mf_dist_options o;
    memset(&o, 0, sizeof o);
    o.bucket_bytes = (size_t)4 << 20;
    o.overlap = 1;
    return o;
}

static void layer_done(void *user, int layer)
{
    mf_fit_ctx *ctx = user;
    if (layer < 0)
        mf_grad_sync_backward_begin(ctx->gsync, ctx->grad_sync_on);
    else if (ctx->grad_sync_on)
        mf_grad_sync_layer_done(ctx->gsync, layer);
}

/* The gradient synchroniser for ctx->dist. Compression's only failure is an
 * MPI_Op_create error (out of resources); the exchange then goes uncompressed,
 * and says so. */
static mf_grad_sync *make_grad_sync(mf_fit_ctx *ctx)
{
    mf_grad_sync *g = mf_grad_sync_create(ctx->comm, ctx->model, ctx->dist.bucket_bytes, ctx->dist.overlap);
    if (mf_grad_sync_set_compress(g, ctx->dist.compress) != MF_STATUS_OK)
        mf_log_warn("rank %d: gradients travel uncompressed: %s", ctx->rank, mf_last_error());
    return g;
}

/* The buckets hold exactly the trainable tensors: plan them again when the
 * trainable set changed (a fine-tuning phase, a callback, the C API). */
static void replan_buckets(mf_fit_ctx *ctx)
{
    uint64_t sig = mf_model_trainable_signature(ctx->model);
    if (!ctx->gsync || sig == ctx->planned_trainable)
        return;
    mf_grad_sync_free(ctx->gsync);
    ctx->gsync = make_grad_sync(ctx);
    ctx->planned_trainable = sig;
    if (ctx->rank == 0)
        mf_log_info("trainable layers changed at global step %ld: %zu trainable parameters in %d gradient bucket%s",
                    ctx->global_step, mf_model_count_trainable(ctx->model), mf_grad_sync_num_buckets(ctx->gsync),
                    mf_grad_sync_num_buckets(ctx->gsync) == 1 ? "" : "s");
}

mf_status mf_fit_sync_trainable(mf_fit_ctx *ctx)
{
    uint64_t sig = mf_model_trainable_signature(ctx->model);
    if (ctx->comm && mf_comm_size(ctx->comm) > 1) {
        int64_t lo[2] = {(int64_t)(sig >> 32), (int64_t)(sig & 0xffffffffu)}, hi[2] = {lo[0], lo[1]};
        MF_TRY(mf_comm_allreduce_min_max(ctx->comm, lo, hi, 2));
        if (lo[0] != hi[0] || lo[1] != hi[1]) {
            /* rare and fatal: spend an allgather on naming the ranks */
            int n = mf_comm_size(ctx->comm);
            uint64_t *all = mf_alloc((size_t)n * sizeof *all);
            mf_status s = mf_comm_allgather_bytes(ctx->comm, &sig, sizeof sig, all);
            char ranks[256] = "";
            for (int r = 1; s == MF_STATUS_OK && r < n && strlen(ranks) + 16 < sizeof ranks; r++)
                if (all[r] != all[0])
                    snprintf(ranks + strlen(ranks), sizeof ranks - strlen(ranks), "%s%d", ranks[0] ? ", " : "", r);
            mf_free(all);
            return mf_fail(MF_STATUS_INVALID,
                           "global step %ld: rank %s train%s other layers than rank 0 (trainable flags differ); "
                           "change trainability on every rank at the same point",
                           ctx->global_step, ranks[0] ? ranks : "?", strchr(ranks, ',') ? "" : "s");
        }
    }
    replan_buckets(ctx);
    return MF_STATUS_OK;
}

mf_status mf_fit_distribute(mf_fit_ctx *ctx, mf_comm *comm, const mf_dist_options *o)
{
    if (mf_comm_rank(comm) != ctx->rank)
        return mf_fail(MF_STATUS_INVALID, "fit: the context was created for rank %d but this is rank %d", ctx->rank,
                       mf_comm_rank(comm));
    ctx->comm = comm;
    ctx->dist = o ? *o : mf_dist_options_default();
    if (ctx->dist.compress != MF_COMPRESS_NONE && ctx->dist.compress != MF_COMPRESS_FP16 &&
        ctx->dist.compress != MF_COMPRESS_BF16)
        return mf_fail(MF_STATUS_INVALID, "fit: unknown gradient compression %d", (int)ctx->dist.compress);
    mf_grad_sync_free(ctx->gsync);
    ctx->gsync = make_grad_sync(ctx);
    ctx->planned_trainable = mf_model_trainable_signature(ctx->model);
    mf_model_set_backward_hook(ctx->model, layer_done, ctx);
    mf_model_set_sync_batchnorm(ctx->model, ctx->dist.sync_batchnorm ? comm : NULL);
    return mf_fit_broadcast_state(ctx);
}

mf_comm *mf_fit_comm(mf_fit_ctx *ctx) { return ctx->comm; }

mf_status mf_fit_broadcast_state(mf_fit_ctx *ctx)
{
    if (!ctx->comm || mf_comm_size(ctx->comm) == 1)
        return MF_STATUS_OK;
    mf_model *m = ctx->model;
    MF_TRY(mf_comm_bcast_floats(ctx->comm, mf_model_params(m), mf_model_num_params(m), 0));
    MF_TRY(mf_comm_bcast_floats(ctx->comm, mf_model_state(m), mf_model_num_state(m), 0));
    if (ctx->opt) {
        float *bufs[2];
        int n = mf_optimizer_state(ctx->opt, bufs, NULL);
        for (int i = 0; i < n; i++)
            MF_TRY(mf_comm_bcast_floats(ctx->comm, bufs[i], mf_model_num_params(m), 0));
        long it = mf_optimizer_iterations(ctx->opt);
        MF_TRY(mf_comm_bcast_bytes(ctx->comm, &it, sizeof it, 0));
        mf_optimizer_set_iterations(ctx->opt, it);
    }
    MF_TRY(mf_comm_bcast_bytes(ctx->comm, &ctx->global_step, sizeof ctx->global_step, 0));
    return MF_STATUS_OK;
}

mf_status mf_fit_set_deterministic(mf_fit_ctx *ctx, int chunk)
{
    if (chunk < 0)
        return mf_fail(MF_STATUS_INVALID, "deterministic mode: chunk must be >= 1 (0: off), got %d", chunk);
    if (chunk > 0 && ctx->accumulate > 1)
        return mf_fail(MF_STATUS_INVALID,
                       "deterministic mode with gradient accumulation (%d micro-batches): the chunks are the "
                       "accumulation; use one or the other",
                       ctx->accumulate);
    if (chunk > 0 && ctx->comm && ctx->dist.sync_batchnorm)
        return mf_fail(MF_STATUS_INVALID,
                       "deterministic mode with synchronized BatchNorm: the mode normalises each chunk by its own "
                       "statistics (ghost BatchNorm); turn sync_batchnorm off");
    if (chunk > 0 && ctx->comm && ctx->dist.compress != MF_COMPRESS_NONE)
        return mf_fail(MF_STATUS_INVALID,
                       "deterministic mode with gradient compression: the mode sums exact 64-bit fixed-point "
                       "gradients; set compress = none");
    mf_det_free(ctx->det);
    ctx->det = chunk > 0 ? mf_det_create(chunk) : NULL;
    return MF_STATUS_OK;
}

int mf_fit_deterministic(const mf_fit_ctx *ctx) { return mf_det_chunk(ctx->det); }

mf_status mf_fit_set_accumulation(mf_fit_ctx *ctx, int k)
{
    if (k < 1)
        return mf_fail(MF_STATUS_INVALID, "gradient accumulation: k must be >= 1, got %d", k);
    if (k > 1 && ctx->det)
        return mf_fail(MF_STATUS_INVALID,
                       "gradient accumulation in deterministic mode: the chunks are the accumulation; use one or the "
                       "other");
    ctx->accumulate = k;
    return MF_STATUS_OK;
}

void mf_fit_set_grad_sync(mf_fit_ctx *ctx, int on) { ctx->grad_sync_on = on != 0; }

void mf_fit_hook_backward(mf_fit_ctx *ctx, int on)
{
    if (ctx->gsync)
        mf_model_set_backward_hook(ctx->model, on ? layer_done : NULL, on ? ctx : NULL);
}

double mf_fit_allreduce_wait_seconds(const mf_fit_ctx *ctx)
{
    return ctx->gsync ? mf_grad_sync_wait_seconds(ctx->gsync) : 0.0;
}

void mf_fit_zero_grad(mf_fit_ctx *ctx)
{
    mf_model_zero_grad(ctx->model);
    if (ctx->gsync) {
        replan_buckets(ctx); /* a loop of one's own that changed trainability */
        mf_grad_sync_begin(ctx->gsync);
    }
}

void mf_fit_backward(mf_fit_ctx *ctx, const float *dlogits) { mf_model_backward(ctx->model, dlogits, NULL); }

float mf_fit_learning_rate(const mf_fit_ctx *ctx)
{
    if (!isnan(ctx->lr_override))
        return ctx->lr_override;
    float lr = mf_schedule_lr(&ctx->schedule, ctx->global_step);
    /* scale 1 (no plateau reduction) leaves the schedule's rate untouched, bit for bit */
    return ctx->lr_scale == 1.0 ? lr : (float)((double)lr * ctx->lr_scale);
}

void mf_fit_set_learning_rate(mf_fit_ctx *ctx, float lr) { ctx->lr_override = lr; }

void mf_fit_set_schedule(mf_fit_ctx *ctx, const mf_schedule *s)
{
    ctx->schedule = *s;
    ctx->schedule_given = 1;
    ctx->lr_override = NAN;
    ctx->lr_scale = 1.0; /* a new schedule (a fine-tuning phase) starts at its own rates */
}
long mf_fit_global_step(const mf_fit_ctx *ctx) { return ctx->global_step; }
int mf_fit_epoch(const mf_fit_ctx *ctx) { return ctx->epoch; }
void mf_fit_stop_training(mf_fit_ctx *ctx) { ctx->stop = 1; }

mf_status mf_apply_gradients(mf_fit_ctx *ctx)
{
    if (!ctx->opt)
        return mf_fail(MF_STATUS_INVALID,
                       "apply_gradients: no optimizer (call mf_compile, or update the weights "
                       "in your own step)");
    /* the global average first: every rank then takes the same decisions */
    if (ctx->gsync) {
        if (mf_model_trainable_signature(ctx->model) != ctx->planned_trainable)
            return mf_fail(MF_STATUS_INVALID,
                           "rank %d, step %ld: the trainable layers changed between zero_grad and apply_gradients; "
                           "change them between steps (a callback's on_train_batch_begin or on_epoch_begin)",
                           ctx->rank, ctx->global_step);
        MF_TRY(mf_grad_sync_finish(ctx->gsync));
    }
    return mf_fit_apply_update(ctx);
}

mf_status mf_fit_apply_update(mf_fit_ctx *ctx)
{
    size_t n = mf_model_num_params(ctx->model);
    const float *g = mf_model_grads(ctx->model);
    /* one pass; a NaN or Inf anywhere makes the sum non-finite */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += g[i] * 0.0f;
    if (acc != 0.0f)
        return mf_fail(MF_STATUS_NUMERIC, "step %ld: a gradient is NaN or infinite (learning rate %g too high?)",
                       ctx->global_step, (double)mf_fit_learning_rate(ctx));
    double t0 = mf_now();
    mf_optimizer_apply(ctx->opt, ctx->model, mf_fit_learning_rate(ctx));
    ctx->last_opt_s = mf_now() - t0;
    ctx->global_step++;
    if (ctx->comm && ctx->dist.check_identical) {
        int same = 0;
        MF_TRY(mf_comm_identical(ctx->comm, mf_model_params(ctx->model),
                                 mf_model_num_params(ctx->model) * sizeof(float), &same));
        if (!same)
            return mf_fail(MF_STATUS_MPI, "step %ld: the ranks' parameters differ after the update", ctx->global_step);
    }
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

mf_batch mf_batch_part(const mf_batch *b, int j, int rows, size_t xs)
{
    mf_batch mb = *b;
    mb.x = b->x + (size_t)j * rows * xs;
    mb.y = b->y + (size_t)j * rows;
    mb.w = b->w ? b->w + (size_t)j * rows : NULL;
    mb.index = b->index ? b->index + (size_t)j * rows : NULL;
    mb.n = rows;
    mb.n_valid = 0;
    for (int i = 0; i < rows; i++)
        mb.n_valid += mb.w ? mb.w[i] > 0.0f : 1;
    return mb;
}

/* Keras' Model.train_step: forward, loss, backward, apply gradients, update
 * the compiled metrics, return their results. */
mf_status mf_train_step_default(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    if (!ctx->compiled)
        return mf_fail(MF_STATUS_INVALID, "fit: the default train step needs mf_compile (or pass your own train_step)");
    if (ctx->det)
        return mf_det_train_step(ctx, b, logs);
    int k = ctx->accumulate;
    if (k == 1) {
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
    /* k micro-batches: gradients accumulate, the loss of each is scaled by 1/k
     * so the sum is the batch's mean, and only the last backward starts the
     * allreduce (DDP's no_sync) */
    if (b->n % k != 0)
        return mf_fail(MF_STATUS_INVALID, "gradient accumulation: batch of %d rows is not a multiple of %d", b->n, k);
    int rows = b->n / k;
    mf_shape in = mf_model_input_shape(ctx->model);
    size_t xs = mf_shape_sample_numel(&in);
    mf_fit_zero_grad(ctx);
    for (int j = 0; j < k; j++) {
        mf_batch mb = mf_batch_part(b, j, rows, xs);
        mf_tensor logits = mf_fit_forward(ctx, &mb, MF_MODE_TRAIN);
        const float *dlogits;
        double loss = mf_fit_compiled_loss(ctx, &mb, &logits, &dlogits);
        int C = logits.shape.d[1];
        for (int i = 0; i < rows * C; i++)
            ctx->dlogits[i] /= (float)k;
        mf_fit_set_grad_sync(ctx, j == k - 1);
        mf_fit_backward(ctx, dlogits);
        mf_fit_update_metrics(ctx, &mb, &logits, loss);
    }
    mf_fit_set_grad_sync(ctx, 1);
    MF_TRY(mf_apply_gradients(ctx));
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}

/* Keras' Model.test_step: forward in inference mode, loss, metrics. */
mf_status mf_test_step_default(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    if (!ctx->compiled)
        return mf_fail(MF_STATUS_INVALID,
                       "evaluate: the default test step needs mf_compile (or pass your own test_step)");
    if (ctx->det) /* in chunks: the same logits and sums whatever rows share a batch or a rank */
        return mf_det_test_step(ctx, b, logs);
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_INFER);
    int was = ctx->in_test;
    ctx->in_test = 1; /* the plain loss: class weights weight training only, as Keras' */
    double loss = mf_fit_compiled_loss(ctx, b, &logits, NULL);
    ctx->in_test = was;
    mf_fit_update_metrics(ctx, b, &logits, loss);
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}
