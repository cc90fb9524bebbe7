/* loss.c: the compiled loss, sparse categorical cross-entropy from logits with
 * Keras' weighting: w_i = batch weight (0 for padding and skipped images) x
 * class_weight[label], loss = sum(w_i * l_i) / N over the N rows.
 *
 * As in Keras, class_weight is fit's weighting of the training data: a test
 * pass (validation, evaluate) computes the plain loss, and the accuracy
 * metrics (Keras' `metrics`, not `weighted_metrics`) count every real row
 * once whatever its class weight. */
#include <math.h>
#include <string.h>
#include "fit_internal.h"

static void ensure_scratch(mf_fit_ctx *ctx, int N, int C)
{
    if ((size_t)N <= ctx->scratch_rows && (size_t)C <= ctx->scratch_c)
        return;
    mf_free(ctx->probs);
    mf_free(ctx->dlogits);
    mf_free(ctx->weights);
    ctx->scratch_rows = (size_t)N;
    ctx->scratch_c = (size_t)C;
    ctx->probs = mf_alloc((size_t)N * C * sizeof(float));
    ctx->dlogits = mf_alloc((size_t)N * C * sizeof(float));
    ctx->weights = mf_alloc((size_t)N * sizeof(float));
}

/* The per-sample weights of the batch, into ctx->weights: the batch's
 * (padding and skipped images 0), times the class weights if with_class. */
static const float *sample_weights(mf_fit_ctx *ctx, const mf_batch *b, int with_class)
{
    for (int i = 0; i < b->n; i++) {
        float w = b->w ? b->w[i] : 1.0f;
        if (with_class && ctx->class_weight && b->y[i] >= 0 && b->y[i] < ctx->n_class_weight)
            w *= ctx->class_weight[b->y[i]];
        ctx->weights[i] = w;
    }
    return ctx->weights;
}

double mf_fit_compiled_loss(mf_fit_ctx *ctx, const mf_batch *b, const mf_tensor *logits, const float **dlogits)
{
    int N = logits->shape.d[0], C = logits->shape.d[1];
    MF_ASSERT(logits->shape.ndim == 2 && N == b->n);
    for (int i = 0; i < N; i++)
        MF_ASSERT(b->y[i] >= 0 && b->y[i] < C);
    ensure_scratch(ctx, N, C);
    const float *w = sample_weights(ctx, b, !ctx->in_test);
    double loss = mf_softmax_xent_forward(ctx->probs, logits->data, b->y, w, N, C);
    if (dlogits) {
        mf_softmax_xent_backward(ctx->dlogits, ctx->probs, b->y, w, N, C, 1.0f);
        if (mf_fault_hit("nan_loss")) { /* the fault tests: a diverged step */
            loss = NAN;
            ctx->dlogits[0] = NAN;
        }
        *dlogits = ctx->dlogits;
    }
    return loss;
}

void mf_fit_update_metrics(mf_fit_ctx *ctx, const mf_batch *b, const mf_tensor *logits, double loss)
{
    mf_fit_update_metrics_sum(ctx, b, logits, loss * logits->shape.d[0]);
}

void mf_fit_update_metrics_sum(mf_fit_ctx *ctx, const mf_batch *b, const mf_tensor *logits, double loss_sum)
{
    int N = logits->shape.d[0], C = logits->shape.d[1];
    ensure_scratch(ctx, N, C);
    const float *w = sample_weights(ctx, b, 0);
    double valid = 0.0;
    for (int i = 0; i < N; i++)
        valid += b->w ? (b->w[i] > 0.0f) : 1.0;
    for (int k = 0; k < ctx->n_compiled; k++) {
        mf_metric *m = &ctx->compiled_metrics[k];
        if (m->kind == MF_METRIC_MEAN) {
            /* Keras weights the loss tracker by batch size; the rows that are
             * really there (not padding, not skipped) make it exact under
             * padding: sum(w l) / valid rows over the epoch. */
            if (valid > 0.0) {
                m->total += loss_sum;
                m->count += valid;
            }
        } else {
            mf_metric_update_logits(m, logits->data, b->y, w, N, C);
        }
    }
}
