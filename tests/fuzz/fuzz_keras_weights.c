/* fuzz_keras_weights.c: libFuzzer target for mf_weights_load_keras (what
 * `[model] weights = x.h5` runs): the input is the weights file's bytes,
 * opened as an HDF5 file image, loaded by layer name into the tiny model of
 * fuzz_common.h; then mf_model_desc_read of the same bytes (what `predict
 * --weights x.h5` runs first).
 *
 * Oracle beyond the sanitizers: a failure has a message and changes no weight
 * and no BatchNorm statistic (mpifit/checkpoint.h: a load that fails half-way
 * puts them back); a success's report counts no more layers than the model
 * has; a description read either fails with a message and leaves nothing, or
 * holds only values inside the documented ranges and as many non-empty class
 * names as classes; nothing is left allocated or open. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_keras_weights: %s\n", what);
    abort();
}

static mf_model *m;
static float *before; /* the parameters, then the state, before the load */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_h5_warm_up();
    m = fuzz_tiny_model();
    before = malloc((mf_model_num_params(m) + mf_model_num_state(m)) * sizeof *before);
    if (!before)
        fail("out of memory");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live0 = mf_alloc_live_count();
    size_t np = mf_model_num_params(m), ns = mf_model_num_state(m);
    memcpy(before, mf_model_params(m), np * sizeof *before);
    memcpy(before + np, mf_model_state(m), ns * sizeof *before);

    mf_h5_set_file_image(data, size);
    mf_weights_report r;
    mf_clear_error();
    mf_status s = mf_weights_load_keras(m, FUZZ_H5_NAME, &r);
    mf_h5_set_file_image(NULL, 0);
    if (s != MF_STATUS_OK) {
        if (!mf_last_error()[0])
            fail("a failure without a message");
        if (memcmp(before, mf_model_params(m), np * sizeof *before) != 0 ||
            memcmp(before + np, mf_model_state(m), ns * sizeof *before) != 0)
            fail("a failed load changed the weights or the BatchNorm statistics");
    } else if (r.loaded_layers + r.missing_layers > mf_model_num_layers(m) || r.loaded_layers < 0 ||
               r.missing_layers < 0 || !memchr(r.missing, '\0', sizeof r.missing)) {
        fail("an impossible report");
    }
    fuzz_check_clean(live0, "a weights load");

    mf_model_desc d;
    mf_h5_set_file_image(data, size);
    mf_clear_error();
    s = mf_model_desc_read(FUZZ_H5_NAME, &d);
    mf_h5_set_file_image(NULL, 0);
    if (s != MF_STATUS_OK) {
        if (!mf_last_error()[0])
            fail("a description read failed without a message");
        if (d.class_names || d.classes || d.arch[0])
            fail("a failed description read left values");
    } else {
        if ((strcmp(d.arch, "mobilenet_v2") != 0 && strcmp(d.arch, "small_cnn") != 0) || d.input_size < 32 ||
            d.input_size > 4096 || d.classes < 1 || d.classes > 100000 || !(d.alpha > 0.0f && d.alpha <= 10.0f) ||
            !(d.dropout >= 0.0f && d.dropout <= 0.99f) || !(d.bn_momentum >= 0.0f && d.bn_momentum <= 1.0f))
            fail("a description out of its documented ranges");
        for (int i = 0; d.class_names && i < d.classes; i++)
            if (!d.class_names[i] || !d.class_names[i][0])
                fail("an empty class name");
    }
    mf_model_desc_free(&d);
    fuzz_check_clean(live0, "a description read");
    return 0;
}
