/* dataset.h: the dataset struct shared by its two sources, class folders
 * (dirset.c) and packed HDF5 files (packed_h5.c), and the common code in
 * dataset.c (accessors, the validation split, reading). */
#ifndef MF_DATASET_H
#define MF_DATASET_H
#include <pthread.h>
#include <hdf5.h>
#include "mpifit/data.h"
#include "../core/core.h"

typedef enum { MF_DS_DIR = 0, MF_DS_PACKED = 1 } mf_ds_kind;

typedef struct mf_ds_item {
    int      label;
    char    *source;   /* path, or "file.h5:split/name" for messages */
    uint64_t offset;   /* packed: first byte in the split's blob */
    uint64_t length;   /* packed: bytes */
} mf_ds_item;

struct mf_dataset {
    mf_ds_kind  kind;
    char       *path;          /* as opened */
    int         n, cap;
    mf_ds_item *items;         /* n, in label-then-name order (or the split's shuffle) */
    int         n_classes;
    char      **class_names;   /* n_classes, sorted */
    int         n_ignored;     /* non-image files seen while scanning */
    /* packed */
    hid_t       h5_file, h5_blob;
    int         blob_fd;       /* plain read-only descriptor of the packed file, or -1 */
    uint64_t    blob_base;     /* file address of the contiguous blob (pread path) */
};

/* Allocate an empty dataset of `kind` for `path`. */
mf_dataset *mf_ds_alloc(mf_ds_kind kind, const char *path);
/* Append an item; the source string is copied. */
void mf_ds_push(mf_dataset *ds, int label, const char *source, uint64_t offset, uint64_t length);
/* Keep only opt->subset of a seeded shuffle (Keras' validation_split rule:
 * the last int(split * n) samples of the shuffled list are validation). */
mf_status mf_ds_apply_subset(mf_dataset *ds, const mf_dataset_options *opt);

/* The two sources. */
mf_status mf_dirset_open(mf_dataset *ds, const mf_dataset_options *opt);
mf_status mf_packed_open(mf_dataset *ds, const char *file, const char *split);
mf_status mf_packed_read(const mf_dataset *ds, int i, uint8_t *buf, size_t len);
void      mf_packed_close(mf_dataset *ds);
/* 1 if path names an HDF5 file (by signature), else 0. */
int       mf_is_hdf5_file(const char *path);

/* Write a packed file: every split of a class-folder tree (see cmd_pack.c). */
typedef struct mf_pack_split {
    const char *name;        /* "train", "validation", "test" */
    mf_dataset *ds;
} mf_pack_split;
mf_status mf_packed_write(const char *out_path, const mf_pack_split *splits, int n_splits);
#endif
