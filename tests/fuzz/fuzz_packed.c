/* fuzz_packed.c: libFuzzer target for the packed-dataset reader
 * (src/data/packed_h5.c, what `[data] train = x.h5:split` opens): the input is
 * a packed file's bytes, opened as an HDF5 file image; the target opens its
 * only split (or "train" when it has several), as mf_dataset_open does after
 * finding an HDF5 file, applies a validation split to the item list, and reads
 * every item (at most 64) the way the loader threads do.
 *
 * The file image has no descriptor, so items are read through HDF5 (the
 * reader's path for blobs it cannot pread); the pread path is plain byte
 * ranges of a real file, checked by the index bounds the open verifies.
 *
 * Oracle beyond the sanitizers: a failure has a message; an opened dataset's
 * labels are inside its class list and every item read has the length its
 * index gives; nothing is left allocated or open. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "data/dataset.h"
#include "data/sources.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_packed: %s\n", what);
    abort();
}

/* open as the named split, or the only one; 0 if it opened */
static int try_open(const char *split)
{
    mf_dataset *ds = mf_ds_alloc(&mf_packed_source, FUZZ_H5_NAME);
    ds->max_bytes = (size_t)1 << 20; /* [data] max_image_mb = 1: no 64 MiB items per input */
    mf_clear_error();
    mf_status s = mf_packed_open(ds, FUZZ_H5_NAME, split);
    if (s != MF_STATUS_OK) {
        if (!mf_last_error()[0])
            fail("a failed open without a message");
        mf_dataset_free(ds);
        return 1;
    }
    for (int i = 0; i < mf_dataset_size(ds); i++) {
        int label = mf_dataset_label(ds, i);
        if (label < 0 || label >= mf_dataset_num_classes(ds) || !mf_dataset_class_name(ds, label))
            fail("a label outside the class list");
    }
    mf_dataset_options opt = mf_dataset_options_default();
    opt.validation_split = 0.25f;
    opt.subset = MF_SUBSET_TRAINING;
    s = mf_ds_apply_subset(ds, &opt);
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    for (int i = 0; s == MF_STATUS_OK && i < mf_dataset_size(ds) && i < 64; i++) {
        mf_clear_error();
        if (mf_dataset_read(ds, i, &buf, &cap, &len) != MF_STATUS_OK) {
            if (!mf_last_error()[0])
                fail("a failed read without a message");
        } else if (len != ds->items[i].length) {
            fail("an item read with another length than its index gives");
        }
    }
    mf_free(buf);
    mf_dataset_free(ds);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_h5_warm_up();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live0 = mf_alloc_live_count();
    mf_h5_set_file_image(data, size);
    if (try_open(NULL) != 0)
        try_open("train");
    mf_h5_set_file_image(NULL, 0);
    fuzz_check_clean(live0, "a packed dataset");
    return 0;
}
