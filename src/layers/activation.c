/* activation.c: Keras activations, as a layer (Activation) and as the kernels
 * Conv2D, SeparableConv2D and Dense apply after their bias.
 *
 * Reference: Keras 2 (tf.keras) keras/activations.py:
 *   relu max(x, 0); relu6 min(max(x, 0), 6); sigmoid 1 / (1 + e^-x); tanh;
 *   softmax over the last axis, as exp(x - max) / sum (stable);
 *   swish (= silu) x * sigmoid(x);
 *   hard_sigmoid: Keras 2's clip(0.2 x + 0.5, 0, 1) (Keras 3 changed it to
 *     relu6(x + 3) / 6; a Keras 3 config must be mapped with that in mind);
 *   linear: the identity.
 * Gradients at the kinks take the 0 side, as TensorFlow's ReluGrad/Relu6Grad.
 * Every derivative but swish's is a function of the output y, so backward
 * reads the output only (the memory plan keeps less); swish reads its input.
 * Rows: (rows, C) with C the last axis, which only softmax looks at. */
#include <math.h>
#include <string.h>
#include "layer.h"

static const struct {
    const char *name;
    mf_activation act;
} names[] = {
    {"linear", MF_ACT_LINEAR},   {"relu", MF_ACT_RELU},  {"relu6", MF_ACT_RELU6},
    {"sigmoid", MF_ACT_SIGMOID}, {"tanh", MF_ACT_TANH},  {"softmax", MF_ACT_SOFTMAX},
    {"swish", MF_ACT_SWISH},     {"silu", MF_ACT_SWISH}, {"hard_sigmoid", MF_ACT_HARD_SIGMOID},
};
#define N_NAMES ((int)(sizeof names / sizeof names[0]))

mf_status mf_activation_parse(const char *keras_name, mf_activation *out)
{
    for (int i = 0; keras_name && i < N_NAMES; i++)
        if (strcmp(keras_name, names[i].name) == 0) {
            *out = names[i].act;
            return MF_STATUS_OK;
        }
    return mf_fail(MF_STATUS_INVALID,
                   "unknown activation '%s'; valid: linear, relu, relu6, sigmoid, tanh, softmax, swish, silu, "
                   "hard_sigmoid",
                   keras_name ? keras_name : "(null)");
}

const char *mf_activation_name(mf_activation a)
{
    for (int i = 0; i < N_NAMES; i++)
        if (names[i].act == a)
            return names[i].name;
    return "?";
}

int mf_activation_valid(int a) { return a >= MF_ACT_LINEAR && a <= MF_ACT_HARD_SIGMOID; }

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* y = act(x), x and y (rows, C); y may be x */
void mf_act_forward(float *y, const float *x, size_t rows, int C, mf_activation a)
{
    size_t n = rows * (size_t)C;
    switch (a) {
    case MF_ACT_LINEAR:
        if (y != x)
            memcpy(y, x, n * sizeof(float));
        break;
    case MF_ACT_RELU:
    case MF_ACT_RELU6: {
        float hi = a == MF_ACT_RELU6 ? 6.0f : INFINITY;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) {
            float v = x[i] > 0.0f ? x[i] : 0.0f;
            y[i] = v < hi ? v : hi;
        }
        break;
    }
    case MF_ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            y[i] = sigmoidf(x[i]);
        break;
    case MF_ACT_TANH:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case MF_ACT_SWISH:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * sigmoidf(x[i]);
        break;
    case MF_ACT_HARD_SIGMOID:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) {
            float v = 0.2f * x[i] + 0.5f;
            v = v > 0.0f ? v : 0.0f;
            y[i] = v < 1.0f ? v : 1.0f;
        }
        break;
    case MF_ACT_SOFTMAX:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t r = 0; r < rows; r++) {
            const float *xr = x + r * (size_t)C;
            float *yr = y + r * (size_t)C;
            float mx = xr[0];
            for (int c = 1; c < C; c++)
                mx = xr[c] > mx ? xr[c] : mx;
            double s = 0.0;
            for (int c = 0; c < C; c++) {
                yr[c] = expf(xr[c] - mx);
                s += yr[c];
            }
            float inv = (float)(1.0 / s);
            for (int c = 0; c < C; c++)
                yr[c] *= inv;
        }
        break;
    }
}

/* dx (=, or += unless first) dy * act'(.), all (rows, C). y: the output; x:
 * the input, read only by swish (mf_act_reads_input). dx may be dy. */
void mf_act_backward(float *dx, const float *x, const float *y, const float *dy, size_t rows, int C, mf_activation a,
                     int first)
{
    size_t n = rows * (size_t)C;
    switch (a) {
    case MF_ACT_LINEAR: mf_din_put(dx, dy, NULL, n, first); break;
    case MF_ACT_RELU:
    case MF_ACT_RELU6: {
        float hi = a == MF_ACT_RELU6 ? 6.0f : INFINITY;
        MF_DIN_LOOP(first, i, n, dx, ((y[i] > 0.0f) & (y[i] < hi)) ? dy[i] : 0.0f);
        break;
    }
    case MF_ACT_SIGMOID: MF_DIN_LOOP(first, i, n, dx, dy[i] * y[i] * (1.0f - y[i])); break;
    case MF_ACT_TANH: MF_DIN_LOOP(first, i, n, dx, dy[i] * (1.0f - y[i] * y[i])); break;
    case MF_ACT_HARD_SIGMOID:
        MF_DIN_LOOP(first, i, n, dx, ((y[i] > 0.0f) & (y[i] < 1.0f)) ? 0.2f * dy[i] : 0.0f);
        break;
    case MF_ACT_SWISH:
        /* d/dx x s(x) = s + x s (1 - s) */
        for (size_t i = 0; i < n; i++) {
            float s = sigmoidf(x[i]), g = dy[i] * s * (1.0f + x[i] * (1.0f - s));
            dx[i] = first ? g : dx[i] + g;
        }
        break;
    case MF_ACT_SOFTMAX:
        /* dx = y * (dy - sum(dy * y)) per row */
        for (size_t r = 0; r < rows; r++) {
            const float *yr = y + r * (size_t)C, *gr = dy + r * (size_t)C;
            float *dr = dx + r * (size_t)C;
            double s = 0.0;
            for (int c = 0; c < C; c++)
                s += (double)gr[c] * yr[c];
            for (int c = 0; c < C; c++) {
                float g = yr[c] * (gr[c] - (float)s);
                dr[c] = first ? g : dr[c] + g;
            }
        }
        break;
    }
}

int mf_act_reads_input(mf_activation a) { return a == MF_ACT_SWISH; }

/* ---- the Activation layer ------------------------------------------------ */
typedef struct activation {
    mf_layer base;
    mf_activation act;
} activation;

static mf_status act_build(mf_layer *l)
{
    l->out_shape = l->in_shape[0];
    return MF_STATUS_OK;
}

static void act_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    const mf_shape *s = &out->shape;
    int C = s->d[s->ndim - 1];
    mf_act_forward(out->data, in[0]->data, mf_tensor_numel(out) / (size_t)C, C, ((activation *)l)->act);
}

static void act_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                         const mf_tensor *dout, mf_tensor *const *din)
{
    if (!din[0])
        return;
    const mf_shape *s = &dout->shape;
    int C = s->d[s->ndim - 1];
    mf_act_backward(din[0]->data, in[0]->data, out->data, dout->data, mf_tensor_numel(dout) / (size_t)C, C,
                    ((activation *)l)->act, ex->din_first[0]);
}

/* Two tables for one kind: what backward reads depends on the function. */
static void act_args(const mf_layer *l, mf_layer_args *a) { a->activation = ((const activation *)l)->act; }

static const mf_layer_ops act_ops_out = {
    .kind = "Activation",
    .default_name = "activation",
    .n_in = 1,
    .bwd_reads = MF_READS_OUT,
    .args = act_args,
    .build = act_build,
    .forward = act_forward,
    .backward = act_backward,
};
static const mf_layer_ops act_ops_in = {
    .kind = "Activation",
    .default_name = "activation",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .args = act_args,
    .build = act_build,
    .forward = act_forward,
    .backward = act_backward,
};

mf_layer *mf_activation_layer(const char *name, mf_activation act)
{
    if (!mf_activation_valid((int)act)) {
        mf_fail(MF_STATUS_INVALID, "Activation: unknown activation %d (see mf_activation)", (int)act);
        return NULL;
    }
    activation *a =
        (activation *)mf_layer_alloc(mf_act_reads_input(act) ? &act_ops_in : &act_ops_out, sizeof(activation), name);
    if (a)
        a->act = act;
    return (mf_layer *)a;
}
