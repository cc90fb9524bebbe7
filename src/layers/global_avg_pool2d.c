/* global_avg_pool2d.c: Keras GlobalAveragePooling2D, (N,H,W,C) -> (N,C). */
#include "layer.h"

static mf_status gap_build(mf_layer *l)
{
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    l->out_shape = mf_shape2(0, s->d[3]);
    return MF_STATUS_OK;
}

/* inp: (N,H,W,C)  out: (N,C) */
static void gap_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)l;
    (void)ex;
    int N = in[0]->shape.d[0], HW = in[0]->shape.d[1] * in[0]->shape.d[2], C = in[0]->shape.d[3];
    float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *y = out->data + (size_t)n * C;
        const float *x = in[0]->data + (size_t)n * HW * C;
        for (int c = 0; c < C; c++)
            y[c] = 0.0f;
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                y[c] += x[(size_t)p * C + c];
        for (int c = 0; c < C; c++)
            y[c] *= inv;
    }
}

static void gap_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                         const mf_tensor *dout, mf_tensor *const *din)
{
    (void)l;
    (void)out;
    if (!din[0])
        return;
    int N = in[0]->shape.d[0], HW = in[0]->shape.d[1] * in[0]->shape.d[2], C = in[0]->shape.d[3];
    float inv = 1.0f / (float)HW;
    int first = ex->din_first[0];
    float *g = mf_alloc((size_t)N * C * sizeof(float)); /* dy / (H*W): every pixel's share */
    for (size_t i = 0; i < (size_t)N * C; i++)
        g[i] = dout->data[i] * inv;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++)
            mf_din_put(din[0]->data + ((size_t)n * HW + p) * C, g + (size_t)n * C, NULL, (size_t)C, first);
    mf_free(g);
}

static const mf_layer_ops gap_ops = {
    .kind = "GlobalAveragePooling2D",
    .default_name = "global_average_pooling2d",
    .n_in = 1,
    .bwd_reads = MF_READS_NONE,
    .build = gap_build,
    .forward = gap_forward,
    .backward = gap_backward,
};

mf_layer *mf_global_avg_pool2d(const char *name) { return mf_layer_alloc(&gap_ops, sizeof(mf_layer), name); }
