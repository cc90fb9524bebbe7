/* avg_pool2d.c: Keras AveragePooling2D(pool_size, strides, padding), NHWC.
 *
 * 'same' padding follows TensorFlow: Ho = ceil(H / S), the odd pixel of
 * padding at the bottom/right, and a window that overhangs the image averages
 * over its cells inside the image only (padded cells are not counted as
 * zeros). Each output's gradient is shared equally by those cells; backward
 * needs shapes only. */
#include "layer.h"
#include "conv_geom.h"

typedef struct avg_pool2d {
    mf_layer base;
    mf_pool_window w;
} avg_pool2d;

static mf_status ap_build(mf_layer *l) { return mf_pool_build(&((avg_pool2d *)l)->w, &l->in_shape[0], &l->out_shape); }

/* inp: (N,H,W,C)  out: (N,Ho,Wo,C) */
static void ap_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    const avg_pool2d *p = (const avg_pool2d *)l;
    int N = in[0]->shape.d[0], H = in[0]->shape.d[1], W = in[0]->shape.d[2], C = in[0]->shape.d[3];
    int Ho = p->w.g.Ho, Wo = p->w.g.Wo;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = in[0]->data + (size_t)n * H * W * C;
        for (int ho = 0; ho < Ho; ho++)
            for (int wo = 0; wo < Wo; wo++) {
                int h0, h1, w0, w1;
                mf_pool_clip(&p->w, H, W, ho, wo, &h0, &h1, &w0, &w1);
                float *y = out->data + (((size_t)n * Ho + ho) * Wo + wo) * C;
                for (int c = 0; c < C; c++)
                    y[c] = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        const float *xr = x + ((size_t)h * W + w) * C;
                        for (int c = 0; c < C; c++)
                            y[c] += xr[c];
                    }
                float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                for (int c = 0; c < C; c++)
                    y[c] *= inv;
            }
    }
}

static void ap_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                        const mf_tensor *dout, mf_tensor *const *din)
{
    (void)in;
    (void)out;
    if (!din[0])
        return;
    const avg_pool2d *p = (const avg_pool2d *)l;
    const mf_shape *s = &din[0]->shape;
    int N = s->d[0], H = s->d[1], W = s->d[2], C = s->d[3];
    int Ho = p->w.g.Ho, Wo = p->w.g.Wo;
    size_t img = (size_t)H * W * C;
    int first = ex->din_first[0];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *dx = din[0]->data + (size_t)n * img;
        if (first) /* windows may overlap or miss cells: start from zero */
            for (size_t i = 0; i < img; i++)
                dx[i] = 0.0f;
        for (int ho = 0; ho < Ho; ho++)
            for (int wo = 0; wo < Wo; wo++) {
                int h0, h1, w0, w1;
                mf_pool_clip(&p->w, H, W, ho, wo, &h0, &h1, &w0, &w1);
                const float *g = dout->data + (((size_t)n * Ho + ho) * Wo + wo) * C;
                float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        float *d = dx + ((size_t)h * W + w) * C;
                        for (int c = 0; c < C; c++)
                            d[c] += g[c] * inv;
                    }
            }
    }
}

static void ap_args(const mf_layer *l, mf_layer_args *a) { mf_pool_args(&((const avg_pool2d *)l)->w, a); }

static const mf_layer_ops ap_ops = {
    .kind = "AveragePooling2D",
    .default_name = "average_pooling2d",
    .n_in = 1,
    .bwd_reads = MF_READS_NONE,
    .args = ap_args,
    .build = ap_build,
    .forward = ap_forward,
    .backward = ap_backward,
};

mf_layer *mf_avg_pool2d(const char *name, int pool_h, int pool_w, int stride_h, int stride_w, mf_padding padding)
{
    mf_pool_window w;
    if (mf_pool_window_init(&w, "AveragePooling2D", pool_h, pool_w, stride_h, stride_w, padding) != MF_STATUS_OK)
        return NULL;
    avg_pool2d *p = (avg_pool2d *)mf_layer_alloc(&ap_ops, sizeof(avg_pool2d), name);
    if (p)
        p->w = w;
    return (mf_layer *)p;
}
