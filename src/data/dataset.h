/* dataset.h: the dataset interface. A dataset is a list of labelled items
 * and a source that reads them: class folders (dirset.c) or a packed HDF5
 * file (packed_h5.c), each an mf_ds_source. dataset.c holds what every source
 * shares (the item list, accessors, Keras' validation split) and knows no
 * source; sources.h and open.c pick one for a path. So the files depend in
 * one direction: dataset.c <- dirset.c, packed_h5.c <- open.c. */
#ifndef MF_DATASET_H
#define MF_DATASET_H
#include <pthread.h>
#include "mpifit/data.h"
#include "../core/core.h"

typedef enum { MF_DS_DIR = 0, MF_DS_PACKED = 1 } mf_ds_kind;

/* One kind of dataset source. */
typedef struct mf_ds_source {
    mf_ds_kind kind;
    /* Item i's bytes into *buf (grown with mf_ds_grow as needed), their
     * count into *len; the reason in the error when it cannot. */
    mf_status (*read)(const mf_dataset *ds, int i, uint8_t **buf, size_t *cap, size_t *len);
    /* Release the source's state (ds->state). Optional. */
    void (*close)(mf_dataset *ds);
} mf_ds_source;

typedef struct mf_ds_item {
    int label;
    char *source; /* path, or "file.h5:split/name" for messages */
    uint64_t offset; /* packed: first byte in the split's blob */
    uint64_t length; /* packed: bytes */
} mf_ds_item;

struct mf_dataset {
    const mf_ds_source *src;
    char *path; /* as opened */
    int n, cap;
    mf_ds_item *items; /* n, in label-then-name order (or the split's shuffle) */
    int n_classes;
    char **class_names; /* n_classes, sorted */
    int n_ignored; /* non-image files seen while scanning */
    void *state; /* the source's own (an open packed file) */
    size_t max_bytes; /* of one image file: larger is a bad image */
};

#define MF_DS_MAX_IMAGE_BYTES ((size_t)64 << 20) /* the default limit of one image file */

/* Allocate an empty dataset read by `src` for `path`. */
mf_dataset *mf_ds_alloc(const mf_ds_source *src, const char *path);
/* Make *buf (capacity *cap) hold at least need bytes. */
void mf_ds_grow(uint8_t **buf, size_t *cap, size_t need);
/* Append an item; the source string is copied. */
void mf_ds_push(mf_dataset *ds, int label, const char *source, uint64_t offset, uint64_t length);
/* Keep only opt->subset of a seeded shuffle (Keras' validation_split rule:
 * the last int(split * n) samples of the shuffled list are validation). */
mf_status mf_ds_apply_subset(mf_dataset *ds, const mf_dataset_options *opt);

#endif
