/* 3_custom_train_step.c: override train_step / test_step (TensorFlow 2.2's
 * Model.train_step). The step says what one batch does, here with the compiled
 * loss, optimizer and metrics plus a metric of its own and the batch's extra
 * per-sample data; fit still does the rest: progress bar, metric resets,
 * callbacks, validation.
 *
 *   usage: 3_custom_train_step DATA_DIR OUT_WEIGHTS.bin */
#include <math.h>
#include "common.h"

/* What the step needs besides the batch: a per-sample table the dataset
 * carries (looked up by b->index), and a metric the step owns. */
typedef struct my_step {
    const float *confidence; /* per dataset sample, here all 1 (a clean dataset) */
    mf_metric logit_norm; /* mean L2 norm of the logits, tracked by fit */
} my_step;

static mf_status train_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    my_step *me = user;
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_TRAIN);
    const float *dlogits;
    double loss = mf_fit_compiled_loss(ctx, b, &logits, &dlogits);
    mf_fit_zero_grad(ctx);
    mf_fit_backward(ctx, dlogits);
    mf_status s = mf_apply_gradients(ctx);
    if (s != MF_STATUS_OK)
        return s;
    mf_fit_update_metrics(ctx, b, &logits, loss);
    for (int i = 0; i < b->n; i++) {
        if (b->index[i] < 0)
            continue;
        double n2 = 0.0;
        for (int c = 0; c < logits.shape.d[1]; c++)
            n2 += (double)logits.data[i * logits.shape.d[1] + c] * logits.data[i * logits.shape.d[1] + c];
        mf_metric_update(&me->logit_norm, sqrt(n2), me->confidence[b->index[i]]);
    }
    mf_fit_metrics_logs(ctx, logs); /* loss, accuracy, logit_norm: epoch running means */
    return MF_STATUS_OK;
}

static mf_status test_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_INFER);
    mf_fit_update_metrics(ctx, b, &logits, mf_fit_compiled_loss(ctx, b, &logits, NULL));
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: %s DATA_DIR OUT_WEIGHTS.bin\n", argv[0]), 2;
    mf_dataset *train, *val;
    mf_loader *tl, *vl;
    ex_data(argv[1], &train, &val, &tl, &vl);
    mf_model *model = ex_model();

    mf_fit_ctx *ctx = mf_fit_ctx_create(model, EX_SEED, 0);
    mf_schedule lr = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = EX_LR};
    EX_TRY(mf_compile(ctx, ex_adam(model), &lr, NULL, "accuracy"));
    my_step me = {.logit_norm = mf_metric_mean("logit_norm")};
    float *ones = malloc((size_t)mf_dataset_size(train) * sizeof *ones);
    for (int i = 0; i < mf_dataset_size(train); i++)
        ones[i] = 1.0f;
    me.confidence = ones;
    mf_fit_track_metric(ctx, &me.logit_norm);

    mf_fit_options fit = mf_fit_options_default();
    fit.epochs = EX_EPOCHS;
    fit.verbose = 2;
    fit.train_step = train_step;
    fit.test_step = test_step;
    fit.step_user = &me;
    EX_TRY(mf_fit(ctx, tl, vl, &fit));

    ex_save(model, argv[2]);
    free(ones);
    mf_fit_ctx_free(ctx);
    mf_model_free(model);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(train);
    mf_dataset_free(val);
    return 0;
}
