/* half.c: float <-> fp16 / bf16 conversions and the compressed exchange's
 * encode, decode and reduction loops (see half.h). No branches in the
 * per-element paths: the loops vectorise. */
#include "half.h"

/* Type punning through a union (defined behaviour in C11), which, unlike
 * memcpy into a local, leaves the loops below vectorisable. */
typedef union {
    float f;
    uint32_t u;
} fbits;

static inline uint32_t bits(float x) { return (fbits){.f = x}.u; }

static inline float from_bits(uint32_t u) { return (fbits){.u = u}.f; }

uint16_t mf_fp16_from_float(float x)
{
    uint32_t u = bits(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu; /* |x| */
    /* normal halves (|x| >= 2^-14): rebias the exponent (127 -> 15) and round
     * the 13 dropped mantissa bits to nearest, ties to the even result */
    uint32_t normal = (a + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    /* subnormal halves: adding 0.5 (2^-1) puts |x|'s bits at the place of
     * half's smallest step 2^-24 in float's mantissa; the FPU rounds (to
     * nearest even) and the mantissa is the half */
    uint32_t sub = bits(from_bits(a) + 0.5f) - bits(0.5f);
    /* selections as masks, all in 32 bits: the vectoriser takes these */
    uint32_t is_sub = 0u - (uint32_t)(a < (113u << 23)); /* 2^-14 is float exponent 113 */
    uint32_t h = (sub & is_sub) | (normal & ~is_sub);
    uint32_t over = 0u - (uint32_t)(h > 0x7bffu); /* saturate: 65504 is the largest finite half */
    h = (0x7bffu & over) | (h & ~over);
    uint32_t nan = 0u - (uint32_t)(a > 0x7f800000u);
    h = (0x7e00u & nan) | (h & ~nan);
    return (uint16_t)(sign | h);
}

float mf_fp16_to_float(uint16_t h)
{
    uint32_t em = (uint32_t)(h & 0x7fffu) << 13; /* exponent and mantissa at float's places */
    /* normal halves: rebias the exponent (15 -> 127) in the integer; no
     * float arithmetic here, which on a float subnormal would cost a
     * microcode assist per vector */
    uint32_t normal = em + ((uint32_t)(127 - 15) << 23);
    /* subnormal halves: mantissa x 2^-24, a normal float */
    uint32_t sub = bits((float)(h & 0x3ffu) * 0x1p-24f);
    uint32_t is_sub = 0u - (uint32_t)((h & 0x7c00u) == 0);
    uint32_t is_special = 0u - (uint32_t)((h & 0x7c00u) == 0x7c00u); /* inf, NaN */
    uint32_t m = (sub & is_sub) | (normal & ~is_sub);
    m = ((0x7f800000u | em) & is_special) | (m & ~is_special);
    return from_bits(((uint32_t)(h & 0x8000u) << 16) | m);
}

uint16_t mf_bf16_from_float(float x)
{
    uint32_t u = bits(x);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    r = (u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : r; /* NaN stays quiet NaN */
    return (uint16_t)r;
}

float mf_bf16_to_float(uint16_t h) { return from_bits((uint32_t)h << 16); }

void mf_half_encode(uint16_t *restrict h, const float *restrict g, float *restrict resid, size_t n, int bf16)
{
    if (bf16) {
        for (size_t i = 0; i < n; i++) {
            float v = g[i] + resid[i];
            uint16_t q = mf_bf16_from_float(v);
            h[i] = q;
            resid[i] = v - mf_bf16_to_float(q);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float v = g[i] + resid[i];
            uint16_t q = mf_fp16_from_float(v);
            h[i] = q;
            resid[i] = v - mf_fp16_to_float(q);
        }
    }
}

void mf_half_decode(float *restrict g, const uint16_t *restrict h, size_t n, float scale, int bf16)
{
    if (bf16)
        for (size_t i = 0; i < n; i++)
            g[i] = mf_bf16_to_float(h[i]) * scale;
    else
        for (size_t i = 0; i < n; i++)
            g[i] = mf_fp16_to_float(h[i]) * scale;
}

void mf_half_reduce(uint16_t *restrict out, float *restrict resid, const uint16_t *restrict parts, int p, size_t c,
                    int bf16)
{
    /* resid accumulates the sum, rank by rank (vectorises; the same order
     * everywhere), then gives the rounded value up */
    for (int r = 0; r < p; r++) {
        const uint16_t *part = parts + (size_t)r * c;
        if (bf16)
            for (size_t j = 0; j < c; j++)
                resid[j] += mf_bf16_to_float(part[j]);
        else
            for (size_t j = 0; j < c; j++)
                resid[j] += mf_fp16_to_float(part[j]);
    }
    if (bf16)
        for (size_t j = 0; j < c; j++) {
            uint16_t q = mf_bf16_from_float(resid[j]);
            out[j] = q;
            resid[j] -= mf_bf16_to_float(q);
        }
    else
        for (size_t j = 0; j < c; j++) {
            uint16_t q = mf_fp16_from_float(resid[j]);
            out[j] = q;
            resid[j] -= mf_fp16_to_float(q);
        }
}
