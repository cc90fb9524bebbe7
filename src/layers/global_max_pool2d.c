/* global_max_pool2d.c: Keras GlobalMaxPooling2D, (N,H,W,C) -> (N,C). The
 * gradient goes to the first maximum of each channel in NHWC scan order (ties,
 * as after a ReLU, go to one cell, as TensorFlow's MaxPoolGrad does); it is
 * found again from the input in backward. */
#include <float.h>
#include "layer.h"

static mf_status gmp_build(mf_layer *l)
{
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    l->out_shape = mf_shape2(0, s->d[3]);
    return MF_STATUS_OK;
}

/* inp: (N,H,W,C)  out: (N,C) */
static void gmp_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)l;
    (void)ex;
    int N = in[0]->shape.d[0], HW = in[0]->shape.d[1] * in[0]->shape.d[2], C = in[0]->shape.d[3];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *y = out->data + (size_t)n * C;
        const float *x = in[0]->data + (size_t)n * HW * C;
        for (int c = 0; c < C; c++)
            y[c] = -FLT_MAX;
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                y[c] = x[(size_t)p * C + c] > y[c] ? x[(size_t)p * C + c] : y[c];
    }
}

static void gmp_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                         const mf_tensor *dout, mf_tensor *const *din)
{
    (void)l;
    (void)out;
    if (!din[0])
        return;
    int N = in[0]->shape.d[0], HW = in[0]->shape.d[1] * in[0]->shape.d[2], C = in[0]->shape.d[3];
    int first = ex->din_first[0];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = in[0]->data + (size_t)n * HW * C;
        float *dx = din[0]->data + (size_t)n * HW * C;
        if (first)
            for (size_t i = 0; i < (size_t)HW * C; i++)
                dx[i] = 0.0f;
        for (int c = 0; c < C; c++) {
            size_t best = (size_t)c;
            for (int p = 1; p < HW; p++)
                if (x[(size_t)p * C + c] > x[best])
                    best = (size_t)p * C + c;
            dx[best] += dout->data[(size_t)n * C + c];
        }
    }
}

static const mf_layer_ops gmp_ops = {
    .kind = "GlobalMaxPooling2D",
    .default_name = "global_max_pooling2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .build = gmp_build,
    .forward = gmp_forward,
    .backward = gmp_backward,
};

mf_layer *mf_global_max_pool2d(const char *name) { return mf_layer_alloc(&gmp_ops, sizeof(mf_layer), name); }
