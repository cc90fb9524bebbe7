/* test_resize.c: crop + resize + flip + scale against values worked out
 * independently: constants stay constant, identity is exact, bilinear matches
 * the half-pixel-centre formula, area shrinking anti-aliases a checkerboard and
 * equals block means, flip mirrors, crops select their region. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "data/resize.h"
#include "test.h"

/* Resize with freshly malloc'ed scratch (poisoned with NaN, so a read of an
 * unwritten scratch float shows up in the output) and return the result. */
static float *run(const uint8_t *src, int sw, int sh, int dw, int dh, mf_crop crop, int flip, float scale, float offset)
{
    size_t n = mf_resize_scratch_floats(dw, dh, sw, sh);
    float *scratch = malloc(n * sizeof *scratch);
    for (size_t i = 0; i < n; i++)
        scratch[i] = NAN;
    float *dst = malloc((size_t)dw * dh * 3 * sizeof *dst);
    mf_resize_rgb8(dst, dw, dh, src, sw, sh, crop, flip, scale, offset, scratch);
    free(scratch);
    return dst;
}

static mf_crop whole(int w, int h) { return (mf_crop){0.0f, 0.0f, (float)w, (float)h}; }

static void test_constant(void)
{
    int sw = 37, sh = 23;
    uint8_t *src = malloc((size_t)sw * sh * 3);
    for (int i = 0; i < sw * sh; i++)
        src[3 * i] = 200, src[3 * i + 1] = 17, src[3 * i + 2] = 255;
    /* up, down by < 2x and > 2x, mixed per axis, fractional crops: every
     * output weight row must sum to 1 */
    static const struct {
        int dw, dh;
        mf_crop c;
    } cases[] = {
        {37, 23, {0, 0, 37, 23}},
        {100, 61, {0, 0, 37, 23}},
        {20, 15, {0, 0, 37, 23}},
        {5, 3, {0, 0, 37, 23}},
        {4, 50, {0, 0, 37, 23}},
        {1, 1, {0, 0, 37, 23}},
        {7, 9, {3.3f, 1.7f, 30.1f, 20.2f}},
        {64, 64, {10.5f, 5.25f, 2.5f, 0.75f}},
        {3, 3, {36.2f, 22.1f, 0.8f, 0.9f}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int dw = cases[k].dw, dh = cases[k].dh;
        float *d = run(src, sw, sh, dw, dh, cases[k].c, (int)(k & 1), 1.0f, 0.0f);
        double err = 0.0;
        for (int i = 0; i < dw * dh; i++) {
            err = fmax(err, fabs(d[3 * i] - 200.0));
            err = fmax(err, fabs(d[3 * i + 1] - 17.0));
            err = fmax(err, fabs(d[3 * i + 2] - 255.0));
        }
        MF_CHECK_MSG(err < 1e-3, "case %zu (%dx%d): constant image off by %g", k, dw, dh, err);
        free(d);
    }
    free(src);
}

static void test_identity(void)
{
    int sw = 31, sh = 17;
    uint8_t *src = malloc((size_t)sw * sh * 3);
    uint32_t s = 7;
    for (int i = 0; i < sw * sh * 3; i++)
        src[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
    float *d = run(src, sw, sh, sw, sh, whole(sw, sh), 0, 1.0f, 0.0f);
    int exact = 1;
    for (int i = 0; i < sw * sh * 3; i++)
        exact &= d[i] == (float)src[i];
    MF_CHECK_MSG(exact, "same-size resize of the whole image must copy exactly");
    free(d);
    free(src);
}

/* a horizontal ramp src(x) = 10 + 20 x, 2x up: the half-pixel-centre bilinear
 * value, clamped at the edges, computed here in double */
static void test_bilinear_ramp(void)
{
    int sw = 12, sh = 3, dw = 24, dh = 6;
    uint8_t *src = malloc((size_t)sw * sh * 3);
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++)
            for (int c = 0; c < 3; c++)
                src[(y * sw + x) * 3 + c] = (uint8_t)(10 + 20 * x + c);
    float *d = run(src, sw, sh, dw, dh, whole(sw, sh), 0, 1.0f, 0.0f);
    double worst = 0.0;
    for (int y = 0; y < dh; y++)
        for (int i = 0; i < dw; i++) {
            double x = (i + 0.5) * sw / dw - 0.5;
            double xc = x < 0 ? 0 : x > sw - 1 ? sw - 1 : x; /* clamp-to-edge of a linear ramp */
            for (int c = 0; c < 3; c++) {
                double want = 10 + 20 * xc + c;
                worst = fmax(worst, fabs(d[(y * dw + i) * 3 + c] - want));
            }
        }
    MF_CHECK_MSG(worst < 1e-4, "bilinear 2x ramp off by %g", worst);
    /* two spot values by hand: i = 0 -> x = -0.25 clamps to 10; i = 3 -> x = 1.25 -> 35 */
    MF_CHECK_NEAR(d[0], 10.0, 1e-5);
    MF_CHECK_NEAR(d[3 * 3], 35.0, 1e-5);
    free(d);
    free(src);
}

static void test_area(void)
{
    /* 1-pixel checkerboard: every output of an 8x shrink covers 32 black and
     * 32 white pixels; at 64 -> 7 (9.14x) a box covers fractions, and area
     * averaging still stays within 127.5/r^2 of the mean, where bilinear
     * would land ~0.93/0.07 of the way between two pixels */
    int n = 64;
    uint8_t *src = malloc((size_t)n * n * 3);
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            memset(src + ((size_t)y * n + x) * 3, ((x + y) & 1) ? 255 : 0, 3);
    static const struct {
        int d;
        double tol;
    } cases[] = {{8, 1e-3}, {7, 2.0}, {5, 2.0}, {3, 1.0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int dn = cases[k].d;
        float *d = run(src, n, n, dn, dn, whole(n, n), 0, 1.0f, 0.0f);
        double worst = 0.0;
        for (int i = 0; i < dn * dn * 3; i++)
            worst = fmax(worst, fabs(d[i] - 127.5));
        MF_CHECK_MSG(worst <= cases[k].tol, "checkerboard 64 -> %d: off the mean by %g", dn, worst);
        free(d);
    }
    /* integer factor 4: exactly the 4x4 block means of a random image */
    uint32_t s = 99;
    for (int i = 0; i < n * n * 3; i++)
        src[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
    float *d = run(src, n, n, 16, 16, whole(n, n), 0, 1.0f, 0.0f);
    double worst = 0.0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            for (int c = 0; c < 3; c++) {
                double m = 0.0;
                for (int dy = 0; dy < 4; dy++)
                    for (int dx = 0; dx < 4; dx++)
                        m += src[((size_t)(4 * y + dy) * n + 4 * x + dx) * 3 + c];
                worst = fmax(worst, fabs(d[(y * 16 + x) * 3 + c] - m / 16.0));
            }
    MF_CHECK_MSG(worst < 1e-3, "4x area shrink differs from block means by %g", worst);
    free(d);
    free(src);
}

static void test_flip_scale(void)
{
    int sw = 29, sh = 19, dw = 13, dh = 11;
    uint8_t *src = malloc((size_t)sw * sh * 3);
    uint32_t s = 3;
    for (int i = 0; i < sw * sh * 3; i++)
        src[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
    mf_crop c = {2.5f, 1.0f, 20.0f, 15.5f};
    float *a = run(src, sw, sh, dw, dh, c, 0, 1.0f, 0.0f);
    float *b = run(src, sw, sh, dw, dh, c, 1, 1.0f, 0.0f);
    int mirrored = 1;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int ch = 0; ch < 3; ch++)
                mirrored &= b[(y * dw + x) * 3 + ch] == a[(y * dw + dw - 1 - x) * 3 + ch];
    MF_CHECK_MSG(mirrored, "flip must mirror the unflipped output exactly");
    free(a);
    free(b);
    free(src);

    /* scale 1/127.5, offset -1: 255 -> 1, 0 -> -1 (MobileNetV2's preprocessing) */
    uint8_t px[2 * 1 * 3] = {255, 255, 255, 0, 0, 0};
    float *d = run(px, 2, 1, 2, 1, whole(2, 1), 0, 1.0f / 127.5f, -1.0f);
    MF_CHECK_NEAR(d[0], 1.0, 1e-6);
    MF_CHECK_NEAR(d[2], 1.0, 1e-6);
    MF_CHECK_NEAR(d[3], -1.0, 1e-6);
    MF_CHECK_NEAR(d[5], -1.0, 1e-6);
    free(d);
}

static void test_crop(void)
{
    /* 16x16 with quadrants red, green / blue, white */
    static const uint8_t col[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    int n = 16;
    uint8_t *src = malloc((size_t)n * n * 3);
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            memcpy(src + ((size_t)y * n + x) * 3, col[(y >= 8) * 2 + (x >= 8)], 3);
    /* each quadrant at 4x (area), 1x (copy) and 3x up (bilinear, whose edge
     * taps must clamp to the crop and not pull in the neighbouring quadrant) */
    static const int sizes[] = {2, 8, 24};
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < 3; k++) {
            int dn = sizes[k];
            mf_crop c = {(float)(8 * (q & 1)), (float)(8 * (q >> 1)), 8.0f, 8.0f};
            float *d = run(src, n, n, dn, dn, c, 0, 1.0f, 0.0f);
            double worst = 0.0;
            for (int i = 0; i < dn * dn; i++)
                for (int ch = 0; ch < 3; ch++)
                    worst = fmax(worst, fabs(d[3 * i + ch] - col[q][ch]));
            MF_CHECK_MSG(worst < 1e-3, "quadrant %d at %dx%d: off its colour by %g", q, dn, dn, worst);
            free(d);
        }
    /* float round-off in a crop's end (8.0001 for 8) must not pull in the
     * neighbouring quadrant's first column at the clamped edge */
    mf_crop sloppy = {0.0f, 0.0f, 8.0001f, 7.9999f};
    float *e = run(src, n, n, 24, 24, sloppy, 0, 1.0f, 0.0f);
    double off = 0.0;
    for (int i = 0; i < 24 * 24; i++)
        for (int ch = 0; ch < 3; ch++)
            off = fmax(off, fabs(e[3 * i + ch] - col[0][ch]));
    MF_CHECK_MSG(off < 0.1, "crop 8.0001 wide: red quadrant off by %g", off);
    free(e);

    /* a crop straddling the vertical border: left half red, right half green */
    mf_crop c = {4.0f, 0.0f, 8.0f, 8.0f};
    float *d = run(src, n, n, 8, 8, c, 0, 1.0f, 0.0f);
    MF_CHECK_NEAR(d[0], 255.0, 1e-4); /* (0,0) red */
    MF_CHECK_NEAR(d[1], 0.0, 1e-4);
    MF_CHECK_NEAR(d[(7 * 8 + 7) * 3 + 1], 255.0, 1e-4); /* (7,7) green */
    MF_CHECK_NEAR(d[(7 * 8 + 7) * 3 + 0], 0.0, 1e-4);
    free(d);
    free(src);
}

int main(void)
{
    test_constant();
    test_identity();
    test_bilinear_ramp();
    test_area();
    test_flip_scale();
    test_crop();
    MF_CHECK(mf_alloc_live_count() == 0);
    return mf_test_report();
}
