/* concatenate.c: Keras Concatenate(axis=-1) of 2 to 8 inputs: every axis but
 * the last equal, the output's last axis the inputs' in order. Each input's
 * gradient is its slice of the output gradient; backward needs shapes only. */
#include <string.h>
#include "layer.h"

static mf_status concat_build(mf_layer *l)
{
    const mf_shape *s0 = &l->in_shape[0];
    int last = s0->ndim - 1, total = 0;
    for (int k = 0; k < l->n_in; k++) {
        const mf_shape *s = &l->in_shape[k];
        int same = s->ndim == s0->ndim;
        for (int i = 1; same && i < last; i++)
            same = s->d[i] == s0->d[i];
        if (!same) {
            char a[64], b[64];
            return mf_fail(MF_STATUS_SHAPE,
                           "inputs must agree on every axis but the last, got %s (input 0) and %s "
                           "(input %d)",
                           mf_shape_str(s0, a, sizeof a), mf_shape_str(s, b, sizeof b), k);
        }
        total += s->d[last];
    }
    if (s0->ndim < 2)
        return mf_fail(MF_STATUS_SHAPE, "inputs need a feature axis after the batch");
    l->out_shape = *s0;
    l->out_shape.d[last] = total;
    return MF_STATUS_OK;
}

/* in[k]: (rows, Ck)  out: (rows, sum Ck) */
static void concat_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    int last = out->shape.ndim - 1, Co = out->shape.d[last];
    size_t rows = mf_tensor_numel(out) / (size_t)Co;
    int off = 0;
    for (int k = 0; k < l->n_in; k++) {
        int Ck = in[k]->shape.d[last];
        const float *x = in[k]->data;
#pragma omp parallel for schedule(static) if (rows * (size_t)Ck > 65536)
        for (size_t r = 0; r < rows; r++)
            memcpy(out->data + r * Co + off, x + r * Ck, (size_t)Ck * sizeof(float));
        off += Ck;
    }
}

static void concat_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                            const mf_tensor *dout, mf_tensor *const *din)
{
    (void)in;
    (void)out;
    int last = dout->shape.ndim - 1, Co = dout->shape.d[last];
    size_t rows = mf_tensor_numel(dout) / (size_t)Co;
    int off = 0;
    for (int k = 0; k < l->n_in; k++) {
        int Ck = l->in_shape[k].d[last];
        if (din[k]) {
            float *dx = din[k]->data;
            int first = ex->din_first[k];
            /* Concatenate(x, x): the second slice adds to the first (din_first 0) */
            for (size_t r = 0; r < rows; r++)
                mf_din_put(dx + r * Ck, dout->data + r * Co + off, NULL, (size_t)Ck, first);
        }
        off += Ck;
    }
}

static const mf_layer_ops concat_ops = {
    .kind = "Concatenate",
    .default_name = "concatenate",
    .n_in = 0, /* 2 to MF_LAYER_MAX_INPUTS */
    .bwd_reads = MF_READS_NONE,
    .build = concat_build,
    .forward = concat_forward,
    .backward = concat_backward,
};

mf_layer *mf_concatenate(const char *name) { return mf_layer_alloc(&concat_ops, sizeof(mf_layer), name); }
