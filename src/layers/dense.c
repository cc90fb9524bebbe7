/* dense.c: Keras Dense(units): y = x W + b, kernel W (in, units), bias (units).
 * Init: kernel glorot_uniform, bias zeros (Keras defaults). */
#include "layer.h"
#include "../tensor/gemm.h"

typedef struct dense {
    mf_layer base;
    int units, use_bias;
    int kernel, bias; /* slot indices; bias -1 without bias */
} dense;

static mf_status dense_build(mf_layer *l)
{
    dense *d = (dense *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 2)
        return mf_fail(MF_STATUS_SHAPE,
                       "input must be (N, features), got %d axes (add GlobalAveragePooling2D or Flatten first)",
                       s->ndim);
    l->out_shape = mf_shape2(0, d->units);
    d->kernel = mf_layer_reserve(l, "kernel", mf_shape2(s->d[1], d->units), MF_PARAM_TRAINABLE);
    d->bias = d->use_bias ? mf_layer_reserve(l, "bias", mf_shape1(d->units), MF_PARAM_TRAINABLE) : -1;
    return MF_STATUS_OK;
}

static void dense_init(mf_layer *l, mf_rng *rng)
{
    dense *d = (dense *)l;
    mf_slot *k = &l->slot[d->kernel];
    mf_init_glorot_uniform(k->data, k->numel, k->shape.d[0], k->shape.d[1], rng);
    if (d->bias >= 0)
        mf_init_const(l->slot[d->bias].data, l->slot[d->bias].numel, 0.0f);
}

/* inp: (N,I)  W: (I,U)  b: (U)  out: (N,U) */
static void dense_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    dense *d = (dense *)l;
    int N = in[0]->shape.d[0], I = in[0]->shape.d[1], U = d->units;
    const float *W = l->slot[d->kernel].data;
    float *y = out->data;
    if (d->bias >= 0) {
        const float *b = l->slot[d->bias].data;
        for (int n = 0; n < N; n++)
            for (int u = 0; u < U; u++)
                y[(size_t)n * U + u] = b[u];
    }
    mf_sgemm(0, 0, N, U, I, 1.0f, in[0]->data, I, W, U, d->bias >= 0 ? 1.0f : 0.0f, y, U);
}

static void dense_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                           const mf_tensor *dout, mf_tensor *const *din)
{
    (void)out;
    dense *d = (dense *)l;
    int N = in[0]->shape.d[0], I = in[0]->shape.d[1], U = d->units;
    const float *dy = dout->data;
    if (ex->param_grads) {
        /* dW (I,U) += x^T (I,N) . dy (N,U) */
        mf_sgemm(1, 0, I, U, N, 1.0f, in[0]->data, I, dy, U, 1.0f, l->slot[d->kernel].grad, U);
        if (d->bias >= 0) {
            mf_bias_grad(l->slot[d->bias].grad, dy, (size_t)N, U);
        }
    }
    /* dx (N,I) += dy (N,U) . W^T (U,I) */
    if (din[0])
        mf_sgemm(0, 1, N, I, U, 1.0f, dy, U, l->slot[d->kernel].data, U, ex->din_first[0] ? 0.0f : 1.0f, din[0]->data,
                 I);
}

static const mf_layer_ops dense_ops = {
    .kind = "Dense",
    .default_name = "dense",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
};

mf_layer *mf_dense(const char *name, int units, int use_bias)
{
    if (units <= 0) {
        mf_fail(MF_STATUS_INVALID, "Dense: units must be > 0, got %d", units);
        return NULL;
    }
    dense *d = (dense *)mf_layer_alloc(&dense_ops, sizeof(dense), name);
    if (d) {
        d->units = units;
        d->use_bias = use_bias != 0;
    }
    return (mf_layer *)d;
}
