/* layer.c: what every layer kind shares: allocation, weight reservation,
 * Keras' default initializers and the public accessors. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "layer.h"

mf_layer *mf_layer_alloc(const mf_layer_ops *ops, size_t size, const char *name)
{
    MF_ASSERT(size >= sizeof(mf_layer));
    if (name && strlen(name) >= MF_NAME_MAX) {
        mf_fail(MF_STATUS_INVALID, "%s: layer name '%s' is longer than %d characters", ops->kind, name,
                MF_NAME_MAX - 1);
        return NULL;
    }
    if (name && !name[0]) {
        mf_fail(MF_STATUS_INVALID, "%s: layer name must not be empty (pass NULL for the default)", ops->kind);
        return NULL;
    }
    mf_layer *l = mf_alloc(size);
    l->ops = ops;
    l->trainable = 1;
    l->n_in = ops->n_in;
    if (name)
        mf_strlcpy(l->name, name, sizeof l->name);
    return l;
}

int mf_layer_reserve(mf_layer *l, const char *name, mf_shape shape, mf_param_kind kind)
{
    MF_ASSERT(l->n_slots < MF_LAYER_MAX_SLOTS);
    mf_slot *s = &l->slot[l->n_slots];
    memset(s, 0, sizeof *s);
    MF_ASSERT(mf_strlcpy(s->name, name, sizeof s->name));
    s->shape = shape;
    s->kind = kind;
    s->numel = 1;
    for (int i = 0; i < shape.ndim; i++) {
        MF_ASSERT(shape.d[i] > 0);
        s->numel *= (size_t)shape.d[i];
    }
    return l->n_slots++;
}

void mf_init_glorot_uniform(float *w, size_t n, int fan_in, int fan_out, mf_rng *rng)
{
    float a = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * mf_rng_uniform(rng) - 1.0f) * a;
}

int mf_layer_has_trainable(const mf_layer *l)
{
    if (!l->trainable)
        return 0;
    for (int k = 0; k < l->n_slots; k++)
        if (l->slot[k].kind == MF_PARAM_TRAINABLE)
            return 1;
    return 0;
}

const mf_slot *mf_layer_slot(const mf_layer *l, const char *name)
{
    for (int k = 0; k < l->n_slots; k++)
        if (strcmp(l->slot[k].name, name) == 0)
            return &l->slot[k];
    return NULL;
}

MF_SIMD_CLONES
static void din_put(float *restrict dx, const float *restrict g, const float *restrict s, size_t n, int first)
{
    if (first && s) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dx[i] = g[i] * s[i];
    } else if (first) {
        memcpy(dx, g, n * sizeof(float));
    } else if (s) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dx[i] += g[i] * s[i];
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            dx[i] += g[i];
    }
}

void mf_din_put(float *dx, const float *g, const float *s, size_t n, int first)
{
    if (dx == g) { /* the plan gave dx the memory of g: Add(x, x) adds it twice */
        MF_ASSERT(!s);
        if (!first)
            for (size_t i = 0; i < n; i++)
                dx[i] += dx[i];
        return;
    }
    if (n <= 65536) {
        din_put(dx, g, s, n, first);
        return;
    }
#pragma omp parallel
    {
        size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        din_put(dx + lo, g + lo, s ? s + lo : NULL, hi - lo, first);
    }
}

MF_SIMD_CLONES
static void column_sums(float *restrict s, const float *restrict dy, size_t rows, int C)
{
    for (int c = 0; c < C; c++)
        s[c] = 0.0f;
    for (size_t r = 0; r < rows; r++) {
#pragma omp simd
        for (int c = 0; c < C; c++)
            s[c] += dy[r * C + c];
    }
}

void mf_bias_grad(float *db, const float *dy, size_t rows, int C)
{
    float small[256];
    float *s = C <= 256 ? small : mf_alloc((size_t)C * sizeof(float));
    column_sums(s, dy, rows, C);
    for (int c = 0; c < C; c++)
        db[c] += s[c];
    if (s != small)
        mf_free(s);
}

void mf_init_const(float *w, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        w[i] = v;
}

void mf_layer_free(mf_layer *l)
{
    if (!l)
        return;
    if (l->ops->destroy)
        l->ops->destroy(l);
    mf_free(l);
}

const char *mf_layer_name(const mf_layer *l) { return l->name; }
const char *mf_layer_kind(const mf_layer *l) { return l->ops->kind; }

void mf_layer_keras_args(const mf_layer *l, mf_layer_args *out)
{
    memset(out, 0, sizeof *out);
    out->kind = l->ops->kind;
    if (l->ops->args)
        l->ops->args(l, out);
}
mf_shape mf_layer_output_shape(const mf_layer *l) { return l->out_shape; }
void mf_layer_set_trainable(mf_layer *l, int trainable) { l->trainable = trainable != 0; }
int mf_layer_trainable(const mf_layer *l) { return l->trainable; }
