/* test_jpeg.c: JPEG round trip, DCT-scaled decode, grayscale and CMYK to RGB,
 * and bad input (empty, not a JPEG, truncated, garbage, forged huge header)
 * failing with MF_STATUS_DATA and a message that says why, with nothing
 * allocated for the forged size and nothing leaked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include "mpifit.h"
#include "data/jpeg.h"
#include "test.h"

/* rgb: (h, w, 3) smooth gradients plus a slow wave, the kind of content JPEG
 * keeps well at high quality. */
static uint8_t *gradient(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * x / (w - 1));
            p[1] = (uint8_t)(255 * y / (h - 1));
            p[2] = (uint8_t)(128 + 100 * sin(x * 0.05) * cos(y * 0.04));
        }
    return rgb;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

/* A TurboJPEG-made JPEG: *out is tjAlloc'ed (tjFree it). */
static int tj_encode(const uint8_t *px, int w, int h, int pf, int samp, unsigned char **out, unsigned long *len)
{
    tjhandle tj = tjInitCompress();
    *out = NULL;
    *len = 0;
    int rc = tjCompress2(tj, px, w, 0, h, pf, out, len, samp, 95, 0);
    if (rc)
        fprintf(stderr, "tjCompress2: %s\n", tjGetErrorStr2(tj));
    tjDestroy(tj);
    return rc;
}

static void test_roundtrip(mf_jpeg_decoder *d)
{
    int w = 160, h = 120;
    uint8_t *rgb = gradient(w, h), *jpg = NULL;
    size_t len = 0;
    MF_CHECK(mf_jpeg_encode(rgb, w, h, 95, &jpg, &len) == MF_STATUS_OK);
    MF_CHECK(jpg != NULL && len > 100 && jpg[0] == 0xFF && jpg[1] == 0xD8);
    /* baseline: SOF0 present, no progressive SOF2 */
    int sof0 = 0, sof2 = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        sof0 |= jpg[i] == 0xFF && jpg[i + 1] == 0xC0;
        sof2 |= jpg[i] == 0xFF && jpg[i + 1] == 0xC2;
    }
    MF_CHECK(sof0 && !sof2);

    int hw = 0, hh = 0;
    MF_CHECK(mf_jpeg_header(d, jpg, len, &hw, &hh) == MF_STATUS_OK);
    MF_CHECK(hw == w && hh == h);

    mf_image_rgb8 im;
    MF_CHECK(mf_jpeg_decode(d, jpg, len, 0, 0, &im) == MF_STATUS_OK);
    MF_CHECK(im.w == w && im.h == h && im.src_w == w && im.src_h == h);
    if (im.w == w && im.h == h) {
        double mae = mean_abs_diff(im.rgb, rgb, (size_t)w * h * 3);
        MF_CHECK_MSG(mae < 3.0, "mean abs error %.3f levels at quality 95", mae);
    }
    mf_free(jpg);
    free(rgb);

    /* bad arguments to the encoder */
    uint8_t px[3] = {1, 2, 3};
    MF_CHECK(mf_jpeg_encode(px, 1, 1, 0, &jpg, &len) == MF_STATUS_INVALID);
    MF_CHECK(jpg == NULL && len == 0 && strstr(mf_last_error(), "quality"));
    MF_CHECK(mf_jpeg_encode(px, 0, 1, 90, &jpg, &len) == MF_STATUS_INVALID);
}

static void test_scaled(mf_jpeg_decoder *d)
{
    int n = 400;
    uint8_t *rgb = gradient(n, n), *jpg = NULL;
    size_t len = 0;
    MF_CHECK(mf_jpeg_encode(rgb, n, n, 95, &jpg, &len) == MF_STATUS_OK);

    mf_image_rgb8 im;
    MF_CHECK(mf_jpeg_decode(d, jpg, len, 100, 100, &im) == MF_STATUS_OK);
    MF_CHECK_MSG(im.w == 100 && im.h == 100, "min 100x100 of 400x400 gave %dx%d, want 1/4", im.w, im.h);
    MF_CHECK(im.src_w == n && im.src_h == n);
    if (im.w == 100 && im.h == 100) {
        /* DCT scaling by 1/4 is close to a 4x4 box average of the original */
        uint8_t *box = malloc(100 * 100 * 3);
        for (int y = 0; y < 100; y++)
            for (int x = 0; x < 100; x++)
                for (int c = 0; c < 3; c++) {
                    int s = 0;
                    for (int dy = 0; dy < 4; dy++)
                        for (int dx = 0; dx < 4; dx++)
                            s += rgb[((size_t)(4 * y + dy) * n + 4 * x + dx) * 3 + c];
                    box[((size_t)y * 100 + x) * 3 + c] = (uint8_t)((s + 8) / 16);
                }
        double mae = mean_abs_diff(im.rgb, box, 100 * 100 * 3);
        MF_CHECK_MSG(mae < 3.0, "1/4-scaled decode differs from the box average by %.3f levels", mae);
        free(box);
    }
    /* the smallest factor that still covers the request, never above 1/1 */
    static const struct {
        int min_w, min_h, want;
    } cases[] = {
        {0, 0, 400},    {101, 101, 150}, {60, 60, 100},   {50, 50, 50},    {1, 1, 50},
        {300, 10, 300}, {10, 301, 350},  {399, 399, 400}, {401, 401, 400}, {1000, 5, 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        MF_CHECK(mf_jpeg_decode(d, jpg, len, cases[i].min_w, cases[i].min_h, &im) == MF_STATUS_OK);
        MF_CHECK_MSG(im.w == cases[i].want && im.h == cases[i].want, "min %dx%d: got %dx%d, want %d", cases[i].min_w,
                     cases[i].min_h, im.w, im.h, cases[i].want);
    }
    mf_free(jpg);
    free(rgb);
}

static void test_grayscale(mf_jpeg_decoder *d)
{
    int w = 96, h = 64;
    uint8_t *g = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            g[y * w + x] = (uint8_t)(20 + 2 * x + y);
    unsigned char *jpg;
    unsigned long len;
    MF_CHECK(tj_encode(g, w, h, TJPF_GRAY, TJSAMP_GRAY, &jpg, &len) == 0);
    mf_image_rgb8 im;
    MF_CHECK(mf_jpeg_decode(d, jpg, len, 0, 0, &im) == MF_STATUS_OK);
    MF_CHECK(im.w == w && im.h == h);
    if (im.w == w && im.h == h) {
        int same = 1;
        double s = 0.0;
        for (int i = 0; i < w * h; i++) {
            const uint8_t *p = im.rgb + 3 * i;
            same &= p[0] == p[1] && p[1] == p[2];
            s += abs((int)p[0] - g[i]);
        }
        MF_CHECK_MSG(same, "grayscale JPEG must decode to R == G == B");
        MF_CHECK_MSG(s / (w * h) < 2.0, "grayscale mean abs error %.3f", s / (w * h));
    }
    tjFree(jpg);
    free(g);
}

/* libjpeg-turbo's own RGB -> CMYK (cmyk.h), which stores inverted CMYK:
 * 255 = no ink, as Photoshop does. */
static void rgb_to_cmyk(const uint8_t *rgb, uint8_t *cmyk)
{
    double c = 1.0 - rgb[0] / 255.0, m = 1.0 - rgb[1] / 255.0, y = 1.0 - rgb[2] / 255.0;
    double k = fmin(fmin(c, m), y);
    if (k == 1.0) {
        c = m = y = 0.0;
    } else {
        c = (c - k) / (1.0 - k);
        m = (m - k) / (1.0 - k);
        y = (y - k) / (1.0 - k);
    }
    cmyk[0] = (uint8_t)(255.0 - c * 255.0 + 0.5);
    cmyk[1] = (uint8_t)(255.0 - m * 255.0 + 0.5);
    cmyk[2] = (uint8_t)(255.0 - y * 255.0 + 0.5);
    cmyk[3] = (uint8_t)(255.0 - k * 255.0 + 0.5);
}

static void test_cmyk(mf_jpeg_decoder *d)
{
    int w = 128, h = 96;
    uint8_t *rgb = gradient(w, h), *cmyk = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++)
        rgb_to_cmyk(rgb + 3 * i, cmyk + 4 * i);
    unsigned char *jpg;
    unsigned long len;
    MF_CHECK(tj_encode(cmyk, w, h, TJPF_CMYK, TJSAMP_444, &jpg, &len) == 0);
    mf_image_rgb8 im;
    MF_CHECK(mf_jpeg_decode(d, jpg, len, 0, 0, &im) == MF_STATUS_OK);
    MF_CHECK(im.w == w && im.h == h);
    if (im.w == w && im.h == h) {
        double mae = mean_abs_diff(im.rgb, rgb, (size_t)w * h * 3);
        MF_CHECK_MSG(mae < 4.0, "CMYK JPEG decodes to RGB with mean abs error %.3f (inverted?)", mae);
    }
    /* DCT scaling works on the CMYK path too (the buffer is 4 bytes a pixel) */
    MF_CHECK(mf_jpeg_decode(d, jpg, len, 32, 24, &im) == MF_STATUS_OK);
    MF_CHECK(im.w == 32 && im.h == 24);
    tjFree(jpg);
    free(cmyk);
    free(rgb);
}

/* Offset of the first marker segment FF <m> before the scan, walking the
 * segments (a byte search could hit FF C0 inside a table); 0 if absent. */
static size_t find_marker(const uint8_t *b, size_t len, uint8_t m)
{
    size_t p = 2;
    while (p + 4 <= len && b[p] == 0xFF && b[p + 1] != 0xDA) {
        if (b[p + 1] == m)
            return p;
        p += 2 + (((size_t)b[p + 2] << 8) | b[p + 3]);
    }
    return 0;
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

/* decode must fail with MF_STATUS_DATA, a message containing `word`, and an
 * empty out */
static void expect_bad(mf_jpeg_decoder *d, const uint8_t *buf, size_t len, const char *word, const char *what)
{
    mf_image_rgb8 im = {(const uint8_t *)"x", 7, 7, 7, 7};
    mf_clear_error();
    mf_status s = mf_jpeg_decode(d, buf, len, 0, 0, &im);
    MF_CHECK_MSG(s == MF_STATUS_DATA, "%s: status %d, want MF_STATUS_DATA", what, (int)s);
    MF_CHECK_MSG(strstr(mf_last_error(), word) != NULL, "%s: message '%s' lacks '%s'", what, mf_last_error(), word);
    MF_CHECK(im.rgb == NULL && im.w == 0 && im.h == 0);
}

static void test_bad_inputs(void)
{
    mf_jpeg_decoder *d = mf_jpeg_decoder_create();
    MF_CHECK(d != NULL);
    int w = 64, h = 48;
    uint8_t *rgb = gradient(w, h), *jpg = NULL;
    size_t len = 0;
    MF_CHECK(mf_jpeg_encode(rgb, w, h, 90, &jpg, &len) == MF_STATUS_OK);

    int hw = 0, hh = 0;
    uint8_t one = 0;
    expect_bad(d, &one, 0, "empty", "0 bytes");
    expect_bad(d, NULL, 0, "empty", "NULL, 0 bytes");

    static const uint8_t png[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13};
    expect_bad(d, png, sizeof png, "not a JPEG", "PNG");
    MF_CHECK_MSG(strstr(mf_last_error(), "89 50 4e 47") != NULL, "message '%s' lacks the bytes", mf_last_error());
    expect_bad(d, png, 1, "not a JPEG", "1 byte");

    expect_bad(d, jpg, len / 2, "truncated", "half a JPEG");
    expect_bad(d, jpg, 3, "truncated", "SOI only");

    uint8_t noise[2048];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)(lcg(&seed) >> 24);
    noise[0] = 0xFF, noise[1] = 0xD8, noise[2] = 0xFF;
    expect_bad(d, noise, sizeof noise, "corrupt", "random bytes after FF D8 FF");
    /* TurboJPEG 2.1 leaves a handle whose header read failed mid-header,
     * failing every later call: the decoder must recover at once */
    mf_image_rgb8 im;
    MF_CHECK_MSG(mf_jpeg_decode(d, jpg, len, 0, 0, &im) == MF_STATUS_OK, "after garbage: %s", mf_last_error());
    MF_CHECK(mf_jpeg_header(d, noise, sizeof noise, &hw, &hh) == MF_STATUS_DATA && hw == 0 && hh == 0);
    MF_CHECK_MSG(mf_jpeg_header(d, jpg, len, &hw, &hh) == MF_STATUS_OK && hw == w && hh == h,
                 "header after garbage: %s", mf_last_error());

    /* cut inside the scan: the header reads fine, decoding hits the end */
    expect_bad(d, jpg, len * 3 / 4, "Premature end", "JPEG cut at 3/4");
    MF_CHECK_MSG(mf_jpeg_decode(d, jpg, len, 0, 0, &im) == MF_STATUS_OK, "after a cut file: %s", mf_last_error());

    /* a valid header then garbage scan data: libjpeg's warnings must fail it */
    uint8_t *mangled = malloc(len);
    memcpy(mangled, jpg, len);
    for (size_t i = len / 2; i + 2 < len; i++)
        mangled[i] = (uint8_t)(lcg(&seed) >> 24);
    mf_status ms = mf_jpeg_decode(d, mangled, len, 0, 0, &im);
    MF_CHECK_MSG(ms == MF_STATUS_DATA, "garbage scan data decoded (status %d)", (int)ms);
    free(mangled);

    /* SOF0 patched to claim 60000x60000: FF C0, length(2), precision(1), height(2), width(2) */
    uint8_t *big = malloc(len);
    memcpy(big, jpg, len);
    size_t sof = find_marker(big, len, 0xC0);
    MF_CHECK(sof > 0 && sof + 9 < len);
    big[sof + 5] = 60000 >> 8, big[sof + 6] = 60000 & 0xFF;
    big[sof + 7] = 60000 >> 8, big[sof + 8] = 60000 & 0xFF;
    MF_CHECK(mf_jpeg_header(d, big, len, &hw, &hh) == MF_STATUS_OK);
    MF_CHECK(hw == 60000 && hh == 60000);
    size_t bytes0 = mf_alloc_live_bytes(); /* growing the decoder for 60000^2 would show here */
    expect_bad(d, big, len, "limit", "SOF0 claiming 60000x60000");
    MF_CHECK(strstr(mf_last_error(), "60000x60000") != NULL);
    MF_CHECK_MSG(mf_alloc_live_bytes() == bytes0, "a forged size grew the decoder by %zu bytes",
                 mf_alloc_live_bytes() - bytes0);
    free(big);

    /* the header reader refuses the same inputs */
    MF_CHECK(mf_jpeg_header(d, png, sizeof png, &hw, &hh) == MF_STATUS_DATA);
    MF_CHECK(mf_jpeg_header(d, png, 0, &hw, &hh) == MF_STATUS_DATA);
    MF_CHECK(mf_jpeg_header(d, noise, sizeof noise, &hw, &hh) == MF_STATUS_DATA);

    /* and the decoder still works after all those failures */
    MF_CHECK_MSG(mf_jpeg_decode(d, jpg, len, 0, 0, &im) == MF_STATUS_OK, "after failures: %s", mf_last_error());
    MF_CHECK(im.w == w && im.h == h);

    mf_free(jpg);
    free(rgb);
    mf_jpeg_decoder_free(d);
}

int main(void)
{
    mf_jpeg_decoder *d = mf_jpeg_decoder_create();
    MF_CHECK(d != NULL);
    if (d) {
        test_roundtrip(d);
        test_scaled(d);
        test_grayscale(d);
        test_cmyk(d);
    }
    mf_jpeg_decoder_free(d);
    mf_jpeg_decoder_free(NULL);
    test_bad_inputs();
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu mf_alloc blocks leaked", mf_alloc_live_count());
    return mf_test_report();
}
