/* zoo_mobilenet_v2.c: keras.applications.MobileNetV2 (Sandler et al., 2018),
 * layer for layer: same structure, names, channel rounding and hyper-parameters,
 * so Keras weight files load by name and parameter counts match Keras' own
 * (alpha 1.0 without top: 2,257,984 of which 34,112 non-trainable). */
#include <stdio.h>
#include "model_internal.h"

/* Keras' _make_divisible(v, 8): round to the nearest multiple of 8, at least 8,
 * and never more than 10% below v. */
static int make_divisible(double v)
{
    int d = 8;
    int n = (int)(v + d / 2.0) / d * d;
    if (n < d)
        n = d;
    if (n < 0.9 * v)
        n += d;
    return n;
}

/* BatchNormalization as MobileNetV2 configures it. */
static mf_layer *bn(const char *name) { return mf_batchnorm(name, 0.999f, 1e-3f); }

/* One inverted-residual block: [expand 1x1 -> BN -> ReLU6] -> (pad) depthwise
 * 3x3 -> BN -> ReLU6 -> project 1x1 -> BN (-> + input). Block 0 has no expand
 * layer and the prefix "expanded_conv_". */
static int inverted_res_block(mf_model *m, int x, int filters, float alpha, int stride, int expansion, int block_id)
{
    mf_shape in = m->nodes[x].shape;
    int in_channels = in.d[3];
    int pointwise = make_divisible((double)(int)(filters * alpha));
    char prefix[32], name[64];
    int y = x;
    if (block_id) {
        snprintf(prefix, sizeof prefix, "block_%d_", block_id);
        snprintf(name, sizeof name, "%sexpand", prefix);
        y = mf_model_add(m, mf_conv2d(name, expansion * in_channels, 1, 1, MF_PADDING_SAME, 0), y);
        snprintf(name, sizeof name, "%sexpand_BN", prefix);
        y = mf_model_add(m, bn(name), y);
        snprintf(name, sizeof name, "%sexpand_relu", prefix);
        y = mf_model_add(m, mf_relu(name, 6.0f), y);
    } else {
        snprintf(prefix, sizeof prefix, "expanded_conv_");
    }
    if (y < 0)
        return -1;
    if (stride == 2) {
        /* imagenet_utils.correct_pad: ((1,1),(1,1)) for odd sizes, ((0,1),(0,1)) for even */
        mf_shape s = m->nodes[y].shape;
        int adj_h = 1 - s.d[1] % 2, adj_w = 1 - s.d[2] % 2;
        snprintf(name, sizeof name, "%spad", prefix);
        y = mf_model_add(m, mf_zero_pad2d(name, 1 - adj_h, 1, 1 - adj_w, 1), y);
    }
    snprintf(name, sizeof name, "%sdepthwise", prefix);
    y = mf_model_add(m, mf_depthwise_conv2d(name, 3, stride, stride == 1 ? MF_PADDING_SAME : MF_PADDING_VALID, 0), y);
    snprintf(name, sizeof name, "%sdepthwise_BN", prefix);
    y = mf_model_add(m, bn(name), y);
    snprintf(name, sizeof name, "%sdepthwise_relu", prefix);
    y = mf_model_add(m, mf_relu(name, 6.0f), y);
    snprintf(name, sizeof name, "%sproject", prefix);
    y = mf_model_add(m, mf_conv2d(name, pointwise, 1, 1, MF_PADDING_SAME, 0), y);
    snprintf(name, sizeof name, "%sproject_BN", prefix);
    y = mf_model_add(m, bn(name), y);
    if (y >= 0 && in_channels == pointwise && stride == 1) {
        snprintf(name, sizeof name, "%sadd", prefix);
        y = mf_model_add2(m, mf_add(name), x, y);
    }
    return y;
}

static int alpha_ok(float a)
{
    const float ok[] = {0.35f, 0.5f, 0.75f, 1.0f, 1.3f, 1.4f};
    for (int i = 0; i < 6; i++)
        if (a == ok[i])
            return 1;
    return 0;
}

int mf_mobilenet_v2_base(mf_model *m, int x, float alpha)
{
    if (!alpha_ok(alpha)) {
        mf_fail(MF_STATUS_INVALID, "MobileNetV2: alpha must be one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4, got %g",
                (double)alpha);
        return -1;
    }
    if (x < 0 || x >= m->n_nodes || m->nodes[x].shape.ndim != 4) {
        mf_fail(MF_STATUS_SHAPE, "MobileNetV2: the base needs an (N,H,W,C) input node");
        return -1;
    }
    /* (filters, stride, expansion) of blocks 0..16 */
    static const int blocks[17][3] = {
        {16, 1, 1}, {24, 2, 6}, {24, 1, 6}, {32, 2, 6}, {32, 1, 6},  {32, 1, 6},  {64, 2, 6},  {64, 1, 6},  {64, 1, 6},
        {64, 1, 6}, {96, 1, 6}, {96, 1, 6}, {96, 1, 6}, {160, 2, 6}, {160, 1, 6}, {160, 1, 6}, {320, 1, 6},
    };
    x = mf_model_add(m, mf_conv2d("Conv1", make_divisible(32 * alpha), 3, 2, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, bn("bn_Conv1"), x);
    x = mf_model_add(m, mf_relu("Conv1_relu", 6.0f), x);
    for (int b = 0; b < 17 && x >= 0; b++)
        x = inverted_res_block(m, x, blocks[b][0], alpha, blocks[b][1], blocks[b][2], b);
    int last = alpha > 1.0f ? make_divisible(1280 * alpha) : 1280;
    x = mf_model_add(m, mf_conv2d("Conv_1", last, 1, 1, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, bn("Conv_1_bn"), x);
    return mf_model_add(m, mf_relu("out_relu", 6.0f), x);
}

static mf_status finish(mf_model *m, int out, uint64_t seed, mf_model **result)
{
    mf_status s = out < 0 ? MF_STATUS_INVALID : mf_model_build(m, seed);
    if (s != MF_STATUS_OK) {
        mf_model_free(m);
        return out < 0 ? (mf_status)MF_STATUS_INVALID : s;
    }
    *result = m;
    return MF_STATUS_OK;
}

static mf_model *input_model(float alpha, int input_size)
{
    char name[64];
    snprintf(name, sizeof name, "mobilenetv2_%.2f_%d", (double)alpha, input_size);
    mf_model *m = mf_model_create(name);
    mf_model_input(m, mf_shape4(0, input_size, input_size, 3));
    return m;
}

mf_status mf_mobilenet_v2(mf_model **out, float alpha, int input_size, int include_top, int classes, uint64_t seed)
{
    *out = NULL;
    if (input_size < 32)
        return mf_fail(MF_STATUS_INVALID, "MobileNetV2: input_size must be >= 32, got %d", input_size);
    if (include_top && classes <= 0)
        return mf_fail(MF_STATUS_INVALID, "MobileNetV2: classes must be > 0 with include_top, got %d", classes);
    mf_model *m = input_model(alpha, input_size);
    int x = mf_mobilenet_v2_base(m, 0, alpha);
    if (include_top && x >= 0) {
        x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
        x = mf_model_add(m, mf_dense("predictions", classes, 1), x);
    }
    return finish(m, x, seed, out);
}

mf_status mf_mobilenet_v2_classifier(mf_model **out, float alpha, int input_size, int classes, float dropout,
                                     uint64_t seed)
{
    *out = NULL;
    if (input_size < 32)
        return mf_fail(MF_STATUS_INVALID, "MobileNetV2: input_size must be >= 32, got %d", input_size);
    if (classes <= 0)
        return mf_fail(MF_STATUS_INVALID, "MobileNetV2 classifier: classes must be > 0, got %d", classes);
    mf_model *m = input_model(alpha, input_size);
    int x = mf_mobilenet_v2_base(m, 0, alpha);
    if (x >= 0) {
        x = mf_model_add(m, mf_global_avg_pool2d("global_average_pooling2d"), x);
        x = mf_model_add(m, mf_dropout("dropout", dropout), x);
        x = mf_model_add(m, mf_dense("dense", classes, 1), x);
    }
    return finish(m, x, seed, out);
}

mf_status mf_small_cnn(mf_model **out, int input_size, int classes, int width, float dropout, uint64_t seed)
{
    *out = NULL;
    if (input_size < 8 || classes <= 0 || width <= 0)
        return mf_fail(MF_STATUS_INVALID,
                       "small_cnn: input_size >= 8, classes > 0 and width > 0 required, got %d, %d, %d", input_size,
                       classes, width);
    mf_model *m = mf_model_create("small_cnn");
    int x = mf_model_input(m, mf_shape4(0, input_size, input_size, 3));
    for (int stage = 0; stage < 3 && x >= 0; stage++) {
        x = mf_model_add(m, mf_conv2d(NULL, width << stage, 3, stage ? 2 : 1, MF_PADDING_SAME, 0), x);
        x = mf_model_add(m, mf_batchnorm(NULL, 0.99f, 1e-3f), x);
        x = mf_model_add(m, mf_relu(NULL, 0.0f), x);
    }
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dropout(NULL, dropout), x);
    x = mf_model_add(m, mf_dense(NULL, classes, 1), x);
    return finish(m, x, seed, out);
}
