/* test_optim.c: optimizers against a double-precision reference written here
 * from Keras' formulas, step by step with changing gradients and rates; frozen
 * layers and BatchNorm moving statistics untouched bit for bit; iteration count,
 * state buffers, option validation; learning-rate schedules at chosen steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "test.h"

#define PI 3.14159265358979323846

/* Dense(3) -> Dense(2) on 4 features: kernels (4,3) (3,2), biases (3) (2). */
static mf_model *mlp(int in, int hidden, int freeze_first)
{
    mf_model *m = mf_model_create("mlp");
    int x = mf_model_input(m, mf_shape2(0, in));
    mf_layer *d1 = mf_dense("d1", hidden, 1);
    if (freeze_first)
        mf_layer_set_trainable(d1, 0);
    x = mf_model_add(m, d1, x);
    x = mf_model_add(m, mf_dense("d2", 2, 1), x);
    MF_CHECK(mf_model_build(m, 7) == MF_STATUS_OK);
    return m;
}

/* Dense(3) -> BatchNorm -> Dense(2): gamma/beta trainable, moving stats in state. */
static mf_model *bn_model(void)
{
    mf_model *m = mf_model_create("bn");
    int x = mf_model_input(m, mf_shape2(0, 4));
    x = mf_model_add(m, mf_dense("d1", 3, 1), x);
    x = mf_model_add(m, mf_batchnorm("bn", 0.99f, 1e-3f), x);
    x = mf_model_add(m, mf_dense("d2", 2, 1), x);
    MF_CHECK(mf_model_build(m, 7) == MF_STATUS_OK);
    return m;
}

/* Gradients that change sign, size and pattern from step to step, written to
 * every trainable-kind tensor (frozen ones too: the optimizer must ignore them). */
static void fill_grads(mf_model *m, int step)
{
    float *g = mf_model_grads(m);
    mf_model_zero_grad(m);
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info t = mf_model_param(m, i);
        if (t.kind != MF_PARAM_TRAINABLE)
            continue;
        for (size_t j = 0; j < t.numel; j++) {
            size_t k = t.offset + j;
            g[k] = (float)((0.2 + 0.8 * (double)((k * 7 + (size_t)step * 3) % 5) / 4.0) *
                           sin(0.7 * (double)k + 1.3 * step + 0.1));
        }
    }
}

/* The reference optimizer, in double, over the same flat layout. */
typedef struct ref {
    double *p, *m, *v;
    size_t n;
    long iterations;
} ref;

static ref ref_create(mf_model *m)
{
    ref r;
    r.n = mf_model_num_params(m);
    r.p = calloc(r.n, sizeof(double));
    r.m = calloc(r.n, sizeof(double));
    r.v = calloc(r.n, sizeof(double));
    r.iterations = 0;
    const float *p = mf_model_params(m);
    for (size_t k = 0; k < r.n; k++)
        r.p[k] = p[k];
    return r;
}

static void ref_free(ref *r)
{
    free(r->p);
    free(r->m);
    free(r->v);
}

static void ref_apply(ref *r, mf_model *model, const mf_optimizer_options *o, double lr)
{
    const float *g = mf_model_grads(model);
    long t = r->iterations + 1;
    for (int i = 0; i < mf_model_num_param_tensors(model); i++) {
        mf_param_info info = mf_model_param(model, i);
        if (!info.trainable)
            continue;
        for (size_t k = info.offset; k < info.offset + info.numel; k++) {
            double gk = g[k], p = r->p[k];
            p -= lr * o->weight_decay * p; /* decoupled decay first */
            if (o->kind == MF_OPT_SGD && o->momentum == 0.0f) {
                p -= lr * gk;
            } else if (o->kind == MF_OPT_SGD) {
                r->m[k] = o->momentum * r->m[k] - lr * gk;
                p += o->nesterov ? o->momentum * r->m[k] - lr * gk : r->m[k];
            } else {
                r->m[k] = o->beta1 * r->m[k] + (1.0 - o->beta1) * gk;
                r->v[k] = o->beta2 * r->v[k] + (1.0 - o->beta2) * gk * gk;
                double lr_t = lr * sqrt(1.0 - pow(o->beta2, (double)t)) / (1.0 - pow(o->beta1, (double)t));
                p -= lr_t * r->m[k] / (sqrt(r->v[k]) + o->epsilon);
            }
            r->p[k] = p;
        }
    }
    r->iterations++;
}

/* max over trainable entries of |a - ref| / (1 + |ref|) */
static double max_rel_err(mf_model *m, const float *a, const double *want)
{
    double worst = 0.0;
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info info = mf_model_param(m, i);
        if (!info.trainable)
            continue;
        for (size_t k = info.offset; k < info.offset + info.numel; k++) {
            double e = fabs((double)a[k] - want[k]) / (1.0 + fabs(want[k]));
            if (e > worst)
                worst = e;
        }
    }
    return worst;
}

/* Run `steps` updates of optimizer o on m with rates lr*(1 + 0.25 k) and compare
 * parameters and state buffers with the reference after every step. */
static void run_against_ref(const char *what, mf_model *m, mf_optimizer_options o, float lr, int steps,
                            long start_iterations)
{
    mf_optimizer *opt = mf_optimizer_create(m, &o);
    MF_CHECK_MSG(opt != NULL, "%s: %s", what, mf_last_error());
    if (!opt)
        return;
    mf_optimizer_set_iterations(opt, start_iterations);
    ref r = ref_create(m);
    r.iterations = start_iterations;
    float *bufs[2] = {NULL, NULL};
    const char *names[2] = {NULL, NULL};
    int nb = mf_optimizer_state(opt, bufs, names);
    for (int s = 0; s < steps; s++) {
        float lr_s = lr * (1.0f + 0.25f * (float)s);
        fill_grads(m, s);
        ref_apply(&r, m, &o, (double)lr_s);
        mf_optimizer_apply(opt, m, lr_s);
        double e = max_rel_err(m, mf_model_params(m), r.p);
        MF_CHECK_MSG(e < 2e-6, "%s: step %d: params differ from the reference by %g", what, s, e);
        if (nb >= 1) {
            e = max_rel_err(m, bufs[0], r.m);
            MF_CHECK_MSG(e < 2e-6, "%s: step %d: %s differs from the reference by %g", what, s, names[0], e);
        }
        if (nb == 2) {
            e = max_rel_err(m, bufs[1], r.v);
            MF_CHECK_MSG(e < 2e-6, "%s: step %d: %s differs from the reference by %g", what, s, names[1], e);
        }
    }
    MF_CHECK(mf_optimizer_iterations(opt) == start_iterations + steps);
    ref_free(&r);
    mf_optimizer_free(opt);
}

static mf_optimizer_options sgd(float momentum, int nesterov, float wd)
{
    mf_optimizer_options o = mf_optimizer_defaults(MF_OPT_SGD);
    o.momentum = momentum;
    o.nesterov = nesterov;
    o.weight_decay = wd;
    return o;
}

static mf_optimizer_options adam(float wd)
{
    mf_optimizer_options o = mf_optimizer_defaults(MF_OPT_ADAM);
    o.weight_decay = wd;
    return o;
}

static void test_updates_match_reference(void)
{
    struct {
        const char *what;
        mf_optimizer_options o;
        float lr;
    } cases[] = {
        {"sgd", sgd(0.0f, 0, 0.0f), 0.1f},
        {"sgd momentum", sgd(0.9f, 0, 0.0f), 0.1f},
        {"sgd nesterov", sgd(0.9f, 1, 0.0f), 0.1f},
        {"sgd weight decay", sgd(0.0f, 0, 0.05f), 0.1f},
        {"sgd momentum weight decay", sgd(0.8f, 0, 0.05f), 0.1f},
        {"adam", adam(0.0f), 0.01f},
        {"adamw", adam(0.04f), 0.01f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        mf_model *m = mlp(4, 3, 0);
        run_against_ref(cases[c].what, m, cases[c].o, cases[c].lr, 5, 0);
        mf_model_free(m);
        /* also through BatchNorm's gamma/beta */
        m = bn_model();
        run_against_ref(cases[c].what, m, cases[c].o, cases[c].lr, 5, 0);
        mf_model_free(m);
    }
    /* a tensor above the OpenMP threshold (300*256 = 76800 floats): the
     * threaded path computes the same values */
    mf_model *big = mlp(300, 256, 0);
    run_against_ref("adamw large", big, adam(0.01f), 0.01f, 3, 0);
    run_against_ref("sgd nesterov large", big, sgd(0.9f, 1, 0.01f), 0.05f, 3, 0);
    mf_model_free(big);
    /* a resumed Adam: bias correction continues from the restored count (t = 101) */
    mf_model *m = mlp(4, 3, 0);
    run_against_ref("adam resumed at 100", m, adam(0.0f), 0.01f, 3, 100);
    mf_model_free(m);
}

/* Adam's first step is ~lr * sign(g) in size for any |g| >> epsilon: m_hat /
 * sqrt(v_hat) = g / |g|. A known property that does not depend on the formula
 * as transcribed above. */
static void test_adam_first_step_is_sign(void)
{
    mf_model *m = mlp(4, 3, 0);
    mf_optimizer_options o = adam(0.0f);
    mf_optimizer *opt = mf_optimizer_create(m, &o);
    size_t n = mf_model_num_params(m);
    float *before = malloc(n * sizeof *before);
    memcpy(before, mf_model_params(m), n * sizeof *before);
    fill_grads(m, 0);
    const float lr = 1e-3f;
    mf_optimizer_apply(opt, m, lr);
    const float *p = mf_model_params(m), *g = mf_model_grads(m);
    int checked = 0;
    for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
        mf_param_info t = mf_model_param(m, i);
        for (size_t k = t.offset; k < t.offset + t.numel; k++) {
            if (fabsf(g[k]) < 0.05f)
                continue;
            double step = (double)p[k] - (double)before[k];
            double want = g[k] > 0 ? -lr : lr;
            MF_CHECK_NEAR(step, want, 1e-3 * lr);
            checked++;
        }
    }
    MF_CHECK(checked > 20);
    free(before);
    mf_optimizer_free(opt);
    mf_model_free(m);
}

/* Frozen layers keep their weights bit for bit and their state entries stay 0,
 * under every optimizer (weight decay included); unfreezing takes effect at the
 * next step (trainability is read per step, as Keras does after recompiling). */
static void test_frozen_untouched(void)
{
    mf_optimizer_options opts[] = {sgd(0.0f, 0, 0.1f), sgd(0.9f, 1, 0.1f), adam(0.1f)};
    for (size_t c = 0; c < sizeof opts / sizeof opts[0]; c++) {
        mf_model *m = mlp(4, 3, 1);
        mf_optimizer *opt = mf_optimizer_create(m, &opts[c]);
        size_t n = mf_model_num_params(m);
        float *before = malloc(n * sizeof *before);
        memcpy(before, mf_model_params(m), n * sizeof *before);
        for (int s = 0; s < 4; s++) {
            fill_grads(m, s);
            mf_optimizer_apply(opt, m, 0.1f);
        }
        float *bufs[2];
        int nb = mf_optimizer_state(opt, bufs, NULL);
        const float *p = mf_model_params(m);
        int frozen_seen = 0, moved = 0;
        for (int i = 0; i < mf_model_num_param_tensors(m); i++) {
            mf_param_info t = mf_model_param(m, i);
            int same = memcmp(p + t.offset, before + t.offset, t.numel * sizeof(float)) == 0;
            if (strcmp(t.layer, "d1") == 0) {
                frozen_seen++;
                MF_CHECK(!t.trainable);
                MF_CHECK_MSG(same, "optimizer %zu changed frozen %s/%s", c, t.layer, t.name);
                for (int b = 0; b < nb; b++)
                    for (size_t k = t.offset; k < t.offset + t.numel; k++)
                        MF_CHECK(bufs[b][k] == 0.0f);
            } else {
                moved += !same;
            }
        }
        MF_CHECK(frozen_seen == 2);
        MF_CHECK(moved == 2);
        /* unfreeze: the next step updates d1 */
        mf_layer_set_trainable(mf_model_find_layer(m, "d1"), 1);
        fill_grads(m, 9);
        mf_optimizer_apply(opt, m, 0.1f);
        mf_param_info k1 = mf_model_param(m, 0);
        MF_CHECK(strcmp(k1.layer, "d1") == 0 && k1.trainable);
        MF_CHECK(memcmp(p + k1.offset, before + k1.offset, k1.numel * sizeof(float)) != 0);
        free(before);
        mf_optimizer_free(opt);
        mf_model_free(m);
    }
}

/* BatchNorm's moving mean and variance live in the state buffer: apply never
 * writes there, while gamma and beta (trainable) do move. */
static void test_batchnorm_state_untouched(void)
{
    mf_optimizer_options opts[] = {sgd(0.9f, 0, 0.1f), adam(0.1f)};
    for (size_t c = 0; c < sizeof opts / sizeof opts[0]; c++) {
        mf_model *m = bn_model();
        size_t ns = mf_model_num_state(m);
        MF_CHECK(ns > 0);
        float *st = mf_model_state(m);
        for (size_t k = 0; k < ns; k++)
            st[k] = 0.5f + 0.125f * (float)k;
        float *saved = malloc(ns * sizeof *saved);
        memcpy(saved, st, ns * sizeof *saved);
        int gamma = -1;
        for (int i = 0; i < mf_model_num_param_tensors(m); i++)
            if (strcmp(mf_model_param(m, i).name, "gamma") == 0)
                gamma = i;
        MF_CHECK(gamma >= 0);
        mf_param_info gi = mf_model_param(m, gamma);
        float g0 = mf_model_params(m)[gi.offset];
        mf_optimizer *opt = mf_optimizer_create(m, &opts[c]);
        for (int s = 0; s < 3; s++) {
            fill_grads(m, s);
            mf_optimizer_apply(opt, m, 0.1f);
        }
        MF_CHECK(memcmp(st, saved, ns * sizeof *saved) == 0);
        MF_CHECK(mf_model_params(m)[gi.offset] != g0);
        free(saved);
        mf_optimizer_free(opt);
        mf_model_free(m);
    }
}

static void test_state_and_iterations(void)
{
    mf_model *m = mlp(4, 3, 0);
    size_t n = mf_model_num_params(m);
    float *bufs[2] = {NULL, NULL};
    const char *names[2] = {NULL, NULL};

    mf_optimizer_options o = sgd(0.0f, 0, 0.0f);
    mf_optimizer *opt = mf_optimizer_create(m, &o);
    MF_CHECK(mf_optimizer_state(opt, bufs, names) == 0);
    MF_CHECK(bufs[0] == NULL && names[0] == NULL);
    MF_CHECK(mf_optimizer_iterations(opt) == 0);
    fill_grads(m, 0);
    for (int s = 0; s < 3; s++)
        mf_optimizer_apply(opt, m, 0.01f);
    MF_CHECK(mf_optimizer_iterations(opt) == 3);
    mf_optimizer_set_iterations(opt, 1234);
    MF_CHECK(mf_optimizer_iterations(opt) == 1234);
    mf_optimizer_apply(opt, m, 0.01f);
    MF_CHECK(mf_optimizer_iterations(opt) == 1235);
    const mf_optimizer_options *oo = mf_optimizer_options_of(opt);
    MF_CHECK(oo->kind == MF_OPT_SGD && oo->momentum == 0.0f);
    mf_optimizer_free(opt);

    o = sgd(0.9f, 1, 0.0f);
    opt = mf_optimizer_create(m, &o);
    MF_CHECK(mf_optimizer_state(opt, NULL, NULL) == 1);
    MF_CHECK(mf_optimizer_state(opt, bufs, names) == 1);
    MF_CHECK(names[0] && strcmp(names[0], "momentum") == 0);
    int zero = 1;
    for (size_t k = 0; k < n; k++)
        zero &= bufs[0][k] == 0.0f;
    MF_CHECK(zero);
    /* first step: momentum = -lr * g exactly (0.9 * 0 - lr * g) */
    fill_grads(m, 2);
    mf_optimizer_apply(opt, m, 0.5f);
    const float *g = mf_model_grads(m);
    mf_param_info k0 = mf_model_param(m, 0);
    MF_CHECK(bufs[0][k0.offset + 1] == -(0.5f * g[k0.offset + 1]));
    MF_CHECK(mf_optimizer_options_of(opt)->nesterov == 1);
    mf_optimizer_free(opt);

    o = adam(0.0f);
    opt = mf_optimizer_create(m, &o);
    MF_CHECK(mf_optimizer_state(opt, bufs, names) == 2);
    MF_CHECK(names[0] && strcmp(names[0], "m") == 0);
    MF_CHECK(names[1] && strcmp(names[1], "v") == 0);
    MF_CHECK(bufs[0] != bufs[1]);
    mf_optimizer_free(opt);
    mf_model_free(m);
}

static void test_defaults(void)
{
    mf_optimizer_options s = mf_optimizer_defaults(MF_OPT_SGD);
    MF_CHECK(s.kind == MF_OPT_SGD && s.momentum == 0.0f && s.nesterov == 0 && s.weight_decay == 0.0f);
    mf_optimizer_options a = mf_optimizer_defaults(MF_OPT_ADAM);
    MF_CHECK(a.kind == MF_OPT_ADAM && a.beta1 == 0.9f && a.beta2 == 0.999f && a.epsilon == 1e-7f);
    MF_CHECK(a.weight_decay == 0.0f);
}

static void expect_invalid(const mf_model *m, mf_optimizer_options o, const char *word)
{
    mf_clear_error();
    mf_optimizer *opt = mf_optimizer_create(m, &o);
    MF_CHECK_MSG(opt == NULL, "options naming '%s' were accepted", word);
    MF_CHECK_MSG(strstr(mf_last_error(), word) != NULL, "error '%s' does not name '%s'", mf_last_error(), word);
    mf_optimizer_free(opt);
}

static void test_invalid_options(void)
{
    mf_model *m = mlp(4, 3, 0);
    mf_optimizer_options o;
    o = sgd(-0.1f, 0, 0.0f);
    expect_invalid(m, o, "momentum");
    o = sgd(1.0f, 0, 0.0f);
    expect_invalid(m, o, "[0, 1)");
    o = sgd(NAN, 0, 0.0f);
    expect_invalid(m, o, "momentum");
    o = sgd(0.0f, 1, 0.0f);
    expect_invalid(m, o, "nesterov");
    o = sgd(0.5f, 2, 0.0f);
    expect_invalid(m, o, "nesterov");
    o = sgd(0.0f, 0, -1e-4f);
    expect_invalid(m, o, "weight_decay");
    o = adam(NAN);
    expect_invalid(m, o, "weight_decay");
    o = adam(0.0f);
    o.beta1 = 1.0f;
    expect_invalid(m, o, "beta1");
    o = adam(0.0f);
    o.beta1 = -0.5f;
    expect_invalid(m, o, "beta1");
    o = adam(0.0f);
    o.beta2 = 1.5f;
    expect_invalid(m, o, "beta2");
    o = adam(0.0f);
    o.epsilon = 0.0f;
    expect_invalid(m, o, "epsilon");
    o = adam(0.0f);
    o.epsilon = -1.0f;
    expect_invalid(m, o, "epsilon");
    o = adam(0.0f);
    o.kind = (mf_optimizer_kind)7;
    expect_invalid(m, o, "kind 7");
    /* only the fields of the chosen kind are validated */
    o = adam(0.0f);
    o.momentum = 5.0f;
    mf_optimizer *ok = mf_optimizer_create(m, &o);
    MF_CHECK(ok != NULL);
    mf_optimizer_free(ok);
    o = sgd(0.9f, 0, 0.0f);
    o.epsilon = 0.0f;
    ok = mf_optimizer_create(m, &o);
    MF_CHECK(ok != NULL);
    mf_optimizer_free(ok);

    MF_CHECK(mf_optimizer_create(NULL, &o) == NULL && strstr(mf_last_error(), "model"));
    MF_CHECK(mf_optimizer_create(m, NULL) == NULL && strstr(mf_last_error(), "options"));
    mf_model *unbuilt = mf_model_create("unbuilt");
    mf_model_input(unbuilt, mf_shape2(0, 4));
    mf_model_add(unbuilt, mf_dense(NULL, 2, 1), 0);
    o = adam(0.0f);
    MF_CHECK(mf_optimizer_create(unbuilt, &o) == NULL && strstr(mf_last_error(), "not built"));
    mf_model_free(unbuilt);
    mf_optimizer_free(NULL);
    mf_model_free(m);
}

static void test_schedules(void)
{
    mf_schedule s = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.1f};
    MF_CHECK(mf_schedule_lr(&s, 0) == 0.1f);
    MF_CHECK(mf_schedule_lr(&s, 100000) == 0.1f);

    /* warm-up: base * (step + 1) / warmup, then the schedule */
    s = (mf_schedule){.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.4f, .warmup_steps = 4};
    MF_CHECK_NEAR(mf_schedule_lr(&s, 0), 0.1, 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 1), 0.2, 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 2), 0.3, 1e-7);
    MF_CHECK(mf_schedule_lr(&s, 3) == 0.4f);
    MF_CHECK(mf_schedule_lr(&s, 4) == 0.4f);
    MF_CHECK(mf_schedule_lr(&s, 50) == 0.4f);

    /* step: base * rate ^ floor(s / decay_steps), s counted after warm-up */
    s = (mf_schedule){.kind = MF_SCHEDULE_STEP, .base_lr = 1.0f, .decay_rate = 0.5f, .decay_steps = 10};
    MF_CHECK(mf_schedule_lr(&s, 0) == 1.0f);
    MF_CHECK(mf_schedule_lr(&s, 9) == 1.0f);
    MF_CHECK(mf_schedule_lr(&s, 10) == 0.5f);
    MF_CHECK(mf_schedule_lr(&s, 25) == 0.25f);
    s.warmup_steps = 5;
    MF_CHECK_NEAR(mf_schedule_lr(&s, 0), 0.2, 1e-7);
    MF_CHECK(mf_schedule_lr(&s, 5) == 1.0f);
    MF_CHECK(mf_schedule_lr(&s, 14) == 1.0f);
    MF_CHECK(mf_schedule_lr(&s, 15) == 0.5f);
    MF_CHECK(mf_schedule_lr(&s, 35) == 0.125f);
    s.decay_steps = 0; /* never decays */
    MF_CHECK(mf_schedule_lr(&s, 1000000) == 1.0f);
    s = (mf_schedule){.kind = MF_SCHEDULE_STEP, .base_lr = 0.1f, .decay_rate = 0.94f, .decay_steps = 3};
    MF_CHECK_NEAR(mf_schedule_lr(&s, 7), 0.1 * 0.94 * 0.94, 1e-7);

    /* cosine: base at the end of warm-up, half way at the middle, 0 at total_steps */
    s = (mf_schedule){.kind = MF_SCHEDULE_COSINE, .base_lr = 1.0f, .warmup_steps = 10, .total_steps = 110};
    MF_CHECK_NEAR(mf_schedule_lr(&s, 0), 0.1, 1e-7);
    MF_CHECK(mf_schedule_lr(&s, 9) == 1.0f);
    MF_CHECK(mf_schedule_lr(&s, 10) == 1.0f);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 35), 0.5 * (1.0 + cos(PI * 0.25)), 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 60), 0.5, 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 109), 0.5 * (1.0 + cos(PI * 0.99)), 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 110), 0.0, 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 500), 0.0, 1e-7);
    /* cosine without warm-up, and with total_steps not beyond warm-up (no
     * division by zero: progress jumps to 1 right after warm-up) */
    s = (mf_schedule){.kind = MF_SCHEDULE_COSINE, .base_lr = 0.2f, .total_steps = 4};
    MF_CHECK(mf_schedule_lr(&s, 0) == 0.2f);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 2), 0.1, 1e-7);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 4), 0.0, 1e-7);
    s = (mf_schedule){.kind = MF_SCHEDULE_COSINE, .base_lr = 0.2f, .warmup_steps = 3, .total_steps = 2};
    MF_CHECK(mf_schedule_lr(&s, 3) == 0.2f);
    MF_CHECK_NEAR(mf_schedule_lr(&s, 4), 0.0, 1e-7);

    /* Goyal et al.: base scaled by the number of ranks */
    s = (mf_schedule){.kind = MF_SCHEDULE_CONSTANT, .base_lr = 0.1f, .warmup_steps = 5};
    mf_schedule_scale_for_world(&s, 1);
    MF_CHECK(s.base_lr == 0.1f);
    mf_schedule_scale_for_world(&s, 4);
    MF_CHECK(s.base_lr == 0.4f);
    MF_CHECK(mf_schedule_lr(&s, 10) == 0.4f);
    MF_CHECK(s.warmup_steps == 5);
}

int main(void)
{
    test_defaults();
    test_updates_match_reference();
    test_adam_first_step_is_sign();
    test_frozen_untouched();
    test_batchnorm_state_untouched();
    test_state_and_iterations();
    test_invalid_options();
    test_schedules();
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu mf_alloc blocks leaked", mf_alloc_live_count());
    return mf_test_report();
}
