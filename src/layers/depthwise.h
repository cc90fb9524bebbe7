/* depthwise.h: the depthwise convolution kernels, shared by DepthwiseConv2D
 * (depthwise_conv2d.c) and SeparableConv2D (separable_conv2d.c).
 *
 * Input (N,H,W,C) NHWC; kernel (KH,KW,C,M) in Keras' layout, read as
 * (KH,KW,C*M); output (N,Ho,Wo,C*M) with output channel c*M + m the product
 * of input channel c with filter m of it (Keras' depth_multiplier order). With
 * M = 1 the channel loop is innermost and contiguous in input, kernel and
 * output, so it vectorises; sums run in a fixed order (kh, kw), so results do
 * not depend on the thread count. */
#ifndef MF_DEPTHWISE_H
#define MF_DEPTHWISE_H
#include "layer.h"
#include "conv_geom.h"

typedef struct mf_dw_window {
    int KH, KW; /* kernel */
    int SH, SW; /* strides */
    int DH, DW; /* dilation */
    int M; /* depth multiplier */
    int pt, pl; /* top and left padding (bottom/right implied by Ho, Wo) */
    int Ho, Wo;
} mf_dw_window;

/* The window of a layer's options and geometry (its own padding). */
mf_dw_window mf_dw_window_of(const mf_conv_options *o, const mf_conv_geom *g);
/* out (N,Ho,Wo,C*M) = depthwise(inp) + b; b (C*M) may be NULL. */
void mf_dw_forward(float *out, const float *inp, const float *w, const float *b, int N, int H, int W, int C,
                   const mf_dw_window *g);
/* dinp (N,H,W,C) += (first: =) the input gradient of dout (N,Ho,Wo,C*M). */
void mf_dw_backward_input(float *dinp, const float *dout, const float *w, int first, int N, int H, int W, int C,
                          const mf_dw_window *g);
/* Floats of scratch mf_dw_backward_weight wants for a batch of N. */
size_t mf_dw_weight_scratch(const mf_dw_window *g, int C, int N);
/* dw (KH,KW,C*M) += the kernel gradient; part: part_floats of scratch, one
 * accumulator per unit of work (RB output rows of one image), added in unit
 * order: the same bits for any number of threads. */
void mf_dw_backward_weight(float *dw, float *part, size_t part_floats, const float *inp, const float *dout, int N,
                           int H, int W, int C, const mf_dw_window *g);
#endif
