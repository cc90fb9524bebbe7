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

/* Count the groups at the root that hold at least one dataset two levels down. */
static int count_file_layers(hid_t f)
{
    H5G_info_t info;
    if (H5Gget_info(f, &info) < 0)
        return 0;
    int n = 0;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256], inner[600];
        if (H5Lget_name_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
            continue;
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
                } else if (pass == 1 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, sl->data) < 0) {
                    s = mf_fail(MF_STATUS_HDF5, "%s: reading /%s: %s", path, ds, mf_h5_error(err, sizeof err));
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
    mf_status s = mf_keras_read_group(g, m, path, r);
    if (g != f)
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

/* fixed-length string array attribute (Keras writes layer_names and
 * weight_names this way; h5py returns them as bytes) */
static herr_t write_names(hid_t obj, const char *attr, const char *const *names, int n)
{
    size_t width = 1;
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) + 1 > width)
            width = strlen(names[i]) + 1;
    char *buf = mf_alloc((size_t)(n ? n : 1) * width);
    for (int i = 0; i < n; i++)
        memcpy(buf + (size_t)i * width, names[i], strlen(names[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hsize_t dims = (hsize_t)n;
    hid_t sp = n ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_NULL);
    hid_t a = H5Acreate2(obj, attr, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : (n ? H5Awrite(a, t, buf) : 0);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    mf_free(buf);
    return e;
}

static herr_t write_str(hid_t obj, const char *attr, const char *v)
{
    const char *one[1] = {v};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, attr, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, t, one[0]);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return e;
}

mf_status mf_keras_write_group(hid_t f, mf_model *m, const char *tmp)
{
    char err[256];
    mf_status s = MF_STATUS_OK;
    int n = mf_model_num_layers(m);
    const char **names = mf_alloc((size_t)(n ? n : 1) * sizeof *names);
    for (int i = 0; i < n; i++)
        names[i] = mf_model_layer(m, i)->name;
    if (write_names(f, "layer_names", names, n) < 0 || write_str(f, "backend", "tensorflow") < 0 ||
        write_str(f, "keras_version", "2.2.4") < 0 || write_str(f, "mpifit_version", mf_version()) < 0)
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
        if (g < 0 || write_names(g, "weight_names", wp, l->n_slots) < 0) {
            s = mf_fail(MF_STATUS_HDF5, "writing layer %s to %s: %s", l->name, tmp, mf_h5_error(err, sizeof err));
        } else if (l->n_slots > 0) {
            hid_t inner = H5Gcreate2(g, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            for (int k = 0; k < l->n_slots && s == MF_STATUS_OK; k++) {
                mf_slot *sl = &l->slot[k];
                hsize_t dims[MF_MAX_DIMS];
                for (int j = 0; j < sl->shape.ndim; j++)
                    dims[j] = (hsize_t)sl->shape.d[j];
                hid_t sp = H5Screate_simple(sl->shape.ndim, dims, NULL);
                hid_t dcpl = mf_h5_checked_dcpl(sl->shape.ndim, dims);
                char dn[64];
                snprintf(dn, sizeof dn, "%s:0", sl->name);
                hid_t d = inner < 0 ? -1 : H5Dcreate2(inner, dn, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
                mf_h5_dcpl_close(dcpl);
                if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, sl->data) < 0)
                    s = mf_fail(MF_STATUS_HDF5, "writing %s/%s to %s: %s", l->name, sl->name, tmp,
                                mf_h5_error(err, sizeof err));
                if (d >= 0)
                    H5Dclose(d);
                H5Sclose(sp);
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

mf_status mf_weights_save_keras(mf_model *m, const char *path)
{
    MF_ASSERT(mf_model_is_built(m));
    char err[256];
    mf_h5_lock();
    hid_t f = mf_h5_mem_create(path);
    mf_status s = f < 0 ? mf_fail(MF_STATUS_HDF5, "%s: %s", path, mf_h5_error(err, sizeof err))
                        : mf_h5_mem_commit(f, path, mf_keras_write_group(f, m, path));
    mf_h5_unlock();
    return s;
}
