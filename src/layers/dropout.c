/* dropout.c: Keras Dropout(rate), inverted: in training each value is kept with
 * probability 1 - rate and scaled by 1 / (1 - rate), so inference is the
 * identity. The mask is drawn sequentially from the rng the caller hands to the
 * forward pass (reproducible for a given seed and rank) and kept for backward. */
#include "layer.h"

typedef struct dropout {
    mf_layer base;
    float rate;
    float *mask; /* mask_cap floats: 0 or 1/(1-rate), from the last training forward */
    size_t mask_cap;
} dropout;

static mf_status dropout_build(mf_layer *l)
{
    l->out_shape = l->in_shape[0];
    return MF_STATUS_OK;
}

static void dropout_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    dropout *d = (dropout *)l;
    size_t n = mf_tensor_numel(out);
    const float *x = in[0]->data;
    float *y = out->data;
    if (ex->mode != MF_MODE_TRAIN || d->rate == 0.0f) {
        for (size_t i = 0; i < n; i++)
            y[i] = x[i];
        return;
    }
    MF_ASSERT(ex->rng != NULL);
    if (n > d->mask_cap) {
        mf_free(d->mask);
        d->mask = mf_alloc(n * sizeof(float));
        d->mask_cap = n;
    }
    float scale = 1.0f / (1.0f - d->rate);
    for (size_t i = 0; i < n; i++) {
        d->mask[i] = mf_rng_uniform(ex->rng) >= d->rate ? scale : 0.0f;
        y[i] = x[i] * d->mask[i];
    }
}

static void dropout_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                             const mf_tensor *dout, mf_tensor *const *din)
{
    (void)in;
    (void)out;
    dropout *d = (dropout *)l;
    if (!din[0])
        return;
    size_t n = mf_tensor_numel(dout);
    float *dx = din[0]->data;
    const float *dy = dout->data;
    int train = ex->mode == MF_MODE_TRAIN && d->rate != 0.0f;
    MF_ASSERT(!train || n <= d->mask_cap);
    mf_din_put(dx, dy, train ? d->mask : NULL, n, ex->din_first[0]);
}

static void dropout_destroy(mf_layer *l) { mf_free(((dropout *)l)->mask); }

static void dropout_args(const mf_layer *l, mf_layer_args *a) { a->rate = ((const dropout *)l)->rate; }

static const mf_layer_ops dropout_ops = {
    .kind = "Dropout",
    .default_name = "dropout",
    .n_in = 1,
    .bwd_reads = MF_READS_NONE,
    .args = dropout_args,
    .build = dropout_build,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .destroy = dropout_destroy,
};

mf_layer *mf_dropout(const char *name, float rate)
{
    if (!(rate >= 0.0f && rate < 1.0f)) {
        mf_fail(MF_STATUS_INVALID, "Dropout: rate must be in [0, 1), got %g", (double)rate);
        return NULL;
    }
    dropout *d = (dropout *)mf_layer_alloc(&dropout_ops, sizeof(dropout), name);
    if (d)
        d->rate = rate;
    return (mf_layer *)d;
}
