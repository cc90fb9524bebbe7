/* conv_geom.h: output size and padding of a strided window, shared by the
 * convolutions and the poolings. "same" follows TensorFlow: Ho = ceil(H / S) and
 * the odd pixel of padding goes to the bottom/right. */
#ifndef MF_CONV_GEOM_H
#define MF_CONV_GEOM_H
#include "layer.h"

typedef struct mf_conv_geom {
    int Ho, Wo;
    int pad_top, pad_left; /* bottom/right pads are implied by Ho, Wo */
} mf_conv_geom;

/* Fails with MF_STATUS_SHAPE when a "valid" window does not fit. */
mf_status mf_conv_geometry(mf_conv_geom *g, int H, int W, int K, int S, mf_padding padding);
/* The same for a KH x KW window with strides SH, SW and dilations DH, DW (the
 * window then spans (K - 1) * D + 1 pixels), as TensorFlow computes it. */
mf_status mf_conv_geometry_ex(mf_conv_geom *g, int H, int W, int KH, int KW, int SH, int SW, int DH, int DW,
                              mf_padding padding);

/* A pooling window (MaxPooling2D, AveragePooling2D): its size, strides and
 * padding, and the geometry mf_pool_build derives from them. */
typedef struct mf_pool_window {
    int ph, pw, sh, sw;
    mf_padding padding;
    mf_conv_geom g;
} mf_pool_window;
/* Check and set a window's size, strides and padding; errors name `kind`. */
mf_status mf_pool_window_init(mf_pool_window *p, const char *kind, int pool_h, int pool_w, int stride_h, int stride_w,
                              mf_padding padding);
/* Its Keras arguments (pool_size, strides, padding), for mf_layer_keras_args. */
void mf_pool_args(const mf_pool_window *p, mf_layer_args *a);
/* The geometry for an (N,H,W,C) input; *out = (N,Ho,Wo,C). */
mf_status mf_pool_build(mf_pool_window *p, const mf_shape *in, mf_shape *out);
/* Output (ho, wo)'s window clipped to the H x W image: rows [*h0, *h1), cols
 * [*w0, *w1) (padded cells are absent, not zeros). */
void mf_pool_clip(const mf_pool_window *p, int H, int W, int ho, int wo, int *h0, int *h1, int *w0, int *w1);
#endif
