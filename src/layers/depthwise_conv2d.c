/* depthwise_conv2d.c: Keras DepthwiseConv2D(kernel_size=K, strides=S, padding,
 * depth_multiplier=1, use_bias). Each channel has its own KxK filter; kernel
 * (K,K,C,1) in Keras' layout, read as (K,K,C).
 *
 * Direct kernels rather than im2col: a depthwise conv does K*K multiply-adds per
 * output, so copying K*K values per output first would double the memory
 * traffic for nothing. With NHWC the channel loop is innermost and contiguous in
 * input, kernel and output, so it vectorises.
 * Init: depthwise_kernel glorot_uniform (fan_in K*K*C, fan_out K*K), bias zeros. */
#include <omp.h>
#include <string.h>
#include "layer.h"
#include "conv_geom.h"

typedef struct depthwise_conv2d {
    mf_layer base;
    int K, S, use_bias;
    mf_padding padding;
    mf_conv_geom g;
    int kernel, bias; /* slot indices; bias -1 without bias */
} depthwise_conv2d;

static mf_status dw_build(mf_layer *l)
{
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    MF_TRY(mf_conv_geometry(&d->g, s->d[1], s->d[2], d->K, d->S, d->padding));
    l->out_shape = mf_shape4(0, d->g.Ho, d->g.Wo, s->d[3]);
    d->kernel = mf_layer_reserve(l, "depthwise_kernel", mf_shape4(d->K, d->K, s->d[3], 1), MF_PARAM_TRAINABLE);
    d->bias = d->use_bias ? mf_layer_reserve(l, "bias", mf_shape1(s->d[3]), MF_PARAM_TRAINABLE) : -1;
    return MF_STATUS_OK;
}

static void dw_init(mf_layer *l, mf_rng *rng)
{
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    mf_slot *k = &l->slot[d->kernel];
    int KK = d->K * d->K;
    /* Keras computes fans of a (K,K,C,1) kernel as receptive * C and receptive * 1. */
    mf_init_glorot_uniform(k->data, k->numel, KK * k->shape.d[2], KK, rng);
    if (d->bias >= 0)
        mf_init_const(l->slot[d->bias].data, l->slot[d->bias].numel, 0.0f);
}

static size_t dw_workspace(const mf_layer *l, int N)
{
    (void)N;
    const depthwise_conv2d *d = (const depthwise_conv2d *)l;
    /* one private kernel-gradient accumulator per thread (summed in thread order,
     * so the result does not depend on scheduling) */
    return (size_t)omp_get_max_threads() * d->K * d->K * l->in_shape[0].d[3];
}

/* One output row ho of image n: y (Wo,C) from inp_n (H,W,C), w (K,K,C), b (C) or NULL. */
MF_SIMD_CLONES
static void dw_forward_row(float *restrict y, const float *restrict inp_n, const float *restrict w, const float *b,
                           int H, int W, int C, int K, int S, int pt, int pl, int ho, int Wo)
{
    for (int wo = 0; wo < Wo; wo++, y += C) {
        if (b)
            memcpy(y, b, (size_t)C * sizeof(float));
        else
            memset(y, 0, (size_t)C * sizeof(float));
        for (int kh = 0; kh < K; kh++) {
            int hi = ho * S + kh - pt;
            if (hi < 0 || hi >= H)
                continue;
            for (int kw = 0; kw < K; kw++) {
                int wi = wo * S + kw - pl;
                if (wi < 0 || wi >= W)
                    continue;
                const float *x = inp_n + ((size_t)hi * W + wi) * C;
                const float *wk = w + ((size_t)kh * K + kw) * C;
#pragma omp simd
                for (int c = 0; c < C; c++)
                    y[c] += x[c] * wk[c];
            }
        }
    }
}

/* inp: (N,H,W,C)  w: (K,K,C)  b: (C) or NULL  out: (N,Ho,Wo,C) */
static void dw_forward_k(float *out, const float *inp, const float *w, const float *b, int N, int H, int W, int C,
                         int K, int S, int pt, int pl, int Ho, int Wo)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++)
            dw_forward_row(out + (((size_t)n * Ho + ho) * Wo) * C, inp + (size_t)n * H * W * C, w, b, H, W, C, K, S, pt,
                           pl, ho, Wo);
}

/* One image: dinp_n (H,W,C) (=, if first, or +=) conv^T(dout_n (Ho,Wo,C)). */
MF_SIMD_CLONES
static void dw_backward_input_image(float *restrict dinp_n, const float *restrict dout_n, const float *restrict w,
                                    int first, int H, int W, int C, int K, int S, int pt, int pl, int Ho, int Wo)
{
    if (first) /* the scatter adds: start this image from zero */
        memset(dinp_n, 0, (size_t)H * W * C * sizeof(float));
    for (int ho = 0; ho < Ho; ho++) {
        for (int wo = 0; wo < Wo; wo++) {
            const float *dy = dout_n + ((size_t)ho * Wo + wo) * C;
            for (int kh = 0; kh < K; kh++) {
                int hi = ho * S + kh - pt;
                if (hi < 0 || hi >= H)
                    continue;
                for (int kw = 0; kw < K; kw++) {
                    int wi = wo * S + kw - pl;
                    if (wi < 0 || wi >= W)
                        continue;
                    float *dx = dinp_n + ((size_t)hi * W + wi) * C;
                    const float *wk = w + ((size_t)kh * K + kw) * C;
#pragma omp simd
                    for (int c = 0; c < C; c++)
                        dx[c] += dy[c] * wk[c];
                }
            }
        }
    }
}

/* dinp (N,H,W,C) += conv^T(dout) (first: = ); images are independent, so
 * threads split over n. */
static void dw_backward_input_k(float *dinp, const float *dout, const float *w, int first, int N, int H, int W, int C,
                                int K, int S, int pt, int pl, int Ho, int Wo)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        dw_backward_input_image(dinp + (size_t)n * H * W * C, dout + (size_t)n * Ho * Wo * C, w, first, H, W, C, K, S,
                                pt, pl, Ho, Wo);
}

/* acc (K,K,C) += the products of output row ho of one image: inp_n (H,W,C), dout row (Wo,C) */
MF_SIMD_CLONES
static void dw_weight_row(float *restrict acc, const float *restrict inp_n, const float *restrict dy, int H, int W,
                          int C, int K, int S, int pt, int pl, int ho, int Wo)
{
    for (int wo = 0; wo < Wo; wo++, dy += C) {
        for (int kh = 0; kh < K; kh++) {
            int hi = ho * S + kh - pt;
            if (hi < 0 || hi >= H)
                continue;
            for (int kw = 0; kw < K; kw++) {
                int wi = wo * S + kw - pl;
                if (wi < 0 || wi >= W)
                    continue;
                const float *x = inp_n + ((size_t)hi * W + wi) * C;
                float *a = acc + ((size_t)kh * K + kw) * C;
#pragma omp simd
                for (int c = 0; c < C; c++)
                    a[c] += x[c] * dy[c];
            }
        }
    }
}

/* dw (K,K,C) += sum over n, ho, wo of inp patch * dout; db (C) += sum of dout.
 * part: part_floats of scratch for per-thread partial sums (K*K*C each). */
static void dw_backward_weight_k(float *dw, float *db, float *part, size_t part_floats, const float *inp,
                                 const float *dout, int N, int H, int W, int C, int K, int S, int pt, int pl, int Ho,
                                 int Wo)
{
    size_t KKC = (size_t)K * K * C;
    /* the thread count may have grown since the workspace was sized: use no
     * more threads than it has room for */
    int nt = omp_get_max_threads();
    if ((size_t)nt * KKC > part_floats)
        nt = (int)(part_floats / KKC);
    MF_ASSERT(nt >= 1);
    memset(part, 0, (size_t)nt * KKC * sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        float *acc = part + (size_t)omp_get_thread_num() * KKC;
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int ho = 0; ho < Ho; ho++)
                dw_weight_row(acc, inp + (size_t)n * H * W * C, dout + (((size_t)n * Ho + ho) * Wo) * C, H, W, C, K, S,
                              pt, pl, ho, Wo);
    }
    for (int t = 0; t < nt; t++)
        for (size_t i = 0; i < KKC; i++)
            dw[i] += part[(size_t)t * KKC + i];
    if (db)
        mf_bias_grad(db, dout, (size_t)N * Ho * Wo, C);
}

/* y (n) = min(max(y, 0), hi) in place; NaN stays NaN */
static void clamp_k(float *y, size_t n, float hi)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = y[i] < 0.0f ? 0.0f : y[i];
        y[i] = v > hi ? hi : v;
    }
}

static void dw_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    const mf_shape *s = &in[0]->shape; /* unpadded when a ZeroPadding2D was folded in */
    /* a folded BatchNorm (ex->fold_w/fold_b) replaces the kernel and bias */
    const float *w = ex->fold_w ? ex->fold_w : l->slot[d->kernel].data;
    const float *b = ex->fold_b ? ex->fold_b : d->bias >= 0 ? l->slot[d->bias].data : NULL;
    dw_forward_k(out->data, in[0]->data, w, b, s->d[0], s->d[1], s->d[2], s->d[3], d->K, d->S,
                 d->g.pad_top + ex->pad_top, d->g.pad_left + ex->pad_left, d->g.Ho, d->g.Wo);
    if (ex->fuse_relu) /* the ReLU after the folded BatchNorm */
        clamp_k(out->data, mf_tensor_numel(out), ex->relu_max);
}

static void dw_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                        const mf_tensor *dout, mf_tensor *const *din)
{
    (void)out;
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    const mf_shape *s = &in[0]->shape;
    if (ex->param_grads)
        dw_backward_weight_k(l->slot[d->kernel].grad, d->bias >= 0 ? l->slot[d->bias].grad : NULL, ex->ws,
                             ex->ws_floats, in[0]->data, dout->data, s->d[0], s->d[1], s->d[2], s->d[3], d->K, d->S,
                             d->g.pad_top + ex->pad_top, d->g.pad_left + ex->pad_left, d->g.Ho, d->g.Wo);
    if (din[0])
        dw_backward_input_k(din[0]->data, dout->data, l->slot[d->kernel].data, ex->din_first[0], s->d[0], s->d[1],
                            s->d[2], s->d[3], d->K, d->S, d->g.pad_top + ex->pad_top, d->g.pad_left + ex->pad_left,
                            d->g.Ho, d->g.Wo);
}

static void dw_args(const mf_layer *l, mf_layer_args *a)
{
    const depthwise_conv2d *d = (const depthwise_conv2d *)l;
    a->kernel_h = a->kernel_w = d->K;
    a->stride_h = a->stride_w = d->S;
    a->dilation_h = a->dilation_w = 1;
    a->padding = d->padding;
    a->use_bias = d->use_bias;
}

static const mf_layer_ops dw_ops = {
    .kind = "DepthwiseConv2D",
    .default_name = "depthwise_conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .folds_pad = 1,
    .folds_bn = 1,
    .args = dw_args,
    .build = dw_build,
    .init = dw_init,
    .workspace = dw_workspace,
    .forward = dw_forward,
    .backward = dw_backward,
};

mf_layer *mf_depthwise_conv2d(const char *name, int kernel, int stride, mf_padding padding, int use_bias)
{
    if (kernel <= 0 || stride <= 0) {
        mf_fail(MF_STATUS_INVALID, "DepthwiseConv2D: kernel and stride must be > 0, got %d, %d", kernel, stride);
        return NULL;
    }
    if (padding != MF_PADDING_SAME && padding != MF_PADDING_VALID) {
        mf_fail(MF_STATUS_INVALID, "DepthwiseConv2D: padding must be MF_PADDING_SAME or MF_PADDING_VALID");
        return NULL;
    }
    depthwise_conv2d *d = (depthwise_conv2d *)mf_layer_alloc(&dw_ops, sizeof(depthwise_conv2d), name);
    if (d) {
        d->K = kernel;
        d->S = stride;
        d->padding = padding;
        d->use_bias = use_bias != 0;
    }
    return (mf_layer *)d;
}
