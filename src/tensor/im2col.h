/* im2col.h: unfold image patches into rows so a KxK convolution becomes one GEMM.
 * Row (ho*Wo + wo) of cols holds the patch under output pixel (ho, wo) with
 * columns in (kh, kw, c) order, which is exactly a Keras HWIO kernel read as a
 * (K*K*C, F) matrix. Out-of-image taps are zero. */
#ifndef MF_IM2COL_H
#define MF_IM2COL_H

/* x: (H,W,C) one image  cols: (Ho*Wo, K*K*C) */
void mf_im2col(float *cols, const float *x, int H, int W, int C, int K, int S, int pad_top, int pad_left, int Ho,
               int Wo);
/* The adjoint: dx (H,W,C) += fold(dcols (Ho*Wo, K*K*C)). */
void mf_col2im_add(float *dx, const float *dcols, int H, int W, int C, int K, int S, int pad_top, int pad_left, int Ho,
                   int Wo);
/* The general window: KH x KW taps, strides SH, SW, dilations DH, DW (tap
 * (kh, kw) reads pixel (ho*SH + kh*DH - pad_top, wo*SW + kw*DW - pad_left)).
 * Serial: the caller parallelises over images. cols: (Ho*Wo, KH*KW*C) */
void mf_im2col_ex(float *cols, const float *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW,
                  int pad_top, int pad_left, int Ho, int Wo);
void mf_col2im_add_ex(float *dx, const float *dcols, int H, int W, int C, int KH, int KW, int SH, int SW, int DH,
                      int DW, int pad_top, int pad_left, int Ho, int Wo);
#endif
