/* test_keras_model.c: Keras model descriptions -> mf_model (src/io/keras_model.c)
 * on the fixtures of tests/data/keras (argv[1]): layer graph, names, output
 * shapes, parameter counts as Keras reports them (computed by hand below),
 * the Keras 2 and Keras 3 forms of one model building the same weights, the
 * full-model .h5 with its weights, every refusal naming file, layer, class and
 * value, and a few SGD steps lowering the loss. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "core/core.h"
#include "test.h"

static const char *dir;

static char *fixture_path(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static char *slurp(const char *name)
{
    FILE *f = fopen(fixture_path(name), "rb");
    MF_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = mf_alloc((size_t)n + 1);
    MF_ASSERT(fread(t, 1, (size_t)n, f) == (size_t)n);
    t[n] = '\0';
    fclose(f);
    return t;
}

/* text with the first occurrence of `from` replaced by `to` (mf_alloc'ed) */
static char *replace1(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    MF_ASSERT(at);
    size_t a = (size_t)(at - text), nf = strlen(from), nt = strlen(to), n = strlen(text);
    char *o = mf_alloc(n - nf + nt + 1);
    memcpy(o, text, a);
    memcpy(o + a, to, nt);
    memcpy(o + a + nt, at + nf, n - a - nf + 1);
    return o;
}

static void check_layers(const mf_model *m, const char *const *names, const char *const *kinds, int n)
{
    MF_CHECK(mf_model_num_layers(m) == n);
    for (int i = 0; i < n && i < mf_model_num_layers(m); i++) {
        const mf_layer *l = mf_model_layer(m, i);
        MF_CHECK_MSG(strcmp(mf_layer_name(l), names[i]) == 0, "layer %d is %s, want %s", i, mf_layer_name(l), names[i]);
        MF_CHECK_MSG(strcmp(mf_layer_kind(l), kinds[i]) == 0, "layer %s is %s, want %s", names[i], mf_layer_kind(l),
                     kinds[i]);
    }
}

static int shape_is(mf_shape s, int n, int a, int b, int c)
{
    mf_shape w = n == 4 ? mf_shape4(0, a, b, c) : mf_shape2(0, a);
    return mf_shape_eq(&s, &w);
}

/* Sequential: conv2d 3x3x3x16 no bias = 432; batch_normalization 4 x 16 = 64
 * (gamma, beta trainable: 32; moving mean, variance: 32); conv2d_1
 * 3x3x16x32 + 32 = 4,640; batch_normalization_1 4 x 32 = 128 (64 + 64);
 * dense 32 x 3 + 3 = 99. Keras: Total 5,363, Trainable 5,267, Non-trainable 96. */
static void test_sequential(const char *file, const char *model_name, const char *input_name)
{
    static const char *const names[] = {
        "conv2d",  "batch_normalization",      "re_lu",   "conv2d_1", "batch_normalization_1",
        "re_lu_1", "global_average_pooling2d", "dropout", "dense"};
    static const char *const kinds[] = {"Conv2D", "BatchNormalization",     "ReLU",    "Conv2D", "BatchNormalization",
                                        "ReLU",   "GlobalAveragePooling2D", "Dropout", "Dense"};
    mf_model *m = NULL;
    mf_keras_info info;
    mf_status s = mf_model_from_keras_info(&m, fixture_path(file), 7, &info);
    MF_CHECK_MSG(s == MF_STATUS_OK, "%s: %s", file, mf_last_error());
    if (!m)
        return;
    MF_CHECK(strcmp(mf_model_name(m), model_name) == 0);
    MF_CHECK(strcmp(mf_model_input_name(m), input_name) == 0);
    check_layers(m, names, kinds, 9);
    MF_CHECK(shape_is(mf_model_input_shape(m), 4, 32, 32, 3));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 0)), 4, 16, 16, 16));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 3)), 4, 8, 8, 32));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 6)), 2, 32, 0, 0));
    MF_CHECK(shape_is(mf_model_output_shape(m), 2, 3, 0, 0));
    MF_CHECK(mf_model_count_trainable(m) + mf_model_count_non_trainable(m) == 5363);
    MF_CHECK(mf_model_count_trainable(m) == 5267);
    MF_CHECK(mf_model_count_non_trainable(m) == 96);
    MF_CHECK(info.softmax_folded == 1 && strcmp(info.softmax_layer, "dense") == 0);
    MF_CHECK(!info.weights_loaded);
    mf_model_free(m);
}

/* Functional residual: conv2d 3x3x3x8 + 8 = 224; batch_normalization 4 x 8 =
 * 32 (16 + 16); conv2d_1 3x3x8x8 = 576; batch_normalization_1 32 (16 + 16);
 * depthwise_conv2d 3x3x8x1 = 72; dense 8 x 3 + 3 = 27. Keras: Total 963,
 * Trainable 931, Non-trainable 32. */
static mf_model *test_residual(const char *file, const char *input_name, int folded)
{
    static const char *const names[] = {"conv2d",
                                        "batch_normalization",
                                        "re_lu",
                                        "conv2d_1",
                                        "batch_normalization_1",
                                        "add",
                                        "re_lu_1",
                                        "zero_padding2d",
                                        "depthwise_conv2d",
                                        "global_average_pooling2d",
                                        "dense"};
    static const char *const kinds[] = {"Conv2D",
                                        "BatchNormalization",
                                        "ReLU",
                                        "Conv2D",
                                        "BatchNormalization",
                                        "Add",
                                        "ReLU",
                                        "ZeroPadding2D",
                                        "DepthwiseConv2D",
                                        "GlobalAveragePooling2D",
                                        "Dense"};
    mf_model *m = NULL;
    mf_keras_info info;
    mf_status s = mf_model_from_keras_info(&m, fixture_path(file), 7, &info);
    MF_CHECK_MSG(s == MF_STATUS_OK, "%s: %s", file, mf_last_error());
    if (!m)
        return NULL;
    check_layers(m, names, kinds, 11);
    MF_CHECK(strcmp(mf_model_input_name(m), input_name) == 0);
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 5)), 4, 32, 32, 8)); /* add */
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 7)), 4, 33, 33, 8)); /* ((0,1),(0,1)) */
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 8)), 4, 16, 16, 8)); /* 3x3 s2 valid */
    MF_CHECK(shape_is(mf_model_output_shape(m), 2, 3, 0, 0));
    MF_CHECK(mf_model_count_trainable(m) == 931);
    MF_CHECK(mf_model_count_non_trainable(m) == 32);
    MF_CHECK(info.softmax_folded == folded);
    if (folded) /* Keras 3 form ends in Activation("softmax") named "activation" */
        MF_CHECK(strcmp(info.softmax_layer, "activation") == 0);
    return m;
}

static int same_params(mf_model *a, mf_model *b)
{
    return a && b && mf_model_num_params(a) == mf_model_num_params(b) &&
        memcmp(mf_model_params(a), mf_model_params(b), mf_model_num_params(a) * sizeof(float)) == 0;
}

static void test_forms_agree(void)
{
    /* the same architecture in Keras 2, Keras 2 without InputLayer and Keras 3
     * form, same seed: the same layers in the same order, so the same weights */
    mf_model *a, *b, *c;
    MF_CHECK(mf_model_from_keras(&a, fixture_path("seq_k2.json"), 3) == MF_STATUS_OK);
    MF_CHECK(mf_model_from_keras(&b, fixture_path("seq_k2_no_input.json"), 3) == MF_STATUS_OK);
    MF_CHECK(mf_model_from_keras(&c, fixture_path("seq_k3.json"), 3) == MF_STATUS_OK);
    MF_CHECK(same_params(a, b) && same_params(a, c));
    mf_model_free(a);
    mf_model_free(b);
    mf_model_free(c);
    MF_CHECK(mf_model_from_keras(&a, fixture_path("func_residual_k2.json"), 3) == MF_STATUS_OK);
    MF_CHECK(mf_model_from_keras(&b, fixture_path("func_residual_k3.json"), 3) == MF_STATUS_OK);
    MF_CHECK(same_params(a, b));
    mf_model_free(a);
    mf_model_free(b);
}

/* the full-model .h5 of make_full_model_h5.py: weight i of each tensor is
 * 0.001 * (i + 1), moving_variance 1 + that */
static void test_full_model_h5(void)
{
    mf_model *m = test_residual("full_model_k2.h5", "input_1", 0);
    if (!m)
        return;
    mf_keras_info info;
    mf_model_free(m);
    MF_CHECK(mf_model_from_keras_info(&m, fixture_path("full_model_k2.h5"), 1, &info) == MF_STATUS_OK);
    MF_CHECK(info.weights_loaded == 1 && info.weights.loaded_layers == 6 && info.weights.missing_layers == 0);
    int seen = 0;
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info p = mf_model_param(m, i);
        const float *base = p.kind == MF_PARAM_TRAINABLE ? mf_model_params(m) : mf_model_state(m);
        float want0 = strcmp(p.name, "moving_variance") == 0 ? 1.001f : 0.001f;
        MF_CHECK_NEAR(base[p.offset], want0, 1e-7);
        MF_CHECK_NEAR(base[p.offset + p.numel - 1], want0 - 0.001f + 0.001f * (float)p.numel, 1e-5);
        seen++;
    }
    MF_CHECK(seen == 14);
    mf_model_free(m);

    /* a weights-only file (no model_config): refused, saying what it is */
    char tmp[] = "/tmp/mf_keras_weights_XXXXXX";
    int fd = mkstemp(tmp);
    MF_ASSERT(fd >= 0);
    close(fd);
    mf_model *w;
    MF_CHECK(mf_model_from_keras(&w, fixture_path("seq_k2.json"), 1) == MF_STATUS_OK);
    MF_CHECK(mf_weights_save_keras(w, tmp) == MF_STATUS_OK);
    mf_model_free(w);
    MF_CHECK(mf_model_from_keras(&w, tmp, 1) == MF_STATUS_CONFIG && !w);
    MF_CHECK_MSG(strstr(mf_last_error(), "no root attribute 'model_config'") != NULL, "%s", mf_last_error());
    remove(tmp);
}

/* the refusal of file `name` has status st and contains every one of `want` */
static void expect_refusal(const char *name, mf_status st, const char *const *want)
{
    mf_model *m = (mf_model *)1;
    mf_status s = mf_model_from_keras(&m, fixture_path(name), 1);
    MF_CHECK_MSG(s == st && m == NULL, "%s: status %d, model %p", name, (int)s, (void *)m);
    MF_CHECK_MSG(strstr(mf_last_error(), fixture_path(name)) != NULL, "%s: %s", name, mf_last_error());
    for (int i = 0; want[i]; i++)
        MF_CHECK_MSG(strstr(mf_last_error(), want[i]) != NULL, "%s: '%s' not in: %s", name, want[i], mf_last_error());
}

static void test_fixture_refusals(void)
{
    expect_refusal("bad_malformed.json", MF_STATUS_DATA, (const char *const[]){"malformed JSON", NULL});
    expect_refusal("bad_channels_first.json", MF_STATUS_CONFIG,
                   (const char *const[]){"layer 'conv2d' (Conv2D): unsupported data_format = \"channels_first\"",
                                         "channels_last", NULL});
    expect_refusal("bad_unsupported_layer.json", MF_STATUS_CONFIG,
                   (const char *const[]){"layer 'conv2d_transpose' (Conv2DTranspose): unsupported class_name",
                                         "supported: InputLayer, Conv2D", NULL});
    expect_refusal("bad_shared_layer.json", MF_STATUS_CONFIG,
                   (const char *const[]){"layer 'conv2d_1' (Conv2D)", "shared layers are not supported", NULL});
    expect_refusal("bad_nested_model.json", MF_STATUS_CONFIG,
                   (const char *const[]){"layer 'small_cnn_k2' (Sequential): nested models are not supported", NULL});
}

/* Functional with Concatenate (Keras 3): conv2d 3x3x3x8 + 8 = 224;
 * batch_normalization 32 (16 + 16); conv2d_1 3x3x8x8 = 576;
 * batch_normalization_1 32 (16 + 16); concatenate 8 + 8 = 16 channels; dense
 * 16 x 3 + 3 = 51. Keras: Total 915, Trainable 883, Non-trainable 32. */
static void test_concat(void)
{
    static const char *const names[] = {
        "conv2d",      "batch_normalization",      "re_lu", "conv2d_1", "batch_normalization_1",
        "concatenate", "global_average_pooling2d", "dense"};
    static const char *const kinds[] = {"Conv2D",      "BatchNormalization",     "ReLU", "Conv2D", "BatchNormalization",
                                        "Concatenate", "GlobalAveragePooling2D", "Dense"};
    mf_model *m = NULL;
    mf_keras_info info;
    MF_CHECK_MSG(mf_model_from_keras_info(&m, fixture_path("func_concat_k3.json"), 7, &info) == MF_STATUS_OK, "%s",
                 mf_last_error());
    if (!m)
        return;
    check_layers(m, names, kinds, 8);
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 5)), 4, 32, 32, 16));
    MF_CHECK(mf_model_count_trainable(m) == 883);
    MF_CHECK(mf_model_count_non_trainable(m) == 32);
    MF_CHECK(info.softmax_folded && strcmp(info.softmax_layer, "dense") == 0);
    mf_model_free(m);
}

/* The digits-style CNN (Keras' MNIST example on 32x32 RGB): conv2d 3x3x3x32 +
 * 32 = 896 (30x30x32), max_pooling2d 15x15x32, conv2d_1 3x3x32x64 + 64 =
 * 18,496 (13x13x64), max_pooling2d_1 6x6x64, flatten 2,304, dropout, dense
 * 2,304 x 3 + 3 = 6,915. Keras: Total 26,307, all trainable. */
static mf_model *test_digits(const char *file, const char *input_name)
{
    static const char *const names[] = {"conv2d",  "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                        "flatten", "dropout",       "dense"};
    static const char *const kinds[] = {"Conv2D",  "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                        "Flatten", "Dropout",      "Dense"};
    mf_model *m = NULL;
    mf_keras_info info;
    MF_CHECK_MSG(mf_model_from_keras_info(&m, fixture_path(file), 7, &info) == MF_STATUS_OK, "%s: %s", file,
                 mf_last_error());
    if (!m)
        return NULL;
    check_layers(m, names, kinds, 7);
    MF_CHECK(strcmp(mf_model_input_name(m), input_name) == 0);
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 0)), 4, 30, 30, 32));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 1)), 4, 15, 15, 32));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 2)), 4, 13, 13, 64));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 3)), 4, 6, 6, 64));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 4)), 2, 2304, 0, 0));
    MF_CHECK(shape_is(mf_model_output_shape(m), 2, 3, 0, 0));
    MF_CHECK(mf_model_count_trainable(m) == 26307);
    MF_CHECK(mf_model_count_non_trainable(m) == 0);
    MF_CHECK(info.softmax_folded && strcmp(info.softmax_layer, "dense") == 0);
    return m;
}

static void test_digits_forms_agree(void)
{
    mf_model *a = test_digits("digits_cnn_k2.json", "input_1");
    mf_model *b = test_digits("digits_cnn_k3.json", "input_layer");
    MF_CHECK(same_params(a, b));
    mf_model_free(a);
    mf_model_free(b);
}

/* a fixture with one edit: refused with every one of `want` in the message */
static void expect_edit_refused(const char *file, const char *from, const char *to, const char *const *want)
{
    char *text = slurp(file);
    char *edited = replace1(text, from, to);
    mf_model *m = NULL;
    mf_status s = mf_model_from_keras_json(&m, edited, "edited.json", 1);
    MF_CHECK_MSG(s == MF_STATUS_CONFIG && !m, "%s with %s: status %d", file, to, (int)s);
    MF_CHECK_MSG(strncmp(mf_last_error(), "edited.json: ", 13) == 0, "%s", mf_last_error());
    for (int i = 0; want[i]; i++)
        MF_CHECK_MSG(strstr(mf_last_error(), want[i]) != NULL, "'%s' not in: %s", want[i], mf_last_error());
    mf_model_free(m);
    mf_free(edited);
    mf_free(text);
}

static void test_argument_refusals(void)
{
    expect_edit_refused(
        "seq_k2.json", "\"activation\": \"linear\"", "\"activation\": \"gelu\"",
        (const char *const[]){"layer 'conv2d' (Conv2D): unsupported activation = \"gelu\"", "\"relu\"", NULL});
    /* Keras 3's hard_sigmoid is relu6(x + 3) / 6, not mpifit's Keras 2 form */
    expect_edit_refused("seq_k3.json", "\"activation\": \"linear\"", "\"activation\": \"hard_sigmoid\"",
                        (const char *const[]){"unsupported activation = \"hard_sigmoid\"", "Keras 3", NULL});
    expect_edit_refused("seq_k2.json", "\"dtype\": \"float32\", \"filters\"", "\"dtype\": \"float16\", \"filters\"",
                        (const char *const[]){"layer 'conv2d' (Conv2D): unsupported dtype = \"float16\"", NULL});
    expect_edit_refused(
        "seq_k3.json", "\"name\": \"float32\"", "\"name\": \"mixed_float16\"",
        (const char *const[]){"unsupported dtype = {", "mixed_float16", "(supported: \"float32\")", NULL});
    expect_edit_refused("seq_k2.json", "\"groups\": 1", "\"groups\": 2",
                        (const char *const[]){"layer 'conv2d' (Conv2D): unsupported groups = 2 (supported: 1)", NULL});
    expect_edit_refused("seq_k2.json", "\"kernel_size\": [3, 3]", "\"kernel_size\": [9, 3]",
                        (const char *const[]){"unsupported kernel_size = [9,3]", "1..7 on each axis", NULL});
    /* conv2d has strides 2: Keras refuses dilation with strides too */
    expect_edit_refused("seq_k2.json", "\"dilation_rate\": [1, 1]", "\"dilation_rate\": [2, 2]",
                        (const char *const[]){"unsupported strides = [2,2]", "dilation_rate > 1", NULL});
    expect_edit_refused("seq_k2.json", "\"kernel_regularizer\": null",
                        "\"kernel_regularizer\": {\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}",
                        (const char *const[]){"unsupported kernel_regularizer = {", "(supported: null)", NULL});
    /* initializers: one mpifit has not, or arguments its fixed formulas cannot honour */
    expect_edit_refused("seq_k2.json", "{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}",
                        "{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 2.0, \"mode\": "
                        "\"fan_in\", \"distribution\": \"truncated_normal\", \"seed\": null}}",
                        (const char *const[]){"layer 'conv2d' (Conv2D): unsupported kernel_initializer = {",
                                              "VarianceScaling", "HeNormal", NULL});
    expect_edit_refused("seq_k2.json", "{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}",
                        "{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 0.0, \"stddev\": 0.1, "
                        "\"seed\": null}}",
                        (const char *const[]){"unsupported kernel_initializer argument stddev = 0.1", "0.05", NULL});
    expect_edit_refused("seq_k3.json", "\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}",
                        "\"class_name\": \"HeNormal\", \"config\": {\"seed\": null, \"scale\": 3.0}",
                        (const char *const[]){"unsupported kernel_initializer argument scale = 3.0", NULL});
    expect_edit_refused("seq_k2.json", "\"axis\": [3]", "\"axis\": [1]",
                        (const char *const[]){"unsupported axis = [1]", NULL});
    expect_edit_refused("func_residual_k2.json", "\"depth_multiplier\": 1", "\"depth_multiplier\": 0",
                        (const char *const[]){"layer 'depthwise_conv2d' (DepthwiseConv2D): unsupported "
                                              "depth_multiplier = 0",
                                              NULL});
    expect_edit_refused("separable_k2.json", "\"kernel_size\": [1, 3]", "\"kernel_size\": [1, 9]",
                        (const char *const[]){"layer 'separable_conv2d_1' (SeparableConv2D): unsupported "
                                              "kernel_size = [1,9]",
                                              "1..7 on each axis", NULL});
    expect_edit_refused("separable_k2.json", "\"pointwise_regularizer\": null",
                        "\"pointwise_regularizer\": {\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}",
                        (const char *const[]){"layer 'separable_conv2d' (SeparableConv2D): unsupported "
                                              "pointwise_regularizer",
                                              NULL});
    expect_edit_refused("separable_k2.json", "\"dilation_rate\": [1, 1], \"activation\": \"linear\"",
                        "\"dilation_rate\": [2, 2], \"activation\": \"linear\"",
                        (const char *const[]){"layer 'separable_conv2d_1' (SeparableConv2D): unsupported strides",
                                              "dilation_rate > 1", NULL});
    /* what mpifit has no layer or option for */
    expect_edit_refused("func_residual_k2.json", "\"class_name\": \"DepthwiseConv2D\"",
                        "\"class_name\": \"Conv2DTranspose\"",
                        (const char *const[]){"layer 'depthwise_conv2d' (Conv2DTranspose): unsupported class_name",
                                              "SeparableConv2D", NULL});
    expect_edit_refused("func_residual_k2.json",
                        "\"groups\": 1, \"activation\": \"linear\", \"use_bias\": false, \"bias_initializer\": "
                        "{\"class_name\": \"Zeros\", \"config\": {}}, \"bias_regularizer\"",
                        "\"groups\": 1, \"activation\": \"gelu\", \"use_bias\": false, \"bias_initializer\": "
                        "{\"class_name\": \"Zeros\", \"config\": {}}, \"bias_regularizer\"",
                        (const char *const[]){"layer 'depthwise_conv2d' (DepthwiseConv2D): unsupported activation = "
                                              "\"gelu\"",
                                              "\"swish\"", NULL});
    expect_edit_refused("func_concat_k3.json", "\"axis\": -1}", "\"axis\": 1}",
                        (const char *const[]){"layer 'concatenate' (Concatenate): unsupported axis = 1", NULL});
    expect_edit_refused("seq_k2.json", "\"negative_slope\": 0.0", "\"negative_slope\": 0.1",
                        (const char *const[]){"layer 're_lu' (ReLU): unsupported negative_slope = 0.1", NULL});
    /* two outputs; two inputs */
    expect_edit_refused("func_residual_k2.json", "\"output_layers\": [[\"dense\", 0, 0]]",
                        "\"output_layers\": [[\"dense\", 0, 0], [\"add\", 0, 0]]",
                        (const char *const[]){"unsupported output_layers", "one input and one output", NULL});
    expect_edit_refused("func_residual_k2.json", "\"input_layers\": [[\"input_1\", 0, 0]]",
                        "\"input_layers\": [[\"input_1\", 0, 0], [\"input_2\", 0, 0]]",
                        (const char *const[]){"unsupported input_layers", NULL});
    /* Keras 3 call arguments (e.g. training=False) change what a layer computes */
    expect_edit_refused("func_residual_k3.json", "\"kwargs\": {}", "\"kwargs\": {\"training\": false}",
                        (const char *const[]){"layer 'conv2d' (Conv2D): unsupported call arguments", NULL});
    expect_edit_refused("func_residual_k2.json", "\"class_name\": \"Functional\"", "\"class_name\": \"Subclassed\"",
                        (const char *const[]){"unsupported model class_name = \"Subclassed\"", NULL});
}

/* a fixture with one edit builds (mf_model_free it) */
static mf_model *edit_builds(const char *file, const char *from, const char *to, mf_keras_info *info)
{
    char *text = slurp(file);
    char *edited = replace1(text, from, to);
    mf_model *m = NULL;
    mf_status s = mf_model_from_keras_json_info(&m, edited, "edited.json", 1, info);
    MF_CHECK_MSG(s == MF_STATUS_OK && m, "%s with %s: %s", file, to, mf_last_error());
    mf_free(edited);
    mf_free(text);
    return m;
}

/* what the reader refused before the layers of mpifit/layers.h landed */
static void test_new_arguments(void)
{
    mf_keras_info info;
    /* Conv2D(activation="relu"): the fused activation, same parameters */
    mf_model *m = edit_builds("seq_k2.json", "\"activation\": \"linear\"", "\"activation\": \"relu\"", &info);
    MF_CHECK(m && mf_model_count_trainable(m) == 5267);
    mf_model_free(m);
    /* non-square kernel (3, 5) on conv2d: 3x5x3x16 = 720 instead of 432 */
    m = edit_builds("seq_k2.json", "\"kernel_size\": [3, 3]", "\"kernel_size\": [3, 5]", &info);
    MF_CHECK(m && mf_model_count_trainable(m) == 5267 - 432 + 720);
    MF_CHECK(m && shape_is(mf_layer_output_shape(mf_model_layer(m, 0)), 4, 16, 16, 16));
    mf_model_free(m);
    /* dilation with strides 1 (conv2d of func_residual: 3x3 same, 32x32) */
    m = edit_builds("func_residual_k2.json", "\"dilation_rate\": [1, 1]", "\"dilation_rate\": [2, 2]", &info);
    MF_CHECK(m && shape_is(mf_layer_output_shape(mf_model_layer(m, 0)), 4, 32, 32, 8));
    mf_model_free(m);
    /* a softmax not on the output: a real softmax over the channels */
    m = edit_builds("func_residual_k2.json", "\"activation\": \"linear\"", "\"activation\": \"softmax\"", &info);
    MF_CHECK(m && !info.softmax_folded);
    mf_model_free(m);
    /* Dense(sigmoid) on the output: built with it, nothing folded */
    m = edit_builds("seq_k2.json", "\"activation\": \"softmax\"", "\"activation\": \"sigmoid\"", &info);
    MF_CHECK(m && !info.softmax_folded && mf_model_count_trainable(m) == 5267);
    mf_model_free(m);
    /* Keras 2's hard_sigmoid is mpifit's */
    m = edit_builds("seq_k2.json", "\"activation\": \"linear\"", "\"activation\": \"hard_sigmoid\"", &info);
    mf_model_free(m);
    /* center=false: batch_normalization has no beta (16 fewer trainable) */
    m = edit_builds("seq_k2.json", "\"center\": true", "\"center\": false", &info);
    MF_CHECK(m && mf_model_count_trainable(m) == 5267 - 16 && mf_model_count_non_trainable(m) == 96);
    mf_model_free(m);
    m = edit_builds("seq_k2.json", "\"scale\": true", "\"scale\": false", &info);
    MF_CHECK(m && mf_model_count_trainable(m) == 5267 - 16);
    mf_model_free(m);
    /* initializers, Keras 2 and Keras 3 forms: other weights than the default */
    mf_model *d = NULL;
    MF_CHECK(mf_model_from_keras(&d, fixture_path("seq_k2.json"), 1) == MF_STATUS_OK);
    m = edit_builds("seq_k2.json", "GlorotUniform", "HeNormal", &info);
    MF_CHECK(m && d && !same_params(m, d));
    mf_model *m3 = edit_builds("seq_k3.json", "GlorotUniform", "HeNormal", &info);
    MF_CHECK(same_params(m, m3)); /* the two forms agree */
    mf_model_free(m3);
    mf_model_free(m);
    /* RandomNormal with Keras' default arguments written out */
    m = edit_builds("seq_k2.json", "{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}",
                    "{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 0.0, \"stddev\": 0.05, "
                    "\"seed\": 3}}",
                    &info);
    mf_model_free(m);
    /* Ones as gamma's initializer is the default: the same weights */
    m = edit_builds("seq_k2.json", "\"gamma_initializer\": {\"class_name\": \"Ones\", \"config\": {}}",
                    "\"gamma_initializer\": \"ones\"", &info);
    MF_CHECK(same_params(m, d));
    mf_model_free(m);
    /* a bias initializer on a layer without bias (conv2d: use_bias false) is ignored, as in Keras */
    m = edit_builds("seq_k2.json", "{\"class_name\": \"Zeros\", \"config\": {}}", "\"ones\"", &info);
    MF_CHECK(same_params(m, d));
    mf_model_free(m);
    mf_model_free(d);
}

static void test_trainable_flag(void)
{
    /* "trainable": false on a layer freezes it, as Keras' layer.trainable */
    char *text = slurp("seq_k2.json");
    char *edited = replace1(text, "\"trainable\": true", "\"trainable\": false"); /* conv2d: 432 */
    mf_model *m = NULL;
    MF_CHECK(mf_model_from_keras_json(&m, edited, "edited.json", 1) == MF_STATUS_OK);
    if (m) {
        MF_CHECK(!mf_layer_trainable(mf_model_find_layer(m, "conv2d")));
        MF_CHECK(mf_model_count_trainable(m) == 5267 - 432);
        MF_CHECK(mf_model_count_non_trainable(m) == 96 + 432);
    }
    mf_model_free(m);
    mf_free(edited);
    mf_free(text);
}

/* A few plain SGD steps on one fixed batch: the loss goes down. */
/* DepthwiseConv2D and SeparableConv2D with their options (make_separable_json.py):
 * conv2d 3x3x3x8 + 8 = 224 (8x8x8); depthwise_conv2d (3,5,8,2) + 16 = 256
 * (8x8x16, 'same' with dilation (2,1)); separable_conv2d 3x3x16x2 + 32x12 + 12
 * = 684 (6x6x12, 'valid'); batch_normalization 4 x 12 = 48 (24 + 24);
 * separable_conv2d_1 (1,3,12,1) + 12x16, no bias = 228 (3x3x16, strides 2
 * 'same'); dense 16 x 3 + 3 = 51. Keras: Total 1,491, Trainable 1,467,
 * Non-trainable 24. */
static mf_model *test_separable(const char *file)
{
    static const char *const names[] = {"conv2d",
                                        "depthwise_conv2d",
                                        "separable_conv2d",
                                        "batch_normalization",
                                        "separable_conv2d_1",
                                        "global_average_pooling2d",
                                        "dense"};
    static const char *const kinds[] = {"Conv2D",
                                        "DepthwiseConv2D",
                                        "SeparableConv2D",
                                        "BatchNormalization",
                                        "SeparableConv2D",
                                        "GlobalAveragePooling2D",
                                        "Dense"};
    mf_model *m = NULL;
    mf_keras_info info;
    MF_CHECK_MSG(mf_model_from_keras_info(&m, fixture_path(file), 7, &info) == MF_STATUS_OK, "%s: %s", file,
                 mf_last_error());
    if (!m)
        return NULL;
    check_layers(m, names, kinds, 7);
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 0)), 4, 8, 8, 8));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 1)), 4, 8, 8, 16));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 2)), 4, 6, 6, 12));
    MF_CHECK(shape_is(mf_layer_output_shape(mf_model_layer(m, 4)), 4, 3, 3, 16));
    MF_CHECK(mf_model_count_trainable(m) == 1467);
    MF_CHECK(mf_model_count_non_trainable(m) == 24);
    MF_CHECK(info.softmax_folded && strcmp(info.softmax_layer, "dense") == 0);
    mf_layer_args a;
    mf_layer_keras_args(mf_model_layer(m, 1), &a);
    MF_CHECK(a.kernel_h == 3 && a.kernel_w == 5 && a.dilation_h == 2 && a.dilation_w == 1 && a.depth_multiplier == 2);
    MF_CHECK(a.activation == MF_ACT_RELU6 && a.use_bias && a.padding == MF_PADDING_SAME);
    mf_layer_keras_args(mf_model_layer(m, 2), &a);
    MF_CHECK(a.filters == 12 && a.depth_multiplier == 2 && a.activation == MF_ACT_SWISH && a.use_bias);
    mf_layer_keras_args(mf_model_layer(m, 4), &a);
    MF_CHECK(a.filters == 16 && a.kernel_h == 1 && a.kernel_w == 3 && a.stride_h == 2 && !a.use_bias);
    return m;
}

static void test_separable_forms_agree(void)
{
    mf_model *a = test_separable("separable_k2.json");
    mf_model *b = test_separable("separable_k3.json");
    MF_CHECK(same_params(a, b));
    mf_model_free(a);
    mf_model_free(b);
}

/* a few SGD steps on class-dependent images of side `side` lower the loss */
static void test_training_lowers_loss(const char *file, int side, float lr)
{
    mf_model *m = NULL;
    MF_CHECK_MSG(mf_model_from_keras(&m, fixture_path(file), 5) == MF_STATUS_OK, "%s: %s", file, mf_last_error());
    if (!m)
        return;
    enum { N = 8, C = 3 };
    const int S = side * side * 3;
    float *x = mf_alloc((size_t)N * S * sizeof *x), probs[N * C], dlogits[N * C];
    int32_t y[N];
    mf_rng rng;
    mf_rng_seed(&rng, 11);
    for (int i = 0; i < N; i++) {
        y[i] = i % C;
        for (int k = 0; k < S; k++) /* class-dependent brightness per channel */
            x[i * S + k] = (k % 3 == y[i] ? 0.8f : -0.2f) + 0.3f * mf_rng_normal(&rng);
    }
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        mf_tensor out = mf_model_forward(m, x, N, MF_MODE_TRAIN, &rng);
        double loss = mf_softmax_xent_forward(probs, out.data, y, NULL, N, C);
        if (step == 0)
            first = loss;
        last = loss;
        mf_softmax_xent_backward(dlogits, probs, y, NULL, N, C, 1.0f);
        mf_model_zero_grad(m);
        mf_model_backward(m, dlogits, NULL);
        float *p = mf_model_params(m), *g = mf_model_grads(m);
        for (size_t k = 0; k < mf_model_num_params(m); k++)
            p[k] -= lr * g[k];
    }
    MF_CHECK_MSG(last < 0.7 * first, "%s: loss %.4f -> %.4f", file, first, last);
    mf_free(x);
    mf_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s tests/data/keras\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    size_t live0 = mf_alloc_live_count();
    test_sequential("seq_k2.json", "small_cnn_k2", "input_1");
    test_sequential("seq_k2_no_input.json", "no_input_layer", "input_1");
    test_sequential("seq_k3.json", "small_cnn_k3", "input_layer");
    mf_model_free(test_residual("func_residual_k2.json", "input_1", 0));
    mf_model_free(test_residual("func_residual_k3.json", "input_layer", 1));
    test_forms_agree();
    test_full_model_h5();
    test_fixture_refusals();
    test_argument_refusals();
    test_concat();
    test_digits_forms_agree();
    test_new_arguments();
    test_trainable_flag();
    test_separable_forms_agree();
    test_training_lowers_loss("func_residual_k3.json", 32, 0.1f);
    test_training_lowers_loss("separable_k3.json", 16, 0.1f);
    MF_CHECK_MSG(mf_alloc_live_count() == live0, "%zu allocations left", mf_alloc_live_count() - live0);
    return mf_test_report();
}
