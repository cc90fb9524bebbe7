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
#endif
