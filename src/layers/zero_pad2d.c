/* zero_pad2d.c: Keras ZeroPadding2D(((top, bottom), (left, right))). MobileNetV2
 * pads ((0,1),(0,1)) in front of each stride-2 3x3 conv ("correct_pad" for even
 * input sizes), then runs that conv with padding "valid". */
#include <string.h>
#include "layer.h"

typedef struct zero_pad2d {
    mf_layer base;
    int top, bottom, left, right;
} zero_pad2d;

static mf_status zp_build(mf_layer *l)
{
    zero_pad2d *z = (zero_pad2d *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", s->ndim);
    l->out_shape = mf_shape4(0, s->d[1] + z->top + z->bottom, s->d[2] + z->left + z->right, s->d[3]);
    return MF_STATUS_OK;
}

/* inp: (N,H,W,C)  out: (N,Ho,Wo,C), Ho = H+top+bottom, Wo = W+left+right */
static void zp_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    (void)ex;
    zero_pad2d *z = (zero_pad2d *)l;
    const float *x = in[0]->data;
    float *y = out->data;
    int N = in[0]->shape.d[0], H = in[0]->shape.d[1], W = in[0]->shape.d[2], C = in[0]->shape.d[3];
    int Ho = out->shape.d[1], Wo = out->shape.d[2];
    size_t row = (size_t)Wo * C;
/* every output row once: pad rows zeroed, inner rows = left pad, copy, right pad
     * (not a memset of the whole output and a second pass over it) */
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++) {
            float *yr = y + ((size_t)n * Ho + ho) * row;
            int h = ho - z->top;
            if (h < 0 || h >= H) {
                memset(yr, 0, row * sizeof(float));
                continue;
            }
            memset(yr, 0, (size_t)z->left * C * sizeof(float));
            memcpy(yr + (size_t)z->left * C, x + (((size_t)n * H + h) * W) * C, (size_t)W * C * sizeof(float));
            memset(yr + (size_t)(z->left + W) * C, 0, (size_t)z->right * C * sizeof(float));
        }
}

static void zp_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                        const mf_tensor *dout, mf_tensor *const *din)
{
    (void)out;
    if (!din[0])
        return;
    zero_pad2d *z = (zero_pad2d *)l;
    int first = ex->din_first[0];
    int N = in[0]->shape.d[0], H = in[0]->shape.d[1], W = in[0]->shape.d[2], C = in[0]->shape.d[3];
    int Ho = dout->shape.d[1], Wo = dout->shape.d[2];
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            float *dx = din[0]->data + (((size_t)n * H + h) * W) * C;
            const float *dy = dout->data + (((size_t)n * Ho + h + z->top) * Wo + z->left) * C;
            mf_din_put(dx, dy, NULL, (size_t)W * C, first);
        }
}

static void zp_args(const mf_layer *l, mf_layer_args *a)
{
    const zero_pad2d *z = (const zero_pad2d *)l;
    a->pad[0] = z->top;
    a->pad[1] = z->bottom;
    a->pad[2] = z->left;
    a->pad[3] = z->right;
}

static const mf_layer_ops zp_ops = {
    .kind = "ZeroPadding2D",
    .default_name = "zero_padding2d",
    .n_in = 1,
    .bwd_reads = MF_READS_NONE,
    .args = zp_args,
    .build = zp_build,
    .forward = zp_forward,
    .backward = zp_backward,
};

int mf_zero_pad2d_pads(const mf_layer *l, int p[4])
{
    if (l->ops != &zp_ops)
        return 0;
    const zero_pad2d *z = (const zero_pad2d *)l;
    p[0] = z->top;
    p[1] = z->bottom;
    p[2] = z->left;
    p[3] = z->right;
    return 1;
}

mf_layer *mf_zero_pad2d(const char *name, int top, int bottom, int left, int right)
{
    if (top < 0 || bottom < 0 || left < 0 || right < 0) {
        mf_fail(MF_STATUS_INVALID, "ZeroPadding2D: pads must be >= 0, got ((%d,%d),(%d,%d))", top, bottom, left, right);
        return NULL;
    }
    zero_pad2d *z = (zero_pad2d *)mf_layer_alloc(&zp_ops, sizeof(zero_pad2d), name);
    if (z) {
        z->top = top;
        z->bottom = bottom;
        z->left = left;
        z->right = right;
    }
    return (mf_layer *)z;
}
