/* depthwise_conv2d.c: Keras DepthwiseConv2D(kernel_size, strides, padding,
 * depth_multiplier, dilation_rate, use_bias, activation), and the depthwise
 * kernels SeparableConv2D shares (depthwise.h). Each input channel has its own
 * KH x KW filters, M of them (the depth multiplier); kernel (KH,KW,C,M) in
 * Keras' layout.
 *
 * Direct kernels rather than im2col: a depthwise conv does KH*KW multiply-adds
 * per output, so copying KH*KW values per output first would double the memory
 * traffic for nothing. Threads split output rows (forward, kernel gradient)
 * and images (input gradient).
 *
 * The layer without an activation (every DepthwiseConv2D of MobileNetV2)
 * folds a following ZeroPadding2D and BatchNorm(+ReLU) in the memory plan; one
 * with a fused activation (applied after the bias, its derivative taken from
 * the output; swish recomputes the pre-activation) keeps its output for
 * backward and folds nothing.
 * Init: depthwise_kernel glorot_uniform (fan_in KH*KW*C, fan_out KH*KW*M), bias zeros. */
#include <string.h>
#include "layer.h"
#include "conv_geom.h"
#include "depthwise.h"

typedef struct depthwise_conv2d {
    mf_layer base;
    mf_conv_options o; /* as given (filters unused) */
    mf_conv_geom g;
    int kernel, bias; /* slot indices; bias -1 without bias */
} depthwise_conv2d;

/* ---- the kernels (depthwise.h) ---- */

mf_dw_window mf_dw_window_of(const mf_conv_options *o, const mf_conv_geom *g)
{
    mf_dw_window w = {o->kernel_h,         o->kernel_w, o->stride_h, o->stride_w, o->dilation_h, o->dilation_w,
                      o->depth_multiplier, g->pad_top,  g->pad_left, g->Ho,       g->Wo};
    return w;
}

/* y (CM) (+)= the products of one (kh, kw) tap: x (C), wk (CM) */
MF_ALWAYS_INLINE
static inline void dw_tap(float *restrict y, const float *restrict x, const float *restrict wk, int C, int M)
{
    if (M == 1) {
#pragma omp simd
        for (int c = 0; c < C; c++)
            y[c] += x[c] * wk[c];
        return;
    }
    for (int c = 0; c < C; c++)
        for (int m = 0; m < M; m++)
            y[c * M + m] += x[c] * wk[c * M + m];
}

/* One output row ho of image n: y (Wo,CM) from inp_n (H,W,C), w (KH,KW,CM), b (CM) or NULL. */
MF_ALWAYS_INLINE
static inline void forward_row(float *restrict y, const float *restrict inp_n, const float *restrict w, const float *b,
                               int H, int W, int C, const mf_dw_window *g, int ho, int M)
{
    /* the window in locals: memcpy/memset may write anything, so fields read
     * through g would be reloaded after each */
    const int KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW, pt = g->pt, pl = g->pl,
              Wo = g->Wo, CM = C * M;
    for (int wo = 0; wo < Wo; wo++, y += CM) {
        if (b)
            memcpy(y, b, (size_t)CM * sizeof(float));
        else
            memset(y, 0, (size_t)CM * sizeof(float));
        for (int kh = 0; kh < KH; kh++) {
            int hi = ho * SH + kh * DH - pt;
            if (hi < 0 || hi >= H)
                continue;
            for (int kw = 0; kw < KW; kw++) {
                int wi = wo * SW + kw * DW - pl;
                if (wi < 0 || wi >= W)
                    continue;
                dw_tap(y, inp_n + ((size_t)hi * W + wi) * C, w + ((size_t)kh * KW + kw) * CM, C, M);
            }
        }
    }
}

/* Each row function in two instances: M = 1 a constant (MobileNetV2's
 * layers: the code of a plain channel loop), and M any. */
MF_SIMD_CLONES
static void dw_forward_row1(float *restrict y, const float *restrict inp_n, const float *restrict w, const float *b,
                            int H, int W, int C, const mf_dw_window *g, int ho)
{
    forward_row(y, inp_n, w, b, H, W, C, g, ho, 1);
}
MF_SIMD_CLONES
static void dw_forward_rowm(float *restrict y, const float *restrict inp_n, const float *restrict w, const float *b,
                            int H, int W, int C, const mf_dw_window *g, int ho)
{
    forward_row(y, inp_n, w, b, H, W, C, g, ho, g->M);
}

void mf_dw_forward(float *out, const float *inp, const float *w, const float *b, int N, int H, int W, int C,
                   const mf_dw_window *g)
{
    int Ho = g->Ho, CM = C * g->M;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++)
            (g->M == 1 ? dw_forward_row1 : dw_forward_rowm)(out + (((size_t)n * Ho + ho) * g->Wo) * CM,
                                                            inp + (size_t)n * H * W * C, w, b, H, W, C, g, ho);
}

/* One image: dinp_n (H,W,C) (=, if first, or +=) conv^T(dout_n (Ho,Wo,CM)). */
MF_ALWAYS_INLINE
static inline void backward_input_image(float *restrict dinp_n, const float *restrict dout_n, const float *restrict w,
                                        int first, int H, int W, int C, const mf_dw_window *g, int M)
{
    const int KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW, pt = g->pt, pl = g->pl,
              Ho = g->Ho, Wo = g->Wo, CM = C * M;
    if (first) /* the scatter adds: start this image from zero */
        memset(dinp_n, 0, (size_t)H * W * C * sizeof(float));
    for (int ho = 0; ho < Ho; ho++) {
        for (int wo = 0; wo < Wo; wo++) {
            const float *dy = dout_n + ((size_t)ho * Wo + wo) * CM;
            for (int kh = 0; kh < KH; kh++) {
                int hi = ho * SH + kh * DH - pt;
                if (hi < 0 || hi >= H)
                    continue;
                for (int kw = 0; kw < KW; kw++) {
                    int wi = wo * SW + kw * DW - pl;
                    if (wi < 0 || wi >= W)
                        continue;
                    float *dx = dinp_n + ((size_t)hi * W + wi) * C;
                    const float *wk = w + ((size_t)kh * KW + kw) * CM;
                    if (M == 1) {
#pragma omp simd
                        for (int c = 0; c < C; c++)
                            dx[c] += dy[c] * wk[c];
                    } else {
                        for (int c = 0; c < C; c++) {
                            float s = 0.0f;
                            for (int m = 0; m < M; m++)
                                s += dy[c * M + m] * wk[c * M + m];
                            dx[c] += s;
                        }
                    }
                }
            }
        }
    }
}

MF_SIMD_CLONES
static void dw_backward_input_image1(float *restrict dinp_n, const float *restrict dout_n, const float *restrict w,
                                     int first, int H, int W, int C, const mf_dw_window *g)
{
    backward_input_image(dinp_n, dout_n, w, first, H, W, C, g, 1);
}
MF_SIMD_CLONES
static void dw_backward_input_imagem(float *restrict dinp_n, const float *restrict dout_n, const float *restrict w,
                                     int first, int H, int W, int C, const mf_dw_window *g)
{
    backward_input_image(dinp_n, dout_n, w, first, H, W, C, g, g->M);
}

/* images are independent, so threads split over n */
void mf_dw_backward_input(float *dinp, const float *dout, const float *w, int first, int N, int H, int W, int C,
                          const mf_dw_window *g)
{
    size_t out_image = (size_t)g->Ho * g->Wo * C * g->M;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        (g->M == 1 ? dw_backward_input_image1 : dw_backward_input_imagem)(
            dinp + (size_t)n * H * W * C, dout + (size_t)n * out_image, w, first, H, W, C, g);
}

/* acc (KH,KW,CM) += the products of output row ho of one image: inp_n (H,W,C), dout row (Wo,CM) */
MF_ALWAYS_INLINE
static inline void weight_row(float *restrict acc, const float *restrict inp_n, const float *restrict dy, int H, int W,
                              int C, const mf_dw_window *g, int ho, int M)
{
    const int KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW, pt = g->pt, pl = g->pl,
              Wo = g->Wo, CM = C * M;
    for (int wo = 0; wo < Wo; wo++, dy += CM) {
        for (int kh = 0; kh < KH; kh++) {
            int hi = ho * SH + kh * DH - pt;
            if (hi < 0 || hi >= H)
                continue;
            for (int kw = 0; kw < KW; kw++) {
                int wi = wo * SW + kw * DW - pl;
                if (wi < 0 || wi >= W)
                    continue;
                /* acc[c*M+m] += x[c] * dy[c*M+m]: the forward tap with dy as the kernel */
                dw_tap(acc + ((size_t)kh * KW + kw) * CM, inp_n + ((size_t)hi * W + wi) * C, dy, C, M);
            }
        }
    }
}

MF_SIMD_CLONES
static void dw_weight_row1(float *restrict acc, const float *restrict inp_n, const float *restrict dy, int H, int W,
                           int C, const mf_dw_window *g, int ho)
{
    weight_row(acc, inp_n, dy, H, W, C, g, ho, 1);
}
MF_SIMD_CLONES
static void dw_weight_rowm(float *restrict acc, const float *restrict inp_n, const float *restrict dy, int H, int W,
                           int C, const mf_dw_window *g, int ho)
{
    weight_row(acc, inp_n, dy, H, W, C, g, ho, g->M);
}

/* The kernel gradient's units of work: RB output rows of one image. Each
 * unit sums into its own accumulator and the accumulators are added in unit
 * order, so the result is the same bits for any number of threads. */
#define RB 8
static size_t units_of(const mf_dw_window *g, int N) { return (size_t)N * (size_t)((g->Ho + RB - 1) / RB); }

size_t mf_dw_weight_scratch(const mf_dw_window *g, int C, int N) { return units_of(g, N) * g->KH * g->KW * C * g->M; }

void mf_dw_backward_weight(float *dw, float *part, size_t part_floats, const float *inp, const float *dout, int N,
                           int H, int W, int C, const mf_dw_window *g)
{
    size_t KKC = (size_t)g->KH * g->KW * C * g->M;
    int Ho = g->Ho, CM = C * g->M, blocks = (Ho + RB - 1) / RB;
    long units = (long)units_of(g, N);
    MF_ASSERT((size_t)units * KKC <= part_floats);
#pragma omp parallel for schedule(static)
    for (long u = 0; u < units; u++) {
        float *acc = part + (size_t)u * KKC;
        memset(acc, 0, KKC * sizeof *acc);
        int n = (int)(u / blocks), h0 = (int)(u % blocks) * RB, h1 = h0 + RB < Ho ? h0 + RB : Ho;
        for (int ho = h0; ho < h1; ho++)
            (g->M == 1 ? dw_weight_row1 : dw_weight_rowm)(acc, inp + (size_t)n * H * W * C,
                                                          dout + (((size_t)n * Ho + ho) * g->Wo) * CM, H, W, C, g, ho);
    }
    /* the units' sum first (in unit order), then added to dw once: a second
     * backward then adds exactly what the first did */
    for (long u = 1; u < units; u++) {
        const float *pu = part + (size_t)u * KKC;
#pragma omp simd
        for (size_t i = 0; i < KKC; i++)
            part[i] += pu[i];
    }
#pragma omp simd
    for (size_t i = 0; i < KKC; i++)
        dw[i] += part[i];
}

/* ---- the layer ---- */

static mf_status dw_build(mf_layer *l)
{
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    MF_TRY(mf_conv_geometry_ex(&d->g, s->d[1], s->d[2], d->o.kernel_h, d->o.kernel_w, d->o.stride_h, d->o.stride_w,
                               d->o.dilation_h, d->o.dilation_w, d->o.padding));
    int CM = s->d[3] * d->o.depth_multiplier;
    l->out_shape = mf_shape4(0, d->g.Ho, d->g.Wo, CM);
    d->kernel =
        mf_layer_reserve(l, "depthwise_kernel", mf_shape4(d->o.kernel_h, d->o.kernel_w, s->d[3], d->o.depth_multiplier),
                         MF_PARAM_TRAINABLE);
    d->bias = d->o.use_bias ? mf_layer_reserve(l, "bias", mf_shape1(CM), MF_PARAM_TRAINABLE) : -1;
    return MF_STATUS_OK;
}

static void dw_init(mf_layer *l, mf_rng *rng)
{
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    mf_slot *k = &l->slot[d->kernel];
    int KK = d->o.kernel_h * d->o.kernel_w;
    /* Keras computes fans of a (KH,KW,C,M) kernel as receptive * C and receptive * M. */
    mf_init_glorot_uniform(k->data, k->numel, KK * k->shape.d[2], KK * d->o.depth_multiplier, rng);
    if (d->bias >= 0)
        mf_init_const(l->slot[d->bias].data, l->slot[d->bias].numel, 0.0f);
}

/* The window for an input whose folded padding (a ZeroPadding2D the plan
 * folded in, ex->pad_top/left) adds to the layer's own. */
static mf_dw_window dw_window(const depthwise_conv2d *d, const mf_exec *ex)
{
    mf_dw_window g = mf_dw_window_of(&d->o, &d->g);
    g.pt += ex->pad_top;
    g.pl += ex->pad_left;
    return g;
}

/* Output floats of one image. */
static size_t out_image(const depthwise_conv2d *d) { return (size_t)d->g.Ho * d->g.Wo * d->base.out_shape.d[3]; }

static size_t dw_workspace(const mf_layer *l, int N)
{
    const depthwise_conv2d *d = (const depthwise_conv2d *)l;
    mf_dw_window g = mf_dw_window_of(&d->o, &d->g);
    /* one kernel-gradient accumulator per unit of work (summed in unit order,
     * so the result does not depend on the threads); with an activation the
     * batch's dz, and swish's pre-activation */
    size_t ws = mf_dw_weight_scratch(&g, l->in_shape[0].d[3], N);
    if (d->o.activation != MF_ACT_LINEAR)
        ws += (mf_act_reads_input(d->o.activation) ? 2 : 1) * (size_t)N * out_image(d);
    return ws;
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
    mf_dw_window g = dw_window(d, ex);
    mf_dw_forward(out->data, in[0]->data, w, b, s->d[0], s->d[1], s->d[2], s->d[3], &g);
    if (ex->fuse_relu) /* the ReLU after the folded BatchNorm */
        clamp_k(out->data, mf_tensor_numel(out), ex->relu_max);
    if (d->o.activation != MF_ACT_LINEAR)
        mf_act_forward(out->data, out->data, (size_t)s->d[0] * d->g.Ho * d->g.Wo, out->shape.d[3], d->o.activation);
}

static void dw_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                        const mf_tensor *dout, mf_tensor *const *din)
{
    depthwise_conv2d *d = (depthwise_conv2d *)l;
    const mf_shape *s = &in[0]->shape;
    int N = s->d[0], CM = out->shape.d[3];
    size_t rows = (size_t)N * d->g.Ho * d->g.Wo;
    mf_dw_window g = dw_window(d, ex);
    const float *dy = dout->data;
    float *part = ex->ws;
    size_t part_floats = ex->ws_floats;
    if (d->o.activation != MF_ACT_LINEAR) { /* dz = act'(.) * dy, at the end of the workspace */
        int two = mf_act_reads_input(d->o.activation);
        float *dz = ex->ws + ex->ws_floats - rows * CM, *z = two ? dz - rows * CM : NULL;
        part_floats -= (two ? 2 : 1) * rows * CM;
        if (z) /* swish: the pre-activation, again */
            mf_dw_forward(z, in[0]->data, l->slot[d->kernel].data, d->bias >= 0 ? l->slot[d->bias].data : NULL, N,
                          s->d[1], s->d[2], s->d[3], &g);
        mf_act_backward(dz, z, out->data, dy, rows, CM, d->o.activation, 1);
        dy = dz;
    }
    if (ex->param_grads) {
        mf_dw_backward_weight(l->slot[d->kernel].grad, part, part_floats, in[0]->data, dy, N, s->d[1], s->d[2], s->d[3],
                              &g);
        if (d->bias >= 0)
            mf_bias_grad(l->slot[d->bias].grad, dy, rows, CM);
    }
    if (din[0])
        mf_dw_backward_input(din[0]->data, dy, l->slot[d->kernel].data, ex->din_first[0], N, s->d[1], s->d[2], s->d[3],
                             &g);
}

static void dw_args(const mf_layer *l, mf_layer_args *a) { mf_conv_options_args(&((const depthwise_conv2d *)l)->o, a); }

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
/* With a fused activation: backward reads the output too, and nothing after
 * it may be folded in (the BatchNorm would come after the activation). */
static const mf_layer_ops dw_act_ops = {
    .kind = "DepthwiseConv2D",
    .default_name = "depthwise_conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0 | MF_READS_OUT,
    .args = dw_args,
    .build = dw_build,
    .init = dw_init,
    .workspace = dw_workspace,
    .forward = dw_forward,
    .backward = dw_backward,
};

mf_layer *mf_depthwise_conv2d_ex(const char *name, const mf_conv_options *o)
{
    if (mf_conv_options_check("DepthwiseConv2D", o, 0) != MF_STATUS_OK)
        return NULL;
    depthwise_conv2d *d = (depthwise_conv2d *)mf_layer_alloc(o->activation == MF_ACT_LINEAR ? &dw_ops : &dw_act_ops,
                                                             sizeof(depthwise_conv2d), name);
    if (d) {
        d->o = *o;
        d->o.filters = 0;
        d->o.use_bias = o->use_bias != 0;
    }
    return (mf_layer *)d;
}

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
    /* any square kernel (not only mf_conv_options_check's Keras range 1..7) */
    depthwise_conv2d *d = (depthwise_conv2d *)mf_layer_alloc(&dw_ops, sizeof(depthwise_conv2d), name);
    if (d) {
        d->o = mf_conv_options_default();
        d->o.kernel_h = d->o.kernel_w = kernel;
        d->o.stride_h = d->o.stride_w = stride;
        d->o.padding = padding;
        d->o.use_bias = use_bias != 0;
    }
    return (mf_layer *)d;
}
