/* sources.h: the two dataset sources, for whoever picks one (open.c) or
 * writes a packed file (the pack command). */
#ifndef MF_SOURCES_H
#define MF_SOURCES_H
#include "dataset.h"

extern const mf_ds_source mf_dirset_source; /* class folders, one file per item */
extern const mf_ds_source mf_packed_source; /* a packed HDF5 file's split */

/* Fill ds (from mf_ds_alloc(&mf_dirset_source, dir)) from a class-folder tree. */
mf_status mf_dirset_open(mf_dataset *ds, const mf_dataset_options *opt);
/* Fill ds (from mf_ds_alloc(&mf_packed_source, file)) from split of file. */
mf_status mf_packed_open(mf_dataset *ds, const char *file, const char *split);
/* 1 if path names an HDF5 file (by signature), else 0. */
int mf_is_hdf5_file(const char *path);

/* Write a packed file: every split of a class-folder tree (see cmd_pack.c). */
typedef struct mf_pack_split {
    const char *name; /* "train", "validation", "test" */
    mf_dataset *ds;
} mf_pack_split;
mf_status mf_packed_write(const char *out_path, const mf_pack_split *splits, int n_splits);
#endif
