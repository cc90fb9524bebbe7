/* test_syncbn.c (mpiexec -n 2): synchronized BatchNorm's gradient. Each rank
 * holds half of a batch; with sync BN the outputs, the input gradients, the
 * summed gamma/beta gradients and the moving statistics must equal those of one
 * BatchNorm over the whole batch, whose gradients the finite-difference checks
 * of tests/grad verify. Loss L = sum(out * R) over the whole batch. */
#include <math.h>
#include <string.h>
#include "mpifit.h"
#include "test.h"

static mf_model *bn_model(mf_shape in)
{
    mf_model *m = mf_model_create("bn");
    mf_model_add(m, mf_batchnorm("bn", 0.9f, 1e-3f), mf_model_input(m, in));
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    mf_model_set_backward_keep(m, MF_KEEP_INPUT_GRAD); /* the input gradient is compared */
    float *p = mf_model_params(m);
    for (size_t i = 0; i < mf_model_num_params(m); i++)
        p[i] = 0.5f + 0.1f * (float)i; /* gamma, beta away from 1 and 0 */
    return m;
}

static void check(mf_comm *comm, mf_shape sample, int N, const char *what)
{
    int rank = mf_comm_rank(comm), world = mf_comm_size(comm);
    size_t per = mf_shape_sample_numel(&sample), total = (size_t)N * per, half = total / (size_t)world;
    float *x = mf_alloc(total * sizeof(float)), *R = mf_alloc(total * sizeof(float));
    float *dx_full = mf_alloc(total * sizeof(float)), *dx = mf_alloc(half * sizeof(float));
    mf_rng r;
    mf_rng_seed(&r, 17); /* the same data on every rank */
    for (size_t i = 0; i < total; i++) {
        x[i] = 2.0f * mf_rng_normal(&r) + 0.7f;
        R[i] = mf_rng_normal(&r);
    }
    /* reference: one BatchNorm, the whole batch, on every rank */
    mf_model *full = bn_model(sample);
    mf_tensor y_full = mf_model_forward(full, x, N, MF_MODE_TRAIN, NULL);
    mf_model_zero_grad(full);
    mf_model_backward(full, R, dx_full);
    /* this rank's half with statistics summed over the ranks */
    mf_model *mine = bn_model(sample);
    mf_model_set_sync_batchnorm(mine, comm);
    size_t off = (size_t)rank * half;
    mf_tensor y = mf_model_forward(mine, x + off, N / world, MF_MODE_TRAIN, NULL);
    double worst_y = 0, worst_dx = 0, worst_g = 0, worst_s = 0;
    for (size_t i = 0; i < half; i++)
        worst_y = fmax(worst_y, fabs((double)y.data[i] - y_full.data[off + i]));
    mf_model_zero_grad(mine);
    mf_model_backward(mine, R + off, dx);
    for (size_t i = 0; i < half; i++)
        worst_dx = fmax(worst_dx, fabs((double)dx[i] - dx_full[off + i]) / fmax(fabs(dx_full[off + i]), 1e-2));
    /* gamma/beta gradients: each rank holds its share; summed they are the whole batch's */
    size_t np = mf_model_num_params(mine);
    double g[64];
    MF_CHECK(np <= 64);
    for (size_t i = 0; i < np; i++)
        g[i] = mf_model_grads(mine)[i];
    MF_CHECK(mf_comm_allreduce_sum(comm, g, (int)np) == MF_STATUS_OK);
    for (size_t i = 0; i < np; i++)
        worst_g = fmax(worst_g, fabs(g[i] - mf_model_grads(full)[i]) / fmax(fabs(mf_model_grads(full)[i]), 1e-2));
    for (size_t i = 0; i < mf_model_num_state(mine); i++)
        worst_s = fmax(worst_s, fabs((double)mf_model_state(mine)[i] - mf_model_state(full)[i]));
    if (rank == 0)
        printf("sync BN %s, %d ranks: outputs %.2e, input gradients %.2e, gamma/beta gradients %.2e, "
               "moving statistics %.2e\n",
               what, world, worst_y, worst_dx, worst_g, worst_s);
    MF_CHECK(worst_y < 1e-5 && worst_dx < 1e-4 && worst_g < 1e-4 && worst_s < 1e-5);
    /* and without sync the per-rank statistics differ: the check can fail */
    mf_model_set_sync_batchnorm(mine, NULL);
    y = mf_model_forward(mine, x + off, N / world, MF_MODE_TRAIN, NULL);
    double local = 0;
    for (size_t i = 0; i < half; i++)
        local = fmax(local, fabs((double)y.data[i] - y_full.data[off + i]));
    MF_CHECK_MSG(local > 1e-3, "per-rank statistics should differ from the global ones (%.2e)", local);
    mf_model_free(full);
    mf_model_free(mine);
    mf_free(x);
    mf_free(R);
    mf_free(dx_full);
    mf_free(dx);
}

int main(int argc, char **argv)
{
    mf_comm *comm;
    if (mf_comm_create(&argc, &argv, &comm) != MF_STATUS_OK)
        return 1;
    MF_CHECK_MSG(mf_comm_size(comm) == 2, "run with mpiexec -n 2");
    size_t live = mf_alloc_live_count();
    check(comm, mf_shape4(0, 3, 5, 4), 6, "(N,H,W,C)");
    check(comm, mf_shape2(0, 7), 10, "(N,C)");
    MF_CHECK(mf_alloc_live_count() == live);
    mf_comm_free(comm);
    return mf_test_report();
}
