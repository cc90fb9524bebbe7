/* resize.h: crop + resize + flip + scale of an RGB8 image into float32, in one
 * pass (the last step of decoding, where augmentation's random crop and flip cost
 * nothing extra).
 *
 * Sampling uses pixel centres (TensorFlow's half_pixel_centers / PIL): output
 * pixel i samples source coordinate x0 + (i + 0.5) * cw / dw - 0.5. When the
 * box is at most 2x the output along an axis the filter is bilinear (2 taps,
 * edges clamped to the crop's pixels, so the result equals cropping and then
 * resizing); when it shrinks by more than 2x it is area averaging (every
 * source pixel the output pixel covers, weighted by the covered fraction), so a
 * 500 px photo shrunk to 96 px does not alias. The two axes are separable and
 * each chooses its own filter. */
#ifndef MF_RESIZE_H
#define MF_RESIZE_H
#include <stdint.h>

typedef struct mf_crop {
    float x0, y0; /* top-left corner in source pixels */
    float w, h; /* extent in source pixels, > 0, inside the image */
} mf_crop;

/* dst: (dh, dw, 3) floats = src_sample * scale + offset; flip mirrors
 * horizontally. src: (sh, sw, 3) RGB8. scratch: at least
 * mf_resize_scratch_floats(dw, dh, sw, sh) floats. Thread-safe. */
void mf_resize_rgb8(float *dst, int dw, int dh, const uint8_t *src, int sw, int sh, mf_crop crop, int flip, float scale,
                    float offset, float *scratch);
size_t mf_resize_scratch_floats(int dw, int dh, int sw, int sh);
#endif
