/* flatten.c: Keras Flatten (data_format channels_last): (N, d1, ..., dk) ->
 * (N, d1 * ... * dk) in NHWC order, so a Dense after it reads the features in
 * the order Keras' kernel (H*W*C, units) expects. A copy both ways. */
#include <string.h>
#include "layer.h"

static mf_status flatten_build(mf_layer *l)
{
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim < 2)
        return mf_fail(MF_STATUS_SHAPE, "input must have a batch axis and at least one more, got %d axes", s->ndim);
    l->out_shape = mf_shape2(0, (int)mf_shape_sample_numel(s));
    return MF_STATUS_OK;
}

static void flatten_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)l;
    (void)ex;
    memcpy(out->data, in[0]->data, mf_tensor_numel(out) * sizeof(float));
}

static void flatten_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                             const mf_tensor *dout, mf_tensor *const *din)
{
    (void)l;
    (void)in;
    (void)out;
    if (din[0])
        mf_din_put(din[0]->data, dout->data, NULL, mf_tensor_numel(dout), ex->din_first[0]);
}

static const mf_layer_ops flatten_ops = {
    .kind = "Flatten",
    .default_name = "flatten",
    .n_in = 1,
    .bwd_reads = MF_READS_NONE,
    .build = flatten_build,
    .forward = flatten_forward,
    .backward = flatten_backward,
};

mf_layer *mf_flatten(const char *name) { return mf_layer_alloc(&flatten_ops, sizeof(mf_layer), name); }
