/* fuzz_jpeg.c: libFuzzer target for what a loader thread does with one image
 * file (prefetch.c): mf_jpeg_header, mf_jpeg_decode at the DCT scale the model
 * input asks for, the random resized crop (mf_augment_sample) or the whole
 * image, and mf_resize_rgb8 into [-1, 1] floats.
 *
 * Input: 4 bytes of parameters, then the file.
 *   [0] input side - 1 (1..64)      [1] bit 0 augment, bit 1 flip
 *   [2] crop scale_min, 0.05 + [2]/255 * 0.95     [3] augmentation rng seed
 * One decoder for the whole run, as a loader thread keeps one: a file that
 * leaves it in a bad state shows up in the files after it.
 *
 * Oracle beyond the sanitizers: the header and the decode agree on the size,
 * the DCT-scaled size covers what was asked for (or is the full size), and
 * every output value is in [-1, 1] (the filters' weights are convex). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "mpifit.h"
#include "data/augment.h"
#include "data/jpeg.h"
#include "data/resize.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_jpeg: %s\n", what);
    abort();
}

/* The decoder keeps one pixel buffer (grown, never shrunk) from its first
 * decode on; anything more is a leak. */
static void check_alloc(size_t live0)
{
    if (mf_alloc_live_count() > live0 + 1) {
        fprintf(stderr, "fuzz_jpeg: %zu mf_alloc blocks live, the decoder keeps one\n",
                mf_alloc_live_count() - live0);
        abort();
    }
}

static mf_jpeg_decoder *dec;
static size_t live0; /* with the decoder, before its pixel buffer */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!(dec = mf_jpeg_decoder_create()))
        fail("cannot create a decoder");
    live0 = mf_alloc_live_count();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int side = 1 + data[0] % 64, augment = data[1] & 1, flip = (data[1] >> 1) & 1;
    float scale_min = 0.05f + 0.95f * (float)data[2] / 255.0f;
    uint64_t seed = data[3];
    const uint8_t *file = data + 4;
    size_t len = size - 4;

    int hw = 0, hh = 0;
    mf_status hs = mf_jpeg_header(dec, file, len, &hw, &hh);
    int want = mf_augment_decode_side(side, augment, scale_min);
    mf_image_rgb8 img;
    mf_status s = mf_jpeg_decode(dec, file, len, want, want, &img);
    if (s != MF_STATUS_OK) {
        if (s != MF_STATUS_DATA && s != MF_STATUS_NOMEM)
            fail("decode failed with a status other than DATA");
        check_alloc(live0);
        return 0;
    }
    if (hs != MF_STATUS_OK || hw != img.src_w || hh != img.src_h)
        fail("mf_jpeg_header and mf_jpeg_decode disagree about the image");
    if (img.w <= 0 || img.h <= 0 || img.w > img.src_w || img.h > img.src_h)
        fail("decoded size outside (0, stored size]");
    if ((img.w < want || img.h < want) && (img.w != img.src_w || img.h != img.src_h))
        fail("DCT-scaled below the size asked for");

    mf_crop crop = {0.0f, 0.0f, (float)img.w, (float)img.h};
    int flipped = 0;
    if (augment) {
        mf_rng r;
        mf_augment_rng(&r, seed, 0, 0);
        mf_augment_sample(&crop, &flipped, img.w, img.h, scale_min, 4.0f / 3.0f, flip, &r);
    }
    size_t nscratch = mf_resize_scratch_floats(side, side, img.w, img.h);
    float *scratch = mf_alloc(nscratch * sizeof *scratch);
    float *x = mf_alloc((size_t)side * side * 3 * sizeof *x);
    mf_resize_rgb8(x, side, side, img.rgb, img.w, img.h, crop, flipped, 1.0f / 127.5f, -1.0f, scratch);
    for (size_t i = 0; i < (size_t)side * side * 3; i++)
        if (!(x[i] >= -1.0001f && x[i] <= 1.0001f))
            fail("a resized value outside [-1, 1]");
    mf_free(x);
    mf_free(scratch);
    check_alloc(live0);
    return 0;
}
