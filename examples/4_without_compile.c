/* 4_without_compile.c: fit with a step that owns its optimizer, loss and
 * metric trackers; nothing is compiled. The step returns name -> value pairs
 * and fit shows them. Keras' rule: what the step returns is shown exactly as
 * returned; metrics registered with fit (mf_fit_track_metric) are reset every
 * epoch, so returning their result shows an epoch running mean, while
 * "batch_loss" below is the last batch's raw value.
 *
 *   usage: 4_without_compile DATA_DIR OUT_WEIGHTS.bin */
#include "common.h"

typedef struct my_training {
    mf_optimizer *opt;
    mf_metric loss_tracker, accuracy;
    float probs[EX_BATCH * 3], dlogits[EX_BATCH * 3];
} my_training;

static mf_status train_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    my_training *t = user;
    mf_model *m = mf_fit_model(ctx);
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_TRAIN);
    double loss = mf_softmax_xent_forward(t->probs, logits.data, b->y, b->w, b->n, 3);
    mf_softmax_xent_backward(t->dlogits, t->probs, b->y, b->w, b->n, 3, 1.0f);
    mf_model_zero_grad(m);
    mf_model_backward(m, t->dlogits, NULL);
    mf_optimizer_apply(t->opt, m, EX_LR);
    mf_metric_update(&t->loss_tracker, loss * b->n / b->n_valid, b->n_valid);
    mf_metric_update_logits(&t->accuracy, logits.data, b->y, b->w, b->n, 3);
    mf_logs_set(logs, "loss", mf_metric_result(&t->loss_tracker)); /* running mean */
    mf_logs_set(logs, "accuracy", mf_metric_result(&t->accuracy)); /* running mean */
    mf_logs_set(logs, "batch_loss", loss); /* raw, as returned */
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

    mf_fit_ctx *ctx = mf_fit_ctx_create(model, EX_SEED, 0); /* no mf_compile */
    my_training t = {.opt = ex_adam(model)};
    t.loss_tracker = mf_metric_mean("loss");
    t.accuracy = mf_metric_accuracy("accuracy");
    mf_fit_track_metric(ctx, &t.loss_tracker);
    mf_fit_track_metric(ctx, &t.accuracy);

    mf_fit_options fit = mf_fit_options_default();
    fit.epochs = EX_EPOCHS;
    fit.verbose = 2;
    fit.train_step = train_step;
    fit.step_user = &t;
    EX_TRY(mf_fit(ctx, tl, NULL, &fit));

    ex_save(model, argv[2]);
    mf_optimizer_free(t.opt);
    mf_fit_ctx_free(ctx);
    mf_model_free(model);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(train);
    mf_dataset_free(val);
    return 0;
}
