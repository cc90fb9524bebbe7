/* separable_conv2d.c: Keras SeparableConv2D(filters, kernel_size, strides,
 * padding, dilation_rate, depth_multiplier, use_bias, activation): a
 * depthwise convolution (no bias) then a 1x1 convolution to `filters`, then
 * the bias and the activation. Weights as Keras keeps them: depthwise_kernel
 * (KH,KW,C,M), pointwise_kernel (1,1,C*M,F), bias (F).
 *
 * The depthwise result z (N,Ho,Wo,C*M) is not kept between forward and
 * backward: backward recomputes it into the workspace (KH*KW multiply-adds per
 * value, against the C*M*F of the 1x1 product), so the layer holds no more
 * activation memory than a Conv2D. The 1x1 product over NHWC is one GEMM
 * (N*Ho*Wo, C*M) x (C*M, F) with no copy.
 * Init: both kernels glorot_uniform (depthwise: fans KH*KW*C and KH*KW*M;
 * pointwise: C*M and F), bias zeros. */
#include <string.h>
#include "layer.h"
#include "conv_geom.h"
#include "depthwise.h"
#include "../tensor/gemm.h"

typedef struct separable_conv2d {
    mf_layer base;
    mf_conv_options o; /* as given */
    mf_conv_geom g;
    int dkernel, pkernel, bias; /* slot indices; bias -1 without bias */
} separable_conv2d;

static mf_status sep_build(mf_layer *l)
{
    separable_conv2d *p = (separable_conv2d *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    MF_TRY(mf_conv_geometry_ex(&p->g, s->d[1], s->d[2], p->o.kernel_h, p->o.kernel_w, p->o.stride_h, p->o.stride_w,
                               p->o.dilation_h, p->o.dilation_w, p->o.padding));
    l->out_shape = mf_shape4(0, p->g.Ho, p->g.Wo, p->o.filters);
    p->dkernel =
        mf_layer_reserve(l, "depthwise_kernel", mf_shape4(p->o.kernel_h, p->o.kernel_w, s->d[3], p->o.depth_multiplier),
                         MF_PARAM_TRAINABLE);
    p->pkernel = mf_layer_reserve(l, "pointwise_kernel", mf_shape4(1, 1, s->d[3] * p->o.depth_multiplier, p->o.filters),
                                  MF_PARAM_TRAINABLE);
    p->bias = p->o.use_bias ? mf_layer_reserve(l, "bias", mf_shape1(p->o.filters), MF_PARAM_TRAINABLE) : -1;
    return MF_STATUS_OK;
}

static void sep_init(mf_layer *l, mf_rng *rng)
{
    separable_conv2d *p = (separable_conv2d *)l;
    mf_slot *dk = &l->slot[p->dkernel], *pk = &l->slot[p->pkernel];
    int KK = p->o.kernel_h * p->o.kernel_w, CM = pk->shape.d[2];
    mf_init_glorot_uniform(dk->data, dk->numel, KK * dk->shape.d[2], KK * p->o.depth_multiplier, rng);
    mf_init_glorot_uniform(pk->data, pk->numel, CM, p->o.filters, rng);
    if (p->bias >= 0)
        mf_init_const(l->slot[p->bias].data, l->slot[p->bias].numel, 0.0f);
}

static mf_dw_window sep_window(const separable_conv2d *p) { return mf_dw_window_of(&p->o, &p->g); }

/* Output pixels of a batch of N. */
static size_t rows_of(const separable_conv2d *p, int N) { return (size_t)N * p->g.Ho * p->g.Wo; }

static size_t sep_workspace(const mf_layer *l, int N)
{
    const separable_conv2d *p = (const separable_conv2d *)l;
    mf_dw_window g = sep_window(p);
    size_t rows = rows_of(p, N), CM = (size_t)l->in_shape[0].d[3] * p->o.depth_multiplier, F = (size_t)p->o.filters;
    /* forward: z. backward: z, dz, the depthwise kernel-gradient scratch, and
     * with an activation g = act'(.) dy (and swish's pre-activation) */
    size_t ws = 2 * rows * CM + mf_dw_weight_scratch(&g, l->in_shape[0].d[3], N);
    if (p->o.activation != MF_ACT_LINEAR)
        ws += (mf_act_reads_input(p->o.activation) ? 2 : 1) * rows * F;
    return ws;
}

/* y (rows, F) += b, in place */
static void add_bias(float *restrict y, size_t rows, int F, const float *restrict b)
{
#pragma omp parallel for schedule(static) if (rows * F > 65536)
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * (size_t)F;
#pragma omp simd
        for (int f = 0; f < F; f++)
            yr[f] += b[f];
    }
}

/* y (rows, F) = z (rows, CM) Wp (CM, F) + b: the pre-activation */
static void pointwise(const separable_conv2d *p, float *y, const float *z, size_t rows, int CM)
{
    const mf_layer *l = &p->base;
    mf_sgemm(0, 0, (int)rows, p->o.filters, CM, 1.0f, z, CM, l->slot[p->pkernel].data, p->o.filters, 0.0f, y,
             p->o.filters);
    if (p->bias >= 0)
        add_bias(y, rows, p->o.filters, l->slot[p->bias].data);
}

static void sep_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    separable_conv2d *p = (separable_conv2d *)l;
    const mf_shape *s = &in[0]->shape;
    int N = s->d[0], C = s->d[3], CM = C * p->o.depth_multiplier;
    size_t rows = rows_of(p, N);
    mf_dw_window g = sep_window(p);
    float *z = ex->ws;
    mf_dw_forward(z, in[0]->data, l->slot[p->dkernel].data, NULL, N, s->d[1], s->d[2], C, &g);
    pointwise(p, out->data, z, rows, CM);
    if (p->o.activation != MF_ACT_LINEAR)
        mf_act_forward(out->data, out->data, rows, p->o.filters, p->o.activation);
}

static void sep_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                         const mf_tensor *dout, mf_tensor *const *din)
{
    separable_conv2d *p = (separable_conv2d *)l;
    const mf_shape *s = &in[0]->shape;
    int N = s->d[0], C = s->d[3], CM = C * p->o.depth_multiplier, F = p->o.filters;
    size_t rows = rows_of(p, N);
    mf_dw_window g = sep_window(p);
    /* workspace: z | dz | [gy | pre] | depthwise scratch (the rest) */
    float *z = ex->ws, *dz = z + rows * CM, *rest = dz + rows * CM;
    const float *dk = l->slot[p->dkernel].data, *pk = l->slot[p->pkernel].data;
    mf_dw_forward(z, in[0]->data, dk, NULL, N, s->d[1], s->d[2], C, &g);
    const float *gy = dout->data;
    if (p->o.activation != MF_ACT_LINEAR) { /* gy = act'(.) * dy */
        float *buf = rest, *pre = NULL;
        rest += rows * F;
        if (mf_act_reads_input(p->o.activation)) { /* swish: the pre-activation, again */
            pre = rest;
            rest += rows * F;
            pointwise(p, pre, z, rows, CM);
        }
        mf_act_backward(buf, pre, out->data, dout->data, rows, F, p->o.activation, 1);
        gy = buf;
    }
    if (ex->param_grads) { /* dWp (CM,F) += z^T (CM,rows) . gy (rows,F); db += column sums of gy */
        mf_sgemm(1, 0, CM, F, (int)rows, 1.0f, z, CM, gy, F, 1.0f, l->slot[p->pkernel].grad, F);
        if (p->bias >= 0)
            mf_bias_grad(l->slot[p->bias].grad, gy, rows, F);
    }
    /* dz (rows,CM) = gy (rows,F) . Wp^T (F,CM) */
    mf_sgemm(0, 1, (int)rows, CM, F, 1.0f, gy, F, pk, F, 0.0f, dz, CM);
    if (ex->param_grads)
        mf_dw_backward_weight(l->slot[p->dkernel].grad, rest, ex->ws_floats - (size_t)(rest - ex->ws), in[0]->data, dz,
                              N, s->d[1], s->d[2], C, &g);
    if (din[0])
        mf_dw_backward_input(din[0]->data, dz, dk, ex->din_first[0], N, s->d[1], s->d[2], C, &g);
}

static void sep_args(const mf_layer *l, mf_layer_args *a)
{
    mf_conv_options_args(&((const separable_conv2d *)l)->o, a);
}

static const mf_layer_ops sep_ops = {
    .kind = "SeparableConv2D",
    .default_name = "separable_conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .args = sep_args,
    .build = sep_build,
    .init = sep_init,
    .workspace = sep_workspace,
    .forward = sep_forward,
    .backward = sep_backward,
};
/* With a fused activation backward reads the output too. */
static const mf_layer_ops sep_act_ops = {
    .kind = "SeparableConv2D",
    .default_name = "separable_conv2d",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0 | MF_READS_OUT,
    .args = sep_args,
    .build = sep_build,
    .init = sep_init,
    .workspace = sep_workspace,
    .forward = sep_forward,
    .backward = sep_backward,
};

mf_layer *mf_separable_conv2d(const char *name, const mf_conv_options *o)
{
    if (mf_conv_options_check("SeparableConv2D", o, 1) != MF_STATUS_OK)
        return NULL;
    separable_conv2d *p = (separable_conv2d *)mf_layer_alloc(o->activation == MF_ACT_LINEAR ? &sep_ops : &sep_act_ops,
                                                             sizeof(separable_conv2d), name);
    if (p) {
        p->o = *o;
        p->o.use_bias = o->use_bias != 0;
    }
    return (mf_layer *)p;
}
