/* grad_check.c: finite-difference gradient checks of every layer (ggml's
 * test-grad0 idea, one CTest per named case: `grad_check conv2d.k3_s2_same_odd`).
 *
 * For a case, a model is built around one layer (or a small block), its
 * trainable weights are perturbed away from their init (so zero biases and unit
 * gammas cannot hide a mix-up), and the scalar loss is
 *     L = sum(out * R),  R fixed and random,
 * which, unlike sum(out), catches gradients that are right up to a permutation.
 * The analytic gradient (mf_model_backward with dout = R) of the input and of
 * every trainable weight tensor is compared with central differences
 *     (L(v + h) - L(v - h)) / 2h,  L accumulated in double,
 * on every element of small tensors and on MAX_PROBES random elements of large
 * ones. Error = ||a - n|| / max(||a|| + ||n||, 1e-3) over the probed elements of
 * each tensor (see probe()); each case documents its tolerance. The forward pass is float32, so the tolerances are float ones:
 * rounding in L is ~1e-7 * |L|, divided by 2h = 2e-2.
 * Inputs of ReLU cases are kept 3h away from the kinks at 0 and 6, and dropout
 * draws the same mask for every probe (the rng is reseeded before each forward).
 *
 * Cases tagged `sabotage` wrap a real layer with a deliberately wrong backward;
 * they pass only if this harness detects the error (run with --expect-fail):
 * the proof that the harness can fail. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "layers/layer.h"

#define MAX_PROBES 48
#define H_STEP 1e-2 /* default; a case may set its own */

typedef int (*build_fn)(mf_model *m, int x);

typedef struct grad_case {
    const char *name;
    int N; /* batch */
    mf_shape in; /* input, batch 0 */
    build_fn build;
    mf_mode mode;
    double tol; /* max relative error */
    int relu_input; /* keep inputs away from ReLU/ReLU6 kinks, spread over [-8, 8] */
    int sabotage; /* wrapped with a wrong backward: must be detected */
    void (*prepare)(mf_model *m, mf_rng *r); /* optional: freeze, random moving stats */
    double h; /* finite-difference step, 0 = H_STEP */
    int distinct; /* max poolings: inputs a shuffled grid 5h apart, so no probe changes a window's winner */
} grad_case;

/* ---- builders ---------------------------------------------------------- */
#define ONE(fn, expr) \
    static int fn(mf_model *m, int x) { return mf_model_add(m, (expr), x); }
ONE(conv_k1_s1_valid_bias, mf_conv2d(NULL, 5, 1, 1, MF_PADDING_VALID, 1))
ONE(conv_k1_s2_same_odd, mf_conv2d(NULL, 4, 1, 2, MF_PADDING_SAME, 0))
ONE(conv_k3_s1_same_bias, mf_conv2d(NULL, 4, 3, 1, MF_PADDING_SAME, 1))
ONE(conv_k3_s2_same_odd, mf_conv2d(NULL, 4, 3, 2, MF_PADDING_SAME, 0))
ONE(conv_k3_s2_same_even, mf_conv2d(NULL, 3, 3, 2, MF_PADDING_SAME, 1))
ONE(conv_k3_s2_valid_even, mf_conv2d(NULL, 4, 3, 2, MF_PADDING_VALID, 0))
ONE(conv_k3_s1_valid_odd, mf_conv2d(NULL, 3, 3, 1, MF_PADDING_VALID, 1))
ONE(dw_k3_s1_same, mf_depthwise_conv2d(NULL, 3, 1, MF_PADDING_SAME, 0))
ONE(dw_k3_s2_same_odd, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_SAME, 0))
ONE(dw_k3_s2_valid_even, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_VALID, 0))
ONE(dw_k3_s1_valid_bias, mf_depthwise_conv2d(NULL, 3, 1, MF_PADDING_VALID, 1))
ONE(dw_k5_s1_same_bias, mf_depthwise_conv2d(NULL, 5, 1, MF_PADDING_SAME, 1))
ONE(dw_k3_s3_same, mf_depthwise_conv2d(NULL, 3, 3, MF_PADDING_SAME, 0))
ONE(bn, mf_batchnorm(NULL, 0.99f, 1e-3f))
ONE(relu_plain, mf_relu(NULL, 0.0f))
ONE(relu6, mf_relu(NULL, 6.0f))
ONE(zp_0101, mf_zero_pad2d(NULL, 0, 1, 0, 1))
ONE(zp_2312, mf_zero_pad2d(NULL, 2, 3, 1, 2))
ONE(gap, mf_global_avg_pool2d(NULL))
ONE(dropout, mf_dropout(NULL, 0.3f))
ONE(dense_bias, mf_dense(NULL, 4, 1))
ONE(dense_nobias, mf_dense(NULL, 3, 0))

ONE(act_linear, mf_activation_layer(NULL, MF_ACT_LINEAR))
ONE(act_relu, mf_activation_layer(NULL, MF_ACT_RELU))
ONE(act_relu6, mf_activation_layer(NULL, MF_ACT_RELU6))
ONE(act_sigmoid, mf_activation_layer(NULL, MF_ACT_SIGMOID))
ONE(act_tanh, mf_activation_layer(NULL, MF_ACT_TANH))
ONE(act_softmax, mf_activation_layer(NULL, MF_ACT_SOFTMAX))
ONE(act_swish, mf_activation_layer(NULL, MF_ACT_SWISH))
ONE(act_hard_sigmoid, mf_activation_layer(NULL, MF_ACT_HARD_SIGMOID))
ONE(mp_p2_s2_valid, mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID))
ONE(mp_p3_s2_same, mf_max_pool2d(NULL, 3, 3, 2, 2, MF_PADDING_SAME))
ONE(mp_p2x3_s1x2_same, mf_max_pool2d(NULL, 2, 3, 1, 2, MF_PADDING_SAME))
ONE(ap_p2_s2_valid, mf_avg_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID))
ONE(ap_p3_s2_same, mf_avg_pool2d(NULL, 3, 3, 2, 2, MF_PADDING_SAME))
ONE(ap_p3x2_s1_same, mf_avg_pool2d(NULL, 3, 2, 1, 1, MF_PADDING_SAME))
ONE(gmp, mf_global_max_pool2d(NULL))
ONE(rescale, mf_rescaling(NULL, -1.5f, 0.25f))

/* The convolutions' Keras options: F filters (Conv2D, SeparableConv2D; 0 for
 * DepthwiseConv2D), depth multiplier M */
static mf_conv_options conv_opts(int F, int M, int kh, int kw, int sh, int sw, int dh, int dw, mf_padding pad, int bias,
                                 mf_activation act)
{
    mf_conv_options o = mf_conv_options_default();
    o.filters = F;
    o.depth_multiplier = M;
    o.kernel_h = kh;
    o.kernel_w = kw;
    o.stride_h = sh;
    o.stride_w = sw;
    o.dilation_h = dh;
    o.dilation_w = dw;
    o.padding = pad;
    o.use_bias = bias;
    o.activation = act;
    return o;
}
/* Conv2D with Keras' other arguments (the general path) */
static mf_layer *conv_ex(int F, int kh, int kw, int sh, int sw, int dh, int dw, mf_padding pad, int bias,
                         mf_activation act)
{
    mf_conv_options o = conv_opts(F, 1, kh, kw, sh, sw, dh, dw, pad, bias, act);
    return mf_conv2d_ex(NULL, &o);
}
ONE(conv_k3x5_s1_same_bias, conv_ex(3, 3, 5, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_LINEAR))
ONE(conv_k2x3_s2x1_valid, conv_ex(4, 2, 3, 2, 1, 1, 1, MF_PADDING_VALID, 0, MF_ACT_LINEAR))
ONE(conv_k3_d2_same, conv_ex(3, 3, 3, 1, 1, 2, 2, MF_PADDING_SAME, 1, MF_ACT_LINEAR))
ONE(conv_k3_d2x1_valid_sigmoid, conv_ex(3, 3, 3, 1, 1, 2, 1, MF_PADDING_VALID, 1, MF_ACT_SIGMOID))
ONE(conv_k5_s1_same_tanh, conv_ex(2, 5, 5, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_TANH))
ONE(conv_k7_s2_same_swish, conv_ex(3, 7, 7, 2, 2, 1, 1, MF_PADDING_SAME, 1, MF_ACT_SWISH))
ONE(conv_k1x3_softmax, conv_ex(4, 1, 3, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_SOFTMAX))
ONE(conv_k3_s2_same_relu6, conv_ex(3, 3, 3, 2, 2, 1, 1, MF_PADDING_SAME, 1, MF_ACT_RELU6))
/* DepthwiseConv2D (mf_depthwise_conv2d_ex) and SeparableConv2D: the same
 * options, and the depth multiplier M */
static mf_layer *dw_ex(int sep_filters, int M, int kh, int kw, int sh, int sw, int dh, int dw, mf_padding pad, int bias,
                       mf_activation act)
{
    mf_conv_options o = conv_opts(sep_filters, M, kh, kw, sh, sw, dh, dw, pad, bias, act);
    return sep_filters ? mf_separable_conv2d(NULL, &o) : mf_depthwise_conv2d_ex(NULL, &o);
}
ONE(dw_k3x5_s1_same_m2, dw_ex(0, 2, 3, 5, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_LINEAR))
ONE(dw_k2x3_s2x1_valid_m3, dw_ex(0, 3, 2, 3, 2, 1, 1, 1, MF_PADDING_VALID, 0, MF_ACT_LINEAR))
ONE(dw_k3_d2_same_sigmoid, dw_ex(0, 1, 3, 3, 1, 1, 2, 2, MF_PADDING_SAME, 1, MF_ACT_SIGMOID))
ONE(dw_k3_s2_same_swish_m2, dw_ex(0, 2, 3, 3, 2, 2, 1, 1, MF_PADDING_SAME, 1, MF_ACT_SWISH))
ONE(dw_k3_d2x1_valid_tanh_m2, dw_ex(0, 2, 3, 3, 1, 1, 2, 1, MF_PADDING_VALID, 0, MF_ACT_TANH))
ONE(sep_k3_s1_same_bias, dw_ex(4, 1, 3, 3, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_LINEAR))
ONE(sep_k3x2_s2_valid_m2, dw_ex(3, 2, 3, 2, 2, 2, 1, 1, MF_PADDING_VALID, 0, MF_ACT_LINEAR))
ONE(sep_k3_d2_same_tanh_m2, dw_ex(5, 2, 3, 3, 1, 1, 2, 2, MF_PADDING_SAME, 1, MF_ACT_TANH))
ONE(sep_k5_s1_same_swish, dw_ex(3, 1, 5, 5, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_SWISH))
ONE(sep_k3_s1_same_sigmoid_m3, dw_ex(7, 3, 3, 3, 1, 1, 1, 1, MF_PADDING_SAME, 1, MF_ACT_SIGMOID))
ONE(bn_center_off, mf_batchnorm_ex(NULL, 0.99f, 1e-3f, 0, 1))
ONE(bn_scale_off, mf_batchnorm_ex(NULL, 0.9f, 1e-2f, 1, 0))
ONE(bn_neither, mf_batchnorm_ex(NULL, 0.99f, 1e-3f, 0, 0))
ONE(dense_softmax, mf_dense_ex(NULL, 4, 1, MF_ACT_SOFTMAX))
ONE(dense_swish_nobias, mf_dense_ex(NULL, 3, 0, MF_ACT_SWISH))
ONE(dense_sigmoid, mf_dense_ex(NULL, 5, 1, MF_ACT_SIGMOID))

/* Flatten, then a Dense: the Dense's weight gradient sees the NHWC order */
static int flatten_dense(mf_model *m, int x)
{
    x = mf_model_add(m, mf_flatten(NULL), x);
    return mf_model_add(m, mf_dense(NULL, 3, 1), x);
}

/* Concatenate(conv(x), x, conv2(x)) and Concatenate(x, conv(x), x): three
 * inputs, one node read twice (its gradient written, then added) */
static int concat3(mf_model *m, int x)
{
    int a = mf_model_add(m, mf_conv2d(NULL, 2, 1, 1, MF_PADDING_VALID, 1), x);
    int b = mf_model_add(m, mf_conv2d(NULL, 3, 3, 1, MF_PADDING_SAME, 0), x);
    int in[3] = {a, x, b};
    return mf_model_add_n(m, mf_concatenate(NULL), in, 3);
}
static int concat3_repeat(mf_model *m, int x)
{
    int a = mf_model_add(m, mf_conv2d(NULL, 2, 1, 1, MF_PADDING_VALID, 1), x);
    int in[3] = {x, a, x};
    return mf_model_add_n(m, mf_concatenate(NULL), in, 3);
}
/* Add of three: conv(x) + x + conv2(x), and Add(y, a, a) with a read twice */
static int add3(mf_model *m, int x)
{
    int a = mf_model_add(m, mf_conv2d(NULL, 3, 1, 1, MF_PADDING_VALID, 0), x);
    int b = mf_model_add(m, mf_conv2d(NULL, 3, 3, 1, MF_PADDING_SAME, 1), x);
    int in[3] = {a, x, b};
    return mf_model_add_n(m, mf_add(NULL), in, 3);
}
static int add3_repeat(mf_model *m, int x)
{
    int a = mf_model_add(m, mf_conv2d(NULL, 3, 1, 1, MF_PADDING_VALID, 0), x);
    int b = mf_model_add(m, mf_conv2d(NULL, 3, 1, 1, MF_PADDING_VALID, 1), x);
    int in[4] = {b, a, a, x};
    return mf_model_add_n(m, mf_add(NULL), in, 4);
}

/* MobileNetV2's stride-2 depthwise: ZeroPadding2D (0,1),(0,1), then 'valid'
 * (the memory plan folds the padding into the depthwise conv). */
static int zp_dw_k3_s2_valid(mf_model *m, int x)
{
    x = mf_model_add(m, mf_zero_pad2d(NULL, 0, 1, 0, 1), x);
    return mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_VALID, 1), x);
}

/* Add(a, a): one node read twice; its gradient is written, then added to
 * (in the memory of the Add's output gradient, where the plan puts it) */
static int add_same_input(mf_model *m, int x)
{
    int a = mf_model_add(m, mf_conv2d(NULL, 3, 1, 1, MF_PADDING_VALID, 0), x);
    return mf_model_add2(m, mf_add(NULL), a, a);
}

static int add_residual(mf_model *m, int x)
{
    int a = mf_model_add(m, mf_conv2d(NULL, 3, 1, 1, MF_PADDING_VALID, 0), x);
    return mf_model_add2(m, mf_add(NULL), a, x);
}

/* MobileNetV2's inverted-residual block: expand, BN, ReLU6, depthwise, BN,
 * ReLU6, project, BN (+ input when stride 1): checks the graph's gradient
 * plumbing (accumulation at the fork of the residual) end to end. */
static int block(mf_model *m, int x, int stride, int residual)
{
    int C = mf_model_input_shape(m).d[3];
    int y = mf_model_add(m, mf_conv2d(NULL, 2 * C, 1, 1, MF_PADDING_SAME, 0), x);
    y = mf_model_add(m, mf_batchnorm(NULL, 0.999f, 1e-3f), y);
    y = mf_model_add(m, mf_relu(NULL, 6.0f), y);
    if (stride == 2) {
        y = mf_model_add(m, mf_zero_pad2d(NULL, 0, 1, 0, 1), y);
        y = mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_VALID, 0), y);
    } else {
        y = mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 1, MF_PADDING_SAME, 0), y);
    }
    y = mf_model_add(m, mf_batchnorm(NULL, 0.999f, 1e-3f), y);
    y = mf_model_add(m, mf_relu(NULL, 6.0f), y);
    y = mf_model_add(m, mf_conv2d(NULL, C, 1, 1, MF_PADDING_SAME, 0), y);
    y = mf_model_add(m, mf_batchnorm(NULL, 0.999f, 1e-3f), y);
    return residual ? mf_model_add2(m, mf_add(NULL), y, x) : y;
}
static int block_s1(mf_model *m, int x) { return block(m, x, 1, 1); }
static int block_s2(mf_model *m, int x) { return block(m, x, 2, 0); }

static int head(mf_model *m, int x)
{
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dropout(NULL, 0.2f), x);
    return mf_model_add(m, mf_dense(NULL, 3, 1), x);
}

/* ---- sabotaged backward passes (test-only layer kinds) --------------------- */
static mf_layer_ops broken_dense_ops, broken_relu_ops;
static const mf_layer_ops *real_dense_ops;

/* Dense whose weight gradient comes out 5% too large. */
static void broken_dense_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                                  const mf_tensor *dout, mf_tensor *const *din)
{
    real_dense_ops->backward(l, ex, in, out, dout, din);
    for (size_t i = 0; i < l->slot[0].numel; i++)
        l->slot[0].grad[i] *= 1.05f;
}

/* ReLU that lets the gradient through where the input is negative. */
static void broken_relu_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                                 const mf_tensor *dout, mf_tensor *const *din)
{
    (void)l;
    (void)ex;
    (void)in;
    (void)out;
    for (size_t i = 0; i < mf_tensor_numel(dout); i++)
        din[0]->data[i] += dout->data[i];
}

static int sabotaged_dense(mf_model *m, int x)
{
    mf_layer *l = mf_dense(NULL, 4, 1);
    real_dense_ops = l->ops;
    broken_dense_ops = *l->ops;
    broken_dense_ops.backward = broken_dense_backward;
    l->ops = &broken_dense_ops;
    return mf_model_add(m, l, x);
}

static int sabotaged_relu(mf_model *m, int x)
{
    mf_layer *l = mf_relu(NULL, 0.0f);
    broken_relu_ops = *l->ops;
    broken_relu_ops.backward = broken_relu_backward;
    l->ops = &broken_relu_ops;
    return mf_model_add(m, l, x);
}

/* ---- preparations ------------------------------------------------------ */
static void random_moving_stats(mf_model *m, mf_rng *r)
{
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info p = mf_model_param(m, i);
        if (p.kind != MF_PARAM_STATE)
            continue;
        float *v = mf_model_state(m) + p.offset;
        int is_var = strcmp(p.name, "moving_variance") == 0;
        for (size_t k = 0; k < p.numel; k++)
            v[k] = is_var ? 0.5f + 1.5f * mf_rng_uniform(r) : 0.5f * mf_rng_normal(r);
    }
}

/* Centre every BatchNorm output at 3 with a spread of ~0.5, so the ReLU6 after
 * it works in its linear region and no finite-difference probe of a block
 * crosses a kink (ReLU6 itself is checked at its kinks by relu.relu6). */
static void relu6_linear_region(mf_model *m, mf_rng *r)
{
    float *p = mf_model_params(m);
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info pi = mf_model_param(m, i);
        int gamma = strcmp(pi.name, "gamma") == 0, beta = strcmp(pi.name, "beta") == 0;
        for (size_t k = 0; gamma || beta ? k < pi.numel : 0; k++)
            p[pi.offset + k] = gamma ? 0.5f + 0.1f * mf_rng_normal(r) : 3.0f + 0.2f * mf_rng_normal(r);
    }
}

static void freeze_all(mf_model *m, mf_rng *r)
{
    random_moving_stats(m, r);
    for (int i = 0; i < mf_model_num_layers(m); i++)
        mf_layer_set_trainable(mf_model_layer(m, i), 0);
}

#define S4(h, w, c)       \
    {                     \
        4, { 0, h, w, c } \
    }
#define S2(c)             \
    {                     \
        2, { 0, c, 0, 0 } \
    }
static const grad_case cases[] = {
    /* name                            N  input        build                  mode           tol   relu sab prepare h */
    {"conv2d.k1_s1_valid_bias", 2, S4(4, 5, 3), conv_k1_s1_valid_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k1_s2_same_odd", 2, S4(7, 7, 3), conv_k1_s2_same_odd, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_s1_same_bias", 2, S4(5, 6, 3), conv_k3_s1_same_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_s2_same_odd", 2, S4(7, 7, 3), conv_k3_s2_same_odd, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_s2_same_even", 3, S4(8, 6, 2), conv_k3_s2_same_even, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_s2_valid_even", 2, S4(8, 8, 3), conv_k3_s2_valid_even, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_s1_valid_odd", 3, S4(5, 5, 2), conv_k3_s1_valid_odd, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k3_s1_same", 2, S4(5, 6, 4), dw_k3_s1_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k3_s2_same_odd", 2, S4(7, 7, 3), dw_k3_s2_same_odd, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k3_s2_valid_even", 3, S4(8, 8, 2), dw_k3_s2_valid_even, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k3_s1_valid_bias", 2, S4(5, 5, 3), dw_k3_s1_valid_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"batchnorm.train_4d", 3, S4(3, 4, 5), bn, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"batchnorm.train_2d", 6, S2(4), bn, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"batchnorm.infer_4d", 2, S4(3, 3, 4), bn, MF_MODE_INFER, 1e-3, 0, 0, random_moving_stats, 0, 0},
    {"batchnorm.frozen_runs_inference", 2, S4(3, 3, 4), bn, MF_MODE_TRAIN, 1e-3, 0, 0, freeze_all, 0, 0},
    {"relu.plain", 2, S4(3, 4, 3), relu_plain, MF_MODE_TRAIN, 1e-3, 1, 0, NULL, 0, 0},
    {"relu.relu6", 2, S4(3, 4, 3), relu6, MF_MODE_TRAIN, 1e-3, 1, 0, NULL, 0, 0},
    {"add.residual", 2, S4(3, 3, 3), add_residual, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"zero_pad2d.asym_0101", 2, S4(4, 4, 3), zp_0101, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"zero_pad2d.asym_2312", 2, S4(3, 5, 2), zp_2312, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"global_avg_pool2d.odd", 3, S4(5, 3, 4), gap, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"dropout.train", 3, S2(8), dropout, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"dropout.infer", 3, S2(8), dropout, MF_MODE_INFER, 1e-3, 0, 0, NULL, 0, 0},
    {"dense.bias", 3, S2(5), dense_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"dense.nobias", 2, S2(6), dense_nobias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"add.same_input", 2, S4(4, 4, 3), add_same_input, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"block.inverted_residual_s1", 2, S4(5, 5, 4), block_s1, MF_MODE_TRAIN, 2e-3, 0, 0, relu6_linear_region, 0, 0},
    {"block.inverted_residual_s2", 2, S4(6, 6, 3), block_s2, MF_MODE_TRAIN, 2e-3, 0, 0, relu6_linear_region, 0, 0},
    /* Shapes that take the fast paths (run with 2 threads, tests/CMakeLists.txt):
     * channel counts that are not a multiple of the vector width (19 = 16 + 3,
     * 40 = 32 + 8 with AVX-512), tensors over the threading thresholds
     * (M * C > 65536 in BatchNorm), products of >= 64 rows (libxsmm), the
     * BatchNorm+ReLU6 fusion and the folded padding. The wide blocks' loss
     * sums ~40,000 float outputs, so their central differences carry float
     * noise of ~1e-3 (h 2e-2 balances it against curvature): tolerance 1e-2,
     * still well under what a wrong backward gives (the sabotage cases: 2e-2
     * and 0.4). */
    {"depthwise_conv2d.k3_s1_same_c19_vec", 4, S4(9, 13, 19), dw_k3_s1_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k3_s1_valid_c40_vec", 3, S4(8, 12, 40), dw_k3_s1_valid_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"depthwise_conv2d.k3_s2_valid_c40_vec", 4, S4(13, 19, 40), dw_k3_s2_valid_even, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"depthwise_conv2d.k3_s2_same_c19_vec", 3, S4(11, 20, 19), dw_k3_s2_same_odd, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"depthwise_conv2d.zp0101_k3_s2_valid_c19_vec", 4, S4(12, 18, 19), zp_dw_k3_s2_valid, MF_MODE_TRAIN, 1e-3, 0, 0,
     NULL, 0, 0},
    {"depthwise_conv2d.k5_s1_same_general", 3, S4(7, 9, 11), dw_k5_s1_same_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k3_s3_same_general", 3, S4(8, 10, 13), dw_k3_s3_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"block.inverted_residual_s1_wide", 4, S4(16, 16, 40), block_s1, MF_MODE_TRAIN, 1e-2, 0, 0, relu6_linear_region,
     2e-2, 0},
    {"block.inverted_residual_s2_wide", 4, S4(16, 16, 36), block_s2, MF_MODE_TRAIN, 1e-2, 0, 0, relu6_linear_region,
     2e-2, 0},
    {"block.head_gap_dropout_dense", 2, S4(3, 3, 5), head, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.linear", 2, S4(3, 4, 3), act_linear, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.relu", 2, S4(3, 4, 3), act_relu, MF_MODE_TRAIN, 1e-3, 1, 0, NULL, 0, 0},
    {"activation.relu6", 2, S4(3, 4, 3), act_relu6, MF_MODE_TRAIN, 1e-3, 1, 0, NULL, 0, 0},
    {"activation.sigmoid", 2, S4(3, 4, 3), act_sigmoid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.tanh", 2, S4(3, 4, 3), act_tanh, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.softmax_4d", 2, S4(2, 3, 5), act_softmax, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.softmax_2d", 3, S2(6), act_softmax, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.swish", 2, S4(3, 4, 3), act_swish, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"activation.hard_sigmoid", 2, S4(3, 4, 3), act_hard_sigmoid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"max_pool2d.p2_s2_valid", 2, S4(4, 5, 3), mp_p2_s2_valid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 1},
    {"max_pool2d.p3_s2_same_odd", 2, S4(5, 7, 2), mp_p3_s2_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 1},
    {"max_pool2d.p2x3_s1x2_same", 2, S4(4, 6, 2), mp_p2x3_s1x2_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 1},
    {"avg_pool2d.p2_s2_valid", 2, S4(4, 5, 3), ap_p2_s2_valid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"avg_pool2d.p3_s2_same_odd", 2, S4(5, 7, 2), ap_p3_s2_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"avg_pool2d.p3x2_s1_same", 2, S4(4, 5, 2), ap_p3x2_s1_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"global_max_pool2d.odd", 3, S4(5, 3, 4), gmp, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 1},
    {"flatten.dense", 2, S4(3, 2, 4), flatten_dense, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"rescaling.affine", 2, S4(3, 3, 2), rescale, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"concatenate.three_inputs", 2, S4(4, 3, 3), concat3, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"concatenate.repeated_input", 2, S4(3, 3, 2), concat3_repeat, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"add.three_inputs", 2, S4(4, 3, 3), add3, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"add.four_inputs_repeated", 2, S4(3, 3, 3), add3_repeat, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3x5_s1_same_bias", 2, S4(5, 6, 3), conv_k3x5_s1_same_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k2x3_s2x1_valid", 2, S4(6, 5, 2), conv_k2x3_s2x1_valid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_d2_same", 2, S4(6, 7, 2), conv_k3_d2_same, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k3_d2x1_valid_sigmoid", 2, S4(7, 5, 2), conv_k3_d2x1_valid_sigmoid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k5_s1_same_tanh", 2, S4(5, 6, 2), conv_k5_s1_same_tanh, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k7_s2_same_swish", 2, S4(8, 7, 2), conv_k7_s2_same_swish, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"conv2d.k1x3_softmax", 2, S4(3, 4, 3), conv_k1x3_softmax, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    /* h 1e-3: a kernel or bias probe moves every output of a channel, and at
     * h 1e-2 some cross ReLU6's kinks (relu6 itself: activation.relu6) */
    {"conv2d.k3_s2_same_relu6", 2, S4(5, 5, 2), conv_k3_s2_same_relu6, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 1e-3, 0},
    {"batchnorm.center_off_4d", 3, S4(3, 4, 5), bn_center_off, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"batchnorm.scale_off_2d", 6, S2(4), bn_scale_off, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"batchnorm.neither_infer_4d", 2, S4(3, 3, 4), bn_neither, MF_MODE_INFER, 1e-3, 0, 0, random_moving_stats, 0, 0},
    {"depthwise_conv2d.k3x5_s1_same_m2", 2, S4(5, 6, 3), dw_k3x5_s1_same_m2, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"depthwise_conv2d.k2x3_s2x1_valid_m3", 2, S4(6, 5, 2), dw_k2x3_s2x1_valid_m3, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"depthwise_conv2d.k3_d2_same_sigmoid", 2, S4(6, 7, 3), dw_k3_d2_same_sigmoid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"depthwise_conv2d.k3_s2_same_swish_m2", 2, S4(7, 6, 2), dw_k3_s2_same_swish_m2, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"depthwise_conv2d.m2_tanh_c19_wide", 3, S4(9, 11, 19), dw_k3_d2x1_valid_tanh_m2, MF_MODE_TRAIN, 1e-3, 0, 0, NULL,
     0, 0},
    {"separable_conv2d.k3_s1_same_bias", 2, S4(5, 6, 3), sep_k3_s1_same_bias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"separable_conv2d.k3x2_s2_valid_m2", 2, S4(7, 6, 2), sep_k3x2_s2_valid_m2, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"separable_conv2d.k3_d2_same_tanh_m2", 2, S4(6, 6, 2), sep_k3_d2_same_tanh_m2, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0,
     0},
    {"separable_conv2d.k5_s1_same_swish", 2, S4(5, 6, 3), sep_k5_s1_same_swish, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"separable_conv2d.m3_sigmoid_c19_wide", 3, S4(9, 10, 19), sep_k3_s1_same_sigmoid_m3, MF_MODE_TRAIN, 1e-3, 0, 0,
     NULL, 0, 0},
    {"dense.softmax", 3, S2(5), dense_softmax, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"dense.swish_nobias", 2, S2(6), dense_swish_nobias, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"dense.sigmoid", 3, S2(4), dense_sigmoid, MF_MODE_TRAIN, 1e-3, 0, 0, NULL, 0, 0},
    {"sabotage.dense_weight_grad_5pct", 3, S2(5), sabotaged_dense, MF_MODE_TRAIN, 1e-3, 0, 1, NULL, 0, 0},
    {"sabotage.relu_passes_negative", 2, S4(3, 3, 2), sabotaged_relu, MF_MODE_TRAIN, 1e-3, 1, 1, NULL, 0, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- the check --------------------------------------------------------- */
typedef struct run {
    const grad_case *c;
    mf_model *m;
    float *x; /* input, N * sample */
    float *R; /* loss weights, output size */
    size_t nx, ny;
    double sum_abs_yr; /* sum |y * R| of the last forward: the scale of L's rounding */
    mf_rng drop; /* reseeded before every forward */
} run;

static double loss(run *r)
{
    mf_rng_seed(&r->drop, 99);
    mf_tensor y = mf_model_forward(r->m, r->x, r->c->N, r->c->mode, &r->drop);
    double L = 0.0, a = 0.0;
    for (size_t i = 0; i < r->ny; i++) {
        L += (double)y.data[i] * r->R[i];
        a += fabs((double)y.data[i] * r->R[i]);
    }
    r->sum_abs_yr = a;
    return L;
}

/* Compare the analytic gradient g of v with central differences on the probed
 * elements. The error of the tensor is ||a - n|| / max(||a|| + ||n||, 1e-3) over
 * those elements: a relative error of the whole gradient, so a true gradient of
 * ~0 (a BatchNorm beta whose shift the next training-mode BatchNorm removes)
 * measured as float noise does not dominate, while an error confined to a few
 * elements (a padding border) still shows. Elements off by more than 10x the
 * tolerance are listed to help find the bug. */
static double probe(run *r, float *v, const float *g, size_t n, mf_rng *pick, const char *what)
{
    double noise = 2.0 * FLT_EPSILON * r->sum_abs_yr / (2.0 * (r->c->h > 0 ? r->c->h : H_STEP));
    double d2 = 0.0, a2 = 0.0, n2 = 0.0;
    size_t count = n <= MAX_PROBES ? n : MAX_PROBES;
    for (size_t k = 0; k < count; k++) {
        size_t i = n <= MAX_PROBES ? k : mf_rng_below(pick, (uint32_t)n);
        float keep = v[i];
        float h = (float)(r->c->h > 0 ? r->c->h : H_STEP);
        v[i] = keep + h;
        double lp = loss(r);
        v[i] = keep - h;
        double lm = loss(r);
        v[i] = keep;
        /* the step actually taken, after float rounding of keep +- h */
        double h2 = (double)(keep + h) - (double)(keep - h);
        double num = (lp - lm) / h2, ana = g[i];
        d2 += (ana - num) * (ana - num);
        a2 += ana * ana;
        n2 += num * num;
        double elem = fabs(ana - num) / fmax(fabs(ana) + fabs(num), 1e-3);
        if (elem > 10.0 * r->c->tol)
            fprintf(stderr, "  %s[%zu]: analytic %.6g numeric %.6g relative error %.3g\n", what, i, ana, num, elem);
    }
    /* An analytic gradient of exactly ~0 (a BatchNorm beta whose shift the next
     * training-mode BatchNorm removes when the ReLU6 between them is linear) is
     * right if the measured one is float noise: L is only known to about
     * FLT_EPSILON * sum|y R|, a difference quotient to that over 2h. */
    double rms_a = sqrt(a2 / (double)count), rms_n = sqrt(n2 / (double)count);
    if (rms_a < 1e-5) {
        printf("  %s: zero gradient; measured rms %.1e vs float noise %.1e\n", what, rms_n, noise);
        return rms_n <= noise ? 0.0 : 1.0;
    }
    return sqrt(d2) / fmax(sqrt(a2) + sqrt(n2), 1e-3);
}

static int run_case(const grad_case *c)
{
    int failed = 0;
    run r = {0};
    r.c = c;
    mf_rng rng;
    mf_rng_seed(&rng, 1234);
    r.m = mf_model_create(c->name);
    int in = mf_model_input(r.m, c->in);
    int out = c->build(r.m, in);
    if (out < 0 || mf_model_build(r.m, 42) != MF_STATUS_OK) {
        fprintf(stderr, "%s: build failed: %s\n", c->name, mf_last_error());
        mf_model_free(r.m);
        return 1;
    }
    /* the input gradient is checked too, and some cases back-propagate
     * through an inference-mode forward (frozen BatchNorm) */
    mf_model_set_backward_keep(r.m, MF_KEEP_INPUT_GRAD | MF_KEEP_INFER_BACKWARD);
    /* move trainable weights off their init so zero biases and unit gammas are tested too */
    float *p = mf_model_params(r.m);
    for (size_t i = 0; i < mf_model_num_params(r.m); i++)
        p[i] += 0.2f * mf_rng_normal(&rng);
    if (c->prepare)
        c->prepare(r.m, &rng);

    mf_shape ys = mf_model_output_shape(r.m);
    r.nx = (size_t)c->N * mf_shape_sample_numel(&c->in);
    r.ny = (size_t)c->N * mf_shape_sample_numel(&ys);
    r.x = malloc(r.nx * sizeof(float));
    r.R = malloc(r.ny * sizeof(float));
    float *dx = malloc(r.nx * sizeof(float));
    for (size_t i = 0; i < r.nx; i++) {
        float v = mf_rng_normal(&rng);
        if (c->relu_input) {
            v *= 4.0f; /* reach past 6 for ReLU6 */
            float gap = 3.0f * (float)H_STEP;
            if (fabsf(v) < gap)
                v = v < 0 ? -gap - 0.1f : gap + 0.1f;
            if (fabsf(v - 6.0f) < gap)
                v = v < 6.0f ? 6.0f - gap - 0.1f : 6.0f + gap + 0.1f;
        }
        r.x[i] = v;
    }
    if (c->distinct) { /* a shuffled grid: any two inputs at least 5h apart */
        double h = c->h > 0 ? c->h : H_STEP;
        for (size_t i = 0; i < r.nx; i++)
            r.x[i] = (float)(((double)i - 0.5 * (double)r.nx) * 5.0 * h);
        for (size_t i = r.nx; i > 1; i--) {
            size_t j = mf_rng_below(&rng, (uint32_t)i);
            float t = r.x[i - 1];
            r.x[i - 1] = r.x[j];
            r.x[j] = t;
        }
    }
    for (size_t i = 0; i < r.ny; i++)
        r.R[i] = mf_rng_normal(&rng);

    /* analytic: one forward + backward; a second forward + backward must
     * exactly double the parameter gradients (they accumulate) and leave dx
     * unchanged (backward runs once per forward: the memory plan reuses an
     * activation's memory once backward has read it) */
    size_t np = mf_model_num_params(r.m);
    float *g = malloc((np ? np : 1) * sizeof(float));
    loss(&r);
    mf_model_zero_grad(r.m);
    mf_model_backward(r.m, r.R, dx);
    memcpy(g, mf_model_grads(r.m), np * sizeof(float));
    float *dx2 = malloc(r.nx * sizeof(float));
    loss(&r);
    mf_model_backward(r.m, r.R, dx2);
    for (size_t i = 0; i < np; i++)
        if (fabsf(mf_model_grads(r.m)[i] - 2.0f * g[i]) > 1e-6f * (1.0f + fabsf(g[i]))) {
            fprintf(stderr, "%s: parameter gradient %zu does not accumulate: %g then %g\n", c->name, i, g[i],
                    mf_model_grads(r.m)[i]);
            failed = 1;
            break;
        }
    if (memcmp(dx, dx2, r.nx * sizeof(float)) != 0) {
        fprintf(stderr, "%s: input gradient differs between two identical backward passes\n", c->name);
        failed = 1;
    }
    free(dx2);

    mf_rng pick;
    mf_rng_seed(&pick, 5);
    double worst = probe(&r, r.x, dx, r.nx, &pick, "input");
    printf("%-36s input      %6zu values  worst error %.2e\n", c->name, r.nx, worst);
    if (worst > c->tol)
        failed = 1;
    for (int t = 0; t < mf_model_num_param_tensors(r.m); t++) {
        mf_param_info pi = mf_model_param(r.m, t);
        if (pi.kind != MF_PARAM_TRAINABLE)
            continue;
        char what[160];
        snprintf(what, sizeof what, "%s/%s", pi.layer, pi.name);
        if (!pi.trainable) {
            /* a frozen layer must not accumulate any gradient */
            for (size_t i = 0; i < pi.numel; i++)
                if (g[pi.offset + i] != 0.0f) {
                    fprintf(stderr, "%s: frozen %s got gradient %g\n", c->name, what, g[pi.offset + i]);
                    failed = 1;
                    break;
                }
            printf("%-36s %-28s frozen, gradient all zero\n", c->name, what);
            continue;
        }
        double w = probe(&r, p + pi.offset, g + pi.offset, pi.numel, &pick, what);
        printf("%-36s %-28s %6zu values  worst error %.2e\n", c->name, what, pi.numel, w);
        if (w > c->tol)
            failed = 1;
    }
    printf("%s: %s (tolerance %.0e)\n", c->name, failed ? "GRADIENT MISMATCH" : "ok", c->tol);
    free(g);
    free(dx);
    free(r.x);
    free(r.R);
    mf_model_free(r.m);
    if (mf_alloc_live_count() != 0) {
        fprintf(stderr, "%s: %zu allocations leaked\n", c->name, mf_alloc_live_count());
        failed = 1;
    }
    return failed;
}

static const grad_case *find(const char *name)
{
    for (int i = 0; i < N_CASES; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < N_CASES; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    /* --registered A B ...: the CTest list must name every case exactly once */
    if (argc >= 2 && strcmp(argv[1], "--registered") == 0) {
        int bad = 0;
        for (int i = 0; i < N_CASES; i++) {
            int seen = 0;
            for (int a = 2; a < argc; a++)
                seen += strcmp(argv[a], cases[i].name) == 0;
            if (seen != 1) {
                fprintf(stderr, "case %s is registered %d times in tests/CMakeLists.txt\n", cases[i].name, seen);
                bad = 1;
            }
        }
        for (int a = 2; a < argc; a++)
            if (!find(argv[a])) {
                fprintf(stderr, "tests/CMakeLists.txt registers %s, which grad_check does not have\n", argv[a]);
                bad = 1;
            }
        printf("%d cases, %d registered: %s\n", N_CASES, argc - 2, bad ? "MISMATCH" : "ok");
        return bad;
    }
    int expect_fail = argc == 3 && strcmp(argv[2], "--expect-fail") == 0;
    if (argc < 2 || (argc == 3 && !expect_fail) || argc > 3) {
        fprintf(stderr, "usage: grad_check CASE [--expect-fail] | --list | --registered CASE...\n");
        return 2;
    }
    const grad_case *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "grad_check: no case '%s' (see --list)\n", argv[1]);
        return 2;
    }
    if (c->sabotage != expect_fail) {
        fprintf(stderr, "grad_check: %s must be run %s --expect-fail\n", c->name, c->sabotage ? "with" : "without");
        return 2;
    }
    int failed = run_case(c);
    if (expect_fail) {
        printf("%s: the sabotaged backward was %s\n", c->name, failed ? "detected, as it must be" : "NOT detected");
        return failed ? 0 : 1;
    }
    return failed;
}
