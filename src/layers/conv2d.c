/* conv2d.c: Keras Conv2D(filters, kernel_size, strides, padding,
 * dilation_rate, use_bias, activation).
 *
 * Kernel (K,K,Cin,F) in Keras' HWIO layout, which read as a (K*K*Cin, F)
 * row-major matrix multiplies im2col rows directly. A 1x1 stride-1 conv over
 * NHWC is already a matrix (N*H*W, Cin), so it is one cblas_sgemm with no copy:
 * the expand and project layers of MobileNetV2 are all of that kind.
 * Init: kernel glorot_uniform (fan_in KH*KW*Cin, fan_out KH*KW*F), bias zeros.
 *
 * Two paths. Square kernels with equal strides, no dilation and no activation
 * (every Conv2D of MobileNetV2 and the small CNN) take the tuned one: threads
 * over images in forward and input gradient, the 1x1 GEMM without copies, the
 * BatchNorm folding of the memory plan. Everything else (non-square kernels or
 * strides, dilation, a fused activation) takes the general one: the same
 * im2col + GEMM with a general window (mf_im2col_ex), images one at a time in
 * backward. A fused activation is applied after the bias; its derivative is
 * taken from the output (swish recomputes the pre-activation from the input),
 * so such a layer keeps its output for backward and folds no BatchNorm (the
 * BatchNorm would come after the activation). */
#include <omp.h>
#include <string.h>
#include "layer.h"
#include "conv_geom.h"
#include "../tensor/gemm.h"
#include "../tensor/im2col.h"

typedef struct conv2d {
    mf_layer base;
    int filters, K, S, use_bias; /* K, S: the tuned path's square kernel and stride */
    int KH, KW, SH, SW, DH, DW; /* the general window */
    mf_activation act;
    int general; /* 1: the general path (see the top of the file) */
    mf_padding padding;
    mf_conv_geom g;
    int kernel, bias; /* slot indices; bias -1 without bias */
} conv2d;

static int is_pointwise(const conv2d *c) { return !c->general && c->K == 1 && c->S == 1; }

static mf_status conv2d_build(mf_layer *l)
{
    conv2d *c = (conv2d *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    MF_TRY(mf_conv_geometry_ex(&c->g, s->d[1], s->d[2], c->KH, c->KW, c->SH, c->SW, c->DH, c->DW, c->padding));
    l->out_shape = mf_shape4(0, c->g.Ho, c->g.Wo, c->filters);
    c->kernel = mf_layer_reserve(l, "kernel", mf_shape4(c->KH, c->KW, s->d[3], c->filters), MF_PARAM_TRAINABLE);
    c->bias = c->use_bias ? mf_layer_reserve(l, "bias", mf_shape1(c->filters), MF_PARAM_TRAINABLE) : -1;
    return MF_STATUS_OK;
}

static void conv2d_init(mf_layer *l, mf_rng *rng)
{
    conv2d *c = (conv2d *)l;
    mf_slot *k = &l->slot[c->kernel];
    int KK = c->KH * c->KW;
    mf_init_glorot_uniform(k->data, k->numel, KK * k->shape.d[2], KK * c->filters, rng);
    if (c->bias >= 0)
        mf_init_const(l->slot[c->bias].data, l->slot[c->bias].numel, 0.0f);
}

/* cols and dcols of one image */
static size_t per_image(const conv2d *c, const mf_layer *l)
{
    return 2 * (size_t)c->g.Ho * c->g.Wo * c->KH * c->KW * l->in_shape[0].d[3];
}

static size_t conv2d_workspace(const mf_layer *l, int N)
{
    (void)N;
    const conv2d *c = (const conv2d *)l;
    if (is_pointwise(c))
        return 0;
    /* one image's buffers per thread: images are split over the threads; the
     * general backward also holds one image's dz and z (P*F each) */
    size_t ws = per_image(c, l) * (size_t)omp_get_max_threads();
    size_t gen = per_image(c, l) + 2 * (size_t)c->g.Ho * c->g.Wo * c->filters;
    return c->general && gen > ws ? gen : ws;
}

/* Threads the workspace has room for (the thread count may have grown since). */
static int ws_threads(const conv2d *c, const mf_layer *l, const mf_exec *ex, int N)
{
    int nt = omp_get_max_threads();
    size_t per = per_image(c, l);
    if ((size_t)nt * per > ex->ws_floats)
        nt = (int)(ex->ws_floats / per);
    if (nt > N)
        nt = N;
    MF_ASSERT(nt >= 1);
    return nt;
}

/* y (rows, F) = clamp(y + b) in place: b (F) may be NULL, the clamp to
 * [0, hi] only with `relu`. The epilogue of a product, run on each block of
 * rows right after the block's product, while it is in cache. */
static void epilogue(float *restrict y, size_t rows, int F, const float *restrict b, int relu, float hi)
{
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * (size_t)F;
        if (b) {
#pragma omp simd
            for (int f = 0; f < F; f++)
                yr[f] += b[f];
        }
        if (relu) {
#pragma omp simd
            for (int f = 0; f < F; f++) {
                float v = yr[f] < 0.0f ? 0.0f : yr[f]; /* NaN stays NaN */
                yr[f] = v > hi ? hi : v;
            }
        }
    }
}

/* The general path (see the top of the file). inp: (N,H,W,Cin)  w: (KH*KW*Cin, F)
 * b: (F) or NULL  y: (N,Ho,Wo,F) */
static void general_forward(conv2d *c, const mf_exec *ex, const mf_tensor *in, const float *w, const float *b, float *y)
{
    const mf_layer *l = &c->base;
    int N = in->shape.d[0], H = in->shape.d[1], W = in->shape.d[2], Cin = in->shape.d[3];
    int F = c->filters, Ho = c->g.Ho, Wo = c->g.Wo, KKC = c->KH * c->KW * Cin;
    size_t P = (size_t)Ho * Wo;
    int nt = ws_threads(c, l, ex, N);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < N; n++) {
        float *cols = ex->ws + (size_t)omp_get_thread_num() * per_image(c, l);
        float *yn = y + (size_t)n * P * F;
        mf_im2col_ex(cols, in->data + (size_t)n * H * W * Cin, H, W, Cin, c->KH, c->KW, c->SH, c->SW, c->DH, c->DW,
                     c->g.pad_top + ex->pad_top, c->g.pad_left + ex->pad_left, Ho, Wo);
        mf_sgemm(0, 0, (int)P, F, KKC, 1.0f, cols, KKC, w, F, 0.0f, yn, F);
        if (b || ex->fuse_relu)
            epilogue(yn, P, F, b, ex->fuse_relu, ex->relu_max);
        if (c->act != MF_ACT_LINEAR)
            mf_act_forward(yn, yn, P, F, c->act);
    }
}

/* Images one at a time: dz_n = act'(.) * dy_n, dW += cols^T dz_n, db += the
 * column sums of dz_n (formed over the batch, added once), dx_n = col2im(dz_n W^T). */
static void general_backward(conv2d *c, const mf_exec *ex, const mf_tensor *in, const mf_tensor *out,
                             const mf_tensor *dout, mf_tensor *din)
{
    mf_layer *l = &c->base;
    int N = in->shape.d[0], H = in->shape.d[1], W = in->shape.d[2], Cin = in->shape.d[3];
    int F = c->filters, Ho = c->g.Ho, Wo = c->g.Wo, KKC = c->KH * c->KW * Cin;
    size_t P = (size_t)Ho * Wo;
    const float *w = l->slot[c->kernel].data;
    const float *b = c->bias >= 0 ? l->slot[c->bias].data : NULL;
    float *cols = ex->ws, *dcols = cols + P * KKC, *dz = dcols + P * KKC, *z = dz + P * F;
    float *db = ex->param_grads && c->bias >= 0 ? mf_alloc((size_t)F * sizeof(float)) : NULL;
    for (int n = 0; n < N; n++) {
        const float *dyn = dout->data + (size_t)n * P * F;
        mf_im2col_ex(cols, in->data + (size_t)n * H * W * Cin, H, W, Cin, c->KH, c->KW, c->SH, c->SW, c->DH, c->DW,
                     c->g.pad_top, c->g.pad_left, Ho, Wo);
        const float *g = dyn;
        if (c->act != MF_ACT_LINEAR) {
            if (mf_act_reads_input(c->act)) { /* the pre-activation, again */
                mf_sgemm(0, 0, (int)P, F, KKC, 1.0f, cols, KKC, w, F, 0.0f, z, F);
                epilogue(z, P, F, b, 0, 0.0f);
            }
            mf_act_backward(dz, z, out->data + (size_t)n * P * F, dyn, P, F, c->act, 1);
            g = dz;
        }
        if (ex->param_grads) { /* dW (KKC,F) += cols^T (KKC,P) . g (P,F) */
            mf_sgemm(1, 0, KKC, F, (int)P, 1.0f, cols, KKC, g, F, 1.0f, l->slot[c->kernel].grad, F);
            if (db) {
                float *part = dcols; /* free until the input gradient below */
                for (int f = 0; f < F; f++)
                    part[f] = 0.0f;
                mf_bias_grad(part, g, P, F);
                for (int f = 0; f < F; f++)
                    db[f] = n ? db[f] + part[f] : part[f];
            }
        }
        if (din) { /* dcols (P,KKC) = g (P,F) . W^T (F,KKC), folded back onto dx */
            mf_sgemm(0, 1, (int)P, KKC, F, 1.0f, g, F, w, F, 0.0f, dcols, KKC);
            float *dxn = din->data + (size_t)n * H * W * Cin;
            if (ex->din_first[0])
                memset(dxn, 0, (size_t)H * W * Cin * sizeof(float));
            mf_col2im_add_ex(dxn, dcols, H, W, Cin, c->KH, c->KW, c->SH, c->SW, c->DH, c->DW, c->g.pad_top,
                             c->g.pad_left, Ho, Wo);
        }
    }
    if (db) {
        float *gb = l->slot[c->bias].grad;
        for (int f = 0; f < F; f++)
            gb[f] += db[f];
        mf_free(db);
    }
}

/* inp: (N,H,W,Cin)  W: (K*K*Cin, F)  b: (F)  out: (N,Ho,Wo,F)
 * With a BatchNorm folded in (ex->fold_w/fold_b) and its ReLU (ex->fuse_relu)
 * the output is clamp(inp * W' + b'). */
static void conv2d_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    conv2d *c = (conv2d *)l;
    int N = in[0]->shape.d[0], H = in[0]->shape.d[1], W = in[0]->shape.d[2], Cin = in[0]->shape.d[3];
    int F = c->filters, Ho = c->g.Ho, Wo = c->g.Wo, KKC = c->K * c->K * Cin;
    const float *w = ex->fold_w ? ex->fold_w : l->slot[c->kernel].data;
    const float *b = ex->fold_b ? ex->fold_b : c->bias >= 0 ? l->slot[c->bias].data : NULL;
    int relu = ex->fuse_relu;
    float *y = out->data;
    size_t P = (size_t)Ho * Wo; /* output pixels per image */
    if (is_pointwise(c)) {
        size_t rows = (size_t)N * P;
        if (!b && !relu) {
            mf_sgemm(0, 0, (int)rows, F, Cin, 1.0f, in[0]->data, Cin, w, F, 0.0f, y, F);
            return;
        }
        /* blocks of ~256 KiB of output over the threads, each block's product
         * followed by its epilogue (mf_sgemm runs single-threaded in here) */
        size_t rb = (size_t)(65536 / F) < 64 ? 64 : (size_t)(65536 / F);
        long nb = (long)((rows + rb - 1) / rb);
#pragma omp parallel for schedule(static)
        for (long k = 0; k < nb; k++) {
            size_t r0 = (size_t)k * rb, n = rows - r0 < rb ? rows - r0 : rb;
            mf_sgemm(0, 0, (int)n, F, Cin, 1.0f, in[0]->data + r0 * Cin, Cin, w, F, 0.0f, y + r0 * F, F);
            epilogue(y + r0 * F, n, F, b, relu, ex->relu_max);
        }
        return;
    }
    if (c->general) {
        general_forward(c, ex, in[0], w, b, y);
        return;
    }
    /* images over threads, each with its own cols buffer and a single-threaded
     * product (mf_sgemm does not split inside a parallel region) */
    int nt = ws_threads(c, l, ex, N);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < N; n++) {
        float *cols = ex->ws + (size_t)omp_get_thread_num() * per_image(c, l);
        mf_im2col(cols, in[0]->data + (size_t)n * H * W * Cin, H, W, Cin, c->K, c->S, c->g.pad_top, c->g.pad_left, Ho,
                  Wo);
        mf_sgemm(0, 0, (int)P, F, KKC, 1.0f, cols, KKC, w, F, 0.0f, y + (size_t)n * P * F, F);
        if (b || relu)
            epilogue(y + (size_t)n * P * F, P, F, b, relu, ex->relu_max);
    }
}

static void conv2d_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                            const mf_tensor *dout, mf_tensor *const *din)
{
    (void)out;
    conv2d *c = (conv2d *)l;
    int N = in[0]->shape.d[0], H = in[0]->shape.d[1], W = in[0]->shape.d[2], Cin = in[0]->shape.d[3];
    int F = c->filters, Ho = c->g.Ho, Wo = c->g.Wo, KKC = c->K * c->K * Cin;
    const float *w = l->slot[c->kernel].data;
    float *dw = l->slot[c->kernel].grad;
    const float *dy = dout->data;
    size_t P = (size_t)Ho * Wo;
    if (c->general) {
        general_backward(c, ex, in[0], out, dout, din[0]);
        return;
    }
    if (ex->param_grads && c->bias >= 0) {
        mf_bias_grad(l->slot[c->bias].grad, dy, (size_t)N * P, F);
    }
    if (is_pointwise(c)) {
        int M = (int)((size_t)N * P);
        if (mf_sgemm_pointwise_backward(M, Cin, F, in[0]->data, dy, w, din[0] ? din[0]->data : NULL, ex->din_first[0],
                                        ex->param_grads ? dw : NULL))
            return;
        if (ex->param_grads) /* dW (Cin,F) += x^T (Cin,M) . dy (M,F) */
            mf_sgemm(1, 0, Cin, F, M, 1.0f, in[0]->data, Cin, dy, F, 1.0f, dw, F);
        if (din[0]) /* dx (M,Cin) (+)= dy (M,F) . W^T (F,Cin) */
            mf_sgemm(0, 1, M, Cin, F, 1.0f, dy, F, w, F, ex->din_first[0] ? 0.0f : 1.0f, din[0]->data, Cin);
        return;
    }
    /* The input gradient is per image: images over threads. The kernel
     * gradient sums over images: one image at a time, each product split over
     * the threads by mf_sgemm, so the sum's order (and result) is fixed. */
    if (din[0]) {
        int nt = ws_threads(c, l, ex, N);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int n = 0; n < N; n++) {
            float *dcols = ex->ws + (size_t)omp_get_thread_num() * per_image(c, l) + P * KKC;
            /* dcols (P,KKC) = dy_n (P,F) . W^T (F,KKC), folded back onto dx */
            mf_sgemm(0, 1, (int)P, KKC, F, 1.0f, dy + (size_t)n * P * F, F, w, F, 0.0f, dcols, KKC);
            float *dxn = din[0]->data + (size_t)n * H * W * Cin;
            if (ex->din_first[0]) /* col2im adds: start this image from zero */
                memset(dxn, 0, (size_t)H * W * Cin * sizeof(float));
            mf_col2im_add(dxn, dcols, H, W, Cin, c->K, c->S, c->g.pad_top, c->g.pad_left, Ho, Wo);
        }
    }
    if (ex->param_grads) {
        float *cols = ex->ws;
        for (int n = 0; n < N; n++) {
            mf_im2col(cols, in[0]->data + (size_t)n * H * W * Cin, H, W, Cin, c->K, c->S, c->g.pad_top, c->g.pad_left,
                      Ho, Wo);
            /* dW (KKC,F) += cols^T (KKC,P) . dy_n (P,F) */
            mf_sgemm(1, 0, KKC, F, (int)P, 1.0f, cols, KKC, dy + (size_t)n * P * F, F, 1.0f, dw, F);
        }
    }
}

static void conv2d_args(const mf_layer *l, mf_layer_args *a)
{
    const conv2d *c = (const conv2d *)l;
    mf_conv_options o = {.filters = c->filters,
                         .kernel_h = c->KH,
                         .kernel_w = c->KW,
                         .stride_h = c->SH,
                         .stride_w = c->SW,
                         .dilation_h = c->DH,
                         .dilation_w = c->DW,
                         .padding = c->padding,
                         .use_bias = c->use_bias,
                         .activation = c->act}; /* no depth_multiplier: 0 */
    mf_conv_options_args(&o, a);
}

static const mf_layer_ops conv2d_ops = {
    .kind = "Conv2D",
    .default_name = "conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .folds_bn = 1,
    .args = conv2d_args,
    .build = conv2d_build,
    .init = conv2d_init,
    .workspace = conv2d_workspace,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
};
/* With a fused activation: backward reads the output too, and no BatchNorm
 * after it may be folded into the kernel. */
static const mf_layer_ops conv2d_act_ops = {
    .kind = "Conv2D",
    .default_name = "conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0 | MF_READS_OUT,
    .args = conv2d_args,
    .build = conv2d_build,
    .init = conv2d_init,
    .workspace = conv2d_workspace,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
};

mf_conv_options mf_conv_options_default(void)
{
    mf_conv_options o;
    memset(&o, 0, sizeof o);
    o.filters = 0; /* Conv2D and SeparableConv2D: must be set */
    o.kernel_h = o.kernel_w = 3;
    o.stride_h = o.stride_w = 1;
    o.dilation_h = o.dilation_w = 1;
    o.padding = MF_PADDING_VALID; /* Keras' default */
    o.use_bias = 1;
    o.activation = MF_ACT_LINEAR;
    o.depth_multiplier = 1;
    return o;
}

mf_status mf_conv_options_check(const char *kind, const mf_conv_options *o, int need_filters)
{
    if (!o)
        return mf_fail(MF_STATUS_INVALID, "%s: options must not be NULL (start from mf_conv_options_default())", kind);
    if (need_filters && o->filters <= 0)
        return mf_fail(MF_STATUS_INVALID, "%s: filters must be > 0, got %d", kind, o->filters);
    if (o->kernel_h < 1 || o->kernel_h > 7 || o->kernel_w < 1 || o->kernel_w > 7)
        return mf_fail(MF_STATUS_INVALID, "%s: kernel size must be 1..7 on each axis, got (%d, %d)", kind, o->kernel_h,
                       o->kernel_w);
    if (o->stride_h < 1 || o->stride_w < 1)
        return mf_fail(MF_STATUS_INVALID, "%s: strides must be >= 1, got (%d, %d)", kind, o->stride_h, o->stride_w);
    if (o->dilation_h < 1 || o->dilation_w < 1)
        return mf_fail(MF_STATUS_INVALID, "%s: dilation_rate must be >= 1, got (%d, %d)", kind, o->dilation_h,
                       o->dilation_w);
    if ((o->dilation_h > 1 || o->dilation_w > 1) && (o->stride_h > 1 || o->stride_w > 1))
        return mf_fail(MF_STATUS_INVALID,
                       "%s: strides (%d, %d) with dilation_rate (%d, %d): Keras allows strides > 1 only without "
                       "dilation",
                       kind, o->stride_h, o->stride_w, o->dilation_h, o->dilation_w);
    if (o->padding != MF_PADDING_SAME && o->padding != MF_PADDING_VALID)
        return mf_fail(MF_STATUS_INVALID, "%s: padding must be MF_PADDING_SAME or MF_PADDING_VALID", kind);
    if (!mf_activation_valid((int)o->activation))
        return mf_fail(MF_STATUS_INVALID, "%s: unknown activation %d (see mf_activation)", kind, (int)o->activation);
    if (o->depth_multiplier < 1 || o->depth_multiplier > 4096)
        return mf_fail(MF_STATUS_INVALID, "%s: depth_multiplier must be 1..4096, got %d", kind, o->depth_multiplier);
    return MF_STATUS_OK;
}

void mf_conv_options_args(const mf_conv_options *o, mf_layer_args *a)
{
    a->filters = o->filters;
    a->kernel_h = o->kernel_h;
    a->kernel_w = o->kernel_w;
    a->stride_h = o->stride_h;
    a->stride_w = o->stride_w;
    a->dilation_h = o->dilation_h;
    a->dilation_w = o->dilation_w;
    a->depth_multiplier = o->depth_multiplier;
    a->padding = o->padding;
    a->use_bias = o->use_bias;
    a->activation = o->activation;
}

mf_layer *mf_conv2d_ex(const char *name, const mf_conv_options *o)
{
    if (mf_conv_options_check("Conv2D", o, 1) != MF_STATUS_OK)
        return NULL;
    conv2d *c =
        (conv2d *)mf_layer_alloc(o->activation == MF_ACT_LINEAR ? &conv2d_ops : &conv2d_act_ops, sizeof(conv2d), name);
    if (c) {
        c->filters = o->filters;
        c->KH = o->kernel_h;
        c->KW = o->kernel_w;
        c->SH = o->stride_h;
        c->SW = o->stride_w;
        c->DH = o->dilation_h;
        c->DW = o->dilation_w;
        c->K = o->kernel_h;
        c->S = o->stride_h;
        c->padding = o->padding;
        c->use_bias = o->use_bias != 0;
        c->act = o->activation;
        c->general = c->KH != c->KW || c->SH != c->SW || c->DH > 1 || c->DW > 1 || c->act != MF_ACT_LINEAR;
    }
    return (mf_layer *)c;
}

mf_layer *mf_conv2d(const char *name, int filters, int kernel, int stride, mf_padding padding, int use_bias)
{
    if (filters <= 0 || kernel <= 0 || stride <= 0) {
        mf_fail(MF_STATUS_INVALID, "Conv2D: filters, kernel and stride must be > 0, got %d, %d, %d", filters, kernel,
                stride);
        return NULL;
    }
    if (padding != MF_PADDING_SAME && padding != MF_PADDING_VALID) {
        mf_fail(MF_STATUS_INVALID, "Conv2D: padding must be MF_PADDING_SAME or MF_PADDING_VALID");
        return NULL;
    }
    /* the tuned path takes any square kernel (not only 1..7): not through
     * mf_conv2d_ex's Keras-range check */
    conv2d *c = (conv2d *)mf_layer_alloc(&conv2d_ops, sizeof(conv2d), name);
    if (c) {
        c->filters = filters;
        c->K = c->KH = c->KW = kernel;
        c->S = c->SH = c->SW = stride;
        c->DH = c->DW = 1;
        c->padding = padding;
        c->use_bias = use_bias != 0;
        c->act = MF_ACT_LINEAR;
    }
    return (mf_layer *)c;
}
