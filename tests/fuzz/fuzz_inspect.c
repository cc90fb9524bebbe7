/* fuzz_inspect.c: libFuzzer target for `mpifit inspect FILE.h5` and the
 * reading half of `mpifit plot` (src/io/describe.c): the input is any HDF5
 * file's bytes (a checkpoint, a metrics file, Keras weights, a packed
 * dataset), opened as an HDF5 file image; mf_h5_describe writes what it holds
 * to /dev/null and mf_metrics_read_curves reads its epoch curves.
 *
 * Oracle beyond the sanitizers: a failure has a message; curves come with as
 * many rows as they say; nothing is left allocated or open. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "mpifit.h"
#include "io/describe.h"
#include "fuzz_common.h"

static FILE *devnull; /* what mf_h5_describe writes goes nowhere */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_inspect: %s\n", what);
    abort();
}

static FILE *devnull; /* what mf_h5_describe writes goes nowhere */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_h5_warm_up();
    if (!(devnull = fopen("/dev/null", "w")))
        fail("cannot open /dev/null");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live0 = mf_alloc_live_count();
    mf_h5_set_file_image(data, size);
    mf_clear_error();
    if (mf_h5_describe(FUZZ_H5_NAME, devnull) != 0 && !mf_last_error()[0])
        fail("a failed describe without a message");

    double *ep = NULL, *cols[4] = {NULL, NULL, NULL, NULL};
    size_t rows = 0;
    mf_clear_error();
    if (mf_metrics_read_curves(FUZZ_H5_NAME, &ep, cols, &rows) != 0) {
        if (!mf_last_error()[0])
            fail("a failed read of the curves without a message");
    } else {
        /* touch every row the caller (mpifit plot) will read: ASan checks the sizes */
        volatile double sink = 0.0;
        for (size_t i = 0; i < rows; i++) {
            sink += ep[i];
            for (int k = 0; k < 4; k++)
                if (cols[k])
                    sink += cols[k][i];
        }
        (void)sink;
    }
    free(ep);
    for (int k = 0; k < 4; k++)
        free(cols[k]);
    mf_h5_set_file_image(NULL, 0);
    fuzz_check_clean(live0, "an inspect");
    return 0;
}
