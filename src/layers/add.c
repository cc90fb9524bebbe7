/* add.c: Keras Add of 2 to 8 inputs of one shape (the residual connection of
 * MobileNetV2's inverted-residual blocks has two). The gradient goes unchanged
 * to every input. */
#include <string.h>
#include "layer.h"

static mf_status add_build(mf_layer *l)
{
    for (int k = 1; k < l->n_in; k++)
        if (!mf_shape_eq(&l->in_shape[0], &l->in_shape[k])) {
            char a[64], b[64];
            return mf_fail(MF_STATUS_SHAPE, "inputs must have equal shapes, got %s (input 0) and %s (input %d)",
                           mf_shape_str(&l->in_shape[0], a, sizeof a), mf_shape_str(&l->in_shape[k], b, sizeof b), k);
        }
    l->out_shape = l->in_shape[0];
    return MF_STATUS_OK;
}

/* Element by element, every input read before the output is written: the
 * plan may give the output the memory of any one input (ops->inplace). */
static void add_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    size_t n = mf_tensor_numel(out);
    const float *a = in[0]->data, *b = in[1]->data;
    float *o = out->data;
    int K = l->n_in;
    if (K == 2) {
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            o[i] = a[i] + b[i];
        return;
    }
    /* left to right, as a chain of two-input Adds would sum */
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float s = a[i] + b[i];
        for (int k = 2; k < K; k++)
            s += in[k]->data[i];
        o[i] = s;
    }
}

static void add_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                         const mf_tensor *dout, mf_tensor *const *din)
{
    (void)in;
    (void)out;
    size_t n = mf_tensor_numel(dout);
    for (int k = 0; k < l->n_in; k++) { /* in order: Add(x, x) writes then adds */
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
    .n_in = 0, /* 2 to MF_LAYER_MAX_INPUTS */
    .bwd_reads = MF_READS_NONE,
    .inplace = 1,
    .build = add_build,
    .forward = add_forward,
    .backward = add_backward,
};

mf_layer *mf_add(const char *name) { return mf_layer_alloc(&add_ops, sizeof(mf_layer), name); }
