/* batchnorm.c: Keras BatchNormalization(axis=-1, momentum, epsilon) over the
 * channel axis of (N,H,W,C) or (N,C) inputs.
 *
 * Training mode: y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta with the
 * batch's own mean and (biased) variance over the M = N*H*W values of each
 * channel, and moving = momentum * moving + (1 - momentum) * batch. For 4-D
 * inputs the moving variance takes the unbiased batch variance (M / (M - 1)),
 * as TensorFlow's fused kernel that Keras uses for NHWC does; for 2-D inputs the
 * biased one, as Keras' non-fused path does.
 * Inference mode: the moving statistics; the layer is an affine map.
 * Weights in Keras order: gamma, beta (trainable), moving_mean, moving_variance
 * (state). Init: gamma 1, beta 0, moving_mean 0, moving_variance 1.
 * Keras' scale=False drops gamma and center=False drops beta (then the layer
 * has no such weight, in the summary's count and in the weights file): the
 * formulas run with constant ones / zeros in their place.
 *
 * Sums run in double, split over threads by rows with per-thread partials that
 * are combined in thread order: deterministic for a fixed thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "layer.h"
#include <float.h>

typedef struct batchnorm {
    mf_layer base;
    float momentum, epsilon;
    int C;
    int center, scale; /* Keras' flags: 0 = no beta / no gamma */
    int gamma, beta, mmean, mvar; /* slot indices; gamma/beta -1 when absent */
    float *one; /* (C) ones: gamma without scale */
    float *mean, *invstd; /* (C) each: statistics of the last forward */
    float *bvar; /* (C): its unbiased batch variance (the moving update's) */
    double *acc; /* (2C + 1): combined channel sums (+ rows, for sync BN) */
    float *k; /* (3C): backward coefficients k1..k3 */
    float *zero; /* (C) zeros: the shift of unshifted sums */
    double rows; /* rows the last training statistics covered (all ranks') */
    double *part; /* part_groups * 2C partial sums */
    size_t part_groups;
    float *fpart; /* part_threads * 2C block sums */
    int part_threads;
} batchnorm;

static mf_status bn_build(mf_layer *l)
{
    batchnorm *b = (batchnorm *)l;
    const mf_shape *s = &l->in_shape[0];
    if (s->ndim != 4 && s->ndim != 2)
        return mf_fail(MF_STATUS_SHAPE, "input must be (N,H,W,C) or (N,C), got %d axes", s->ndim);
    b->C = s->d[s->ndim - 1];
    l->out_shape = *s;
    mf_shape c = mf_shape1(b->C);
    b->gamma = b->scale ? mf_layer_reserve(l, "gamma", c, MF_PARAM_TRAINABLE) : -1;
    b->beta = b->center ? mf_layer_reserve(l, "beta", c, MF_PARAM_TRAINABLE) : -1;
    b->mmean = mf_layer_reserve(l, "moving_mean", c, MF_PARAM_STATE);
    b->mvar = mf_layer_reserve(l, "moving_variance", c, MF_PARAM_STATE);
    mf_free(b->mean);
    mf_free(b->invstd);
    mf_free(b->bvar);
    mf_free(b->acc);
    mf_free(b->k);
    b->mean = mf_alloc((size_t)b->C * sizeof(float));
    b->bvar = mf_alloc((size_t)b->C * sizeof(float));
    b->invstd = mf_alloc((size_t)b->C * sizeof(float));
    b->acc = mf_alloc((size_t)(2 * b->C + 1) * sizeof(double));
    b->k = mf_alloc((size_t)3 * b->C * sizeof(float));
    mf_free(b->zero);
    b->zero = mf_alloc((size_t)b->C * sizeof(float));
    mf_free(b->one);
    b->one = mf_alloc((size_t)b->C * sizeof(float));
    mf_init_const(b->one, (size_t)b->C, 1.0f);
    return MF_STATUS_OK;
}

/* gamma and beta, or the constants that stand for them */
static const float *gamma_of(const batchnorm *b) { return b->gamma >= 0 ? b->base.slot[b->gamma].data : b->one; }
static const float *beta_of(const batchnorm *b) { return b->beta >= 0 ? b->base.slot[b->beta].data : b->zero; }

static void bn_init(mf_layer *l, mf_rng *rng)
{
    (void)rng;
    batchnorm *b = (batchnorm *)l;
    if (b->gamma >= 0)
        mf_init_const(l->slot[b->gamma].data, (size_t)b->C, 1.0f);
    if (b->beta >= 0)
        mf_init_const(l->slot[b->beta].data, (size_t)b->C, 0.0f);
    mf_init_const(l->slot[b->mmean].data, (size_t)b->C, 0.0f);
    mf_init_const(l->slot[b->mvar].data, (size_t)b->C, 1.0f);
}

/* Zeroed double partials for `groups` row groups (2C each), and float block
 * sums for nt threads. */
static double *partials(batchnorm *b, size_t groups, int nt)
{
    if (groups > b->part_groups) {
        mf_free(b->part);
        b->part = mf_alloc(groups * 2 * b->C * sizeof(double));
        b->part_groups = groups;
    }
    if (nt > b->part_threads) {
        mf_free(b->fpart);
        b->fpart = mf_alloc((size_t)nt * 2 * b->C * sizeof(float));
        b->part_threads = nt;
    }
    memset(b->part, 0, groups * 2 * b->C * sizeof(double));
    return b->part;
}

/* Two per-channel sums over the M rows of x (and dy):
 *   mode 0: s1 = sum (x - k), s2 = sum (x - k)^2, k a shift (the first row:
 *           it keeps E[x^2] - E[x]^2 from cancelling when |mean| >> std)
 *   mode 1: s1 = sum dy, s2 = sum dy * (x - k), k the mean; with a fused
 *           ReLU (rm), dy counts only where the ReLU passed it (relu_mask)
 * Rows are summed in float over blocks of BLOCK rows (vectorised, C contiguous),
 * each block's sums added into a double partial per group of GROUP_ROWS rows,
 * and the groups' partials combined in group order. Blocks and groups are
 * fixed cuts of the rows, and threads take whole groups, so the sums are the
 * same bits for any number of threads (deterministic mode relies on it). */
#define BLOCK 64
#define GROUP_ROWS 256 /* a multiple of BLOCK: enough groups for the threads at small M */

/* A fused ReLU's mask, recomputed from the BatchNorm input instead of read
 * from the ReLU's output: backward then streams dy and x only. The same
 * expression as the forward pass, so the same bits decide. */
typedef struct relu_mask {
    const float *gamma, *beta, *invstd; /* (C); the mean is the sums' k */
    float hi;
} relu_mask;

/* f1, f2 (C) += the sums of rows [r0, r1) (see channel_sums) */
MF_SIMD_CLONES
static void block_sums(float *restrict f1, float *restrict f2, const float *x, const float *dy, const relu_mask *rm,
                       const float *k, size_t r0, size_t r1, int C, int mode)
{
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * C;
        if (mode == 0) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float d = xr[c] - k[c];
                f1[c] += d;
                f2[c] += d * d;
            }
        } else if (!rm) {
            const float *gr = dy + r * C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                f1[c] += gr[c];
                f2[c] += gr[c] * (xr[c] - k[c]);
            }
        } else {
            const float *gr = dy + r * C;
            const float *ga = rm->gamma, *be = rm->beta, *is = rm->invstd;
            float hi = rm->hi;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                /* dy loaded unconditionally: a select, not a branch (a load
                 * inside ?: keeps GCC from vectorising) */
                float gv = gr[c], d = xr[c] - k[c];
                float z = ga[c] * d * is[c] + be[c]; /* the forward's value, bit for bit */
                float g = ((z > 0.0f) & (z < hi)) ? gv : 0.0f;
                f1[c] += g;
                f2[c] += g * d;
            }
        }
    }
}

static void channel_sums(batchnorm *b, double *s1, double *s2, const float *x, const float *dy, const relu_mask *rm,
                         const float *k, size_t M, int mode)
{
    int C = b->C;
    size_t groups = (M + GROUP_ROWS - 1) / GROUP_ROWS;
    int nt = omp_get_max_threads();
    if ((size_t)nt > groups)
        nt = groups > 0 ? (int)groups : 1;
    double *part = partials(b, groups ? groups : 1, nt);
#pragma omp parallel num_threads(nt)
    {
        float *f1 = b->fpart + (size_t)omp_get_thread_num() * 2 * C, *f2 = f1 + C;
#pragma omp for schedule(static)
        for (long gi = 0; gi < (long)groups; gi++) {
            double *p1 = part + (size_t)gi * 2 * C, *p2 = p1 + C;
            size_t lo = (size_t)gi * GROUP_ROWS, hi = lo + GROUP_ROWS < M ? lo + GROUP_ROWS : M;
            for (size_t r0 = lo; r0 < hi; r0 += BLOCK) {
                size_t r1 = r0 + BLOCK < hi ? r0 + BLOCK : hi;
                for (int c = 0; c < C; c++)
                    f1[c] = f2[c] = 0.0f;
                block_sums(f1, f2, x, dy, rm, k, r0, r1, C, mode);
                for (int c = 0; c < C; c++) {
                    p1[c] += f1[c];
                    p2[c] += f2[c];
                }
            }
        }
    }
    for (int c = 0; c < C; c++)
        s1[c] = s2[c] = 0.0;
    for (size_t gi = 0; gi < groups; gi++)
        for (int c = 0; c < C; c++) {
            s1[c] += part[gi * 2 * C + c];
            s2[c] += part[gi * 2 * C + C + c];
        }
}

static size_t rows_of(const mf_tensor *t) { return mf_tensor_numel(t) / (size_t)t->shape.d[t->shape.ndim - 1]; }

/* x, y: (M, C)  gamma, beta, mean, invstd: (C); y = gamma (x - mean) invstd +
 * beta, clamped to [lo, hi] (-FLT_MAX, FLT_MAX without a fused ReLU). One
 * pass: the fused ReLU costs no extra read or write of the tensor. (x - mean
 * first, not x * scale + shift: that form cancels when |mean| >> std.) */
MF_SIMD_CLONES
static void apply_rows(float *restrict y, const float *restrict x, const float *gamma, const float *beta,
                       const float *mean, const float *invstd, float lo, float hi, size_t r0, size_t r1, int C)
{
    for (size_t r = r0; r < r1; r++) {
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float v = gamma[c] * (x[r * C + c] - mean[c]) * invstd[c] + beta[c];
            v = v < lo ? lo : v; /* NaN stays NaN: TerminateOnNaN must see it */
            y[r * C + c] = v > hi ? hi : v;
        }
    }
}

/* Rows [0, M) split evenly over the threads (one thread when small). */
#define ROWS_PARALLEL(M, C, call)                                                         \
    do {                                                                                  \
        _Pragma("omp parallel if ((M) * (size_t)(C) > 65536)")                            \
        {                                                                                 \
            size_t t_ = (size_t)omp_get_thread_num(), n_ = (size_t)omp_get_num_threads(); \
            size_t r0 = (M)*t_ / n_, r1 = (M) * (t_ + 1) / n_;                            \
            call;                                                                         \
        }                                                                                 \
    } while (0)

static void bn_apply(float *restrict y, const float *restrict x, const float *gamma, const float *beta,
                     const float *mean, const float *invstd, float lo, float hi, size_t M, int C)
{
    ROWS_PARALLEL(M, C, apply_rows(y, x, gamma, beta, mean, invstd, lo, hi, r0, r1, C));
}

static void bn_forward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, mf_tensor *out)
{
    batchnorm *b = (batchnorm *)l;
    int C = b->C;
    size_t M = rows_of(in[0]);
    const float *gamma = gamma_of(b), *beta = beta_of(b);
    float *mm = l->slot[b->mmean].data, *mv = l->slot[b->mvar].data;
    if (ex->mode == MF_MODE_TRAIN) {
        double *acc = b->acc;
        /* shift by this batch's first row; sync BN adds the sums of every rank,
         * which must share one shift: zero */
        const float *shift = ex->stat_sum ? b->zero : in[0]->data;
        channel_sums(b, acc, acc + C, in[0]->data, NULL, NULL, shift, M, 0);
        double Mg = (double)M; /* rows the statistics cover: all ranks' with sync BN */
        if (ex->stat_sum) {
            acc[2 * C] = (double)M;
            MF_ASSERT(ex->stat_sum(ex->stat_user, acc, 2 * C + 1) == MF_STATUS_OK);
            Mg = acc[2 * C];
        }
        b->rows = Mg;
        float unbias = (in[0]->shape.ndim == 4 && Mg > 1) ? (float)(Mg / (Mg - 1)) : 1.0f;
        for (int c = 0; c < C; c++) {
            double d = acc[c] / Mg;
            double mean = (double)shift[c] + d;
            double var = acc[C + c] / Mg - d * d;
            if (var < 0.0)
                var = 0.0;
            b->mean[c] = (float)mean;
            b->invstd[c] = (float)(1.0 / sqrt(var + (double)b->epsilon));
            if (ex->bn_record) { /* deterministic mode: one update per step, from every chunk's */
                b->bvar[c] = (float)var * unbias;
                continue;
            }
            mm[c] = b->momentum * mm[c] + (1.0f - b->momentum) * (float)mean;
            mv[c] = b->momentum * mv[c] + (1.0f - b->momentum) * (float)var * unbias;
        }
        if (ex->bn_record)
            ex->bn_record(ex->bn_record_user, l, b->mean, b->bvar, C);
    } else {
        for (int c = 0; c < C; c++) {
            b->mean[c] = mm[c];
            b->invstd[c] = 1.0f / sqrtf(mv[c] + b->epsilon);
        }
    }
    bn_apply(out->data, in[0]->data, gamma, beta, b->mean, b->invstd, ex->fuse_relu ? 0.0f : -FLT_MAX,
             ex->fuse_relu ? ex->relu_max : FLT_MAX, M, C);
}

/* dx (M,C) (=, or += unless first) k1 g - k2 - k3 (x - mean), g = dy, or with
 * a fused ReLU dy where the ReLU passed it. One pass over dy, x and dx. */
/* One element of dx with a fused ReLU: dy passes where the forward's value z
 * was inside (0, hi) (the same expression, so the same bits decide); dy is
 * loaded unconditionally: a select, not a branch. */
static inline float masked_dx(float gv, float xv, float m, float ga, float be, float is, float hi, float k1, float k2,
                              float k3)
{
    float d = xv - m;
    float z = ga * d * is + be;
    return k1 * (((z > 0.0f) & (z < hi)) ? gv : 0.0f) - k2 - k3 * d;
}

MF_SIMD_CLONES
static void dx_rows(float *restrict dx, const float *restrict dy, const relu_mask *rm, const float *restrict x,
                    const float *k1, const float *k2, const float *k3, const float *mean, int first, size_t r0,
                    size_t r1, int C)
{
    for (size_t r = r0; r < r1; r++) {
        float *dr = dx + r * C;
        const float *gr = dy + r * C, *xr = x + r * C;
        const float *ga = rm ? rm->gamma : k1, *be = rm ? rm->beta : k1, *is = rm ? rm->invstd : k1;
        float hi = rm ? rm->hi : 0.0f;
        if (rm)
            MF_DIN_LOOP(first, c, C, dr,
                        masked_dx(gr[c], xr[c], mean[c], ga[c], be[c], is[c], hi, k1[c], k2[c], k3[c]));
        else
            MF_DIN_LOOP(first, c, C, dr, k1[c] * gr[c] - k2[c] - k3[c] * (xr[c] - mean[c]));
    }
}

static void bn_dx(float *restrict dx, const float *restrict dy, const relu_mask *rm, const float *restrict x,
                  const float *k1, const float *k2, const float *k3, const float *mean, int first, size_t M, int C)
{
    ROWS_PARALLEL(M, C, dx_rows(dx, dy, rm, x, k1, k2, k3, mean, first, r0, r1, C));
}

static void bn_backward(mf_layer *l, const mf_exec *ex, const mf_tensor *const *in, const mf_tensor *out,
                        const mf_tensor *dout, mf_tensor *const *din)
{
    (void)out;
    batchnorm *b = (batchnorm *)l;
    int C = b->C;
    size_t M = rows_of(in[0]);
    const float *x = in[0]->data, *dy = dout->data;
    const float *gamma = gamma_of(b);
    /* fused ReLU: dy is the ReLU's output gradient, passed where 0 < y < hi */
    relu_mask mask = {gamma, beta_of(b), b->invstd, ex->relu_max};
    const relu_mask *rm = ex->fuse_relu ? &mask : NULL;
    double *acc = b->acc;
    /* sum_dy[c] and sum_dy_xc[c] = sum dy * (x - mean) */
    channel_sums(b, acc, acc + C, x, dy, rm, b->mean, M, 1);
    const double *sum_dy = acc, *sum_dy_xc = acc + C;
    /* gamma and beta take this rank's sums: the gradient allreduce averages them */
    if (ex->param_grads) {
        float *dgamma = b->gamma >= 0 ? l->slot[b->gamma].grad : NULL;
        float *dbeta = b->beta >= 0 ? l->slot[b->beta].grad : NULL;
        for (int c = 0; c < C; c++) {
            if (dgamma)
                dgamma[c] += (float)(sum_dy_xc[c] * b->invstd[c]);
            if (dbeta)
                dbeta[c] += (float)sum_dy[c];
        }
    }
    if (din[0]) {
        float *dx = din[0]->data;
        if (ex->mode == MF_MODE_TRAIN) {
            /* with sync BN, the input gradient sees every rank's samples (as
             * PyTorch's SyncBatchNorm): the two sums over the global batch */
            double Mg = (double)M;
            if (ex->stat_sum) {
                MF_ASSERT(ex->stat_sum(ex->stat_user, acc, 2 * C) == MF_STATUS_OK);
                Mg = b->rows;
            }
            /* dx = gamma*invstd/M * (M*dy - sum(dy) - xhat * sum(dy*xhat)),
             * xhat = (x - mean) * invstd, so sum(dy*xhat) = invstd * sum_dy_xc. */
            float *k1 = b->k, *k2 = k1 + C, *k3 = k1 + 2 * C;
            for (int c = 0; c < C; c++) {
                double is = b->invstd[c];
                k1[c] = (float)(gamma[c] * is); /* scale of dy  */
                k2[c] = (float)(gamma[c] * is * sum_dy[c] / Mg); /* constant     */
                k3[c] = (float)(gamma[c] * is * is * is * sum_dy_xc[c] / Mg); /* of x-mean */
            }
            bn_dx(dx, dy, rm, x, k1, k2, k3, b->mean, ex->din_first[0], M, C);
        } else {
            /* inference: an affine map, dx = gamma invstd dy */
            float *k1 = b->k, *k2 = k1 + C, *k3 = k1 + 2 * C;
            for (int c = 0; c < C; c++) {
                k1[c] = gamma[c] * b->invstd[c];
                k2[c] = k3[c] = 0.0f;
            }
            bn_dx(dx, dy, rm, x, k1, k2, k3, b->mean, ex->din_first[0], M, C);
        }
    }
}

static void bn_destroy(mf_layer *l)
{
    batchnorm *b = (batchnorm *)l;
    mf_free(b->mean);
    mf_free(b->invstd);
    mf_free(b->bvar);
    mf_free(b->part);
    mf_free(b->fpart);
    mf_free(b->acc);
    mf_free(b->k);
    mf_free(b->zero);
    mf_free(b->one);
}

static void bn_args(const mf_layer *l, mf_layer_args *a)
{
    const batchnorm *b = (const batchnorm *)l;
    a->momentum = b->momentum;
    a->epsilon = b->epsilon;
    a->center = b->center;
    a->scale = b->scale;
}

static const mf_layer_ops bn_ops = {
    .kind = "BatchNormalization",
    .default_name = "batch_normalization",
    .n_in = 1,
    .bwd_reads = MF_READS_IN0,
    .fuses_relu = 1,
    .infer_when_frozen = 1,
    .args = bn_args,
    .build = bn_build,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
};

mf_layer *mf_batchnorm_ex(const char *name, float momentum, float epsilon, int center, int scale)
{
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(epsilon > 0.0f)) {
        mf_fail(MF_STATUS_INVALID, "BatchNormalization: momentum must be in [0, 1] and epsilon > 0, got %g, %g",
                (double)momentum, (double)epsilon);
        return NULL;
    }
    batchnorm *b = (batchnorm *)mf_layer_alloc(&bn_ops, sizeof(batchnorm), name);
    if (b) {
        b->momentum = momentum;
        b->epsilon = epsilon;
        b->center = center != 0;
        b->scale = scale != 0;
    }
    return (mf_layer *)b;
}

mf_layer *mf_batchnorm(const char *name, float momentum, float epsilon)
{
    return mf_batchnorm_ex(name, momentum, epsilon, 1, 1);
}

int mf_batchnorm_affine(const mf_layer *l, float *scale, float *shift)
{
    if (l->ops != &bn_ops)
        return 0;
    const batchnorm *b = (const batchnorm *)l;
    const float *gamma = gamma_of(b), *beta = beta_of(b);
    const float *mm = l->slot[b->mmean].data, *mv = l->slot[b->mvar].data;
    for (int c = 0; c < b->C; c++) {
        float s = gamma[c] * (1.0f / sqrtf(mv[c] + b->epsilon));
        if (scale)
            scale[c] = s;
        if (shift)
            shift[c] = beta[c] - mm[c] * s;
    }
    return b->C;
}

void mf_batchnorm_update_moving(mf_layer *l, const float *mean, const float *var)
{
    MF_ASSERT(l->ops == &bn_ops);
    batchnorm *b = (batchnorm *)l;
    float *mm = l->slot[b->mmean].data, *mv = l->slot[b->mvar].data;
    for (int c = 0; c < b->C; c++) {
        mm[c] = b->momentum * mm[c] + (1.0f - b->momentum) * mean[c];
        mv[c] = b->momentum * mv[c] + (1.0f - b->momentum) * var[c];
    }
}

mf_status mf_batchnorm_set_momentum(mf_layer *l, float momentum)
{
    if (l->ops != &bn_ops)
        return mf_fail(MF_STATUS_INVALID, "layer '%s' is a %s, not a BatchNormalization", l->name, l->ops->kind);
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return mf_fail(MF_STATUS_INVALID, "BatchNormalization '%s': momentum must be in [0, 1], got %g", l->name,
                       (double)momentum);
    ((batchnorm *)l)->momentum = momentum;
    return MF_STATUS_OK;
}
