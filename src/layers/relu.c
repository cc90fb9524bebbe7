/* relu.c: Keras ReLU(max_value): y = min(max(x, 0), max_value); ReLU6 is
 * max_value = 6 (MobileNetV2). The gradient is 1 where 0 < x < max_value, as in
 * TensorFlow's Relu6Grad, 0 elsewhere (the kinks take the 0 side). */
#include <float.h>
#include <omp.h>
#include "layer.h"

typedef struct relu {
    mf_layer base;
    float max_value; /* <= 0: unbounded */
} relu;

/* inp, out: n floats */
static void relu_forward_k(float *restrict out, const float *restrict inp, size_t n, float max_value)
{
    float hi = max_value > 0.0f ? max_value : FLT_MAX;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = inp[i] > 0.0f ? inp[i] : 0.0f;
        out[i] = v < hi ? v : hi;
    }
}

/* dinp (= or +=) dout where 0 < out < max_value: the same mask as
 * 0 < inp < max_value (out = inp inside that range and 0 or max_value outside),
 * read from the output so that the input need not be kept (the memory plan
 * may then let the output overwrite it). Branch-free (a select), so
 * the compiler vectorises it: this pass is pure memory traffic. */
/* g where the ReLU passed its input (0 < y < hi), else 0. Both operands are
 * loaded unconditionally and `&` is used instead of `&&`: no branch, so the
 * loop vectorises into compares and a blend. (With the branch, ReLU6's random
 * signs cost a misprediction every other element: 4.4 ns instead of ~1 ns per
 * element.) */
static inline float passed(float y, float g, float hi) { return ((y > 0.0f) & (y < hi)) ? g : 0.0f; }

static void relu_backward_k(float *restrict dinp, const float *restrict outp, const float *restrict dout, size_t n,
                            float max_value, int first)
{
    float hi = max_value > 0.0f ? max_value : FLT_MAX;
#pragma omp parallel if (n > 65536)
    {
        size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = n * t / nt, len = n * (t + 1) / nt - lo;
        float *d = dinp + lo;
        const float *y = outp + lo, *g = dout + lo;
        MF_DIN_LOOP(first, i, len, d, passed(y[i], g[i], hi));
    }
}

static mf_status relu_build(mf_layer *l)
{
    l->out_shape = l->in_shape[0];
    return MF_STATUS_OK;
}

static void relu_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    relu_forward_k(out->data, in[0]->data, mf_tensor_numel(out), ((relu *)l)->max_value);
}

static void relu_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                          const mf_tensor *dout, mf_tensor *const *din)
{
    (void)in;
    if (din[0])
        relu_backward_k(din[0]->data, out->data, dout->data, mf_tensor_numel(dout), ((relu *)l)->max_value,
                        ex->din_first[0]);
}

static void relu_args(const mf_layer *l, mf_layer_args *a) { a->max_value = ((const relu *)l)->max_value; }

static const mf_layer_ops relu_ops = {
    .kind = "ReLU",
    .default_name = "re_lu",
    .n_in = 1,
    .bwd_reads = MF_READS_OUT,
    .args = relu_args,
    .build = relu_build,
    .forward = relu_forward,
    .backward = relu_backward,
};

float mf_relu_clamp(const mf_layer *l)
{
    if (l->ops != &relu_ops)
        return -1.0f;
    float mv = ((const relu *)l)->max_value;
    return mv > 0.0f ? mv : FLT_MAX;
}

mf_layer *mf_relu(const char *name, float max_value)
{
    if (!(max_value >= 0.0f)) {
        mf_fail(MF_STATUS_INVALID, "ReLU: max_value must be >= 0 (0 = unbounded), got %g", (double)max_value);
        return NULL;
    }
    relu *r = (relu *)mf_layer_alloc(&relu_ops, sizeof(relu), name);
    if (r)
        r->max_value = max_value;
    return (mf_layer *)r;
}
