/* 2_manual_loop.c: the "old way", before fit() could be customised: a
 * hand-written loop over batches (forward, loss, backward, apply gradients,
 * update metrics, print). No fit, no compile; every piece is visible.
 *
 *   usage: 2_manual_loop DATA_DIR OUT_WEIGHTS.bin */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: %s DATA_DIR OUT_WEIGHTS.bin\n", argv[0]), 2;
    mf_dataset *train, *val;
    mf_loader *tl, *vl;
    ex_data(argv[1], &train, &val, &tl, &vl);
    mf_model *model = ex_model();
    mf_optimizer *opt = ex_adam(model);
    mf_rng dropout;
    mf_rng_seed2(&dropout, EX_SEED, 0); /* what a fit context uses on rank 0 */

    const int C = 3;
    float probs[EX_BATCH * 3], dlogits[EX_BATCH * 3];
    for (int epoch = 0; epoch < EX_EPOCHS; epoch++) {
        mf_metric loss_mean = mf_metric_mean("loss"), acc = mf_metric_accuracy("accuracy");
        EX_TRY(mf_loader_begin_epoch(tl, epoch));
        for (int step = 0; step < mf_loader_steps(tl); step++) {
            const mf_batch *b;
            EX_TRY(mf_loader_next(tl, &b));
            mf_tensor logits = mf_model_forward(model, b->x, b->n, MF_MODE_TRAIN, &dropout);
            double loss = mf_softmax_xent_forward(probs, logits.data, b->y, b->w, b->n, C);
            mf_softmax_xent_backward(dlogits, probs, b->y, b->w, b->n, C, 1.0f);
            mf_model_zero_grad(model);
            mf_model_backward(model, dlogits, NULL);
            mf_optimizer_apply(opt, model, EX_LR);
            mf_metric_update(&loss_mean, loss * b->n / b->n_valid, b->n_valid);
            mf_metric_update_logits(&acc, logits.data, b->y, b->w, b->n, C);
        }
        printf("epoch %d/%d - loss: %.4f - accuracy: %.4f\n", epoch + 1, EX_EPOCHS, mf_metric_result(&loss_mean),
               mf_metric_result(&acc));
    }
    ex_save(model, argv[2]);
    mf_optimizer_free(opt);
    mf_model_free(model);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(train);
    mf_dataset_free(val);
    return 0;
}
