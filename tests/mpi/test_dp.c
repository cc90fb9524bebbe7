/* test_dp.c: data-parallel training is the same math as one process.
 *
 *   test_dp train MODEL MODE DATA OUT     train K steps, rank 0 writes the parameters to OUT
 *       MODEL  bn (small CNN with BatchNorm) | nobn (convolutions without BatchNorm)
 *       MODE   dp       every rank batch B (run under mpiexec -n 2), parameters
 *                       hashed and compared across ranks after every step
 *              syncbn   dp with synchronized BatchNorm
 *              accum    one rank, batch 2B as 2 accumulated micro-batches of B
 *              big      one rank, batch 2B
 *              dp_unfreeze, accum_unfreeze   dp / accum starting with the head alone trainable;
 *                       a callback unfreezes the top part (BatchNorm frozen) before step 2 and
 *                       everything (BatchNorm too) before step 3: the gradient buckets must follow
 *   test_dp unfreeze_mismatch DATA        rank 1 alone unfreezes: every rank stops, naming rank 1
 *   test_dp double_backward DATA          two backward passes with sync on in one step: an error
 *   test_dp compare A B TOL               max relative difference of two parameter files < TOL
 *   test_dp differ A B TOL                ... > TOL (the comparison is not vacuous)
 *   test_dp fail_loader DATA              rank 1 meets an unreadable image (on_bad_image = fail)
 *   test_dp fail_step DATA                rank 1's train step fails before the allreduce
 *   test_dp buckets                       bucket planning of MobileNetV2, frozen or not
 *   test_dp compress fp16|bf16            the 16-bit gradient exchange with error feedback
 *   test_dp bench_overlap                 mf_comm_bench_overlap (bench --comm's overlap cost): the
 *                                         compute called as often as asked, times that add up
 *       (train MODE dp_fp16, dp_bf16: dp with the exchange compressed)
 *
 * Relative difference: |a - b| / max(|a|, |b|, 1e-2) per parameter, the largest (the floor keeps
 * parameters that are ~0 from turning float rounding into huge ratios). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "data/dataset.h"
#include "test.h"

enum { B = 4, K = 3, SIZE = 32 };

static mf_model *make_model(const char *kind)
{
    mf_model *m;
    if (strcmp(kind, "bn") == 0) {
        if (mf_small_cnn(&m, SIZE, 3, 8, 0.0f, 11) != MF_STATUS_OK)
            return NULL;
        return m;
    }
    m = mf_model_create("nobn");
    int x = mf_model_input(m, mf_shape4(0, SIZE, SIZE, 3));
    x = mf_model_add(m, mf_conv2d(NULL, 8, 3, 2, MF_PADDING_SAME, 1), x);
    x = mf_model_add(m, mf_relu(NULL, 0), x);
    x = mf_model_add(m, mf_depthwise_conv2d(NULL, 3, 2, MF_PADDING_SAME, 1), x);
    x = mf_model_add(m, mf_conv2d(NULL, 16, 1, 1, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, mf_relu(NULL, 6), x);
    x = mf_model_add(m, mf_global_avg_pool2d(NULL), x);
    x = mf_model_add(m, mf_dense(NULL, 3, 1), x);
    if (mf_model_build(m, 11) != MF_STATUS_OK)
        return NULL;
    return m;
}

/* The layer after which the head starts (global average pooling), and one
 * about half way into the model. */
static const char *head_start(mf_model *m) { return mf_layer_name(mf_model_layer(m, mf_model_num_layers(m) - 3)); }
static const char *middle(mf_model *m) { return mf_layer_name(mf_model_layer(m, mf_model_num_layers(m) / 2)); }

/* unfreeze: before step 2 (index 1) the top half, before step 3 everything;
 * rank_only >= 0: only that rank does it (a mistake fit must catch) */
typedef struct unfreezer {
    mf_model *m;
    int rank_only;
} unfreezer;

static mf_status unfreeze_batch_begin(mf_callback *cb, mf_fit_ctx *ctx, int step, mf_logs *logs)
{
    (void)logs;
    unfreezer *u = cb->user;
    if (u->rank_only >= 0 && mf_comm_rank(mf_fit_comm(ctx)) != u->rank_only)
        return MF_STATUS_OK;
    if (step == 1)
        return mf_model_set_trainable_from(u->m, middle(u->m), 0);
    if (step == 2)
        return mf_model_set_trainable_from(u->m, mf_layer_name(mf_model_layer(u->m, 0)), 1);
    return MF_STATUS_OK;
}

static int train(mf_comm *comm, const char *kind, const char *mode, const char *data, const char *out)
{
    int rank = mf_comm_rank(comm), world = mf_comm_size(comm);
    int unfreeze = strstr(mode, "_unfreeze") != NULL;
    int dp = strncmp(mode, "dp", 2) == 0 || strcmp(mode, "syncbn") == 0;
    if (dp != (world > 1)) {
        fprintf(stderr, "mode %s is for %s\n", mode, dp ? "mpiexec -n 2" : "one rank");
        return 2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/train", data);
    mf_dataset_options dopt = mf_dataset_options_default();
    mf_dataset *ds;
    MF_CHECK(mf_dataset_open(&ds, path, &dopt) == MF_STATUS_OK);
    mf_loader_options lo = mf_loader_options_default();
    lo.batch_size = dp ? B : 2 * B;
    lo.input_size = SIZE;
    lo.threads = 1;
    lo.seed = 21;
    lo.rank = rank;
    lo.world = world;
    mf_loader *l;
    MF_CHECK(mf_loader_create(&l, ds, &lo) == MF_STATUS_OK);
    mf_model *m = make_model(kind);
    MF_CHECK(m != NULL);
    mf_fit_ctx *ctx = mf_fit_ctx_create(m, 5, rank);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
    oo.momentum = 0.9f;
    mf_schedule sch = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.05f};
    MF_CHECK(mf_compile(ctx, mf_optimizer_create(m, &oo), &sch, NULL, "accuracy") == MF_STATUS_OK);
    if (strncmp(mode, "accum", 5) == 0)
        MF_CHECK(mf_fit_set_accumulation(ctx, 2) == MF_STATUS_OK);
    if (unfreeze)
        MF_CHECK(mf_model_set_trainable_from(m, head_start(m), 0) == MF_STATUS_OK);
    unfreezer u = {m, -1};
    mf_callback cb = {.name = "unfreeze", .on_train_batch_begin = unfreeze_batch_begin, .user = &u};
    mf_callback *cbs[1] = {&cb};
    mf_dist_options d = mf_dist_options_default();
    d.check_identical = 1;
    d.sync_batchnorm = strcmp(mode, "syncbn") == 0;
    d.bucket_bytes = 4096; /* several buckets even for a small model */
    d.compress = strcmp(mode, "dp_fp16") == 0 ? MF_COMPRESS_FP16
        : strcmp(mode, "dp_bf16") == 0        ? MF_COMPRESS_BF16
                                              : MF_COMPRESS_NONE;
    MF_CHECK(mf_fit_distribute(ctx, comm, &d) == MF_STATUS_OK);
    mf_fit_options fo = mf_fit_options_default();
    fo.epochs = 1;
    fo.steps_per_epoch = K;
    fo.verbose = 0;
    fo.callbacks = cbs;
    fo.n_callbacks = unfreeze;
    size_t frozen_at_start = mf_model_count_non_trainable(m);
    mf_status s = mf_fit(ctx, l, NULL, &fo);
    MF_CHECK_MSG(s == MF_STATUS_OK, "fit: %s", mf_last_error());
    if (unfreeze) { /* it did unfreeze, BatchNorm included */
        int all = 1;
        for (int i = 0; i < mf_model_num_layers(m); i++)
            all &= mf_layer_trainable(mf_model_layer(m, i));
        MF_CHECK_MSG(all && mf_model_count_non_trainable(m) < frozen_at_start,
                     "%zu non-trainable at the start, %zu at the end", frozen_at_start,
                     mf_model_count_non_trainable(m));
    }
    if (rank == 0) {
        FILE *f = fopen(out, "wb");
        MF_CHECK(f && fwrite(mf_model_params(m), sizeof(float), mf_model_num_params(m), f) == mf_model_num_params(m));
        if (f)
            fclose(f);
        printf("%s %s: %d steps of %d x %d images, loss %.6f\n", kind, mode, K, lo.batch_size, world,
               mf_fit_history(ctx, 0)->value[0]);
    }
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
    mf_loader_free(l);
    mf_dataset_free(ds);
    return 0;
}

static float *read_floats(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *v = malloc((size_t)bytes);
    *n = fread(v, sizeof(float), (size_t)bytes / sizeof(float), f);
    fclose(f);
    return v;
}

static int compare(const char *a, const char *b, double tol, int expect_differ)
{
    size_t na = 0, nb = 0;
    float *x = read_floats(a, &na), *y = read_floats(b, &nb);
    MF_CHECK_MSG(x && y && na == nb && na > 0, "cannot compare %s and %s", a, b);
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; x && y && i < na && na == nb; i++) {
        double d = fabs((double)x[i] - y[i]) / fmax(fmax(fabs(x[i]), fabs(y[i])), 1e-2);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    printf("%s vs %s: %zu parameters, max relative difference %.3g (at %zu), %s %.1g\n", a, b, na, worst, at,
           expect_differ ? "must exceed" : "tolerance", tol);
    MF_CHECK(expect_differ ? worst > tol : worst < tol);
    free(x);
    free(y);
    return 0;
}

/* The two failure cases share their set-up: the nobn model on DATA/train,
 * batch B per rank, plain SGD, distributed over comm. */
typedef struct small_job {
    mf_dataset *ds;
    mf_loader *l;
    mf_model *m;
    mf_fit_ctx *ctx;
} small_job;

/* unreadable_on_rank1: rank 1 alone sees every image as /nonexistent/leaf.jpg */
static void small_job_start(small_job *j, mf_comm *comm, const char *data, int unreadable_on_rank1)
{
    int rank = mf_comm_rank(comm);
    char path[1024];
    snprintf(path, sizeof path, "%s/train", data);
    mf_dataset_options dopt = mf_dataset_options_default();
    MF_CHECK(mf_dataset_open(&j->ds, path, &dopt) == MF_STATUS_OK);
    if (unreadable_on_rank1 && rank == 1)
        for (int i = 0; i < j->ds->n; i++) {
            mf_free(j->ds->items[i].source);
            j->ds->items[i].source = mf_strdup("/nonexistent/leaf.jpg");
        }
    mf_loader_options lo = mf_loader_options_default();
    lo.batch_size = B;
    lo.input_size = SIZE;
    lo.threads = 1;
    lo.rank = rank;
    lo.world = mf_comm_size(comm);
    lo.on_bad_image = MF_BAD_IMAGE_FAIL;
    MF_CHECK(mf_loader_create(&j->l, j->ds, &lo) == MF_STATUS_OK);
    j->m = make_model("nobn");
    j->ctx = mf_fit_ctx_create(j->m, 5, rank);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
    MF_CHECK(mf_compile(j->ctx, mf_optimizer_create(j->m, &oo), NULL, NULL, "") == MF_STATUS_OK);
    MF_CHECK(mf_fit_distribute(j->ctx, comm, NULL) == MF_STATUS_OK);
}

static void small_job_end(small_job *j)
{
    mf_fit_ctx_free(j->ctx);
    mf_model_free(j->m);
    mf_loader_free(j->l);
    mf_dataset_free(j->ds);
}

static int fail_loader(mf_comm *comm, const char *data)
{
    small_job j;
    small_job_start(&j, comm, data, 1);
    mf_fit_options fo = mf_fit_options_default();
    fo.verbose = 0;
    mf_status s = mf_fit(j.ctx, j.l, NULL, &fo);
    /* every rank stops, with rank 1's message */
    MF_CHECK(s != MF_STATUS_OK);
    MF_CHECK_MSG(strstr(mf_last_error(), "rank 1: bad image /nonexistent/leaf.jpg") != NULL, "got: %s",
                 mf_last_error());
    if (mf_comm_rank(comm) == 0)
        fprintf(stderr, "fit stopped on every rank: %s\n", mf_last_error());
    small_job_end(&j);
    return 0;
}

static mf_status failing_step(mf_fit_ctx *ctx, const mf_batch *b, mf_logs *logs, void *user)
{
    (void)user;
    if (mf_comm_rank(mf_fit_comm(ctx)) == 1 && mf_fit_global_step(ctx) == 2)
        return mf_fail(MF_STATUS_NUMERIC, "rank 1's custom step found a NaN in its own bookkeeping");
    return mf_train_step_default(ctx, b, logs, NULL);
}

static int fail_step(mf_comm *comm, const char *data)
{
    small_job j;
    small_job_start(&j, comm, data, 0);
    mf_fit_options fo = mf_fit_options_default();
    fo.verbose = 0;
    fo.epochs = 3;
    fo.train_step = failing_step;
    mf_fit(j.ctx, j.l, NULL, &fo); /* rank 1 ends the job inside: nothing returns here */
    fprintf(stderr, "rank %d: fit returned although rank 1 failed mid-step\n", mf_comm_rank(comm));
    small_job_end(&j);
    return 1;
}

static int unfreeze_mismatch(mf_comm *comm, const char *data)
{
    small_job j;
    small_job_start(&j, comm, data, 0);
    MF_CHECK(mf_model_set_trainable_from(j.m, head_start(j.m), 0) == MF_STATUS_OK);
    MF_CHECK(mf_fit_sync_trainable(j.ctx) == MF_STATUS_OK); /* the same on both: fine */
    unfreezer u = {j.m, 1};
    mf_callback cb = {.name = "unfreeze", .on_train_batch_begin = unfreeze_batch_begin, .user = &u};
    mf_callback *cbs[1] = {&cb};
    mf_fit_options fo = mf_fit_options_default();
    fo.verbose = 0;
    fo.steps_per_epoch = K;
    fo.callbacks = cbs;
    fo.n_callbacks = 1;
    mf_status s = mf_fit(j.ctx, j.l, NULL, &fo);
    /* every rank stops before the step, with the same message naming rank 1 */
    MF_CHECK(s == MF_STATUS_INVALID);
    MF_CHECK_MSG(strstr(mf_last_error(), "global step 1: rank 1 trains other layers than rank 0") != NULL, "got: %s",
                 mf_last_error());
    MF_CHECK(mf_fit_global_step(j.ctx) == 1);
    if (mf_comm_rank(comm) == 0)
        fprintf(stderr, "fit stopped on every rank: %s\n", mf_last_error());
    small_job_end(&j);
    return 0;
}

/* A loop of one's own that runs backward twice in a step with gradient sync
 * on: the first pass's buckets are already being reduced in place. */
static int double_backward(mf_comm *comm, const char *data)
{
    small_job j;
    small_job_start(&j, comm, data, 0);
    mf_dist_options d = mf_dist_options_default();
    d.bucket_bytes = 1024; /* buckets start during the first backward */
    MF_CHECK(mf_fit_distribute(j.ctx, comm, &d) == MF_STATUS_OK);
    const mf_batch *b;
    MF_CHECK(mf_loader_begin_epoch(j.l, 0) == MF_STATUS_OK);
    MF_CHECK(mf_loader_next(j.l, &b) == MF_STATUS_OK);
    mf_fit_zero_grad(j.ctx);
    for (int pass = 0; pass < 2; pass++) {
        mf_tensor logits = mf_fit_forward(j.ctx, b, MF_MODE_TRAIN);
        const float *dlogits;
        mf_fit_compiled_loss(j.ctx, b, &logits, &dlogits);
        mf_fit_backward(j.ctx, dlogits);
    }
    mf_status s = mf_apply_gradients(j.ctx);
    MF_CHECK(s == MF_STATUS_INVALID);
    MF_CHECK_MSG(strstr(mf_last_error(), "another backward pass began in this step") != NULL, "got: %s",
                 mf_last_error());
    MF_CHECK(mf_fit_global_step(j.ctx) == 0); /* no update */
    /* the accumulation it points to works: sync off for the first pass */
    mf_fit_zero_grad(j.ctx);
    for (int pass = 0; pass < 2; pass++) {
        mf_tensor logits = mf_fit_forward(j.ctx, b, MF_MODE_TRAIN);
        const float *dlogits;
        mf_fit_compiled_loss(j.ctx, b, &logits, &dlogits);
        mf_fit_set_grad_sync(j.ctx, pass == 1);
        mf_fit_backward(j.ctx, dlogits);
    }
    s = mf_apply_gradients(j.ctx);
    MF_CHECK_MSG(s == MF_STATUS_OK, "accumulation: %s", mf_last_error());
    if (mf_comm_rank(comm) == 0)
        fprintf(stderr, "double backward refused, accumulation works\n");
    small_job_end(&j);
    return 0;
}

/* The compressed exchange on hand-made gradients, rank r holding (r + 1) * v:
 * every step's result is the exact average up to 16-bit rounding, and thanks
 * to error feedback the mean over the steps converges on it, even for values
 * fp16 cannot hold (1e-9 lies below its smallest subnormal, 6e-8). */
static int compress(mf_comm *comm, const char *mode)
{
    int bf16 = strcmp(mode, "bf16") == 0, size = mf_comm_size(comm), rank = mf_comm_rank(comm);
    mf_model *m = make_model("bn");
    MF_CHECK(m != NULL);
    mf_grad_sync *g = mf_grad_sync_create(comm, m, 256, 1);
    MF_CHECK_MSG(mf_grad_sync_num_buckets(g) >= 4, "%d buckets", mf_grad_sync_num_buckets(g));
    mf_comm_set_timeout(comm, 60); /* a mismatch of collectives hangs: end it */
    MF_CHECK(mf_grad_sync_set_compress(g, bf16 ? MF_COMPRESS_BF16 : MF_COMPRESS_FP16) == MF_STATUS_OK);
    size_t n = mf_model_num_params(m);
    float *grads = mf_model_grads(m);
    double *want = malloc(n * sizeof *want), *mean = calloc(n, sizeof *mean);
    static const double v[] = {1e-9, -3.7e-7, 1.0 / 3.0, -2.5e-3, 1234.567, 7e-5};
    double ranks_sum = size * (size + 1) / 2.0; /* sum of (r + 1) */
    enum { STEPS = 200 };
    long long bytes0 = mf_comm_grad_bytes(comm);
    int step_bad = 0;
    for (int step = 0; step < STEPS; step++) {
        for (size_t k = 0; k < n; k++) {
            grads[k] = (float)((rank + 1) * v[k % 6] * (1.0 + 1e-3 * (double)(k % 7)));
            want[k] = ranks_sum / size * v[k % 6] * (1.0 + 1e-3 * (double)(k % 7));
        }
        /* a backward pass as the model reports it, last layer first, each
         * rank at its own uneven pace: the ranks see the buckets' exchanges
         * complete at different points, yet must start the same collectives
         * in the same order */
        mf_grad_sync_begin(g);
        mf_grad_sync_backward_begin(g, 1);
        for (int l = mf_model_num_layers(m) - 1; l >= 0; l--) {
            mf_grad_sync_layer_done(g, l);
            if ((l * 7 + rank * 3 + step) % 4 == rank % 4)
                for (double t0 = mf_now(); mf_now() - t0 < 3e-4;)
                    ; /* 0.3 ms of "computation" */
        }
        MF_CHECK(mf_grad_sync_finish(g) == MF_STATUS_OK);
        for (size_t k = 0; k < n; k++) {
            mean[k] += grads[k] / (double)STEPS;
            /* one step: within 16-bit rounding of the value plus what the
             * previous steps carried (fp16 below its normal range: absolute) */
            double tol = bf16 ? 2e-2 * fabs(want[k]) : fmax(2e-3 * fabs(want[k]), 1.2e-7);
            step_bad += fabs(grads[k] - want[k]) > tol;
        }
    }
    MF_CHECK_MSG(step_bad == 0, "%d values off by more than 16-bit rounding", step_bad);
    /* over STEPS steps the carried remainders (each sender's and each sum's)
     * cancel every rounding but the last step's: the mean is exact to a few
     * 16-bit steps / STEPS, plus float's rounding of the sums */
    int mean_bad = 0;
    for (size_t k = 0; k < n; k++) {
        double tol = (bf16 ? 0x1p-8 : 0x1p-11) * fabs(want[k]) * 4 / STEPS + 6e-8 * 4 / STEPS + 1e-6 * fabs(want[k]);
        if (fabs(mean[k] - want[k]) > tol && mean_bad++ < 5)
            fprintf(stderr, "rank %d: param %zu: mean %.9g, want %.9g\n", rank, k, mean[k], want[k]);
    }
    MF_CHECK_MSG(mean_bad == 0, "%d means not within rounding / steps of the average", mean_bad);
    /* and the tiny value fp16 cannot represent did arrive, on average */
    MF_CHECK_NEAR(mean[0] / want[0], 1.0, 0.05);
    /* half the bytes of floats (buckets are padded to 16 floats) */
    long long bytes = mf_comm_grad_bytes(comm) - bytes0;
    MF_CHECK_MSG(bytes >= (long long)(n * 2 * STEPS) && bytes < (long long)(n * 2 * STEPS) * 11 / 10,
                 "%lld bytes for %zu parameters x %d steps", bytes, n, STEPS);
    free(want);
    free(mean);
    mf_grad_sync_free(g);
    mf_model_free(m);
    if (rank == 0)
        fprintf(stderr, "%s exchange: %d steps over %d ranks, means exact to rounding / steps\n", mode, STEPS, size);
    return 0;
}

static int buckets(mf_comm *comm)
{
    mf_model *m;
    MF_CHECK(mf_mobilenet_v2_classifier(&m, 1.0f, 96, 3, 0.2f, 1) == MF_STATUS_OK);
    /* 2,227,715 trainable floats (8.5 MiB) in 4 MiB buckets: 3 */
    mf_grad_sync *g = mf_grad_sync_create(comm, m, (size_t)4 << 20, 1);
    MF_CHECK_MSG(mf_grad_sync_num_buckets(g) == 3, "%d buckets", mf_grad_sync_num_buckets(g));
    mf_grad_sync_free(g);
    /* a frozen base: only the head's kernel and bias, adjacent, one bucket */
    mf_model_set_trainable_upto(m, "out_relu", 0);
    g = mf_grad_sync_create(comm, m, (size_t)4 << 20, 1);
    MF_CHECK_MSG(mf_grad_sync_num_buckets(g) == 1, "%d buckets with a frozen base", mf_grad_sync_num_buckets(g));
    mf_grad_sync_free(g);
    /* frozen layers between trainable ones split buckets: a BN in the middle */
    mf_model_set_trainable_upto(m, "out_relu", 1);
    mf_layer_set_trainable(mf_model_find_layer(m, "block_8_expand"), 0);
    g = mf_grad_sync_create(comm, m, (size_t)64 << 20, 1);
    MF_CHECK_MSG(mf_grad_sync_num_buckets(g) == 2, "%d buckets around a frozen layer", mf_grad_sync_num_buckets(g));
    mf_grad_sync_free(g);
    mf_model_free(m);
    return 0;
}

/* bench --comm's overlap measurement: the work runs `chunks` times in each
 * timed pass (alone, beside the exchange) of every run and the unmeasured
 * first; every time is a real duration; one rank is refused. */
typedef struct counting_work {
    long calls;
    volatile double sink;
} counting_work;

static void count_call(void *arg)
{
    counting_work *w = arg;
    w->calls++;
    double x = 0.0;
    for (int i = 0; i < 20000; i++) /* about 20 us: long enough to time */
        x += 1.0 / (i + 1.0);
    w->sink = x;
}

static int bench_overlap(mf_comm *comm)
{
    enum { REPS = 3, CHUNKS = 40 };
    counting_work w = {0, 0.0};
    double ex[REPS], alone[REPS], beside[REPS], after[REPS];
    mf_status s = mf_comm_bench_overlap(comm, 1 << 18, REPS, CHUNKS, count_call, &w, ex, alone, beside, after);
    if (mf_comm_size(comm) < 2) {
        MF_CHECK(s == MF_STATUS_INVALID);
        MF_CHECK(strstr(mf_last_error(), "needs 2 or more ranks, got 1") != NULL);
        MF_CHECK(w.calls == 0);
        return 0;
    }
    MF_CHECK_MSG(s == MF_STATUS_OK, "%s", mf_last_error());
    MF_CHECK_MSG(w.calls == (long)(REPS + 1) * 2 * CHUNKS, "work called %ld times", w.calls);
    for (int r = 0; r < REPS; r++) {
        MF_CHECK(ex[r] > 0.0 && ex[r] < 10.0);
        /* 40 calls of >= ~20 us each (a fast core still needs > 100 us) */
        MF_CHECK_MSG(alone[r] > 1e-4 && alone[r] < 10.0, "alone %g s", alone[r]);
        MF_CHECK_MSG(beside[r] > 1e-4 && beside[r] < 10.0, "beside %g s", beside[r]);
        MF_CHECK(after[r] >= 0.0 && after[r] < 10.0);
    }
    MF_CHECK(mf_comm_bench_overlap(comm, 16, REPS, 0, count_call, &w, ex, alone, beside, after) == MF_STATUS_INVALID);
    MF_CHECK(strstr(mf_last_error(), "0 chunks") != NULL);
    return 0;
}

int main(int argc, char **argv)
{
    mf_comm *comm;
    if (mf_comm_create(&argc, &argv, &comm) != MF_STATUS_OK) {
        fprintf(stderr, "%s\n", mf_last_error());
        return 1;
    }
    size_t live = mf_alloc_live_count();
    int rc = 2;
    if (argc == 6 && strcmp(argv[1], "train") == 0)
        rc = train(comm, argv[2], argv[3], argv[4], argv[5]);
    else if (argc == 5 && strcmp(argv[1], "compare") == 0)
        rc = compare(argv[2], argv[3], atof(argv[4]), 0);
    else if (argc == 5 && strcmp(argv[1], "differ") == 0)
        rc = compare(argv[2], argv[3], atof(argv[4]), 1);
    else if (argc == 3 && strcmp(argv[1], "fail_loader") == 0)
        rc = fail_loader(comm, argv[2]);
    else if (argc == 3 && strcmp(argv[1], "fail_step") == 0)
        rc = fail_step(comm, argv[2]);
    else if (argc == 3 && strcmp(argv[1], "unfreeze_mismatch") == 0)
        rc = unfreeze_mismatch(comm, argv[2]);
    else if (argc == 3 && strcmp(argv[1], "double_backward") == 0)
        rc = double_backward(comm, argv[2]);
    else if (argc == 3 && strcmp(argv[1], "compress") == 0)
        rc = compress(comm, argv[2]);
    else if (argc == 2 && strcmp(argv[1], "buckets") == 0)
        rc = buckets(comm);
    else if (argc == 2 && strcmp(argv[1], "bench_overlap") == 0)
        rc = bench_overlap(comm);
    else
        fprintf(stderr, "usage: see the comment at the top of tests/mpi/test_dp.c\n");
    MF_CHECK_MSG(mf_alloc_live_count() == live, "%zu allocations leaked", mf_alloc_live_count() - live);
    mf_comm_free(comm);
    return rc ? rc : mf_test_report();
}
