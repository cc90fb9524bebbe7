/* test_mobilenet_features.c: MobileNetV2 1.0 with the ImageNet weights (Keras
 * layout, ../shared/data/weights) must produce the 1280-d pooled features that
 * an independent float32 implementation computed for the same preprocessed
 * inputs (../shared/reference/mobilenet_v2_1.0_features.h5), at 224 and 96 px.
 * This checks the zoo's structure and padding, every layer's inference
 * forward pass, BatchNorm's epsilon and the weights loader in one go. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "test.h"

static float *read_all(hid_t f, const char *name, size_t n)
{
    float *v = malloc(n * sizeof(float));
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    MF_CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    return v;
}

static void check_size(hid_t f, const char *weights, int size, int N)
{
    mf_model *m = mf_model_create("features");
    int x = mf_model_input(m, mf_shape4(0, size, size, 3));
    x = mf_mobilenet_v2_base(m, x, 1.0f);
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    MF_CHECK(mf_model_build(m, 1) == MF_STATUS_OK);
    mf_weights_report r;
    mf_status s = mf_weights_load_keras(m, weights, &r);
    MF_CHECK_MSG(s == MF_STATUS_OK, "%s", mf_last_error());
    MF_CHECK_MSG(r.loaded_layers == 104 && r.missing_layers == 0, "loaded %d layers, %d missing (%s)", r.loaded_layers,
                 r.missing_layers, r.missing);
    char in_name[32], out_name[32];
    snprintf(in_name, sizeof in_name, "input_%d", size);
    snprintf(out_name, sizeof out_name, "features_%d", size);
    float *in = read_all(f, in_name, (size_t)N * size * size * 3);
    float *want = read_all(f, out_name, (size_t)N * 1280);
    mf_tensor y = mf_model_forward(m, in, N, MF_MODE_INFER, NULL);
    double worst = 0.0, scale = 0.0;
    for (int i = 0; i < N * 1280; i++) {
        worst = fmax(worst, fabs((double)y.data[i] - want[i]));
        scale = fmax(scale, fabs((double)want[i]));
    }
    printf("%d px: max |difference| %.2e over %d features (largest feature %.3f)\n", size, worst, N * 1280, scale);
    MF_CHECK_MSG(worst < 2e-4 * fmax(1.0, scale), "%d px: features differ by %.3e", size, worst);
    free(in);
    free(want);
    mf_model_free(m);
}

int main(void)
{
    const char *shared = getenv("MF_SHARED_DIR");
    char feat[1024], weights[1024];
    snprintf(feat, sizeof feat, "%s/reference/mobilenet_v2_1.0_features.h5", shared ? shared : "../shared");
    snprintf(weights, sizeof weights, "%s/data/weights/mobilenet_v2_1.0_no_top_converted_from_tfslim.h5",
             shared ? shared : "../shared");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(feat, H5F_ACC_RDONLY, H5P_DEFAULT);
    MF_CHECK_MSG(f >= 0, "cannot open %s (set MF_SHARED_DIR)", feat);
    if (f < 0)
        return mf_test_report();
    check_size(f, weights, 224, 4);
    check_size(f, weights, 96, 2);
    H5Fclose(f);
    MF_CHECK(mf_alloc_live_count() == 0);
    return mf_test_report();
}
