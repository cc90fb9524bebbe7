/* h5util.h: what every HDF5 user in mpifit shares. Debian's HDF5 is built
 * without thread safety, so every HDF5 call in the process, from any thread
 * (loader workers reading a packed dataset, the main thread writing metrics or
 * checkpoints), holds the one lock. HDF5's own error printing is turned off; our
 * callers report failures with the file name instead. */
#ifndef MF_H5UTIL_H
#define MF_H5UTIL_H
#include <hdf5.h>
#include <stdint.h>
#include "mpifit/status.h"

void mf_h5_lock(void);
void mf_h5_unlock(void);
/* The innermost HDF5 error message of the current error stack ("" if none),
 * for messages like "cannot open x.h5: unable to open file (truncated file)". */
const char *mf_h5_error(char *buf, size_t n);
/* A dataset creation property list for a checked dataset: Fletcher-32
 * checksums (HDF5 verifies them on every read, so flipped or zeroed bytes
 * fail the read instead of loading). H5P_DEFAULT for an empty dataset.
 * Close it with mf_h5_dcpl_close. */
hid_t mf_h5_checked_dcpl(int rank, const hsize_t *dims);
void mf_h5_dcpl_close(hid_t p);
/* Reads that do not trust the file: every size is checked before anything
 * is read or allocated.
 *   mf_h5_dims: the rank of a dataspace (dims filled), or -1 if it has more
 *     than max_rank axes;
 *   mf_h5_attr_scalar: attribute `name` into *v (mem_type) if it holds
 *     exactly one element of mem_type's class; else -1 and v untouched;
 *   mf_h5_attr_string: a string attribute of one element and at most max
 *     bytes, as an mf_alloc'ed copy; else NULL. */
int mf_h5_dims(hid_t space, int max_rank, hsize_t *dims);
/* Is file type t of class cls, and, for a float or an integer, of a size
 * such numbers have (floats 2, 4 or 8 bytes; integers 1 to 8)? HDF5 lets a
 * file declare a float of gigabytes, and a read converting from it allocates
 * a buffer of that many bytes per value before it fails. */
int mf_h5_is_number(hid_t t, H5T_class_t cls);
int mf_h5_attr_scalar(hid_t obj, const char *name, hid_t mem_type, void *v);
char *mf_h5_attr_string(hid_t obj, const char *name, size_t max);
/* A group's links, for loops over them: the count (0 on error) capped at
 * MF_H5_MAX_LINKS, since a forged count would keep a loop going for ever, and
 * the name of link i (-1 if it cannot be read or does not fit in n bytes:
 * stop there). */
#define MF_H5_MAX_LINKS 65536
hsize_t mf_h5_num_links(hid_t g);
int mf_h5_link_name(hid_t g, hsize_t i, char *name, size_t n);
/* Integer and float attributes of exactly one element; *bad = 1 (and 0
 * returned) when missing or of another size or class. */
int64_t mf_h5_get_i64(hid_t obj, const char *name, int *bad);
double mf_h5_get_f64(hid_t obj, const char *name, int *bad);
/* Does dataset d (file type, dataspace) store the bytes its shape claims? A
 * chunked dataset can claim terabytes in a few bytes of file (unwritten
 * chunks read as fill values): readers check this before they allocate for
 * it, so a file can never make mpifit allocate much more than its own size. */
int mf_h5_stored(hid_t d, hid_t type, hid_t space);
/* Dataset `name` under loc into v, only if its class is mem_type's (of a
 * number's size: mf_h5_is_number) and its
 * shape is exactly (dims[0], ..., dims[rank-1]) (v holds that) and its bytes
 * are stored (mf_h5_stored); else -1 and nothing read. */
int mf_h5_read_exact(hid_t loc, const char *name, hid_t mem_type, int rank, const hsize_t *dims, void *v);
/* A 1-D list of strings (an attribute if is_attr, else a dataset) as
 * mf_alloc'ed copies: exactly `expect` entries (expect >= 0) and at most
 * max_n; errors name `what`. Variable-length strings, or fixed-length ones
 * (what h5py writes for bytes and Keras for its names; at most 64 MiB in all,
 * cut at the first NUL). Free with mf_h5_strings_free. */
mf_status mf_h5_read_strings(hid_t obj, int is_attr, int expect, int max_n, char ***out, int *n, const char *what);
void mf_h5_strings_free(char **v, int n);

/* Writes. Flags: MF_H5_FIXED stores strings fixed-length, NUL-padded (Keras'
 * and h5py's own form, e.g. layer_names) instead of variable-length;
 * MF_H5_DATASET makes a string list a dataset instead of an attribute;
 * MF_H5_CHECKED gives a dataset Fletcher-32 checksums (mf_h5_checked_dcpl).
 * An empty string list is an attribute with a null dataspace. */
enum { MF_H5_FIXED = 1, MF_H5_DATASET = 2, MF_H5_CHECKED = 4 };
herr_t mf_h5_put_scalar(hid_t obj, const char *name, hid_t type, const void *v);
herr_t mf_h5_put_i64(hid_t obj, const char *name, int64_t v);
herr_t mf_h5_put_f64(hid_t obj, const char *name, double v);
herr_t mf_h5_put_string(hid_t obj, const char *name, const char *v, unsigned flags);
herr_t mf_h5_put_strings(hid_t loc, const char *name, const char *const *v, int n, unsigned flags);
herr_t mf_h5_put_dataset(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int rank, const hsize_t *dims,
                         const void *v, unsigned flags);

/* Every reader opens its file through this (read-only), behind the guard
 * driver (h5guard.c: libhdf5 1.10 loops for ever, or reads out of bounds, on
 * a forged global heap collection; the guard refuses such a read). Caller
 * holds the lock. */
hid_t mf_h5_open_read(const char *path);
/* A file access property list whose driver is the guard in front of inner's
 * driver (inner is copied: close both). -1 on error. */
hid_t mf_h5_guard_fapl(hid_t inner);
/* The guard's last refusal ("x.h5: the global heap collection at byte N ...
 * is malformed: ..."), "" if none since mf_h5_guard_clear (which
 * mf_h5_open_read calls): for readers whose failed read would otherwise be
 * reported as a missing attribute. */
const char *mf_h5_guard_last(void);
/* Around the H5Dread of a contiguous dataset of variable-length strings
 * (addr, bytes: H5Dget_offset, from the file's first byte, and
 * H5Dget_storage_size): the guard checks the length of every string read,
 * and their sum, against the file's size. */
void mf_h5_guard_strings_begin(haddr_t addr, hsize_t bytes);
void mf_h5_guard_strings_end(void);
void mf_h5_guard_clear(void);
/* For fuzzers: while set, mf_h5_open_read ignores the name and opens a copy of
 * these n bytes as an HDF5 file image (core driver, nothing on disk), so every
 * reader can be driven by bytes in memory. NULL restores normal opens. */
void mf_h5_set_file_image(const void *buf, size_t n);
/* "1.10.8": the HDF5 library linked. */
const char *mf_h5_library_version(void);

/* The end of every atomic write: if s is OK, fsync tmp, rename it to path and
 * fsync the directory (so the rename itself survives a crash); otherwise, or
 * if any of that fails, remove tmp. The previous file at path is untouched
 * unless the new one is complete. Returns the resulting status. */
#include "mpifit/status.h"
mf_status mf_commit_file(const char *tmp, const char *path, mf_status s);

/* Files that must never be half-written (checkpoints, weights) are built in
 * memory (HDF5's core driver, no backing store) and written out by mpifit
 * itself: a full disk is then one failed write() with its errno, not an HDF5
 * library left with a file it can neither flush nor close. Caller holds the
 * lock for both calls. flags MF_H5_CHECKED: the file gets a 512-byte user block
 * holding a CRC-32 of everything after it (checkpoints): a flipped byte in the
 * metadata is caught like one in a dataset. */
hid_t mf_h5_mem_create(const char *name, unsigned flags);
#define MF_H5_USERBLOCK 512
/* A checked file's whole-file checksum: 1 if it matches, -1 if it does not
 * (why says how, at most n bytes); 0 if the file has no user block (HDF5's
 * signature first: written before checksums, or by h5py or Keras), 2 if it
 * has a user block without mpifit's checksum line (another writer's, or a
 * damaged line: a checkpoint's reader refuses it, why says so, or a flipped
 * byte in the line would let a damaged file past the checksum into HDF5).
 * Reads the whole file; no lock needed. */
int mf_h5_verify_sum(const char *path, char *why, size_t n);
/* Take the image of f, close f, write it to path.tmp, fsync, rename to path
 * (mf_commit_file). s: the status so far; on failure nothing is renamed. */
mf_status mf_h5_mem_commit(hid_t f, const char *path, mf_status s);
#endif
