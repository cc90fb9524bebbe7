/* rescaling.c: Keras Rescaling(scale, offset): y = x * scale + offset, e.g.
 * 1/255 to bring pixels to [0, 1], or 1/127.5 and -1 for [-1, 1]. No weights.
 * Elementwise and alias-safe (ops->inplace). */
#include <math.h>
#include "layer.h"

typedef struct rescaling {
    mf_layer base;
    float scale, offset;
} rescaling;

static mf_status rescaling_build(mf_layer *l)
{
    l->out_shape = l->in_shape[0];
    return MF_STATUS_OK;
}

static void rescaling_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    const rescaling *r = (const rescaling *)l;
    size_t n = mf_tensor_numel(out);
    const float *x = in[0]->data;
    float *y = out->data, a = r->scale, b = r->offset;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * a + b;
}

static void rescaling_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                               const mf_tensor *dout, mf_tensor *const *din)
{
    (void)in;
    (void)out;
    if (!din[0])
        return;
    float a = ((const rescaling *)l)->scale;
    const float *g = dout->data;
    float *dx = din[0]->data;
    MF_DIN_LOOP(ex->din_first[0], i, mf_tensor_numel(dout), dx, g[i] * a);
}

static void rescaling_args(const mf_layer *l, mf_layer_args *a)
{
    const rescaling *r = (const rescaling *)l;
    a->rescale = r->scale;
    a->offset = r->offset;
}

static const mf_layer_ops rescaling_ops = {
    .kind = "Rescaling",
    .default_name = "rescaling",
    .n_in = 1,
    .bwd_reads = MF_READS_NONE,
    .inplace = 1,
    .args = rescaling_args,
    .build = rescaling_build,
    .forward = rescaling_forward,
    .backward = rescaling_backward,
};

mf_layer *mf_rescaling(const char *name, float scale, float offset)
{
    if (!isfinite(scale) || !isfinite(offset)) {
        mf_fail(MF_STATUS_INVALID, "Rescaling: scale and offset must be finite, got %g and %g", (double)scale,
                (double)offset);
        return NULL;
    }
    rescaling *r = (rescaling *)mf_layer_alloc(&rescaling_ops, sizeof(rescaling), name);
    if (r) {
        r->scale = scale;
        r->offset = offset;
    }
    return (mf_layer *)r;
}
