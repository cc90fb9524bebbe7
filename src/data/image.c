/* image.c: one image file to a model input, outside the loader (predict). */
#include <string.h>
#include "sources.h"
#include "jpeg.h"
#include "resize.h"

mf_status mf_image_load(const char *path, int input_size, float *x)
{
    mf_dataset *ds = mf_ds_alloc(&mf_dirset_source, path);
    mf_ds_push(ds, 0, path, 0, 0);
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    mf_status s = mf_dataset_read(ds, 0, &buf, &cap, &len);
    mf_jpeg_decoder *dec = mf_jpeg_decoder_create();
    mf_image_rgb8 img;
    if (s == MF_STATUS_OK)
        s = mf_jpeg_decode(dec, buf, len, input_size, input_size, &img);
    if (s == MF_STATUS_OK) {
        size_t need = mf_resize_scratch_floats(input_size, input_size, img.w, img.h);
        float *scratch = mf_alloc(need * sizeof(float));
        mf_crop crop = {0.0f, 0.0f, (float)img.w, (float)img.h};
        mf_resize_rgb8(x, input_size, input_size, img.rgb, img.w, img.h, crop, 0, 1.0f / 127.5f, -1.0f, scratch);
        mf_free(scratch);
    } else {
        char why[768];
        mf_strlcpy(why, mf_last_error(), sizeof why);
        s = mf_fail(s, "%s: %s", path, why);
    }
    mf_jpeg_decoder_free(dec);
    mf_free(buf);
    mf_dataset_free(ds);
    return s;
}
