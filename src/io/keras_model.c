/* keras_model.c: Keras model descriptions (model.to_json(), an .h5's
 * model_config) -> mf_model (mpifit/keras.h).
 *
 * The description comes from anywhere, so nothing in it is trusted: JSON is
 * parsed by jansson (duplicate keys rejected), every number is range-checked
 * before it reaches a constructor, names are bounded, and every argument that
 * changes what training computes must hold a value mpifit implements exactly;
 * anything else is refused with the file, the layer, its class, the argument
 * and its value. Arguments that change nothing mpifit computes (`trainable`
 * is honoured; `seed` of an initializer or Dropout, `name`, `sparse`,
 * `build_config`, `module`, `registered_name`) are not checked.
 *
 * One builder per Keras class, in the table `builders` at the end: a builder
 * checks its layer's config and returns the mpifit layer (or NULL with
 * MF_STATUS_OK for a layer that computes nothing mpifit keeps: a linear
 * Activation, or the output's softmax, folded into the loss). Initializers
 * named in a config are checked with the rest and set on the layer after it
 * is made (arg_init, made_init). New layer kinds plug in by adding a builder
 * and a row. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "mpifit/keras.h"
#include "h5util.h"
#include "../core/core.h"

#define KERAS_MAX_JSON ((size_t)64 << 20) /* bytes of a description: MobileNetV2's is ~100 KiB */
#define KERAS_MAX_LAYERS 10000
#define KERAS_MAX_DIM 65536 /* filters, units, input extents */
#define KERAS_MAX_IN 8 /* inputs of Add and Concatenate (mf_model_add_n) */
#define KERAS_NAME_MAX 64 /* mpifit's layer names (layers/layer.h MF_NAME_MAX) */

/* One layer entry of the description. */
typedef struct klayer {
    const char *cls; /* class_name */
    const char *name;
    json_t *cfg; /* its "config" object */
    int is_output; /* the model's output layer (where a softmax may be folded) */
    mf_shape in; /* shape of its (first) input, batch 0 */
} klayer;

typedef struct kreader {
    const char *what; /* for messages */
    mf_model *m;
    mf_keras_info *info;
    /* layer name -> node id; a layer that builds nothing aliases its input */
    char (*names)[KERAS_NAME_MAX];
    int *nodes;
    mf_shape *shapes;
    int n_names;
    int keras3; /* a Keras 3 description (entries with "module", keras_version 3.x) */
} kreader;

/* ---- messages ---------------------------------------------------------- */

/* v as compact JSON (at most ~200 characters) into buf */
static const char *jtext(const json_t *v, char *buf, size_t n)
{
    if (!v) {
        snprintf(buf, n, "(missing)");
        return buf;
    }
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, n, "%.200s%s", t ? t : "?", t && strlen(t) > 200 ? "..." : "");
    free(t); /* jansson's allocator */
    return buf;
}

static mf_status unsupported(const kreader *r, const klayer *L, const char *arg, const json_t *v, const char *supported)
{
    char b[256];
    return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): unsupported %s = %s (supported: %s)", r->what, L->name,
                   L->cls, arg, jtext(v, b, sizeof b), supported);
}

/* ---- typed arguments ----------------------------------------------------- */

/* an integer in [lo, hi]; absent -> def (def < lo: required) */
static mf_status arg_int(const kreader *r, const klayer *L, const char *key, int lo, int hi, int def, int *out)
{
    json_t *v = json_object_get(L->cfg, key);
    if (!v && def >= lo) {
        *out = def;
        return MF_STATUS_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char sup[64];
        snprintf(sup, sizeof sup, "an integer in [%d, %d]", lo, hi);
        return unsupported(r, L, key, v, sup);
    }
    *out = (int)json_integer_value(v);
    return MF_STATUS_OK;
}

/* a number in [lo, hi] (lo_open: lo excluded); absent -> def */
static mf_status arg_num(const kreader *r, const klayer *L, const char *key, double lo, double hi, int lo_open,
                         double def, double *out)
{
    json_t *v = json_object_get(L->cfg, key);
    if (!v) {
        *out = def;
        return MF_STATUS_OK;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(x) || x < lo || (lo_open && x == lo) || x > hi) {
        char sup[64];
        snprintf(sup, sizeof sup, "a number in %c%g, %g]", lo_open ? '(' : '[', lo, hi);
        return unsupported(r, L, key, v, sup);
    }
    *out = x;
    return MF_STATUS_OK;
}

/* true or false; absent -> def */
static mf_status arg_bool(const kreader *r, const klayer *L, const char *key, int def, int *out)
{
    json_t *v = json_object_get(L->cfg, key);
    if (!v) {
        *out = def;
        return MF_STATUS_OK;
    }
    if (!json_is_boolean(v))
        return unsupported(r, L, key, v, "true, false");
    *out = json_is_true(v);
    return MF_STATUS_OK;
}

/* the argument must be absent or equal to `want` (a JSON literal; null matches
 * an absent value); `supported` says so in the message */
static mf_status arg_is(const kreader *r, const klayer *L, const char *key, const char *want, const char *supported)
{
    json_t *v = json_object_get(L->cfg, key);
    if (!v || json_is_null(v))
        return strcmp(want, "null") == 0 || !v ? MF_STATUS_OK : unsupported(r, L, key, v, supported);
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    MF_ASSERT(w);
    /* 1 and 1.0 are the same argument (jansson's equality tells them apart) */
    int eq =
        json_equal(v, w) || (json_is_number(v) && json_is_number(w) && json_number_value(v) == json_number_value(w));
    json_decref(w);
    return eq ? MF_STATUS_OK : unsupported(r, L, key, v, supported);
}

/* Keras' int-or-pair arguments (kernel_size, strides, dilation_rate): an
 * integer, or a list of two integers, each in [lo, hi]; absent -> def */
static mf_status arg_pair(const kreader *r, const klayer *L, const char *key, int lo, int hi, int def, int *a, int *b)
{
    json_t *v = json_object_get(L->cfg, key);
    char sup[96];
    snprintf(sup, sizeof sup, "an integer or a list of two integers in [%d, %d]", lo, hi);
    if (!v && def >= lo) {
        *a = *b = def;
        return MF_STATUS_OK;
    }
    json_t *x = v, *y = v;
    if (json_is_array(v)) {
        if (json_array_size(v) != 2)
            return unsupported(r, L, key, v, sup);
        x = json_array_get(v, 0);
        y = json_array_get(v, 1);
    }
    if (!json_is_integer(x) || !json_is_integer(y) || json_integer_value(x) < lo || json_integer_value(x) > hi ||
        json_integer_value(y) < lo || json_integer_value(y) > hi)
        return unsupported(r, L, key, v, sup);
    *a = (int)json_integer_value(x);
    *b = (int)json_integer_value(y);
    return MF_STATUS_OK;
}

static mf_status arg_padding(const kreader *r, const klayer *L, mf_padding *p)
{
    json_t *v = json_object_get(L->cfg, "padding");
    const char *s = json_string_value(v);
    if (!v || (s && strcmp(s, "valid") == 0)) /* Keras' default */
        *p = MF_PADDING_VALID;
    else if (s && strcmp(s, "same") == 0)
        *p = MF_PADDING_SAME;
    else
        return unsupported(r, L, "padding", v, "\"valid\", \"same\"");
    return MF_STATUS_OK;
}

static mf_status arg_channels_last(const kreader *r, const klayer *L)
{
    json_t *v = json_object_get(L->cfg, "data_format");
    const char *s = json_string_value(v);
    if (!v || json_is_null(v) || (s && strcmp(s, "channels_last") == 0))
        return MF_STATUS_OK;
    return unsupported(r, L, "data_format", v, "\"channels_last\" (NHWC)");
}

/* "glorot_uniform", "GlorotUniform" and {"class_name": "GlorotUniform", ...}
 * are one initializer: compared lowercase without underscores */
static int same_ident(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        char x = (char)(*a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a);
        char y = (char)(*b >= 'A' && *b <= 'Z' ? *b - 'A' + 'a' : *b);
        if (x != y)
            return 0;
        if (!x)
            return 1;
        a++;
        b++;
    }
}

/* Initializers named in a layer's config, checked before the layer exists and
 * set on it after (mf_layer_set_initializer, applied at mf_model_build). */
typedef struct kinits {
    struct {
        const char *weight;
        mf_initializer init;
    } w[6];
    int n;
} kinits;

/* The arguments an initializer takes besides seed, and the only values of
 * them mpifit's fixed formulas honour (Keras' defaults). */
static const struct {
    mf_initializer init;
    const char *arg;
    double value;
} init_defaults[] = {
    {MF_INIT_RANDOM_NORMAL, "mean", 0.0},      {MF_INIT_RANDOM_NORMAL, "stddev", 0.05},
    {MF_INIT_RANDOM_UNIFORM, "minval", -0.05}, {MF_INIT_RANDOM_UNIFORM, "maxval", 0.05},
    {MF_INIT_TRUNCATED_NORMAL, "mean", 0.0},   {MF_INIT_TRUNCATED_NORMAL, "stddev", 0.05},
};

/* key: "kernel_initializer", ...; weight: mpifit's weight it initialises;
 * def: Keras' default for it (nothing is set then: mpifit's default is it);
 * present: 0 when the layer has no such weight (use_bias=False, center=False:
 * Keras ignores the initializer too). A name as a string ("he_normal"), a
 * Keras 2 object {"class_name": "HeNormal", "config": {"seed": null}} or a
 * Keras 3 one (with "module", "registered_name"). The seed is not checked:
 * mpifit's weights come from its own seed. */
static mf_status arg_init(const kreader *r, const klayer *L, const char *key, const char *weight, const char *def,
                          int present, kinits *ki)
{
    json_t *v = json_object_get(L->cfg, key);
    if (!v)
        return MF_STATUS_OK;
    const char *name = json_is_string(v) ? json_string_value(v)
        : json_is_object(v)              ? json_string_value(json_object_get(v, "class_name"))
                                         : NULL;
    json_t *cfg = json_is_object(v) ? json_object_get(v, "config") : NULL;
    mf_initializer init;
    if (!name || mf_initializer_parse(name, &init) != MF_STATUS_OK ||
        (cfg && !json_is_null(cfg) && !json_is_object(cfg)))
        return unsupported(r, L, key, v,
                           "GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Zeros, "
                           "Ones, RandomNormal, RandomUniform, TruncatedNormal, by name or as "
                           "{\"class_name\": ..., \"config\": {\"seed\": ...}}");
    const char *k;
    json_t *x;
    json_object_foreach(cfg, k, x)
    {
        if (strcmp(k, "seed") == 0)
            continue;
        int i = 0, n = (int)(sizeof init_defaults / sizeof init_defaults[0]);
        while (i < n && !(init_defaults[i].init == init && strcmp(init_defaults[i].arg, k) == 0))
            i++;
        char what[96], sup[128];
        snprintf(what, sizeof what, "%s argument %.40s", key, k);
        if (i == n) {
            snprintf(sup, sizeof sup, "%s with no argument but seed", name);
            return unsupported(r, L, what, x, sup);
        }
        if (!json_is_number(x) || json_number_value(x) != init_defaults[i].value) {
            snprintf(sup, sizeof sup, "%g, %s's default; other values cannot be honoured", init_defaults[i].value,
                     name);
            return unsupported(r, L, what, x, sup);
        }
    }
    if (same_ident(name, def) || !present)
        return MF_STATUS_OK;
    MF_ASSERT(ki->n < (int)(sizeof ki->w / sizeof ki->w[0]));
    ki->w[ki->n].weight = weight;
    ki->w[ki->n].init = init;
    ki->n++;
    return MF_STATUS_OK;
}

/* regularizers and constraints change the loss or the update: none allowed */
static mf_status args_null(const kreader *r, const klayer *L, const char *const *keys)
{
    for (int i = 0; keys[i]; i++)
        MF_TRY(arg_is(r, L, keys[i], "null", "null"));
    return MF_STATUS_OK;
}

/* activation= of Conv2D, DepthwiseConv2D, Dense and Activation into *act:
 * "linear" (or absent/null), any of mf_activation_parse's names, and
 * "softmax" on the model's output layer, folded into the loss (*folded = 1,
 * *act linear): mpifit trains on logits. hard_sigmoid is Keras 2's
 * clip(0.2 x + 0.5); Keras 3's relu6(x + 3) / 6 is refused. */
static mf_status arg_activation(kreader *r, const klayer *L, mf_activation *act, int *folded)
{
    *folded = 0;
    *act = MF_ACT_LINEAR;
    json_t *v = json_object_get(L->cfg, "activation");
    const char *s = json_string_value(v);
    if (!v || json_is_null(v))
        return MF_STATUS_OK;
    if (!s || mf_activation_parse(s, act) != MF_STATUS_OK)
        return unsupported(r, L, "activation", v,
                           "\"linear\", \"relu\", \"relu6\", \"sigmoid\", \"tanh\", \"softmax\", \"swish\", "
                           "\"silu\", and Keras 2's \"hard_sigmoid\"");
    if (*act == MF_ACT_HARD_SIGMOID && r->keras3)
        return unsupported(r, L, "activation", v,
                           "\"hard_sigmoid\" of Keras 2 only (clip(0.2 x + 0.5, 0, 1)); this is a Keras 3 "
                           "description, whose hard_sigmoid is relu6(x + 3) / 6");
    if (*act == MF_ACT_SOFTMAX && L->is_output) {
        *act = MF_ACT_LINEAR;
        *folded = 1;
        if (r->info) {
            r->info->softmax_folded = 1;
            mf_strlcpy(r->info->softmax_layer, L->name, sizeof r->info->softmax_layer);
        }
    }
    return MF_STATUS_OK;
}

/* ---- builders: one per Keras class ------------------------------------------ */

typedef mf_status (*builder_fn)(kreader *r, const klayer *L, mf_layer **out);

/* A builder's constructor call: NULL from it is its message, given the layer */
static mf_status made(const kreader *r, const klayer *L, mf_layer *l, mf_layer **out)
{
    *out = l;
    if (l)
        return MF_STATUS_OK;
    return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): %s", r->what, L->name, L->cls, mf_last_error());
}

/* made() for a layer with weights: the initializers its config named, set */
static mf_status made_init(const kreader *r, const klayer *L, mf_layer *l, const kinits *ki, mf_layer **out)
{
    MF_TRY(made(r, L, l, out));
    for (int i = 0; i < ki->n; i++)
        if (mf_layer_set_initializer(l, ki->w[i].weight, ki->w[i].init) != MF_STATUS_OK) {
            mf_layer_free(l);
            *out = NULL;
            return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): %s", r->what, L->name, L->cls, mf_last_error());
        }
    return MF_STATUS_OK;
}

static const char *const conv_null_args[] = {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                             "kernel_constraint",  "bias_constraint",  NULL};

/* Conv2D: square kernels with equal strides, no dilation and a linear
 * activation go to mf_conv2d (any odd size, as before mf_conv2d_ex); the rest
 * to mf_conv2d_ex (kernels 1..7 per axis, strides, dilation_rate with strides
 * 1, the activation fused). */
static mf_status b_conv2d(kreader *r, const klayer *L, mf_layer **out)
{
    mf_conv_options o = mf_conv_options_default();
    int groups = 1, folded = 0;
    MF_TRY(arg_int(r, L, "filters", 1, KERAS_MAX_DIM, 0, &o.filters));
    MF_TRY(arg_pair(r, L, "kernel_size", 1, 64, 0, &o.kernel_h, &o.kernel_w));
    MF_TRY(arg_pair(r, L, "strides", 1, 64, 1, &o.stride_h, &o.stride_w));
    MF_TRY(arg_pair(r, L, "dilation_rate", 1, 64, 1, &o.dilation_h, &o.dilation_w));
    int plain = o.kernel_h == o.kernel_w && o.stride_h == o.stride_w && o.dilation_h == 1 && o.dilation_w == 1;
    if (!plain && (o.kernel_h > 7 || o.kernel_w > 7))
        return unsupported(r, L, "kernel_size", json_object_get(L->cfg, "kernel_size"),
                           "1..7 on each axis; larger only square, with equal strides and no dilation");
    if ((o.dilation_h > 1 || o.dilation_w > 1) && (o.stride_h > 1 || o.stride_w > 1))
        return unsupported(r, L, "strides", json_object_get(L->cfg, "strides"),
                           "1 when dilation_rate > 1 (as Keras requires)");
    MF_TRY(arg_int(r, L, "groups", 1, KERAS_MAX_DIM, 1, &groups));
    if (groups != 1)
        return unsupported(r, L, "groups", json_object_get(L->cfg, "groups"), "1");
    MF_TRY(arg_padding(r, L, &o.padding));
    MF_TRY(arg_channels_last(r, L));
    MF_TRY(arg_bool(r, L, "use_bias", 1, &o.use_bias));
    MF_TRY(arg_activation(r, L, &o.activation, &folded));
    if (folded) /* a softmax over a feature map is no classifier output */
        return unsupported(r, L, "activation", json_object_get(L->cfg, "activation"),
                           "any but \"softmax\" on the output layer (a feature map is no classifier output)");
    kinits ki = {.n = 0};
    MF_TRY(arg_init(r, L, "kernel_initializer", "kernel", "glorot_uniform", 1, &ki));
    MF_TRY(arg_init(r, L, "bias_initializer", "bias", "zeros", o.use_bias, &ki));
    MF_TRY(args_null(r, L, conv_null_args));
    mf_layer *l = plain && o.activation == MF_ACT_LINEAR
        ? mf_conv2d(L->name, o.filters, o.kernel_h, o.stride_h, o.padding, o.use_bias)
        : mf_conv2d_ex(L->name, &o);
    return made_init(r, L, l, &ki, out);
}

/* The window arguments DepthwiseConv2D and SeparableConv2D share with Conv2D
 * (kernel_size 1..7 per axis, strides, dilation_rate with strides 1,
 * depth_multiplier, padding, channels_last, use_bias, activation) into *o. */
static mf_status depthwise_args(kreader *r, const klayer *L, mf_conv_options *o)
{
    int folded = 0;
    MF_TRY(arg_pair(r, L, "kernel_size", 1, 64, 0, &o->kernel_h, &o->kernel_w));
    if (o->kernel_h > 7 || o->kernel_w > 7)
        return unsupported(r, L, "kernel_size", json_object_get(L->cfg, "kernel_size"), "1..7 on each axis");
    MF_TRY(arg_pair(r, L, "strides", 1, 64, 1, &o->stride_h, &o->stride_w));
    MF_TRY(arg_pair(r, L, "dilation_rate", 1, 64, 1, &o->dilation_h, &o->dilation_w));
    if ((o->dilation_h > 1 || o->dilation_w > 1) && (o->stride_h > 1 || o->stride_w > 1))
        return unsupported(r, L, "strides", json_object_get(L->cfg, "strides"),
                           "1 when dilation_rate > 1 (as Keras requires)");
    MF_TRY(arg_int(r, L, "depth_multiplier", 1, 4096, 1, &o->depth_multiplier));
    MF_TRY(arg_padding(r, L, &o->padding));
    MF_TRY(arg_channels_last(r, L));
    MF_TRY(arg_bool(r, L, "use_bias", 1, &o->use_bias));
    MF_TRY(arg_activation(r, L, &o->activation, &folded));
    if (folded) /* a softmax over a feature map is no classifier output */
        return unsupported(r, L, "activation", json_object_get(L->cfg, "activation"),
                           "any but \"softmax\" on the output layer (a feature map is no classifier output)");
    return MF_STATUS_OK;
}

/* DepthwiseConv2D: the plain 3x3-style layer (square kernel, equal strides, no
 * dilation, multiplier 1, linear) goes to mf_depthwise_conv2d, as MobileNetV2
 * builds it; the rest to mf_depthwise_conv2d_ex. */
static mf_status b_depthwise_conv2d(kreader *r, const klayer *L, mf_layer **out)
{
    static const char *const null_args[] = {"depthwise_regularizer", "bias_regularizer", "activity_regularizer",
                                            "depthwise_constraint",  "bias_constraint",  NULL};
    mf_conv_options o = mf_conv_options_default();
    MF_TRY(depthwise_args(r, L, &o));
    kinits ki = {.n = 0};
    MF_TRY(arg_init(r, L, "depthwise_initializer", "depthwise_kernel", "glorot_uniform", 1, &ki));
    MF_TRY(arg_init(r, L, "bias_initializer", "bias", "zeros", o.use_bias, &ki));
    MF_TRY(args_null(r, L, null_args));
    int plain = o.kernel_h == o.kernel_w && o.stride_h == o.stride_w && o.dilation_h == 1 && o.dilation_w == 1 &&
        o.depth_multiplier == 1 && o.activation == MF_ACT_LINEAR;
    mf_layer *l = plain ? mf_depthwise_conv2d(L->name, o.kernel_h, o.stride_h, o.padding, o.use_bias)
                        : mf_depthwise_conv2d_ex(L->name, &o);
    return made_init(r, L, l, &ki, out);
}

/* SeparableConv2D: depthwise (no bias), 1x1 to `filters`, bias, activation. */
static mf_status b_separable_conv2d(kreader *r, const klayer *L, mf_layer **out)
{
    static const char *const null_args[] = {
        "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer",
        "depthwise_constraint",  "pointwise_constraint",  "bias_constraint",  NULL};
    mf_conv_options o = mf_conv_options_default();
    MF_TRY(arg_int(r, L, "filters", 1, KERAS_MAX_DIM, 0, &o.filters));
    MF_TRY(depthwise_args(r, L, &o));
    kinits ki = {.n = 0};
    MF_TRY(arg_init(r, L, "depthwise_initializer", "depthwise_kernel", "glorot_uniform", 1, &ki));
    MF_TRY(arg_init(r, L, "pointwise_initializer", "pointwise_kernel", "glorot_uniform", 1, &ki));
    MF_TRY(arg_init(r, L, "bias_initializer", "bias", "zeros", o.use_bias, &ki));
    MF_TRY(args_null(r, L, null_args));
    return made_init(r, L, mf_separable_conv2d(L->name, &o), &ki, out);
}

static mf_status b_batchnorm(kreader *r, const klayer *L, mf_layer **out)
{
    static const char *const null_args[] = {"beta_regularizer",
                                            "gamma_regularizer",
                                            "beta_constraint",
                                            "gamma_constraint",
                                            "virtual_batch_size",
                                            "adjustment",
                                            NULL};
    /* axis: the channels, the last axis: -1, its index, or a list of that one */
    json_t *axis = json_object_get(L->cfg, "axis");
    json_t *a = json_is_array(axis) && json_array_size(axis) == 1 ? json_array_get(axis, 0) : axis;
    json_int_t last = L->in.ndim - 1;
    if (axis && !(json_is_integer(a) && (json_integer_value(a) == -1 || json_integer_value(a) == last))) {
        char sup[64];
        snprintf(sup, sizeof sup, "-1 or %d (the channels, last)", (int)last);
        return unsupported(r, L, "axis", axis, sup);
    }
    double momentum = 0.99, eps = 1e-3;
    int center = 1, scale = 1;
    MF_TRY(arg_num(r, L, "momentum", 0.0, 1.0, 0, 0.99, &momentum));
    MF_TRY(arg_num(r, L, "epsilon", 0.0, 1.0, 1, 1e-3, &eps));
    MF_TRY(arg_bool(r, L, "center", 1, &center));
    MF_TRY(arg_bool(r, L, "scale", 1, &scale));
    MF_TRY(arg_is(r, L, "renorm", "false", "false"));
    MF_TRY(arg_is(r, L, "synchronized", "false",
                  "false; mpifit synchronizes BatchNorm over ranks with [dist] sync_batchnorm"));
    kinits ki = {.n = 0};
    MF_TRY(arg_init(r, L, "beta_initializer", "beta", "zeros", center, &ki));
    MF_TRY(arg_init(r, L, "gamma_initializer", "gamma", "ones", scale, &ki));
    MF_TRY(arg_init(r, L, "moving_mean_initializer", "moving_mean", "zeros", 1, &ki));
    MF_TRY(arg_init(r, L, "moving_variance_initializer", "moving_variance", "ones", 1, &ki));
    MF_TRY(args_null(r, L, null_args));
    return made_init(r, L, mf_batchnorm_ex(L->name, (float)momentum, (float)eps, center, scale), &ki, out);
}

static mf_status b_relu(kreader *r, const klayer *L, mf_layer **out)
{
    json_t *mv = json_object_get(L->cfg, "max_value");
    double max_value = 0.0;
    if (mv && !json_is_null(mv)) {
        /* 0 would be mf_relu's "unbounded"; Keras' max_value=0 outputs zeros */
        MF_TRY(arg_num(r, L, "max_value", 0.0, 1e30, 1, 0.0, &max_value));
    }
    MF_TRY(arg_is(r, L, "negative_slope", "0", "0; a leaky ReLU is not supported yet"));
    MF_TRY(arg_is(r, L, "threshold", "0", "0"));
    return made(r, L, mf_relu(L->name, (float)max_value), out);
}

/* Activation: nothing to compute for "linear" or the output's softmax (folded
 * into the loss); an Activation layer for the rest, softmax included */
static mf_status b_activation(kreader *r, const klayer *L, mf_layer **out)
{
    int folded = 0;
    mf_activation act;
    if (!json_object_get(L->cfg, "activation"))
        return unsupported(r, L, "activation", NULL, "an activation name");
    MF_TRY(arg_activation(r, L, &act, &folded));
    if (act == MF_ACT_LINEAR) {
        *out = NULL;
        return MF_STATUS_OK;
    }
    return made(r, L, mf_activation_layer(L->name, act), out);
}

static mf_status b_add(kreader *r, const klayer *L, mf_layer **out) { return made(r, L, mf_add(L->name), out); }

/* Concatenate on the channels: axis -1 or the last axis' index */
static mf_status b_concatenate(kreader *r, const klayer *L, mf_layer **out)
{
    int axis = -1;
    MF_TRY(arg_int(r, L, "axis", -8, 8, -1, &axis));
    if (axis != -1 && axis != L->in.ndim - 1) {
        char sup[64];
        snprintf(sup, sizeof sup, "-1 or %d (the last axis)", L->in.ndim - 1);
        return unsupported(r, L, "axis", json_object_get(L->cfg, "axis"), sup);
    }
    return made(r, L, mf_concatenate(L->name), out);
}

/* MaxPooling2D, AveragePooling2D: pool_size (default 2), strides (default
 * null: the pool size), padding */
static mf_status pool_args(const kreader *r, const klayer *L, int *ph, int *pw, int *sh, int *sw, mf_padding *pad)
{
    MF_TRY(arg_pair(r, L, "pool_size", 1, 64, 2, ph, pw));
    json_t *st = json_object_get(L->cfg, "strides");
    if (!st || json_is_null(st)) {
        *sh = *ph;
        *sw = *pw;
    } else {
        MF_TRY(arg_pair(r, L, "strides", 1, 64, 1, sh, sw));
    }
    MF_TRY(arg_padding(r, L, pad));
    return arg_channels_last(r, L);
}

static mf_status b_max_pool2d(kreader *r, const klayer *L, mf_layer **out)
{
    int ph = 2, pw = 2, sh = 2, sw = 2;
    mf_padding pad = MF_PADDING_VALID;
    MF_TRY(pool_args(r, L, &ph, &pw, &sh, &sw, &pad));
    return made(r, L, mf_max_pool2d(L->name, ph, pw, sh, sw, pad), out);
}

static mf_status b_avg_pool2d(kreader *r, const klayer *L, mf_layer **out)
{
    int ph = 2, pw = 2, sh = 2, sw = 2;
    mf_padding pad = MF_PADDING_VALID;
    MF_TRY(pool_args(r, L, &ph, &pw, &sh, &sw, &pad));
    return made(r, L, mf_avg_pool2d(L->name, ph, pw, sh, sw, pad), out);
}

static mf_status b_global_max_pool2d(kreader *r, const klayer *L, mf_layer **out)
{
    MF_TRY(arg_channels_last(r, L));
    MF_TRY(arg_is(r, L, "keepdims", "false", "false"));
    return made(r, L, mf_global_max_pool2d(L->name), out);
}

static mf_status b_flatten(kreader *r, const klayer *L, mf_layer **out)
{
    MF_TRY(arg_channels_last(r, L));
    return made(r, L, mf_flatten(L->name), out);
}

/* Rescaling: one scale and one offset (Keras 3's per-channel lists are refused) */
static mf_status b_rescaling(kreader *r, const klayer *L, mf_layer **out)
{
    double scale = 1.0, offset = 0.0;
    MF_TRY(arg_num(r, L, "scale", -1e30, 1e30, 0, -2e30, &scale));
    if (scale < -1e30)
        return unsupported(r, L, "scale", NULL, "a number");
    MF_TRY(arg_num(r, L, "offset", -1e30, 1e30, 0, 0.0, &offset));
    return made(r, L, mf_rescaling(L->name, (float)scale, (float)offset), out);
}

static mf_status b_zero_pad2d(kreader *r, const klayer *L, mf_layer **out)
{
    /* padding: p, (ph, pw) or ((top, bottom), (left, right)) */
    json_t *v = json_object_get(L->cfg, "padding");
    int t = 1, b = 1, l = 1, rr = 1, ok = 1; /* Keras' default (1, 1) */
    if (json_is_integer(v)) {
        t = b = l = rr = (int)json_integer_value(v);
        ok = json_integer_value(v) >= 0 && json_integer_value(v) <= 4096;
    } else if (json_is_array(v) && json_array_size(v) == 2) {
        json_t *h = json_array_get(v, 0), *w = json_array_get(v, 1);
        json_t *e[4];
        if (json_is_integer(h) && json_is_integer(w)) {
            e[0] = e[1] = h;
            e[2] = e[3] = w;
        } else if (json_is_array(h) && json_is_array(w) && json_array_size(h) == 2 && json_array_size(w) == 2) {
            e[0] = json_array_get(h, 0);
            e[1] = json_array_get(h, 1);
            e[2] = json_array_get(w, 0);
            e[3] = json_array_get(w, 1);
        } else {
            e[0] = e[1] = e[2] = e[3] = NULL;
        }
        int x[4] = {0, 0, 0, 0};
        for (int i = 0; i < 4; i++) {
            ok &= json_is_integer(e[i]) && json_integer_value(e[i]) >= 0 && json_integer_value(e[i]) <= 4096;
            x[i] = ok ? (int)json_integer_value(e[i]) : 0;
        }
        t = x[0];
        b = x[1];
        l = x[2];
        rr = x[3];
    } else if (v) {
        ok = 0;
    }
    if (!ok)
        return unsupported(r, L, "padding", v, "p, (ph, pw) or ((top, bottom), (left, right)), integers in [0, 4096]");
    MF_TRY(arg_channels_last(r, L));
    return made(r, L, mf_zero_pad2d(L->name, t, b, l, rr), out);
}

static mf_status b_global_avg_pool2d(kreader *r, const klayer *L, mf_layer **out)
{
    MF_TRY(arg_channels_last(r, L));
    MF_TRY(arg_is(r, L, "keepdims", "false", "false"));
    return made(r, L, mf_global_avg_pool2d(L->name), out);
}

static mf_status b_dropout(kreader *r, const klayer *L, mf_layer **out)
{
    double rate = 0.0;
    MF_TRY(arg_num(r, L, "rate", 0.0, 0.999, 0, -1.0, &rate));
    if (rate < 0.0)
        return unsupported(r, L, "rate", NULL, "a number in [0, 0.999]");
    MF_TRY(arg_is(r, L, "noise_shape", "null", "null"));
    return made(r, L, mf_dropout(L->name, (float)rate), out);
}

static mf_status b_dense(kreader *r, const klayer *L, mf_layer **out)
{
    int units = 0, use_bias = 1, folded = 0;
    mf_activation act;
    MF_TRY(arg_int(r, L, "units", 1, KERAS_MAX_DIM, 0, &units));
    MF_TRY(arg_bool(r, L, "use_bias", 1, &use_bias));
    MF_TRY(arg_activation(r, L, &act, &folded));
    kinits ki = {.n = 0};
    MF_TRY(arg_init(r, L, "kernel_initializer", "kernel", "glorot_uniform", 1, &ki));
    MF_TRY(arg_init(r, L, "bias_initializer", "bias", "zeros", use_bias, &ki));
    MF_TRY(args_null(r, L, conv_null_args));
    MF_TRY(arg_is(r, L, "lora_rank", "null", "null"));
    mf_layer *l =
        act == MF_ACT_LINEAR ? mf_dense(L->name, units, use_bias) : mf_dense_ex(L->name, units, use_bias, act);
    return made_init(r, L, l, &ki, out);
}

/* n_lo..n_hi: the inputs the layer takes (the description must give that many) */
static const struct {
    const char *cls;
    int n_lo, n_hi;
    builder_fn fn;
} builders[] = {
    {"Conv2D", 1, 1, b_conv2d},
    {"DepthwiseConv2D", 1, 1, b_depthwise_conv2d},
    {"SeparableConv2D", 1, 1, b_separable_conv2d},
    {"BatchNormalization", 1, 1, b_batchnorm},
    {"ReLU", 1, 1, b_relu},
    {"Activation", 1, 1, b_activation},
    {"Add", 2, KERAS_MAX_IN, b_add},
    {"Concatenate", 2, KERAS_MAX_IN, b_concatenate},
    {"ZeroPadding2D", 1, 1, b_zero_pad2d},
    {"MaxPooling2D", 1, 1, b_max_pool2d},
    {"AveragePooling2D", 1, 1, b_avg_pool2d},
    {"GlobalAveragePooling2D", 1, 1, b_global_avg_pool2d},
    {"GlobalMaxPooling2D", 1, 1, b_global_max_pool2d},
    {"Flatten", 1, 1, b_flatten},
    {"Rescaling", 1, 1, b_rescaling},
    {"Dropout", 1, 1, b_dropout},
    {"Dense", 1, 1, b_dense},
};

#define N_BUILDERS ((int)(sizeof builders / sizeof builders[0]))

static int find_builder(const char *cls)
{
    for (int i = 0; i < N_BUILDERS; i++)
        if (strcmp(builders[i].cls, cls) == 0)
            return i;
    return -1;
}

/* "InputLayer, Conv2D, ..." for messages */
static void list_builders(char *buf, size_t n)
{
    snprintf(buf, n, "InputLayer");
    for (int i = 0; i < N_BUILDERS; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, ", %s", builders[i].cls);
    }
}

/* ---- the graph --------------------------------------------------------------- */

static int is_model_class(const char *cls)
{
    return strcmp(cls, "Sequential") == 0 || strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0;
}

static int lookup(const kreader *r, const char *name)
{
    for (int i = 0; i < r->n_names; i++)
        if (strcmp(r->names[i], name) == 0)
            return i;
    return -1;
}

static void remember(kreader *r, const char *name, int node, mf_shape shape)
{
    mf_strlcpy(r->names[r->n_names], name, KERAS_NAME_MAX);
    r->nodes[r->n_names] = node;
    r->shapes[r->n_names] = shape;
    r->n_names++;
}

/* dtype: "float32", null, or a policy object {"class_name": "DTypePolicy"
 * (Keras 3) or "Policy" (Keras 2), "config": {"name": "float32"}} */
static mf_status arg_dtype(const kreader *r, const klayer *L)
{
    json_t *dt = json_object_get(L->cfg, "dtype");
    const char *dname = json_is_string(dt) ? json_string_value(dt)
        : json_is_object(dt)               ? json_string_value(json_object_get(json_object_get(dt, "config"), "name"))
                                           : NULL;
    if (dt && !json_is_null(dt) && !(dname && strcmp(dname, "float32") == 0))
        return unsupported(r, L, "dtype", dt, "\"float32\"");
    return MF_STATUS_OK;
}

/* The common part of a layer entry: class, name, config, dtype. Names are
 * checked here since everything after uses them in messages. idx: the
 * entry's position, for messages about entries without a name. */
static mf_status entry(const kreader *r, json_t *e, int idx, klayer *L)
{
    memset(L, 0, sizeof *L);
    L->cls = json_string_value(json_object_get(e, "class_name"));
    L->cfg = json_object_get(e, "config");
    if (!json_is_object(e) || !L->cls || !json_is_object(L->cfg))
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: layer entry %d is not an object with a string class_name and an object "
                       "config",
                       r->what, idx);
    /* Functional entries carry the name outside config too; they must agree */
    json_t *n = json_object_get(L->cfg, "name");
    json_t *outer = json_object_get(e, "name");
    L->name = json_string_value(n ? n : outer);
    if (!L->name || !L->name[0] || strlen(L->name) >= KERAS_NAME_MAX)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer entry %d (%s): name must be a string of 1 to %d characters",
                       r->what, idx, L->cls, KERAS_NAME_MAX - 1);
    if (outer && !(json_is_string(outer) && strcmp(json_string_value(outer), L->name) == 0))
        return mf_fail(MF_STATUS_CONFIG, "%s: layer entry %d: name '%s' outside config and '%s' inside differ", r->what,
                       idx, json_string_value(outer) ? json_string_value(outer) : "?", L->name);
    if (is_model_class(L->cls))
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: layer '%s' (%s): nested models are not supported (supported: a model of layers; "
                       "flatten the inner model into the outer one in Keras)",
                       r->what, L->name, L->cls);
    return arg_dtype(r, L);
    return MF_STATUS_OK;
}

/* An input shape list [null, H, W, C] (or [null, F], [null, L, F]) into *s. */
static mf_status input_shape(const kreader *r, const klayer *L, const char *key, json_t *v, mf_shape *s)
{
    size_t nd = json_array_size(v);
    int ok = json_is_array(v) && nd >= 2 && nd <= 4;
    json_t *b = ok ? json_array_get(v, 0) : NULL;
    ok &= json_is_null(b) || (json_is_integer(b) && json_integer_value(b) > 0);
    memset(s, 0, sizeof *s);
    s->ndim = (int)nd;
    for (size_t i = 1; ok && i < nd; i++) {
        json_t *x = json_array_get(v, i);
        ok = json_is_integer(x) && json_integer_value(x) >= 1 && json_integer_value(x) <= KERAS_MAX_DIM;
        s->d[i] = ok ? (int)json_integer_value(x) : 0;
    }
    if (!ok)
        return unsupported(r, L, key, v, "[null, height, width, channels] with fixed extents in [1, 65536]");
    return MF_STATUS_OK;
}

/* The input shape an entry declares: batch_shape (Keras 3) or
 * batch_input_shape (Keras 2); *found = 0 when it declares neither. */
static mf_status declared_input(const kreader *r, const klayer *L, mf_shape *s, int *found)
{
    const char *keys[] = {"batch_shape", "batch_input_shape"};
    *found = 0;
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(L->cfg, keys[i]);
        if (v && !json_is_null(v)) {
            *found = 1;
            return input_shape(r, L, keys[i], v, s);
        }
    }
    return MF_STATUS_OK;
}

static mf_status input_layer(kreader *r, const klayer *L, mf_shape *s)
{
    int found;
    MF_TRY(declared_input(r, L, s, &found));
    if (!found)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (InputLayer): no batch_shape or batch_input_shape", r->what,
                       L->name);
    MF_TRY(arg_is(r, L, "sparse", "false", "false"));
    MF_TRY(arg_is(r, L, "ragged", "false", "false"));
    return MF_STATUS_OK;
}

/* Build one non-input layer reading nodes in[0..n_in), recording its name. */
static mf_status add_layer(kreader *r, klayer *L, const int *in, int n_in)
{
    if (strcmp(L->cls, "InputLayer") == 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (InputLayer): a second input (supported: one input)", r->what,
                       L->name);
    int b = find_builder(L->cls);
    if (b < 0) {
        char list[512];
        list_builders(list, sizeof list);
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): unsupported class_name = \"%s\" (supported: %s)",
                       r->what, L->name, L->cls, L->cls, list);
    }
    if (n_in < builders[b].n_lo || n_in > builders[b].n_hi) {
        char sup[32];
        if (builders[b].n_lo == builders[b].n_hi)
            snprintf(sup, sizeof sup, "%d", builders[b].n_lo);
        else
            snprintf(sup, sizeof sup, "%d to %d", builders[b].n_lo, builders[b].n_hi);
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): reads %d tensors (supported: %s)", r->what, L->name,
                       L->cls, n_in, sup);
    }
    if (lookup(r, L->name) >= 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): a second layer of that name", r->what, L->name, L->cls);
    int trainable = 1;
    MF_TRY(arg_bool(r, L, "trainable", 1, &trainable));
    mf_layer *l = NULL;
    MF_TRY(builders[b].fn(r, L, &l));
    if (!l) { /* nothing to compute: the name stands for its input */
        int k = 0;
        while (r->nodes[k] != in[0])
            k++;
        remember(r, L->name, in[0], r->shapes[k]);
        return MF_STATUS_OK;
    }
    if (!trainable)
        mf_layer_set_trainable(l, 0);
    int node = mf_model_add_n(r->m, l, in, n_in);
    if (node < 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): %s", r->what, L->name, L->cls, mf_last_error());
    remember(r, L->name, node, mf_layer_output_shape(l));
    return MF_STATUS_OK;
}

/* The shape of the node a name stands for, found by node id. */
static mf_shape node_shape(const kreader *r, int node)
{
    for (int i = 0; i < r->n_names; i++)
        if (r->nodes[i] == node)
            return r->shapes[i];
    return r->shapes[0];
}

static mf_status sequential(kreader *r, json_t *top, json_t *layers)
{
    size_t n = json_array_size(layers);
    klayer L;
    size_t first = 0;
    mf_shape s;
    int found = 0;
    MF_TRY(entry(r, json_array_get(layers, 0), 0, &L));
    const char *in_name = "input_1";
    if (strcmp(L.cls, "InputLayer") == 0) {
        MF_TRY(input_layer(r, &L, &s));
        in_name = L.name;
        first = 1;
        found = 1;
    } else {
        /* Keras 2 without an InputLayer: the first layer's batch_input_shape */
        MF_TRY(declared_input(r, &L, &s, &found));
        if (!found) { /* Keras 3 keeps the built shape beside the config */
            json_t *bc = json_object_get(json_object_get(top, "build_config"), "input_shape");
            if (bc && !json_is_null(bc)) {
                MF_TRY(input_shape(r, &L, "build_config.input_shape", bc, &s));
                found = 1;
            }
        }
    }
    if (!found)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: the Sequential model declares no input shape (no InputLayer, no batch_input_shape or "
                       "batch_shape on its first layer '%s'): build the model with an Input in Keras before saving",
                       r->what, L.name);
    if (mf_model_input(r->m, s) != 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: %s", r->what, mf_last_error());
    mf_model_set_input_name(r->m, in_name);
    remember(r, in_name, 0, s);
    int prev = 0;
    for (size_t i = first; i < n; i++) {
        MF_TRY(entry(r, json_array_get(layers, i), (int)i, &L));
        L.is_output = i + 1 == n;
        L.in = node_shape(r, prev);
        MF_TRY(add_layer(r, &L, &prev, 1));
        prev = r->nodes[r->n_names - 1];
    }
    return MF_STATUS_OK;
}

/* [name, node_index, tensor_index] of a Functional model's input_layers or
 * output_layers: exactly one (a flat triple, or a list holding one) */
static const char *io_layer(const kreader *r, json_t *top_cfg, const char *key)
{
    json_t *v = json_object_get(top_cfg, key);
    if (json_is_array(v) && json_array_size(v) == 1 && json_is_array(json_array_get(v, 0)))
        v = json_array_get(v, 0);
    const char *name = json_is_array(v) && json_array_size(v) == 3 ? json_string_value(json_array_get(v, 0)) : NULL;
    if (!name) {
        char b[256];
        mf_fail(MF_STATUS_CONFIG, "%s: unsupported %s = %s (supported: one [name, 0, 0]: one input and one output)",
                r->what, key, jtext(json_object_get(top_cfg, key), b, sizeof b));
    }
    return name;
}

/* One inbound tensor reference: Keras 2's [name, node, tensor, kwargs] or
 * Keras 3's {"class_name": "__keras_tensor__", "config": {"keras_history":
 * [name, node, tensor]}}; into in[*n]. */
static mf_status inbound_ref(kreader *r, const klayer *L, json_t *t, int *in, int *n)
{
    json_t *hist = json_is_array(t) ? t : json_object_get(json_object_get(t, "config"), "keras_history");
    const char *from = json_string_value(json_array_get(hist, 0));
    json_t *ni = json_array_get(hist, 1), *ti = json_array_get(hist, 2);
    json_t *kw = json_array_get(hist, 3);
    char b[256];
    if (json_is_object(t) &&
        !(json_string_value(json_object_get(t, "class_name")) &&
          strcmp(json_string_value(json_object_get(t, "class_name")), "__keras_tensor__") == 0))
        hist = NULL;
    if (!hist || !from || !json_is_integer(ni) || !json_is_integer(ti) || json_array_size(hist) > 4)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): an inbound tensor is not [name, node, tensor]: %s",
                       r->what, L->name, L->cls, jtext(t, b, sizeof b));
    if (kw && !(json_is_object(kw) && json_object_size(kw) == 0))
        return unsupported(r, L, "call arguments", kw, "{} (none)");
    int k = lookup(r, from);
    if (k < 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): reads '%s', which is not a layer before it", r->what,
                       L->name, L->cls, from);
    if (json_integer_value(ni) != 0 || json_integer_value(ti) != 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: layer '%s' (%s): reads output (node %lld, tensor %lld) of '%s': shared layers and "
                       "multi-output layers are not supported (supported: node 0, tensor 0)",
                       r->what, L->name, L->cls, (long long)json_integer_value(ni), (long long)json_integer_value(ti),
                       from);
    if (*n == KERAS_MAX_IN)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: layer '%s' (%s): reads more than %d tensors (supported: 1, or 2 to %d for Add and "
                       "Concatenate)",
                       r->what, L->name, L->cls, KERAS_MAX_IN, KERAS_MAX_IN);
    in[(*n)++] = r->nodes[k];
    return MF_STATUS_OK;
}

/* A Functional entry's inbound_nodes: exactly one call (more is a shared
 * layer), its tensors into in[0..*n). */
static mf_status inbound(kreader *r, const klayer *L, json_t *e, int *in, int *n)
{
    json_t *nodes = json_object_get(e, "inbound_nodes");
    *n = 0;
    char b[256];
    if (!json_is_array(nodes) || json_array_size(nodes) == 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): inbound_nodes must name what it reads, got %s", r->what,
                       L->name, L->cls, jtext(nodes, b, sizeof b));
    if (json_array_size(nodes) > 1)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: layer '%s' (%s): called %zu times (a shared layer): shared layers are not supported "
                       "(supported: each layer called once)",
                       r->what, L->name, L->cls, json_array_size(nodes));
    json_t *node = json_array_get(nodes, 0);
    if (json_is_array(node)) { /* Keras 2: [[name, node, tensor, kwargs], ...] */
        size_t i;
        json_t *t;
        json_array_foreach(node, i, t) MF_TRY(inbound_ref(r, L, t, in, n));
    } else if (json_is_object(node)) { /* Keras 3: {"args": [...], "kwargs": {...}} */
        json_t *args = json_object_get(node, "args"), *kw = json_object_get(node, "kwargs");
        if (kw && !(json_is_object(kw) && json_object_size(kw) == 0))
            return unsupported(r, L, "call arguments", kw, "{} (none)");
        if (!json_is_array(args))
            return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): inbound node without args: %s", r->what, L->name,
                           L->cls, jtext(node, b, sizeof b));
        size_t i, j;
        json_t *a, *t;
        json_array_foreach(args, i, a)
        {
            if (json_is_array(a)) /* Add and Concatenate take a list of tensors */
                json_array_foreach(a, j, t) MF_TRY(inbound_ref(r, L, t, in, n));
            else
                MF_TRY(inbound_ref(r, L, a, in, n));
        }
    } else {
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): inbound node is neither a list nor an object: %s",
                       r->what, L->name, L->cls, jtext(node, b, sizeof b));
    }
    if (*n == 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s): reads no tensor", r->what, L->name, L->cls);
    return MF_STATUS_OK;
}

static mf_status functional(kreader *r, json_t *cfg, json_t *layers)
{
    const char *in_name = io_layer(r, cfg, "input_layers");
    if (!in_name)
        return MF_STATUS_CONFIG;
    const char *out_name = io_layer(r, cfg, "output_layers");
    if (!out_name)
        return MF_STATUS_CONFIG;
    size_t n = json_array_size(layers), i;
    json_t *e;
    int have_input = 0;
    json_array_foreach(layers, i, e)
    {
        klayer L;
        MF_TRY(entry(r, e, (int)i, &L));
        if (strcmp(L.cls, "InputLayer") == 0 && !have_input) {
            if (strcmp(L.name, in_name) != 0)
                return mf_fail(MF_STATUS_CONFIG, "%s: InputLayer '%s' is not input_layers' '%s'", r->what, L.name,
                               in_name);
            mf_shape s;
            MF_TRY(input_layer(r, &L, &s));
            if (mf_model_input(r->m, s) != 0)
                return mf_fail(MF_STATUS_CONFIG, "%s: %s", r->what, mf_last_error());
            mf_model_set_input_name(r->m, L.name);
            remember(r, L.name, 0, s);
            have_input = 1;
            continue;
        }
        if (!have_input)
            return mf_fail(MF_STATUS_CONFIG, "%s: layer '%s' (%s) comes before the InputLayer", r->what, L.name, L.cls);
        int in[KERAS_MAX_IN], n_in;
        L.is_output = strcmp(L.name, out_name) == 0;
        MF_TRY(inbound(r, &L, e, in, &n_in));
        L.in = node_shape(r, in[0]);
        MF_TRY(add_layer(r, &L, in, n_in));
        if (L.is_output && i + 1 != n)
            return mf_fail(MF_STATUS_CONFIG,
                           "%s: the output layer '%s' is not the last layer: layers after it are not supported",
                           r->what, out_name);
    }
    if (!have_input)
        return mf_fail(MF_STATUS_CONFIG, "%s: no InputLayer", r->what);
    int k = lookup(r, out_name);
    if (k < 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: output_layers names '%s', which is no layer", r->what, out_name);
    return MF_STATUS_OK;
}

static mf_status read_model(kreader *r, json_t *top, uint64_t seed, mf_model **out)
{
    const char *cls = json_string_value(json_object_get(top, "class_name"));
    json_t *cfg = json_object_get(top, "config");
    if (!json_is_object(top) || !cls || !json_is_object(cfg))
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: not a Keras model description (an object with class_name and config, as "
                       "model.to_json() writes)",
                       r->what);
    int seq = strcmp(cls, "Sequential") == 0;
    if (!seq && strcmp(cls, "Functional") != 0 && strcmp(cls, "Model") != 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: unsupported model class_name = \"%.100s\" (supported: Sequential, "
                       "Functional, Model)",
                       r->what, cls);
    json_t *layers = json_object_get(cfg, "layers");
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || n == 0 || n > KERAS_MAX_LAYERS)
        return mf_fail(MF_STATUS_CONFIG, "%s: config.layers must be a list of 1 to %d layers", r->what,
                       KERAS_MAX_LAYERS);
    json_t *name = json_object_get(cfg, "name");
    const char *mname = json_is_string(name) && json_string_length(name) > 0 && json_string_length(name) < 256
        ? json_string_value(name)
        : seq ? "sequential"
              : "functional";
    /* a model-wide policy (Keras 3 keeps one beside the layers' own) */
    klayer whole = {cls, mname, cfg, 0, {0, {0}}};
    /* Keras 3 (its hard_sigmoid differs): keras_version 3.x, or entries with
     * "module" (to_json() of Keras 2 writes neither) */
    const char *kv = json_string_value(json_object_get(top, "keras_version"));
    r->keras3 = (kv && kv[0] == '3') || json_object_get(top, "module") != NULL;
    size_t li;
    json_t *le;
    json_array_foreach(layers, li, le) r->keras3 |= json_is_object(le) && json_object_get(le, "module") != NULL;
    MF_TRY(arg_dtype(r, &whole));
    r->m = mf_model_create(mname);
    r->names = mf_alloc((n + 2) * sizeof *r->names);
    r->nodes = mf_alloc((n + 2) * sizeof *r->nodes);
    r->shapes = mf_alloc((n + 2) * sizeof *r->shapes);
    mf_status s = seq ? sequential(r, top, layers) : functional(r, cfg, layers);
    if (s == MF_STATUS_OK && mf_model_num_layers(r->m) == 0)
        s = mf_fail(MF_STATUS_CONFIG, "%s: the model has no layer that computes anything", r->what);
    /* the model's output is its last node: a description whose output is a
     * name aliasing an earlier node (a trailing linear Activation) is fine */
    if (s == MF_STATUS_OK && r->nodes[r->n_names - 1] != mf_model_num_layers(r->m))
        s = mf_fail(MF_STATUS_CONFIG, "%s: the output is not the last layer's output", r->what);
    if (s == MF_STATUS_OK) {
        int trainable = 1;
        json_t *t = json_object_get(cfg, "trainable");
        if (json_is_boolean(t))
            trainable = json_is_true(t);
        if (!trainable) /* model.trainable = False freezes every layer */
            for (int i = 0; i < mf_model_num_layers(r->m); i++)
                mf_layer_set_trainable(mf_model_layer(r->m, i), 0);
        s = mf_model_build(r->m, seed);
        if (s != MF_STATUS_OK)
            s = mf_fail(s, "%s: %s", r->what, mf_last_error());
    }
    mf_free(r->names);
    mf_free(r->nodes);
    mf_free(r->shapes);
    if (s != MF_STATUS_OK) {
        mf_model_free(r->m);
        r->m = NULL;
    }
    *out = r->m;
    return s;
}

mf_status mf_model_from_keras_json_info(mf_model **out, const char *json_text, const char *what, uint64_t seed,
                                        mf_keras_info *info)
{
    MF_ASSERT(out && json_text);
    *out = NULL;
    if (info)
        memset(info, 0, sizeof *info);
    if (!what)
        what = "Keras model description";
    size_t len = strlen(json_text);
    if (len > KERAS_MAX_JSON)
        return mf_fail(MF_STATUS_DATA, "%s: %zu bytes of JSON, more than a model description's %zu", what, len,
                       KERAS_MAX_JSON);
    json_error_t err;
    json_t *top = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &err);
    if (!top)
        return mf_fail(MF_STATUS_DATA, "%s:%d:%d: malformed JSON: %s", what, err.line, err.column, err.text);
    kreader r;
    memset(&r, 0, sizeof r);
    r.what = what;
    r.info = info;
    mf_clear_error();
    mf_status s = read_model(&r, top, seed, out);
    json_decref(top);
    if (s != MF_STATUS_OK && info)
        memset(info, 0, sizeof *info);
    return s;
}

mf_status mf_model_from_keras_json(mf_model **out, const char *json_text, const char *what, uint64_t seed)
{
    return mf_model_from_keras_json_info(out, json_text, what, seed, NULL);
}

/* The whole of a JSON file (at most KERAS_MAX_JSON bytes), NUL-terminated. */
static mf_status read_text(const char *path, char **text)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mf_fail(MF_STATUS_IO, "cannot open Keras model %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > KERAS_MAX_JSON) {
        fclose(f);
        return mf_fail(MF_STATUS_IO, "Keras model %s: not a regular file of at most %zu bytes", path, KERAS_MAX_JSON);
    }
    size_t n = (size_t)st.st_size;
    char *t = mf_alloc(n + 1);
    size_t got = fread(t, 1, n, f);
    int bad = ferror(f) || got != n;
    fclose(f);
    if (bad) {
        mf_free(t);
        return mf_fail(MF_STATUS_IO, "cannot read Keras model %s", path);
    }
    t[n] = '\0';
    if (strlen(t) != n) {
        mf_free(t);
        return mf_fail(MF_STATUS_DATA, "%s: a NUL byte in a JSON model description (not a model.to_json() file)", path);
    }
    *text = t;
    return MF_STATUS_OK;
}

/* 1 if the file starts with HDF5's signature (at 0; a user block would put
 * it at 512, 1024, ...: those are tried too, as HDF5 does) */
static int is_hdf5(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int yes = 0;
    for (long off = 0; off <= 8192 && !yes; off = off ? off * 2 : 512) {
        unsigned char sig[8];
        if (fseek(f, off, SEEK_SET) != 0 || fread(sig, 1, 8, f) != 8)
            break;
        yes = memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0;
    }
    fclose(f);
    return yes;
}

/* model_config of a Keras full-model .h5, and whether it holds /model_weights */
static mf_status h5_config(const char *path, char **text, int *has_weights)
{
    char err[256];
    *text = NULL;
    *has_weights = 0;
    mf_status s = MF_STATUS_OK;
    mf_h5_lock();
    hid_t f = mf_h5_open_read(path);
    if (f < 0) {
        s = mf_fail(MF_STATUS_IO, "cannot open Keras model %s: %s", path, mf_h5_error(err, sizeof err));
    } else {
        if (H5Aexists(f, "model_config") <= 0)
            s = mf_fail(MF_STATUS_CONFIG,
                        "%s has no root attribute 'model_config': not a Keras full-model file (model.save(\"m.h5\")); "
                        "a weights file from save_weights() holds no architecture",
                        path);
        else if (!(*text = mf_h5_attr_string(f, "model_config", KERAS_MAX_JSON)))
            s = mf_fail(MF_STATUS_DATA, "%s: root attribute 'model_config' is not one string of at most %zu bytes",
                        path, KERAS_MAX_JSON);
        *has_weights = H5Lexists(f, "model_weights", H5P_DEFAULT) > 0;
        H5Fclose(f);
    }
    mf_h5_unlock();
    return s;
}

mf_status mf_model_from_keras_info(mf_model **out, const char *path, uint64_t seed, mf_keras_info *info)
{
    MF_ASSERT(out && path);
    *out = NULL;
    mf_keras_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    char *text = NULL;
    int h5 = is_hdf5(path), has_weights = 0;
    MF_TRY(h5 ? h5_config(path, &text, &has_weights) : read_text(path, &text));
    char what[1100];
    if (h5)
        snprintf(what, sizeof what, "%.1000s (model_config)", path);
    else
        mf_strlcpy(what, path, sizeof what);
    mf_status s = mf_model_from_keras_json_info(out, text, what, seed, info);
    mf_free(text);
    if (s == MF_STATUS_OK && has_weights) {
        s = mf_weights_load_keras(*out, path, &info->weights);
        if (s == MF_STATUS_OK && info->weights.missing_layers > 0)
            s = mf_fail(MF_STATUS_DATA, "%s: /model_weights lacks %d layers of its own model_config: %s", path,
                        info->weights.missing_layers, info->weights.missing);
        info->weights_loaded = s == MF_STATUS_OK;
        if (s != MF_STATUS_OK) {
            mf_model_free(*out);
            *out = NULL;
        }
    }
    return s;
}

mf_status mf_model_from_keras(mf_model **out, const char *path, uint64_t seed)
{
    return mf_model_from_keras_info(out, path, seed, NULL);
}
