/* add.c: Keras Add with two inputs (the residual connection of MobileNetV2's
 * inverted-residual blocks). The gradient goes unchanged to both inputs. */
#include <string.h>
#include "layer.h"

static mf_status add_build(mf_layer *l)
{
    if (!mf_shape_eq(&l->in_shape[0], &l->in_shape[1])) {
        char a[64], b[64];
        return mf_fail(MF_STATUS_SHAPE, "inputs must have equal shapes, got %s and %s",
                       mf_shape_str(&l->in_shape[0], a, sizeof a), mf_shape_str(&l->in_shape[1], b, sizeof b));
    }
    l->out_shape = l->in_shape[0];
    return MF_STATUS_OK;
}

static void add_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)l;
    (void)ex;
    size_t n = mf_tensor_numel(out);
    const float *a = in[0]->data, *b = in[1]->data;
    float *o = out->data;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        o[i] = a[i] + b[i];
}

static void add_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                         const mf_tensor *dout, mf_tensor *const *din)
{
    (void)l;
    (void)in;
    (void)out;
    size_t n = mf_tensor_numel(dout);
    for (int k = 0; k < 2; k++) { /* in order: Add(x, x) writes then adds */
        if (!din[k])
            continue;
        /* the plan may give din the memory of dout (ops->inplace): then the
         * first write is a no-op */
        mf_din_put(din[k]->data, dout->data, NULL, n, ex->din_first[k]);
    }
}

static const mf_layer_ops add_ops = {
    .kind = "Add",
    .default_name = "add",
    .n_in = 2,
    .bwd_reads = MF_READS_NONE,
    .inplace = 1,
    .build = add_build,
    .forward = add_forward,
    .backward = add_backward,
};

mf_layer *mf_add(const char *name) { return mf_layer_alloc(&add_ops, sizeof(mf_layer), name); }
