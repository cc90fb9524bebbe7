/* fit_state.c: a training context's resumable state in and out (fit_state.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "fit_internal.h"

void mf_fit_state_get(const mf_fit_ctx *ctx, mf_fit_state *st)
{
    memset(st, 0, sizeof *st);
    st->epoch = mf_fit_position(ctx, &st->step_in_epoch);
    st->global_step = ctx->global_step;
    st->data_epoch = ctx->data_epoch;
    st->data_step = ctx->data_step;
    st->data_started = ctx->data_started;
    st->seed = ctx->seed;
    st->schedule = ctx->schedule;
    st->lr_override = ctx->lr_override;
    st->lr_scale = ctx->lr_scale;
    /* a checkpoint at the end of the epoch where EarlyStopping stopped: a
     * resumed run must not train on (mid-epoch stops are TerminateOnNaN's
     * and end the epoch first) */
    st->stopped = ctx->stop && ctx->epoch_done;
    st->rank = ctx->rank;
    st->world = ctx->comm ? mf_comm_size(ctx->comm) : 1;
    st->have_rng = 1;
    memcpy(st->rng, ctx->rng.s, sizeof st->rng);
    st->n_metrics = ctx->n_tracked;
    for (int i = 0; i < ctx->n_tracked; i++) {
        st->metric_names[i] = ctx->tracked[i]->name;
        st->metric_sums[2 * i] = ctx->tracked[i]->total;
        st->metric_sums[2 * i + 1] = ctx->tracked[i]->count;
    }
}

/* "total_steps 300 -> 150, warmup_steps 30 -> 15": the fields of the schedule
 * that differ (empty if none). */
static void schedule_diff(const mf_schedule *was, const mf_schedule *now, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
#define MF_SCHED_FIELD(f, fmt, cast)                                                                               \
    if (was->f != now->f && used < n)                                                                              \
        used += (size_t)snprintf(buf + used, n - used, "%s" #f " " fmt " -> " fmt, used ? ", " : "", (cast)was->f, \
                                 (cast)now->f);
    MF_SCHED_FIELD(kind, "%d", int)
    MF_SCHED_FIELD(base_lr, "%g", double)
    MF_SCHED_FIELD(warmup_steps, "%ld", long)
    MF_SCHED_FIELD(total_steps, "%ld", long)
    MF_SCHED_FIELD(decay_rate, "%g", double)
    MF_SCHED_FIELD(decay_steps, "%ld", long)
#undef MF_SCHED_FIELD
}

void mf_fit_drop_cb_buffers(mf_fit_ctx *ctx)
{
    for (int i = 0; i < ctx->n_cb_buffer; i++)
        mf_free(ctx->cb_buffer[i].v);
    ctx->n_cb_buffer = 0;
}

void mf_fit_state_restore(mf_fit_ctx *ctx, const mf_fit_state *st, mf_logs *history, int n_history,
                          const mf_fit_cb_state *cb, int n_cb, mf_fit_cb_buffer *buf, int n_buf)
{
    ctx->epoch = st->epoch;
    ctx->epoch_step = st->step_in_epoch;
    ctx->epoch_done = 0;
    ctx->global_step = st->global_step;
    ctx->data_epoch = st->data_epoch;
    ctx->data_step = st->data_step;
    ctx->data_started = 0; /* the loader is repositioned at the next batch */
    ctx->restored = 1;
    ctx->lr_override = st->lr_override;
    ctx->lr_scale = st->lr_scale;
    ctx->restored_stopped = st->stopped;
    if (!ctx->schedule_given) {
        ctx->schedule = st->schedule; /* compiled without one: the checkpoint's */
    } else if (ctx->rank == 0) {
        char diff[512];
        schedule_diff(&st->schedule, &ctx->schedule, diff, sizeof diff);
        if (diff[0])
            mf_log_info("the learning-rate schedule follows this run's config, world size and steps per epoch "
                        "(changed since the checkpoint: %s)",
                        diff);
    }
    if (st->have_rng)
        memcpy(ctx->rng.s, st->rng, sizeof ctx->rng.s);
    else
        mf_rng_seed2(&ctx->rng, ctx->seed ^ (uint64_t)st->global_step, (uint64_t)ctx->rank);
    for (int i = 0; i < st->n_metrics && i < ctx->n_tracked; i++) {
        ctx->tracked[i]->total = st->metric_sums[2 * i];
        ctx->tracked[i]->count = st->metric_sums[2 * i + 1];
    }
    mf_free(ctx->history);
    ctx->history = history;
    ctx->n_history = ctx->cap_history = history ? n_history : 0;
    ctx->n_cb_state = n_cb < MF_MAX_CB_STATES ? n_cb : MF_MAX_CB_STATES;
    for (int i = 0; i < ctx->n_cb_state; i++)
        ctx->cb_state[i] = cb[i];
    mf_fit_drop_cb_buffers(ctx);
    for (int i = 0; i < n_buf; i++) {
        if (i < MF_MAX_CB_BUFFERS)
            ctx->cb_buffer[ctx->n_cb_buffer++] = buf[i];
        else
            mf_free(buf[i].v);
    }
}
