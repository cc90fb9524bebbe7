/* test_model.c: graph building, the one-buffer parameter layout, Keras names and
 * counts, frozen layers, errors that name the layer. */
#include <stdint.h>
#include <string.h>
#include "mpifit.h"
#include "test.h"

static mf_model *small(int freeze_first)
{
    mf_model *m = mf_model_create("small");
    int x = mf_model_input(m, mf_shape4(0, 9, 9, 3));
    mf_layer *c = mf_conv2d(NULL, 8, 3, 2, MF_PADDING_SAME, 0);
    if (freeze_first)
        mf_layer_set_trainable(c, 0);
    x = mf_model_add(m, c, x);
    mf_layer *bn = mf_batchnorm(NULL, 0.99f, 1e-3f);
    if (freeze_first)
        mf_layer_set_trainable(bn, 0);
    x = mf_model_add(m, bn, x);
    x = mf_model_add(m, mf_relu(NULL, 6.0f), x);
    int y = mf_model_add(m, mf_conv2d(NULL, 8, 1, 1, MF_PADDING_SAME, 1), x);
    x = mf_model_add2(m, mf_add(NULL), y, x);
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dense(NULL, 3, 1), x);
    MF_CHECK(x == 7);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    return m;
}

static void test_layout(void)
{
    mf_model *m = small(0);
    const char *names[] = {"conv2d", "batch_normalization",      "re_lu", "conv2d_1",
                           "add",    "global_average_pooling2d", "dense"};
    MF_CHECK(mf_model_num_layers(m) == 7);
    for (int i = 0; i < 7; i++)
        MF_CHECK_MSG(strcmp(mf_layer_name(mf_model_layer(m, i)), names[i]) == 0, "layer %d is '%s', want '%s'", i,
                     mf_layer_name(mf_model_layer(m, i)), names[i]);
    /* Keras' counts: conv 3*3*3*8 = 216; BN 4*8 (16 trainable, 16 state); conv_1 8*8+8 = 72; dense 8*3+3 = 27 */
    MF_CHECK(mf_model_count_trainable(m) == 216 + 16 + 72 + 27);
    MF_CHECK(mf_model_count_non_trainable(m) == 16);
    /* every tensor lies inside its one buffer, aligned, without overlap, in layer order */
    size_t end_p = 0, end_s = 0;
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info p = mf_model_param(m, i);
        size_t *end = p.kind == MF_PARAM_TRAINABLE ? &end_p : &end_s;
        MF_CHECK(p.offset >= *end);
        MF_CHECK((p.offset * sizeof(float)) % MF_ALIGN == 0);
        *end = p.offset + p.numel;
    }
    MF_CHECK(end_p <= mf_model_num_params(m));
    MF_CHECK(end_s <= mf_model_num_state(m));
    MF_CHECK(((uintptr_t)mf_model_params(m) % MF_ALIGN) == 0);
    mf_param_info k = mf_model_param(m, 0);
    MF_CHECK(strcmp(k.layer, "conv2d") == 0 && strcmp(k.name, "kernel") == 0);
    MF_CHECK(k.shape.ndim == 4 && k.shape.d[0] == 3 && k.shape.d[1] == 3 && k.shape.d[2] == 3 && k.shape.d[3] == 8);
    mf_param_info mv = mf_model_param(m, 4);
    MF_CHECK(strcmp(mv.name, "moving_variance") == 0 && mv.kind == MF_PARAM_STATE);
    /* BN init: moving variance 1 */
    MF_CHECK(mf_model_state(m)[mv.offset] == 1.0f);
    mf_shape o = mf_model_output_shape(m);
    MF_CHECK(o.ndim == 2 && o.d[1] == 3);
    mf_model_free(m);
}

static void test_frozen(void)
{
    mf_model *m = small(1);
    /* frozen conv (216) and BN gamma/beta (16) count as non-trainable, as in Keras */
    MF_CHECK(mf_model_count_trainable(m) == 72 + 27);
    MF_CHECK(mf_model_count_non_trainable(m) == 216 + 16 + 16);
    float x[2 * 9 * 9 * 3], dout[2 * 3] = {1, -1, 0.5f, 0.25f, 2, -3};
    for (int i = 0; i < 2 * 9 * 9 * 3; i++)
        x[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
    mf_param_info bn_mean = mf_model_param(m, 3);
    MF_CHECK(strcmp(bn_mean.name, "moving_mean") == 0);
    mf_model_forward(m, x, 2, MF_MODE_TRAIN, NULL);
    /* a frozen BatchNorm runs in inference mode: its moving mean stays 0 */
    MF_CHECK(mf_model_state(m)[bn_mean.offset] == 0.0f);
    mf_model_zero_grad(m);
    mf_model_backward(m, dout, NULL);
    const float *g = mf_model_grads(m);
    int frozen_zero = 1, head_nonzero = 0;
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info p = mf_model_param(m, i);
        if (p.kind != MF_PARAM_TRAINABLE)
            continue;
        for (size_t k = 0; k < p.numel; k++) {
            if (!p.trainable)
                frozen_zero &= g[p.offset + k] == 0.0f;
            else
                head_nonzero |= g[p.offset + k] != 0.0f;
        }
    }
    MF_CHECK(frozen_zero);
    MF_CHECK(head_nonzero);
    mf_model_free(m);

    /* unfrozen: training mode moves the moving mean */
    m = small(0);
    mf_model_forward(m, x, 2, MF_MODE_TRAIN, NULL);
    MF_CHECK(mf_model_state(m)[bn_mean.offset] != 0.0f);
    mf_model_free(m);
}

static void test_errors(void)
{
    mf_model *m = mf_model_create("bad");
    MF_CHECK(mf_model_add(m, mf_relu(NULL, 0), 0) == -1); /* no input yet */
    MF_CHECK(strstr(mf_last_error(), "node 0") != NULL);
    int x = mf_model_input(m, mf_shape4(0, 8, 8, 3));
    MF_CHECK(mf_model_input(m, mf_shape4(0, 8, 8, 3)) == -1);
    int a = mf_model_add(m, mf_conv2d("branch", 4, 3, 2, MF_PADDING_SAME, 0), x);
    MF_CHECK(mf_model_add(m, mf_relu("branch", 0), a) == -1);
    MF_CHECK(strstr(mf_last_error(), "duplicate layer name 'branch'") != NULL);
    MF_CHECK(mf_model_add2(m, mf_add("join"), a, x) == -1);
    MF_CHECK_MSG(strstr(mf_last_error(), "'join'") && strstr(mf_last_error(), "(None, 4, 4, 4)") &&
                     strstr(mf_last_error(), "(None, 8, 8, 3)"),
                 "got: %s", mf_last_error());
    /* a failed add poisons the build: no silently shortened network */
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_INVALID);
    MF_CHECK(strstr(mf_last_error(), "earlier mf_model_add failed") && strstr(mf_last_error(), "'join'"));
    mf_model_free(m);

    m = mf_model_create("valid_too_big");
    x = mf_model_input(m, mf_shape4(0, 2, 2, 3));
    MF_CHECK(mf_model_add(m, mf_conv2d("c", 4, 3, 1, MF_PADDING_VALID, 0), x) == -1);
    MF_CHECK_MSG(strstr(mf_last_error(), "layer 'c'") && strstr(mf_last_error(), "does not fit"), "got: %s",
                 mf_last_error());
    mf_model_free(m);

    m = mf_model_create("dense_on_4d");
    x = mf_model_input(m, mf_shape4(0, 2, 2, 3));
    MF_CHECK(mf_model_add(m, mf_dense("d", 4, 1), x) == -1);
    MF_CHECK(strstr(mf_last_error(), "GlobalAveragePooling2D") != NULL);
    mf_model_free(m);
}

/* The batch may change between calls (the last, smaller batch of an epoch). */
static void test_batch_sizes(void)
{
    mf_model *m = small(0);
    float x[4 * 9 * 9 * 3];
    for (int i = 0; i < 4 * 9 * 9 * 3; i++)
        x[i] = (float)((i * 13) % 17) / 8.0f - 1.0f;
    float y4[12];
    mf_tensor y = mf_model_forward(m, x, 4, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[0] == 4);
    memcpy(y4, y.data, sizeof y4);
    y = mf_model_forward(m, x + 2 * 9 * 9 * 3, 2, MF_MODE_INFER, NULL);
    MF_CHECK(y.shape.d[0] == 2);
    /* inference is per sample: samples 2 and 3 give the same outputs alone */
    for (int i = 0; i < 6; i++)
        MF_CHECK_NEAR(y.data[i], y4[6 + i], 1e-5);
    mf_model_free(m);
}

int main(void)
{
    test_layout();
    test_frozen();
    test_errors();
    test_batch_sizes();
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
