/* keras_export.c: an mf_model -> the Keras 2.x Functional model.to_json()
 * text (mpifit/keras.h, mf_model_to_keras_json). The layers' arguments come
 * from mf_layer_keras_args; the JSON is built here with jansson. Arguments
 * left out (initializers, regularizers, constraints) take Keras' defaults
 * when Keras reads the text back (Layer.from_config). */
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include "mpifit/keras.h"
#include "../core/core.h"
#include "h5util.h"
#include "keras_io.h"
#include "model_desc.h"

static json_t *pair(int a, int b) { return json_pack("[ii]", a, b); }
static const char *padding_name(mf_padding p) { return p == MF_PADDING_SAME ? "same" : "valid"; }
/* a float argument as Keras writes it: shortest decimal of the float */
static json_t *real(float v) { return json_real((double)v); }

/* Keras arguments of one layer into cfg; *has_act = 1 when the kind has an
 * `activation` argument. MF_STATUS_CONFIG naming the layer for a kind
 * mf_model_to_keras_json cannot write. */
static mf_status layer_config(const mf_layer *l, json_t *cfg, int *has_act)
{
    mf_layer_args a;
    mf_layer_keras_args(l, &a);
    const char *k = a.kind;
    *has_act = 0;
    if (!strcmp(k, "Conv2D") || !strcmp(k, "DepthwiseConv2D") || !strcmp(k, "SeparableConv2D")) {
        int dw = k[0] != 'C'; /* a depth_multiplier, no groups */
        if (k[0] != 'D')
            json_object_set_new(cfg, "filters", json_integer(a.filters));
        json_object_set_new(cfg, "kernel_size", pair(a.kernel_h, a.kernel_w));
        json_object_set_new(cfg, "strides", pair(a.stride_h, a.stride_w));
        json_object_set_new(cfg, "padding", json_string(padding_name(a.padding)));
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
        json_object_set_new(cfg, "dilation_rate", pair(a.dilation_h, a.dilation_w));
        if (dw)
            json_object_set_new(cfg, "depth_multiplier", json_integer(a.depth_multiplier));
        else
            json_object_set_new(cfg, "groups", json_integer(1));
        json_object_set_new(cfg, "activation", json_string(mf_activation_name(a.activation)));
        json_object_set_new(cfg, "use_bias", json_boolean(a.use_bias));
        *has_act = 1;
    } else if (!strcmp(k, "BatchNormalization")) {
        json_object_set_new(cfg, "axis", json_pack("[i]", 3));
        json_object_set_new(cfg, "momentum", real(a.momentum));
        json_object_set_new(cfg, "epsilon", real(a.epsilon));
        json_object_set_new(cfg, "center", json_boolean(a.center));
        json_object_set_new(cfg, "scale", json_boolean(a.scale));
    } else if (!strcmp(k, "ReLU")) {
        json_object_set_new(cfg, "max_value", a.max_value > 0.0f ? real(a.max_value) : json_null());
        json_object_set_new(cfg, "negative_slope", json_real(0.0));
        json_object_set_new(cfg, "threshold", json_real(0.0));
    } else if (!strcmp(k, "Activation")) {
        json_object_set_new(cfg, "activation", json_string(mf_activation_name(a.activation)));
        *has_act = 1;
    } else if (!strcmp(k, "MaxPooling2D") || !strcmp(k, "AveragePooling2D")) {
        json_object_set_new(cfg, "pool_size", pair(a.pool_h, a.pool_w));
        json_object_set_new(cfg, "padding", json_string(padding_name(a.padding)));
        json_object_set_new(cfg, "strides", pair(a.stride_h, a.stride_w));
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
    } else if (!strcmp(k, "GlobalAveragePooling2D") || !strcmp(k, "GlobalMaxPooling2D") || !strcmp(k, "Flatten")) {
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
        if (k[0] == 'G')
            json_object_set_new(cfg, "keepdims", json_false());
    } else if (!strcmp(k, "Rescaling")) {
        json_object_set_new(cfg, "scale", real(a.rescale));
        json_object_set_new(cfg, "offset", real(a.offset));
    } else if (!strcmp(k, "Concatenate")) {
        json_object_set_new(cfg, "axis", json_integer(-1));
    } else if (!strcmp(k, "Add")) {
        /* no arguments */
    } else if (!strcmp(k, "ZeroPadding2D")) {
        json_object_set_new(cfg, "padding", json_pack("[[ii][ii]]", a.pad[0], a.pad[1], a.pad[2], a.pad[3]));
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
    } else if (!strcmp(k, "Dropout")) {
        json_object_set_new(cfg, "rate", real(a.rate));
        json_object_set_new(cfg, "noise_shape", json_null());
        json_object_set_new(cfg, "seed", json_null());
    } else if (!strcmp(k, "Dense")) {
        json_object_set_new(cfg, "units", json_integer(a.units));
        json_object_set_new(cfg, "activation", json_string(mf_activation_name(a.activation)));
        json_object_set_new(cfg, "use_bias", json_boolean(a.use_bias));
        *has_act = 1;
    } else {
        return mf_fail(MF_STATUS_CONFIG, "layer '%s' (%s): no Keras description for this kind", mf_layer_name(l), k);
    }
    return MF_STATUS_OK;
}

/* one entry of "layers": class_name, config (name, trainable, dtype first),
 * name, inbound_nodes [[[in, 0, 0, {}], ...]] */
static json_t *layer_entry(const char *cls, const char *name, json_t *cfg, json_t *inbound)
{
    return json_pack("{s:s, s:o, s:s, s:o}", "class_name", cls, "config", cfg, "name", name, "inbound_nodes", inbound);
}

mf_status mf_model_to_keras_json(const mf_model *m, char **json_out)
{
    if (!m || !json_out)
        return mf_fail(MF_STATUS_INVALID, "mf_model_to_keras_json: NULL argument");
    *json_out = NULL;
    int n = mf_model_num_layers(m);
    if (n < 1)
        return mf_fail(MF_STATUS_INVALID, "model '%s' has no layers to describe", mf_model_name(m));
    const char *in_name = mf_model_input_name(m);
    mf_shape is = mf_model_input_shape(m);
    json_t *layers = json_array();
    /* InputLayer: batch_input_shape [null, H, W, C] */
    json_t *bis = json_array();
    json_array_append_new(bis, json_null());
    for (int d = 1; d < is.ndim; d++)
        json_array_append_new(bis, json_integer(is.d[d]));
    json_array_append_new(layers,
                          layer_entry("InputLayer", in_name,
                                      json_pack("{s:o, s:s, s:b, s:b, s:s}", "batch_input_shape", bis, "dtype",
                                                "float32", "sparse", 0, "ragged", 0, "name", in_name),
                                      json_array()));
    const char *out_name = NULL;
    char sm[96]; /* the appended Activation's name */
    mf_status st = MF_STATUS_OK;
    for (int i = 0; i < n && st == MF_STATUS_OK; i++) {
        const mf_layer *l = mf_model_layer(m, i);
        json_t *cfg = json_pack("{s:s, s:b, s:s}", "name", mf_layer_name(l), "trainable", mf_layer_trainable(l),
                                "dtype", "float32");
        int has_act = 0;
        st = layer_config(l, cfg, &has_act);
        if (st != MF_STATUS_OK) {
            json_decref(cfg);
            break;
        }
        /* the output layer: mpifit trains on logits and predicts their
         * softmax; Keras gets the softmax in the model (what the reader folds
         * back into the loss) */
        int softmax_layer = 0;
        if (i == n - 1 && !has_act)
            softmax_layer = 1; /* no activation argument: an Activation layer after it */
        else if (i == n - 1 && !strcmp(json_string_value(json_object_get(cfg, "activation")), "linear"))
            json_object_set_new(cfg, "activation", json_string("softmax"));
        int in[8];
        int k = mf_model_layer_inputs(m, i, in);
        json_t *node = json_array();
        for (int j = 0; j < k; j++)
            json_array_append_new(
                node, json_pack("[s i i {}]", in[j] < 0 ? in_name : mf_layer_name(mf_model_layer(m, in[j])), 0, 0));
        json_array_append_new(layers, layer_entry(mf_layer_kind(l), mf_layer_name(l), cfg, json_pack("[o]", node)));
        out_name = mf_layer_name(l);
        if (softmax_layer) {
            snprintf(sm, sizeof sm, "%s_softmax", out_name);
            json_t *c = json_pack("{s:s, s:b, s:s, s:s}", "name", sm, "trainable", 1, "dtype", "float32", "activation",
                                  "softmax");
            json_array_append_new(layers,
                                  layer_entry("Activation", sm, c, json_pack("[[[s i i {}]]]", out_name, 0, 0)));
            out_name = sm;
        }
    }
    if (st != MF_STATUS_OK) {
        json_decref(layers);
        return st;
    }
    json_t *root =
        json_pack("{s:s, s:{s:s, s:o, s:[[s i i]], s:[[s i i]]}, s:s, s:s}", "class_name", "Functional", "config",
                  "name", mf_model_name(m), "layers", layers, "input_layers", in_name, 0, 0, "output_layers", out_name,
                  0, 0, "keras_version", MF_KERAS_VERSION, "backend", "tensorflow");
    if (!root)
        return mf_fail(MF_STATUS_NOMEM, "mf_model_to_keras_json: building the JSON failed");
    char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!s)
        return mf_fail(MF_STATUS_NOMEM, "mf_model_to_keras_json: writing the JSON failed");
    *json_out = mf_strdup(s);
    free(s);
    return MF_STATUS_OK;
}

mf_status mf_model_to_keras(const mf_model *m, const char *path) { return mf_model_to_keras_desc(m, path, NULL); }

mf_status mf_model_to_keras_desc(const mf_model *m, const char *path, const mf_model_desc *desc)
{
    if (!m || !path)
        return mf_fail(MF_STATUS_INVALID, "mf_model_to_keras: NULL argument");
    if (!mf_model_is_built(m))
        return mf_fail(MF_STATUS_INVALID, "mf_model_to_keras: model '%s' is not built (no weights)", mf_model_name(m));
    mf_shape out = mf_model_output_shape(m);
    if (desc && (strcmp(desc->arch, MF_MODEL_DESC_KERAS) != 0 || out.ndim != 2 || out.d[1] != desc->classes))
        return mf_fail(MF_STATUS_INVALID,
                       "%s: a full model's description must be arch '%s' with the model's %d classes, got '%s' with %d",
                       path, MF_MODEL_DESC_KERAS, out.ndim == 2 ? out.d[1] : -1, desc->arch, desc->classes);
    char *json = NULL;
    MF_TRY(mf_model_to_keras_json(m, &json));
    char err[256];
    mf_h5_lock();
    hid_t f = mf_h5_mem_create(path, 0);
    mf_status s = MF_STATUS_OK;
    if (f < 0 || mf_h5_put_string(f, "model_config", json, MF_H5_FIXED) < 0 ||
        mf_h5_put_string(f, "keras_version", MF_KERAS_VERSION, MF_H5_FIXED) < 0 ||
        mf_h5_put_string(f, "backend", "tensorflow", MF_H5_FIXED) < 0)
        s = mf_fail(MF_STATUS_HDF5, "%s: writing the model description: %s", path, mf_h5_error(err, sizeof err));
    if (s == MF_STATUS_OK) {
        hid_t g = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        /* the one writer of Keras' weight layout; it only reads m */
        s = g < 0 ? mf_fail(MF_STATUS_HDF5, "%s: /model_weights: %s", path, mf_h5_error(err, sizeof err))
                  : mf_keras_write_group(g, (mf_model *)m, path);
        if (g >= 0)
            H5Gclose(g);
    }
    if (s == MF_STATUS_OK && desc && mf_model_desc_put(f, desc, 1) < 0)
        s = mf_fail(MF_STATUS_HDF5, "writing the model description to %s: %s", path, mf_h5_error(err, sizeof err));
    if (f >= 0)
        s = mf_h5_mem_commit(f, path, s); /* closes f; on failure writes nothing */
    mf_h5_unlock();
    mf_free(json);
    return s;
}
