/* test_zoo.c: MobileNetV2 has Keras' structure, names and parameter counts for
 * every alpha (../shared/reference/mobilenet_v2_param_counts.md, copied here so
 * the test needs no file), any input size >= 32, and the seed's classifier. */
#include <string.h>
#include "mpifit.h"
#include "test.h"

typedef struct {
    float alpha;
    size_t total, trainable, non_trainable, with_top, classifier3;
} counts;

static const counts keras[] = {
    {0.35f, 410208, 396128, 14080, 1691208, 414051},    {0.5f, 706224, 687680, 18544, 1987224, 710067},
    {0.75f, 1382064, 1355424, 26640, 2663064, 1385907}, {1.0f, 2257984, 2223872, 34112, 3538984, 2261827},
    {1.3f, 3766048, 3721792, 44256, 5431048, 3771043},  {1.4f, 4363712, 4315776, 47936, 6156712, 4369091},
};

static size_t total(const mf_model *m) { return mf_model_count_trainable(m) + mf_model_count_non_trainable(m); }

int main(void)
{
    for (int i = 0; i < 6; i++) {
        const counts *k = &keras[i];
        mf_model *m;
        MF_CHECK(mf_mobilenet_v2(&m, k->alpha, 224, 0, 0, 1) == MF_STATUS_OK);
        MF_CHECK_MSG(total(m) == k->total && mf_model_count_trainable(m) == k->trainable &&
                         mf_model_count_non_trainable(m) == k->non_trainable,
                     "alpha %.2f: %zu / %zu / %zu, Keras %zu / %zu / %zu", (double)k->alpha, total(m),
                     mf_model_count_trainable(m), mf_model_count_non_trainable(m), k->total, k->trainable,
                     k->non_trainable);
        mf_model_free(m);
        MF_CHECK(mf_mobilenet_v2(&m, k->alpha, 160, 1, 1000, 1) == MF_STATUS_OK);
        MF_CHECK_MSG(total(m) == k->with_top, "alpha %.2f with top: %zu, Keras %zu", (double)k->alpha, total(m),
                     k->with_top);
        mf_model_free(m);
        MF_CHECK(mf_mobilenet_v2_classifier(&m, k->alpha, 96, 3, 0.2f, 1) == MF_STATUS_OK);
        MF_CHECK_MSG(total(m) == k->classifier3, "alpha %.2f + GAP/dropout/dense(3): %zu, Keras %zu", (double)k->alpha,
                     total(m), k->classifier3);
        mf_model_free(m);
    }

    /* structure and names, as in the Keras weight file's layer_names */
    mf_model *m;
    MF_CHECK(mf_mobilenet_v2_classifier(&m, 1.0f, 224, 3, 0.2f, 1) == MF_STATUS_OK);
    MF_CHECK(strcmp(mf_model_name(m), "mobilenetv2_1.00_224") == 0);
    MF_CHECK(mf_model_num_layers(m) == 153 + 3);
    const char *first[] = {"Conv1",
                           "bn_Conv1",
                           "Conv1_relu",
                           "expanded_conv_depthwise",
                           "expanded_conv_depthwise_BN",
                           "expanded_conv_depthwise_relu",
                           "expanded_conv_project",
                           "expanded_conv_project_BN",
                           "block_1_expand",
                           "block_1_expand_BN",
                           "block_1_expand_relu",
                           "block_1_pad",
                           "block_1_depthwise"};
    for (int i = 0; i < 13; i++)
        MF_CHECK_MSG(strcmp(mf_layer_name(mf_model_layer(m, i)), first[i]) == 0, "layer %d is %s, want %s", i,
                     mf_layer_name(mf_model_layer(m, i)), first[i]);
    MF_CHECK(mf_model_find_layer(m, "block_2_add") && mf_model_find_layer(m, "block_16_project_BN"));
    MF_CHECK(!mf_model_find_layer(m, "block_3_add") && !mf_model_find_layer(m, "Conv1_pad"));
    const char *last[] = {"Conv_1", "Conv_1_bn", "out_relu", "global_average_pooling2d", "dropout", "dense"};
    for (int i = 0; i < 6; i++)
        MF_CHECK(strcmp(mf_layer_name(mf_model_layer(m, 150 + i)), last[i]) == 0);
    mf_shape o = mf_layer_output_shape(mf_model_find_layer(m, "out_relu"));
    MF_CHECK(o.d[1] == 7 && o.d[2] == 7 && o.d[3] == 1280);
    MF_CHECK(strcmp(mf_layer_kind(mf_model_find_layer(m, "block_1_pad")), "ZeroPadding2D") == 0);
    /* freezing the base: Keras reports its weights as non-trainable */
    MF_CHECK(mf_model_set_trainable_upto(m, "out_relu", 0) == MF_STATUS_OK);
    MF_CHECK(mf_model_count_trainable(m) == 1280 * 3 + 3);
    MF_CHECK(mf_model_count_non_trainable(m) == 2257984);
    MF_CHECK(mf_model_set_trainable_upto(m, "nope", 0) == MF_STATUS_INVALID);
    mf_model_free(m);

    /* any input size >= 32, odd ones too (correct_pad then pads 1 on every side) */
    const int sizes[] = {32, 33, 97, 128, 161};
    for (int i = 0; i < 5; i++) {
        MF_CHECK(mf_mobilenet_v2(&m, 0.35f, sizes[i], 0, 0, 1) == MF_STATUS_OK);
        mf_shape s = mf_model_output_shape(m);
        int want = sizes[i];
        for (int k = 0; k < 5; k++)
            want = (want + 1) / 2; /* five stride-2 stages, "same" rounding */
        MF_CHECK_MSG(s.d[1] == want && s.d[2] == want, "input %d -> %dx%d, want %d", sizes[i], s.d[1], s.d[2], want);
        mf_model_free(m);
    }
    MF_CHECK(mf_mobilenet_v2(&m, 0.6f, 224, 0, 0, 1) == MF_STATUS_INVALID);
    MF_CHECK(strstr(mf_last_error(), "0.35, 0.5") != NULL);
    MF_CHECK(mf_mobilenet_v2(&m, 1.0f, 31, 0, 0, 1) == MF_STATUS_INVALID);

    /* a forward and backward pass of a small MobileNetV2 runs and is finite */
    MF_CHECK(mf_mobilenet_v2_classifier(&m, 0.35f, 32, 3, 0.2f, 1) == MF_STATUS_OK);
    static float x[2 * 32 * 32 * 3];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)((i * 31) % 255) / 127.5f - 1.0f;
    mf_rng r;
    mf_rng_seed(&r, 1);
    mf_tensor y = mf_model_forward(m, x, 2, MF_MODE_TRAIN, &r);
    float dy[6] = {0.1f, -0.2f, 0.1f, 0.3f, 0.0f, -0.3f};
    int finite = 1;
    for (int i = 0; i < 6; i++)
        finite &= y.data[i] == y.data[i];
    mf_model_zero_grad(m);
    mf_model_backward(m, dy, NULL);
    for (size_t i = 0; i < mf_model_num_params(m); i++)
        finite &= mf_model_grads(m)[i] == mf_model_grads(m)[i];
    MF_CHECK(finite);
    mf_model_free(m);

    MF_CHECK(mf_small_cnn(&m, 32, 3, 8, 0.1f, 1) == MF_STATUS_OK);
    MF_CHECK(mf_model_num_layers(m) == 12);
    mf_model_free(m);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
