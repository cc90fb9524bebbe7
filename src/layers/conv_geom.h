/* conv_geom.h: output size and padding of a strided KxK window, shared by
 * Conv2D and DepthwiseConv2D. "same" follows TensorFlow: Ho = ceil(H / S) and
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
#endif
