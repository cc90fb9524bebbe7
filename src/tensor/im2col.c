/* im2col.c: see im2col.h. Rows are independent, so both directions split over
 * output rows; col2im scatters into overlapping input pixels, so it runs over
 * output rows serially per image and lets the caller parallelise over images. */
#include <string.h>
#include "im2col.h"

void mf_im2col(float *cols, const float *x, int H, int W, int C, int K, int S, int pad_top, int pad_left, int Ho,
               int Wo)
{
    size_t row_len = (size_t)K * K * C;
#pragma omp parallel for schedule(static) if ((size_t)Ho * Wo * row_len > 65536)
    for (int ho = 0; ho < Ho; ho++) {
        for (int wo = 0; wo < Wo; wo++) {
            float *row = cols + ((size_t)ho * Wo + wo) * row_len;
            for (int kh = 0; kh < K; kh++) {
                int hi = ho * S + kh - pad_top;
                float *dst = row + (size_t)kh * K * C;
                if (hi < 0 || hi >= H) {
                    memset(dst, 0, (size_t)K * C * sizeof(float));
                    continue;
                }
                for (int kw = 0; kw < K; kw++) {
                    int wi = wo * S + kw - pad_left;
                    if (wi < 0 || wi >= W)
                        memset(dst + (size_t)kw * C, 0, (size_t)C * sizeof(float));
                    else
                        memcpy(dst + (size_t)kw * C, x + ((size_t)hi * W + wi) * C, (size_t)C * sizeof(float));
                }
            }
        }
    }
}

void mf_col2im_add(float *dx, const float *dcols, int H, int W, int C, int K, int S, int pad_top, int pad_left, int Ho,
                   int Wo)
{
    size_t row_len = (size_t)K * K * C;
    for (int ho = 0; ho < Ho; ho++) {
        for (int wo = 0; wo < Wo; wo++) {
            const float *row = dcols + ((size_t)ho * Wo + wo) * row_len;
            for (int kh = 0; kh < K; kh++) {
                int hi = ho * S + kh - pad_top;
                if (hi < 0 || hi >= H)
                    continue;
                for (int kw = 0; kw < K; kw++) {
                    int wi = wo * S + kw - pad_left;
                    if (wi < 0 || wi >= W)
                        continue;
                    float *d = dx + ((size_t)hi * W + wi) * C;
                    const float *s = row + ((size_t)kh * K + kw) * C;
                    for (int c = 0; c < C; c++)
                        d[c] += s[c];
                }
            }
        }
    }
}

void mf_im2col_ex(float *cols, const float *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW,
                  int pad_top, int pad_left, int Ho, int Wo)
{
    size_t row_len = (size_t)KH * KW * C;
    for (int ho = 0; ho < Ho; ho++)
        for (int wo = 0; wo < Wo; wo++) {
            float *row = cols + ((size_t)ho * Wo + wo) * row_len;
            for (int kh = 0; kh < KH; kh++) {
                int hi = ho * SH + kh * DH - pad_top;
                for (int kw = 0; kw < KW; kw++) {
                    int wi = wo * SW + kw * DW - pad_left;
                    float *dst = row + ((size_t)kh * KW + kw) * C;
                    if (hi < 0 || hi >= H || wi < 0 || wi >= W)
                        memset(dst, 0, (size_t)C * sizeof(float));
                    else
                        memcpy(dst, x + ((size_t)hi * W + wi) * C, (size_t)C * sizeof(float));
                }
            }
        }
}

void mf_col2im_add_ex(float *dx, const float *dcols, int H, int W, int C, int KH, int KW, int SH, int SW, int DH,
                      int DW, int pad_top, int pad_left, int Ho, int Wo)
{
    size_t row_len = (size_t)KH * KW * C;
    for (int ho = 0; ho < Ho; ho++)
        for (int wo = 0; wo < Wo; wo++) {
            const float *row = dcols + ((size_t)ho * Wo + wo) * row_len;
            for (int kh = 0; kh < KH; kh++) {
                int hi = ho * SH + kh * DH - pad_top;
                if (hi < 0 || hi >= H)
                    continue;
                for (int kw = 0; kw < KW; kw++) {
                    int wi = wo * SW + kw * DW - pad_left;
                    if (wi < 0 || wi >= W)
                        continue;
                    const float *src = row + ((size_t)kh * KW + kw) * C;
                    float *d = dx + ((size_t)hi * W + wi) * C;
                    for (int c = 0; c < C; c++)
                        d[c] += src[c];
                }
            }
        }
}
