/* conv_geom.c: see conv_geom.h. */
#include "conv_geom.h"

static void same_1d(int n, int K, int S, int *out, int *pad_before)
{
    *out = (n + S - 1) / S;
    int total = (*out - 1) * S + K - n;
    if (total < 0)
        total = 0;
    *pad_before = total / 2;
}

mf_status mf_conv_geometry_ex(mf_conv_geom *g, int H, int W, int KH, int KW, int SH, int SW, int DH, int DW,
                              mf_padding padding)
{
    int EH = (KH - 1) * DH + 1, EW = (KW - 1) * DW + 1; /* the dilated window's span */
    if (padding == MF_PADDING_SAME) {
        same_1d(H, EH, SH, &g->Ho, &g->pad_top);
        same_1d(W, EW, SW, &g->Wo, &g->pad_left);
        return MF_STATUS_OK;
    }
    if (H < EH || W < EW)
        return mf_fail(MF_STATUS_SHAPE, "a %dx%d 'valid' window (dilation %dx%d) does not fit a %dx%d input", KH, KW,
                       DH, DW, H, W);
    g->Ho = (H - EH) / SH + 1;
    g->Wo = (W - EW) / SW + 1;
    g->pad_top = g->pad_left = 0;
    return MF_STATUS_OK;
}

mf_status mf_conv_geometry(mf_conv_geom *g, int H, int W, int K, int S, mf_padding padding)
{
    if (padding == MF_PADDING_SAME) {
        same_1d(H, K, S, &g->Ho, &g->pad_top);
        same_1d(W, K, S, &g->Wo, &g->pad_left);
        return MF_STATUS_OK;
    }
    if (H < K || W < K)
        return mf_fail(MF_STATUS_SHAPE, "a %dx%d 'valid' window does not fit a %dx%d input", K, K, H, W);
    g->Ho = (H - K) / S + 1;
    g->Wo = (W - K) / S + 1;
    g->pad_top = g->pad_left = 0;
    return MF_STATUS_OK;
}

mf_status mf_pool_window_init(mf_pool_window *p, const char *kind, int pool_h, int pool_w, int stride_h, int stride_w,
                              mf_padding padding)
{
    if (pool_h <= 0 || pool_w <= 0 || stride_h <= 0 || stride_w <= 0)
        return mf_fail(MF_STATUS_INVALID, "%s: pool size and strides must be > 0, got (%d,%d), (%d,%d)", kind, pool_h,
                       pool_w, stride_h, stride_w);
    if (padding != MF_PADDING_SAME && padding != MF_PADDING_VALID)
        return mf_fail(MF_STATUS_INVALID, "%s: padding must be MF_PADDING_SAME or MF_PADDING_VALID", kind);
    p->ph = pool_h;
    p->pw = pool_w;
    p->sh = stride_h;
    p->sw = stride_w;
    p->padding = padding;
    return MF_STATUS_OK;
}

void mf_pool_args(const mf_pool_window *p, mf_layer_args *a)
{
    a->pool_h = p->ph;
    a->pool_w = p->pw;
    a->stride_h = p->sh;
    a->stride_w = p->sw;
    a->padding = p->padding;
}

mf_status mf_pool_build(mf_pool_window *p, const mf_shape *in, mf_shape *out)
{
    if (in->ndim != 4)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C), got %d axes", in->ndim);
    MF_TRY(mf_conv_geometry_ex(&p->g, in->d[1], in->d[2], p->ph, p->pw, p->sh, p->sw, 1, 1, p->padding));
    *out = mf_shape4(0, p->g.Ho, p->g.Wo, in->d[3]);
    return MF_STATUS_OK;
}

void mf_pool_clip(const mf_pool_window *p, int H, int W, int ho, int wo, int *h0, int *h1, int *w0, int *w1)
{
    int hs = ho * p->sh - p->g.pad_top, ws = wo * p->sw - p->g.pad_left;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + p->ph < H ? hs + p->ph : H;
    *w1 = ws + p->pw < W ? ws + p->pw : W;
}
