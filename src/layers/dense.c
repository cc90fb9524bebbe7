/* dense.c: Keras Dense(units, use_bias, activation): y = act(x W + b), kernel
 * W (in, units), bias (units); softmax is over the units. The activation's
 * derivative is taken from the output (swish recomputes x W + b), so a Dense
 * with an activation keeps its output for backward.
 * Init: kernel glorot_uniform, bias zeros (Keras defaults). */
#include "layer.h"
#include "../tensor/gemm.h"

typedef struct dense {
    mf_layer base;
    int units, use_bias;
    mf_activation act;
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
    if (d->act != MF_ACT_LINEAR)
        mf_act_forward(y, y, (size_t)N, U, d->act);
}

static void dense_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                           const mf_tensor *dout, mf_tensor *const *din)
{
    dense *d = (dense *)l;
    int N = in[0]->shape.d[0], I = in[0]->shape.d[1], U = d->units;
    const float *dy = dout->data;
    float *dz = NULL;
    if (d->act != MF_ACT_LINEAR) { /* dz (N,U) = act'(.) * dy, then as without it */
        dz = mf_alloc((size_t)N * U * sizeof(float));
        float *z = NULL;
        if (mf_act_reads_input(d->act)) { /* the pre-activation, again */
            z = mf_alloc((size_t)N * U * sizeof(float));
            for (int n = 0; n < N; n++)
                for (int u = 0; u < U; u++)
                    z[(size_t)n * U + u] = d->bias >= 0 ? l->slot[d->bias].data[u] : 0.0f;
            mf_sgemm(0, 0, N, U, I, 1.0f, in[0]->data, I, l->slot[d->kernel].data, U, d->bias >= 0 ? 1.0f : 0.0f, z, U);
        }
        mf_act_backward(dz, z, out->data, dy, (size_t)N, U, d->act, 1);
        mf_free(z);
        dy = dz;
    }
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
    mf_free(dz);
}

static void dense_args(const mf_layer *l, mf_layer_args *a)
{
    const dense *d = (const dense *)l;
    a->units = d->units;
    a->use_bias = d->use_bias;
    a->activation = d->act;
}

static const mf_layer_ops dense_ops = {
    .kind = "Dense",
    .default_name = "dense",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .args = dense_args,
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
};

/* With an activation: backward reads the output too. */
static const mf_layer_ops dense_act_ops = {
    .kind = "Dense",
    .default_name = "dense",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0 | MF_READS_OUT,
    .args = dense_args,
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
};

mf_layer *mf_dense_ex(const char *name, int units, int use_bias, mf_activation activation)
{
    if (units <= 0) {
        mf_fail(MF_STATUS_INVALID, "Dense: units must be > 0, got %d", units);
        return NULL;
    }
    if (!mf_activation_valid((int)activation)) {
        mf_fail(MF_STATUS_INVALID, "Dense: unknown activation %d (see mf_activation)", (int)activation);
        return NULL;
    }
    dense *d = (dense *)mf_layer_alloc(activation == MF_ACT_LINEAR ? &dense_ops : &dense_act_ops, sizeof(dense), name);
    if (d) {
        d->units = units;
        d->use_bias = use_bias != 0;
        d->act = activation;
    }
    return (mf_layer *)d;
}

mf_layer *mf_dense(const char *name, int units, int use_bias)
{
    return mf_dense_ex(name, units, use_bias, MF_ACT_LINEAR);
}
