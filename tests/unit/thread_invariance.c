/* thread_invariance.c: kernels' results must not depend on the number of
 * OpenMP threads (deterministic mode, docs/deterministic.md): CTest
 * unit.thread_invariance writes with 1 and 2 threads and compares.
 *
 *   thread_invariance write OUT.bin      one forward (train and infer) +
 *       loss + backward per case and batch size N in {1,4,7}; writes every
 *       output, loss, input gradient, parameter gradient and BN state as named
 *       records, and prints per case whether sample 0's rows depend on N.
 *   thread_invariance cmp A.bin B.bin    bit-for-bit comparison of two files
 *       (e.g. written with OMP_NUM_THREADS=1 and 2), one line per record.
 *
 * Single-layer cases ("headless") use loss = sum(out * R), R fixed and random
 * per sample, dout = R; the model cases use softmax cross-entropy. Sample i's
 * input (and R row) is drawn from its own seed, so sample 0 is the same for
 * every N. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"

typedef struct tcase {
    const char *name;
    int headless; /* 1: one layer, loss sum(out * R); 0: a classifier */
    mf_shape in; /* batch 0 */
    int (*add)(mf_model *m, int x); /* headless: add the layer(s) */
    mf_status (*make)(mf_model **m); /* classifier */
} tcase;

#define CLASSES 3

static int a_conv3_s1(mf_model *m, int x) { return mf_model_add(m, mf_conv2d(NULL, 32, 3, 1, MF_PADDING_SAME, 1), x); }
static int a_conv3_s2(mf_model *m, int x) { return mf_model_add(m, mf_conv2d(NULL, 32, 3, 2, MF_PADDING_SAME, 1), x); }
static int a_conv1_xsmm(mf_model *m, int x)
{
    return mf_model_add(m, mf_conv2d(NULL, 64, 1, 1, MF_PADDING_SAME, 1), x);
}
static int a_conv1_xsmm_nobias(mf_model *m, int x)
{
    return mf_model_add(m, mf_conv2d(NULL, 64, 1, 1, MF_PADDING_SAME, 0), x);
}
static int a_conv1_blas(mf_model *m, int x)
{
    return mf_model_add(m, mf_conv2d(NULL, 320, 1, 1, MF_PADDING_SAME, 1), x);
}
static int a_conv1_blas_nobias(mf_model *m, int x)
{
    return mf_model_add(m, mf_conv2d(NULL, 1280, 1, 1, MF_PADDING_SAME, 0), x);
}
static int a_dw3_s1(mf_model *m, int x)
{
    return mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 1, MF_PADDING_SAME, 1), x);
}
static int a_dw3_s2(mf_model *m, int x)
{
    return mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_SAME, 1), x);
}
static int a_bn(mf_model *m, int x) { return mf_model_add(m, mf_batchnorm(NULL, 0.99f, 1e-3f), x); }
static int a_bn_relu6(mf_model *m, int x)
{
    x = mf_model_add(m, mf_batchnorm(NULL, 0.99f, 1e-3f), x);
    return mf_model_add(m, mf_relu(NULL, 6.0f), x);
}
static int a_dense_small(mf_model *m, int x) { return mf_model_add(m, mf_dense(NULL, 128, 1), x); }
static int a_dense_big(mf_model *m, int x) { return mf_model_add(m, mf_dense(NULL, 512, 1), x); }
static int a_gap(mf_model *m, int x) { return mf_model_add(m, mf_global_avg_pool2d(NULL), x); }
static int a_sep(mf_model *m, int x)
{
    mf_conv_options o = mf_conv_options_default();
    o.filters = 64;
    o.padding = MF_PADDING_SAME;
    return mf_model_add(m, mf_separable_conv2d(NULL, &o), x);
}
static int a_conv_general(mf_model *m, int x)
{
    mf_conv_options o = mf_conv_options_default();
    o.filters = 32;
    o.kernel_h = 3;
    o.kernel_w = 5;
    o.padding = MF_PADDING_SAME;
    o.activation = MF_ACT_RELU;
    return mf_model_add(m, mf_conv2d_ex(NULL, &o), x);
}
static mf_status m_small_cnn(mf_model **m) { return mf_small_cnn(m, 32, CLASSES, 16, 0.2f, 7); }
static mf_status m_mnv2(mf_model **m) { return mf_mobilenet_v2_classifier(m, 0.35f, 64, CLASSES, 0.2f, 7); }

static const tcase cases[] = {
    {"conv3x3_s1", 1, {4, {0, 32, 32, 16}}, a_conv3_s1, NULL},
    {"conv3x3_s2", 1, {4, {0, 32, 32, 16}}, a_conv3_s2, NULL},
    {"conv1x1_xsmm", 1, {4, {0, 32, 32, 32}}, a_conv1_xsmm, NULL},
    {"conv1x1_xsmm_nobias", 1, {4, {0, 32, 32, 32}}, a_conv1_xsmm_nobias, NULL},
    {"conv1x1_blas", 1, {4, {0, 16, 16, 256}}, a_conv1_blas, NULL},
    {"conv1x1_blas_nobias_4x4", 1, {4, {0, 4, 4, 320}}, a_conv1_blas_nobias, NULL},
    {"conv1x1_blas_nobias_16x16", 1, {4, {0, 16, 16, 320}}, a_conv1_blas_nobias, NULL},
    {"conv1x1_xsmm_nobias_2x2", 1, {4, {0, 2, 2, 32}}, a_conv1_xsmm_nobias, NULL},
    {"dw3x3_s1", 1, {4, {0, 32, 32, 32}}, a_dw3_s1, NULL},
    {"dw3x3_s2", 1, {4, {0, 32, 32, 32}}, a_dw3_s2, NULL},
    {"bn_train", 1, {4, {0, 32, 32, 32}}, a_bn, NULL},
    {"bn_train_15x15", 1, {4, {0, 15, 15, 32}}, a_bn, NULL},
    {"bn_train_8x8", 1, {4, {0, 8, 8, 32}}, a_bn, NULL},
    {"bn_relu6", 1, {4, {0, 32, 32, 32}}, a_bn_relu6, NULL},
    {"dense_small", 1, {2, {0, 256}}, a_dense_small, NULL},
    {"dense_big", 1, {2, {0, 2048}}, a_dense_big, NULL},
    {"dense_wide_out", 1, {2, {0, 64}}, a_dense_big, NULL},
    {"gap", 1, {4, {0, 32, 32, 64}}, a_gap, NULL},
    {"separable3x3", 1, {4, {0, 32, 32, 32}}, a_sep, NULL},
    {"conv2d_ex_general", 1, {4, {0, 32, 32, 16}}, a_conv_general, NULL},
    {"small_cnn", 0, {4, {0, 32, 32, 3}}, NULL, m_small_cnn},
    {"mobilenet_v2_0.35_64", 0, {4, {0, 64, 64, 3}}, NULL, m_mnv2},
};

static size_t per_sample(mf_shape s)
{
    size_t n = 1;
    for (int i = 1; i < s.ndim; i++)
        n *= (size_t)s.d[i];
    return n;
}

static void fill(float *v, int N, size_t S, uint64_t seed0, float scale)
{
    for (int i = 0; i < N; i++) {
        mf_rng r;
        mf_rng_seed(&r, seed0 + (uint64_t)i);
        for (size_t k = 0; k < S; k++)
            v[(size_t)i * S + k] = scale * mf_rng_normal(&r);
    }
}

static void put(FILE *f, const char *name, const float *v, size_t n)
{
    uint32_t len = (uint32_t)strlen(name);
    uint64_t nn = n;
    fwrite(&len, sizeof len, 1, f);
    fwrite(name, 1, len, f);
    fwrite(&nn, sizeof nn, 1, f);
    fwrite(v, sizeof(float), n, f);
}

static mf_model *make(const tcase *c)
{
    mf_model *m = NULL;
    if (c->headless) {
        m = mf_model_create(c->name);
        int x = mf_model_input(m, c->in);
        if (c->add(m, x) < 0 || mf_model_build(m, 7) != MF_STATUS_OK) {
            fprintf(stderr, "%s: %s\n", c->name, mf_last_error());
            exit(1);
        }
        mf_model_set_backward_keep(m, MF_KEEP_INPUT_GRAD);
    } else if (c->make(&m) != MF_STATUS_OK) {
        fprintf(stderr, "%s: %s\n", c->name, mf_last_error());
        exit(1);
    }
    return m;
}

static int same_bits(const float *a, const float *b, size_t n, double *maxd)
{
    int same = memcmp(a, b, n * sizeof(float)) == 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > *maxd)
            *maxd = fabs((double)a[i] - b[i]);
    return same;
}

static int do_write(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    static const int Ns[3] = {1, 4, 7};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const tcase *c = &cases[ci];
        float *row0[3][3] = {{0}}; /* [N index][infer out, train out, dx] sample 0 */
        size_t osz = 0, isz = per_sample(c->in);
        for (int ni = 0; ni < 3; ni++) {
            int N = Ns[ni];
            mf_model *m = make(c);
            osz = per_sample(mf_model_output_shape(m));
            float *x = malloc((size_t)N * isz * sizeof *x), *dout = malloc((size_t)N * osz * sizeof *dout);
            float *dx = c->headless ? malloc((size_t)N * isz * sizeof *dx) : NULL;
            fill(x, N, isz, 1000, 1.0f);
            char name[256];
            /* inference-mode forward first (touches no state) */
            mf_tensor o = mf_model_forward(m, x, N, MF_MODE_INFER, NULL);
            snprintf(name, sizeof name, "%s/N%d/out_infer", c->name, N);
            put(f, name, o.data, (size_t)N * osz);
            row0[ni][0] = malloc(osz * sizeof(float));
            memcpy(row0[ni][0], o.data, osz * sizeof(float));
            mf_rng rng;
            mf_rng_seed(&rng, 42);
            o = mf_model_forward(m, x, N, MF_MODE_TRAIN, &rng);
            snprintf(name, sizeof name, "%s/N%d/out_train", c->name, N);
            put(f, name, o.data, (size_t)N * osz);
            row0[ni][1] = malloc(osz * sizeof(float));
            memcpy(row0[ni][1], o.data, osz * sizeof(float));
            double loss = 0;
            if (c->headless) {
                fill(dout, N, osz, 2000, 0.1f);
                for (size_t k = 0; k < (size_t)N * osz; k++)
                    loss += (double)o.data[k] * dout[k];
            } else {
                int32_t y[8];
                float probs[8 * CLASSES];
                for (int i = 0; i < N; i++)
                    y[i] = i % CLASSES;
                loss = mf_softmax_xent_forward(probs, o.data, y, NULL, N, CLASSES);
                mf_softmax_xent_backward(dout, probs, y, NULL, N, CLASSES, 1.0f);
            }
            float lf = (float)loss;
            snprintf(name, sizeof name, "%s/N%d/loss", c->name, N);
            put(f, name, &lf, 1);
            mf_model_zero_grad(m);
            mf_model_backward(m, dout, dx);
            if (dx) {
                snprintf(name, sizeof name, "%s/N%d/dx", c->name, N);
                put(f, name, dx, (size_t)N * isz);
                row0[ni][2] = malloc(isz * sizeof(float));
                memcpy(row0[ni][2], dx, isz * sizeof(float));
            }
            for (int p = 0; p < mf_model_num_param_tensors(m); p++) {
                mf_param_info pi = mf_model_param(m, p);
                const float *v = (pi.kind == MF_PARAM_TRAINABLE ? mf_model_grads(m) : mf_model_state(m)) + pi.offset;
                snprintf(name, sizeof name, "%s/N%d/%s/%s%s", c->name, N, pi.layer, pi.name,
                         pi.kind == MF_PARAM_TRAINABLE ? ".grad" : "");
                put(f, name, v, pi.numel);
            }
            free(x);
            free(dout);
            free(dx);
            mf_model_free(m);
        }
        /* batch-size dependence of sample 0's rows */
        static const char *what[3] = {"out_infer", "out_train", "dx"};
        for (int w = 0; w < 3; w++) {
            if (!row0[0][w])
                continue;
            size_t n = w == 2 ? isz : osz;
            printf("batchdep %-22s %-9s", c->name, what[w]);
            for (int ni = 1; ni < 3; ni++) {
                double d;
                int s = same_bits(row0[0][w], row0[ni][w], n, &d);
                printf("  N1 vs N%d: %s", Ns[ni], s ? "same" : "DIFF");
                if (!s)
                    printf(" (max %.2g)", d);
            }
            printf("\n");
        }
        for (int ni = 0; ni < 3; ni++)
            for (int w = 0; w < 3; w++)
                free(row0[ni][w]);
    }
    fclose(f);
    return 0;
}

typedef struct rec {
    char name[256];
    uint64_t n;
    float *v;
} rec;

static int get(FILE *f, rec *r)
{
    uint32_t len;
    if (fread(&len, sizeof len, 1, f) != 1 || len >= sizeof r->name)
        return 0;
    if (fread(r->name, 1, len, f) != len)
        return 0;
    r->name[len] = 0;
    if (fread(&r->n, sizeof r->n, 1, f) != 1)
        return 0;
    r->v = malloc(r->n * sizeof(float) + 1);
    return fread(r->v, sizeof(float), r->n, f) == r->n;
}

static int do_cmp(const char *pa, const char *pb)
{
    FILE *a = fopen(pa, "rb"), *b = fopen(pb, "rb");
    if (!a || !b) {
        fprintf(stderr, "cannot open inputs\n");
        return 1;
    }
    int ndiff = 0, nrec = 0;
    rec ra, rb;
    while (get(a, &ra)) {
        if (!get(b, &rb) || strcmp(ra.name, rb.name) || ra.n != rb.n) {
            fprintf(stderr, "files do not match in layout at %s\n", ra.name);
            return 1;
        }
        nrec++;
        size_t bad = 0;
        double maxd = 0, maxrel = 0;
        for (uint64_t i = 0; i < ra.n; i++) {
            uint32_t ua, ub;
            memcpy(&ua, &ra.v[i], 4);
            memcpy(&ub, &rb.v[i], 4);
            if (ua != ub) {
                bad++;
                double d = fabs((double)ra.v[i] - rb.v[i]);
                double s = fabs((double)ra.v[i]) > 1e-30 ? d / fabs((double)ra.v[i]) : d;
                if (d > maxd)
                    maxd = d;
                if (s > maxrel)
                    maxrel = s;
            }
        }
        if (bad) {
            ndiff++;
            printf("DIFF %-60s %zu/%llu elems  max abs %.3g  max rel %.3g\n", ra.name, bad, (unsigned long long)ra.n,
                   maxd, maxrel);
        }
        free(ra.v);
        free(rb.v);
    }
    printf("%d of %d records differ\n", ndiff, nrec);
    fclose(a);
    fclose(b);
    return ndiff != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "write"))
        return do_write(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "cmp"))
        return do_cmp(argv[2], argv[3]);
    fprintf(stderr, "usage: %s write OUT.bin | cmp A.bin B.bin\n", argv[0]);
    return 2;
}
