/* fuzz_keras_weights.c: libFuzzer target for mf_weights_load_keras (what
 * `[model] weights = x.h5` runs): the input is the weights file's bytes,
 * opened as an HDF5 file image, loaded by layer name into the tiny model of
 * fuzz_common.h.
 *
 * Oracle beyond the sanitizers: a failure has a message and changes no weight
 * and no BatchNorm statistic (mpifit/checkpoint.h: a load that fails half-way
 * puts them back); a success's report counts no more layers than the model
 * has; nothing is left allocated or open. */
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
    return 0;
}
