/* shard.c: which samples each rank sees, step by step. Pure functions of
 * (n, rank, world, batch, seed, epoch): every rank computes the same global
 * order without talking to the others.
 *
 * Training: the epoch's permutation P (seeded by seed and epoch) is cut into
 * global batches of G = batch * world consecutive entries; at step s rank r
 * takes P[s*G + r*batch ... s*G + (r+1)*batch). So the global batch of 2 ranks x
 * batch B is exactly the batch of 1 rank x batch 2B, which is what makes
 * data-parallel runs comparable to single-process ones. The last partial global
 * batch is dropped (drop_remainder) or completed by wrapping around to the start
 * of P. Either way all ranks run the same number of steps, so no rank waits in
 * an allreduce for a peer that ran out of data.
 *
 * Evaluation: the same cut of the identity order; entries past n are -1
 * (padding, weight 0), so each sample is evaluated exactly once across all
 * ranks and summed metrics are exact. */
#include "mpifit/data.h"
#include "../core/core.h"

int mf_shard_train_steps(int n, int world, int batch, int drop_remainder)
{
    MF_ASSERT(n >= 0 && world > 0 && batch > 0);
    long g = (long)batch * world;
    return (int)(drop_remainder ? n / g : (n + g - 1) / g);
}

/* P[k] for the epoch: a Fisher-Yates shuffle of 0..n-1 from (seed, epoch). */
static void epoch_permutation(int *p, int n, uint64_t seed, int epoch, int shuffle)
{
    for (int i = 0; i < n; i++)
        p[i] = i;
    if (!shuffle)
        return;
    mf_rng r;
    mf_rng_seed2(&r, seed, 0x5eed0000u + (uint64_t)epoch);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)mf_rng_below(&r, (uint32_t)i + 1);
        int t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

void mf_shard_train_indices(int *idx, int n, int rank, int world, int batch, uint64_t seed, int epoch, int shuffle,
                            int drop_remainder)
{
    MF_ASSERT(n > 0 && rank >= 0 && rank < world);
    int steps = mf_shard_train_steps(n, world, batch, drop_remainder);
    int *p = mf_alloc((size_t)n * sizeof *p);
    epoch_permutation(p, n, seed, epoch, shuffle);
    long g = (long)batch * world;
    for (int s = 0; s < steps; s++)
        for (int b = 0; b < batch; b++)
            idx[(long)s * batch + b] = p[(s * g + (long)rank * batch + b) % n];
    mf_free(p);
}

int mf_shard_eval_steps(int n, int world, int batch) { return mf_shard_train_steps(n, world, batch, 0); }

void mf_shard_eval_indices(int *idx, int n, int rank, int world, int batch)
{
    MF_ASSERT(rank >= 0 && rank < world);
    int steps = mf_shard_eval_steps(n, world, batch);
    long g = (long)batch * world;
    for (int s = 0; s < steps; s++)
        for (int b = 0; b < batch; b++) {
            long k = s * g + (long)rank * batch + b;
            idx[(long)s * batch + b] = k < n ? (int)k : -1;
        }
}
