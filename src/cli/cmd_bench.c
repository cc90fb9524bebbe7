/* cmd_bench.c: `mpifit bench CONFIG` -- training speed of the configured model
 * on synthetic in-memory batches (no decoding: `mpifit bench-data` measures the
 * input pipeline), and `mpifit bench --gemm` -- the sgemm peak of this machine
 * through OpenBLAS, the ceiling the training's GFLOP/s is compared against.
 *
 * A step is the built-in train step's path (mf_train_step_default without the
 * metrics): mf_fit_forward + compiled loss, mf_fit_zero_grad + mf_fit_backward,
 * mf_apply_gradients (bucketed allreduce finish + optimizer), each timed. Under
 * mpirun every rank trains on its own batch of [data] batch_size; gradients are
 * averaged exactly as in `mpifit train`. Rank 0 prints a report and one line
 *   RESULT impl=mpifit mode=train ranks=R threads=T size=S width=A batch=B frozen=0|1 img_per_s=...
 *   step_ms=... fwd_ms=... bwd_ms=... allreduce_ms=... opt_ms=... gflops=... rss_mb=...
 *   deterministic=0|N grad_mb=... wait_least_ms=...
 * (batch per rank; img_per_s and gflops global; rss_mb the largest peak RSS
 * of any rank; allreduce_ms rank 0's wait, wait_least_ms each step's least
 * wait of any rank: the exchange without waiting for slower ranks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "cli.h"
#include "job.h"
#include "core/core.h"
#include "core/trace.h"
#include "model/flops.h"
#include "tensor/gemm.h"

#define N_BATCHES 3 /* distinct synthetic batches, cycled */

typedef struct bench_opts {
    int steps, warmup, gemm, comm;
    long bytes; /* --comm: the allreduce's size */
} bench_opts;

/* Options of bench itself (--steps, --warmup, --gemm) are taken out of argv;
 * the rest (CONFIG, --set ...) goes to mf_job_parse. */
static mf_status take_options(int *argc, char **argv, bench_opts *o)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        int *dst = strcmp(a, "--steps") == 0 ? &o->steps : strcmp(a, "--warmup") == 0 ? &o->warmup : NULL;
        if (dst) {
            char *end;
            if (i + 1 >= *argc)
                return mf_fail(MF_STATUS_INVALID, "%s needs a value", a);
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || end == argv[i + 1] || v < (dst == &o->steps ? 1 : 0) || v > 1000000)
                return mf_fail(MF_STATUS_INVALID, "%s must be an integer >= %d, got '%s'", a, dst == &o->steps ? 1 : 0,
                               argv[i + 1]);
            *dst = (int)v;
            i++;
        } else if (strcmp(a, "--gemm") == 0) {
            o->gemm = 1;
        } else if (strcmp(a, "--comm") == 0) {
            o->comm = 1;
        } else if (strcmp(a, "--bytes") == 0) {
            char *end;
            if (i + 1 >= *argc)
                return mf_fail(MF_STATUS_INVALID, "--bytes needs a value");
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || end == argv[i + 1] || v < 4 || v > (1L << 31))
                return mf_fail(MF_STATUS_INVALID, "--bytes must be an integer in [4, 2^31], got '%s'", argv[i + 1]);
            o->bytes = v;
            i++;
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    return MF_STATUS_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Peak resident set of this process in MB (Linux: ru_maxrss is in KiB). */
static double peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}

/* The compute beside the exchange in --comm's overlap measurement: one
 * product of the size a MobileNetV2 layer's backward makes (about 0.7 ms on
 * one core here), on the rank's threads as training runs them. */
typedef struct overlap_work {
    float *a, *b, *c;
} overlap_work;

enum { WORK_M = 256, WORK_N = 256, WORK_K = 512 };

static void overlap_chunk(void *arg)
{
    overlap_work *w = arg;
    mf_sgemm(0, 0, WORK_M, WORK_N, WORK_K, 1.0f, w->a, WORK_K, w->b, WORK_N, 0.0f, w->c, WORK_N);
}

/* --comm, second part: how much compute an allreduce in flight takes from
 * its rank (what overlap cannot hide where no core is idle). The compute runs
 * about 3 times the allreduce's median time, so the exchange ends inside it.
 * Prints on rank 0. */
static mf_status comm_overlap(mf_comm *comm, size_t floats, int reps, double allreduce_med)
{
    overlap_work w = {mf_alloc(sizeof(float) * WORK_M * WORK_K), mf_alloc(sizeof(float) * WORK_K * WORK_N),
                      mf_alloc(sizeof(float) * WORK_M * WORK_N)};
    for (int i = 0; i < WORK_M * WORK_K; i++)
        w.a[i] = 0.001f * (float)(i % 97);
    for (int i = 0; i < WORK_K * WORK_N; i++)
        w.b[i] = 0.002f * (float)(i % 89);
    overlap_chunk(&w);
    double t0 = mf_now();
    for (int k = 0; k < 10; k++)
        overlap_chunk(&w);
    /* the slowest rank's chunk and allreduce, so every rank runs as many */
    int64_t lo[2] = {(int64_t)((mf_now() - t0) / 10 * 1e6) + 1, (int64_t)(allreduce_med * 1e6)};
    int64_t hi[2] = {lo[0], lo[1]};
    mf_status s = mf_comm_allreduce_min_max(comm, lo, hi, 2);
    double *v = mf_alloc(4 * (size_t)reps * sizeof *v);
    double *ex = v, *alone = v + reps, *beside = v + 2 * reps, *after = v + 3 * reps;
    int chunks = 0;
    if (s == MF_STATUS_OK) {
        double c = ceil(3.0 * (double)hi[1] / (double)hi[0]);
        chunks = c < 20 ? 20 : c > 20000 ? 20000 : (int)c;
        s = mf_comm_bench_overlap(comm, floats, reps, chunks, overlap_chunk, &w, ex, alone, beside, after);
    }
    int n = mf_comm_size(comm);
    double *all = s == MF_STATUS_OK ? mf_alloc(3 * (size_t)reps * (size_t)n * sizeof *all) : NULL;
    if (s == MF_STATUS_OK) {
        /* per run: what compute lost beside the exchange, and the wait left
         * after it; every rank's, to rank 0 */
        double *mine = mf_alloc(3 * (size_t)reps * sizeof *mine);
        for (int r = 0; r < reps; r++) {
            mine[3 * r] = beside[r] - alone[r];
            mine[3 * r + 1] = after[r];
            mine[3 * r + 2] = ex[r];
        }
        s = mf_comm_allgather_bytes(comm, mine, 3 * (size_t)reps * sizeof *mine, all);
        mf_free(mine);
    }
    if (s == MF_STATUS_OK && mf_comm_rank(comm) == 0) {
        /* each run: the mean over the ranks, and the most one rank lost
         * (compute slowed plus wait left), which a synchronous step pays;
         * then the medians over the runs */
        double *run = mf_alloc(4 * (size_t)reps * sizeof *run);
        double *r_exch = run, *r_cost = run + reps, *r_wait = run + 2 * reps, *r_lost = run + 3 * reps;
        for (int r = 0; r < reps; r++) {
            r_exch[r] = r_cost[r] = r_wait[r] = r_lost[r] = 0.0;
            for (int q = 0; q < n; q++) {
                const double *x = all + (size_t)q * 3 * reps + 3 * r;
                r_cost[r] += x[0] / n;
                r_wait[r] += x[1] / n;
                r_exch[r] += x[2] / n;
                r_lost[r] = q == 0 || x[0] + x[1] > r_lost[r] ? x[0] + x[1] : r_lost[r];
            }
        }
        double em = median(r_exch, reps), cost = median(r_cost, reps), lost = median(r_lost, reps);
        double waitm = median(r_wait, reps);
        mf_free(run);
        /* an estimate, not a bound: the products here are not backward's
         * layers, and a step's ranks wait for each other */
        double est = em > 0 ? 1.0 - (cost + waitm) / em : 0.0;
        est = est < 0 ? 0 : est > 1 ? 1 : est;
        printf("  overlap: %d products of %.2f ms beside the allreduce (%.2f ms alone, non-blocking ring),\n"
               "  medians of %d alternated runs:\n",
               chunks, (double)hi[0] * 1e-3, em * 1e3, reps);
        printf("  compute slowed by the exchange  mean of the ranks %8.2f ms\n", cost * 1e3);
        printf("  wait left after the compute     mean of the ranks %8.2f ms\n", waitm * 1e3);
        printf("  the two, on the rank losing most                  %8.2f ms\n", lost * 1e3);
        printf("  overlap can hide about          %3.0f %% of the allreduce's time on these cores at most\n"
               "  (1 - (compute slowed + wait left) / allreduce, means of the ranks: an estimate)\n",
               est * 100.0);
        printf("RESULT impl=mpifit mode=comm_overlap ranks=%d bytes=%zu exchange_ms=%.2f cost_ms=%.2f "
               "after_ms=%.2f lost_max_ms=%.2f hide_est=%.3f\n",
               n, floats * sizeof(float), em * 1e3, cost * 1e3, waitm * 1e3, lost * 1e3, est);
    }
    mf_free(all);
    mf_free(v);
    mf_free(w.a);
    mf_free(w.b);
    mf_free(w.c);
    return s;
}

/* --comm: what MPI sees between the ranks (e.g. emulated nodes:
 * launch/emulate_nodes.sh check). Bus bandwidth as NCCL's tests define it:
 * 2 (n - 1) / n x bytes / time, what each rank's link carries. Then what the
 * exchange costs the compute beside it (comm_overlap). */
static int run_comm(mf_comm *comm, long bytes, int reps)
{
    double *pp = mf_alloc(2 * (size_t)reps * sizeof *pp), *ar = pp + reps;
    size_t floats = (size_t)bytes / sizeof(float);
    mf_status s = mf_comm_bench(comm, floats, reps, pp, ar);
    double amed = 0.0;
    if (s == MF_STATUS_OK) {
        amed = median(ar, reps); /* every rank's own: comm_overlap agrees on the chunk count */
        if (mf_comm_rank(comm) == 0) {
            int n = mf_comm_size(comm);
            double bus = 2.0 * (n - 1) / n * (double)(floats * sizeof(float)) * 8.0; /* bits per rank */
            double pmin = pp[0], amin = ar[0];
            for (int r = 1; r < reps; r++) {
                pmin = pp[r] < pmin ? pp[r] : pmin;
                amin = ar[r] < amin ? ar[r] : amin;
            }
            double pmed = median(pp, reps);
            printf("comm: %d ranks, %d repetitions\n", n, reps);
            printf("  ping-pong, 1 byte, half round trip   best %8.1f us   median %8.1f us\n", pmin * 1e6, pmed * 1e6);
            printf("  allreduce of %.2f MB                 best %8.2f ms   median %8.2f ms\n",
                   (double)(floats * sizeof(float)) / 1048576.0, amin * 1e3, amed * 1e3);
            printf("  allreduce bus bandwidth              best %8.3f Gbit/s median %6.3f Gbit/s\n", bus / amin * 1e-9,
                   bus / amed * 1e-9);
            printf("RESULT impl=mpifit mode=comm ranks=%d bytes=%zu latency_us=%.1f latency_med_us=%.1f "
                   "allreduce_ms=%.2f allreduce_med_ms=%.2f busbw_gbit=%.3f busbw_med_gbit=%.3f\n",
                   n, floats * sizeof(float), pmin * 1e6, pmed * 1e6, amin * 1e3, amed * 1e3, bus / amin * 1e-9,
                   bus / amed * 1e-9);
            fflush(stdout);
        }
    }
    if (s == MF_STATUS_OK)
        s = comm_overlap(comm, floats, reps, amed);
    if (s != MF_STATUS_OK && mf_comm_rank(comm) == 0)
        fprintf(stderr, "mpifit bench: %s\n", mf_last_error());
    mf_free(pp);
    return s == MF_STATUS_OK ? 0 : 1;
}

static int run_gemm(void)
{
    static const int sizes[] = {1024, 2048};
    printf("sgemm peak (square, row-major, single precision; best of 5 after a warm-up):\n");
    for (int i = 0; i < 2; i++) {
        int n = sizes[i];
        for (int t = 1; t <= 2; t++) {
            double g = mf_sgemm_peak_gflops(n, t, 0, 5);
            printf("RESULT impl=openblas mode=sgemm threads=%d n=%d gflops=%.1f\n", t, n, g);
        }
        double g = mf_sgemm_peak_gflops(n, 2, 1, 5);
        printf("RESULT impl=mpifit mode=sgemm threads=2 n=%d gflops=%.1f\n", n, g);
        fflush(stdout);
    }
    return 0;
}

/* Per-step times of the timed steps, seconds. */
typedef struct times {
    double *step, *fwd, *bwd, *wait, *opt;
} times;

/* [output] trace: this rank's timeline of the timed steps (every layer's
 * forward and backward, every bucket's exchange) into DIR/trace-rank<r>.json,
 * as `mpifit train` writes it. */
static mf_status start_trace(const char *dir, int rank)
{
    char path[MF_CFG_PATH + 48];
    MF_TRY(mf_mkdir_p(dir));
    snprintf(path, sizeof path, "%s/trace-rank%d.json", dir, rank);
    return mf_trace_start(path, rank, 1000000);
}

/* Set up (collectively), run warm-up + timed steps, report on rank 0. */
static mf_status bench_train(mf_job *j, mf_comm *comm, const bench_opts *o)
{
    const mf_config *c = &j->cfg;
    int rank = mf_comm_rank(comm), world = mf_comm_size(comm), threads = mf_job_threads(j);
    mf_set_num_threads(threads);
    if (c->model.classes == 0)
        j->classes = 3; /* no dataset is read: [model] classes = 0 means 3 here (beans) */
    MF_TRY(mf_job_agree(j, mf_job_build_model(j)));
    mf_model *m = j->model;
    int B = c->data.batch_size, S = c->model.input_size, C = j->classes;
    if (c->train.accumulate_steps != 1 && rank == 0)
        printf("note: [train] accumulate_steps = %d is ignored: bench runs one micro-batch per step\n",
               c->train.accumulate_steps);

    /* optimizer and [dist] options as `mpifit train` builds them (the
     * schedule runs as over one epoch of the timed steps) */
    mf_optimizer *opt = NULL;
    mf_schedule sch;
    mf_status s = mf_job_make_optimizer(j, o->warmup + o->steps, &opt, &sch);
    if (s != MF_STATUS_OK)
        return mf_job_agree(j, s);
    mf_fit_ctx *ctx = mf_fit_ctx_create(m, (uint64_t)c->train.seed, rank);
    s = mf_compile(ctx, opt, &sch, NULL, NULL);
    if (s == MF_STATUS_OK) {
        mf_dist_options d = mf_job_dist_options(j);
        s = mf_fit_distribute(ctx, comm, &d);
    }
    if (s == MF_STATUS_OK)
        s = mf_job_deterministic(j, ctx);
    if (s != MF_STATUS_OK) {
        mf_fit_ctx_free(ctx);
        return mf_job_agree(j, s);
    }

    /* synthetic batches: inputs uniform in [-1, 1) (MobileNetV2's preprocessed
     * range), labels uniform over the classes; each rank its own */
    size_t xs = (size_t)S * S * 3;
    float *x = mf_alloc(N_BATCHES * (size_t)B * xs * sizeof *x);
    int32_t *y = mf_alloc(N_BATCHES * (size_t)B * sizeof *y);
    mf_rng rng;
    mf_rng_seed2(&rng, (uint64_t)c->train.seed + 7, (uint64_t)rank);
    for (size_t i = 0; i < N_BATCHES * (size_t)B * xs; i++)
        x[i] = 2.0f * mf_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < N_BATCHES * B; i++)
        y[i] = (int32_t)mf_rng_below(&rng, (uint32_t)C);

    int n = o->steps;
    times t;
    double *all = mf_alloc(5 * (size_t)n * sizeof *all);
    t.step = all, t.fwd = all + n, t.bwd = all + 2 * n, t.wait = all + 3 * n, t.opt = all + 4 * n;
    double wall0 = 0.0;
    int det = mf_fit_deterministic(ctx);
    long long bytes0 = 0;
    for (int k = 0; k < o->warmup + n && s == MF_STATUS_OK; k++) {
        if (k == o->warmup) {
            s = mf_comm_agree(comm, MF_STATUS_OK); /* start the clock together */
            if (s == MF_STATUS_OK && c->output.trace)
                s = mf_job_agree(j, start_trace(c->output.dir, rank));
            wall0 = mf_now();
            bytes0 = mf_comm_grad_bytes(comm);
        }
        mf_batch b;
        memset(&b, 0, sizeof b);
        b.x = x + (size_t)(k % N_BATCHES) * B * xs;
        b.y = y + (size_t)(k % N_BATCHES) * B;
        b.n = b.n_valid = B;
        b.step = k;
        double t0 = mf_now();
        if (det) { /* the chunked step as one: its parts interleave */
            mf_logs logs;
            mf_logs_clear(&logs);
            if (s == MF_STATUS_OK)
                s = mf_train_step_default(ctx, &b, &logs, NULL);
            if (k >= o->warmup) {
                int i = k - o->warmup;
                t.step[i] = mf_now() - t0;
                t.fwd[i] = t.bwd[i] = t.wait[i] = t.opt[i] = 0.0;
            }
            continue;
        }
        mf_tensor logits = mf_fit_forward(ctx, &b, MF_MODE_TRAIN);
        const float *dlogits;
        mf_fit_compiled_loss(ctx, &b, &logits, &dlogits);
        double t1 = mf_now();
        mf_fit_zero_grad(ctx);
        mf_fit_backward(ctx, dlogits);
        double t2 = mf_now(), w0 = mf_fit_allreduce_wait_seconds(ctx);
        if (s == MF_STATUS_OK)
            s = mf_apply_gradients(ctx);
        double t3 = mf_now(), w = mf_fit_allreduce_wait_seconds(ctx) - w0;
        if (k >= o->warmup) {
            int i = k - o->warmup;
            t.step[i] = t3 - t0;
            t.fwd[i] = t1 - t0;
            t.bwd[i] = t2 - t1;
            t.wait[i] = w;
            t.opt[i] = (t3 - t2) - w;
        }
    }
    double wall = mf_now() - wall0;
    if (c->output.trace) { /* written whatever happened, as train does */
        mf_status ts = mf_trace_stop();
        if (s == MF_STATUS_OK)
            s = ts;
        if (ts == MF_STATUS_OK && rank == 0)
            printf("timeline of the timed steps: %s/trace-rank*.json (one per rank; open in Perfetto)\n",
                   c->output.dir);
    }
    double mb_step = (double)(mf_comm_grad_bytes(comm) - bytes0) / n / 1048576.0; /* this rank's */
    /* a failed step (NaN gradients) on one rank: every rank hears of it */
    s = mf_job_agree(j, s);
    int64_t rss_lo = (int64_t)(peak_rss_mb() * 1024.0), rss_hi = rss_lo;
    if (s == MF_STATUS_OK)
        s = mf_comm_allreduce_min_max(comm, &rss_lo, &rss_hi, 1);
    /* rank 0's wait includes the time it waits for slower ranks; the rank
     * that reaches the exchange last waits for the exchange alone: per step,
     * the least wait of any rank */
    double *waits = mf_alloc((size_t)world * n * sizeof *waits), *least = mf_alloc((size_t)n * sizeof *least);
    if (s == MF_STATUS_OK)
        s = mf_comm_allgather_bytes(comm, t.wait, (size_t)n * sizeof *waits, waits);
    for (int i = 0; i < n && s == MF_STATUS_OK; i++) {
        least[i] = waits[i];
        for (int r = 1; r < world; r++)
            least[i] = waits[(size_t)r * n + i] < least[i] ? waits[(size_t)r * n + i] : least[i];
    }
    if (s == MF_STATUS_OK && rank == 0) {
        double flops = mf_model_flops(m, B, 1); /* one rank's step */
        double ips = (double)world * B * n / wall, gflops = flops * world * n / wall * 1e-9;
        double step = median(t.step, n) * 1e3, fwd = median(t.fwd, n) * 1e3, bwd = median(t.bwd, n) * 1e3;
        double wait = median(t.wait, n) * 1e3, optm = median(t.opt, n) * 1e3, rss = (double)rss_hi / 1024.0;
        double wait_least = median(least, n) * 1e3;
        printf("bench: %s, %d px, alpha %g, %d classes, %zu trainable parameters; %s; batch %d per rank x %d "
               "rank%s, %d thread%s per rank; %d warm-up + %d timed steps on synthetic in-memory batches\n",
               mf_model_name(m), S, (double)c->model.alpha, C, mf_model_count_trainable(m), c->optimizer.name, B, world,
               world == 1 ? "" : "s", threads, threads == 1 ? "" : "s", o->warmup, n);
        printf("  images/s       %10.1f  (all ranks)\n", ips);
        printf("  ms/step        %10.1f  (median; the parts below are medians too)\n", step);
        printf("    forward      %10.1f  (with the loss)\n", fwd);
        printf("    backward     %10.1f\n", bwd);
        printf("    allreduce    %10.2f  (wait after backward)\n", wait);
        if (world > 1)
            printf("      least rank %10.2f  (the rank reaching it last: the exchange without waiting for others)\n",
                   wait_least);
        printf("    optimizer    %10.2f\n", optm);
        printf("  GFLOP/s        %10.1f  (analytic: %.2f GFLOP per step per rank)\n", gflops, flops * 1e-9);
        printf("  peak RSS       %10.0f MB (largest of any rank)\n", rss);
        printf("  gradient MB    %10.3f  per step sent by rank 0 (%s)\n", mb_step,
               det ? "deterministic: int64 sums and BatchNorm records" : "float allreduce buckets");
        if (det)
            printf("  (deterministic mode, chunks of %d rows: the step is timed whole)\n", det);
        printf("RESULT impl=mpifit mode=train ranks=%d threads=%d size=%d width=%g batch=%d frozen=%d img_per_s=%.2f "
               "step_ms=%.1f fwd_ms=%.1f bwd_ms=%.1f allreduce_ms=%.2f opt_ms=%.2f gflops=%.2f rss_mb=%.0f "
               "deterministic=%d grad_mb=%.3f wait_least_ms=%.2f\n",
               world, threads, S, (double)c->model.alpha, B, c->model.freeze_base ? 1 : 0, ips, step, fwd, bwd, wait,
               optm, gflops, rss, det, mb_step, wait_least);
        fflush(stdout);
    }
    mf_free(waits);
    mf_free(least);
    mf_free(all);
    mf_free(x);
    mf_free(y);
    mf_fit_ctx_free(ctx); /* frees the optimizer */
    return s;
}

int mf_cmd_bench(int argc, char **argv)
{
    int help = 0;
    for (int i = 1; i < argc; i++)
        help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (help || argc < 2) {
        printf("usage: [mpirun -np N] mpifit bench CONFIG [--set section.key=value ...] [--steps N] [--warmup N]\n"
               "       mpifit bench --gemm\n\n"
               "Train [model] as configured on synthetic in-memory batches (random inputs and\n"
               "labels, %d distinct batches cycled; no files are read) for --warmup steps\n"
               "(default 3), then --steps timed steps (default 10), and print images/s, the\n"
               "median ms/step split into forward, backward, allreduce wait and optimizer,\n"
               "the achieved GFLOP/s (analytic FLOPs) and the peak RSS. The last line is\n"
               "machine-readable:\n"
               "  RESULT impl=mpifit mode=train ranks=R threads=T size=S width=A batch=B frozen=0|1\n"
               "  img_per_s=... step_ms=... fwd_ms=... bwd_ms=... allreduce_ms=... opt_ms=... gflops=... rss_mb=...\n"
               "  deterministic=0|N grad_mb=... wait_least_ms=...\n"
               "(one line; batch per rank, img_per_s and gflops over all ranks, rss_mb the\n"
               "largest of any rank; allreduce_ms is rank 0's wait after backward, which\n"
               "includes waiting for slower ranks; wait_least_ms each step's least wait of\n"
               "any rank, the exchange alone). [model] weights are loaded if set (--set model.weights=none\n"
               "to skip); [model] classes = 0 means 3. With [output] trace = true every rank\n"
               "writes the timeline of the timed steps (each layer's forward and backward,\n"
               "each gradient bucket's exchange) to [output] dir/trace-rank<r>.json.\n"
               "--gemm instead measures square sgemm (n = 1024, 2048) through OpenBLAS with 1\n"
               "and 2 OpenBLAS threads, and through mpifit's own split over 2 OpenMP threads:\n"
               "  RESULT impl=openblas mode=sgemm threads=T n=N gflops=...\n"
               "--comm (2 or more ranks; no CONFIG) measures what MPI sees between the ranks:\n"
               "a 1-byte ping-pong's half round trip (ranks 0 and 1) and an allreduce of\n"
               "--bytes (default 9437184, MobileNetV2's gradients), --steps repetitions:\n"
               "  RESULT impl=mpifit mode=comm ranks=R bytes=B latency_us=... allreduce_ms=... busbw_gbit=...\n"
               "then what that exchange costs the compute beside it (its copies, additions and the\n"
               "kernel's network work on the same cores), alternated with the compute alone:\n"
               "  RESULT impl=mpifit mode=comm_overlap ranks=R bytes=B exchange_ms=... cost_ms=... after_ms=...\n"
               "  lost_max_ms=... hide_est=...\n"
               "(one line; hide_est = 1 - (cost + after) / exchange, means of the ranks: an estimate of\n"
               "the most of the allreduce's time that overlapping it with backward can take out of a\n"
               "step on these cores; lost_max the most one rank lost, median over the runs).\n",
               N_BATCHES);
        return help ? 0 : 2;
    }
    bench_opts o = {10, 3, 0, 0, 9437184};
    if (take_options(&argc, argv, &o) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit bench: %s\n", mf_last_error());
        return 2;
    }
    if (o.gemm)
        return run_gemm();
    mf_comm *comm = NULL;
    if (mf_comm_create(&argc, &argv, &comm) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit bench: %s\n", mf_last_error());
        return 1;
    }
    if (o.comm) {
        int rc = run_comm(comm, o.bytes, o.steps);
        mf_comm_free(comm);
        return rc;
    }
    mf_job j;
    mf_status s = mf_job_parse(&j, argc, argv, 0, comm);
    s = mf_job_agree(&j, s);
    if (s == MF_STATUS_OK)
        s = bench_train(&j, comm, &o);
    /* collective failures carry the same message everywhere: rank 0 says it */
    if (s != MF_STATUS_OK && mf_comm_rank(comm) == 0)
        fprintf(stderr, "mpifit bench: %s\n", mf_last_error());
    mf_job_free(&j);
    mf_comm_free(comm);
    return s == MF_STATUS_OK ? 0 : 1;
}
