/* dataset.c: what both dataset sources share: the item list, accessors, Keras'
 * validation_split rule, and reading an image's bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dataset.h"

mf_dataset_options mf_dataset_options_default(void)
{
    mf_dataset_options o;
    memset(&o, 0, sizeof o);
    o.subset = MF_SUBSET_ALL;
    o.seed = 1337;
    return o;
}

mf_dataset *mf_ds_alloc(mf_ds_kind kind, const char *path)
{
    mf_dataset *ds = mf_alloc(sizeof *ds);
    ds->kind = kind;
    ds->path = mf_strdup(path);
    ds->h5_file = H5I_INVALID_HID;
    ds->h5_blob = H5I_INVALID_HID;
    ds->blob_fd = -1;
    return ds;
}

void mf_ds_push(mf_dataset *ds, int label, const char *source, uint64_t offset, uint64_t length)
{
    ds->items = mf_grow(ds->items, ds->n, &ds->cap, 64, sizeof *ds->items);
    mf_ds_item *it = &ds->items[ds->n++];
    it->label = label;
    it->source = mf_strdup(source);
    it->offset = offset;
    it->length = length;
}

mf_status mf_ds_apply_subset(mf_dataset *ds, const mf_dataset_options *opt)
{
    if (opt->subset == MF_SUBSET_ALL) {
        if (opt->validation_split != 0.0f)
            return mf_fail(MF_STATUS_INVALID, "%s: validation_split %g needs subset training or validation",
                           ds->path, (double)opt->validation_split);
        return MF_STATUS_OK;
    }
    if (!(opt->validation_split > 0.0f && opt->validation_split < 1.0f))
        return mf_fail(MF_STATUS_INVALID, "%s: validation_split must be in (0, 1), got %g", ds->path,
                       (double)opt->validation_split);
    /* Seeded Fisher-Yates over the whole list, then Keras' cut: the last
     * int(split * n) items are validation. Both subsets use the same seed, so
     * they are complementary. */
    mf_rng r;
    mf_rng_seed(&r, opt->seed);
    for (int i = ds->n - 1; i > 0; i--) {
        int j = (int)mf_rng_below(&r, (uint32_t)i + 1);
        mf_ds_item t = ds->items[i];
        ds->items[i] = ds->items[j];
        ds->items[j] = t;
    }
    int n_val = (int)(opt->validation_split * (float)ds->n);
    int lo = opt->subset == MF_SUBSET_TRAINING ? 0 : ds->n - n_val;
    int hi = opt->subset == MF_SUBSET_TRAINING ? ds->n - n_val : ds->n;
    if (hi - lo <= 0)
        return mf_fail(MF_STATUS_DATA, "%s: validation_split %g of %d images leaves the %s subset empty",
                       ds->path, (double)opt->validation_split, ds->n,
                       opt->subset == MF_SUBSET_TRAINING ? "training" : "validation");
    for (int i = 0; i < ds->n; i++)
        if (i < lo || i >= hi)
            mf_free(ds->items[i].source);
    memmove(ds->items, ds->items + lo, (size_t)(hi - lo) * sizeof *ds->items);
    ds->n = hi - lo;
    return MF_STATUS_OK;
}

mf_status mf_dataset_open(mf_dataset **out, const char *path, const mf_dataset_options *opt_in)
{
    *out = NULL;
    mf_dataset_options opt = opt_in ? *opt_in : mf_dataset_options_default();
    /* "file.h5:split" names a split of a packed file */
    char file[4096];
    if (!mf_strlcpy(file, path, sizeof file))
        return mf_fail(MF_STATUS_INVALID, "dataset path is too long: %.80s...", path);
    const char *split = opt.split;
    struct stat st;
    if (stat(file, &st) != 0) {
        char *colon = strrchr(file, ':');
        if (colon && !split) {
            *colon = '\0';
            split = colon + 1;
        }
        if (stat(file, &st) != 0)
            return mf_fail(MF_STATUS_IO, "dataset %s: %s", path, strerror(errno));
    }
    mf_status s;
    mf_dataset *ds;
    if (S_ISDIR(st.st_mode)) {
        if (split)
            return mf_fail(MF_STATUS_INVALID, "dataset %s: a split name ('%s') only applies to packed .h5 files",
                           path, split);
        ds = mf_ds_alloc(MF_DS_DIR, file);
        s = mf_dirset_open(ds, &opt);
    } else if (mf_is_hdf5_file(file)) {
        ds = mf_ds_alloc(MF_DS_PACKED, file);
        s = mf_packed_open(ds, file, split);
    } else {
        return mf_fail(MF_STATUS_DATA, "dataset %s: neither a directory of class folders nor a packed HDF5 file", path);
    }
    if (s == MF_STATUS_OK)
        s = mf_ds_apply_subset(ds, &opt);
    if (s != MF_STATUS_OK) {
        mf_dataset_free(ds);
        return s;
    }
    *out = ds;
    return MF_STATUS_OK;
}

void mf_dataset_free(mf_dataset *ds)
{
    if (!ds)
        return;
    if (ds->kind == MF_DS_PACKED)
        mf_packed_close(ds);
    for (int i = 0; i < ds->n; i++)
        mf_free(ds->items[i].source);
    for (int c = 0; c < ds->n_classes; c++)
        mf_free(ds->class_names[c]);
    mf_free(ds->class_names);
    mf_free(ds->items);
    mf_free(ds->path);
    mf_free(ds);
}

int mf_dataset_size(const mf_dataset *ds) { return ds->n; }
int mf_dataset_num_classes(const mf_dataset *ds) { return ds->n_classes; }
int mf_dataset_num_ignored(const mf_dataset *ds) { return ds->n_ignored; }

const char *mf_dataset_class_name(const mf_dataset *ds, int c)
{
    MF_ASSERT(c >= 0 && c < ds->n_classes);
    return ds->class_names[c];
}

int mf_dataset_label(const mf_dataset *ds, int i)
{
    MF_ASSERT(i >= 0 && i < ds->n);
    return ds->items[i].label;
}

const char *mf_dataset_source(const mf_dataset *ds, int i)
{
    MF_ASSERT(i >= 0 && i < ds->n);
    return ds->items[i].source;
}

mf_status mf_dataset_same_classes(const mf_dataset *a, const mf_dataset *b)
{
    int n = a->n_classes < b->n_classes ? a->n_classes : b->n_classes;
    for (int c = 0; c < n; c++)
        if (strcmp(a->class_names[c], b->class_names[c]) != 0)
            return mf_fail(MF_STATUS_DATA, "class lists differ: class %d is '%s' in %s but '%s' in %s", c,
                           a->class_names[c], a->path, b->class_names[c], b->path);
    if (a->n_classes != b->n_classes) {
        const mf_dataset *more = a->n_classes > b->n_classes ? a : b;
        return mf_fail(MF_STATUS_DATA, "class lists differ: %s has %d classes, %s has %d (first extra: '%s')",
                       a->path, a->n_classes, b->path, b->n_classes, more->class_names[n]);
    }
    return MF_STATUS_OK;
}

static void grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap && *buf)
        return;
    mf_free(*buf);
    *cap = need + need / 4 + 4096;
    *buf = mf_alloc(*cap);
}

/* A class-folder image: the whole file, with the reason if it cannot be read.
 * Opened non-blocking and checked to be a regular file first, so a FIFO or a
 * device named x.jpg is refused instead of hanging the loader. */
static mf_status read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return mf_fail(MF_STATUS_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mf_fail(MF_STATUS_IO, "not a regular file");
    }
    size_t n = (size_t)st.st_size, got = 0;
    grow(buf, cap, n ? n : 1);
    while (got < n) {
        ssize_t r = read(fd, *buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            mf_status s = mf_fail(MF_STATUS_IO, "read %zu of %zu bytes: %s", got, n,
                                  r < 0 ? strerror(errno) : "file shrank while reading");
            close(fd);
            return s;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = n;
    return MF_STATUS_OK;
}

mf_status mf_dataset_read(const mf_dataset *ds, int i, uint8_t **buf, size_t *cap, size_t *len)
{
    MF_ASSERT(i >= 0 && i < ds->n);
    const mf_ds_item *it = &ds->items[i];
    if (ds->kind == MF_DS_DIR)
        return read_file(it->source, buf, cap, len);
    grow(buf, cap, it->length ? it->length : 1);
    *len = it->length;
    return mf_packed_read(ds, i, *buf, it->length);
}
