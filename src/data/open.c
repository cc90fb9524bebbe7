/* open.c: a dataset for a path: a directory of class folders, or a packed
 * HDF5 file (optionally "file.h5:split"). The one place that knows every
 * source (sources.h). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "sources.h"

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
            return mf_fail(MF_STATUS_INVALID, "dataset %s: a split name ('%s') only applies to packed .h5 files", path,
                           split);
        ds = mf_ds_alloc(&mf_dirset_source, file);
        s = mf_dirset_open(ds, &opt);
    } else if (mf_is_hdf5_file(file)) {
        ds = mf_ds_alloc(&mf_packed_source, file);
        s = mf_packed_open(ds, file, split);
    } else {
        return mf_fail(MF_STATUS_DATA, "dataset %s: neither a directory of class folders nor a packed HDF5 file", path);
    }
    if (opt.max_image_bytes)
        ds->max_bytes = opt.max_image_bytes;
    if (s == MF_STATUS_OK)
        s = mf_ds_apply_subset(ds, &opt);
    if (s != MF_STATUS_OK) {
        mf_dataset_free(ds);
        return s;
    }
    *out = ds;
    return MF_STATUS_OK;
}
