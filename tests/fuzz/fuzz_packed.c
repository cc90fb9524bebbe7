/* fuzz_packed.c: libFuzzer target for the packed-dataset reader
 * (src/data/packed_h5.c, what `[data] train = x.h5:split` opens): the input is
 * a packed file's bytes, opened as an HDF5 file image; the target opens its
 * only split (or "train" when it has several), as mf_dataset_open does after
 * finding an HDF5 file, applies a validation split to the item list, and reads
 * every item (at most 64) the way the loader threads do.
 *
 * Unlike the other HDF5 targets, the bytes are a real file (in a temporary
 * directory of its own, removed after each input), opened by HDF5's default
 * driver, so the reader takes the path it takes on disk: a contiguous blob
 * is read with pread() on a descriptor of its own (plain byte ranges, bounded
 * by the index the open checked), any other blob (chunked, filtered: another
 * writer's) through HDF5. (A file image cannot serve here: libhdf5 1.10's
 * core driver refuses an image whose name exists as a file, and leaks the
 * descriptor it opened to find that out.)
 *
 * Oracle beyond the sanitizers: a failure has a message; an opened dataset's
 * labels are inside its class list and every item read has the length its
 * index gives; nothing is left allocated or open, file descriptors included. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
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

/* the number open() gives next: it grows if an input leaves a descriptor open */
static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open /dev/null");
    close(fd);
    return fd;
}

/* open `file` as the named split, or the only one; 0 if it opened */
static int try_open(const char *file, const char *split)
{
    mf_dataset *ds = mf_ds_alloc(&mf_packed_source, file);
    ds->max_bytes = (size_t)1 << 20; /* [data] max_image_mb = 1: no 64 MiB items per input */
    mf_clear_error();
    mf_status s = mf_packed_open(ds, file, split);
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
    int fd0 = lowest_free_fd();
    char dir[64], file[96];
    fuzz_temp_dir(dir);
    snprintf(file, sizeof file, "%s/packed.h5", dir);
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        fail("cannot write the input to a temporary file");
    if (try_open(file, NULL) != 0)
        try_open(file, "train");
    unlink(file);
    rmdir(dir);
    fuzz_check_clean(live0, "a packed dataset");
    if (lowest_free_fd() != fd0) /* the blob's descriptor, closed with the dataset */
        fail("a file descriptor left open");
    return 0;
}
