/* deterministic.c: the built-in train step whose result does not depend on
 * the number of ranks or threads ([dist] deterministic, mf_fit_set_deterministic;
 * the design: docs/deterministic.md).
 *
 * A rank's batch of b rows is L = b / g chunks of g rows; its chunks are
 * global chunks rank * L .. rank * L + L - 1 (the data shard gives rank r rows
 * r*b .. (r+1)*b of the global batch). Each chunk runs forward and backward on
 * its own, with its own BatchNorm statistics and a dropout stream of (seed,
 * step, global chunk); its gradient is kept aside. Then:
 *   1. the largest gradient magnitude of any chunk on any rank (MPI MAX) fixes
 *      one exponent e for the step, with max * 2^e * chunks < 2^49;
 *   2. every chunk's gradient becomes int64 round(g * 2^e), summed exactly on
 *      the rank and by an int64 MPI_SUM over the ranks;
 *   3. gradient = sum * 2^-e / chunks, the same float on every rank whatever
 *      the split; then the optimizer.
 * BatchNorm's moving statistics: every chunk's (mean, variance) is gathered in
 * global chunk order and their average makes one update per step. The loss
 * each chunk adds to the epoch's mean is rounded to a multiple of 2^-24, so
 * the double sums of it are exact in any order. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "fit_internal.h"

struct mf_det {
    int chunk; /* g */
    /* the trainable tensors' ranges of the gradient buffer, packed into Pt
     * floats: only they are kept, summed and sent */
    size_t *off, *len;
    int n_ranges, cap_ranges;
    size_t Pt;
    float *store; /* L - 1 chunk gradients of Pt floats (the last stays in place) */
    size_t store_floats;
    int64_t *acc; /* Pt */
    size_t acc_n;
    /* BatchNorm records of the step: per local chunk, rec_floats floats (mean
     * and variance of every BatchNorm in forward order) */
    float *rec;
    size_t rec_cap, rec_floats, rec_pos;
    int rec_chunk, rec_k, rec_bad; /* the chunk recording, its calls so far */
    mf_layer **bn; /* the recording layers, in order */
    int *bn_c;
    int n_bn, cap_bn;
    float *all; /* every rank's records, in global chunk order */
    size_t all_cap;
};

mf_det *mf_det_create(int chunk)
{
    mf_det *d = mf_alloc(sizeof *d);
    memset(d, 0, sizeof *d);
    d->chunk = chunk;
    return d;
}

void mf_det_free(mf_det *d)
{
    if (!d)
        return;
    mf_free(d->off);
    mf_free(d->len);
    mf_free(d->store);
    mf_free(d->acc);
    mf_free(d->rec);
    mf_free(d->bn);
    mf_free(d->bn_c);
    mf_free(d->all);
    mf_free(d);
}

int mf_det_chunk(const mf_det *d) { return d ? d->chunk : 0; }

/* cap elements of size es at *p, grown (contents not kept) to hold n */
static void *grow(void *p, size_t *cap, size_t n, size_t es)
{
    if (n <= *cap)
        return p;
    mf_free(p);
    *cap = n;
    return mf_alloc((n ? n : 1) * es);
}

/* BatchNorm's statistics of the running chunk (mf_model_set_bn_record). The
 * first chunk of a step lays out the records; later chunks must call the
 * same layers with the same channel counts in the same order. */
static void record(void *user, mf_layer *bn, const float *mean, const float *var, int C)
{
    mf_det *d = user;
    size_t need = d->rec_pos + 2 * (size_t)C;
    if (d->rec_chunk == 0) {
        if (d->n_bn == d->cap_bn) {
            int cap = d->cap_bn ? 2 * d->cap_bn : 64;
            mf_layer **nb = mf_alloc((size_t)cap * sizeof *nb);
            int *nc = mf_alloc((size_t)cap * sizeof *nc);
            if (d->n_bn) {
                memcpy(nb, d->bn, (size_t)d->n_bn * sizeof *nb);
                memcpy(nc, d->bn_c, (size_t)d->n_bn * sizeof *nc);
            }
            mf_free(d->bn);
            mf_free(d->bn_c);
            d->bn = nb;
            d->bn_c = nc;
            d->cap_bn = cap;
        }
        d->bn[d->n_bn] = bn;
        d->bn_c[d->n_bn++] = C;
        if (need > d->rec_cap) { /* chunk 0's records grow as they come */
            size_t cap = need * 2;
            float *nr = mf_alloc(cap * sizeof *nr);
            if (d->rec_pos)
                memcpy(nr, d->rec, d->rec_pos * sizeof *nr);
            mf_free(d->rec);
            d->rec = nr;
            d->rec_cap = cap;
        }
    } else if (d->rec_k >= d->n_bn || d->bn[d->rec_k] != bn || d->bn_c[d->rec_k] != C || need > d->rec_floats) {
        d->rec_bad = 1; /* not chunk 0's sequence */
        return;
    }
    d->rec_k++;
    float *r = d->rec + (size_t)d->rec_chunk * d->rec_floats + d->rec_pos;
    memcpy(r, mean, (size_t)C * sizeof *r);
    memcpy(r + C, var, (size_t)C * sizeof *r);
    d->rec_pos = need;
}

/* After chunk 0: room for all L chunks' records, chunk 0's kept. */
static void rec_layout(mf_det *d, int L)
{
    d->rec_floats = d->rec_pos;
    size_t need = (size_t)L * d->rec_floats;
    if (need > d->rec_cap) {
        float *nr = mf_alloc((need ? need : 1) * sizeof *nr);
        if (d->rec_floats)
            memcpy(nr, d->rec, d->rec_floats * sizeof *nr);
        mf_free(d->rec);
        d->rec = nr;
        d->rec_cap = need;
    }
}

/* The moving statistics' one update: the average of every chunk's records,
 * added in global chunk order (the same order on every rank). */
static mf_status update_moving(mf_fit_ctx *ctx, mf_det *d, int L, int world)
{
    if (d->n_bn == 0)
        return MF_STATUS_OK;
    size_t total = (size_t)L * world, mine = (size_t)L * d->rec_floats;
    const float *all = d->rec;
    if (world > 1) {
        d->all = grow(d->all, &d->all_cap, total * d->rec_floats, sizeof *d->all);
        MF_TRY(mf_comm_allgather_bytes(ctx->comm, d->rec, mine * sizeof(float), d->all));
        mf_comm_count_grad_bytes(ctx->comm, mine * sizeof(float));
        all = d->all;
    }
    size_t off = 0;
    for (int k = 0; k < d->n_bn; k++) {
        int C = d->bn_c[k];
        float *mean = mf_alloc(2 * (size_t)C * sizeof *mean), *var = mean + C;
        for (int c = 0; c < 2 * C; c++) {
            double s = 0.0;
            for (size_t j = 0; j < total; j++)
                s += all[j * d->rec_floats + off + (size_t)c];
            mean[c] = (float)(s / (double)total);
        }
        mf_batchnorm_update_moving(d->bn[k], mean, var);
        mf_free(mean);
        off += 2 * (size_t)C;
    }
    return MF_STATUS_OK;
}

/* The trainable tensors' ranges in the gradient buffer (adjacent ones merged). */
static void plan_ranges(mf_det *d, const mf_model *m)
{
    int n = mf_model_num_param_tensors(m);
    if (n > d->cap_ranges) {
        mf_free(d->off);
        mf_free(d->len);
        d->off = mf_alloc((size_t)n * sizeof *d->off);
        d->len = mf_alloc((size_t)n * sizeof *d->len);
        d->cap_ranges = n;
    }
    d->n_ranges = 0;
    d->Pt = 0;
    for (int i = 0; i < n; i++) {
        mf_param_info p = mf_model_param(m, i);
        if (!p.trainable || p.numel == 0)
            continue;
        int k = d->n_ranges;
        if (k > 0 && d->off[k - 1] + d->len[k - 1] == p.offset) {
            d->len[k - 1] += p.numel;
        } else {
            d->off[k] = p.offset;
            d->len[k] = p.numel;
            d->n_ranges++;
        }
        d->Pt += p.numel;
    }
}

/* dst (n, NULL: not kept) = src; *cmax = max(*cmax, |src|); *bad |= a NaN or
 * infinity in src */
static void copy_max(float *restrict dst, const float *restrict src, size_t n, float *cmax, int *bad)
{
    float mx = *cmax;
    int b = 0;
    /* threads split the elements: a maximum and an or are exact in any order */
#pragma omp parallel for simd reduction(max : mx) reduction(| : b) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = src[i], a = fabsf(v);
        if (dst)
            dst[i] = v;
        mx = a > mx ? a : mx;
        b |= !(a <= FLT_MAX);
    }
    *cmax = mx;
    *bad |= b;
}

/* Integers below 2^51 in magnitude and doubles convert both ways through the
 * bits of q + 1.5 * 2^52 (the addition rounds q to the nearest integer, ties
 * to even): plain adds and bit casts that vectorise with AVX2 and AVX-512F,
 * where a double <-> int64 conversion instruction needs AVX-512DQ. */
#define MAGIC 6755399441055744.0 /* 1.5 * 2^52 */
#define MAGIC_BITS 0x4338000000000000LL

/* acc (n) (= if first, else +=) round(v * scale), |v * scale| < 2^51 */
MF_SIMD_CLONES
static void quantize_block(int64_t *restrict acc, const float *restrict v, size_t n, double scale, int first)
{
    if (first) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            double t = (double)v[i] * scale + MAGIC;
            int64_t b;
            memcpy(&b, &t, sizeof b);
            acc[i] = b - MAGIC_BITS;
        }
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double t = (double)v[i] * scale + MAGIC;
        int64_t b;
        memcpy(&b, &t, sizeof b);
        acc[i] += b - MAGIC_BITS;
    }
}

/* g (n) = a * unscale, |a| < 2^51 */
MF_SIMD_CLONES
static void dequantize_block(float *restrict g, const int64_t *restrict a, size_t n, double unscale)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        int64_t b = a[i] + MAGIC_BITS;
        double t;
        memcpy(&t, &b, sizeof t);
        g[i] = (float)((t - MAGIC) * unscale);
    }
}

#define QBLOCK 16384 /* elements per piece of work of the two loops */

/* v * scale is exact (scale a power of 2); each element's integer is a pure
 * function of its value, so threads may split the elements any way */
static void quantize(int64_t *acc, const float *v, size_t n, double scale, int first)
{
    long pieces = (long)((n + QBLOCK - 1) / QBLOCK);
#pragma omp parallel for schedule(static) if (pieces > 4)
    for (long p = 0; p < pieces; p++) {
        size_t lo = (size_t)p * QBLOCK, k = n - lo < QBLOCK ? n - lo : QBLOCK;
        quantize_block(acc + lo, v + lo, k, scale, first);
    }
}

static void dequantize(float *g, const int64_t *a, size_t n, double unscale)
{
    long pieces = (long)((n + QBLOCK - 1) / QBLOCK);
#pragma omp parallel for schedule(static) if (pieces > 4)
    for (long p = 0; p < pieces; p++) {
        size_t lo = (size_t)p * QBLOCK, k = n - lo < QBLOCK ? n - lo : QBLOCK;
        dequantize_block(g + lo, a + lo, k, unscale);
    }
}

/* 2^e with max * 2^e * total < 2^49 (max > 0, finite): every value and
 * every sum stays below 2^51, MAGIC's range */
static int exponent_for(double max, size_t total)
{
    int ex;
    frexp(max, &ex); /* max < 2^ex */
    int tb = 0;
    while (((size_t)1 << tb) < total)
        tb++;
    return 49 - ex - tb;
}

/* v on the 2^-24 grid */
static double grid24(double v) { return ldexp(nearbyint(ldexp(v, 24)), -24); }

/* The loss sum of a test chunk: each row's w * loss on the grid. */
static double row_loss_sum(const mf_batch *b, const mf_tensor *logits)
{
    int N = logits->shape.d[0], C = logits->shape.d[1];
    double sum = 0.0;
    for (int i = 0; i < N; i++) {
        double w = b->w ? (double)b->w[i] : 1.0;
        if (w == 0.0)
            continue;
        const float *z = logits->data + (size_t)i * C;
        double m = z[0], e = 0.0;
        for (int c = 1; c < C; c++)
            m = z[c] > m ? z[c] : m;
        for (int c = 0; c < C; c++)
            e += exp((double)z[c] - m);
        sum += grid24(w * (m + log(e) - (double)z[b->y[i]]));
    }
    return sum;
}

mf_status mf_det_test_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs)
{
    int g = ctx->det->chunk;
    if (b->n % g != 0)
        return mf_fail(MF_STATUS_INVALID,
                       "deterministic mode cuts batches into chunks of %d rows, but this test batch has %d rows", g,
                       b->n);
    mf_shape in = mf_model_input_shape(ctx->model);
    size_t xs = mf_shape_sample_numel(&in);
    for (int j = 0; j < b->n / g; j++) {
        mf_batch mb = mf_batch_part(b, j, g, xs);
        mf_tensor logits = mf_model_forward(ctx->model, mb.x, g, MF_MODE_INFER, NULL);
        mf_fit_update_metrics_sum(ctx, &mb, &logits, row_loss_sum(&mb, &logits));
    }
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}

mf_status mf_det_train_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs)
{
    mf_det *d = ctx->det;
    int g = d->chunk, world = ctx->comm ? mf_comm_size(ctx->comm) : 1, rank = ctx->comm ? mf_comm_rank(ctx->comm) : 0;
    if (b->n % g != 0)
        return mf_fail(MF_STATUS_INVALID,
                       "rank %d, step %ld: deterministic mode cuts batches into chunks of %d rows, but this batch has "
                       "%d rows: make [dist] chunk divide data.batch_size",
                       rank, ctx->global_step, g, b->n);
    int L = b->n / g;
    size_t total = (size_t)L * world;
    mf_model *m = ctx->model;
    plan_ranges(d, m);
    size_t P = d->Pt;
    d->store = grow(d->store, &d->store_floats, (size_t)(L - 1) * P, sizeof *d->store);
    d->acc = grow(d->acc, &d->acc_n, P, sizeof *d->acc);
    mf_shape in = mf_model_input_shape(m);
    size_t xs = mf_shape_sample_numel(&in);

    /* the chunks: no bucket allreduce during their backward passes */
    mf_fit_hook_backward(ctx, 0);
    mf_model_set_bn_record(m, record, d);
    d->n_bn = 0;
    d->rec_pos = 0;
    d->rec_bad = 0;
    double max = 0.0;
    for (int j = 0; j < L; j++) {
        mf_batch mb = mf_batch_part(b, j, g, xs);
        /* dropout: a stream of (seed, step, global chunk), wherever it runs */
        mf_rng rng;
        mf_rng_seed2(&rng, ctx->seed ^ 0xd37e4a1c0b5f9e21ull,
                     ((uint64_t)ctx->global_step << 24) + (uint64_t)rank * L + (uint64_t)j);
        d->rec_chunk = j;
        d->rec_pos = 0;
        d->rec_k = 0;
        mf_tensor logits = mf_model_forward(m, mb.x, g, MF_MODE_TRAIN, &rng);
        if (j == 0)
            rec_layout(d, L);
        else if (d->rec_k != d->n_bn)
            d->rec_bad = 1;
        const float *dlogits;
        double loss = mf_fit_compiled_loss(ctx, &mb, &logits, &dlogits);
        mf_model_zero_grad(m);
        mf_model_backward(m, dlogits, NULL);
        /* kept aside (the last chunk's stay in the gradient buffer), and
         * their largest magnitude */
        const float *gr = mf_model_grads(m);
        float *st = j < L - 1 ? d->store + (size_t)j * P : NULL;
        float cmax = 0.0f;
        int bad = 0;
        for (int k = 0; k < d->n_ranges; k++) {
            copy_max(st, gr + d->off[k], d->len[k], &cmax, &bad);
            if (st)
                st += d->len[k];
        }
        max = bad ? NAN : ((double)cmax > max || max != max ? (double)cmax : max);
        /* the chunk's loss sum on a 2^-24 grid: the epoch's sums stay exact */
        double sum = grid24(loss * g);
        mf_fit_update_metrics_sum(ctx, &mb, &logits, sum);
    }
    mf_model_set_bn_record(m, NULL, NULL);
    mf_fit_hook_backward(ctx, 1);
    mf_status s = d->rec_bad ? mf_fail(MF_STATUS_INVALID,
                                       "deterministic mode: the BatchNorm layers training in this step changed "
                                       "between its chunks")
                             : MF_STATUS_OK;
    if (ctx->comm && world > 1) {
        MF_TRY(mf_comm_agree(ctx->comm, s));
        if (max != max)
            max = INFINITY;
        MF_TRY(mf_comm_allreduce_max_f64(ctx->comm, &max));
    }
    MF_TRY(s);

    /* the exact sum of the chunks' gradients */
    float *grads = mf_model_grads(m);
    if (!isfinite(max)) { /* mf_fit_apply_update names the step */
        grads[0] = NAN;
    } else {
        int e = max > 0.0 ? exponent_for(max, total) : 0;
        double scale = ldexp(1.0, e);
        int64_t *acc = d->acc;
        for (int k = 0; k < d->n_ranges; k++) { /* the last chunk's, from the gradient buffer */
            quantize(acc, grads + d->off[k], d->len[k], scale, 1);
            acc += d->len[k];
        }
        for (int j = 0; j < L - 1; j++)
            quantize(d->acc, d->store + (size_t)j * P, P, scale, 0);
        if (ctx->comm && world > 1)
            MF_TRY(mf_comm_allreduce_sum_i64(ctx->comm, d->acc, P));
        /* back into the trainable ranges (the frozen ones stay zero) */
        const int64_t *a = d->acc;
        double unscale = ldexp(1.0, -e) / (double)total;
        for (int k = 0; k < d->n_ranges; k++) {
            dequantize(grads + d->off[k], a, d->len[k], unscale);
            a += d->len[k];
        }
    }
    MF_TRY(update_moving(ctx, d, L, world));
    MF_TRY(mf_fit_apply_update(ctx));
    mf_fit_metrics_logs(ctx, logs);
    return MF_STATUS_OK;
}
