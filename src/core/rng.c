/* rng.c: xoshiro256** (Blackman & Vigna, 2018), seeded through splitmix64 so that
 * any 64-bit seed, 0 included, gives a well-mixed state. */
#include <math.h>
#include "core.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void mf_rng_seed(mf_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

void mf_rng_seed2(mf_rng *r, uint64_t seed, uint64_t stream)
{
    /* Mix the stream id through splitmix before combining, so (seed, 1) and
     * (seed + 1, 0) are unrelated streams. */
    uint64_t x = stream;
    mf_rng_seed(r, seed ^ splitmix64(&x));
}

uint64_t mf_rng_u64(mf_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float mf_rng_uniform(mf_rng *r) { return (float)(mf_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint32_t mf_rng_below(mf_rng *r, uint32_t n)
{
    MF_ASSERT(n > 0);
    /* Lemire's multiply-shift with rejection: unbiased for every n. */
    uint64_t m = (uint64_t)(uint32_t)(mf_rng_u64(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)(uint32_t)(mf_rng_u64(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float mf_rng_normal(mf_rng *r)
{
    /* Box-Muller; u1 in (0, 1] so log() is finite. */
    double u1 = ((double)(mf_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(mf_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
