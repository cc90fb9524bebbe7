/* resize.c: crop + resize + flip + scale, RGB8 -> float32, separable.
 *
 * Matches tf.image.resize(method="bilinear", antialias=False) on a crop when
 * the box is at most 2x the output, and tf.image.resize(method="area") when it
 * shrinks more (both with half-pixel centres), chosen per axis. Edges clamp to
 * the crop, not to the whole image, so the result is exactly "crop, then
 * resize" (Keras' crop_to_aspect_ratio + resize) even when upsampling reads
 * past the first/last pixel centre.
 *
 * Each axis's taps are computed once per call into scratch: output i reads k
 * consecutive source pixels from first[i] with weights summing to 1, clamped
 * taps folded onto the edge pixel. Then, per output row, the vertical taps
 * blend source rows into one float row (a contiguous loop the compiler
 * vectorises), and the horizontal taps read that row. Conventions: images
 * (h, w, 3) interleaved, x = column, y = row. */
#include <math.h>
#include "../core/core.h"
#include "resize.h"

/* Crop edges within this of an integer count as that integer: augmentation's
 * float arithmetic gives x0 + w = 224.00002 for a crop that ends at 224, and
 * pixel 224 must not be pulled in by the right-edge taps. */
#define EDGE_EPS 1e-3

/* Largest k the scratch reserves for an axis of n source pixels resized to d:
 * area averaging over a box of r = cw/d <= n/d pixels touches at most
 * ceil(r) + 1 of them; +1 more for a crop over-running by EDGE_EPS. */
static size_t max_taps(int d, int n) { return (size_t)(n / d) + 3; }

size_t mf_resize_scratch_floats(int dw, int dh, int sw, int sh)
{
    MF_ASSERT(dw > 0 && dh > 0 && sw > 0 && sh > 0);
    return (size_t)dw * (max_taps(dw, sw) + 1) /* x weights (dw, kx) + offsets (dw) */
        + (size_t)dh * (max_taps(dh, sh) + 1) /* y weights (dh, ky) + first rows (dh) */
        + (size_t)sw * 3; /* one vertically blended row (<= sw, 3) */
}

/* One axis of the filter. */
typedef struct axis {
    int k; /* taps per output pixel */
    int lo, hi; /* source pixels the crop touches, inclusive */
    float *w; /* (d, k) weights, each row sums to 1 */
    float *first; /* (d) first source pixel minus lo; a float, exact below 2^24 */
} axis;

static void add_tap(float *w, int k, int lo, int hi, int first, int j, double wt, double *sum)
{
    int c = j < lo ? lo : j > hi ? hi : j; /* clamp to the edge pixel */
    int slot = c - first;
    /* only round-off puts a tap outside the window, with a weight of ~0 */
    slot = slot < 0 ? 0 : slot >= k ? k - 1 : slot;
    w[slot] += (float)wt;
    *sum += wt;
}

/* Taps for d outputs over the source interval [c0, c0 + cw) of an axis of n
 * pixels. w: (d, k) and first: (d), k <= max_taps(d, n); w must be zeroed. */
static axis axis_taps(float *w, float *first, int d, double c0, double cw, int n)
{
    axis a = {0, 0, 0, w, first};
    a.lo = (int)floor(c0 + EDGE_EPS);
    a.hi = (int)ceil(c0 + cw - EDGE_EPS) - 1;
    a.lo = a.lo < 0 ? 0 : a.lo > n - 1 ? n - 1 : a.lo;
    a.hi = a.hi < a.lo ? a.lo : a.hi > n - 1 ? n - 1 : a.hi;
    double r = cw / d; /* source pixels per output pixel */
    int area = r > 2.0;
    int span = a.hi - a.lo + 1;
    a.k = area ? (int)ceil(r) + 1 : 2;
    if (a.k > span)
        a.k = span;
    MF_ASSERT((size_t)a.k <= max_taps(d, n));

    for (int i = 0; i < d; i++) {
        float *wi = w + (size_t)i * a.k;
        double sum = 0.0;
        if (area) {
            /* box [b0, b1): each pixel j weighs its covered length */
            double b0 = c0 + i * r, b1 = b0 + r;
            int j0 = (int)floor(b0), j1 = (int)ceil(b1) - 1;
            int f = j0 < a.lo ? a.lo : j0 > a.hi ? a.hi : j0;
            if (f > a.hi - a.k + 1)
                f = a.hi - a.k + 1;
            for (int j = j0; j <= j1; j++) {
                double ov = fmin(b1, j + 1.0) - fmax(b0, (double)j);
                if (ov > 0.0)
                    add_tap(wi, a.k, a.lo, a.hi, f, j, ov, &sum);
            }
            first[i] = (float)(f - a.lo);
        } else {
            /* half-pixel centres: output centre i + 0.5 maps to c0 + (i + 0.5) r */
            double x = c0 + (i + 0.5) * r - 0.5;
            int j = (int)floor(x);
            double t = x - j;
            int f = j < a.lo ? a.lo : j > a.hi ? a.hi : j;
            if (f > a.hi - a.k + 1)
                f = a.hi - a.k + 1;
            add_tap(wi, a.k, a.lo, a.hi, f, j, 1.0 - t, &sum);
            add_tap(wi, a.k, a.lo, a.hi, f, j + 1, t, &sum);
            first[i] = (float)(f - a.lo);
        }
        /* renormalise: the area sum is r only up to round-off */
        MF_ASSERT(sum > 0.0);
        float inv = (float)(1.0 / sum);
        if (inv != 1.0f)
            for (int t = 0; t < a.k; t++)
                wi[t] *= inv;
    }
    return a;
}

void mf_resize_rgb8(float *dst, int dw, int dh, const uint8_t *src, int sw, int sh, mf_crop crop, int flip, float scale,
                    float offset, float *scratch)
{
    MF_ASSERT(dst && src && scratch && dw > 0 && dh > 0 && sw > 0 && sh > 0);
    /* offsets are stored as floats: 3 * sw must stay exact */
    MF_ASSERT(sw <= (1 << 22) && sh <= (1 << 22));
    MF_ASSERT(crop.w > 0.0f && crop.h > 0.0f);
    MF_ASSERT(crop.x0 >= -EDGE_EPS && crop.x0 + crop.w <= sw + EDGE_EPS);
    MF_ASSERT(crop.y0 >= -EDGE_EPS && crop.y0 + crop.h <= sh + EDGE_EPS);

    size_t kxc = max_taps(dw, sw), kyc = max_taps(dh, sh);
    float *xw = scratch; /* (dw, kx) */
    float *xoff = xw + (size_t)dw * kxc; /* (dw) */
    float *yw = xoff + dw; /* (dh, ky) */
    float *yfirst = yw + (size_t)dh * kyc; /* (dh) */
    float *row = yfirst + dh; /* (nx, 3) */
    for (float *p = scratch; p < row; p++)
        *p = 0.0f;

    axis ax = axis_taps(xw, xoff, dw, crop.x0, crop.w, sw);
    axis ay = axis_taps(yw, yfirst, dh, crop.y0, crop.h, sh);
    int kx = ax.k, ky = ay.k;
    for (int i = 0; i < dw; i++) /* pixel offset -> float offset in row */
        xoff[i] *= 3.0f;
    size_t n3 = (size_t)(ax.hi - ax.lo + 1) * 3;
    size_t stride = (size_t)sw * 3;

    for (int y = 0; y < dh; y++) {
        /* vertical: row = sum_t wy[t] * src[first + t][lo .. hi] */
        const float *wy = yw + (size_t)y * ky;
        const uint8_t *s0 = src + ((size_t)(ay.lo + (int)yfirst[y])) * stride + (size_t)ax.lo * 3;
        float w0 = wy[0];
        for (size_t j = 0; j < n3; j++)
            row[j] = w0 * s0[j];
        for (int t = 1; t < ky; t++) {
            float wt = wy[t];
            if (wt == 0.0f) /* bilinear on a pixel centre: skip the dead tap */
                continue;
            const uint8_t *st = s0 + (size_t)t * stride;
            for (size_t j = 0; j < n3; j++)
                row[j] += wt * st[j];
        }
        /* horizontal, with the flip folded into where the result goes */
        float *drow = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            const float *p = row + (size_t)xoff[x];
            const float *wx = xw + (size_t)x * kx;
            float r = 0.0f, g = 0.0f, b = 0.0f;
            for (int t = 0; t < kx; t++) {
                r += wx[t] * p[3 * t];
                g += wx[t] * p[3 * t + 1];
                b += wx[t] * p[3 * t + 2];
            }
            float *o = drow + 3 * (size_t)(flip ? dw - 1 - x : x);
            o[0] = r * scale + offset;
            o[1] = g * scale + offset;
            o[2] = b * scale + offset;
        }
    }
}
