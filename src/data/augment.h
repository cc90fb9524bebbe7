/* augment.h: per-sample augmentation decisions (where to crop, whether to flip),
 * drawn from a per-sample rng so that a sample's augmentation depends only on
 * (seed, epoch, sample) and never on thread scheduling or world size. */
#ifndef MF_AUGMENT_H
#define MF_AUGMENT_H
#include "mpifit/data.h"
#include "mpifit/rng.h"
#include "resize.h"

/* The rng of sample `index` in `epoch`. */
void mf_augment_rng(mf_rng *r, uint64_t seed, int epoch, int index);
/* Inception-style random resized crop of a w x h image: area fraction uniform in
 * [scale_min, 1], log aspect ratio uniform in [-log r, log r], up to 10 tries,
 * else the whole image; flip with probability 1/2 when flip is set. */
void mf_augment_sample(mf_crop *crop, int *flipped, int w, int h, float scale_min, float ratio_max, int flip,
                       mf_rng *r);
/* The side TurboJPEG should decode at least, so a crop still has input_size
 * pixels across: input_size / sqrt(scale_min) when augmenting. */
int mf_augment_decode_side(int input_size, int augment, float scale_min);
#endif
