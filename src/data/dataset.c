/* dataset.c: what every dataset source shares: the item list, accessors and
 * Keras' validation_split rule (see dataset.h). */
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

mf_dataset_options mf_dataset_options_default(void)
{
    mf_dataset_options o;
    memset(&o, 0, sizeof o);
    o.subset = MF_SUBSET_ALL;
    o.seed = 1337;
    return o;
}

mf_dataset *mf_ds_alloc(const mf_ds_source *src, const char *path)
{
    mf_dataset *ds = mf_alloc(sizeof *ds);
    ds->src = src;
    ds->path = mf_strdup(path);
    ds->max_bytes = MF_DS_MAX_IMAGE_BYTES;
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
            return mf_fail(MF_STATUS_INVALID, "%s: validation_split %g needs subset training or validation", ds->path,
                           (double)opt->validation_split);
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
        return mf_fail(MF_STATUS_DATA, "%s: validation_split %g of %d images leaves the %s subset empty", ds->path,
                       (double)opt->validation_split, ds->n,
                       opt->subset == MF_SUBSET_TRAINING ? "training" : "validation");
    for (int i = 0; i < ds->n; i++)
        if (i < lo || i >= hi)
            mf_free(ds->items[i].source);
    memmove(ds->items, ds->items + lo, (size_t)(hi - lo) * sizeof *ds->items);
    ds->n = hi - lo;
    return MF_STATUS_OK;
}

void mf_dataset_free(mf_dataset *ds)
{
    if (!ds)
        return;
    if (ds->src->close)
        ds->src->close(ds);
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
        return mf_fail(MF_STATUS_DATA, "class lists differ: %s has %d classes, %s has %d (first extra: '%s')", a->path,
                       a->n_classes, b->path, b->n_classes, more->class_names[n]);
    }
    return MF_STATUS_OK;
}

void mf_ds_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap && *buf)
        return;
    mf_free(*buf);
    *cap = need + need / 4 + 4096;
    *buf = mf_alloc(*cap);
}

mf_status mf_dataset_read(const mf_dataset *ds, int i, uint8_t **buf, size_t *cap, size_t *len)
{
    MF_ASSERT(i >= 0 && i < ds->n);
    return ds->src->read(ds, i, buf, cap, len);
}
