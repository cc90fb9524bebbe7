/* test_h5guard.c: the guard driver (src/io/h5guard.c) in front of every
 * HDF5 read. A file with a string attribute and a dataset of strings (both
 * variable-length: their bytes live in a global heap collection) is written,
 * then its collection forged the ways that make libhdf5 1.10 loop for ever,
 * read out of bounds or allocate gigabytes:
 *  - the free-space object's size set to 0 (libhdf5's walk stands still);
 *  - a string object's size near 2^64 (the walk wraps backwards);
 *  - a string object's size past the collection's end;
 *  - the collection's size set to 1 TiB (allocated before it is read).
 * Each forged file, opened from disk and as a file image, must fail its
 * reads quickly, naming the collection's byte offset and the cause; the
 * intact file must read back exactly. An alarm turns a hang (the guard not
 * in the path) into a failure instead of a CTest timeout. A packed dataset
 * whose format attribute sits in a forged heap is refused with that cause,
 * not as "not a packed dataset". A string length forged in a dataset's own
 * bytes (libhdf5 allocates it before it looks for the string) is refused
 * too, and so is a chunked dataset of strings (its lengths cannot be placed).
 * A driver information block that declares more than the file holds is
 * refused before libhdf5 allocates it, and so is any read past the end; the
 * reason a file failed to open reaches mf_h5_error. */
#include <hdf5.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "core/core.h"
#include "data/dataset.h"
#include "data/sources.h"
#include "io/h5util.h"
#include "test.h"

static char dir[64];

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_h5guard: a read did not return within 20 s (libhdf5 looping on a forged heap)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    MF_CHECK(f && fwrite(b, 1, n, f) == n);
    if (f)
        fclose(f);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static const char *names[3] = {"first.jpg", "second.jpg", "third.jpg"};

/* userblock: bytes before the superblock (a checkpoint has 512), which
 * shift every address the driver sees */
static void write_file(const char *path, const char *format, hsize_t userblock)
{
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (userblock)
        H5Pset_userblock(fcpl, userblock);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    MF_CHECK(f >= 0);
    MF_CHECK(mf_h5_put_string(f, "format", format, 0) >= 0);
    MF_CHECK(mf_h5_put_strings(f, "names", names, 3, MF_H5_DATASET) >= 0);
    H5Fclose(f);
}

/* Reads the file (from disk, or as an image of b), expecting success
 * (why == NULL) or a refusal whose messages hold `why`. */
static void read_file(const char *path, const unsigned char *b, size_t n, const char *why, const char *what)
{
    mf_h5_set_file_image(b, n);
    hid_t f = mf_h5_open_read(path);
    MF_CHECK_MSG(f >= 0, "%s: cannot open", what);
    if (f < 0) {
        mf_h5_set_file_image(NULL, 0);
        return;
    }
    alarm(20);
    char *fmt = mf_h5_attr_string(f, "format", 100);
    if (!why) {
        MF_CHECK_MSG(fmt && strcmp(fmt, "guarded") == 0, "%s: format read as %s", what, fmt ? fmt : "(null)");
    } else {
        MF_CHECK_MSG(!fmt, "%s: a forged heap read as '%s'", what, fmt);
        MF_CHECK_MSG(strstr(mf_h5_guard_last(), "global heap collection at byte") && strstr(mf_h5_guard_last(), why),
                     "%s: the guard says '%s', expected '%s'", what, mf_h5_guard_last(), why);
    }
    mf_free(fmt);
    hid_t d = H5Dopen2(f, "names", H5P_DEFAULT);
    char **v = NULL;
    int nv = 0;
    mf_clear_error();
    mf_status s = mf_h5_read_strings(d, 0, 3, 16, &v, &nv, "names");
    alarm(0);
    if (!why) {
        MF_CHECK_MSG(s == MF_STATUS_OK && nv == 3 && !strcmp(v[0], names[0]) && !strcmp(v[2], names[2]),
                     "%s: names not read back: %s", what, mf_last_error());
        mf_h5_strings_free(v, nv);
    } else {
        MF_CHECK_MSG(s != MF_STATUS_OK && strstr(mf_last_error(), "names") && strstr(mf_last_error(), "global heap"),
                     "%s: names read or refused without the cause: %s", what, mf_last_error());
    }
    H5Dclose(d);
    H5Fclose(f);
    mf_h5_set_file_image(NULL, 0);
}

/* the ways a collection is forged; the part of the message each must give */
enum { INTACT, FREE_ZERO, WRAP, PAST_END, HUGE, N_CASES };
static const char *case_name[N_CASES] = {"intact", "free space of size 0", "size near 2^64", "past the end",
                                         "1 TiB collection"};
static const char *case_why[N_CASES] = {NULL, "object 0 at offset", "claims 18446744073709551608 bytes",
                                        "claims 1000000 bytes", "declares 1099511627776 bytes"};

static void test_forged(void)
{
    char good[128];
    snprintf(good, sizeof good, "%s/good.h5", dir);
    write_file(good, "guarded", 0);
    size_t n = 0;
    unsigned char *b = slurp(good, &n);
    MF_CHECK(b && n > 4096);
    if (!b)
        return;
    /* the one collection: "GCOL", version 1, 3 reserved, its size (8 bytes:
     * HDF5's default size of lengths), then objects of 16-byte headers
     * (index, references, reserved, size); index 0 is the free space */
    unsigned char *gcol = NULL;
    for (size_t i = 0; !gcol && i + 5 <= n; i++)
        if (memcmp(b + i, "GCOL\1", 5) == 0)
            gcol = b + i;
    MF_CHECK(gcol != NULL);
    if (!gcol) {
        free(b);
        return;
    }
    size_t at = (size_t)(gcol - b), total = (size_t)get_le(gcol + 8, 8), first = 16, free_obj = 0;
    MF_CHECK(total >= 4096 && at + total <= n);
    for (size_t p = 16; p + 16 <= total;) {
        unsigned idx = (unsigned)get_le(gcol + p, 2);
        uint64_t size = get_le(gcol + p + 8, 8);
        if (idx == 0) {
            free_obj = p;
            break;
        }
        p += 16 + ((size + 7) & ~(uint64_t)7);
    }
    MF_CHECK_MSG(free_obj > 0, "no free-space object in the collection at byte %zu", at);
    unsigned char *forged = malloc(n);
    for (int c = 0; c < N_CASES; c++) {
        memcpy(forged, b, n);
        unsigned char *g = forged + at;
        if (c == FREE_ZERO)
            put_le(g + free_obj + 8, 0, 8);
        else if (c == WRAP)
            put_le(g + first + 8, UINT64_MAX - 7, 8);
        else if (c == PAST_END)
            put_le(g + first + 8, 1000000, 8);
        else if (c == HUGE)
            put_le(g + 8, (uint64_t)1 << 40, 8);
        char path[128], what[160];
        snprintf(path, sizeof path, "%s/case%d.h5", dir, c);
        spit(path, forged, n);
        snprintf(what, sizeof what, "%s (file)", case_name[c]);
        read_file(path, NULL, 0, case_why[c], what);
        snprintf(what, sizeof what, "%s (image)", case_name[c]);
        read_file("image.h5", forged, n, case_why[c], what);
    }
    /* a packed dataset's first read is its format attribute: the refusal
     * names the forged heap, not a missing attribute */
    memcpy(forged, b, n);
    put_le(forged + at + free_obj + 8, 0, 8);
    char path[128];
    snprintf(path, sizeof path, "%s/packed.h5", dir);
    spit(path, forged, n);
    mf_h5_unlock(); /* mf_packed_open takes the lock itself */
    mf_dataset *ds = mf_ds_alloc(&mf_packed_source, path);
    alarm(20);
    mf_status s = mf_packed_open(ds, path, NULL);
    alarm(0);
    MF_CHECK_MSG(s != MF_STATUS_OK && strstr(mf_last_error(), "format attribute") &&
                     strstr(mf_last_error(), "global heap collection") && strstr(mf_last_error(), "packed.h5"),
                 "packed: %s", mf_last_error());
    mf_dataset_free(ds);
    mf_h5_lock();
    free(forged);
    free(b);
}

/* Other layouts: sizes of 4 bytes (H5Pset_sizes; the collection header and
 * each object header are still 16 bytes, rounded up to 8, the sizes in them
 * 4) and the newest superblock (version 3: its sizes sit elsewhere), each
 * read intact, and refused with its free space forged to 0, as libhdf5 would
 * walk it. */
static void test_layout(int len, int latest)
{
    char path[128], what[96];
    snprintf(path, sizeof path, "%s/layout%d%d.h5", dir, len, latest);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_sizes(fcpl, 8, (size_t)len);
    if (latest)
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    MF_CHECK(mf_h5_put_string(f, "format", "guarded", 0) >= 0);
    MF_CHECK(mf_h5_put_strings(f, "names", names, 3, MF_H5_DATASET) >= 0);
    H5Fclose(f);
    snprintf(what, sizeof what, "sizes of %d bytes%s, intact", len, latest ? ", superblock 3" : "");
    read_file(path, NULL, 0, NULL, what);
    size_t n = 0, at = 0, free_obj = 0;
    unsigned char *b = slurp(path, &n);
    for (size_t i = 0; b && !at && i + 5 <= n; i++)
        if (memcmp(b + i, "GCOL\1", 5) == 0)
            at = i;
    MF_CHECK(at > 0 && get_le(b + at + 8, len) >= 4096 && at + get_le(b + at + 8, len) <= n);
    if (!at || at + get_le(b + at + 8, len) > n) {
        free(b);
        return;
    }
    for (size_t p = 16, total = (size_t)get_le(b + at + 8, len); p + 16 <= total;) {
        uint64_t size = get_le(b + at + p + 8, len);
        if (get_le(b + at + p, 2) == 0) {
            free_obj = p;
            break;
        }
        p += 16 + ((size + 7) & ~(uint64_t)7);
    }
    MF_CHECK_MSG(free_obj > 0, "%s: no free-space object in the collection at byte %zu", what, at);
    put_le(b + at + free_obj + 8, 0, len);
    spit(path, b, n);
    snprintf(what, sizeof what, "sizes of %d bytes%s, free space of size 0", len, latest ? ", superblock 3" : "");
    read_file(path, NULL, 0, "object 0 at offset", what);
    free(b);
}

/* A string's length forged in the dataset's own bytes (its descriptor):
 * libhdf5 would allocate and clear that much before finding the string. And
 * a chunked dataset of strings, whose descriptors the guard cannot place,
 * is refused. */
static void test_lengths(void)
{
    char good[128], path[128];
    hid_t f, d;
    char **v = NULL;
    int nv = 0;
    mf_status s;
    for (int ub = 0; ub <= 512; ub += 512) {
        snprintf(good, sizeof good, "%s/good%d.h5", dir, ub);
        write_file(good, "guarded", (hsize_t)ub);
        f = mf_h5_open_read(good);
        d = H5Dopen2(f, "names", H5P_DEFAULT);
        haddr_t at = H5Dget_offset(d); /* from the file's first byte, user block included */
        MF_CHECK(at != HADDR_UNDEF && H5Dget_storage_size(d) == 3 * 16);
        H5Dclose(d);
        H5Fclose(f);
        size_t n = 0;
        unsigned char *b = slurp(good, &n);
        MF_CHECK(b && at + 48 <= n);
        if (!b || at + 48 > n) {
            free(b);
            return;
        }
        put_le(b + at + 16, 0xfffffff0u, 4); /* string 1: 4 GiB */
        snprintf(path, sizeof path, "%s/length%d.h5", dir, ub);
        spit(path, b, n);
        f = mf_h5_open_read(path);
        d = H5Dopen2(f, "names", H5P_DEFAULT);
        alarm(20);
        s = mf_h5_read_strings(d, 0, 3, 16, &v, &nv, "names");
        alarm(0);
        MF_CHECK_MSG(s != MF_STATUS_OK && strstr(mf_last_error(), "string 1 claims 4294967280 bytes"),
                     "a forged length, user block of %d bytes: %s", ub, mf_last_error());
        H5Dclose(d);
        H5Fclose(f);
        free(b);
    }

    snprintf(path, sizeof path, "%s/chunked.h5", dir);
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims = 3, chunk = 2;
    hid_t sp = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Pset_chunk(dcpl, 1, &chunk);
    d = H5Dcreate2(f, "names", t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    MF_CHECK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0);
    H5Dclose(d);
    H5Tclose(t);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    f = mf_h5_open_read(path);
    d = H5Dopen2(f, "names", H5P_DEFAULT);
    s = mf_h5_read_strings(d, 0, 3, 16, &v, &nv, "names");
    MF_CHECK_MSG(s != MF_STATUS_OK && strstr(mf_last_error(), "stored contiguously"), "chunked: %s", mf_last_error());
    H5Dclose(d);
    H5Fclose(f);
}

/* Reads past the file's end. A version 0 superblock (what H5Fcreate writes
 * by default) points at a driver information block appended to the file
 * that declares 1 GiB: libhdf5 would allocate that and read it, zeros past
 * the end, per open (a 12 KiB fuzz input cost 1 GiB of memory and half a
 * second). With and without a user block (which shifts every address), from
 * disk and as an image, the open is refused naming the block. And any read
 * past the end, asked of the driver directly, is refused. */
static void test_past_end(void)
{
    char good[128], path[128];
    for (int ub = 0; ub <= 512; ub += 512) {
        snprintf(good, sizeof good, "%s/plain%d.h5", dir, ub);
        write_file(good, "guarded", (hsize_t)ub);
        size_t n = 0;
        unsigned char *b = slurp(good, &n);
        MF_CHECK(b && n > 100 && b[ub + 8] == 0 && b[ub + 13] == 8);
        if (!b || n <= 100 || b[ub + 8] != 0 || b[ub + 13] != 8) {
            free(b);
            return;
        }
        MF_CHECK(get_le(b + ub + 48, 8) == UINT64_MAX); /* no driver information block */
        unsigned char *f2 = malloc(n + 16);
        memcpy(f2, b, n);
        put_le(f2 + ub + 48, n - (size_t)ub, 8);
        memset(f2 + n, 0, 16);
        put_le(f2 + n + 4, (uint64_t)1 << 30, 4);
        memcpy(f2 + n + 8, "NCSAmult", 8);
        snprintf(path, sizeof path, "%s/drvinfo%d.h5", dir, ub);
        spit(path, f2, n + 16);
        char want[128];
        snprintf(want, sizeof want, "driver information block at byte %zu declares 1073741840 bytes, the file holds 16",
                 n);
        /* (its header, 16 bytes at n, is read first, then the rest) */
        for (int image = 0; image <= 1; image++) {
            mf_h5_set_file_image(image ? f2 : NULL, n + 16);
            hid_t f = mf_h5_open_read(image ? "image.h5" : path);
            mf_h5_set_file_image(NULL, 0);
            char err[512];
            const char *e = f < 0 ? mf_h5_error(err, sizeof err) : "";
            MF_CHECK_MSG(f < 0 && strstr(mf_h5_guard_last(), want) && strstr(e, want),
                         "user block %d, %s: the guard says '%s', HDF5 '%s'", ub, image ? "image" : "disk",
                         mf_h5_guard_last(), e);
            if (f >= 0)
                H5Fclose(f);
        }
        free(f2);
        free(b);
    }

    /* libhdf5's own reason survives the guard's callbacks (HDF5 API calls,
     * which clear its error stack) as it closes the file it failed to open */
    size_t n = 0;
    unsigned char *b = slurp(good, &n);
    snprintf(path, sizeof path, "%s/truncated.h5", dir);
    spit(path, b, n / 2);
    free(b);
    hid_t tf = mf_h5_open_read(path);
    char err[512];
    MF_CHECK_MSG(tf < 0 && strstr(mf_h5_error(err, sizeof err), "truncated file"), "a truncated file: '%s'",
                 tf < 0 ? err : "opened");
    if (tf >= 0)
        H5Fclose(tf);

    hid_t inner = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_sec2(inner);
    hid_t fapl = mf_h5_guard_fapl(inner);
    H5Pclose(inner);
    H5FD_t *fd = H5FDopen(good, H5F_ACC_RDONLY, fapl, HADDR_UNDEF);
    H5Pclose(fapl);
    MF_CHECK(fd != NULL);
    if (!fd)
        return;
    haddr_t eof = H5FDget_eof(fd, H5FD_MEM_DEFAULT);
    unsigned char buf[16];
    MF_CHECK(H5FDset_eoa(fd, H5FD_MEM_DEFAULT, eof + 4096) >= 0);
    MF_CHECK(H5FDread(fd, H5FD_MEM_SUPER, H5P_DEFAULT, 512, 8, buf) >= 0 && buf[1] == 'H' && buf[3] == 'F');
    MF_CHECK(H5FDread(fd, H5FD_MEM_DRAW, H5P_DEFAULT, eof - 16, 16, buf) >= 0);
    mf_h5_guard_clear();
    char want[128];
    snprintf(want, sizeof want, "asked for 16 bytes at byte %llu, but the file ends at byte %llu",
             (unsigned long long)(eof - 8), (unsigned long long)eof);
    MF_CHECK_MSG(H5FDread(fd, H5FD_MEM_DRAW, H5P_DEFAULT, eof - 8, 16, buf) < 0 && strstr(mf_h5_guard_last(), want),
                 "a read past the end: the guard says '%s'", mf_h5_guard_last());
    H5FDclose(fd);
}

int main(void)
{
    mf_test_dir_make(dir, sizeof dir, "h5guard");
    signal(SIGALRM, on_alarm);
    mf_h5_lock();
    test_forged();
    test_layout(4, 0);
    test_layout(8, 1);
    test_layout(4, 1);
    test_lengths();
    test_past_end();
    mf_h5_unlock();
    mf_test_dir_remove(dir);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
