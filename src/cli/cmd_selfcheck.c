/* cmd_selfcheck.c: `mpifit selfcheck`: prove that this build works on this
 * machine before a long job is queued: the linked libraries answer, sgemm
 * agrees with a naive product, and a small conv/BN/ReLU6/dense model's analytic
 * gradient agrees with finite differences on every rank. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "mpifit.h"
#include "cli.h"
#include "core/core.h"
#include "data/jpeg.h"
#include "dist/comm.h"
#include "io/h5util.h"
#include "tensor/gemm.h"

static int failures;

static void report(const char *what, int ok, const char *detail)
{
    if (!ok)
        failures++;
    mf_log_all("%-10s %s  %s", what, ok ? "ok  " : "FAIL", detail);
}

static void check_gemm(void)
{
    enum { M = 7, N = 5, K = 9 };
    float A[M * K], B[K * N], C[M * N];
    mf_rng r;
    mf_rng_seed(&r, 1);
    for (int i = 0; i < M * K; i++)
        A[i] = mf_rng_normal(&r);
    for (int i = 0; i < K * N; i++)
        B[i] = mf_rng_normal(&r);
    mf_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    double err = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)A[i * K + k] * B[k * N + j];
            err = fmax(err, fabs(s - C[i * N + j]));
        }
    char d[128];
    snprintf(d, sizeof d, "sgemm max |error| %.2e (%d threads)", err, mf_get_num_threads());
    report("blas", err < 1e-4, d);
}

/* HDF5: a small model's weights written as a Keras file and read back, the
 * same numbers. */
static void check_hdf5(void)
{
    char d[160], path[] = "/tmp/mpifit-selfcheck-XXXXXX";
    mf_model *a = NULL, *b = NULL;
    int fd = mkstemp(path), ok = 0;
    if (fd >= 0)
        close(fd);
    if (fd >= 0 && mf_small_cnn(&a, 8, 3, 2, 0.0f, 1) == MF_STATUS_OK &&
        mf_small_cnn(&b, 8, 3, 2, 0.0f, 2) == MF_STATUS_OK && mf_weights_save_keras(a, path) == MF_STATUS_OK &&
        mf_weights_load_keras(b, path, NULL) == MF_STATUS_OK)
        ok = memcmp(mf_model_params(a), mf_model_params(b), mf_model_num_params(a) * sizeof(float)) == 0;
    snprintf(d, sizeof d, "HDF5 %s, weights file written and read back%s%s", mf_h5_library_version(), ok ? "" : ": ",
             ok ? "" : mf_last_error());
    report("hdf5", ok, d);
    if (fd >= 0)
        unlink(path);
    mf_model_free(a);
    mf_model_free(b);
}

/* TurboJPEG: a gradient image encoded and decoded, the same size and close. */
static void check_jpeg(void)
{
    enum { W = 32, H = 24 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)(i % 3 == 0 ? (i / 3) % W * 8 : i % 3 == 1 ? (i / 3) / W * 10 : 128);
    uint8_t *jpg = NULL;
    size_t len = 0;
    int ok = mf_jpeg_encode(rgb, W, H, 95, &jpg, &len) == MF_STATUS_OK;
    mf_jpeg_decoder *dec = mf_jpeg_decoder_create();
    mf_image_rgb8 img;
    int worst = 255;
    if (ok && mf_jpeg_decode(dec, jpg, len, W, H, &img) == MF_STATUS_OK && img.w == W && img.h == H) {
        worst = 0;
        for (int i = 0; i < W * H * 3; i++)
            worst = abs((int)img.rgb[i] - rgb[i]) > worst ? abs((int)img.rgb[i] - rgb[i]) : worst;
    }
    char d[128];
    snprintf(d, sizeof d, "TurboJPEG API %s, %dx%d encoded and decoded, max |error| %d", mf_jpeg_api_version(), W, H,
             worst);
    report("turbojpeg", worst <= 16, d);
    mf_jpeg_decoder_free(dec);
    mf_free(jpg);
}

/* MPI: an allreduce of (1, rank, a float) must give (world, world(world-1)/2,
 * world times the float) on every rank, and a broadcast from the last rank
 * must arrive. */
static void check_mpi(mf_comm *comm)
{
    int world = mf_comm_size(comm), rank = mf_comm_rank(comm);
    double v[3] = {1.0, (double)rank, 0.25};
    float b[2] = {(float)rank, -1.0f};
    int ok = mf_comm_allreduce_sum(comm, v, 3) == MF_STATUS_OK &&
        mf_comm_bcast_floats(comm, b, 2, world - 1) == MF_STATUS_OK;
    ok = ok && v[0] == world && v[1] == (double)world * (world - 1) / 2 && v[2] == 0.25 * world &&
        b[0] == (float)(world - 1);
    char d[160];
    snprintf(d, sizeof d, "%s, rank %d of %d, allreduce and broadcast %s", mf_comm_library_version(), rank, world,
             ok ? "agree" : "WRONG");
    report("mpi", ok, d);
}

static void check_libs(mf_comm *comm)
{
    check_hdf5();
    check_jpeg();
    check_mpi(comm);
}

/* L = sum(out * R) of a small smooth model (no ReLU kinks); its gradient by
 * backprop vs central differences, as ||a - n|| / (||a|| + ||n||). */
static void check_gradient(void)
{
    mf_model *m = mf_model_create("selfcheck");
    int x = mf_model_input(m, mf_shape4(0, 7, 7, 3));
    x = mf_model_add(m, mf_conv2d(NULL, 4, 3, 2, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, mf_batchnorm(NULL, 0.99f, 1e-3f), x);
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dense(NULL, 3, 1), x);
    if (x < 0 || mf_model_build(m, 7) != MF_STATUS_OK) {
        report("gradient", 0, mf_last_error());
        mf_model_free(m);
        return;
    }
    enum { N = 2 };
    float xin[N * 7 * 7 * 3], R[N * 3];
    mf_rng r;
    mf_rng_seed(&r, 3);
    for (size_t i = 0; i < sizeof xin / sizeof *xin; i++)
        xin[i] = mf_rng_normal(&r);
    for (int i = 0; i < N * 3; i++)
        R[i] = mf_rng_normal(&r);
    mf_tensor y = mf_model_forward(m, xin, N, MF_MODE_TRAIN, NULL);
    (void)y;
    mf_model_zero_grad(m);
    mf_model_backward(m, R, NULL);
    float *p = mf_model_params(m), *g = mf_model_grads(m);
    double d2 = 0.0, a2 = 0.0, n2 = 0.0;
    for (size_t i = 0; i < mf_model_num_params(m); i += 7) {
        float keep = p[i], h = 1e-2f;
        double lp = 0.0, lm = 0.0;
        p[i] = keep + h;
        y = mf_model_forward(m, xin, N, MF_MODE_TRAIN, NULL);
        for (int k = 0; k < N * 3; k++)
            lp += (double)y.data[k] * R[k];
        p[i] = keep - h;
        y = mf_model_forward(m, xin, N, MF_MODE_TRAIN, NULL);
        for (int k = 0; k < N * 3; k++)
            lm += (double)y.data[k] * R[k];
        p[i] = keep;
        double num = (lp - lm) / (2.0 * h), ana = g[i];
        d2 += (num - ana) * (num - ana);
        a2 += ana * ana;
        n2 += num * num;
    }
    double err = sqrt(d2) / fmax(sqrt(a2) + sqrt(n2), 1e-3);
    char d[128];
    snprintf(d, sizeof d, "conv/BN/dense, relative error %.2e (limit 1e-3)", err);
    report("gradient", err < 1e-3, d);
    mf_model_free(m);
}

int mf_cmd_selfcheck(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: mpifit selfcheck\n\n"
               "Checks the linked BLAS, MPI, HDF5 and TurboJPEG, then a finite-difference\n"
               "gradient check of a small model, on every rank. Exit status 0 when all pass.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "mpifit selfcheck: unexpected argument '%s' (try --help)\n", argv[1]);
        return 2;
    }
    mf_comm *comm;
    if (mf_comm_create(&argc, &argv, &comm) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit selfcheck: %s\n", mf_last_error());
        return 1;
    }
    size_t live = mf_alloc_live_count(); /* the communicator's own allocation */
    mf_log_info("mpifit %s self-check", mf_version());
    check_libs(comm);
    check_gemm();
    check_gradient();
    char d[96];
    snprintf(d, sizeof d, "%zu mpifit allocations live after freeing everything", mf_alloc_live_count() - live);
    report("leaks", mf_alloc_live_count() == live, d);
    mf_log_all("selfcheck: %s", failures ? "FAILED" : "all checks passed");
    mf_comm_free(comm);
    return failures ? 1 : 0;
}
