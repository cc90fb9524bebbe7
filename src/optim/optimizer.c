/* optimizer.c: the mf_optimizer handle (Keras' optimizer object): options,
 * state buffers parallel to the model's parameter buffer, the iteration count,
 * and the walk over the model's trainable tensors that calls the update kernels
 * of sgd.c and adam.c.
 *
 * State layout: each buffer holds num_params floats with the parameter buffer's
 * offsets (llm.c's flat m/v), so a checkpoint writes it as one dataset and
 * data-parallel ranks broadcast it in one call. Entries of frozen tensors and
 * of the alignment padding between tensors are never written and stay 0. */
#include <math.h>
#include <string.h>
#include "mpifit/optim.h"
#include "../core/core.h"
#include "optim_internal.h"

#define MAX_BUFS 2

struct mf_optimizer {
    mf_optimizer_options o;
    size_t num_params; /* mf_model_num_params of the model it was made for */
    int n_bufs; /* SGD: 0 (plain) or 1; Adam: 2 */
    float *buf[MAX_BUFS]; /* SGD: {momentum}; Adam: {m, v}; num_params floats each */
    const char *name[MAX_BUFS]; /* checkpoint dataset names: "momentum", "m", "v" */
    long iterations; /* completed apply() calls (Keras optimizer.iterations) */
};

mf_optimizer_options mf_optimizer_defaults(mf_optimizer_kind kind)
{
    /* Every field gets Keras' default whatever the kind, so switching `kind` in
     * a filled struct still gives valid options for the other optimizer. */
    mf_optimizer_options o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.momentum = 0.0f; /* keras.optimizers.SGD */
    o.nesterov = 0;
    o.beta1 = 0.9f; /* keras.optimizers.Adam */
    o.beta2 = 0.999f;
    o.epsilon = 1e-7f;
    o.weight_decay = 0.0f; /* Keras: weight_decay=None */
    return o;
}

/* Validate what `o->kind` uses; fields of the other kind are ignored. Written
 * as !(x in range) so NaN fails too. */
static mf_status check_options(const mf_optimizer_options *o)
{
    if (!(isfinite(o->weight_decay) && o->weight_decay >= 0.0f))
        return mf_fail(MF_STATUS_INVALID, "optimizer: weight_decay must be finite and >= 0 (0 = none), got %g",
                       (double)o->weight_decay);
    switch (o->kind) {
    case MF_OPT_SGD:
        if (!(o->momentum >= 0.0f && o->momentum < 1.0f))
            return mf_fail(MF_STATUS_INVALID, "SGD: momentum must be in [0, 1) (0 = plain SGD), got %g",
                           (double)o->momentum);
        if (o->nesterov != 0 && o->nesterov != 1)
            return mf_fail(MF_STATUS_INVALID, "SGD: nesterov must be 0 or 1, got %d", o->nesterov);
        if (o->nesterov && o->momentum == 0.0f)
            return mf_fail(MF_STATUS_INVALID,
                           "SGD: nesterov needs momentum > 0 (Nesterov momentum without momentum is plain SGD)");
        return MF_STATUS_OK;
    case MF_OPT_ADAM:
        if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f))
            return mf_fail(MF_STATUS_INVALID, "Adam: beta1 must be in [0, 1) (Keras default 0.9), got %g",
                           (double)o->beta1);
        if (!(o->beta2 >= 0.0f && o->beta2 < 1.0f))
            return mf_fail(MF_STATUS_INVALID, "Adam: beta2 must be in [0, 1) (Keras default 0.999), got %g",
                           (double)o->beta2);
        if (!(isfinite(o->epsilon) && o->epsilon > 0.0f))
            return mf_fail(MF_STATUS_INVALID, "Adam: epsilon must be finite and > 0 (Keras default 1e-7), got %g",
                           (double)o->epsilon);
        return MF_STATUS_OK;
    }
    return mf_fail(MF_STATUS_INVALID, "optimizer: unknown kind %d (valid: %d = SGD, %d = Adam)", (int)o->kind,
                   (int)MF_OPT_SGD, (int)MF_OPT_ADAM);
}

mf_optimizer *mf_optimizer_create(const mf_model *m, const mf_optimizer_options *o)
{
    if (!m || !o) {
        mf_fail(MF_STATUS_INVALID, "mf_optimizer_create: %s is NULL", !m ? "model" : "options");
        return NULL;
    }
    if (!mf_model_is_built(m)) {
        mf_fail(MF_STATUS_INVALID, "mf_optimizer_create: model '%s' is not built (call mf_model_build first)",
                mf_model_name(m));
        return NULL;
    }
    if (check_options(o) != MF_STATUS_OK)
        return NULL;

    mf_optimizer *opt = mf_alloc(sizeof *opt);
    opt->o = *o;
    opt->num_params = mf_model_num_params(m);
    if (o->kind == MF_OPT_SGD && o->momentum > 0.0f) {
        opt->name[opt->n_bufs++] = "momentum";
    } else if (o->kind == MF_OPT_ADAM) {
        opt->name[opt->n_bufs++] = "m";
        opt->name[opt->n_bufs++] = "v";
    }
    /* mf_alloc zero-fills: Keras starts every slot variable at 0. */
    for (int b = 0; b < opt->n_bufs; b++)
        opt->buf[b] = mf_alloc((opt->num_params ? opt->num_params : 1) * sizeof(float));
    return opt;
}

void mf_optimizer_free(mf_optimizer *opt)
{
    if (!opt)
        return;
    for (int b = 0; b < opt->n_bufs; b++)
        mf_free(opt->buf[b]);
    mf_free(opt);
}

void mf_optimizer_apply(mf_optimizer *opt, mf_model *m, float lr)
{
    MF_ASSERT(opt && m);
    /* the state buffers mirror this model's layout: another model is a bug */
    MF_ASSERT(mf_model_num_params(m) == opt->num_params);
    float *p = mf_model_params(m);
    const float *g = mf_model_grads(m);
    const mf_optimizer_options *o = &opt->o;
    const float decay = lr * o->weight_decay;
    const long t = opt->iterations + 1;

    /* Trainability is read every step, not cached at create: Keras lets a
     * layer be frozen or unfrozen between steps (fine-tuning). Tensors of kind
     * STATE (BatchNorm moving statistics) live in another buffer and are
     * never trainable, so they are skipped here too. */
    int n = mf_model_num_param_tensors(m);
    for (int i = 0; i < n; i++) {
        mf_param_info info = mf_model_param(m, i);
        if (!info.trainable)
            continue;
        MF_ASSERT(info.kind == MF_PARAM_TRAINABLE && info.offset + info.numel <= opt->num_params);
        size_t off = info.offset, k = info.numel;
        switch (o->kind) {
        case MF_OPT_SGD:
            if (opt->n_bufs == 0)
                mf_sgd_update(p + off, g + off, k, lr, decay);
            else
                mf_sgd_momentum_update(p + off, g + off, opt->buf[0] + off, k, lr, o->momentum, o->nesterov, decay);
            break;
        case MF_OPT_ADAM:
            mf_adam_update(p + off, g + off, opt->buf[0] + off, opt->buf[1] + off, k, lr, o->beta1, o->beta2,
                           o->epsilon, t, decay);
            break;
        }
    }
    opt->iterations++;
}

long mf_optimizer_iterations(const mf_optimizer *opt) { return opt->iterations; }

void mf_optimizer_set_iterations(mf_optimizer *opt, long iterations)
{
    MF_ASSERT(iterations >= 0);
    opt->iterations = iterations;
}

int mf_optimizer_state(mf_optimizer *opt, float **bufs, const char **names)
{
    for (int b = 0; b < opt->n_bufs; b++) {
        if (bufs)
            bufs[b] = opt->buf[b];
        if (names)
            names[b] = opt->name[b];
    }
    return opt->n_bufs;
}

const mf_optimizer_options *mf_optimizer_options_of(const mf_optimizer *opt) { return &opt->o; }
