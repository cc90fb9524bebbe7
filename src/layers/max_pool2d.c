/* max_pool2d.c: Keras MaxPooling2D(pool_size, strides, padding), NHWC.
 *
 * 'same' padding follows TensorFlow: Ho = ceil(H / S), the odd pixel of
 * padding at the bottom/right, and padded cells never win (they are absent,
 * not zeros). Backward routes each output's gradient to ONE input cell: the
 * first maximum in scan order (window row by row, left to right), which is
 * what TensorFlow's MaxPoolGrad does with ties (equal values, e.g. after a
 * ReLU's zeros). The winner is found again from the input in backward, so
 * nothing is kept but the input (bwd_reads IN0). */
#include <float.h>
#include "layer.h"
#include "conv_geom.h"

typedef struct max_pool2d {
    mf_layer base;
    mf_pool_window w;
} max_pool2d;

static mf_status mp_build(mf_layer *l) { return mf_pool_build(&((max_pool2d *)l)->w, &l->in_shape[0], &l->out_shape); }

/* inp: (N,H,W,C)  out: (N,Ho,Wo,C) */
static void mp_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    const max_pool2d *p = (const max_pool2d *)l;
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
                    y[c] = -FLT_MAX;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        const float *xr = x + ((size_t)h * W + w) * C;
                        for (int c = 0; c < C; c++)
                            y[c] = xr[c] > y[c] ? xr[c] : y[c];
                    }
            }
    }
}

static void mp_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                        const mf_tensor *dout, mf_tensor *const *din)
{
    (void)out;
    if (!din[0])
        return;
    const max_pool2d *p = (const max_pool2d *)l;
    int N = in[0]->shape.d[0], H = in[0]->shape.d[1], W = in[0]->shape.d[2], C = in[0]->shape.d[3];
    int Ho = p->w.g.Ho, Wo = p->w.g.Wo;
    size_t img = (size_t)H * W * C;
    int first = ex->din_first[0];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = in[0]->data + (size_t)n * img;
        float *dx = din[0]->data + (size_t)n * img;
        if (first) /* windows may overlap or miss cells: start from zero */
            for (size_t i = 0; i < img; i++)
                dx[i] = 0.0f;
        for (int ho = 0; ho < Ho; ho++)
            for (int wo = 0; wo < Wo; wo++) {
                int h0, h1, w0, w1;
                mf_pool_clip(&p->w, H, W, ho, wo, &h0, &h1, &w0, &w1);
                const float *g = dout->data + (((size_t)n * Ho + ho) * Wo + wo) * C;
                for (int c = 0; c < C; c++) {
                    size_t best = ((size_t)h0 * W + w0) * C + c;
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++) {
                            size_t i = ((size_t)h * W + w) * C + c;
                            if (x[i] > x[best]) /* strictly: ties keep the first */
                                best = i;
                        }
                    dx[best] += g[c];
                }
            }
    }
}

static void mp_args(const mf_layer *l, mf_layer_args *a) { mf_pool_args(&((const max_pool2d *)l)->w, a); }

static const mf_layer_ops mp_ops = {
    .kind = "MaxPooling2D",
    .default_name = "max_pooling2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .args = mp_args,
    .build = mp_build,
    .forward = mp_forward,
    .backward = mp_backward,
};

mf_layer *mf_max_pool2d(const char *name, int pool_h, int pool_w, int stride_h, int stride_w, mf_padding padding)
{
    mf_pool_window w;
    if (mf_pool_window_init(&w, "MaxPooling2D", pool_h, pool_w, stride_h, stride_w, padding) != MF_STATUS_OK)
        return NULL;
    max_pool2d *p = (max_pool2d *)mf_layer_alloc(&mp_ops, sizeof(max_pool2d), name);
    if (p)
        p->w = w;
    return (mf_layer *)p;
}
