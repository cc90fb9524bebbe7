/* jpeg.h: JPEG decoding with libjpeg-turbo's TurboJPEG API.
 *
 * One decoder per thread (a TurboJPEG handle is not thread-safe). The decoder
 * uses TurboJPEG's DCT-domain scaling (tjGetScalingFactors): a 500x500 photo
 * wanted at 224x224 is decoded at 1/2 scale (250x250) for a quarter of the
 * work, then resized. Output is always interleaved RGB8: TurboJPEG converts
 * grayscale and YCbCr; CMYK/YCCK JPEGs (which TurboJPEG 2.1 only decodes to
 * CMYK) are converted in jpeg.c with the naive formula, inverted (Adobe)
 * storage assumed when an APP14 "Adobe" marker is present. EXIF orientation is
 * ignored (as Keras' image_dataset_from_directory does). */
#ifndef MF_JPEG_H
#define MF_JPEG_H
#include <stddef.h>
#include <stdint.h>
#include "mpifit/status.h"

/* Largest image accepted, checked from the header before any pixel buffer is
 * allocated: a corrupt or hostile header claiming 60000x60000 is refused. */
#define MF_JPEG_MAX_PIXELS (64u * 1024u * 1024u)
#define MF_JPEG_MAX_SIDE 32768

typedef struct mf_jpeg_decoder mf_jpeg_decoder;

/* An RGB8 image owned by the decoder: valid until the next decode call. */
typedef struct mf_image_rgb8 {
    const uint8_t *rgb; /* (h, w, 3) interleaved */
    int w, h; /* decoded (possibly DCT-scaled) size */
    int src_w, src_h; /* size stored in the file */
} mf_image_rgb8;

mf_jpeg_decoder *mf_jpeg_decoder_create(void);
void mf_jpeg_decoder_free(mf_jpeg_decoder *d); /* NULL is a no-op */

/* Decode buf[0..len) to RGB8 at the smallest DCT scale whose output is still at
 * least min_w x min_h (0, 0: full size). Never crashes on bad input; fails with
 * MF_STATUS_DATA and a reason in mf_last_error() (without the path, which the
 * caller adds): "empty file (0 bytes)", "not a JPEG (starts with 89 50 4e 47)",
 * "truncated or corrupt JPEG: <libjpeg message>", "image is 60000x60000, larger
 * than the limit of ...". Truncated data is an error, not a gray-filled image. */
mf_status mf_jpeg_decode(mf_jpeg_decoder *d, const uint8_t *buf, size_t len, int min_w, int min_h, mf_image_rgb8 *out);

/* Read just the header: image size and whether it is a JPEG at all. Reports
 * the stored size as is (no MF_JPEG_MAX_* check: only decoding refuses large
 * images); same MF_STATUS_DATA messages as mf_jpeg_decode for bad input. */
mf_status mf_jpeg_header(mf_jpeg_decoder *d, const uint8_t *buf, size_t len, int *w, int *h);

/* Encode RGB8 (h, w, 3) as a baseline JPEG of the given quality (1..100) with
 * 4:2:0 subsampling. *out is mf_alloc'ed; the caller mf_free's it (on failure
 * *out is NULL). Bad size or quality: MF_STATUS_INVALID; TurboJPEG failure:
 * MF_STATUS_DATA. */
/* "2.1+" or "2.0": the TurboJPEG API compiled against. */
const char *mf_jpeg_api_version(void);

mf_status mf_jpeg_encode(const uint8_t *rgb, int w, int h, int quality, uint8_t **out, size_t *out_len);
#endif
