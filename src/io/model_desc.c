/* model_desc.c: the model description that weights files and checkpoints
 * carry as root attributes (mpifit/checkpoint.h): written next to the
 * weights, read back with every value checked, since the file may come from
 * anywhere. All HDF5 calls hold mf_h5_lock(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit/checkpoint.h"
#include "h5util.h"
#include "model_desc.h"
#include "../core/core.h"

#define DESC_MAX_CLASSES 100000 /* as [model] classes */
#define DESC_MAX_NAME 4096 /* bytes of one class name */

/* The shortest decimal that reads back as v, as a double: 0.35f is stored
 * as 0.35, not 0.3499999940395355 (what h5py and h5dump then show). */
static double decimal(float v)
{
    char buf[32];
    for (int digits = 6; digits < 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v)
            return strtod(buf, NULL);
    }
    return (double)v;
}

/* The strings are fixed-length, as Keras writes its own: a weights file then
 * has no global heap, the part of an HDF5 file whose damage crashes
 * libhdf5's variable-length string reads (tests/fuzz/README.md); a
 * checkpoint, whose whole-file checksum is verified first, keeps its
 * variable-length class_names. */
int mf_model_desc_put(hid_t loc, const mf_model_desc *d, int with_names)
{
    int bad = mf_h5_put_string(loc, "model_arch", d->arch, MF_H5_FIXED) < 0;
    /* "keras": the model is the file's own model_config; no zoo arguments */
    if (strcmp(d->arch, MF_MODEL_DESC_KERAS) != 0) {
        bad |= mf_h5_put_f64(loc, "model_alpha", decimal(d->alpha)) < 0;
        bad |= mf_h5_put_f64(loc, "model_dropout", decimal(d->dropout)) < 0;
        bad |= mf_h5_put_f64(loc, "model_bn_momentum", decimal(d->bn_momentum)) < 0;
    }
    bad |= mf_h5_put_i64(loc, "model_input_size", d->input_size) < 0;
    bad |= mf_h5_put_i64(loc, "model_classes", d->classes) < 0;
    if (with_names && d->class_names)
        bad |= mf_h5_put_strings(loc, "class_names", (const char *const *)d->class_names, d->classes, MF_H5_FIXED) < 0;
    return bad ? -1 : 0;
}

/* The attribute is not there at all: the file was not written with a
 * description (MF_STATUS_CONFIG: the model has to come from elsewhere). */
static mf_status missing(hid_t loc, const char *what, const char *name)
{
    if (H5Aexists(loc, name) > 0)
        return MF_STATUS_OK;
    return mf_fail(MF_STATUS_CONFIG, "%s has no model description: root attribute '%s' is missing", what, name);
}

static mf_status get_f64(hid_t loc, const char *what, const char *name, double lo, double hi, float *out)
{
    MF_TRY(missing(loc, what, name));
    int bad = 0;
    double v = mf_h5_get_f64(loc, name, &bad);
    if (bad || !isfinite(v) || v < lo || v > hi)
        return mf_fail(MF_STATUS_DATA, "%s: root attribute '%s' is not one number in [%g, %g]", what, name, lo, hi);
    *out = (float)v;
    return MF_STATUS_OK;
}

static mf_status get_int(hid_t loc, const char *what, const char *name, int lo, int hi, int *out)
{
    MF_TRY(missing(loc, what, name));
    int bad = 0;
    int64_t v = mf_h5_get_i64(loc, name, &bad);
    if (bad || v < lo || v > hi)
        return mf_fail(MF_STATUS_DATA, "%s: root attribute '%s' is not one integer in [%d, %d]", what, name, lo, hi);
    *out = (int)v;
    return MF_STATUS_OK;
}

/* class_names: none stored (absent, or an empty list: a checkpoint of a run
 * that did not know them) leaves d->class_names NULL; otherwise exactly
 * d->classes non-empty names of bounded length. */
static mf_status get_names(hid_t loc, const char *what, mf_model_desc *d)
{
    if (H5Aexists(loc, "class_names") <= 0)
        return MF_STATUS_OK;
    hid_t a = H5Aopen(loc, "class_names", H5P_DEFAULT);
    if (a < 0)
        return mf_fail(MF_STATUS_DATA, "%s: root attribute 'class_names' cannot be opened", what);
    char **v = NULL;
    int n = 0;
    char label[300];
    snprintf(label, sizeof label, "%.256s: root attribute 'class_names'", what);
    mf_status s = mf_h5_read_strings(a, 1, -1, DESC_MAX_CLASSES, &v, &n, label);
    H5Aclose(a);
    MF_TRY(s);
    if (n > 0 && n != d->classes)
        s = mf_fail(MF_STATUS_DATA, "%s: %d class_names for model_classes = %d", what, n, d->classes);
    for (int i = 0; s == MF_STATUS_OK && i < n; i++)
        if (!v[i][0] || strlen(v[i]) > DESC_MAX_NAME)
            s = mf_fail(MF_STATUS_DATA, "%s: class name %d is empty or longer than %d bytes", what, i, DESC_MAX_NAME);
    if (s != MF_STATUS_OK || n == 0) {
        mf_h5_strings_free(v, n);
        return s;
    }
    d->class_names = v;
    return MF_STATUS_OK;
}

static mf_status get_all(hid_t loc, const char *what, mf_model_desc *d)
{
    MF_TRY(missing(loc, what, "model_arch"));
    char *arch = mf_h5_attr_string(loc, "model_arch", sizeof d->arch - 1);
    int known = arch &&
        (strcmp(arch, "mobilenet_v2") == 0 || strcmp(arch, "small_cnn") == 0 || strcmp(arch, MF_MODEL_DESC_KERAS) == 0);
    if (known)
        mf_strlcpy(d->arch, arch, sizeof d->arch);
    mf_free(arch);
    if (!known)
        return mf_fail(MF_STATUS_DATA,
                       "%s: root attribute 'model_arch' is not one string 'mobilenet_v2', 'small_cnn' or '%s'", what,
                       MF_MODEL_DESC_KERAS);
    /* the ranges of the [model] keys; the zoo checks alpha against Keras' choices */
    if (strcmp(d->arch, MF_MODEL_DESC_KERAS) == 0) {
        if (H5Aexists(loc, "model_config") <= 0)
            return mf_fail(MF_STATUS_DATA,
                           "%s: root attribute 'model_arch' is '%s' but the Keras model_config attribute is missing",
                           what, MF_MODEL_DESC_KERAS);
    } else {
        MF_TRY(get_f64(loc, what, "model_alpha", 0.01, 10.0, &d->alpha));
        MF_TRY(get_f64(loc, what, "model_dropout", 0.0, 0.99, &d->dropout));
        MF_TRY(get_f64(loc, what, "model_bn_momentum", 0.0, 1.0, &d->bn_momentum));
    }
    MF_TRY(get_int(loc, what, "model_input_size", 32, 4096, &d->input_size));
    MF_TRY(get_int(loc, what, "model_classes", 1, DESC_MAX_CLASSES, &d->classes));
    return get_names(loc, what, d);
}

mf_status mf_model_desc_get(hid_t loc, const char *what, mf_model_desc *d)
{
    memset(d, 0, sizeof *d);
    mf_status s = get_all(loc, what, d);
    if (s != MF_STATUS_OK)
        mf_model_desc_free(d);
    return s;
}

mf_status mf_model_desc_read(const char *path, mf_model_desc *d)
{
    memset(d, 0, sizeof *d);
    /* a checkpoint's whole-file checksum first: nothing of a damaged file is
     * believed. mpifit writes its checkpoints with the checksum line and its
     * weights files without a user block, so a user block without the line is
     * a damaged line (the file behind it unchecked: it never reaches libhdf5)
     * or another program's block */
    char why[300];
    int sum = mf_h5_verify_sum(path, why, sizeof why);
    if (sum < 0)
        return mf_fail(MF_STATUS_DATA, "%s: %s", path, why);
    if (sum == 2)
        return mf_fail(MF_STATUS_DATA,
                       "%s: %s; mpifit's checkpoints begin with their checksum line and its weights files with "
                       "HDF5's signature (another program's user block can be taken off with h5unjam)",
                       path, why);
    char err[256];
    mf_h5_lock();
    hid_t f = mf_h5_open_read(path);
    mf_status s = f < 0 ? mf_fail(MF_STATUS_IO, "cannot open weights %s: %s", path, mf_h5_error(err, sizeof err))
                        : mf_model_desc_get(f, path, d);
    if (f >= 0)
        H5Fclose(f);
    mf_h5_unlock();
    return s;
}

void mf_model_desc_free(mf_model_desc *d)
{
    if (!d)
        return;
    mf_h5_strings_free(d->class_names, d->class_names ? d->classes : 0);
    memset(d, 0, sizeof *d);
}
