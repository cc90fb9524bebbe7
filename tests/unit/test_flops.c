/* test_flops.c: mf_model_flops (src/model/flops.c) against counts worked out by
 * hand for a small model, trainable, with a frozen prefix, and frozen up to the head. */
#include "mpifit.h"
#include "model/flops.h"
#include "test.h"

/* (8,8,3) -> Conv2D 4, 3x3 s1 same, no bias -> ReLU -> DepthwiseConv2D 3x3 s2 same,
 * no bias -> GAP -> Dense 2 with bias */
static mf_model *tiny(void)
{
    mf_model *m = mf_model_create("tiny");
    int x = mf_model_input(m, mf_shape4(0, 8, 8, 3));
    x = mf_model_add(m, mf_conv2d(NULL, 4, 3, 1, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, mf_relu(NULL, 0.0f), x);
    x = mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dense(NULL, 2, 1), x);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    return m;
}

int main(void)
{
    mf_model *m = tiny();
    /* forward per sample: conv 2*(8*8*4)*3*3*3 = 13824, ReLU 256, depthwise
     * 2*(4*4*4)*3*3 = 1152, GAP 64 (its input), dense 2*2*4 + 2 = 18 */
    double fwd = 13824 + 256 + 1152 + 64 + 18;
    MF_CHECK_NEAR(mf_model_flops(m, 1, 0), fwd, 0.0);
    MF_CHECK_NEAR(mf_model_flops(m, 3, 0), 3 * fwd, 0.0);
    /* all trainable: conv dW only (the input needs no gradient), ReLU 2x,
     * depthwise dW + dx, GAP 2x, dense dW + dx */
    double train = fwd + 13824 + 512 + 2 * 1152 + 128 + 2 * 18;
    MF_CHECK_NEAR(mf_model_flops(m, 1, 1), train, 0.0);
    MF_CHECK_NEAR(mf_model_flops(m, 2, 1), 2 * train, 0.0);
    /* conv and ReLU frozen: nothing upstream of the depthwise trains, so it
     * pays dW only; conv and ReLU back-propagate nothing */
    MF_CHECK(mf_model_set_trainable_upto(m, "re_lu", 0) == MF_STATUS_OK);
    MF_CHECK_NEAR(mf_model_flops(m, 1, 1), fwd + 1152 + 128 + 2 * 18, 0.0);
    /* frozen up to the head: only the dense layer's dW */
    MF_CHECK(mf_model_set_trainable_upto(m, "global_average_pooling2d", 0) == MF_STATUS_OK);
    MF_CHECK_NEAR(mf_model_flops(m, 1, 1), fwd + 18, 0.0);
    mf_model_free(m);
    return mf_test_report();
}
