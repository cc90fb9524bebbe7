/* initializers.c: Keras' weight initializers, chosen per weight with
 * mf_layer_set_initializer and applied by mf_model_build after the layer's
 * own default init.
 *
 * Reference: Keras 2 keras/initializers (VarianceScaling and its aliases):
 *   fan_in, fan_out of a shape: 1-D (n): n, n; 2-D (in, out): in, out; more
 *   axes (a conv kernel (KH, KW, Cin, F)): receptive field KH*KW times the last
 *   two, fan_in = KH*KW*Cin, fan_out = KH*KW*F (a depthwise kernel (KH, KW, C, 1)
 *   thus has fan_out KH*KW, as in Keras);
 *   glorot_* scale 1 over (fan_in + fan_out) / 2, he_* scale 2 over fan_in,
 *   lecun_* scale 1 over fan_in; uniform: U(-sqrt(3 s), sqrt(3 s)); normal: a
 *   normal truncated at 2 standard deviations with stddev sqrt(s) / 0.8796...
 *   (the stddev of a unit normal truncated to (-2, 2), so the result has
 *   variance s);
 *   random_normal N(0, 0.05), random_uniform U(-0.05, 0.05), truncated_normal
 *   N(0, 0.05) truncated at 2 stddev (no correction: Keras' TruncatedNormal),
 *   zeros, ones. */
#include <math.h>
#include <string.h>
#include "layer.h"

static const struct {
    const char *name;
    mf_initializer init;
} names[] = {
    {"GlorotUniform", MF_INIT_GLOROT_UNIFORM},
    {"glorot_uniform", MF_INIT_GLOROT_UNIFORM},
    {"GlorotNormal", MF_INIT_GLOROT_NORMAL},
    {"glorot_normal", MF_INIT_GLOROT_NORMAL},
    {"HeNormal", MF_INIT_HE_NORMAL},
    {"he_normal", MF_INIT_HE_NORMAL},
    {"HeUniform", MF_INIT_HE_UNIFORM},
    {"he_uniform", MF_INIT_HE_UNIFORM},
    {"LecunNormal", MF_INIT_LECUN_NORMAL},
    {"lecun_normal", MF_INIT_LECUN_NORMAL},
    {"LecunUniform", MF_INIT_LECUN_UNIFORM},
    {"lecun_uniform", MF_INIT_LECUN_UNIFORM},
    {"Zeros", MF_INIT_ZEROS},
    {"zeros", MF_INIT_ZEROS},
    {"Ones", MF_INIT_ONES},
    {"ones", MF_INIT_ONES},
    {"RandomNormal", MF_INIT_RANDOM_NORMAL},
    {"random_normal", MF_INIT_RANDOM_NORMAL},
    {"RandomUniform", MF_INIT_RANDOM_UNIFORM},
    {"random_uniform", MF_INIT_RANDOM_UNIFORM},
    {"TruncatedNormal", MF_INIT_TRUNCATED_NORMAL},
    {"truncated_normal", MF_INIT_TRUNCATED_NORMAL},
};
#define N_NAMES ((int)(sizeof names / sizeof names[0]))

mf_status mf_initializer_parse(const char *keras_class_name, mf_initializer *out)
{
    for (int i = 0; keras_class_name && i < N_NAMES; i++)
        if (strcmp(keras_class_name, names[i].name) == 0) {
            *out = names[i].init;
            return MF_STATUS_OK;
        }
    return mf_fail(MF_STATUS_INVALID,
                   "unknown initializer '%s'; valid: GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, "
                   "LecunUniform, Zeros, Ones, RandomNormal, RandomUniform, TruncatedNormal (or their snake_case "
                   "names, e.g. glorot_uniform)",
                   keras_class_name ? keras_class_name : "(null)");
}

mf_status mf_layer_set_initializer(mf_layer *l, const char *weight_name, mf_initializer init)
{
    if (!l || !weight_name || !weight_name[0] || strlen(weight_name) >= sizeof l->init_req[0].name)
        return mf_fail(MF_STATUS_INVALID,
                       "mf_layer_set_initializer: a layer and a weight name (< 32 chars) are needed");
    if (init < MF_INIT_DEFAULT || init > MF_INIT_TRUNCATED_NORMAL)
        return mf_fail(MF_STATUS_INVALID, "%s '%s': unknown initializer %d for '%s'", l->ops->kind, l->name, (int)init,
                       weight_name);
    int k = 0;
    while (k < l->n_init_req && strcmp(l->init_req[k].name, weight_name) != 0)
        k++;
    if (k == MF_LAYER_MAX_SLOTS)
        return mf_fail(MF_STATUS_INVALID, "%s '%s': more than %d weights given initializers", l->ops->kind, l->name,
                       MF_LAYER_MAX_SLOTS);
    mf_strlcpy(l->init_req[k].name, weight_name, sizeof l->init_req[k].name);
    l->init_req[k].init = init;
    if (k == l->n_init_req)
        l->n_init_req++;
    return MF_STATUS_OK;
}

mf_status mf_layer_check_initializers(const mf_layer *l)
{
    for (int k = 0; k < l->n_init_req; k++)
        if (!mf_layer_slot(l, l->init_req[k].name)) {
            char have[160] = "";
            for (int j = 0; j < l->n_slots; j++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", j ? ", " : "", l->slot[j].name);
            return mf_fail(MF_STATUS_INVALID, "%s '%s' has no weight '%s' to initialise (it has: %s)", l->ops->kind,
                           l->name, l->init_req[k].name, l->n_slots ? have : "none");
        }
    return MF_STATUS_OK;
}

/* Keras' _compute_fans */
static void fans(const mf_shape *s, double *fan_in, double *fan_out)
{
    if (s->ndim == 1) {
        *fan_in = *fan_out = s->d[0];
    } else if (s->ndim == 2) {
        *fan_in = s->d[0];
        *fan_out = s->d[1];
    } else {
        double rf = 1.0;
        for (int i = 0; i < s->ndim - 2; i++)
            rf *= s->d[i];
        *fan_in = rf * s->d[s->ndim - 2];
        *fan_out = rf * s->d[s->ndim - 1];
    }
}

/* a unit normal truncated to (-2, 2), by rejection */
static float truncated_unit(mf_rng *rng)
{
    for (;;) {
        float z = mf_rng_normal(rng);
        if (z > -2.0f && z < 2.0f)
            return z;
    }
}

static void fill(float *w, size_t n, const mf_shape *shape, mf_initializer init, mf_rng *rng)
{
    double fi, fo;
    fans(shape, &fi, &fo);
    double s = 0.0; /* VarianceScaling's variance */
    int uniform = 0;
    switch (init) {
    case MF_INIT_DEFAULT: return;
    case MF_INIT_ZEROS:
    case MF_INIT_ONES: mf_init_const(w, n, init == MF_INIT_ONES ? 1.0f : 0.0f); return;
    case MF_INIT_RANDOM_NORMAL:
        for (size_t i = 0; i < n; i++)
            w[i] = 0.05f * mf_rng_normal(rng);
        return;
    case MF_INIT_RANDOM_UNIFORM:
        for (size_t i = 0; i < n; i++)
            w[i] = (2.0f * mf_rng_uniform(rng) - 1.0f) * 0.05f;
        return;
    case MF_INIT_TRUNCATED_NORMAL:
        for (size_t i = 0; i < n; i++)
            w[i] = 0.05f * truncated_unit(rng);
        return;
    case MF_INIT_GLOROT_UNIFORM: uniform = 1; /* fall through */
    case MF_INIT_GLOROT_NORMAL: s = 2.0 / (fi + fo); break;
    case MF_INIT_HE_UNIFORM: uniform = 1; /* fall through */
    case MF_INIT_HE_NORMAL: s = 2.0 / fi; break;
    case MF_INIT_LECUN_UNIFORM: uniform = 1; /* fall through */
    case MF_INIT_LECUN_NORMAL: s = 1.0 / fi; break;
    }
    if (uniform) {
        float a = (float)sqrt(3.0 * s);
        for (size_t i = 0; i < n; i++)
            w[i] = (2.0f * mf_rng_uniform(rng) - 1.0f) * a;
    } else {
        float sd = (float)(sqrt(s) / 0.87962566103423978);
        for (size_t i = 0; i < n; i++)
            w[i] = sd * truncated_unit(rng);
    }
}

void mf_layer_apply_initializers(mf_layer *l, mf_rng *rng)
{
    for (int k = 0; k < l->n_init_req; k++) {
        mf_slot *sl = NULL;
        for (int j = 0; j < l->n_slots && !sl; j++)
            if (strcmp(l->slot[j].name, l->init_req[k].name) == 0)
                sl = &l->slot[j];
        MF_ASSERT(sl != NULL); /* mf_layer_check_initializers ran at build */
        fill(sl->data, sl->numel, &sl->shape, (mf_initializer)l->init_req[k].init, rng);
    }
}

void mf_init_fill(float *w, size_t n, const mf_shape *shape, mf_initializer init, mf_rng *rng)
{
    fill(w, n, shape, init, rng);
}
