/* packed_h5.c: many small JPEG files as one HDF5 file (`mpifit pack`).
 *
 * Parallel file systems serve one large file far better than thousands of small
 * ones (one open and one metadata lookup instead of one per image). Layout,
 * readable from h5py without mpifit:
 *
 *   /                 attrs: format = "mpifit-packed-jpeg", format_version = 1,
 *                            class_names (strings, label order), mpifit_version
 *   /<split>/jpeg     uint8 (total_bytes,)  every image's JPEG bytes, concatenated
 *   /<split>/offsets  uint64 (n + 1,)       image i is jpeg[offsets[i]:offsets[i+1]]
 *   /<split>/labels   int32 (n,)            class index of image i
 *   /<split>/names    strings (n,)          "class/file.jpg", for messages
 *
 * e.g. h5py: f["train/jpeg"][o[i]:o[i+1]].tobytes() is image i's file. The blob is
 * stored contiguously (one read per image, no chunk index to walk). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "sources.h"
#include "../io/h5util.h"

#define PACK_FORMAT "mpifit-packed-jpeg"
/* what a reader accepts before allocating (a file claiming more is damaged) */
#define MF_PACK_MAX_RECORDS 100000000
#define MF_PACK_MAX_CLASSES 100000

int mf_is_hdf5_file(const char *path)
{
    mf_h5_lock();
    htri_t r = H5Fis_hdf5(path);
    mf_h5_unlock();
    return r > 0;
}

/* ---- reading ------------------------------------------------------------- */

static mf_status list_splits(hid_t f, char *buf, size_t n)
{
    buf[0] = '\0';
    hsize_t nl = mf_h5_num_links(f);
    for (hsize_t i = 0; i < nl; i++) {
        char name[256];
        if (mf_h5_link_name(f, i, name, sizeof name) < 0)
            break;
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", len ? ", " : "", name);
    }
    return MF_STATUS_OK;
}

/* An open packed file: the source's state (ds->state). */
typedef struct packed_state {
    hid_t h5_file, h5_blob;
    int blob_fd; /* plain read-only descriptor of the file, or -1 */
    uint64_t blob_base; /* file address of the contiguous blob (pread path) */
} packed_state;

/* Open file and check that it is a packed dataset. */
static mf_status open_file(packed_state *P, const char *file)
{
    char err[256];
    P->h5_file = mf_h5_open_read(file);
    if (P->h5_file < 0)
        return mf_fail(MF_STATUS_HDF5, "cannot open packed dataset %s: %s", file, mf_h5_error(err, sizeof err));
    char *fmt = mf_h5_attr_string(P->h5_file, "format", 4096);
    int ok = fmt && strcmp(fmt, PACK_FORMAT) == 0;
    mf_free(fmt);
    if (!ok && mf_h5_guard_last()[0]) /* a forged heap, not a missing attribute */
        return mf_fail(MF_STATUS_DATA, "cannot read the format attribute of %s: %s", file, mf_h5_guard_last());
    if (!ok)
        return mf_fail(MF_STATUS_DATA,
                       "%s is an HDF5 file but not a packed dataset (no format = \"%s\" attribute; "
                       "make one with `mpifit pack DIR %s`)",
                       file, PACK_FORMAT, file);
    return MF_STATUS_OK;
}

/* *split: as asked, or the file's only split; splits (n bytes) lists them. */
static mf_status choose_split(packed_state *P, const char *file, const char **split, char *splits, size_t n)
{
    list_splits(P->h5_file, splits, n);
    if (!*split) {
        if (strchr(splits, ','))
            return mf_fail(MF_STATUS_INVALID, "%s holds several splits (%s): name one, e.g. %s:%s", file, splits, file,
                           "train");
        *split = splits;
    }
    if (H5Lexists(P->h5_file, *split, H5P_DEFAULT) <= 0)
        return mf_fail(MF_STATUS_DATA, "%s has no split '%s' (it has: %s)", file, *split, splits);
    return MF_STATUS_OK;
}

static mf_status read_class_names(mf_dataset *ds, packed_state *P, const char *file)
{
    hid_t attr = H5Aopen(P->h5_file, "class_names", H5P_DEFAULT);
    if (attr < 0)
        return mf_fail(MF_STATUS_DATA, "%s: missing the class_names attribute", file);
    mf_status s = mf_h5_read_strings(attr, 1, -1, MF_PACK_MAX_CLASSES, &ds->class_names, &ds->n_classes, "class_names");
    H5Aclose(attr);
    return s;
}

/* The split's index (offsets, labels, names) into ds's items, every record
 * checked against the blob's size and the class count. */
static mf_status read_index(mf_dataset *ds, packed_state *P, const char *file, const char *split)
{
    char err[256], p[512];
    mf_status s = MF_STATUS_OK;
    snprintf(p, sizeof p, "%s/offsets", split);
    hid_t d_off = H5Dopen2(P->h5_file, p, H5P_DEFAULT);
    snprintf(p, sizeof p, "%s/labels", split);
    hid_t d_lab = H5Dopen2(P->h5_file, p, H5P_DEFAULT);
    snprintf(p, sizeof p, "%s/names", split);
    hid_t d_nam = H5Dopen2(P->h5_file, p, H5P_DEFAULT);
    snprintf(p, sizeof p, "%s/jpeg", split);
    P->h5_blob = H5Dopen2(P->h5_file, p, H5P_DEFAULT);
    uint64_t *off = NULL;
    int32_t *lab = NULL;
    char **names = NULL;
    int n_names = 0;
    if (d_off < 0 || d_lab < 0 || d_nam < 0 || P->h5_blob < 0) {
        s = mf_fail(MF_STATUS_DATA, "%s: split '%s' lacks one of jpeg, offsets, labels, names", file, split);
        goto done;
    }
    hid_t sp = H5Dget_space(d_lab);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    sp = H5Dget_space(P->h5_blob);
    hssize_t total = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    hid_t bt = H5Dget_type(P->h5_blob);
    int bytes = mf_h5_is_number(bt, H5T_INTEGER) && H5Tget_size(bt) == 1;
    if (bt >= 0)
        H5Tclose(bt);
    if (!bytes) {
        s = mf_fail(MF_STATUS_DATA, "%s: split '%s': jpeg is not a list of bytes (8-bit integers)", file, split);
        goto done;
    }
    sp = H5Dget_space(d_off);
    hssize_t n_off = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (n <= 0 || n > MF_PACK_MAX_RECORDS || n_off != n + 1 || total < 0) {
        s = mf_fail(MF_STATUS_DATA, "%s:%s: %lld labels but %lld offsets (want labels + 1)", file, split, (long long)n,
                    (long long)n_off);
        goto done;
    }
    off = mf_alloc((size_t)(n + 1) * sizeof *off);
    lab = mf_alloc((size_t)n * sizeof *lab);
    hsize_t n_rec = (hsize_t)n, n_rec1 = (hsize_t)n + 1;
    snprintf(p, sizeof p, "%s/offsets", split);
    char q[512];
    snprintf(q, sizeof q, "%s/labels", split);
    if (mf_h5_read_exact(P->h5_file, p, H5T_NATIVE_UINT64, 1, &n_rec1, off) < 0 ||
        mf_h5_read_exact(P->h5_file, q, H5T_NATIVE_INT32, 1, &n_rec, lab) < 0) {
        s = mf_fail(MF_STATUS_DATA, "%s:%s: offsets and labels are not 1-D integer lists of %lld + 1 and %lld: %s",
                    file, split, (long long)n, (long long)n, mf_h5_error(err, sizeof err));
        goto done;
    }
    s = mf_h5_read_strings(d_nam, 0, (int)n, MF_PACK_MAX_RECORDS, &names, &n_names, "names");
    if (s != MF_STATUS_OK)
        goto done;
    for (hssize_t i = 0; i < n; i++) {
        if (off[i + 1] < off[i] || off[i + 1] > (uint64_t)total || lab[i] < 0 || lab[i] >= ds->n_classes) {
            s = mf_fail(MF_STATUS_DATA,
                        "%s:%s: record %lld (%s) is corrupt: bytes [%llu, %llu) of %lld, label %d of %d", file, split,
                        (long long)i, names[i], (unsigned long long)off[i], (unsigned long long)off[i + 1],
                        (long long)total, lab[i], ds->n_classes);
            goto done;
        }
        char src[4096];
        snprintf(src, sizeof src, "%s:%s/%s", file, split, names[i]);
        mf_ds_push(ds, lab[i], src, off[i], off[i + 1] - off[i]);
    }
done:
    if (names) {
        for (int i = 0; i < n_names; i++)
            mf_free(names[i]);
        mf_free(names);
    }
    mf_free(off);
    mf_free(lab);
    if (d_off >= 0)
        H5Dclose(d_off);
    if (d_lab >= 0)
        H5Dclose(d_lab);
    if (d_nam >= 0)
        H5Dclose(d_nam);
    return s;
}

/* The blob is contiguous and unfiltered, so image i is a plain byte range of
 * the file: the hot path reads it with pread() on its own descriptor, with no
 * HDF5 call and no lock, from any number of threads. */
static void map_blob(packed_state *P, const char *file)
{
    haddr_t base = H5Dget_offset(P->h5_blob);
    if (base != HADDR_UNDEF) {
        P->blob_fd = open(file, O_RDONLY | O_CLOEXEC);
        P->blob_base = (uint64_t)base;
    }
}

static mf_status packed_open_locked(mf_dataset *ds, const char *file, const char *split)
{
    packed_state *P = ds->state;
    char splits[512];
    MF_TRY(open_file(P, file));
    MF_TRY(choose_split(P, file, &split, splits, sizeof splits));
    MF_TRY(read_class_names(ds, P, file));
    MF_TRY(read_index(ds, P, file, split));
    map_blob(P, file);
    return MF_STATUS_OK;
}

mf_status mf_packed_open(mf_dataset *ds, const char *file, const char *split)
{
    packed_state *P = mf_alloc(sizeof *P);
    P->h5_file = P->h5_blob = H5I_INVALID_HID;
    P->blob_fd = -1;
    ds->state = P; /* packed_close releases it, also after a failed open */
    mf_h5_lock();
    mf_status s = packed_open_locked(ds, file, split);
    mf_h5_unlock();
    return s;
}

static mf_status packed_read(const mf_dataset *ds, int i, uint8_t **bufp, size_t *cap, size_t *lenp)
{
    const packed_state *P = ds->state;
    const mf_ds_item *it = &ds->items[i];
    size_t len = it->length;
    if (len > ds->max_bytes)
        return mf_fail(MF_STATUS_IO, "%zu bytes, more than the limit of %zu ([data] max_image_mb)", len, ds->max_bytes);
    mf_ds_grow(bufp, cap, len ? len : 1);
    *lenp = len;
    uint8_t *buf = *bufp;
    if (len == 0)
        return MF_STATUS_OK;
    if (P->blob_fd >= 0) {
        size_t got = 0;
        while (got < len) {
            ssize_t r = pread(P->blob_fd, buf + got, len - got, (off_t)(P->blob_base + it->offset + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return mf_fail(MF_STATUS_IO, "cannot read %zu bytes at %llu: %s", len,
                               (unsigned long long)(P->blob_base + it->offset),
                               r < 0 ? strerror(errno) : "the file is shorter than its index says (truncated?)");
            got += (size_t)r;
        }
        return MF_STATUS_OK;
    }
    /* a blob HDF5 stored otherwise (chunked by another writer): through HDF5 */
    mf_h5_lock();
    hsize_t start = it->offset, count = len;
    hid_t fs = H5Dget_space(P->h5_blob);
    hid_t ms = H5Screate_simple(1, &count, NULL);
    herr_t e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (e >= 0)
        e = H5Dread(P->h5_blob, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf);
    char err[256] = "";
    if (e < 0)
        mf_h5_error(err, sizeof err);
    H5Sclose(ms);
    H5Sclose(fs);
    mf_h5_unlock();
    if (e < 0)
        return mf_fail(MF_STATUS_IO, "cannot read %zu bytes at %llu: %s", len, (unsigned long long)it->offset, err);
    return MF_STATUS_OK;
}

static void packed_close(mf_dataset *ds)
{
    packed_state *P = ds->state;
    if (!P)
        return;
    if (P->blob_fd >= 0)
        close(P->blob_fd);
    P->blob_fd = -1;
    mf_h5_lock();
    if (P->h5_blob >= 0)
        H5Dclose(P->h5_blob);
    if (P->h5_file >= 0)
        H5Fclose(P->h5_file);
    mf_h5_unlock();
    mf_free(P);
    ds->state = NULL;
}

const mf_ds_source mf_packed_source = {MF_DS_PACKED, packed_read, packed_close};

/* ---- writing ------------------------------------------------------------- */

/* One split: read every file once to size the blob, then write it in order. */
static mf_status write_split(hid_t f, const char *out_path, const mf_pack_split *sp)
{
    const mf_dataset *ds = sp->ds;
    int n = ds->n;
    uint64_t *off = mf_alloc((size_t)(n + 1) * sizeof *off);
    int32_t *lab = mf_alloc((size_t)n * sizeof *lab);
    const char **names = mf_alloc((size_t)n * sizeof *names);
    size_t root_len = strlen(ds->path);
    for (int i = 0; i < n; i++) {
        struct stat st;
        const char *src = ds->items[i].source;
        if (stat(src, &st) != 0) {
            mf_status s = mf_fail(MF_STATUS_IO, "pack: cannot stat %s: %s", src, strerror(errno));
            mf_free(off);
            mf_free(lab);
            mf_free(names);
            return s;
        }
        off[i + 1] = off[i] + (uint64_t)st.st_size;
        lab[i] = ds->items[i].label;
        names[i] = strncmp(src, ds->path, root_len) == 0 && src[root_len] == '/' ? src + root_len + 1 : src;
    }
    mf_status s = MF_STATUS_OK;
    char err[256];
    hid_t g = H5Gcreate2(f, sp->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t total = off[n] ? off[n] : 1;
    hid_t fsp = H5Screate_simple(1, &total, NULL);
    hid_t blob = g < 0 ? -1 : H5Dcreate2(g, "jpeg", H5T_NATIVE_UINT8, fsp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (blob < 0) {
        s = mf_fail(MF_STATUS_HDF5, "pack: cannot create %s/jpeg in %s: %s", sp->name, out_path,
                    mf_h5_error(err, sizeof err));
        goto done;
    }
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    for (int i = 0; i < n && s == MF_STATUS_OK; i++) {
        mf_h5_unlock(); /* file reading needs no lock; let loader threads elsewhere run */
        s = mf_dataset_read(ds, i, &buf, &cap, &len);
        mf_h5_lock();
        if (s != MF_STATUS_OK) {
            char why[512];
            mf_strlcpy(why, mf_last_error(), sizeof why);
            s = mf_fail(MF_STATUS_IO, "pack: %s: %s", ds->items[i].source, why);
            break;
        }
        if (len != off[i + 1] - off[i]) {
            s = mf_fail(MF_STATUS_IO, "pack: %s changed size while packing", ds->items[i].source);
            break;
        }
        if (len == 0)
            continue;
        hsize_t start = off[i], count = len;
        hid_t ms = H5Screate_simple(1, &count, NULL);
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &count, NULL);
        if (H5Dwrite(blob, H5T_NATIVE_UINT8, ms, fsp, H5P_DEFAULT, buf) < 0)
            s = mf_fail(MF_STATUS_HDF5, "pack: writing %s into %s: %s", ds->items[i].source, out_path,
                        mf_h5_error(err, sizeof err));
        H5Sclose(ms);
    }
    mf_free(buf);
    hsize_t n_off = (hsize_t)n + 1, n_lab = (hsize_t)n;
    if (s == MF_STATUS_OK &&
        (mf_h5_put_dataset(g, "offsets", H5T_NATIVE_UINT64, H5T_NATIVE_UINT64, 1, &n_off, off, 0) < 0 ||
         mf_h5_put_dataset(g, "labels", H5T_NATIVE_INT32, H5T_NATIVE_INT32, 1, &n_lab, lab, 0) < 0 ||
         mf_h5_put_strings(g, "names", names, n, MF_H5_DATASET) < 0))
        s = mf_fail(MF_STATUS_HDF5, "pack: writing the index of %s into %s: %s", sp->name, out_path,
                    mf_h5_error(err, sizeof err));
done:
    if (blob >= 0)
        H5Dclose(blob);
    H5Sclose(fsp);
    if (g >= 0)
        H5Gclose(g);
    mf_free(off);
    mf_free(lab);
    mf_free(names);
    return s;
}

mf_status mf_packed_write(const char *out_path, const mf_pack_split *splits, int n_splits)
{
    MF_ASSERT(n_splits > 0);
    for (int k = 1; k < n_splits; k++)
        MF_TRY(mf_dataset_same_classes(splits[0].ds, splits[k].ds));
    /* Write beside the target, then rename: a failed or interrupted pack never
     * leaves a half-written file under the real name. */
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out_path) >= (int)sizeof tmp)
        return mf_fail(MF_STATUS_INVALID, "pack: output path too long");
    char err[256];
    mf_h5_lock();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        mf_h5_unlock();
        return mf_fail(MF_STATUS_IO, "pack: cannot create %s: %s", tmp, mf_h5_error(err, sizeof err));
    }
    const mf_dataset *ds0 = splits[0].ds;
    mf_status s = MF_STATUS_OK;
    int one = 1;
    if (mf_h5_put_string(f, "format", PACK_FORMAT, 0) < 0 ||
        mf_h5_put_scalar(f, "format_version", H5T_NATIVE_INT, &one) < 0 ||
        mf_h5_put_string(f, "mpifit_version", mf_version(), 0) < 0 ||
        mf_h5_put_strings(f, "class_names", (const char *const *)ds0->class_names, ds0->n_classes, 0) < 0)
        s = mf_fail(MF_STATUS_HDF5, "pack: writing attributes of %s: %s", tmp, mf_h5_error(err, sizeof err));
    for (int k = 0; k < n_splits && s == MF_STATUS_OK; k++)
        s = write_split(f, tmp, &splits[k]);
    if (H5Fclose(f) < 0 && s == MF_STATUS_OK)
        s = mf_fail(MF_STATUS_IO, "pack: closing %s: %s", tmp, mf_h5_error(err, sizeof err));
    mf_h5_unlock();
    return mf_commit_file(tmp, out_path, s);
}
