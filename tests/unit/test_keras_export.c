/* test_keras_export.c: mf_model_to_keras_json (src/io/keras_export.c) round
 * trips: model -> Keras 2 Functional JSON -> mf_model_from_keras_json gives
 * the same layers (names, kinds, Keras arguments, output shapes), weights
 * (names, shapes, counts) and graph (every layer's inputs), for the zoo
 * models and every fixture of tests/data/keras (argv[1]) the reader takes.
 * The text is valid JSON with the top-level keys of Keras' model.to_json(),
 * and the output layer carries the softmax. mf_model_to_keras's full-model
 * .h5 reads back as the same model with the same weights. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "core/core.h"
#include "test.h"

static const char *dir;

static int same_shape(mf_shape a, mf_shape b)
{
    if (a.ndim != b.ndim)
        return 0;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i])
            return 0;
    return 1;
}

/* a and b: the same graph of the same layers with the same weights' layout */
static void check_same(const mf_model *a, const mf_model *b, const char *what)
{
    MF_CHECK_MSG(!strcmp(mf_model_name(a), mf_model_name(b)), "%s: name %s vs %s", what, mf_model_name(a),
                 mf_model_name(b));
    MF_CHECK_MSG(!strcmp(mf_model_input_name(a), mf_model_input_name(b)), "%s: input %s vs %s", what,
                 mf_model_input_name(a), mf_model_input_name(b));
    MF_CHECK_MSG(same_shape(mf_model_input_shape(a), mf_model_input_shape(b)), "%s: input shape", what);
    int n = mf_model_num_layers(a);
    MF_CHECK_MSG(n == mf_model_num_layers(b), "%s: %d vs %d layers", what, n, mf_model_num_layers(b));
    if (n != mf_model_num_layers(b))
        return;
    for (int i = 0; i < n; i++) {
        const mf_layer *la = mf_model_layer(a, i), *lb = mf_model_layer(b, i);
        MF_CHECK_MSG(!strcmp(mf_layer_name(la), mf_layer_name(lb)), "%s: layer %d %s vs %s", what, i, mf_layer_name(la),
                     mf_layer_name(lb));
        MF_CHECK_MSG(!strcmp(mf_layer_kind(la), mf_layer_kind(lb)), "%s: %s kind %s vs %s", what, mf_layer_name(la),
                     mf_layer_kind(la), mf_layer_kind(lb));
        MF_CHECK_MSG(same_shape(mf_layer_output_shape(la), mf_layer_output_shape(lb)), "%s: %s output shape", what,
                     mf_layer_name(la));
        MF_CHECK_MSG(mf_layer_trainable(la) == mf_layer_trainable(lb), "%s: %s trainable", what, mf_layer_name(la));
        mf_layer_args aa, ab;
        mf_layer_keras_args(la, &aa);
        mf_layer_keras_args(lb, &ab);
        aa.kind = ab.kind = NULL;
        MF_CHECK_MSG(!memcmp(&aa, &ab, sizeof aa), "%s: %s Keras arguments differ", what, mf_layer_name(la));
        int ia[8], ib[8];
        int ka = mf_model_layer_inputs(a, i, ia), kb = mf_model_layer_inputs(b, i, ib);
        MF_CHECK_MSG(ka == kb && !memcmp(ia, ib, (size_t)ka * sizeof ia[0]), "%s: %s inputs differ", what,
                     mf_layer_name(la));
    }
    MF_CHECK(mf_model_count_trainable(a) == mf_model_count_trainable(b));
    MF_CHECK(mf_model_count_non_trainable(a) == mf_model_count_non_trainable(b));
    int np = mf_model_num_param_tensors(a);
    MF_CHECK(np == mf_model_num_param_tensors(b));
    for (int i = 0; i < np && np == mf_model_num_param_tensors(b); i++) {
        mf_param_info pa = mf_model_param(a, i), pb = mf_model_param(b, i);
        MF_CHECK_MSG(!strcmp(pa.layer, pb.layer) && !strcmp(pa.name, pb.name) && same_shape(pa.shape, pb.shape) &&
                         pa.kind == pb.kind && pa.numel == pb.numel,
                     "%s: weight %d %s/%s differs", what, i, pa.layer, pa.name);
    }
}

/* m -> JSON -> model; checks the text's form; the output layer's softmax */
static void round_trip(const mf_model *m, const char *what)
{
    char *text = NULL;
    mf_status st = mf_model_to_keras_json(m, &text);
    MF_CHECK_MSG(st == MF_STATUS_OK, "%s: %s", what, mf_last_error());
    if (st != MF_STATUS_OK)
        return;
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    MF_CHECK_MSG(root, "%s: not JSON: %s", what, err.text);
    if (root) {
        MF_CHECK(!strcmp(json_string_value(json_object_get(root, "class_name")), "Functional"));
        MF_CHECK(json_string_value(json_object_get(root, "keras_version"))[0] == '2');
        MF_CHECK(!strcmp(json_string_value(json_object_get(root, "backend")), "tensorflow"));
        json_t *cfg = json_object_get(root, "config");
        MF_CHECK(json_is_string(json_object_get(cfg, "name")));
        MF_CHECK(json_is_array(json_object_get(cfg, "input_layers")));
        MF_CHECK(json_is_array(json_object_get(cfg, "output_layers")));
        json_t *layers = json_object_get(cfg, "layers");
        MF_CHECK(json_array_size(layers) >= (size_t)mf_model_num_layers(m) + 1);
        json_t *first = json_array_get(layers, 0), *last = json_array_get(layers, json_array_size(layers) - 1);
        MF_CHECK(!strcmp(json_string_value(json_object_get(first, "class_name")), "InputLayer"));
        const char *act = json_string_value(json_object_get(json_object_get(last, "config"), "activation"));
        MF_CHECK_MSG(act && !strcmp(act, "softmax"), "%s: output activation %s", what, act ? act : "(none)");
        json_decref(root);
    }
    mf_model *b = NULL;
    mf_keras_info info;
    st = mf_model_from_keras_json_info(&b, text, what, 1, &info);
    MF_CHECK_MSG(st == MF_STATUS_OK, "%s: read back: %s", what, mf_last_error());
    MF_CHECK(info.softmax_folded);
    if (b) {
        check_same(m, b, what);
        mf_model_free(b);
    }
    mf_free(text);
}

/* mf_model_to_keras -> mf_model_from_keras: the same model and the same
 * weights, bit for bit (params and BatchNorm state) */
static void full_model(mf_model *m, const char *what)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/mf_keras_export_%d.h5", (int)getpid());
    mf_status st = mf_model_to_keras(m, path);
    MF_CHECK_MSG(st == MF_STATUS_OK, "%s: %s", what, mf_last_error());
    mf_model *b = NULL;
    mf_keras_info info;
    st = mf_model_from_keras_info(&b, path, 99, &info);
    MF_CHECK_MSG(st == MF_STATUS_OK, "%s: read back %s: %s", what, path, mf_last_error());
    if (b) {
        check_same(m, b, what);
        MF_CHECK(info.weights_loaded && info.softmax_folded);
        MF_CHECK(mf_model_num_params(m) == mf_model_num_params(b) && mf_model_num_state(m) == mf_model_num_state(b));
        for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
            mf_param_info pa = mf_model_param(m, i), pb = mf_model_param(b, i);
            const float *va = (pa.kind == MF_PARAM_STATE ? mf_model_state(m) : mf_model_params(m)) + pa.offset;
            const float *vb = (pb.kind == MF_PARAM_STATE ? mf_model_state(b) : mf_model_params(b)) + pb.offset;
            MF_CHECK_MSG(pa.numel == pb.numel && !memcmp(va, vb, pa.numel * sizeof(float)), "%s: %s/%s differs", what,
                         pa.layer, pa.name);
        }
        mf_model_free(b);
    }
    unlink(path);
}

static const char *fixture_path_of(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void fixture(const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    mf_model *m = NULL;
    MF_CHECK_MSG(mf_model_from_keras(&m, p, 3) == MF_STATUS_OK, "%s: %s", name, mf_last_error());
    if (m) {
        round_trip(m, name);
        full_model(m, name);
        mf_model_free(m);
    }
}

int main(int argc, char **argv)
{
    MF_ASSERT(argc == 2);
    dir = argv[1];
    mf_model *m = NULL;
    MF_CHECK(mf_mobilenet_v2_classifier(&m, 0.35f, 32, 5, 0.2f, 7) == MF_STATUS_OK);
    if (m) {
        round_trip(m, "mobilenet_v2_classifier");
        /* moving statistics that are not the initial ones (the state buffer
         * has gaps between weights: through the weights' offsets) */
        for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
            mf_param_info p = mf_model_param(m, i);
            for (size_t k = 0; p.kind == MF_PARAM_STATE && k < p.numel; k++)
                mf_model_state(m)[p.offset + k] += 0.001f * (float)((p.offset + k) % 97);
        }
        full_model(m, "mobilenet_v2_classifier (.h5)");
        mf_model_free(m);
    }
    MF_CHECK(mf_small_cnn(&m, 32, 4, 8, 0.1f, 7) == MF_STATUS_OK);
    if (m) {
        round_trip(m, "small_cnn");
        full_model(m, "small_cnn (.h5)");
        mf_model_free(m);
    }
    /* every fixture the reader accepts (bad_*.json are refused by design) */
    const char *ok[] = {"seq_k2.json",           "seq_k2_no_input.json", "seq_k3.json",        "func_residual_k2.json",
                        "func_residual_k3.json", "func_concat_k3.json",  "digits_cnn_k2.json", "digits_cnn_k3.json",
                        "full_model_k2.h5",      "separable_k2.json",    "separable_k3.json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        fixture(ok[i]);

    /* a full model with mpifit's description (a [model] keras run's
     * weights.h5): read back as arch "keras" with its classes and names; a
     * description that does not fit the model is refused; "keras" without
     * a model_config in the file is damage */
    MF_CHECK(mf_model_from_keras(&m, fixture_path_of("digits_cnn_k2.json"), 3) == MF_STATUS_OK);
    if (m) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/mf_keras_desc_%d.h5", (int)getpid());
        char *names[3] = {"a", "b", "c"};
        mf_model_desc d = {.arch = MF_MODEL_DESC_KERAS, .input_size = 32, .classes = 3, .class_names = names};
        MF_CHECK_MSG(mf_model_to_keras_desc(m, path, &d) == MF_STATUS_OK, "%s", mf_last_error());
        mf_model_desc r;
        MF_CHECK_MSG(mf_model_desc_read(path, &r) == MF_STATUS_OK, "%s", mf_last_error());
        MF_CHECK(!strcmp(r.arch, "keras") && r.input_size == 32 && r.classes == 3 && r.class_names &&
                 !strcmp(r.class_names[2], "c"));
        mf_model_desc_free(&r);
        mf_model *b = NULL;
        MF_CHECK(mf_model_from_keras(&b, path, 9) == MF_STATUS_OK);
        if (b)
            check_same(m, b, "digits with a description");
        mf_model_free(b);
        d.classes = 4;
        MF_CHECK(mf_model_to_keras_desc(m, path, &d) == MF_STATUS_INVALID && strstr(mf_last_error(), "3 classes"));
        d.classes = 3;
        MF_CHECK(mf_weights_save_keras_desc(m, path, &d) == MF_STATUS_OK);
        MF_CHECK(mf_model_desc_read(path, &r) == MF_STATUS_DATA && strstr(mf_last_error(), "model_config"));
        unlink(path);
        mf_model_free(m);
    }

    /* an output layer without an activation argument gets Activation("softmax") */
    m = mf_model_create("gap_out");
    int x = mf_model_input(m, mf_shape4(0, 8, 8, 3));
    x = mf_model_add(m, mf_conv2d("c", 4, 3, 1, MF_PADDING_SAME, 1), x);
    x = mf_model_add(m, mf_global_avg_pool2d("g"), x);
    MF_CHECK(x > 0 && mf_model_build(m, 1) == MF_STATUS_OK);
    char *text = NULL;
    MF_CHECK(mf_model_to_keras_json(m, &text) == MF_STATUS_OK);
    MF_CHECK(text && strstr(text, "\"g_softmax\""));
    mf_free(text);
    round_trip(m, "gap_out");
    mf_model_free(m);
    return mf_test_report();
}
