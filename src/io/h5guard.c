/* h5guard.c: a pass-through HDF5 file driver that checks every global heap
 * collection before libhdf5 decodes it, and refuses what a file's forged
 * sizes would make libhdf5 read past the file's end (see guard_read).
 *
 * Why: variable-length strings (h5py's default for str attributes, our class
 * names, config and item names) live in "global heap collections" (GCOL
 * blocks), and libhdf5 1.10's decoder (H5HG__cache_heap_deserialize) trusts
 * the object sizes in them. An object of size 0 with index 0 makes its walk
 * stand still (an endless loop inside H5Aread or H5Dread); a size near 2^64
 * wraps it backwards; an object that runs past the collection's end is later
 * copied out of bounds (H5HG_read); a collection that declares gigabytes is
 * allocated before anything is read. The fuzzers found all four in a few
 * seconds each (tests/fuzz/README.md); a checkpoint or packed dataset from
 * anywhere could carry them. mpifit cannot patch the library it links, but
 * every byte libhdf5 reads comes through a file driver, so this one sits in
 * front of the usual one (sec2 for files, core for the fuzzers' images),
 * recognises a collection by its signature in what it reads and walks it the
 * way libhdf5 will, refusing the read (with a message on HDF5's error stack)
 * when that walk would not end exactly at the collection's end.
 *
 * libhdf5 reads a collection as raw data (H5F_block_read maps the GHEAP type
 * to DRAW, bypassing the metadata accumulator), so every collection reaches
 * the driver whole: first a speculative read of min(4096, end of allocation)
 * bytes, then, if the header declares more, one read of the declared size.
 * The check applies to any read that begins with "GCOL" and version 1; raw
 * data that happened to begin so would be checked too (a dataset of ours
 * never does: floats, integers, JPEG bytes read by pread, not through HDF5).
 *
 * Everything here runs inside HDF5 calls, so under mf_h5_lock. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "h5util.h"
#include "../core/core.h"

/* the driver's fapl info: the access property list of the driver it wraps */
typedef struct guard_fa {
    hid_t inner;
} guard_fa;

typedef struct guard_file {
    H5FD_t pub; /* first: HDF5 sees a guard_file as its H5FD_t */
    H5FD_t *inner;
    guard_fa fa;
    unsigned len_size; /* the superblock's "size of lengths", 8 until it is read */
    unsigned addr_size; /* and its "size of offsets" */
    haddr_t super_at; /* where the superblock is (HADDR_UNDEF until it is read), */
    unsigned super_version; /* its version */
    haddr_t drvinfo; /* and where its driver information block is (versions 0/1), or HADDR_UNDEF */
    char name[256];
} guard_file;

static hid_t guard_id = -1;
static char last_why[512]; /* mf_h5_guard_last */

/* The descriptors of the variable-length strings being read
 * (mf_h5_guard_strings_begin): each is a 4-byte length, then the string's
 * heap address and index. libhdf5 allocates and clears a buffer of that
 * length before it looks for the string, so a forged length costs up to
 * 4 GiB and seconds per string: every length read, and their sum, must fit
 * in the file, where the strings are. */
static struct {
    int on;
    haddr_t start, end; /* the dataset's bytes, from the file's first byte (as the driver sees them) */
    haddr_t next; /* the first descriptor not yet counted */
    uint64_t sum;
} strings;

/* The driver reaches the one it wraps through HDF5's API, and every API call
 * clears HDF5's error stack as it starts. libhdf5 calls the callbacks below
 * while it unwinds a failure (a failed open closes the file and frees its
 * property lists): they keep what has been reported so far, or the reason
 * (ours, or libhdf5's "truncated file") would be lost before mf_h5_error
 * could read it. */
static hid_t errors_keep(void) { return H5Eget_current_stack(); }

static void errors_restore(hid_t kept)
{
    if (kept >= 0)
        H5Eset_current_stack(kept); /* (closes kept) */
}

static void *fa_copy(const void *p)
{
    const guard_fa *src = p;
    guard_fa *dst = mf_alloc(sizeof *dst);
    hid_t kept = errors_keep();
    dst->inner = H5Pcopy(src->inner);
    errors_restore(kept);
    if (dst->inner < 0) {
        mf_free(dst);
        return NULL;
    }
    return dst;
}

static herr_t fa_free(void *p)
{
    guard_fa *fa = p;
    hid_t kept = errors_keep();
    H5Pclose(fa->inner);
    errors_restore(kept);
    mf_free(fa);
    return 0;
}

static void *fa_get(H5FD_t *f) { return fa_copy(&((guard_file *)f)->fa); }

static H5FD_t *guard_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    const guard_fa *fa = H5Pget_driver_info(fapl);
    if (!fa)
        return NULL;
    H5FD_t *inner = H5FDopen(name, flags, fa->inner, maxaddr);
    if (!inner)
        return NULL;
    guard_file *g = mf_alloc(sizeof *g);
    g->inner = inner;
    g->fa.inner = H5Pcopy(fa->inner);
    g->len_size = 8;
    g->addr_size = 8;
    g->super_at = g->drvinfo = HADDR_UNDEF;
    g->super_version = 0;
    mf_strlcpy(g->name, name ? name : "", sizeof g->name);
    return &g->pub;
}

static herr_t guard_close(H5FD_t *f)
{
    guard_file *g = (guard_file *)f;
    hid_t kept = errors_keep();
    herr_t e = H5FDclose(g->inner);
    H5Pclose(g->fa.inner);
    errors_restore(kept);
    mf_free(g);
    return e;
}

static int guard_cmp(const H5FD_t *a, const H5FD_t *b)
{
    return H5FDcmp(((const guard_file *)a)->inner, ((const guard_file *)b)->inner);
}

/* without a file (H5FDdriver_query, before an open): no optional features */
static herr_t guard_query(const H5FD_t *f, unsigned long *flags)
{
    *flags = 0;
    return f ? H5FDquery(((const guard_file *)f)->inner, flags) < 0 ? -1 : 0 : 0;
}

static haddr_t guard_get_eoa(const H5FD_t *f, H5FD_mem_t type)
{
    return H5FDget_eoa(((const guard_file *)f)->inner, type);
}

static herr_t guard_set_eoa(H5FD_t *f, H5FD_mem_t type, haddr_t addr)
{
    return H5FDset_eoa(((guard_file *)f)->inner, type, addr);
}

static haddr_t guard_get_eof(const H5FD_t *f, H5FD_mem_t type)
{
    return H5FDget_eof(((const guard_file *)f)->inner, type);
}

static herr_t guard_get_handle(H5FD_t *f, hid_t fapl, void **handle)
{
    return H5FDget_vfd_handle(((guard_file *)f)->inner, fapl, handle);
}

static uint64_t get_le(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* What the superblock says, from its reads (libhdf5 reads its first 16
 * bytes, then the rest): the "size of lengths" (the width of every size in
 * a collection; byte 14 of a version 0/1 superblock, byte 10 of 2/3), the
 * "size of offsets", and (versions 0/1) where the driver information block
 * is: the fourth address after the fixed fields, relative to the superblock
 * (libhdf5 makes the superblock's own position the base of every address). */
static void note_superblock(guard_file *g, haddr_t addr, const unsigned char *b, size_t size)
{
    if (size >= 16 && memcmp(b, hdf5_signature, sizeof hdf5_signature) == 0) {
        unsigned v = b[8], as = v <= 1 ? b[13] : v <= 3 ? b[9] : 0, ls = v <= 1 ? b[14] : v <= 3 ? b[10] : 0;
        if (ls == 2 || ls == 4 || ls == 8) /* what libhdf5 accepts */
            g->len_size = ls;
        if (as == 2 || as == 4 || as == 8)
            g->addr_size = as;
        g->super_at = addr;
        g->super_version = v;
    }
    if (g->super_at == HADDR_UNDEF || g->super_version > 1)
        return;
    /* after the base, free-space and end-of-file addresses */
    haddr_t field = g->super_at + (g->super_version == 0 ? 24 : 28) + 3 * (haddr_t)g->addr_size;
    if (field < addr || field + g->addr_size > addr + size)
        return;
    uint64_t rel = get_le(b + (field - addr), g->addr_size);
    uint64_t undefined = g->addr_size == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * g->addr_size)) - 1; /* all ones */
    g->drvinfo = rel == undefined || rel > HADDR_MAX - g->super_at ? HADDR_UNDEF : g->super_at + rel;
}

/* 0 if the collection read at addr (size bytes of it in b) is one libhdf5
 * decodes in bounded time and memory; else why says what is wrong. */
static int check_collection(guard_file *g, haddr_t addr, const unsigned char *b, size_t size, char *why, size_t n)
{
    /* libhdf5's sizes: the collection header (signature, version, reserved,
     * size) and each object header (index, references, reserved, size)
     * rounded up to 8 bytes: 16 for sizes of 4 or 8 bytes */
    const size_t L = g->len_size, hdr = (8 + L + 7) & ~(size_t)7, objhdr = hdr;
    if (size < hdr)
        return 0; /* too short to hold a header: libhdf5 fails on it by itself */
    uint64_t total = get_le(b + 8, (unsigned)L);
    haddr_t eof = H5FDget_eof(g->inner, H5FD_MEM_DRAW);
    if (total < 4096 || total > ((uint64_t)1 << 30) || eof == HADDR_UNDEF || addr > eof || total > eof - addr) {
        snprintf(why, n, "declares %llu bytes (a collection holds 4 KiB to 1 GiB, inside the file's %llu)",
                 (unsigned long long)total, (unsigned long long)(eof == HADDR_UNDEF ? 0 : eof));
        return -1;
    }
    if (size != total)
        return 0; /* the speculative first read: the whole one follows */
    /* libhdf5's walk: object headers from the end of the collection header
     * on; each object takes its header plus its size rounded up to 8 bytes,
     * except the free space (index 0), whose size includes its header; a tail
     * too short for a header is free space. The walk must step forward and
     * stop exactly at the end. */
    for (size_t p = hdr; p < total;) {
        if (p + objhdr > total)
            break;
        unsigned idx = (unsigned)get_le(b + p, 2);
        uint64_t osize = get_le(b + p + 8, (unsigned)L);
        uint64_t left = total - p;
        if (idx > 0 ? osize > left - objhdr : osize < objhdr || osize > left) {
            snprintf(why, n, "its object %u at offset %zu claims %llu bytes, %llu are left", idx, p,
                     (unsigned long long)osize, (unsigned long long)left);
            return -1;
        }
        p += idx > 0 ? objhdr + ((osize + 7) & ~(uint64_t)7) : osize;
    }
    return 0;
}

/* 0 if every string descriptor whose length lies in this read (of size
 * bytes at addr) claims what the file can hold. */
static int check_descriptors(guard_file *g, haddr_t addr, const unsigned char *b, size_t size, char *why, size_t n)
{
    const haddr_t width = 8 + g->addr_size;
    haddr_t eof = H5FDget_eof(g->inner, H5FD_MEM_DRAW);
    haddr_t first =
        addr > strings.start ? strings.start + (addr - strings.start + width - 1) / width * width : strings.start;
    for (haddr_t d = first; d + 4 <= addr + size && d + width <= strings.end; d += width) {
        uint64_t len = get_le(b + (d - addr), 4);
        if (d >= strings.next) { /* counted once, if a read comes again */
            strings.sum += len;
            strings.next = d + width;
        }
        if (eof == HADDR_UNDEF || len > eof || strings.sum > eof) {
            snprintf(why, n, "string %llu claims %llu bytes (%llu with those before it), the file holds %llu",
                     (unsigned long long)((d - strings.start) / width), (unsigned long long)len,
                     (unsigned long long)strings.sum, (unsigned long long)(eof == HADDR_UNDEF ? 0 : eof));
            return -1;
        }
    }
    return 0;
}

/* Refuses the read in progress: the message on HDF5's error stack and for
 * mf_h5_guard_last. */
static herr_t refuse(const char *fmt, ...) MF_PRINTF(1, 2);
static herr_t refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_why, sizeof last_why, fmt, ap);
    va_end(ap);
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_VFL, H5E_READERROR, "%s", last_why);
    return -1;
}

static herr_t guard_read(H5FD_t *f, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
    guard_file *g = (guard_file *)f;
    /* Bytes past the end of the file: sec2 and core return zeros for them,
     * which libhdf5 would decode as if the file held them. A file's sizes
     * send it there only when they lie: libhdf5 accepts every read below its
     * end of allocation, and a driver information block moves that end (by
     * up to 4 GiB) without comparing it with the file's size, so a 12 KiB
     * file made it clear a gigabyte per read. */
    haddr_t eof = H5FDget_eof(g->inner, type);
    if (size > 0 && (eof == HADDR_UNDEF || addr > eof || size > eof - addr))
        return refuse("%.200s: libhdf5 asked for %zu bytes at byte %llu, but the file ends at byte %llu "
                      "(it is truncated, or its sizes are damaged)",
                      g->name, size, (unsigned long long)addr, (unsigned long long)(eof == HADDR_UNDEF ? 0 : eof));
    if (H5FDread(g->inner, type, dxpl, addr, size, buf) < 0)
        return -1;
    const unsigned char *b = buf;
    if (type == H5FD_MEM_SUPER)
        note_superblock(g, addr, b, size);
    /* the driver information block's header (version, 3 reserved bytes, the
     * size of the information, the driver's name): libhdf5 allocates the
     * size it reads here before reading the rest */
    if (type == H5FD_MEM_SUPER && addr == g->drvinfo && size >= 8) {
        uint64_t declared = 16 + get_le(b + 4, 4);
        if (declared > eof - addr)
            return refuse("%.200s: the driver information block at byte %llu declares %llu bytes, "
                          "the file holds %llu from there",
                          g->name, (unsigned long long)addr, (unsigned long long)declared,
                          (unsigned long long)(eof - addr));
    }
    char why[256];
    if (strings.on && type == H5FD_MEM_DRAW && addr < strings.end && addr + size > strings.start) {
        if (check_descriptors(g, addr, b, size, why, sizeof why) != 0)
            return refuse("%.200s: the variable-length strings at byte %llu: %.200s", g->name, (unsigned long long)addr,
                          why);
    } else if (size >= 5 && memcmp(b, "GCOL\1", 5) == 0 && check_collection(g, addr, b, size, why, sizeof why) != 0) {
        return refuse("%.200s: the global heap collection at byte %llu (variable-length strings) is malformed: %.180s",
                      g->name, (unsigned long long)addr, why);
    }
    return 0;
}

static herr_t guard_write(H5FD_t *f, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf)
{
    return H5FDwrite(((guard_file *)f)->inner, type, dxpl, addr, size, buf);
}

static herr_t guard_flush(H5FD_t *f, hid_t dxpl, hbool_t closing)
{
    return H5FDflush(((guard_file *)f)->inner, dxpl, closing);
}

static herr_t guard_truncate(H5FD_t *f, hid_t dxpl, hbool_t closing)
{
    return H5FDtruncate(((guard_file *)f)->inner, dxpl, closing);
}

static herr_t guard_lock(H5FD_t *f, hbool_t rw) { return H5FDlock(((guard_file *)f)->inner, rw); }

static herr_t guard_unlock(H5FD_t *f) { return H5FDunlock(((guard_file *)f)->inner); }

static const H5FD_class_t guard_class = {
    .name = "mpifit_guard",
    .maxaddr = ((haddr_t)1 << 62) - 1,
    .fc_degree = H5F_CLOSE_WEAK,
    .fapl_size = sizeof(guard_fa),
    .fapl_get = fa_get,
    .fapl_copy = fa_copy,
    .fapl_free = fa_free,
    .open = guard_open,
    .close = guard_close,
    .cmp = guard_cmp,
    .query = guard_query,
    .get_eoa = guard_get_eoa,
    .set_eoa = guard_set_eoa,
    .get_eof = guard_get_eof,
    .get_handle = guard_get_handle,
    .read = guard_read,
    .write = guard_write,
    .flush = guard_flush,
    .truncate = guard_truncate,
    .lock = guard_lock,
    .unlock = guard_unlock,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

hid_t mf_h5_guard_fapl(hid_t inner)
{
    if (guard_id < 0)
        guard_id = H5FDregister(&guard_class);
    hid_t fapl = guard_id >= 0 ? H5Pcreate(H5P_FILE_ACCESS) : -1;
    guard_fa fa = {inner};
    if (fapl >= 0 && H5Pset_driver(fapl, guard_id, &fa) < 0) {
        H5Pclose(fapl);
        fapl = -1;
    }
    return fapl;
}

void mf_h5_guard_strings_begin(haddr_t addr, hsize_t bytes)
{
    strings.on = 1;
    strings.start = strings.next = addr;
    strings.end = addr + bytes;
    strings.sum = 0;
}

void mf_h5_guard_strings_end(void) { strings.on = 0; }

const char *mf_h5_guard_last(void) { return last_why; }

void mf_h5_guard_clear(void) { last_why[0] = '\0'; }
