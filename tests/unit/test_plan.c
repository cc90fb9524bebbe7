/* test_plan.c: the memory plan (src/model/plan.c) changes where tensors live,
 * never what is computed. A MobileNetV2 classifier trained one step with the
 * plan (shared memory, BatchNorm+ReLU fused, padding folded, Add in place) and
 * with MF_KEEP_ALL (every tensor kept, nothing fused) must give bit-identical
 * outputs, parameter gradients, input gradients and moving statistics (to
 * 1e-5 where BatchNorm is folded into a convolution: inference, a frozen
 * base); and
 * the plan must actually save memory: inference and a frozen base keep no
 * gradients and only a few activations. */
#include <math.h>
#include <string.h>
#include "mpifit.h"
#include "test.h"

#define N 4
#define S 64

typedef struct result {
    float *y, *grads, *state, *dx, *y_infer;
    size_t arena_train, arena_infer;
} result;

static void run(result *r, unsigned keep, const char *freeze_upto, const float *x, const float *dy)
{
    mf_model *m = NULL;
    MF_CHECK(mf_mobilenet_v2_classifier(&m, 0.35f, S, 3, 0.2f, 7) == MF_STATUS_OK);
    if (freeze_upto)
        MF_CHECK(mf_model_set_trainable_upto(m, freeze_upto, 0) == MF_STATUS_OK);
    mf_model_set_backward_keep(m, keep);
    mf_rng rng;
    mf_rng_seed(&rng, 3);
    mf_tensor y = mf_model_forward(m, x, N, MF_MODE_TRAIN, &rng);
    r->y = mf_alloc(N * 3 * sizeof(float));
    memcpy(r->y, y.data, N * 3 * sizeof(float));
    mf_model_zero_grad(m);
    r->dx = (keep & MF_KEEP_INPUT_GRAD) ? mf_alloc((size_t)N * S * S * 3 * sizeof(float)) : NULL;
    mf_model_backward(m, dy, r->dx);
    r->arena_train = mf_model_arena_bytes(m);
    size_t np = mf_model_num_params(m), ns = mf_model_num_state(m);
    r->grads = mf_alloc(np * sizeof(float));
    memcpy(r->grads, mf_model_grads(m), np * sizeof(float));
    r->state = mf_alloc(ns * sizeof(float));
    memcpy(r->state, mf_model_state(m), ns * sizeof(float));
    mf_model_set_backward_keep(m, keep & MF_KEEP_ALL);
    y = mf_model_forward(m, x, N, MF_MODE_INFER, NULL);
    r->y_infer = mf_alloc(N * 3 * sizeof(float));
    memcpy(r->y_infer, y.data, N * 3 * sizeof(float));
    r->arena_infer = mf_model_arena_bytes(m);
    mf_model_free(m);
}

static void result_free(result *r)
{
    mf_free(r->y);
    mf_free(r->grads);
    mf_free(r->state);
    mf_free(r->dx);
    mf_free(r->y_infer);
}

/* floats that differ by more than tol * (largest |b|); tol 0: every float
 * equal (== : +0 and -0 alike; a NaN fails) */
static size_t differ(const float *a, const float *b, size_t n, double tol)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !(fabs((double)a[i] - b[i]) <= tol * scale);
    return bad;
}

int main(void)
{
    size_t nx = (size_t)N * S * S * 3;
    float *x = mf_alloc(nx * sizeof(float)), dy[N * 3];
    mf_rng r;
    mf_rng_seed(&r, 11);
    for (size_t i = 0; i < nx; i++)
        x[i] = 2.0f * mf_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < N * 3; i++)
        dy[i] = mf_rng_normal(&r);

    mf_model *probe = NULL;
    MF_CHECK(mf_mobilenet_v2_classifier(&probe, 0.35f, S, 3, 0.2f, 7) == MF_STATUS_OK);
    size_t np = mf_model_num_params(probe), ns = mf_model_num_state(probe);
    mf_model_free(probe);

    const char *what[] = {"training", "training with the input gradient", "frozen base"};
    unsigned keep[] = {0, MF_KEEP_INPUT_GRAD, 0};
    const char *freeze[] = {NULL, NULL, "out_relu"};
    result planned[3], all[3];
    for (int c = 0; c < 3; c++) {
        run(&planned[c], keep[c], freeze[c], x, dy);
        run(&all[c], keep[c] | MF_KEEP_ALL, freeze[c], x, dy);
        /* Training is bit-identical. Where a BatchNorm runs in inference
         * mode and nothing back-propagates through it (inference, the
         * frozen base), the plan folds it into the convolution before it:
         * the same function, rounded differently */
        double tol = c == 2 ? 1e-5 : 0.0;
        size_t bad = differ(planned[c].y, all[c].y, N * 3, tol) + differ(planned[c].grads, all[c].grads, np, tol) +
            differ(planned[c].state, all[c].state, ns, tol) + differ(planned[c].y_infer, all[c].y_infer, N * 3, 1e-5);
        if (planned[c].dx)
            bad += differ(planned[c].dx, all[c].dx, nx, tol);
        MF_CHECK_MSG(bad == 0, "%s: %zu values differ between the memory plan and keeping everything", what[c], bad);
        printf("%-34s arena %7.2f MiB planned, %7.2f MiB kept whole (%.0f%%); inference %6.2f MiB\n", what[c],
               planned[c].arena_train / 1048576.0, all[c].arena_train / 1048576.0,
               100.0 * (double)planned[c].arena_train / (double)all[c].arena_train, planned[c].arena_infer / 1048576.0);
    }
    /* the gradients are not all zero, or the comparison would prove little */
    double gsum = 0;
    for (size_t i = 0; i < np; i++)
        gsum += fabs(planned[0].grads[i]);
    MF_CHECK(gsum > 0);
    /* what the plan saves: training keeps what backward reads and few
     * gradients (under half of keeping everything); inference and a frozen
     * base keep a few activations at a time (a tenth of training, a fifth of
     * the frozen model kept whole, which has no base gradients) */
    MF_CHECK(planned[0].arena_train < all[0].arena_train / 2);
    MF_CHECK(planned[0].arena_infer < all[0].arena_train / 10);
    MF_CHECK(planned[2].arena_train < all[2].arena_train / 5);
    MF_CHECK(planned[2].arena_train <= planned[0].arena_infer * 11 / 10);
    for (int c = 0; c < 3; c++) {
        result_free(&planned[c]);
        result_free(&all[c]);
    }
    mf_free(x);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
