/* keras_weights.c: load and save weights in Keras 2's HDF5 layout (see
 * mpifit/checkpoint.h). All HDF5 calls hold mf_h5_lock(). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "mpifit/checkpoint.h"
#include "h5util.h"
#include "keras_io.h"
#include "model_desc.h"
#include "../layers/layer.h"

/* dims of dataset d into shape (Keras layout, no batch), or -1 */
static int dataset_shape(hid_t d, mf_shape *s)
{
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[MF_MAX_DIMS];
    if (nd < 0 || nd > MF_MAX_DIMS || mf_h5_dims(sp, MF_MAX_DIMS, dims) != nd) {
        H5Sclose(sp);
        return -1;
    }
    H5Sclose(sp);
    s->ndim = nd;
    for (int i = 0; i < nd; i++) {
        if (dims[i] > (hsize_t)INT_MAX) /* would truncate: no layer has such a weight */
            return -1;
        s->d[i] = (int)dims[i];
    }
    return 0;
}

/* d's values into v (its shape already checked against v's, so the model
 * bounds what is read) if d holds floats of 2, 4 or 8 bytes: integers or
 * strings in a weight are a damaged or foreign file, and a forged float of
 * gigabytes would make HDF5 allocate that much per value for the conversion.
 * v NULL: the check alone (the first pass). 0; -1 with *why set; -2 if HDF5
 * cannot read it. */
static int read_weight(hid_t d, float *v, const char **why)
{
    hid_t t = H5Dget_type(d);
    *why = mf_h5_is_number(t, H5T_FLOAT) ? NULL : "its values are not floats of 2, 4 or 8 bytes";
    if (t >= 0)
        H5Tclose(t);
    if (*why)
        return -1;
    if (!v)
        return 0;
    return H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? -2 : 0;
}

/* Count the groups at the root that hold at least one dataset two levels down. */
static int count_file_layers(hid_t f)
{
    int n = 0;
    hsize_t nl = mf_h5_num_links(f);
    for (hsize_t i = 0; i < nl; i++) {
        char name[256], inner[600];
        if (mf_h5_link_name(f, i, name, sizeof name) < 0)
            break;
        snprintf(inner, sizeof inner, "%s/%s", name, name);
        if (H5Lexists(f, name, H5P_DEFAULT) > 0 && H5Lexists(f, inner, H5P_DEFAULT) > 0)
            n++;
    }
    return n;
}

mf_status mf_keras_read_group(hid_t f, mf_model *m, const char *path, mf_weights_report *r)
{
    char err[256];
    mf_status s = MF_STATUS_OK;
    r->file_layers = count_file_layers(f);
    /* pass 1: check every shape before touching any weight */
    for (int pass = 0; pass < 2 && s == MF_STATUS_OK; pass++) {
        for (int i = 0; i < mf_model_num_layers(m) && s == MF_STATUS_OK; i++) {
            mf_layer *l = mf_model_layer(m, i);
            if (l->n_slots == 0)
                continue;
            char grp[300];
            snprintf(grp, sizeof grp, "%s/%s", l->name, l->name);
            if (H5Lexists(f, l->name, H5P_DEFAULT) <= 0 || H5Lexists(f, grp, H5P_DEFAULT) <= 0) {
                if (pass == 1) {
                    size_t len = strlen(r->missing);
                    if (len + strlen(l->name) + 6 < sizeof r->missing)
                        snprintf(r->missing + len, sizeof r->missing - len, "%s%s", len ? ", " : "", l->name);
                    else if (len + 4 < sizeof r->missing && !strstr(r->missing, "..."))
                        snprintf(r->missing + len, sizeof r->missing - len, "...");
                    r->missing_layers++;
                }
                continue;
            }
            for (int k = 0; k < l->n_slots && s == MF_STATUS_OK; k++) {
                mf_slot *sl = &l->slot[k];
                char ds[400];
                snprintf(ds, sizeof ds, "%s/%s/%s:0", l->name, l->name, sl->name);
                hid_t d = H5Lexists(f, ds, H5P_DEFAULT) > 0 ? H5Dopen2(f, ds, H5P_DEFAULT) : H5I_INVALID_HID;
                if (d < 0) {
                    s = mf_fail(MF_STATUS_DATA, "%s: layer '%s' has no weight '%s' (expected dataset /%s)", path,
                                l->name, sl->name, ds);
                    break;
                }
                mf_shape fs = {0, {0, 0, 0, 0}};
                if (dataset_shape(d, &fs) != 0 || !mf_shape_eq(&fs, &sl->shape)) {
                    char a[64], b[64];
                    mf_shape_str(&sl->shape, a, sizeof a);
                    mf_shape_str(&fs, b, sizeof b);
                    s = mf_fail(MF_STATUS_SHAPE,
                                "%s: layer '%s' weight '%s' is %s in the file but %s in the model "
                                "(another architecture, alpha or class count?)",
                                path, l->name, sl->name, b, a);
                } else {
                    const char *why = NULL;
                    if (read_weight(d, pass == 1 ? sl->data : NULL, &why) < 0)
                        s = mf_fail(MF_STATUS_DATA, "%s: /%s is not readable as float32 weights: %s", path, ds,
                                    why ? why : mf_h5_error(err, sizeof err));
                }
                H5Dclose(d);
            }
            if (pass == 1 && s == MF_STATUS_OK)
                r->loaded_layers++;
        }
    }
    return s;
}

static mf_status load_locked(mf_model *m, const char *path, mf_weights_report *r)
{
    char err[256];
    hid_t f = mf_h5_open_read(path);
    if (f < 0)
        return mf_fail(MF_STATUS_IO, "cannot open weights %s: %s", path, mf_h5_error(err, sizeof err));
    /* a full Keras model file keeps its weights under /model_weights */
    hid_t g = H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ? H5Gopen2(f, "model_weights", H5P_DEFAULT) : f;
    /* the shapes are all checked before any weight is read, but a read can
     * still fail half-way (a damaged dataset): then the weights and BatchNorm
     * statistics go back to what they were, so a failed load changes nothing */
    size_t np = mf_model_num_params(m), ns = mf_model_num_state(m);
    float *keep = mf_alloc_uninit((np + ns + 1) * sizeof *keep);
    memcpy(keep, mf_model_params(m), np * sizeof *keep);
    if (ns)
        memcpy(keep + np, mf_model_state(m), ns * sizeof *keep);
    mf_status s = g < 0 ? mf_fail(MF_STATUS_DATA, "%s: /model_weights cannot be opened", path)
                        : mf_keras_read_group(g, m, path, r);
    if (s != MF_STATUS_OK) {
        memcpy(mf_model_params(m), keep, np * sizeof *keep);
        if (ns)
            memcpy(mf_model_state(m), keep + np, ns * sizeof *keep);
    }
    mf_free(keep);
    if (g != f && g >= 0)
        H5Gclose(g);
    H5Fclose(f);
    return s;
}

mf_status mf_weights_load_keras(mf_model *m, const char *path, mf_weights_report *report)
{
    MF_ASSERT(mf_model_is_built(m));
    mf_weights_report local;
    mf_weights_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    mf_h5_lock();
    mf_status s = load_locked(m, path, r);
    mf_h5_unlock();
    return s;
}

/* Keras writes layer_names, weight_names and its version strings
 * fixed-length (h5py returns them as bytes): so do we (MF_H5_FIXED). */
mf_status mf_keras_write_group(hid_t f, mf_model *m, const char *tmp)
{
    char err[256];
    mf_status s = MF_STATUS_OK;
    int n = mf_model_num_layers(m);
    const char **names = mf_alloc((size_t)(n ? n : 1) * sizeof *names);
    for (int i = 0; i < n; i++)
        names[i] = mf_model_layer(m, i)->name;
    if (mf_h5_put_strings(f, "layer_names", names, n, MF_H5_FIXED) < 0 ||
        mf_h5_put_string(f, "backend", "tensorflow", MF_H5_FIXED) < 0 ||
        mf_h5_put_string(f, "keras_version", MF_KERAS_VERSION, MF_H5_FIXED) < 0 ||
        mf_h5_put_string(f, "mpifit_version", mf_version(), MF_H5_FIXED) < 0)
        s = mf_fail(MF_STATUS_HDF5, "writing attributes of %s: %s", tmp, mf_h5_error(err, sizeof err));
    for (int i = 0; i < n && s == MF_STATUS_OK; i++) {
        mf_layer *l = mf_model_layer(m, i);
        hid_t g = H5Gcreate2(f, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        char wn[MF_LAYER_MAX_SLOTS][200];
        const char *wp[MF_LAYER_MAX_SLOTS];
        for (int k = 0; k < l->n_slots; k++) {
            snprintf(wn[k], sizeof wn[k], "%s/%s:0", l->name, l->slot[k].name);
            wp[k] = wn[k];
        }
        if (g < 0 || mf_h5_put_strings(g, "weight_names", wp, l->n_slots, MF_H5_FIXED) < 0) {
            s = mf_fail(MF_STATUS_HDF5, "writing layer %s to %s: %s", l->name, tmp, mf_h5_error(err, sizeof err));
        } else if (l->n_slots > 0) {
            hid_t inner = H5Gcreate2(g, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            for (int k = 0; k < l->n_slots && s == MF_STATUS_OK; k++) {
                mf_slot *sl = &l->slot[k];
                hsize_t dims[MF_MAX_DIMS];
                for (int j = 0; j < sl->shape.ndim; j++)
                    dims[j] = (hsize_t)sl->shape.d[j];
                char dn[64];
                snprintf(dn, sizeof dn, "%s:0", sl->name);
                if (inner < 0 ||
                    mf_h5_put_dataset(inner, dn, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, sl->shape.ndim, dims, sl->data,
                                      MF_H5_CHECKED) < 0)
                    s = mf_fail(MF_STATUS_HDF5, "writing %s/%s to %s: %s", l->name, sl->name, tmp,
                                mf_h5_error(err, sizeof err));
            }
            if (inner >= 0)
                H5Gclose(inner);
        }
        if (g >= 0)
            H5Gclose(g);
    }
    mf_free(names);
    return s;
}

mf_status mf_weights_save_keras_desc(mf_model *m, const char *path, const mf_model_desc *desc)
{
    MF_ASSERT(mf_model_is_built(m));
    /* a description that does not fit the model would make predict build
     * another model than the weights are for */
    mf_shape out = mf_model_output_shape(m);
    if (desc && (out.ndim != 2 || out.d[1] != desc->classes))
        return mf_fail(MF_STATUS_INVALID, "%s: the model description says %d classes but the model has %d outputs",
                       path, desc->classes, out.ndim == 2 ? out.d[1] : -1);
    char err[256];
    mf_h5_lock();
    hid_t f = mf_h5_mem_create(path, 0);
    mf_status s = f < 0 ? mf_fail(MF_STATUS_HDF5, "%s: %s", path, mf_h5_error(err, sizeof err))
                        : mf_keras_write_group(f, m, path);
    if (s == MF_STATUS_OK && desc && mf_model_desc_put(f, desc, 1) < 0)
        s = mf_fail(MF_STATUS_HDF5, "writing the model description to %s: %s", path, mf_h5_error(err, sizeof err));
    if (f >= 0)
        s = mf_h5_mem_commit(f, path, s); /* closes f; on failure writes nothing */
    mf_h5_unlock();
    return s;
}

mf_status mf_weights_save_keras(mf_model *m, const char *path) { return mf_weights_save_keras_desc(m, path, NULL); }
