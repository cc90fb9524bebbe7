/* test_layers_ref.c: forward passes against small cases computed by hand. */
#include <math.h>
#include <string.h>
#include "mpifit.h"
#include "test.h"

/* A model of one layer on `in`; weights are set by the caller through params. */
static mf_model *one(mf_shape in, mf_layer *l)
{
    mf_model *m = mf_model_create("ref");
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

static void test_conv_same_s1(void)
{
    /* 3x3 image 1..9, ones kernel, bias 0.5: each output is the 3x3 sum around it */
    mf_model *m = one(mf_shape4(0, 3, 3, 1), mf_conv2d(NULL, 1, 3, 1, MF_PADDING_SAME, 1));
    float *k = weight(m, "kernel");
    for (int i = 0; i < 9; i++)
        k[i] = 1.0f;
    weight(m, "bias")[0] = 0.5f;
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int i = 0; i < 9; i++)
        MF_CHECK_NEAR(y.data[i], want[i] + 0.5f, 1e-5);
    mf_model_free(m);
}

static void test_conv_same_s2_even(void)
{
    /* TensorFlow "same", stride 2 on 4x4: Ho = 2, the one pad row/column goes
     * bottom/right, so output (0,0) covers rows/cols 0..2 */
    mf_model *m = one(mf_shape4(0, 4, 4, 1), mf_conv2d(NULL, 1, 3, 2, MF_PADDING_SAME, 0));
    float *k = weight(m, "kernel");
    for (int i = 0; i < 9; i++)
        k[i] = 1.0f;
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    float want[4] = {54, 45, 72, 54};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 2 && y.shape.d[2] == 2);
    for (int i = 0; i < 4; i++)
        MF_CHECK_NEAR(y.data[i], want[i], 1e-5);
    mf_model_free(m);
}

static void test_conv_channels(void)
{
    /* 1x1 conv = per-pixel matrix product with the HWIO kernel (Cin=2, F=3) */
    mf_model *m = one(mf_shape4(0, 1, 2, 2), mf_conv2d(NULL, 3, 1, 1, MF_PADDING_VALID, 0));
    float *k = weight(m, "kernel"); /* (1,1,2,3): k[ci*3 + f] */
    float kv[6] = {1, 2, 3, 4, 5, 6};
    memcpy(k, kv, sizeof kv);
    float x[4] = {1, 10, -1, 0.5f}; /* pixel0 (1,10), pixel1 (-1,0.5) */
    float want[6] = {41, 52, 63, 1, 0.5f, 0};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int i = 0; i < 6; i++)
        MF_CHECK_NEAR(y.data[i], want[i], 1e-5);
    mf_model_free(m);
    /* the same through im2col (3x3 valid on a 3x3 image = one dot product per filter) */
    m = one(mf_shape4(0, 3, 3, 2), mf_conv2d(NULL, 2, 3, 1, MF_PADDING_VALID, 0));
    k = weight(m, "kernel"); /* (3,3,2,2) */
    float x2[18];
    double w0 = 0, w1 = 0;
    for (int i = 0; i < 18; i++) {
        x2[i] = (float)(i % 5) - 2.0f;
        k[2 * i] = (float)i / 10.0f;
        k[2 * i + 1] = i % 2 ? 1.0f : -1.0f;
        w0 += (double)x2[i] * k[2 * i];
        w1 += (double)x2[i] * k[2 * i + 1];
    }
    y = mf_model_forward(m, x2, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 1 && y.shape.d[2] == 1 && y.shape.d[3] == 2);
    MF_CHECK_NEAR(y.data[0], w0, 1e-4);
    MF_CHECK_NEAR(y.data[1], w1, 1e-4);
    mf_model_free(m);
}

static void test_depthwise(void)
{
    /* two channels, 3x3 image; channel 0 kernel all ones, channel 1 only centre = 2 */
    mf_model *m = one(mf_shape4(0, 3, 3, 2), mf_depthwise_conv2d(NULL, 3, 1, MF_PADDING_SAME, 0));
    float *k = weight(m, "depthwise_kernel"); /* (3,3,2,1): k[(kh*3+kw)*2 + c] */
    for (int t = 0; t < 9; t++) {
        k[t * 2] = 1.0f;
        k[t * 2 + 1] = t == 4 ? 2.0f : 0.0f;
    }
    float x[18];
    for (int p = 0; p < 9; p++) {
        x[p * 2] = (float)(p + 1);
        x[p * 2 + 1] = (float)(10 * (p + 1));
    }
    float want0[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int p = 0; p < 9; p++) {
        MF_CHECK_NEAR(y.data[p * 2], want0[p], 1e-5);
        MF_CHECK_NEAR(y.data[p * 2 + 1], 20.0f * (p + 1), 1e-4);
    }
    mf_model_free(m);
    /* stride 2 "valid" on 5x5 after ZeroPadding ((0,1),(0,1)) -> 3x3 out: MobileNetV2's pattern */
    m = mf_model_create("pad_dw");
    int in = mf_model_input(m, mf_shape4(0, 4, 4, 1));
    int p = mf_model_add(m, mf_zero_pad2d(NULL, 0, 1, 0, 1), in);
    mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_VALID, 0), p);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    k = weight(m, "depthwise_kernel");
    for (int t = 0; t < 9; t++)
        k[t] = 1.0f;
    float x16[16];
    for (int i = 0; i < 16; i++)
        x16[i] = (float)(i + 1);
    y = mf_model_forward(m, x16, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 2 && y.shape.d[2] == 2);
    float want[4] = {54, 45, 72, 54}; /* identical to Conv2D "same" stride 2 above */
    for (int i = 0; i < 4; i++)
        MF_CHECK_NEAR(y.data[i], want[i], 1e-5);
    mf_model_free(m);
}

static void test_batchnorm(void)
{
    /* channel 0: 1,2,3,4 (mean 2.5, var 1.25); channel 1: all 5 (var 0) */
    mf_model *m = one(mf_shape4(0, 2, 2, 2), mf_batchnorm(NULL, 0.99f, 1e-3f));
    weight(m, "gamma")[0] = 2.0f;
    weight(m, "beta")[0] = 1.0f;
    weight(m, "beta")[1] = -1.0f;
    float x[8] = {1, 5, 2, 5, 3, 5, 4, 5};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_TRAIN, NULL);
    for (int p = 0; p < 4; p++) {
        MF_CHECK_NEAR(y.data[2 * p], 2.0 * ((p + 1) - 2.5) / sqrt(1.25 + 1e-3) + 1.0, 1e-5);
        MF_CHECK_NEAR(y.data[2 * p + 1], -1.0, 1e-5);
    }
    /* moving statistics: momentum 0.99; variance unbiased (4/3 * 1.25) for NHWC */
    MF_CHECK_NEAR(weight(m, "moving_mean")[0], 0.01 * 2.5, 1e-6);
    MF_CHECK_NEAR(weight(m, "moving_mean")[1], 0.01 * 5.0, 1e-6);
    MF_CHECK_NEAR(weight(m, "moving_variance")[0], 0.99 + 0.01 * 1.25 * 4.0 / 3.0, 1e-6);
    MF_CHECK_NEAR(weight(m, "moving_variance")[1], 0.99, 1e-6);
    /* inference uses the moving statistics */
    weight(m, "moving_mean")[0] = 1.0f;
    weight(m, "moving_variance")[0] = 4.0f;
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int p = 0; p < 4; p++)
        MF_CHECK_NEAR(y.data[2 * p], 2.0 * ((p + 1) - 1.0) / sqrt(4.0 + 1e-3) + 1.0, 1e-5);
    mf_model_free(m);
}

static void test_elementwise(void)
{
    mf_model *m = one(mf_shape2(0, 6), mf_relu(NULL, 6.0f));
    float x[6] = {-3, 0, 2.5f, 6, 7, 1e9f};
    float want[6] = {0, 0, 2.5f, 6, 6, 6};
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    for (int i = 0; i < 6; i++)
        MF_CHECK(y.data[i] == want[i]);
    mf_model_free(m);

    m = one(mf_shape4(0, 1, 2, 1), mf_zero_pad2d(NULL, 1, 0, 0, 2));
    float xp[2] = {7, 8};
    y = mf_model_forward(m, xp, 1, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[1] == 2 && y.shape.d[2] == 4);
    float wp[8] = {0, 0, 0, 0, 7, 8, 0, 0};
    for (int i = 0; i < 8; i++)
        MF_CHECK(y.data[i] == wp[i]);
    mf_model_free(m);

    m = one(mf_shape4(0, 2, 1, 2), mf_global_avg_pool2d(NULL));
    float xg[8] = {1, 10, 3, 20, /* sample 2 */ -1, 0, -3, 4};
    y = mf_model_forward(m, xg, 2, MF_MODE_INFER, NULL);
    float wg[4] = {2, 15, -2, 2};
    for (int i = 0; i < 4; i++)
        MF_CHECK_NEAR(y.data[i], wg[i], 1e-6);
    mf_model_free(m);

    m = one(mf_shape2(0, 2), mf_dense(NULL, 2, 1));
    float *k = weight(m, "kernel"); /* (in 2, out 2) */
    k[0] = 1;
    k[1] = 2;
    k[2] = 3;
    k[3] = 4;
    weight(m, "bias")[1] = 0.5f;
    float xd[2] = {1, -1};
    y = mf_model_forward(m, xd, 1, MF_MODE_INFER, NULL);
    MF_CHECK_NEAR(y.data[0], 1 - 3, 1e-6);
    MF_CHECK_NEAR(y.data[1], 2 - 4 + 0.5, 1e-6);
    mf_model_free(m);
}

static void test_dropout(void)
{
    enum { N = 20000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = 1.0f;
    mf_model *m = one(mf_shape2(0, N), mf_dropout(NULL, 0.25f));
    mf_rng r;
    mf_rng_seed(&r, 7);
    mf_tensor y = mf_model_forward(m, x, 1, MF_MODE_TRAIN, &r);
    int dropped = 0, scaled = 1;
    for (int i = 0; i < N; i++) {
        if (y.data[i] == 0.0f)
            dropped++;
        else
            scaled &= fabsf(y.data[i] - 1.0f / 0.75f) < 1e-6f;
    }
    MF_CHECK(scaled);
    MF_CHECK_NEAR(dropped / (double)N, 0.25, 0.015);
    static float first[N];
    memcpy(first, y.data, sizeof first);
    mf_rng_seed(&r, 7);
    y = mf_model_forward(m, x, 1, MF_MODE_TRAIN, &r);
    MF_CHECK_MSG(memcmp(first, y.data, sizeof first) == 0, "same seed, same mask");
    y = mf_model_forward(m, x, 1, MF_MODE_INFER, NULL);
    int identity = 1;
    for (int i = 0; i < N; i++)
        identity &= y.data[i] == 1.0f;
    MF_CHECK_MSG(identity, "inference is the identity");
    mf_model_free(m);
}

static void test_softmax_xent(void)
{
    float z[3] = {0, 0, 0}, p[3];
    int32_t lab[2] = {1, 0};
    MF_CHECK_NEAR(mf_softmax_xent_forward(p, z, lab, NULL, 1, 3), log(3.0), 1e-7);
    for (int c = 0; c < 3; c++)
        MF_CHECK_NEAR(p[c], 1.0 / 3.0, 1e-7);
    /* huge logits stay finite: log-sum-exp */
    float big[6] = {1000, 0, -1000, 1000, 0, -1000};
    int32_t yb[2] = {0, 2};
    double l = mf_softmax_xent_forward(p, big, yb, NULL, 1, 3);
    MF_CHECK(isfinite(l) && l < 1e-6);
    MF_CHECK_NEAR(mf_softmax_xent_forward(NULL, big + 3, yb + 1, NULL, 1, 3), 2000.0, 1e-3);
    /* per-sample weights, Keras reduction: sum(w_i * l_i) / N */
    float two[6] = {0, 0, 0, 2, 0, 0};
    float w[2] = {2.0f, 0.0f};
    double l0 = log(3.0);
    MF_CHECK_NEAR(mf_softmax_xent_forward(NULL, two, lab, w, 2, 3), (2.0 * l0 + 0.0) / 2.0, 1e-6);
    /* gradient: w_i (p - onehot) / N, checked against central differences */
    float pr[6], g[6];
    float zz[6] = {0.3f, -1.2f, 2.0f, 0.1f, 0.4f, -0.7f};
    float wv[2] = {0.5f, 1.5f};
    mf_softmax_xent_forward(pr, zz, lab, wv, 2, 3);
    mf_softmax_xent_backward(g, pr, lab, wv, 2, 3, 1.0f);
    for (int i = 0; i < 6; i++) {
        float keep = zz[i];
        zz[i] = keep + 1e-3f;
        double lp = mf_softmax_xent_forward(NULL, zz, lab, wv, 2, 3);
        zz[i] = keep - 1e-3f;
        double lm = mf_softmax_xent_forward(NULL, zz, lab, wv, 2, 3);
        zz[i] = keep;
        MF_CHECK_NEAR(g[i], (lp - lm) / 2e-3, 2e-4);
    }
}

int main(void)
{
    test_conv_same_s1();
    test_conv_same_s2_even();
    test_conv_channels();
    test_depthwise();
    test_batchnorm();
    test_elementwise();
    test_dropout();
    test_softmax_xent();
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
