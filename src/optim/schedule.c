/* schedule.c: learning rate as a pure function of the global step (0-based,
 * one step = one optimizer update), so a resumed run recomputes the same rate
 * from the restored step and no schedule state needs checkpointing.
 *
 * Warm-up (Goyal et al. 2017, "gradual warm-up"): for step < warmup_steps,
 *   lr = base * (step + 1) / warmup_steps
 * i.e. base/warmup_steps at step 0, rising linearly to base at the last warm-up
 * step; warmup_steps <= 0 means no warm-up. Afterwards, with
 * s = step - warmup_steps (the schedule restarts its clock after warm-up):
 *   CONSTANT  lr = base
 *   STEP      lr = base * decay_rate ^ floor(s / decay_steps)
 *             (Keras ExponentialDecay(staircase=True)); decay_steps <= 0: never decays
 *   COSINE    lr = base * 0.5 * (1 + cos(pi * min(1, s / max(1, total_steps - warmup_steps))))
 *             (Keras CosineDecay with alpha 0): base right after warm-up, 0 at
 *             total_steps and after it.
 * Keras' own CosineDecay warm-up ramps from initial_learning_rate to
 * warmup_target instead; ours starts at base/warmup_steps so step 0 already moves.
 * Arithmetic is in double; the result is rounded to float once. */
#include <math.h>
#include "mpifit/optim.h"
#include "../core/core.h"

/* M_PI is not ISO C (glibc hides it under _POSIX_C_SOURCE alone). */
#define PI 3.14159265358979323846

float mf_schedule_lr(const mf_schedule *s, long step)
{
    MF_ASSERT(s && step >= 0);
    step = step > s->start_step ? step - s->start_step : 0;
    double base = (double)s->base_lr;
    long warm = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (step < warm)
        return (float)(base * (double)(step + 1) / (double)warm);
    long after = step - warm;
    switch (s->kind) {
    case MF_SCHEDULE_CONSTANT: return (float)base;
    case MF_SCHEDULE_STEP:
        if (s->decay_steps <= 0)
            return (float)base;
        /* after >= 0, so integer division is the floor */
        return (float)(base * pow((double)s->decay_rate, (double)(after / s->decay_steps)));
    case MF_SCHEDULE_COSINE: {
        long span = s->total_steps - warm;
        double progress = (double)after / (double)(span > 1 ? span : 1);
        if (progress > 1.0)
            progress = 1.0;
        return (float)(base * 0.5 * (1.0 + cos(PI * progress)));
    }
    }
    mf_panic(__FILE__, __LINE__, "mf_schedule_lr: unknown schedule kind %d (valid: 0 constant, 1 step, 2 cosine)",
             (int)s->kind);
}

void mf_schedule_scale_for_world(mf_schedule *s, int world)
{
    /* Linear scaling rule: with `world` ranks each taking a full per-rank batch,
     * the global batch is world times larger, so the step is too. */
    MF_ASSERT(s && world >= 1);
    s->base_lr *= (float)world;
}
