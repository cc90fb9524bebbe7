/* augment.c: random resized crop and horizontal flip (torchvision's
 * RandomResizedCrop, Keras' RandomCrop/RandomFlip), decided per sample. */
#include <math.h>
#include "augment.h"
#include "../core/core.h"

void mf_augment_rng(mf_rng *r, uint64_t seed, int epoch, int index)
{
    mf_rng_seed2(r, seed ^ (0xA0A0A0A0ull * (uint64_t)(epoch + 1)), (uint64_t)index);
}

void mf_augment_sample(mf_crop *crop, int *flipped, int w, int h, float scale_min, float ratio_max, int flip, mf_rng *r)
{
    crop->x0 = 0.0f;
    crop->y0 = 0.0f;
    crop->w = (float)w;
    crop->h = (float)h;
    float area = (float)w * (float)h;
    float lr = logf(ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        float a = area * (scale_min + (1.0f - scale_min) * mf_rng_uniform(r));
        float ratio = expf(-lr + 2.0f * lr * mf_rng_uniform(r));
        float cw = sqrtf(a * ratio), ch = sqrtf(a / ratio);
        if (cw <= (float)w && ch <= (float)h) {
            crop->w = cw;
            crop->h = ch;
            crop->x0 = ((float)w - cw) * mf_rng_uniform(r);
            crop->y0 = ((float)h - ch) * mf_rng_uniform(r);
            break;
        }
    }
    *flipped = flip ? mf_rng_uniform(r) < 0.5f : 0;
}

int mf_augment_decode_side(int input_size, int augment, float scale_min)
{
    if (!augment || scale_min >= 1.0f)
        return input_size;
    return (int)ceilf((float)input_size / sqrtf(scale_min));
}
