/* 5_keras_model.c: a model from Keras, trained here, handed back to Keras.
 * The architecture is a Keras model.to_json() file (mf_model_from_keras: its
 * output softmax folded into the loss, mpifit trains on logits); one custom
 * train_step trains it for a few steps; mf_model_to_keras writes a Keras 2
 * full-model .h5 (keras.models.load_model(OUT, compile=False) in Keras, the
 * output layer's softmax written back). Reading that file again must give
 * the trained weights, bit for bit.
 *
 *   usage: 5_keras_model KERAS.json DATA_DIR OUT.h5
 *   (CTest: tests/data/keras/digits_cnn_k2.json, a digits-style CNN on
 *   (32, 32, 3) with 3 classes, the examples' data) */
#include <string.h>
#include "common.h"

#define EX_STEPS 4 /* optimizer steps per epoch: a few */

/* One batch: forward, the compiled loss, backward, the optimizer, metrics. */
static mf_status train_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    mf_tensor logits = mf_fit_forward(ctx, b, MF_MODE_TRAIN);
    const float *dlogits;
    double loss = mf_fit_compiled_loss(ctx, b, &logits, &dlogits);
    mf_fit_zero_grad(ctx);
    mf_fit_backward(ctx, dlogits);
    mf_status s = mf_apply_gradients(ctx);
    if (s != MF_STATUS_OK)
        return s;
    mf_fit_update_metrics(ctx, b, &logits, loss);
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}

/* 1 if a and b hold the same weights (names, shapes, values) */
static int same_weights(const mf_model *a, const mf_model *b)
{
    if (mf_model_num_param_tensors(a) != mf_model_num_param_tensors(b))
        return 0;
    for (int i = 0; i < mf_model_num_param_tensors(a); i++) {
        mf_param_info pa = mf_model_param(a, i), pb = mf_model_param(b, i);
        const float *va = (pa.kind == MF_PARAM_STATE ? mf_model_state((mf_model *)a) : mf_model_params((mf_model *)a));
        const float *vb = (pb.kind == MF_PARAM_STATE ? mf_model_state((mf_model *)b) : mf_model_params((mf_model *)b));
        if (strcmp(pa.layer, pb.layer) || strcmp(pa.name, pb.name) || pa.numel != pb.numel ||
            memcmp(va + pa.offset, vb + pb.offset, pa.numel * sizeof(float)))
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: %s KERAS.json DATA_DIR OUT.h5\n", argv[0]), 2;
    mf_keras_info info;
    mf_model *model;
    EX_TRY(mf_model_from_keras_info(&model, argv[1], EX_SEED, &info));
    if (info.softmax_folded)
        printf("%s: the softmax of '%s' is folded into the loss\n", argv[1], info.softmax_layer);
    mf_model_summary(model, stdout);

    mf_dataset *train, *val;
    mf_loader *tl, *vl;
    ex_data(argv[2], &train, &val, &tl, &vl);
    mf_fit_ctx *ctx = mf_fit_ctx_create(model, EX_SEED, 0);
    mf_schedule lr = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = EX_LR};
    EX_TRY(mf_compile(ctx, ex_adam(model), &lr, NULL, "accuracy"));
    mf_fit_options fit = mf_fit_options_default();
    fit.epochs = EX_EPOCHS;
    fit.steps_per_epoch = EX_STEPS;
    fit.verbose = 2;
    fit.train_step = train_step;
    EX_TRY(mf_fit(ctx, tl, vl, &fit));

    /* back to Keras, then read back as Keras would be given it */
    EX_TRY(mf_model_to_keras(model, argv[3]));
    mf_model *back;
    EX_TRY(mf_model_from_keras(&back, argv[3], EX_SEED + 1));
    int ok = same_weights(model, back);
    printf("%s: %d layers, %zu parameters; read back %s\n", argv[3], mf_model_num_layers(back),
           mf_model_count_trainable(back) + mf_model_count_non_trainable(back),
           ok ? "with the trained weights" : "WITH OTHER WEIGHTS");

    mf_model_free(back);
    mf_fit_ctx_free(ctx);
    mf_model_free(model);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(train);
    mf_dataset_free(val);
    return ok ? 0 : 1;
}
