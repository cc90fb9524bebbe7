/* test_half.c: the 16-bit conversions of the compressed gradient exchange
 * (src/dist/half.c) against their definition, and error feedback's promise.
 *  - every fp16 / bf16 value converts to float and back to itself;
 *  - a float converts to the nearest 16-bit value, ties to the even one
 *    (checked against both neighbours, over a stride through all 2^32 bit
 *    patterns and the edges: subnormals, the normal threshold, 65504);
 *  - fp16 saturates at +-65504; NaN stays NaN;
 *  - encode with a remainder: over any number of steps, what was sent plus the
 *    remainder equals the sum of the gradients (to float's rounding), so
 *    nothing is lost, even values below fp16's smallest subnormal;
 *  - the owner's reduction sums in float, rounds once and keeps the rest. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dist/half.h"
#include "test.h"

static float f_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

typedef struct fmt {
    const char *name;
    uint16_t (*enc)(float);
    float (*dec)(uint16_t);
    uint16_t max_finite; /* the largest finite magnitude's bits */
} fmt;

static const fmt FP16 = {"fp16", mf_fp16_from_float, mf_fp16_to_float, 0x7bff};
static const fmt BF16 = {"bf16", mf_bf16_from_float, mf_bf16_to_float, 0x7f7f};

static int finite16(const fmt *f, uint16_t h) { return (h & 0x7fff) <= f->max_finite; }

/* enc(x) is the nearest representable value, ties to even mantissa. */
static int nearest_ok(const fmt *f, float x)
{
    uint16_t h = f->enc(x);
    if (isnan(x))
        return isnan(f->dec(h));
    double xd = x, got = f->dec(h);
    if (f == &FP16 && fabs(xd) > 65504.0) /* saturation */
        return (h & 0x7fff) == 0x7bff && (h >> 15) == (signbit(x) != 0);
    if (!finite16(f, h)) /* bf16: beyond its largest finite value, rounds to inf */
        return fabs(xd) >= (double)f->dec(f->max_finite);
    if (got != 0.0 && !!signbit(got) != !!signbit(x))
        return 0;
    double err = fabs(got - xd);
    for (int d = -1; d <= 1; d += 2) {
        uint16_t mag = (uint16_t)(h & 0x7fff);
        if ((d < 0 && mag == 0) || (d > 0 && mag == f->max_finite))
            continue;
        uint16_t nb = (uint16_t)((h & 0x8000) | (mag + d));
        double e2 = fabs((double)f->dec(nb) - xd);
        if (e2 < err || (e2 == err && (h & 1)))
            return 0;
    }
    return 1;
}

static void check_format(const fmt *f)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if (!finite16(f, (uint16_t)h))
            continue;
        uint16_t back = f->enc(f->dec((uint16_t)h));
        if (back != h && bad++ < 5)
            fprintf(stderr, "%s: %04x -> %g -> %04x\n", f->name, h, (double)f->dec((uint16_t)h), back);
    }
    MF_CHECK_MSG(bad == 0, "%s: %d values do not survive a round trip", f->name, bad);
    bad = 0;
    long tried = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 65519, tried++) /* a prime stride: every exponent, many mantissas */
        if (!nearest_ok(f, f_of((uint32_t)u)) && bad++ < 5)
            fprintf(stderr, "%s: %a -> %04x (%a) is not the nearest\n", f->name, (double)f_of((uint32_t)u),
                    f->enc(f_of((uint32_t)u)), (double)f->dec(f->enc(f_of((uint32_t)u))));
    /* the edges: around every 16-bit value, its midpoints with the next */
    for (uint32_t h = 0; h < 0x7fff; h++) {
        if (!finite16(f, (uint16_t)h) || !finite16(f, (uint16_t)(h + 1)))
            continue;
        double a = f->dec((uint16_t)h), b = f->dec((uint16_t)(h + 1)), mid = (a + b) / 2;
        float probes[] = {(float)mid, nextafterf((float)mid, 0.0f), nextafterf((float)mid, INFINITY)};
        for (int i = 0; i < 3; i++, tried += 2)
            for (int s = 0; s < 2; s++)
                if (!nearest_ok(f, s ? -probes[i] : probes[i]) && bad++ < 5)
                    fprintf(stderr, "%s: %a is not rounded to the nearest (%04x)\n", f->name,
                            (double)(s ? -probes[i] : probes[i]), f->enc(s ? -probes[i] : probes[i]));
    }
    MF_CHECK_MSG(bad == 0, "%s: %d of %ld floats not rounded to the nearest, ties to even", f->name, bad, tried);
    MF_CHECK(isnan(f->dec(f->enc(NAN))));
    MF_CHECK(f->dec(f->enc(-0.0f)) == 0.0f && signbit(f->dec(f->enc(-0.0f))));
}

/* Error feedback: sum over steps of sent values + remainder = sum of inputs. */
static void check_feedback(int bf16)
{
    enum { N = 6, STEPS = 1000 };
    const float g[N] = {1e-9f, -3e-8f, 0.1f, -1.0f / 3.0f, 70000.0f, 1e-30f};
    float resid[N] = {0}, gs[N];
    uint16_t h[N];
    double sent[N] = {0}, total[N] = {0}, vsum[N] = {0};
    for (int s = 0; s < STEPS; s++) {
        memcpy(gs, g, sizeof gs);
        for (int i = 0; i < N; i++)
            vsum[i] += fabs((double)gs[i] + (double)resid[i]);
        mf_half_encode(h, gs, resid, N, bf16);
        float out[N];
        mf_half_decode(out, h, N, 1.0f, bf16);
        for (int i = 0; i < N; i++) {
            sent[i] += out[i];
            total[i] += g[i];
        }
    }
    for (int i = 0; i < N; i++) {
        /* v = g + resid rounds in float each step, by at most 2^-24 |v|;
         * nothing else may go missing */
        double tol = 0x1p-24 * vsum[i] * 1.01 + 1e-44;
        MF_CHECK_MSG(fabs(sent[i] + resid[i] - total[i]) <= tol, "%s: value %d: sent %.9g + kept %.9g != %.9g",
                     bf16 ? "bf16" : "fp16", i, sent[i], (double)resid[i], total[i]);
    }
    if (!bf16) { /* below fp16's smallest subnormal: without the remainder nothing would arrive */
        MF_CHECK_NEAR(sent[0] / total[0], 1.0, 0.1);
        MF_CHECK(!isinf(mf_fp16_to_float(h[4]))); /* 70000 saturates at 65504, the rest is kept */
    }
}

int main(void)
{
    check_format(&FP16);
    check_format(&BF16);
    check_feedback(0);
    check_feedback(1);
    /* the owner's reduction: a float sum in rank order, rounded once, its
     * rounding kept; 3 parts of 2 values */
    uint16_t parts[6], out[2];
    float own[2] = {0, 0};
    const float in[6] = {1.0f, 65504.0f, 2.0f, 65504.0f, 1e-3f, 1.0f};
    for (int i = 0; i < 6; i++)
        parts[i] = mf_fp16_from_float(in[i]);
    mf_half_reduce(out, own, parts, 3, 2, 0);
    double s0 = 1.0 + 2.0 + (double)mf_fp16_to_float(parts[4]);
    MF_CHECK(out[0] == mf_fp16_from_float((float)s0));
    MF_CHECK_NEAR((double)mf_fp16_to_float(out[0]) + own[0], s0, 1e-7);
    MF_CHECK(mf_fp16_to_float(out[1]) == 65504.0f); /* saturated, not inf; the rest kept */
    MF_CHECK_NEAR(own[1], 65505.0, 1e-2);
    return mf_test_report();
}
