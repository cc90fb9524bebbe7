/* mpifit/rng.h: the one random number generator (xoshiro256**, seeded by splitmix64).
 *
 * A plain value type so that its state can be checkpointed and restored exactly:
 * the same seed gives the same stream on every platform. */
#ifndef MPIFIT_RNG_H
#define MPIFIT_RNG_H
#include <stdint.h>
#include "mpifit/version.h"

typedef struct mf_rng {
    uint64_t s[4];
} mf_rng;

/* Seed from one 64-bit value (any value, 0 included). */
MF_API void mf_rng_seed(mf_rng *r, uint64_t seed);
/* Derive an independent stream, e.g. per rank: mf_rng_seed2(&r, seed, rank). */
MF_API void mf_rng_seed2(mf_rng *r, uint64_t seed, uint64_t stream);
MF_API uint64_t mf_rng_u64(mf_rng *r);
/* Uniform in [0, 1), 24 random bits. */
MF_API float mf_rng_uniform(mf_rng *r);
/* Uniform integer in [0, n), without modulo bias. n > 0. */
MF_API uint32_t mf_rng_below(mf_rng *r, uint32_t n);
/* Standard normal (Box-Muller). */
MF_API float mf_rng_normal(mf_rng *r);
#endif
