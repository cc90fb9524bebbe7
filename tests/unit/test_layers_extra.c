/* test_layers_extra.c: forward passes of the Keras layers added for issue #13
 * (Activation, poolings, Flatten, Rescaling, Concatenate, n-input Add, the
 * extended Conv2D/DepthwiseConv2D/Dense/BatchNorm options, SeparableConv2D,
 * initializers) against tiny cases
 * worked out by hand in the comments, and their argument checks. */
#include <math.h>
#include <string.h>
#include "mpifit.h"
#include "layers/layer.h"
#include "test.h"

/* A model of one layer on `in`, built. */
static mf_model *one(mf_shape in, mf_layer *l)
{
    mf_model *m = mf_model_create("extra");
    int x = mf_model_input(m, in);
    MF_CHECK(mf_model_add(m, l, x) == 1);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    return m;
}

static float *weight(mf_model *m, const char *name)
{
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info p = mf_model_param(m, i);
        if (strcmp(p.name, name) == 0)
            return (p.kind == MF_PARAM_TRAINABLE ? mf_model_params(m) : mf_model_state(m)) + p.offset;
    }
    MF_CHECK_MSG(0, "no weight %s", name);
    return NULL;
}

static void check_all(const float *got, const float *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        MF_CHECK_NEAR(got[i], want[i], tol);
}

static void test_activation_parse(void)
{
    const char *names[] = {"linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "swish", "silu", "hard_sigmoid"};
    mf_activation want[] = {MF_ACT_LINEAR,  MF_ACT_RELU,  MF_ACT_RELU6, MF_ACT_SIGMOID,     MF_ACT_TANH,
                            MF_ACT_SOFTMAX, MF_ACT_SWISH, MF_ACT_SWISH, MF_ACT_HARD_SIGMOID};
    for (int i = 0; i < 9; i++) {
        mf_activation a = MF_ACT_LINEAR;
        MF_CHECK(mf_activation_parse(names[i], &a) == MF_STATUS_OK);
        MF_CHECK(a == want[i]);
    }
    mf_activation a = MF_ACT_TANH;
    MF_CHECK(mf_activation_parse("gelu", &a) == MF_STATUS_INVALID);
    MF_CHECK(a == MF_ACT_TANH);
    MF_CHECK(strstr(mf_last_error(), "'gelu'") && strstr(mf_last_error(), "hard_sigmoid"));
    MF_CHECK(mf_activation_layer(NULL, (mf_activation)99) == NULL);
}

static void test_activation_values(void)
{
    /* x = (-3, 0.5, 2, 8) as one row of 4 channels:
     *   relu (0, .5, 2, 8); relu6 (0, .5, 2, 6);
     *   sigmoid 1/(1+e^3) = .0474259, 1/(1+e^-.5) = .6224593, .8807971, .9996646;
     *   tanh -.9950548, .4621172, .9640276, .9999998;
     *   swish x*sigmoid: -.1422777, .3112297, 1.7615942, 7.9973172;
     *   hard_sigmoid clip(.2x+.5): 0, .6, .9, 1;
     *   softmax: e^(x-8) / sum = (1.67e-5, 5.53e-4, 2.47e-3, .99696)
     *     e^-11 = 1.6702e-5, e^-7.5 = 5.5308e-4, e^-6 = 2.4788e-3, 1; sum 1.0030477 */
    float x[4] = {-3.0f, 0.5f, 2.0f, 8.0f};
    struct {
        mf_activation a;
        float want[4];
    } t[] = {
        {MF_ACT_LINEAR, {-3.0f, 0.5f, 2.0f, 8.0f}},
        {MF_ACT_RELU, {0.0f, 0.5f, 2.0f, 8.0f}},
        {MF_ACT_RELU6, {0.0f, 0.5f, 2.0f, 6.0f}},
        {MF_ACT_SIGMOID, {0.0474259f, 0.6224593f, 0.8807971f, 0.9996646f}},
        {MF_ACT_TANH, {-0.9950548f, 0.4621172f, 0.9640276f, 0.9999998f}},
        {MF_ACT_SWISH, {-0.1422777f, 0.3112297f, 1.7615942f, 7.9973172f}},
        {MF_ACT_HARD_SIGMOID, {0.0f, 0.6f, 0.9f, 1.0f}},
        {MF_ACT_SOFTMAX, {1.66514e-5f, 5.51399e-4f, 2.471327e-3f, 0.9969606f}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        mf_model *m = one(mf_shape2(0, 4), mf_activation_layer(NULL, t[i].a));
        MF_CHECK(strcmp(mf_layer_kind(mf_model_layer(m, 0)), "Activation") == 0);
        MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 0)), "activation") == 0);
        mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
        check_all(y.data, t[i].want, 4, 2e-6);
        mf_model_free(m);
    }
}

static void test_max_pool(void)
{
    /* 4x4 image 1..16 (row-major), 2x2 stride 2 valid: the bottom-right of
     * each block: 6 8 / 14 16 */
    mf_model *m = one(mf_shape4(0, 4, 4, 1), mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID));
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 0)), "max_pooling2d") == 0);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    float want[4] = {6, 8, 14, 16};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 2 && y.shape.d[2] == 2 && y.shape.d[3] == 1);
    check_all(y.data, want, 4, 0);
    mf_model_free(m);

    /* 3x3 image of -(1..9), 2x2 stride 2 'same': Ho = 2, the pad row/column at
     * the bottom/right is absent (never wins, even over negatives):
     * (0,0): max(-1,-2,-4,-5) = -1; (0,1): max(-3,-6) = -3; (1,0): max(-7,-8) = -7; (1,1): -9 */
    m = one(mf_shape4(0, 3, 3, 1), mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_SAME));
    float xn[9];
    for (int i = 0; i < 9; i++)
        xn[i] = -(float)(i + 1);
    float wn[4] = {-1, -3, -7, -9};
    y = mf_model_forward(m, xn, 1, MF_MODE_INFER, NULL);
    check_all(y.data, wn, 4, 0);
    mf_model_free(m);

    /* ties: a 2x2 window of equal values sends the whole gradient to the
     * first cell in scan order (top-left) */
    m = mf_model_create("tie");
    int in = mf_model_input(m, mf_shape4(0, 2, 2, 1));
    mf_model_add(m, mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID), in);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    mf_model_set_backward_keep(m, MF_KEEP_INPUT_GRAD);
    float xt[4] = {5, 5, 5, 5}, g = 2.0f, dx[4];
    mf_model_forward(m, xt, 1, MF_MODE_TRAIN, NULL);
    mf_model_backward(m, &g, dx);
    float wt[4] = {2, 0, 0, 0};
    check_all(dx, wt, 4, 0);
    mf_model_free(m);

    /* non-square 1x3 window, stride (1,3) valid on a 2x6 image 1..12:
     * row 0: max(1,2,3) = 3, max(4,5,6) = 6; row 1: 9, 12 */
    m = one(mf_shape4(0, 2, 6, 1), mf_max_pool2d(NULL, 1, 3, 1, 3, MF_PADDING_VALID));
    float x12[12];
    for (int i = 0; i < 12; i++)
        x12[i] = (float)(i + 1);
    float w12[4] = {3, 6, 9, 12};
    y = mf_model_forward(m, x12, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 2 && y.shape.d[2] == 2);
    check_all(y.data, w12, 4, 0);
    mf_model_free(m);
    MF_CHECK(mf_max_pool2d(NULL, 0, 2, 2, 2, MF_PADDING_VALID) == NULL);
}

static void test_avg_pool(void)
{
    /* 3x3 image 1..9, 2x2 stride 2 'same': Ho = 2, windows clipped to the image
     * and averaged over the cells inside only (TensorFlow):
     * (0,0): (1+2+4+5)/4 = 3; (0,1): (3+6)/2 = 4.5; (1,0): (7+8)/2 = 7.5; (1,1): 9 */
    mf_model *m = one(mf_shape4(0, 3, 3, 1), mf_avg_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_SAME));
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 0)), "average_pooling2d") == 0);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float want[4] = {3, 4.5f, 7.5f, 9};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    check_all(y.data, want, 4, 1e-6);
    mf_model_free(m);
    /* 3x3 stride 1 'same' on the same image, centre pixel: all nine, 45/9 = 5;
     * corner (0,0): (1+2+4+5)/4 = 3 */
    m = one(mf_shape4(0, 3, 3, 1), mf_avg_pool2d(NULL, 3, 3, 1, 1, MF_PADDING_SAME));
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK_NEAR(y.data[4], 5.0f, 1e-6);
    MF_CHECK_NEAR(y.data[0], 3.0f, 1e-6);
    mf_model_free(m);
}

static void test_global_max_flatten_rescaling(void)
{
    /* 2x2 image, 2 channels: c0 = (1, 7, -2, 3), c1 = (-1, -5, -0.5, -9): max 7, -0.5 */
    mf_model *m = one(mf_shape4(0, 2, 2, 2), mf_global_max_pool2d(NULL));
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 0)), "global_max_pooling2d") == 0);
    float x[8] = {1, -1, 7, -5, -2, -0.5f, 3, -9};
    float want[2] = {7, -0.5f};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.ndim == 2 && y.shape.d[1] == 2);
    check_all(y.data, want, 2, 0);
    mf_model_free(m);

    /* Flatten keeps NHWC order: (1,2,2,2) -> (1,8) the same 8 numbers */
    m = one(mf_shape4(0, 2, 2, 2), mf_flatten(NULL));
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 0)), "flatten") == 0);
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.ndim == 2 && y.shape.d[1] == 8);
    check_all(y.data, x, 8, 0);
    mf_model_free(m);

    /* Rescaling(1/127.5, -1): 0 -> -1, 127.5 -> 0, 255 -> 1 */
    m = one(mf_shape2(0, 3), mf_rescaling(NULL, 1.0f / 127.5f, -1.0f));
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 0)), "rescaling") == 0);
    float px[3] = {0, 127.5f, 255}, pw[3] = {-1, 0, 1};
    y = mf_model_forward(m, px, 1, MF_MODE_INFER, NULL);
    check_all(y.data, pw, 3, 1e-6);
    mf_model_free(m);
}

static void test_concatenate_add_n(void)
{
    /* input (1,1,2,2) x = (1,2 | 3,4); Concatenate(x, Rescaling(10)(x), x) on
     * channels: pixel 0 (1,2,10,20,1,2), pixel 1 (3,4,30,40,3,4) */
    int in[3] = {0}, in4[4] = {0};
    float xv[4] = {1, 2, 3, 4};
    mf_model *m = mf_model_create("cat");
    int x = mf_model_input(m, mf_shape4(0, 1, 2, 2));
    int r = mf_model_add(m, mf_rescaling(NULL, 10.0f, 0.0f), x);
    in[0] = in[2] = x;
    in[1] = r;
    MF_CHECK(mf_model_add_n(m, mf_concatenate(NULL), in, 3) == 2);
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 1)), "concatenate") == 0);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    mf_tensor y = mf_model_forward(m, xv, 1, MF_MODE_INFER, NULL);
    float want[12] = {1, 2, 10, 20, 1, 2, 3, 4, 30, 40, 3, 4};
    MF_CHECK(y.shape.d[3] == 6);
    check_all(y.data, want, 12, 0);
    mf_model_free(m);

    m = mf_model_create("add4");
    x = mf_model_input(m, mf_shape4(0, 1, 2, 2));
    r = mf_model_add(m, mf_rescaling(NULL, 10.0f, 0.0f), x);
    in4[0] = in4[3] = x; /* Add of four: x + 10x + 10x + x = 22x */
    in4[1] = in4[2] = r;
    MF_CHECK(mf_model_add_n(m, mf_add(NULL), in4, 4) == 2);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    y = mf_model_forward(m, xv, 1, MF_MODE_INFER, NULL);
    float w4[4] = {22, 44, 66, 88};
    check_all(y.data, w4, 4, 0);
    mf_model_free(m);

    /* misfits are refused with the layer named: 9 inputs, 1 input, channel mismatch only allowed */
    m = mf_model_create("bad");
    x = mf_model_input(m, mf_shape4(0, 2, 2, 1));
    int nine[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    MF_CHECK(mf_model_add_n(m, mf_concatenate(NULL), nine, 9) == -1);
    MF_CHECK(strstr(mf_last_error(), "2 to 8 inputs") != NULL);
    mf_model_free(m);
    m = mf_model_create("bad");
    x = mf_model_input(m, mf_shape4(0, 2, 2, 1));
    int p = mf_model_add(m, mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID), x);
    int two[2] = {x, p};
    MF_CHECK(mf_model_add_n(m, mf_concatenate(NULL), two, 2) == -1);
    MF_CHECK(strstr(mf_last_error(), "every axis but the last") != NULL);
    mf_model_free(m);
}

static void test_conv_ex(void)
{
    /* 3x3 image 1..9, one channel. A 1x3 kernel (1, 10, 100), 'valid', stride
     * 1: row r gives x[r][0] + 10 x[r][1] + 100 x[r][2]: 321, 654, 987 */
    mf_conv_options o = mf_conv_options_default();
    o.filters = 1;
    o.kernel_h = 1;
    o.kernel_w = 3;
    o.use_bias = 0;
    mf_model *m = one(mf_shape4(0, 3, 3, 1), mf_conv2d_ex(NULL, &o));
    float *k = weight(m, "kernel");
    k[0] = 1, k[1] = 10, k[2] = 100;
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 3 && y.shape.d[2] == 1);
    float w1[3] = {321, 654, 987};
    check_all(y.data, w1, 3, 1e-3);
    mf_model_free(m);

    /* dilation 2, 2x2 ones kernel, 'valid' on the 3x3 image: the four corners,
     * 1 + 3 + 7 + 9 = 20; bias -19.5, then sigmoid(0.5) = 0.6224593 */
    o = mf_conv_options_default();
    o.filters = 1;
    o.kernel_h = o.kernel_w = 2;
    o.dilation_h = o.dilation_w = 2;
    o.activation = MF_ACT_SIGMOID;
    m = one(mf_shape4(0, 3, 3, 1), mf_conv2d_ex(NULL, &o));
    k = weight(m, "kernel");
    for (int i = 0; i < 4; i++)
        k[i] = 1.0f;
    weight(m, "bias")[0] = -19.5f;
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 1 && y.shape.d[2] == 1);
    MF_CHECK_NEAR(y.data[0], 0.6224593f, 1e-6);
    mf_model_free(m);

    /* 'same' 5x5 with relu: the window of any pixel of a 3x3 image (2 pixels
     * either side) covers all of it: every output 45 + bias; bias -13: 32;
     * bias -50: relu gives 0 */
    o = mf_conv_options_default();
    o.filters = 1;
    o.kernel_h = o.kernel_w = 5;
    o.padding = MF_PADDING_SAME;
    o.activation = MF_ACT_RELU;
    m = one(mf_shape4(0, 3, 3, 1), mf_conv2d_ex(NULL, &o));
    k = weight(m, "kernel");
    for (int i = 0; i < 25; i++)
        k[i] = 1.0f;
    weight(m, "bias")[0] = -13.0f;
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int i = 0; i < 9; i++)
        MF_CHECK_NEAR(y.data[i], 32.0f, 1e-5);
    weight(m, "bias")[0] = -50.0f;
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int i = 0; i < 9; i++)
        MF_CHECK_NEAR(y.data[i], 0.0f, 0);
    mf_model_free(m);

    /* the same arguments through mf_conv2d and mf_conv2d_ex: the same bits */
    mf_rng r;
    mf_rng_seed(&r, 3);
    float img[2 * 7 * 7 * 3];
    for (int i = 0; i < 2 * 7 * 7 * 3; i++)
        img[i] = mf_rng_normal(&r);
    o = mf_conv_options_default();
    o.filters = 4;
    o.stride_h = o.stride_w = 2;
    o.padding = MF_PADDING_SAME;
    mf_model *a = one(mf_shape4(0, 7, 7, 3), mf_conv2d(NULL, 4, 3, 2, MF_PADDING_SAME, 1));
    mf_model *b = one(mf_shape4(0, 7, 7, 3), mf_conv2d_ex(NULL, &o));
    mf_tensor ya = mf_model_forward(a, img, 2, MF_MODE_INFER, NULL);
    mf_tensor yb = mf_model_forward(b, img, 2, MF_MODE_INFER, NULL);
    MF_CHECK(memcmp(ya.data, yb.data, mf_tensor_numel(&ya) * sizeof(float)) == 0);
    mf_model_free(a);
    mf_model_free(b);

    /* refused, each with its reason */
    o = mf_conv_options_default();
    MF_CHECK(mf_conv2d_ex(NULL, &o) == NULL && strstr(mf_last_error(), "filters"));
    o.filters = 2;
    o.kernel_w = 9;
    MF_CHECK(mf_conv2d_ex(NULL, &o) == NULL && strstr(mf_last_error(), "1..7"));
    o.kernel_w = 3;
    o.dilation_h = 2;
    o.stride_w = 2;
    MF_CHECK(mf_conv2d_ex(NULL, &o) == NULL && strstr(mf_last_error(), "dilation"));
}

static void test_depthwise_separable_ex(void)
{
    /* DepthwiseConv2D, depth_multiplier 2, kernel 1x3 'valid' on a 3x3x1 image
     * 1..9: kernel (1,3,1,2) is k[kw*2 + m]; filter 0 (1, 10, 100) reads each
     * row as a number (321, 654, 987), filter 1 (1, 1, 1) sums it (6, 15, 24);
     * output channel m of each row */
    mf_conv_options o = mf_conv_options_default();
    o.depth_multiplier = 2;
    o.kernel_h = 1;
    o.kernel_w = 3;
    o.use_bias = 0;
    mf_model *m = one(mf_shape4(0, 3, 3, 1), mf_depthwise_conv2d_ex(NULL, &o));
    float *k = weight(m, "depthwise_kernel");
    float kv[6] = {1, 1, 10, 1, 100, 1};
    memcpy(k, kv, sizeof kv);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 3 && y.shape.d[2] == 1 && y.shape.d[3] == 2);
    float w1[6] = {321, 6, 654, 15, 987, 24};
    check_all(y.data, w1, 6, 1e-3);
    mf_model_free(m);

    /* dilation 2, 2x2 ones kernel, 'valid', 2 channels (1..9 and 10 x that):
     * the four corners, 20 and 200; bias (-20, -199.5), relu6: 0 and 0.5 */
    o = mf_conv_options_default();
    o.kernel_h = o.kernel_w = 2;
    o.dilation_h = o.dilation_w = 2;
    o.activation = MF_ACT_RELU6;
    m = one(mf_shape4(0, 3, 3, 2), mf_depthwise_conv2d_ex(NULL, &o));
    k = weight(m, "depthwise_kernel");
    for (int i = 0; i < 8; i++)
        k[i] = 1.0f;
    weight(m, "bias")[0] = -20.0f;
    weight(m, "bias")[1] = -199.5f;
    float x2[18];
    for (int i = 0; i < 9; i++)
        x2[2 * i] = (float)(i + 1), x2[2 * i + 1] = 10.0f * (float)(i + 1);
    y = mf_model_forward(m, x2, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 1 && y.shape.d[2] == 1 && y.shape.d[3] == 2);
    MF_CHECK_NEAR(y.data[0], 0.0f, 0);
    MF_CHECK_NEAR(y.data[1], 0.5f, 1e-5);
    mf_model_free(m);

    /* the plain arguments through mf_depthwise_conv2d and _ex: the same bits */
    mf_rng r;
    mf_rng_seed(&r, 5);
    float img[2 * 7 * 7 * 3];
    for (int i = 0; i < 2 * 7 * 7 * 3; i++)
        img[i] = mf_rng_normal(&r);
    o = mf_conv_options_default();
    o.stride_h = o.stride_w = 2;
    o.padding = MF_PADDING_SAME;
    mf_model *a = one(mf_shape4(0, 7, 7, 3), mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_SAME, 1));
    mf_model *b = one(mf_shape4(0, 7, 7, 3), mf_depthwise_conv2d_ex(NULL, &o));
    mf_tensor ya = mf_model_forward(a, img, 2, MF_MODE_INFER, NULL);
    mf_tensor yb = mf_model_forward(b, img, 2, MF_MODE_INFER, NULL);
    MF_CHECK(memcmp(ya.data, yb.data, mf_tensor_numel(&ya) * sizeof(float)) == 0);
    mf_model_free(a);
    mf_model_free(b);

    /* SeparableConv2D(1 filter, 1x1, depth_multiplier 2) on a 1x2x1 image
     * (1, 2): depthwise (2, 3) gives z = (2x, 3x), pointwise (1, 10) gives
     * 2x + 30x = 32x, bias 1: (33, 65) */
    o = mf_conv_options_default();
    o.filters = 1;
    o.depth_multiplier = 2;
    o.kernel_h = o.kernel_w = 1;
    m = one(mf_shape4(0, 1, 2, 1), mf_separable_conv2d(NULL, &o));
    MF_CHECK(mf_model_count_trainable(m) == 2 + 2 + 1);
    weight(m, "depthwise_kernel")[0] = 2.0f;
    weight(m, "depthwise_kernel")[1] = 3.0f;
    weight(m, "pointwise_kernel")[0] = 1.0f;
    weight(m, "pointwise_kernel")[1] = 10.0f;
    weight(m, "bias")[0] = 1.0f;
    float x3[2] = {1, 2};
    y = mf_model_forward(m, x3, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 1 && y.shape.d[2] == 2 && y.shape.d[3] == 1);
    MF_CHECK_NEAR(y.data[0], 33.0f, 1e-5);
    MF_CHECK_NEAR(y.data[1], 65.0f, 1e-5);
    mf_model_free(m);

    /* SeparableConv2D(2 filters, 2x2 'valid', relu) on a 2x2x1 image 1..4:
     * ones give z = 10; pointwise (1, -1): (10, -10); bias (0.5, 0); relu:
     * (10.5, 0). Parameters 4 + 2 + 2. */
    o = mf_conv_options_default();
    o.filters = 2;
    o.kernel_h = o.kernel_w = 2;
    o.activation = MF_ACT_RELU;
    m = one(mf_shape4(0, 2, 2, 1), mf_separable_conv2d(NULL, &o));
    MF_CHECK(mf_model_count_trainable(m) == 8);
    for (int i = 0; i < 4; i++)
        weight(m, "depthwise_kernel")[i] = 1.0f;
    weight(m, "pointwise_kernel")[0] = 1.0f;
    weight(m, "pointwise_kernel")[1] = -1.0f;
    weight(m, "bias")[0] = 0.5f;
    weight(m, "bias")[1] = 0.0f;
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 1 && y.shape.d[2] == 1 && y.shape.d[3] == 2);
    MF_CHECK_NEAR(y.data[0], 10.5f, 1e-5);
    MF_CHECK_NEAR(y.data[1], 0.0f, 0);
    mf_model_free(m);

    /* refused, each with its reason */
    o = mf_conv_options_default();
    o.depth_multiplier = 0;
    MF_CHECK(mf_depthwise_conv2d_ex(NULL, &o) == NULL && strstr(mf_last_error(), "depth_multiplier"));
    o.depth_multiplier = 1;
    o.kernel_h = 8;
    MF_CHECK(mf_depthwise_conv2d_ex(NULL, &o) == NULL && strstr(mf_last_error(), "1..7"));
    o.kernel_h = 3;
    MF_CHECK(mf_separable_conv2d(NULL, &o) == NULL && strstr(mf_last_error(), "filters"));
}

static void test_dense_ex(void)
{
    /* Dense(2, softmax), kernel ((1, 0), (0, 1)), bias (0, ln 3): x = (0, 0)
     * gives logits (0, ln 3), probabilities (1/4, 3/4) */
    mf_model *m = one(mf_shape2(0, 2), mf_dense_ex(NULL, 2, 1, MF_ACT_SOFTMAX));
    float *k = weight(m, "kernel");
    k[0] = 1, k[1] = 0, k[2] = 0, k[3] = 1;
    weight(m, "bias")[0] = 0.0f;
    weight(m, "bias")[1] = logf(3.0f);
    float x[2] = {0, 0}, want[2] = {0.25f, 0.75f};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    check_all(y.data, want, 2, 1e-6);
    mf_model_free(m);
    MF_CHECK(mf_dense_ex(NULL, 3, 1, (mf_activation)42) == NULL);
}

static void test_batchnorm_ex(void)
{
    /* center=0, scale=0, inference, moving mean (1, -2), variance (3, 0.24),
     * epsilon 1: y = (x - mean) / sqrt(var + 1): x = (3, 0) -> (2/2, 2/1.1136) */
    mf_model *m = one(mf_shape2(0, 2), mf_batchnorm_ex(NULL, 0.99f, 1.0f, 0, 0));
    MF_CHECK(mf_model_num_param_tensors(m) == 2); /* moving_mean, moving_variance only */
    MF_CHECK(mf_model_count_trainable(m) == 0 && mf_model_count_non_trainable(m) == 4);
    float *mm = weight(m, "moving_mean"), *mv = weight(m, "moving_variance");
    mm[0] = 1, mm[1] = -2, mv[0] = 3, mv[1] = 0.24f;
    float x[2] = {3, 0}, want[2] = {1.0f, 2.0f / sqrtf(1.24f)};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    check_all(y.data, want, 2, 1e-6);
    mf_model_free(m);
    /* center only: beta kept, gamma gone; scale only: the other way round */
    m = one(mf_shape2(0, 3), mf_batchnorm_ex(NULL, 0.99f, 1e-3f, 1, 0));
    MF_CHECK(mf_model_num_param_tensors(m) == 3 && strcmp(mf_model_param(m, 0).name, "beta") == 0);
    mf_model_free(m);
    m = one(mf_shape2(0, 3), mf_batchnorm_ex(NULL, 0.99f, 1e-3f, 0, 1));
    MF_CHECK(mf_model_num_param_tensors(m) == 3 && strcmp(mf_model_param(m, 0).name, "gamma") == 0);
    mf_model_free(m);
}

static void test_initializers(void)
{
    const char *k2[] = {"GlorotUniform", "GlorotNormal",  "HeNormal",       "HeUniform",
                        "LecunNormal",   "LecunUniform",  "Zeros",          "Ones",
                        "RandomNormal",  "RandomUniform", "TruncatedNormal"};
    const char *snake[] = {"glorot_uniform", "glorot_normal",  "he_normal",       "he_uniform",
                           "lecun_normal",   "lecun_uniform",  "zeros",           "ones",
                           "random_normal",  "random_uniform", "truncated_normal"};
    for (int i = 0; i < 11; i++) {
        mf_initializer a = MF_INIT_DEFAULT, b = MF_INIT_DEFAULT;
        MF_CHECK(mf_initializer_parse(k2[i], &a) == MF_STATUS_OK && (int)a == i + 1);
        MF_CHECK(mf_initializer_parse(snake[i], &b) == MF_STATUS_OK && (int)b == i + 1);
    }
    mf_initializer bad = MF_INIT_ONES;
    MF_CHECK(mf_initializer_parse("Orthogonal", &bad) == MF_STATUS_INVALID && bad == MF_INIT_ONES);
    MF_CHECK(strstr(mf_last_error(), "'Orthogonal'") && strstr(mf_last_error(), "GlorotUniform"));

    /* a conv kernel (3,3,64,128): fan_in 576, fan_out 1152 (Keras' fans);
     * the variance each initializer must give, over 73,728 draws */
    mf_shape sh = mf_shape4(3, 3, 64, 128);
    size_t n = 3 * 3 * 64 * 128;
    double fi = 576, fo = 1152, tn = 0.87962566103423978 * 0.87962566103423978;
    struct {
        mf_initializer init;
        double var;
    } t[] = {
        {MF_INIT_GLOROT_UNIFORM, 2.0 / (fi + fo)},
        {MF_INIT_GLOROT_NORMAL, 2.0 / (fi + fo)},
        {MF_INIT_HE_NORMAL, 2.0 / fi},
        {MF_INIT_HE_UNIFORM, 2.0 / fi},
        {MF_INIT_LECUN_NORMAL, 1.0 / fi},
        {MF_INIT_LECUN_UNIFORM, 1.0 / fi},
        {MF_INIT_RANDOM_NORMAL, 0.0025},
        {MF_INIT_RANDOM_UNIFORM, 0.0025 / 3.0},
        {MF_INIT_TRUNCATED_NORMAL, 0.0025 * tn},
    };
    float *w = mf_alloc(n * sizeof(float));
    mf_rng r;
    mf_rng_seed(&r, 11);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        mf_init_fill(w, n, &sh, t[i].init, &r);
        double m1 = 0, m2 = 0, mx = 0;
        for (size_t j = 0; j < n; j++) {
            m1 += w[j];
            m2 += (double)w[j] * w[j];
            mx = fabs(w[j]) > mx ? fabs(w[j]) : mx;
        }
        m1 /= (double)n;
        double var = m2 / (double)n - m1 * m1;
        MF_CHECK_MSG(fabs(m1) < 4.0 * sqrt(t[i].var / (double)n), "initializer %d mean %g", (int)t[i].init, m1);
        MF_CHECK_MSG(fabs(var / t[i].var - 1.0) < 0.03, "initializer %d variance %g, want %g", (int)t[i].init, var,
                     t[i].var);
        /* the normal ones are truncated at 2 stddev of the untruncated normal */
        if (t[i].init == MF_INIT_HE_NORMAL)
            MF_CHECK(mx < 2.0 * sqrt(2.0 / fi) / 0.87962566103423978);
        if (t[i].init == MF_INIT_TRUNCATED_NORMAL)
            MF_CHECK(mx < 0.1);
        if (t[i].init == MF_INIT_HE_UNIFORM)
            MF_CHECK(mx <= sqrt(6.0 / fi));
    }
    mf_init_fill(w, n, &sh, MF_INIT_ONES, &r);
    for (size_t j = 0; j < n; j++)
        MF_CHECK(w[j] == 1.0f);
    mf_init_fill(w, n, &sh, MF_INIT_ZEROS, &r);
    for (size_t j = 0; j < n; j++)
        MF_CHECK(w[j] == 0.0f);
    mf_free(w);

    /* through a model: chosen per weight, honoured at build; a weight the
     * layer does not have fails the build, naming what it has */
    mf_layer *d = mf_dense(NULL, 3, 1);
    MF_CHECK(mf_layer_set_initializer(d, "kernel", MF_INIT_ONES) == MF_STATUS_OK);
    MF_CHECK(mf_layer_set_initializer(d, "bias", MF_INIT_ONES) == MF_STATUS_OK);
    MF_CHECK(mf_layer_set_initializer(d, "bias", MF_INIT_ZEROS) == MF_STATUS_OK); /* the last choice counts */
    mf_model *m = one(mf_shape2(0, 2), d);
    for (int j = 0; j < 6; j++)
        MF_CHECK(weight(m, "kernel")[j] == 1.0f);
    MF_CHECK(weight(m, "bias")[0] == 0.0f);
    mf_model_free(m);
    m = mf_model_create("bad");
    int x = mf_model_input(m, mf_shape2(0, 2));
    mf_layer *bn = mf_batchnorm_ex(NULL, 0.99f, 1e-3f, 0, 1);
    MF_CHECK(mf_layer_set_initializer(bn, "beta", MF_INIT_ONES) == MF_STATUS_OK);
    mf_model_add(m, bn, x);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_INVALID);
    MF_CHECK(strstr(mf_last_error(), "no weight 'beta'") && strstr(mf_last_error(), "gamma, moving_mean"));
    mf_model_free(m);
}

/* A digits-style net of the new layers trains: Conv2D(relu) -> MaxPooling2D
 * -> Conv2D(relu) -> MaxPooling2D -> Flatten -> Dropout -> Dense(softmax), on
 * 12x12 images of three classes (a bright row, column or diagonal at a random
 * place, plus noise), plain SGD on the cross-entropy of the probabilities. */
static void test_small_net_trains(void)
{
    mf_model *m = mf_model_create("digits");
    int x = mf_model_input(m, mf_shape4(0, 12, 12, 1));
    mf_conv_options o = mf_conv_options_default();
    o.filters = 8;
    o.activation = MF_ACT_RELU;
    o.padding = MF_PADDING_SAME;
    x = mf_model_add(m, mf_conv2d_ex(NULL, &o), x);
    x = mf_model_add(m, mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID), x);
    o.filters = 16;
    o.padding = MF_PADDING_VALID;
    x = mf_model_add(m, mf_conv2d_ex(NULL, &o), x);
    x = mf_model_add(m, mf_max_pool2d(NULL, 2, 2, 2, 2, MF_PADDING_VALID), x);
    x = mf_model_add(m, mf_flatten(NULL), x);
    x = mf_model_add(m, mf_dropout(NULL, 0.25f), x);
    mf_layer *head = mf_dense_ex(NULL, 3, 1, MF_ACT_SOFTMAX);
    MF_CHECK(mf_layer_set_initializer(head, "kernel", MF_INIT_HE_UNIFORM) == MF_STATUS_OK);
    x = mf_model_add(m, head, x);
    MF_CHECK(x == 7);
    MF_CHECK(mf_model_build(m, 5) == MF_STATUS_OK);
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 2)), "conv2d_1") == 0);
    MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 3)), "max_pooling2d_1") == 0);
    /* Keras' counts: 8*9+8 = 80, 16*72+16 = 1168, (2*2*16)*3+3 = 195 */
    MF_CHECK(mf_model_count_trainable(m) == 80 + 1168 + 195);

    enum { N = 48 };
    static float img[N * 144];
    int32_t y[N];
    mf_rng r;
    mf_rng_seed(&r, 21);
    for (int i = 0; i < N; i++) {
        y[i] = i % 3;
        int at = 2 + (int)mf_rng_below(&r, 8);
        for (int p = 0; p < 144; p++) {
            int h = p / 12, w = p % 12;
            int on = y[i] == 0 ? h == at : y[i] == 1 ? w == at : h == w;
            img[i * 144 + p] = (on ? 1.0f : 0.0f) + 0.2f * mf_rng_normal(&r);
        }
    }
    float dprob[N * 3];
    double first = 0, last = 0;
    mf_rng drop;
    mf_rng_seed(&drop, 3);
    for (int step = 0; step < 60; step++) {
        mf_tensor p = mf_model_forward(m, img, N, MF_MODE_TRAIN, &drop);
        double loss = 0;
        for (int i = 0; i < N * 3; i++)
            dprob[i] = 0.0f;
        for (int i = 0; i < N; i++) {
            float py = p.data[i * 3 + y[i]];
            loss -= log(py > 1e-12f ? py : 1e-12f) / N;
            dprob[i * 3 + y[i]] = -1.0f / (N * (py > 1e-12f ? py : 1e-12f));
        }
        if (step < 5)
            first += loss / 5;
        if (step >= 55)
            last += loss / 5;
        mf_model_zero_grad(m);
        mf_model_backward(m, dprob, NULL);
        float *w = mf_model_params(m), *g = mf_model_grads(m);
        for (size_t i = 0; i < mf_model_num_params(m); i++)
            w[i] -= 0.1f * g[i];
    }
    printf("small net: loss %.3f over the first 5 steps, %.3f over the last 5\n", first, last);
    MF_CHECK(first > 0.9 && last < 0.5 * first);
    mf_model_summary(m, stdout);
    mf_model_free(m);
}

int main(void)
{
    test_initializers();
    test_small_net_trains();
    test_batchnorm_ex();
    test_conv_ex();
    test_depthwise_separable_ex();
    test_dense_ex();
    test_activation_parse();
    test_activation_values();
    test_max_pool();
    test_avg_pool();
    test_global_max_flatten_rescaling();
    test_concatenate_add_n();
    MF_CHECK(mf_alloc_live_count() == 0);
    return mf_test_report();
}
