/* test_core.c: allocator, errors, rng, shapes. */
#include <stdint.h>
#include <string.h>
#include "mpifit.h"
#include "core/core.h"
#include "test.h"

static void test_alloc(void)
{
    size_t c0 = mf_alloc_live_count(), b0 = mf_alloc_live_bytes();
    float *a = mf_alloc(1000 * sizeof(float));
    char *b = mf_alloc(1);
    MF_CHECK(((uintptr_t)a % MF_ALIGN) == 0);
    MF_CHECK(((uintptr_t)b % MF_ALIGN) == 0);
    int zero = 1;
    for (int i = 0; i < 1000; i++)
        zero &= a[i] == 0.0f;
    MF_CHECK_MSG(zero, "mf_alloc must zero-fill");
    MF_CHECK(mf_alloc_live_count() == c0 + 2);
    MF_CHECK(mf_alloc_live_bytes() == b0 + 4001);
    mf_free(a);
    mf_free(b);
    mf_free(NULL);
    MF_CHECK(mf_alloc_live_count() == c0);
    MF_CHECK(mf_alloc_live_bytes() == b0);
}

static void test_errors(void)
{
    mf_clear_error();
    MF_CHECK(strcmp(mf_last_error(), "") == 0);
    mf_status s = mf_fail(MF_STATUS_CONFIG, "%s:%d: bad value '%s'", "a.ini", 7, "x");
    MF_CHECK(s == MF_STATUS_CONFIG);
    MF_CHECK(strcmp(mf_last_error(), "a.ini:7: bad value 'x'") == 0);
    /* wrapping the last error in a new one (mf_last_error() as an argument) */
    mf_fail(MF_STATUS_IO, "%s: %s (rank %d)", "ckpt.h5", mf_last_error(), 1);
    MF_CHECK(strcmp(mf_last_error(), "ckpt.h5: a.ini:7: bad value 'x' (rank 1)") == 0);
    mf_fail(MF_STATUS_IO, "%s; %s", mf_last_error(), mf_last_error());
    MF_CHECK(strcmp(mf_last_error(),
                    "ckpt.h5: a.ini:7: bad value 'x' (rank 1); ckpt.h5: a.ini:7: bad value 'x' (rank 1)") == 0);
    MF_CHECK(strcmp(mf_status_name(MF_STATUS_CONFIG), "config") == 0);
    /* constructors refuse bad arguments with a message, not a crash */
    MF_CHECK(mf_conv2d(NULL, 0, 3, 1, MF_PADDING_SAME, 0) == NULL);
    MF_CHECK(strstr(mf_last_error(), "filters") != NULL);
    MF_CHECK(mf_dropout(NULL, 1.0f) == NULL);
    MF_CHECK(strstr(mf_last_error(), "rate") != NULL);
    MF_CHECK(mf_batchnorm(NULL, 0.99f, 0.0f) == NULL);
    MF_CHECK(mf_relu(NULL, -1.0f) == NULL);
    MF_CHECK(mf_zero_pad2d(NULL, -1, 0, 0, 0) == NULL);
    MF_CHECK(mf_dense(NULL, -3, 1) == NULL);
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    MF_CHECK(mf_dense(longname, 3, 1) == NULL);
    MF_CHECK(strstr(mf_last_error(), "longer than") != NULL);
}

static void test_rng(void)
{
    mf_rng a, b, c;
    mf_rng_seed(&a, 42);
    mf_rng_seed(&b, 42);
    mf_rng_seed2(&c, 42, 1);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = mf_rng_u64(&a), y = mf_rng_u64(&b), z = mf_rng_u64(&c);
        same &= x == y;
        differ += x != z;
    }
    MF_CHECK_MSG(same, "same seed, same stream");
    MF_CHECK_MSG(differ > 95, "a different stream id must give a different stream");
    /* uniform in [0,1), mean 0.5; normal mean 0 var 1; below(n) in range and unbiased-ish */
    double su = 0, sn = 0, sn2 = 0;
    int counts[7] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = mf_rng_uniform(&a);
        MF_CHECK(u >= 0.0f && u < 1.0f);
        su += u;
        float g = mf_rng_normal(&a);
        sn += g;
        sn2 += (double)g * g;
        uint32_t k = mf_rng_below(&a, 7);
        MF_CHECK(k < 7);
        counts[k < 7 ? k : 0]++;
    }
    MF_CHECK_NEAR(su / n, 0.5, 0.01);
    MF_CHECK_NEAR(sn / n, 0.0, 0.01);
    MF_CHECK_NEAR(sn2 / n, 1.0, 0.02);
    for (int k = 0; k < 7; k++)
        MF_CHECK_NEAR(counts[k] / (double)n, 1.0 / 7.0, 0.005);
    /* the state is a value: copying it replays the stream (checkpoint/resume) */
    mf_rng saved = a;
    uint64_t first = mf_rng_u64(&a);
    MF_CHECK(mf_rng_u64(&saved) == first);
}

static void test_shapes(void)
{
    mf_shape s = mf_shape4(0, 112, 112, 32);
    char buf[64];
    MF_CHECK(strcmp(mf_shape_str(&s, buf, sizeof buf), "(None, 112, 112, 32)") == 0);
    MF_CHECK(mf_shape_sample_numel(&s) == 112u * 112u * 32u);
    MF_CHECK(mf_shape_numel(&s) == 112u * 112u * 32u);
    s.d[0] = 4;
    MF_CHECK(mf_shape_numel(&s) == 4u * 112u * 112u * 32u);
    mf_shape k = mf_shape1(32);
    MF_CHECK(strcmp(mf_shape_str(&k, buf, sizeof buf), "(32,)") == 0);
    mf_shape t = mf_shape4(4, 112, 112, 32);
    MF_CHECK(mf_shape_eq(&s, &t));
    t.d[3] = 16;
    MF_CHECK(!mf_shape_eq(&s, &t));
}

int main(void)
{
    test_alloc();
    test_errors();
    test_rng();
    test_shapes();
    return mf_test_report();
}
