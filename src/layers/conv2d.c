/* conv2d.c: Keras Conv2D(filters, kernel_size=K, strides=S, padding, use_bias).
 *
 * Kernel (K,K,Cin,F) in Keras' HWIO layout, which read as a (K*K*Cin, F)
 * row-major matrix multiplies im2col rows directly. A 1x1 stride-1 conv over
 * NHWC is already a matrix (N*H*W, Cin), so it is one cblas_sgemm with no copy:
 * the expand and project layers of MobileNetV2 are all of that kind.
 * Init: kernel glorot_uniform (fan_in K*K*Cin, fan_out K*K*F), bias zeros. */
#include <omp.h>
#include <string.h>
#include "layer.h"
#include "conv_geom.h"
#include "../tensor/gemm.h"
#include "../tensor/im2col.h"

typedef struct conv2d {
    mf_layer base;
    int filters, K, S, use_bias;
    mf_padding padding;
    mf_conv_geom g;
    int kernel, bias; /* slot indices; bias -1 without bias */
} conv2d;

static int is_pointwise(const conv2d *c) { return c->K == 1 && c->S == 1; }

static mf_status conv2d_build(mf_layer *l)
{
    conv2d *c = (conv2d *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    MF_TRY(mf_conv_geometry(&c->g, s->d[1], s->d[2], c->K, c->S, c->padding));
    l->out_shape = mf_shape4(0, c->g.Ho, c->g.Wo, c->filters);
    c->kernel = mf_layer_reserve(l, "kernel", mf_shape4(c->K, c->K, s->d[3], c->filters), MF_PARAM_TRAINABLE);
    c->bias = c->use_bias ? mf_layer_reserve(l, "bias", mf_shape1(c->filters), MF_PARAM_TRAINABLE) : -1;
    return MF_STATUS_OK;
}

static void conv2d_init(mf_layer *l, mf_rng *rng)
{
    conv2d *c = (conv2d *)l;
    mf_slot *k = &l->slot[c->kernel];
    int KK = c->K * c->K;
    mf_init_glorot_uniform(k->data, k->numel, KK * k->shape.d[2], KK * c->filters, rng);
    if (c->bias >= 0)
        mf_init_const(l->slot[c->bias].data, l->slot[c->bias].numel, 0.0f);
}

/* cols and dcols of one image */
static size_t per_image(const conv2d *c, const mf_layer *l)
{
    return 2 * (size_t)c->g.Ho * c->g.Wo * c->K * c->K * l->in_shape[0].d[3];
}

static size_t conv2d_workspace(const mf_layer *l, int N)
{
    (void)N;
    const conv2d *c = (const conv2d *)l;
    if (is_pointwise(c))
        return 0;
    /* one image's buffers per thread: images are split over the threads */
    return per_image(c, l) * (size_t)omp_get_max_threads();
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

static const mf_layer_ops conv2d_ops = {
    .kind = "Conv2D",
    .default_name = "conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .folds_bn = 1,
    .build = conv2d_build,
    .init = conv2d_init,
    .workspace = conv2d_workspace,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
};

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
    conv2d *c = (conv2d *)mf_layer_alloc(&conv2d_ops, sizeof(conv2d), name);
    if (c) {
        c->filters = filters;
        c->K = kernel;
        c->S = stride;
        c->padding = padding;
        c->use_bias = use_bias != 0;
    }
    return (mf_layer *)c;
}
