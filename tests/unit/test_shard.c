/* test_shard.c: the sharding properties data parallelism rests on, for many
 * dataset sizes, batch sizes and world sizes 1-5:
 *  - every rank runs the same number of steps;
 *  - training: within an epoch the ranks' slices are disjoint (drop_remainder)
 *    or cover everything (wrap-around), every rank derives the same order, and
 *    world W x batch B equals world 1 x batch W*B on the same global order;
 *  - evaluation: every sample exactly once across all ranks, padding (-1) only
 *    after the last sample. */
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "mpifit/data.h"
#include "test.h"

static void check_train(int n, int world, int batch, int drop)
{
    int steps = mf_shard_train_steps(n, world, batch, drop);
    int *count = calloc((size_t)n, sizeof *count);
    int *single = malloc((size_t)(steps ? steps : 1) * world * batch * sizeof *single);
    int *idx = malloc((size_t)(steps ? steps : 1) * batch * sizeof *idx);
    if (steps)
        mf_shard_train_indices(single, n, 0, 1, world * batch, 77, 3, 1, drop);
    MF_CHECK(mf_shard_train_steps(n, 1, world * batch, drop) == steps);
    int equiv = 1;
    for (int r = 0; r < world && steps; r++) {
        mf_shard_train_indices(idx, n, r, world, batch, 77, 3, 1, drop);
        for (int s = 0; s < steps; s++)
            for (int b = 0; b < batch; b++) {
                int i = idx[s * batch + b];
                MF_CHECK(i >= 0 && i < n);
                if (i >= 0 && i < n)
                    count[i]++;
                /* rank r's part of global batch s is a slice of the 1-rank batch */
                equiv &= i == single[s * world * batch + r * batch + b];
            }
    }
    MF_CHECK_MSG(equiv, "n=%d world=%d batch=%d: %d ranks x batch differs from 1 rank x world*batch", n, world, batch,
                 world);
    long total = 0;
    int min = 1 << 30, max = 0;
    for (int i = 0; i < n; i++) {
        total += count[i];
        min = count[i] < min ? count[i] : min;
        max = count[i] > max ? count[i] : max;
    }
    MF_CHECK(total == (long)steps * world * batch);
    if (drop) {
        MF_CHECK_MSG(max <= 1, "n=%d world=%d batch=%d: a sample repeats within an epoch with drop_remainder", n, world,
                     batch);
        MF_CHECK(steps == n / (world * batch));
    } else {
        MF_CHECK_MSG(min >= 1, "n=%d world=%d batch=%d: a sample is missing from the epoch", n, world, batch);
        /* wrapping repeats at most ceil(G / n) times */
        int g = world * batch;
        MF_CHECK(max <= (g + n - 1) / n + 1);
    }
    free(count);
    free(single);
    free(idx);
}

static void check_eval(int n, int world, int batch)
{
    int steps = mf_shard_eval_steps(n, world, batch);
    int *count = calloc((size_t)n, sizeof *count);
    int *idx = malloc((size_t)steps * batch * sizeof *idx);
    for (int r = 0; r < world; r++) {
        mf_shard_eval_indices(idx, n, r, world, batch);
        for (int k = 0; k < steps * batch; k++) {
            int i = idx[k];
            if (i >= 0) {
                MF_CHECK(i < n);
                if (i < n)
                    count[i]++;
            }
        }
    }
    int once = 1;
    for (int i = 0; i < n; i++)
        once &= count[i] == 1;
    MF_CHECK_MSG(once, "eval n=%d world=%d batch=%d: not every sample exactly once", n, world, batch);
    MF_CHECK(steps == (n + world * batch - 1) / (world * batch));
    free(count);
    free(idx);
}

int main(void)
{
    const int ns[] = {1, 2, 7, 10, 33, 64, 100, 133, 1034};
    const int batches[] = {1, 3, 4, 32};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (int world = 1; world <= 5; world++)
            for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
                check_train(ns[a], world, batches[b], 0);
                check_train(ns[a], world, batches[b], 1);
                check_eval(ns[a], world, batches[b]);
            }
    /* the order is a function of (seed, epoch): same on every call, new each epoch */
    int a[100] = {0}, b[100] = {0}, c[100] = {0}, d[100] = {0}; /* 5 steps x 10 = 50 used */
    mf_shard_train_indices(a, 100, 1, 2, 10, 5, 0, 1, 1);
    mf_shard_train_indices(b, 100, 1, 2, 10, 5, 0, 1, 1);
    mf_shard_train_indices(c, 100, 1, 2, 10, 5, 1, 1, 1);
    mf_shard_train_indices(d, 100, 1, 2, 10, 6, 0, 1, 1);
    MF_CHECK(memcmp(a, b, sizeof a) == 0);
    MF_CHECK(memcmp(a, c, sizeof a) != 0);
    MF_CHECK(memcmp(a, d, sizeof a) != 0);
    /* no shuffle: the identity order */
    mf_shard_train_indices(a, 100, 0, 1, 100, 5, 0, 0, 1);
    int ident = 1;
    for (int i = 0; i < 100; i++)
        ident &= a[i] == i;
    MF_CHECK(ident);
    MF_CHECK(mf_alloc_live_count() == 0);
    return mf_test_report();
}
