/* test_weights.c: Keras-layout weights in and out, and checkpoints in-process.
 *  - a file built here with the HDF5 API exactly as Keras' save_weights lays it
 *    out (float64 datasets, an extra layer the model lacks, a layer missing)
 *    loads by name, converting to float, and reports what is missing;
 *  - save -> load round trips bit for bit, and export of a checkpoint too;
 *  - a shape mismatch names the layer, the weight and both shapes, and changes
 *    nothing;
 *  - checkpoints: round trip of the training position and optimizer state;
 *    an incomplete file is refused; the newest complete one is found;
 *  - the model description of weights files and checkpoints round trips, and
 *    a missing or damaged one is refused naming the attribute. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "core/core.h"
#include "io/describe.h"
#include "test.h"

static char dir[64];

static mf_model *small(int units)
{
    mf_model *m = mf_model_create("w");
    int x = mf_model_input(m, mf_shape4(0, 8, 8, 3));
    x = mf_model_add(m, mf_conv2d("conv", 4, 3, 2, MF_PADDING_SAME, 1), x);
    x = mf_model_add(m, mf_batchnorm("bn", 0.99f, 1e-3f), x);
    x = mf_model_add(m, mf_global_avg_pool2d("gap"), x);
    x = mf_model_add(m, mf_dense("head", units, 1), x);
    MF_CHECK(mf_model_build(m, 7) == MF_STATUS_OK);
    return m;
}

static void put(hid_t f, const char *layer, const char *w, int nd, const hsize_t *dims, double base)
{
    char p[256];
    snprintf(p, sizeof p, "%s", layer);
    if (H5Lexists(f, p, H5P_DEFAULT) <= 0)
        H5Gclose(H5Gcreate2(f, p, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    snprintf(p, sizeof p, "%s/%s", layer, layer);
    if (H5Lexists(f, p, H5P_DEFAULT) <= 0)
        H5Gclose(H5Gcreate2(f, p, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= dims[i];
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = base + 0.001 * (double)i;
    snprintf(p, sizeof p, "%s/%s/%s:0", layer, layer, w);
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t d = H5Dcreate2(f, p, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(sp);
    free(v);
}

static void test_keras_file(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/keras.h5", dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t k[4] = {3, 3, 3, 4}, c4[1] = {4}, extra[2] = {2, 2};
    put(f, "conv", "kernel", 4, k, 0.5);
    put(f, "conv", "bias", 1, c4, -1.0);
    put(f, "bn", "gamma", 1, c4, 2.0);
    put(f, "bn", "beta", 1, c4, 0.1);
    put(f, "bn", "moving_mean", 1, c4, 0.3);
    put(f, "bn", "moving_variance", 1, c4, 1.5);
    put(f, "unrelated_layer", "kernel", 2, extra, 9.0); /* a layer the model does not have */
    H5Fclose(f); /* "head" is missing */
    mf_model *m = small(3);
    mf_weights_report r;
    MF_CHECK(mf_weights_load_keras(m, path, &r) == MF_STATUS_OK);
    MF_CHECK(r.loaded_layers == 2 && r.missing_layers == 1 && strcmp(r.missing, "head") == 0);
    MF_CHECK(r.file_layers == 3);
    /* values converted from float64, kernel in HWIO as stored */
    mf_param_info kernel = mf_model_param(m, 0), var = mf_model_param(m, 5);
    MF_CHECK(strcmp(kernel.name, "kernel") == 0 && strcmp(var.name, "moving_variance") == 0);
    MF_CHECK_NEAR(mf_model_params(m)[kernel.offset + 37], 0.5 + 0.037, 1e-6);
    MF_CHECK_NEAR(mf_model_state(m)[var.offset + 3], 1.5 + 0.003, 1e-6);

    /* a shape mismatch: the first mismatching layer and both shapes; nothing changes */
    mf_model *wide = small(5);
    char out[128], tmp[160], victim[160];
    snprintf(out, sizeof out, "%s/out.h5", dir);
    /* a symlink planted under the temporary's name is not followed */
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    FILE *vf = fopen(victim, "w");
    MF_CHECK(vf != NULL);
    if (vf) {
        fputs("keep", vf);
        fclose(vf);
    }
    MF_CHECK(symlink(victim, tmp) == 0);
    MF_CHECK(mf_weights_save_keras(m, out) == MF_STATUS_OK);
    char kept[16] = "";
    vf = fopen(victim, "r");
    if (vf) {
        MF_CHECK(fgets(kept, sizeof kept, vf) != NULL);
        fclose(vf);
    }
    MF_CHECK_MSG(strcmp(kept, "keep") == 0, "the symlink's target was overwritten: '%s'", kept);
    float before = mf_model_params(wide)[0];
    MF_CHECK(mf_weights_load_keras(wide, out, NULL) == MF_STATUS_SHAPE);
    MF_CHECK_MSG(strstr(mf_last_error(), "layer 'head' weight 'kernel' is (4, 3) in the file but (4, 5) in the model"),
                 "got: %s", mf_last_error());
    MF_CHECK(mf_model_params(wide)[0] == before);
    /* save -> load round trip, bit for bit */
    mf_model *back = small(3);
    MF_CHECK(mf_weights_load_keras(back, out, &r) == MF_STATUS_OK && r.missing_layers == 0);
    MF_CHECK(memcmp(mf_model_params(back), mf_model_params(m), mf_model_num_params(m) * sizeof(float)) == 0);
    MF_CHECK(memcmp(mf_model_state(back), mf_model_state(m), mf_model_num_state(m) * sizeof(float)) == 0);
    /* the Keras layout in the file: layer_names, weight_names, /<layer>/<layer>/<weight>:0, HWIO */
    f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    MF_CHECK(H5Aexists(f, "layer_names") > 0 && H5Lexists(f, "conv/conv/kernel:0", H5P_DEFAULT) > 0);
    hid_t g = H5Gopen2(f, "bn", H5P_DEFAULT);
    MF_CHECK(H5Aexists(g, "weight_names") > 0);
    H5Gclose(g);
    hid_t d = H5Dopen2(f, "conv/conv/kernel:0", H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t dims[4];
    MF_CHECK(H5Sget_simple_extent_dims(sp, dims, NULL) == 4 && dims[0] == 3 && dims[2] == 3 && dims[3] == 4);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    MF_CHECK(access(out, F_OK) == 0);
    snprintf(path, sizeof path, "%s/out.h5.tmp", dir);
    MF_CHECK(access(path, F_OK) != 0); /* written to a temporary, renamed */
    mf_model_free(m);
    mf_model_free(wide);
    mf_model_free(back);
}

static void test_checkpoints(void)
{
    mf_model *m = small(3);
    mf_fit_ctx *ctx = mf_fit_ctx_create(m, 3, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_ADAM);
    mf_schedule sch = {.kind = MF_SCHEDULE_COSINE, .base_lr = 0.01f, .total_steps = 100, .warmup_steps = 5};
    MF_CHECK(mf_compile(ctx, mf_optimizer_create(m, &oo), &sch, NULL, "accuracy") == MF_STATUS_OK);
    /* a few real optimizer steps so that m, v and the counters are not zero */
    static float x[4 * 8 * 8 * 3];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)((i * 7) % 13) / 6.0f - 1.0f;
    int32_t y[4] = {0, 1, 2, 1};
    float w[4] = {1, 1, 1, 1};
    int32_t idx[4] = {0, 1, 2, 3};
    mf_batch b = {x, y, w, idx, 4, 4, 0};
    mf_logs logs;
    mf_logs_clear(&logs);
    for (int s = 0; s < 3; s++)
        MF_CHECK(mf_train_step_default(ctx, &b, &logs, NULL) == MF_STATUS_OK);
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/ckpt-0000-0000003.h5", dir);
    MF_CHECK(mf_checkpoint_save(ctx, p1, NULL) == MF_STATUS_OK);
    mf_checkpoint_summary sum;
    MF_CHECK(mf_checkpoint_check(p1, &sum) == MF_STATUS_OK && sum.global_step == 3 && sum.world_size == 1);
    /* into a fresh context: the same weights, optimizer state and position */
    mf_model *m2 = small(3);
    mf_fit_ctx *ctx2 = mf_fit_ctx_create(m2, 3, 0);
    MF_CHECK(mf_compile(ctx2, mf_optimizer_create(m2, &oo), NULL, NULL, "accuracy") == MF_STATUS_OK);
    MF_CHECK(mf_checkpoint_load(ctx2, p1, &sum) == MF_STATUS_OK);
    MF_CHECK(memcmp(mf_model_params(m2), mf_model_params(m), mf_model_num_params(m) * sizeof(float)) == 0);
    MF_CHECK(mf_fit_global_step(ctx2) == 3 && mf_optimizer_iterations(mf_fit_optimizer(ctx2)) == 3);
    MF_CHECK(mf_fit_learning_rate(ctx2) == mf_fit_learning_rate(ctx)); /* the schedule came along */
    float *a[2], *c[2];
    MF_CHECK(mf_optimizer_state(mf_fit_optimizer(ctx), a, NULL) == 2 &&
             mf_optimizer_state(mf_fit_optimizer(ctx2), c, NULL) == 2);
    MF_CHECK(memcmp(a[0], c[0], mf_model_num_params(m) * sizeof(float)) == 0);
    MF_CHECK(memcmp(a[1], c[1], mf_model_num_params(m) * sizeof(float)) == 0);
    /* a context compiled with its own schedule keeps it (a resumed run's config
     * and world size decide the rate), everything else comes along */
    {
        mf_model *m4 = small(3);
        mf_fit_ctx *ctx4 = mf_fit_ctx_create(m4, 3, 0);
        mf_schedule mine = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.25f};
        MF_CHECK(mf_compile(ctx4, mf_optimizer_create(m4, &oo), &mine, NULL, "accuracy") == MF_STATUS_OK);
        MF_CHECK(mf_checkpoint_load(ctx4, p1, &sum) == MF_STATUS_OK);
        MF_CHECK(mf_fit_learning_rate(ctx4) == 0.25f && mf_fit_global_step(ctx4) == 3);
        MF_CHECK(memcmp(mf_model_params(m4), mf_model_params(m), mf_model_num_params(m) * sizeof(float)) == 0);
        mf_fit_ctx_free(ctx4);
        mf_model_free(m4);
    }
    /* the next step is the same on both */
    MF_CHECK(mf_train_step_default(ctx, &b, &logs, NULL) == MF_STATUS_OK);
    MF_CHECK(mf_train_step_default(ctx2, &b, &logs, NULL) == MF_STATUS_OK);
    MF_CHECK(memcmp(mf_model_params(m2), mf_model_params(m), mf_model_num_params(m) * sizeof(float)) == 0);
    /* export: a Keras weights file with the checkpoint's numbers */
    char ex[128];
    snprintf(ex, sizeof ex, "%s/exported.h5", dir);
    MF_CHECK(mf_checkpoint_export_keras(p1, ex) == MF_STATUS_OK);
    mf_model *m3 = small(3);
    mf_weights_report r;
    MF_CHECK(mf_weights_load_keras(m3, ex, &r) == MF_STATUS_OK && r.missing_layers == 0 && r.loaded_layers == 3);
    MF_CHECK(mf_checkpoint_load(ctx2, p1, NULL) == MF_STATUS_OK); /* back to step 3 */
    MF_CHECK(memcmp(mf_model_params(m3), mf_model_params(m2), mf_model_num_params(m) * sizeof(float)) == 0);
    /* another architecture is refused by name */
    mf_model *m4 = small(5);
    mf_fit_ctx *ctx4 = mf_fit_ctx_create(m4, 3, 0);
    MF_CHECK(mf_compile(ctx4, mf_optimizer_create(m4, &oo), NULL, NULL, "") == MF_STATUS_OK);
    MF_CHECK(mf_checkpoint_load(ctx4, p1, NULL) == MF_STATUS_SHAPE);
    MF_CHECK(strstr(mf_last_error(), "'head'") != NULL);
    /* incomplete (a writer killed half-way: no `complete` attribute): refused,
     * and latest() falls back to the older complete one */
    snprintf(p2, sizeof p2, "%s/ckpt-0001-0000009.h5", dir);
    hid_t f = H5Fcreate(p2, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t s = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char *fmt = "mpifit-checkpoint";
    hid_t at = H5Acreate2(f, "format", t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(at, t, &fmt);
    H5Aclose(at);
    H5Tclose(t);
    H5Sclose(s);
    H5Fclose(f);
    MF_CHECK(mf_checkpoint_check(p2, NULL) == MF_STATUS_DATA);
    MF_CHECK(strstr(mf_last_error(), "incomplete") != NULL);
    char found[256];
    MF_CHECK(mf_checkpoint_latest(dir, found, sizeof found) == MF_STATUS_OK);
    MF_CHECK_MSG(strcmp(found, p1) == 0, "latest: %s", found);
    MF_CHECK(mf_checkpoint_check("/nonexistent/ckpt.h5", NULL) == MF_STATUS_DATA);
    /* a failed load changes nothing: a copy of p1 without its optimizer's
     * second moments fails after the weights were read, and the model, its
     * state and the optimizer are as they were */
    char p3[300], cmd[700];
    snprintf(p3, sizeof p3, "%s/lacking.h5", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p1, p3);
    MF_CHECK(system(cmd) == 0);
    f = H5Fopen(p3, H5F_ACC_RDWR, H5P_DEFAULT);
    MF_CHECK(f >= 0 && H5Ldelete(f, "optimizer/v", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    size_t np = mf_model_num_params(m2), ns = mf_model_num_state(m2);
    float *before = malloc((np * 3 + ns) * sizeof(float));
    float *ob[2];
    MF_CHECK(mf_optimizer_state(mf_fit_optimizer(ctx2), ob, NULL) == 2);
    for (size_t i = 0; i < np; i++)
        mf_model_params(m2)[i] += 1.0f; /* differ from p1 */
    memcpy(before, mf_model_params(m2), np * sizeof(float));
    memcpy(before + np, ob[0], np * sizeof(float));
    memcpy(before + 2 * np, ob[1], np * sizeof(float));
    memcpy(before + 3 * np, mf_model_state(m2), ns * sizeof(float));
    MF_CHECK(mf_checkpoint_load(ctx2, p3, NULL) != MF_STATUS_OK);
    MF_CHECK(memcmp(before, mf_model_params(m2), np * sizeof(float)) == 0);
    MF_CHECK(memcmp(before + np, ob[0], np * sizeof(float)) == 0);
    MF_CHECK(memcmp(before + 2 * np, ob[1], np * sizeof(float)) == 0);
    MF_CHECK(memcmp(before + 3 * np, mf_model_state(m2), ns * sizeof(float)) == 0);
    free(before);
    mf_fit_ctx_free(ctx);
    mf_fit_ctx_free(ctx2);
    mf_fit_ctx_free(ctx4);
    mf_model_free(m);
    mf_model_free(m2);
    mf_model_free(m3);
    mf_model_free(m4);
}

/* an int64 / float64 / string attribute at the root of path, replaced */
static void set_attr(const char *path, const char *name, hid_t type, const void *v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    MF_CHECK(f >= 0);
    if (H5Aexists(f, name) > 0)
        H5Adelete(f, name);
    if (type >= 0) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
        MF_CHECK(a >= 0 && H5Awrite(a, type, v) >= 0);
        H5Aclose(a);
        H5Sclose(sp);
    }
    H5Fclose(f);
}

/* The model description: a weights file and a checkpoint carry it and read
 * it back; a file without it, or with a damaged one, is refused with a
 * message that names the attribute. */
static void test_model_desc(void)
{
    mf_model *m = small(3);
    char *names[3] = {"angular_leaf_spot", "bean_rust", "healthy"};
    mf_model_desc d = {"small_cnn", 0.35f, 48, 3, 0.2f, 0.9f, names};
    char p[128], plain[128];
    snprintf(p, sizeof p, "%s/desc.h5", dir);
    snprintf(plain, sizeof plain, "%s/plain.h5", dir);
    MF_CHECK(mf_weights_save_keras_desc(m, p, &d) == MF_STATUS_OK);
    mf_model_desc r;
    MF_CHECK(mf_model_desc_read(p, &r) == MF_STATUS_OK);
    MF_CHECK(strcmp(r.arch, "small_cnn") == 0 && r.alpha == 0.35f && r.input_size == 48 && r.classes == 3);
    MF_CHECK(r.dropout == 0.2f && r.bn_momentum == 0.9f);
    MF_CHECK(r.class_names && strcmp(r.class_names[0], "angular_leaf_spot") == 0 &&
             strcmp(r.class_names[2], "healthy") == 0);
    mf_model_desc_free(&r);
    MF_CHECK(r.class_names == NULL && r.classes == 0);
    mf_model_desc_free(NULL);
    /* still a Keras weights file, loading as before; the floats stored as
     * the decimals they were written as (h5py shows 0.35, not 0.3499999940) */
    mf_model *back = small(3);
    MF_CHECK(mf_weights_load_keras(back, p, NULL) == MF_STATUS_OK);
    MF_CHECK(memcmp(mf_model_params(back), mf_model_params(m), mf_model_num_params(m) * sizeof(float)) == 0);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    double alpha = 0;
    hid_t a = H5Aopen(f, "model_alpha", H5P_DEFAULT);
    MF_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, &alpha) >= 0 && alpha == 0.35);
    H5Aclose(a);
    MF_CHECK(H5Aexists(f, "layer_names") > 0);
    /* its strings fixed-length, as Keras': no global heap in a weights file */
    a = H5Aopen(f, "class_names", H5P_DEFAULT);
    hid_t ct = H5Aget_type(a);
    MF_CHECK(H5Tget_class(ct) == H5T_STRING && H5Tis_variable_str(ct) == 0);
    H5Tclose(ct);
    H5Aclose(a);
    H5Fclose(f);
    /* a description that does not fit the model is a caller's bug, refused */
    d.classes = 4;
    MF_CHECK(mf_weights_save_keras_desc(m, plain, &d) == MF_STATUS_INVALID);
    d.classes = 3;
    /* without one: MF_STATUS_CONFIG naming the first missing attribute */
    MF_CHECK(mf_weights_save_keras(m, plain) == MF_STATUS_OK);
    MF_CHECK(mf_model_desc_read(plain, &r) == MF_STATUS_CONFIG);
    MF_CHECK_MSG(strstr(mf_last_error(), "plain.h5 has no model description: root attribute 'model_arch' is missing"),
                 "%s", mf_last_error());
    MF_CHECK(mf_model_desc_read("/nonexistent/w.h5", &r) == MF_STATUS_IO);
    /* damaged: each refused with the attribute's name, nothing allocated */
    int64_t tiny = 16, many = 3000000;
    double nan_v = NAN, big = 5.0;
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    const char *resnet = "resnet50";
    struct {
        const char *name;
        hid_t type;
        const void *v;
        mf_status want;
    } bad[] = {{"model_input_size", H5T_NATIVE_INT64, &tiny, MF_STATUS_DATA},
               {"model_classes", H5T_NATIVE_INT64, &many, MF_STATUS_DATA},
               {"model_alpha", H5T_NATIVE_DOUBLE, &nan_v, MF_STATUS_DATA},
               {"model_dropout", H5T_NATIVE_DOUBLE, &big, MF_STATUS_DATA},
               {"model_bn_momentum", vs, &resnet, MF_STATUS_DATA},
               {"model_arch", vs, &resnet, MF_STATUS_DATA},
               {"model_input_size", H5T_NATIVE_DOUBLE, &big, MF_STATUS_DATA},
               {"model_classes", -1, NULL, MF_STATUS_CONFIG}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        MF_CHECK(mf_weights_save_keras_desc(m, p, &d) == MF_STATUS_OK);
        set_attr(p, bad[i].name, bad[i].type, bad[i].v);
        mf_status s = mf_model_desc_read(p, &r);
        MF_CHECK_MSG(s == bad[i].want && strstr(mf_last_error(), bad[i].name) && r.class_names == NULL,
                     "%s: status %d, %s", bad[i].name, (int)s, mf_last_error());
    }
    /* two class names for three classes */
    MF_CHECK(mf_weights_save_keras_desc(m, p, &d) == MF_STATUS_OK);
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "class_names");
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    a = H5Acreate2(f, "class_names", vs, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, vs, names);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
    MF_CHECK(mf_model_desc_read(p, &r) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "2 class_names for model_classes = 3"), "%s", mf_last_error());
    /* fixed-length names as h5py writes bytes, here space-padded: read and trimmed */
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "class_names");
    hsize_t three = 3;
    hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 20);
    H5Tset_strpad(fixed, H5T_STR_SPACEPAD);
    char padded[3][20];
    for (int i = 0; i < 3; i++) {
        memset(padded[i], ' ', 20);
        memcpy(padded[i], names[i], strlen(names[i]) < 20 ? strlen(names[i]) : 20);
    }
    sp = H5Screate_simple(1, &three, NULL);
    a = H5Acreate2(f, "class_names", fixed, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, fixed, padded);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(fixed);
    H5Fclose(f);
    MF_CHECK(mf_model_desc_read(p, &r) == MF_STATUS_OK && r.class_names &&
             strcmp(r.class_names[0], "angular_leaf_spot") == 0 && strcmp(r.class_names[1], "bean_rust") == 0);
    mf_model_desc_free(&r);
    /* no class names at all: the model alone */
    set_attr(p, "class_names", -1, NULL);
    MF_CHECK(mf_model_desc_read(p, &r) == MF_STATUS_OK && r.class_names == NULL && r.classes == 3);
    mf_model_desc_free(&r);
    H5Tclose(vs);
    /* a checkpoint carries it (with the class names it stores anyway), its
     * export too; one saved without it has none */
    mf_fit_ctx *ctx = mf_fit_ctx_create(m, 3, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
    MF_CHECK(mf_compile(ctx, mf_optimizer_create(m, &oo), NULL, NULL, "accuracy") == MF_STATUS_OK);
    const char *cn[3] = {"a", "b", "c"};
    mf_checkpoint_info info = {"[model]\narch = small_cnn\n", cn, 3, NULL, 0, &d};
    char ck[128], ex[128];
    snprintf(ck, sizeof ck, "%s/ckpt-desc.h5", dir);
    snprintf(ex, sizeof ex, "%s/ckpt-desc-export.h5", dir);
    MF_CHECK(mf_checkpoint_save(ctx, ck, &info) == MF_STATUS_OK);
    MF_CHECK(mf_model_desc_read(ck, &r) == MF_STATUS_OK && r.input_size == 48 && r.class_names &&
             strcmp(r.class_names[1], "b") == 0);
    mf_model_desc_free(&r);
    MF_CHECK(mf_checkpoint_export_keras(ck, ex) == MF_STATUS_OK);
    MF_CHECK(mf_model_desc_read(ex, &r) == MF_STATUS_OK && r.alpha == 0.35f && r.class_names &&
             strcmp(r.class_names[2], "c") == 0);
    mf_model_desc_free(&r);
    info.model = NULL;
    MF_CHECK(mf_checkpoint_save(ctx, ck, &info) == MF_STATUS_OK);
    MF_CHECK(mf_model_desc_read(ck, &r) == MF_STATUS_CONFIG);
    MF_CHECK(mf_checkpoint_export_keras(ck, ex) == MF_STATUS_OK);
    MF_CHECK(mf_model_desc_read(ex, &r) == MF_STATUS_CONFIG);
    /* a checkpoint's damaged bytes are caught by its whole-file checksum first */
    info.model = &d;
    MF_CHECK(mf_checkpoint_save(ctx, ck, &info) == MF_STATUS_OK);
    FILE *fp = fopen(ck, "r+b");
    MF_CHECK(fp && fseek(fp, -100, SEEK_END) == 0);
    if (fp) {
        int c = fgetc(fp);
        fseek(fp, -1, SEEK_CUR);
        fputc(c ^ 0x5a, fp);
        fclose(fp);
    }
    MF_CHECK(mf_model_desc_read(ck, &r) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "CRC-32"), "%s", mf_last_error());
    /* ... and so is a damaged checksum line: a byte flipped in its tag must
     * not make the file pass for one written before checksums (found by
     * fuzz_checkpoint: the rest of such a file went to libhdf5 unchecked) */
    MF_CHECK(mf_checkpoint_save(ctx, ck, &info) == MF_STATUS_OK);
    MF_CHECK(mf_checkpoint_check(ck, NULL) == MF_STATUS_OK);
    fp = fopen(ck, "r+b");
    MF_CHECK(fp && fseek(fp, 3, SEEK_SET) == 0);
    if (fp) {
        fputc('X', fp); /* "mpiXit-crc32 ..." */
        fclose(fp);
    }
    MF_CHECK(mf_checkpoint_check(ck, NULL) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "neither HDF5's signature nor mpifit's checksum line"), "%s", mf_last_error());
    /* predict and inspect read the model description the same way: the
     * damaged line does not let the rest through unchecked there either */
    MF_CHECK(mf_model_desc_read(ck, &r) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "neither HDF5's signature nor mpifit's checksum line") &&
                     strstr(mf_last_error(), "h5unjam"),
                 "%s", mf_last_error());
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
    mf_model_free(back);
}

/* retention: keep-N by the numbers in the names, not their text; leftovers */
static void test_retention(void)
{
    char d[128], p[256];
    snprintf(d, sizeof d, "%s/ckpts", dir);
    MF_CHECK(mf_mkdir_p(d) == MF_STATUS_OK);
    const char *names[] = {"ckpt-0002-0000010.h5",
                           "ckpt-9999-0000020.h5",
                           "ckpt-10000-0000030.h5",
                           "ckpt-10000-0000005.h5",
                           "notes.txt",
                           "ckpt-0003-0000001.h5.tmp"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        FILE *f = fopen(p, "w");
        MF_CHECK(f != NULL);
        if (f)
            fclose(f);
    }
    mf_checkpoint_prune(d, 2);
    mf_checkpoint_remove_temporaries(d);
    int exists[6];
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        FILE *f = fopen(p, "r");
        exists[i] = f != NULL;
        if (f)
            fclose(f);
    }
    /* the newest two: epoch 10000 (steps 30 and 5), not 9999, which sorts last as text */
    MF_CHECK(!exists[0] && !exists[1] && exists[2] && exists[3]);
    MF_CHECK(exists[4]); /* not a checkpoint: left alone */
    MF_CHECK(!exists[5]); /* a killed writer's temporary: removed */
    char name[128];
    mf_checkpoint_name(name, sizeof name, "run", 12345, 7L);
    MF_CHECK(strcmp(name, "run/ckpt-12345-0000007.h5") == 0);
}

/* Files that lie about their sizes: a scalar attribute stored with 1000
 * elements, a 3-D "series", a format tag of 1000 strings, a dataset claiming
 * 2^40 values, a float type of 64 MiB. Every reader refuses them cleanly
 * (under ASan: no overflow). */
static void test_hostile(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/ckpt-0009-0000099.h5", dir);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t many = 1000, cube[3] = {4, 5, 6};
    int64_t big[1000] = {0};
    hid_t sp = H5Screate_simple(1, &many, NULL);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    const char *tags[1000];
    for (int i = 0; i < 1000; i++)
        tags[i] = "mpifit-checkpoint";
    hid_t a = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, tags);
    H5Aclose(a);
    for (int i = 0; i < 2; i++) {
        a = H5Acreate2(f, i ? "epoch" : "complete", H5T_NATIVE_INT64, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, big);
        H5Aclose(a);
    }
    hid_t g = H5Gcreate2(f, "epoch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t s3 = H5Screate_simple(3, cube, NULL);
    hid_t d = H5Dcreate2(g, "epoch", H5T_NATIVE_DOUBLE, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    static double zeros[120];
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    H5Dclose(d);
    H5Sclose(s3);
    H5Gclose(g);
    H5Tclose(st);
    H5Sclose(sp);
    H5Fclose(f);
    MF_CHECK(mf_checkpoint_check(p, NULL) != MF_STATUS_OK);
    MF_CHECK(mf_h5_describe(p, stdout) == 0); /* says what it can, crashes on nothing */
    double *ep = NULL, *cols[4] = {0};
    size_t rows = 7;
    MF_CHECK(mf_metrics_read_curves(p, &ep, cols, &rows) == 0 && rows == 0);
    free(ep);
    for (int k = 0; k < 4; k++)
        free(cols[k]);
    remove(p);
    /* a complete-looking checkpoint whose one dataset claims 2^40 doubles in a
     * few bytes of file (chunked, never written) and a metrics series that
     * claims 2^24 + 1 rows: refused before anything is allocated for them */
    f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    hid_t one = H5Screate(H5S_SCALAR);
    const char *fmt = "mpifit-checkpoint";
    int64_t v1 = 1;
    a = H5Acreate2(f, "format", vs, one, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, vs, &fmt);
    H5Aclose(a);
    const char *ints[] = {"complete", "format_version"};
    for (int i = 0; i < 2; i++) {
        a = H5Acreate2(f, ints[i], H5T_NATIVE_INT64, one, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &v1);
        H5Aclose(a);
    }
    hsize_t huge = (hsize_t)1 << 40, chunk = 1024, rows_claim = ((hsize_t)1 << 24) + 1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t hs = H5Screate_simple(1, &huge, NULL);
    d = H5Dcreate2(f, "huge", H5T_NATIVE_DOUBLE, hs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(hs);
    g = H5Gcreate2(f, "epoch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hs = H5Screate_simple(1, &rows_claim, NULL);
    d = H5Dcreate2(g, "epoch", H5T_NATIVE_DOUBLE, hs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(hs);
    H5Gclose(g);
    H5Pclose(dcpl);
    H5Sclose(one);
    H5Tclose(vs);
    H5Fclose(f);
    MF_CHECK(mf_checkpoint_check(p, NULL) != MF_STATUS_OK);
    MF_CHECK_MSG(strstr(mf_last_error(), "claims more values than the file stores") != NULL, "%s", mf_last_error());
    /* the same checkpoint with a dataset that stores its 2048 doubles in
     * chunks of one: libhdf5 keeps bookkeeping per chunk a read touches (a
     * fuzz input of kilobytes cost 2.6 GB and 3.5 s), mpifit writes one */
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "huge", H5P_DEFAULT);
    H5Ldelete(f, "epoch", H5P_DEFAULT);
    hsize_t n_many = 2048, one_value = 1;
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &one_value);
    hs = H5Screate_simple(1, &n_many, NULL);
    d = H5Dcreate2(f, "many", H5T_NATIVE_DOUBLE, hs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    double *blank = calloc(n_many, sizeof *blank);
    MF_CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, blank) >= 0);
    free(blank);
    H5Dclose(d);
    H5Sclose(hs);
    H5Pclose(dcpl);
    H5Fclose(f);
    MF_CHECK(mf_checkpoint_check(p, NULL) != MF_STATUS_OK);
    MF_CHECK_MSG(strstr(mf_last_error(), "dataset /many is stored in more than 1024 chunks") ||
                     strstr(mf_last_error(), "dataset many is stored in more than 1024 chunks"),
                 "%s", mf_last_error());
    rows = 7;
    MF_CHECK(mf_metrics_read_curves(p, &ep, cols, &rows) == 0 && rows == 0);
    free(ep);
    for (int k = 0; k < 4; k++)
        free(cols[k]);
    remove(p);
    /* a Keras weight of the model's shape whose float type claims 64 MiB per
     * value (HDF5 accepts it: a chunked dataset never written stores nothing):
     * refused by its type before HDF5 allocates 108 x 64 MiB to convert it,
     * and nothing in the model changes */
    snprintf(p, sizeof p, "%s/forged_float.h5", dir);
    f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t k[4] = {3, 3, 3, 4}, kchunk[4] = {1, 1, 1, 1}, c4[1] = {4};
    put(f, "conv", "bias", 1, c4, -1.0);
    hid_t ft = H5Tcopy(H5T_IEEE_F32LE);
    MF_CHECK(H5Tset_size(ft, (size_t)64 << 20) >= 0);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, kchunk);
    hs = H5Screate_simple(4, k, NULL);
    d = H5Dcreate2(f, "conv/conv/kernel:0", ft, hs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    MF_CHECK(d >= 0);
    H5Dclose(d);
    H5Sclose(hs);
    H5Pclose(dcpl);
    H5Tclose(ft);
    H5Fclose(f);
    mf_model *m = small(3);
    size_t np = mf_model_num_params(m);
    float *before = malloc(np * sizeof *before);
    memcpy(before, mf_model_params(m), np * sizeof *before);
    mf_weights_report r;
    MF_CHECK(mf_weights_load_keras(m, p, &r) != MF_STATUS_OK);
    MF_CHECK_MSG(strstr(mf_last_error(), "conv/conv/kernel:0") && strstr(mf_last_error(), "floats of 2, 4 or 8 bytes"),
                 "%s", mf_last_error());
    MF_CHECK(memcmp(before, mf_model_params(m), np * sizeof *before) == 0);
    free(before);
    mf_model_free(m);
    remove(p);
}

int main(void)
{
    mf_test_dir_make(dir, sizeof dir, "weights");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_keras_file();
    test_checkpoints();
    test_model_desc();
    test_retention();
    test_hostile();
    mf_test_dir_remove(dir);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
