/* half.h (private): 16-bit floats for the compressed gradient exchange
 * ([dist] compress, see mf_grad_sync_create). IEEE binary16 ("fp16": 5
 * exponent bits, 10 mantissa bits, largest finite 65504) and bfloat16
 * ("bf16": fp32's 8 exponent bits, 7 mantissa bits). Conversions from float
 * round to nearest, ties to even; fp16 saturates at +-65504 instead of
 * overflowing to infinity (a gradient that large is kept by error feedback, not
 * turned into inf); NaN stays NaN. Written as branch-free integer code, so the
 * loops vectorise and every machine gives the same bits. */
#ifndef MF_HALF_H
#define MF_HALF_H
#include <stddef.h>
#include <stdint.h>

uint16_t mf_fp16_from_float(float x);
float mf_fp16_to_float(uint16_t h);
uint16_t mf_bf16_from_float(float x);
float mf_bf16_to_float(uint16_t h);

/* The sender's side of error feedback over n values: v = g[i] + resid[i] is
 * rounded to 16 bits into h[i], and what rounding lost, v - value(h[i]), goes
 * back into resid[i] for the next step, so no part of a gradient is dropped,
 * only delayed (1-bit SGD, Seide et al. 2014; EF-SGD, Karimireddy et al.
 * 2019). bf16 != 0 selects bfloat16. */
void mf_half_encode(uint16_t *restrict h, const float *restrict g, float *restrict resid, size_t n, int bf16);
/* g[i] = value(h[i]) * scale. */
void mf_half_decode(float *restrict g, const uint16_t *restrict h, size_t n, float scale, int bf16);
/* The owner's side: parts holds p contributions of c values each (rank 0's
 * first); out[j] = their sum, added in float in rank order, plus resid[j],
 * rounded to 16 bits, and what that rounding lost goes back into resid[j]. So
 * the sum's rounding is fed back too, and the result is the same bits
 * wherever it is computed. */
void mf_half_reduce(uint16_t *restrict out, float *restrict resid, const uint16_t *restrict parts, int p, size_t c,
                    int bf16);
#endif
