/* h5util.c: the process-wide HDF5 lock and error text. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "h5util.h"
#include "../core/core.h"

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;

/* Once, before any other HDF5 call: no error printing (callers report with
 * the file name), and no clean-up at exit: after a failed H5Fclose (a full
 * disk) HDF5 keeps a half-closed file that its exit handler would close again
 * and crash on. mpifit closes every file it opens itself. */
static void h5_quiet(void)
{
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void mf_h5_lock(void)
{
    pthread_mutex_lock(&h5_mutex);
    pthread_once(&h5_once, h5_quiet);
}

void mf_h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

typedef struct walk_ctx {
    char *buf;
    size_t n;
} walk_ctx;

static herr_t last_desc(unsigned n, const H5E_error2_t *e, void *data)
{
    walk_ctx *w = data;
    (void)n;
    if (e->desc && e->desc[0])
        snprintf(w->buf, w->n, "%s", e->desc);
    return 0;
}

const char *mf_h5_error(char *buf, size_t n)
{
    walk_ctx w = {buf, n};
    if (n)
        buf[0] = '\0';
    /* walking downward from the API call, the innermost (most specific) error comes last */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, last_desc, &w);
    return buf;
}

mf_status mf_commit_file(const char *tmp, const char *path, mf_status s)
{
    if (s == MF_STATUS_OK) {
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0)
            s = mf_fail(MF_STATUS_IO, "fsync %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (s == MF_STATUS_OK && rename(tmp, path) != 0)
        s = mf_fail(MF_STATUS_IO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    if (s != MF_STATUS_OK) {
        unlink(tmp);
        return s;
    }
    /* the directory entry: fsync the directory that holds path */
    char dir[4096];
    mf_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        mf_strlcpy(dir, ".", sizeof dir);
    int dfd = open(slash && !dir[0] ? "/" : dir, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return MF_STATUS_OK;
}

static const void *image_buf; /* mf_h5_set_file_image */
static size_t image_len;

hid_t mf_h5_mem_create(const char *name, unsigned flags)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_fapl_core(fapl, (size_t)1 << 22, 0);
    if (flags & MF_H5_CHECKED) /* room for the whole-file checksum (mf_h5_mem_commit) */
        H5Pset_userblock(fcpl, MF_H5_USERBLOCK);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    return f;
}

/* ---- the whole-file checksum in the user block --------------------------- *
 *
 * HDF5 skips a file's user block; a checked file keeps there one line,
 * "mpifit-crc32 XXXXXXXX N\n": zlib's CRC-32 of the N bytes after the block.
 * It covers what Fletcher-32 on the datasets does not: the superblock, object
 * headers, attributes and B-trees of the oldest file format (the one every
 * reader reads), so a damaged file is refused before HDF5 parses any of it. */
#define SUM_TAG "mpifit-crc32 "

/* The user block of an image of size bytes: its checksum line, NUL-padded.
 * (H5Fget_file_image leaves the user block out: the image starts at the
 * superblock, which says the file proper begins 512 bytes in.) */
static void make_header(unsigned char *head, const unsigned char *img, size_t size)
{
    unsigned long crc = crc32(0L, Z_NULL, 0);
    for (size_t done = 0; done < size;) {
        uInt k = size - done > (1u << 30) ? (1u << 30) : (uInt)(size - done);
        crc = crc32(crc, img + done, k);
        done += k;
    }
    char line[MF_H5_USERBLOCK];
    memset(line, 0, sizeof line);
    snprintf(line, sizeof line, SUM_TAG "%08lx %llu\n", crc, (unsigned long long)size);
    memcpy(head, line, sizeof line);
}

int mf_h5_verify_sum(const char *path, char *why, size_t n)
{
    unsigned char head[MF_H5_USERBLOCK];
    unsigned long want = 0, crc = crc32(0L, Z_NULL, 0);
    unsigned long long len = 0, have = 0;
    int fd = -1, r = 0;
    if (image_buf) { /* the fuzzers' bytes */
        if (image_len < sizeof head)
            return 0;
        memcpy(head, image_buf, sizeof head);
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, head, sizeof head, 0) != (ssize_t)sizeof head) {
            if (fd >= 0)
                close(fd);
            return 0; /* too short for a user block: HDF5 will say what it is */
        }
    }
    head[sizeof head - 1] = '\0';
    if (memcmp(head, SUM_TAG, strlen(SUM_TAG)) != 0 ||
        sscanf((const char *)head + strlen(SUM_TAG), "%8lx %llu", &want, &len) != 2) {
        if (fd >= 0)
            close(fd);
        /* no checksum line: a file without a user block (HDF5's signature
         * first), or one whose user block is another writer's, or whose line
         * was damaged: only the caller knows which it may be */
        static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
        if (memcmp(head, hdf5_signature, sizeof hdf5_signature) == 0)
            return 0;
        snprintf(why, n, "its first bytes are neither HDF5's signature nor mpifit's checksum line (a damaged header?)");
        return 2;
    }
    if (image_buf) {
        have = image_len - MF_H5_USERBLOCK;
        if (have == len)
            crc = crc32(crc, (const unsigned char *)image_buf + MF_H5_USERBLOCK, (uInt)len);
    } else {
        unsigned char *buf = mf_alloc_uninit((size_t)1 << 20);
        for (;;) {
            ssize_t k = pread(fd, buf, (size_t)1 << 20, (off_t)(MF_H5_USERBLOCK + have));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            crc = crc32(crc, buf, (uInt)k);
            have += (unsigned long long)k;
        }
        mf_free(buf);
        close(fd);
    }
    if (have != len) {
        snprintf(why, n, "it holds %llu bytes after its header, its checksum line says %llu (%s)", have, len,
                 have < len ? "truncated" : "bytes appended");
        r = -1;
    } else if (crc != want) {
        snprintf(why, n, "its whole-file CRC-32 is %08lx, written as %08lx (damaged bytes)", crc, want);
        r = -1;
    } else {
        r = 1;
    }
    return r;
}

void mf_h5_set_file_image(const void *buf, size_t n)
{
    image_buf = buf;
    image_len = buf ? n : 0;
}

hid_t mf_h5_open_read(const char *path)
{
    mf_h5_guard_clear();
    hid_t inner = H5Pcreate(H5P_FILE_ACCESS), fapl = -1, f = -1;
    /* the usual drivers behind the guard: sec2 for a file, core for an image */
    herr_t e = inner < 0 ? -1 : image_buf ? H5Pset_fapl_core(inner, 1 << 16, 0) : H5Pset_fapl_sec2(inner);
    if (e >= 0 && image_buf)
        e = H5Pset_file_image(inner, (void *)(uintptr_t)image_buf, image_len);
    if (e >= 0)
        fapl = mf_h5_guard_fapl(inner);
    if (fapl >= 0)
        f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    /* every HDF5 call clears its error stack as it starts, closing the
     * property lists too: keep why the open failed for mf_h5_error */
    hid_t why = f < 0 ? H5Eget_current_stack() : -1;
    if (fapl >= 0)
        H5Pclose(fapl);
    if (inner >= 0)
        H5Pclose(inner);
    if (why >= 0)
        H5Eset_current_stack(why); /* (closes it) */
    return f;
}

hid_t mf_h5_checked_dcpl(int rank, const hsize_t *dims)
{
    hsize_t chunk[32];
    if (rank <= 0 || rank > 32)
        return H5P_DEFAULT;
    hsize_t bytes = 4;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return H5P_DEFAULT; /* nothing to check */
        chunk[i] = dims[i];
        bytes *= dims[i];
    }
    /* one chunk per dataset, under HDF5's 4 GiB limit of a chunk */
    for (int i = 0; bytes > ((hsize_t)1 << 31) && i < rank; i++) {
        while (chunk[i] > 1 && bytes > ((hsize_t)1 << 31)) {
            bytes = bytes / chunk[i] * ((chunk[i] + 1) / 2);
            chunk[i] = (chunk[i] + 1) / 2;
        }
    }
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    if (p < 0 || H5Pset_chunk(p, rank, chunk) < 0 || H5Pset_fletcher32(p) < 0) {
        if (p >= 0)
            H5Pclose(p);
        return H5P_DEFAULT;
    }
    return p;
}

void mf_h5_dcpl_close(hid_t p)
{
    if (p != H5P_DEFAULT && p >= 0)
        H5Pclose(p);
}

/* The fault tests' hooks (mf_fault_hit) half-way through writing a
 * checkpoint: a kill there must leave only complete files under their names;
 * a preemption signal there must still end in a checkpoint. */
static void fault_point(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "ckpt-", 5) != 0)
        return;
    if (mf_fault_hit("kill_in_checkpoint"))
        raise(SIGKILL);
    if (mf_fault_hit("usr1_in_checkpoint"))
        raise(SIGUSR1);
}

static mf_status write_all(int fd, const void *buf, size_t n, const char *what)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return mf_fail(MF_STATUS_IO, "writing %s: %s", what, w < 0 ? strerror(errno) : "no progress");
        done += (size_t)w;
    }
    return MF_STATUS_OK;
}

mf_status mf_h5_mem_commit(hid_t f, const char *path, mf_status s)
{
    char err[256], tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        s = mf_fail(MF_STATUS_INVALID, "path too long: %s", path);
    void *img = NULL;
    ssize_t size = 0;
    if (s == MF_STATUS_OK && (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (size = H5Fget_file_image(f, NULL, 0)) <= 0))
        s = mf_fail(MF_STATUS_HDF5, "%s: cannot form the file image: %s", path, mf_h5_error(err, sizeof err));
    if (s == MF_STATUS_OK) {
        img = mf_alloc((size_t)size);
        if (H5Fget_file_image(f, img, (size_t)size) != size)
            s = mf_fail(MF_STATUS_HDF5, "%s: cannot copy the file image: %s", path, mf_h5_error(err, sizeof err));
    }
    hsize_t ub = 0;
    hid_t fcpl = s == MF_STATUS_OK ? H5Fget_create_plist(f) : -1;
    if (fcpl >= 0) {
        H5Pget_userblock(fcpl, &ub);
        H5Pclose(fcpl);
    }
    unsigned char head[MF_H5_USERBLOCK];
    if (s == MF_STATUS_OK && ub == MF_H5_USERBLOCK)
        make_header(head, img, (size_t)size);
    H5Fclose(f); /* in memory: closing cannot fail for lack of space */
    if (s != MF_STATUS_OK) {
        mf_free(img);
        return s;
    }
    /* a fresh file of our own: a leftover temporary (a killed writer) is
     * removed first, and neither a symlink nor another writer's file planted
     * under the name is followed or reused */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = mf_fail(MF_STATUS_IO, "cannot create %s: %s", tmp, strerror(errno));
    } else {
        /* two halves, with the test hook between them */
        size_t half = (size_t)size / 2;
        if (ub == MF_H5_USERBLOCK)
            s = write_all(fd, head, sizeof head, tmp);
        if (s == MF_STATUS_OK)
            s = write_all(fd, img, half, tmp);
        if (s == MF_STATUS_OK) {
            fault_point(path);
            s = write_all(fd, (char *)img + half, (size_t)size - half, tmp);
        }
        if (close(fd) != 0 && s == MF_STATUS_OK)
            s = mf_fail(MF_STATUS_IO, "closing %s: %s", tmp, strerror(errno));
    }
    mf_free(img);
    return mf_commit_file(tmp, path, s);
}

const char *mf_h5_library_version(void)
{
    static char buf[32];
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, sizeof buf, "%u.%u.%u", maj, min, rel);
    return buf;
}

/* ---- reads that do not trust the file ------------------------------------ */

int mf_h5_dims(hid_t space, int max_rank, hsize_t *dims)
{
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0 || nd > max_rank)
        return -1;
    if (nd > 0 && H5Sget_simple_extent_dims(space, dims, NULL) != nd)
        return -1;
    return nd;
}

int mf_h5_is_number(hid_t t, H5T_class_t cls)
{
    if (t < 0 || H5Tget_class(t) != cls)
        return 0;
    size_t n = H5Tget_size(t);
    if (cls == H5T_FLOAT)
        return n == 2 || n == 4 || n == 8;
    if (cls == H5T_INTEGER)
        return n == 1 || n == 2 || n == 4 || n == 8;
    return 1;
}

/* the attribute, if it holds exactly one element of class `cls` (of a
 * number's size, for integers and floats) */
static hid_t open_single(hid_t obj, const char *name, H5T_class_t cls)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t sp = H5Aget_space(a), t = H5Aget_type(a);
    int ok = sp >= 0 && t >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && mf_h5_is_number(t, cls);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (!ok) {
        H5Aclose(a);
        return -1;
    }
    return a;
}

int mf_h5_attr_scalar(hid_t obj, const char *name, hid_t mem_type, void *v)
{
    H5T_class_t cls = H5Tget_class(mem_type);
    hid_t a = open_single(obj, name, cls);
    if (a < 0)
        return -1;
    herr_t e = H5Aread(a, mem_type, v);
    H5Aclose(a);
    return e < 0 ? -1 : 0;
}

char *mf_h5_attr_string(hid_t obj, const char *name, size_t max)
{
    hid_t a = open_single(obj, name, H5T_STRING);
    if (a < 0)
        return NULL;
    hid_t t = H5Aget_type(a);
    char *out = NULL;
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &v) >= 0 && v) {
            if (strlen(v) <= max)
                out = mf_strdup(v);
            H5free_memory(v);
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(t); /* one element of n bytes: checked by open_single */
        if (n > 0 && n <= max) {
            char *v = mf_alloc(n + 1);
            if (H5Aread(a, t, v) >= 0) {
                v[n] = '\0';
                out = mf_strdup(v);
            }
            mf_free(v);
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

hsize_t mf_h5_num_links(hid_t g)
{
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0)
        return 0;
    return info.nlinks < MF_H5_MAX_LINKS ? info.nlinks : MF_H5_MAX_LINKS;
}

int mf_h5_link_name(hid_t g, hsize_t i, char *name, size_t n)
{
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, n, H5P_DEFAULT);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

int64_t mf_h5_get_i64(hid_t obj, const char *name, int *bad)
{
    int64_t v = 0;
    if (mf_h5_attr_scalar(obj, name, H5T_NATIVE_INT64, &v) < 0)
        *bad = 1;
    return v;
}

double mf_h5_get_f64(hid_t obj, const char *name, int *bad)
{
    double v = 0;
    if (mf_h5_attr_scalar(obj, name, H5T_NATIVE_DOUBLE, &v) < 0)
        *bad = 1;
    return v;
}

int mf_h5_stored(hid_t d, hid_t type, hid_t space)
{
    hssize_t n = H5Sget_simple_extent_npoints(space);
    size_t esz = H5Tget_size(type);
    if (n < 0 || esz == 0)
        return 0;
    if (n == 0)
        return 1;
    if ((hsize_t)n > ((hsize_t)1 << 40) / esz)
        return 0;
    return H5Dget_storage_size(d) >= (hsize_t)n * esz;
}

int mf_h5_read_exact(hid_t loc, const char *name, hid_t mem_type, int rank, const hsize_t *dims, void *v)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t have[32];
    int ok = sp >= 0 && t >= 0 && mf_h5_is_number(t, H5Tget_class(mem_type)) && rank <= 32 &&
        mf_h5_dims(sp, 32, have) == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = have[i] == dims[i];
    ok = ok && mf_h5_stored(d, t, sp);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    herr_t e = ok ? H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
    H5Dclose(d);
    return e < 0 ? -1 : 0;
}

/* The fixed-length form of mf_h5_read_strings: n strings of `width` bytes,
 * NUL- (or space-) padded, bounded to MF_H5_FIXED_MAX bytes in all. */
#define MF_H5_FIXED_MAX ((size_t)64 << 20)
static mf_status read_fixed_strings(hid_t obj, int is_attr, hssize_t n, size_t width, int space_pad, char ***out,
                                    int *n_out, const char *what)
{
    if (width == 0 || (size_t)n > MF_H5_FIXED_MAX / width)
        return mf_fail(MF_STATUS_DATA, "%s: %lld strings of %zu bytes is more than %zu MiB", what, (long long)n, width,
                       MF_H5_FIXED_MAX >> 20);
    char *raw = mf_alloc((size_t)(n ? n : 1) * width);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, width);
    H5Tset_strpad(mt, space_pad ? H5T_STR_SPACEPAD : H5T_STR_NULLPAD);
    herr_t e = n == 0 ? 0 : is_attr ? H5Aread(obj, mt, raw) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
    H5Tclose(mt);
    if (e < 0) {
        mf_free(raw);
        return mf_fail(MF_STATUS_DATA, "cannot read %s as strings", what);
    }
    char **v = mf_alloc((size_t)(n ? n : 1) * sizeof *v);
    for (hssize_t i = 0; i < n; i++) {
        const char *p = raw + (size_t)i * width;
        size_t len = 0;
        while (len < width && p[len])
            len++;
        while (space_pad && len > 0 && p[len - 1] == ' ')
            len--;
        v[i] = mf_alloc(len + 1);
        memcpy(v[i], p, len);
    }
    mf_free(raw);
    *out = v;
    *n_out = (int)n;
    return MF_STATUS_OK;
}

mf_status mf_h5_read_strings(hid_t obj, int is_attr, int expect, int max_n, char ***out, int *n_out, const char *what)
{
    hid_t sp = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    hid_t t = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    int strings = t >= 0 && H5Tget_class(t) == H5T_STRING;
    int vstrings = strings && H5Tis_variable_str(t) > 0;
    size_t width = strings && !vstrings ? H5Tget_size(t) : 0; /* fixed-length: h5py's bytes, Keras' names */
    int space_pad = strings && !vstrings && H5Tget_strpad(t) == H5T_STR_SPACEPAD;
    if (strings && !is_attr) { /* a dataset: its bytes (or references) must be stored before we allocate for them */
        hid_t dsp = H5Dget_space(obj);
        strings = dsp >= 0 && mf_h5_stored(obj, t, dsp);
        if (dsp >= 0)
            H5Sclose(dsp);
    }
    if (t >= 0)
        H5Tclose(t);
    if (!strings || nd > 1)
        return mf_fail(MF_STATUS_DATA, "%s is not a list of strings", what);
    if (n < 0 || n > max_n || (expect >= 0 && n != expect))
        return mf_fail(MF_STATUS_DATA, "%s has %lld entries, expected %s%d", what, (long long)n,
                       expect >= 0 ? "" : "at most ", expect >= 0 ? expect : max_n);
    if (!vstrings)
        return read_fixed_strings(obj, is_attr, n, width, space_pad, out, n_out, what);
    /* a dataset's string lengths are checked as they are read (h5guard.c),
     * which needs its bytes in one place: contiguous, as mpifit and h5py
     * write them (chunked or compact ones are refused) */
    haddr_t at = !is_attr && n > 0 ? H5Dget_offset(obj) : HADDR_UNDEF;
    if (!is_attr && n > 0 && at == HADDR_UNDEF)
        return mf_fail(MF_STATUS_DATA,
                       "%s: a dataset of variable-length strings must be stored contiguously "
                       "(this one is chunked or compact)",
                       what);
    char **raw = mf_alloc((size_t)(n ? n : 1) * sizeof *raw);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    if (!is_attr && n > 0)
        mf_h5_guard_strings_begin(at, H5Dget_storage_size(obj));
    herr_t e = n == 0 ? 0 : is_attr ? H5Aread(obj, mt, raw) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
    mf_h5_guard_strings_end();
    mf_status s = MF_STATUS_OK;
    if (e < 0) {
        /* a read that fails half-way may have converted some strings already */
        for (hssize_t i = 0; i < n; i++)
            if (raw[i])
                H5free_memory(raw[i]);
        char err[512];
        s = mf_fail(MF_STATUS_DATA, "cannot read %s as strings: %s", what, mf_h5_error(err, sizeof err));
    } else {
        char **v = mf_alloc((size_t)(n ? n : 1) * sizeof *v);
        for (hssize_t i = 0; i < n; i++) {
            v[i] = mf_strdup(raw[i] ? raw[i] : "");
            if (raw[i])
                H5free_memory(raw[i]);
        }
        *out = v;
        *n_out = (int)n;
    }
    H5Tclose(mt);
    mf_free(raw);
    return s;
}

void mf_h5_strings_free(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        mf_free(v[i]);
    mf_free(v);
}

/* ---- writes ---------------------------------------------------------------- */

herr_t mf_h5_put_scalar(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return e;
}

herr_t mf_h5_put_i64(hid_t obj, const char *name, int64_t v)
{
    return mf_h5_put_scalar(obj, name, H5T_NATIVE_INT64, &v);
}
herr_t mf_h5_put_f64(hid_t obj, const char *name, double v)
{
    return mf_h5_put_scalar(obj, name, H5T_NATIVE_DOUBLE, &v);
}

/* the string type of a write: variable-length, or fixed at width bytes,
 * NUL-padded (what h5py and Keras write) */
static hid_t string_type(size_t width)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (width) {
        H5Tset_size(t, width);
        H5Tset_strpad(t, H5T_STR_NULLPAD);
    } else {
        H5Tset_size(t, H5T_VARIABLE);
    }
    return t;
}

herr_t mf_h5_put_string(hid_t obj, const char *name, const char *v, unsigned flags)
{
    hid_t t = string_type(flags & MF_H5_FIXED ? strlen(v) + 1 : 0);
    herr_t e = mf_h5_put_scalar(obj, name, t, flags & MF_H5_FIXED ? (const void *)v : (const void *)&v);
    H5Tclose(t);
    return e;
}

herr_t mf_h5_put_strings(hid_t loc, const char *name, const char *const *v, int n, unsigned flags)
{
    size_t width = 0;
    char *packed = NULL;
    if (flags & MF_H5_FIXED) {
        width = 1;
        for (int i = 0; i < n; i++)
            if (strlen(v[i]) + 1 > width)
                width = strlen(v[i]) + 1;
        packed = mf_alloc((size_t)(n ? n : 1) * width); /* zeroed: the NUL padding */
        for (int i = 0; i < n; i++)
            memcpy(packed + (size_t)i * width, v[i], strlen(v[i]));
    }
    const void *data = packed ? (const void *)packed : (const void *)v;
    hid_t t = string_type(width);
    hsize_t dims = (hsize_t)n;
    hid_t sp = n ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_NULL);
    herr_t e;
    if (flags & MF_H5_DATASET) {
        hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        e = d < 0 ? -1 : (n ? H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
        if (d >= 0)
            H5Dclose(d);
    } else {
        hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        e = a < 0 ? -1 : (n ? H5Awrite(a, t, data) : 0);
        if (a >= 0)
            H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(t);
    mf_free(packed);
    return e;
}

herr_t mf_h5_put_dataset(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int rank, const hsize_t *dims,
                         const void *v, unsigned flags)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = flags & MF_H5_CHECKED ? mf_h5_checked_dcpl(rank, dims) : H5P_DEFAULT;
    hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0)
        H5Dclose(d);
    mf_h5_dcpl_close(dcpl);
    H5Sclose(sp);
    return e;
}
