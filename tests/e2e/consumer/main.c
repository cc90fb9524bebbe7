/* A user's program: builds a tiny model through the public API only. */
#include <stdio.h>
#include <mpifit.h>

int main(void)
{
    mf_model *m = mf_model_create("consumer");
    int x = mf_model_input(m, mf_shape4(0, 8, 8, 3));
    x = mf_model_add(m, mf_conv2d(NULL, 4, 3, 2, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dense(NULL, 2, 1), x);
    if (x < 0 || mf_model_build(m, 1) != MF_STATUS_OK) {
        fprintf(stderr, "consumer: %s\n", mf_last_error());
        return 1;
    }
    printf("consumer: mpifit %s, %zu parameters\n", mf_version(), mf_model_count_trainable(m));
    int ok = mf_model_count_trainable(m) == 3 * 3 * 3 * 4 + 4 * 2 + 2;
    mf_model_free(m);
    return ok ? 0 : 1;
}
