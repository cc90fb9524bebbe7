/* fuzz_checkpoint.c: libFuzzer target for the checkpoint readers: the input
 * is a checkpoint file's bytes, opened as an HDF5 file image, and goes
 * through mf_checkpoint_check (what `--resume auto` runs on every candidate),
 * mf_checkpoint_load into a compiled context of fuzz_common.h's tiny model
 * (Adam, accuracy: optimizer buffers and tracked metrics to restore), and,
 * when the check passes, mf_checkpoint_export_keras (`mpifit export`) into a
 * temporary directory made for it and removed right after (a crash must not
 * leave one per fuzzing process in $TMPDIR).
 *
 * Oracle beyond the sanitizers: a failure has a message; a failed load
 * changes no parameter, BatchNorm statistic or optimizer buffer (the promise of
 * checkpoint_h5.c's snapshot); a file the load accepts passes the check too;
 * nothing is left allocated or open. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_checkpoint: %s\n", what);
    abort();
}

static mf_model *model;
static float *saved; /* params, Adam m, v, state */

static mf_fit_ctx *new_ctx(void);

/* mpifit export of the file image: 0, or 1 with a failure without a message */
static int export_keras(void)
{
    char dir[64], out[128];
    fuzz_temp_dir(dir);
    snprintf(out, sizeof out, "%s/exported.h5", dir);
    mf_clear_error();
    int quiet = mf_checkpoint_export_keras(FUZZ_H5_NAME, out) != MF_STATUS_OK && !mf_last_error()[0];
    unlink(out);
    rmdir(dir);
    return quiet;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_h5_warm_up();
    model = fuzz_tiny_model();
    saved = malloc((3 * mf_model_num_params(model) + mf_model_num_state(model)) * sizeof *saved);
    if (!saved)
        fail("out of memory");
    mf_fit_ctx_free(new_ctx()); /* the optimizer's and metrics' first use */
    return 0;
}

/* A context as a run resuming from a checkpoint has, made fresh for every
 * input: what a successful load leaves in it (history, callback states) is
 * freed with it, so the mf_alloc count must come back exactly. */
static mf_fit_ctx *new_ctx(void)
{
    mf_fit_ctx *ctx = mf_fit_ctx_create(model, 3, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_ADAM);
    mf_schedule sch = {.kind = MF_SCHEDULE_COSINE, .base_lr = 0.01f, .total_steps = 100, .warmup_steps = 5};
    if (mf_compile(ctx, mf_optimizer_create(model, &oo), &sch, NULL, "accuracy") != MF_STATUS_OK)
        fail("cannot compile the context");
    return ctx;
}

/* Copy (compare = 0) or compare with (compare = 1) every buffer a load
 * writes; 1 if any differs. */
static int buffers(mf_fit_ctx *ctx, int compare)
{
    float *opt[2] = {NULL, NULL};
    if (mf_optimizer_state(mf_fit_optimizer(ctx), opt, NULL) != 2)
        fail("Adam without its two state buffers");
    size_t np = mf_model_num_params(model), ns = mf_model_num_state(model);
    const float *src[4] = {mf_model_params(model), opt[0], opt[1], mf_model_state(model)};
    size_t n[4] = {np, np, np, ns}, at = 0;
    int differ = 0;
    for (int i = 0; i < 4; i++) {
        if (compare)
            differ |= memcmp(saved + at, src[i], n[i] * sizeof *saved) != 0;
        else
            memcpy(saved + at, src[i], n[i] * sizeof *saved);
        at += n[i];
    }
    return differ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live0 = mf_alloc_live_count();
    mf_fit_ctx *ctx = new_ctx();
    mf_h5_set_file_image(data, size);

    mf_checkpoint_summary sum;
    mf_clear_error();
    mf_status checked = mf_checkpoint_check(FUZZ_H5_NAME, &sum);
    if (checked != MF_STATUS_OK && !mf_last_error()[0])
        fail("a failed check without a message");

    buffers(ctx, 0);
    mf_clear_error();
    mf_status loaded = mf_checkpoint_load(ctx, FUZZ_H5_NAME, &sum);
    if (loaded != MF_STATUS_OK) {
        if (!mf_last_error()[0])
            fail("a failed load without a message");
        if (buffers(ctx, 1))
            fail("a failed load changed the model or the optimizer");
    } else if (checked != MF_STATUS_OK) {
        fail("a file that fails the check was loaded");
    }

    if (checked == MF_STATUS_OK && export_keras())
        fail("a failed export without a message");
    mf_h5_set_file_image(NULL, 0);
    mf_fit_ctx_free(ctx);
    fuzz_check_clean(live0, "a checkpoint check, load and export");
    return 0;
}
