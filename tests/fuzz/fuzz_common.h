/* fuzz_common.h: what the libFuzzer targets of tests/fuzz share (and
 * make_seeds.c, which writes their seed files with the same model).
 *
 * Each target defines LLVMFuzzerTestOneInput; one input is one file's bytes.
 * The HDF5 targets hand those bytes to every reader through
 * mf_h5_set_file_image (the readers open a copy of them with HDF5's core
 * driver, nothing on disk), under the name FUZZ_H5_NAME, a path that does not
 * exist, so no reader can fall back to a real file (fuzz_packed, for the
 * reader's pread path, writes the bytes to a real file instead).
 *
 * Oracles beyond the sanitizers (ASan, UBSan, LeakSanitizer): after every
 * input, every mf_alloc'ed block is freed again (fuzz_check_clean) and no
 * HDF5 object (file, group, dataset, named type, attribute) is left open: a
 * reader that forgets one on an error path keeps the whole file image alive. */
#ifndef MF_FUZZ_COMMON_H
#define MF_FUZZ_COMMON_H
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>
#include "mpifit.h"
#include "io/h5util.h"

#define FUZZ_H5_NAME "/nonexistent/mpifit-fuzz.h5"

/* The tiny model whose weights and checkpoints the Keras and checkpoint targets
 * load: every layer kind with weights (Conv2D, DepthwiseConv2D,
 * BatchNormalization, Dense), 8x8x3 in, 3 classes, 179 parameters. Small, so
 * the loaders' cost is the file's structure, not its numbers. */
static inline mf_model *fuzz_tiny_model(void)
{
    mf_model *m = mf_model_create("fuzz");
    int x = mf_model_input(m, mf_shape4(0, 8, 8, 3));
    x = mf_model_add(m, mf_conv2d("conv", 4, 3, 2, MF_PADDING_SAME, 1), x);
    x = mf_model_add(m, mf_batchnorm("bn", 0.99f, 1e-3f), x);
    x = mf_model_add(m, mf_relu("relu", 6.0f), x);
    x = mf_model_add(m, mf_depthwise_conv2d("dw", 3, 1, MF_PADDING_SAME, 0), x);
    x = mf_model_add(m, mf_batchnorm("dw_bn", 0.99f, 1e-3f), x);
    x = mf_model_add(m, mf_global_avg_pool2d("gap"), x);
    x = mf_model_add(m, mf_dense("head", 3, 1), x);
    if (mf_model_build(m, 7) != MF_STATUS_OK) {
        fprintf(stderr, "fuzz: cannot build the tiny model: %s\n", mf_last_error());
        abort();
    }
    return m;
}

/* A fresh private directory for one input's files, under $TMPDIR (else
 * /tmp): `dir` gets its path (at most 64 bytes). The target removes it (and
 * what it put in it) before the input ends, so that a long run, or a crash,
 * does not leave one per input. */
static inline void fuzz_temp_dir(char dir[64])
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, 64, "%.30s/mf_fuzz_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz: cannot make a temporary directory under %.30s\n", tmp && tmp[0] ? tmp : "/tmp");
        abort();
    }
}

/* Everything HDF5 sets up once per process (its free lists, property list
 * classes, error stacks), done in LLVMFuzzerInitialize: libFuzzer counts the
 * allocations of each input, and a first input that pays for the library's
 * start-up would look like a leak to it. A file is made and read back in
 * memory: a group, a dataset with checksums, an attribute. */
static inline void fuzz_h5_warm_up(void)
{
    mf_h5_lock();
    /* MF_FUZZ_H5_FREE_LISTS=1 (campaign.sh): HDF5 keeps up to 64 MiB of the
     * blocks it frees for reuse (16 MiB per kind) instead of 1 MiB. Every
     * file open callocs a metadata cache of over 512 KiB, which ASan's
     * allocator maps and unmaps each time: with the blocks kept, a checkpoint
     * input runs a third faster. Not in the CTest runs, which keep HDF5's
     * defaults (and ASan's view of every block HDF5 frees). */
    const char *keep = getenv("MF_FUZZ_H5_FREE_LISTS");
    if (keep && keep[0] == '1')
        H5set_free_list_limits(64 << 20, 16 << 20, 64 << 20, 16 << 20, 64 << 20, 16 << 20);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hsize_t n = 4;
    H5Pset_chunk(dcpl, 1, &n);
    H5Pset_fletcher32(dcpl);
    hid_t f = H5Fcreate("warm-up.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t g = H5Gcreate2(f, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t d = H5Dcreate2(g, "d", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hid_t a = H5Acreate2(d, "a", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
    float v[4] = {1, 2, 3, 4};
    int iv[4] = {1, 2, 3, 4};
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Awrite(a, H5T_NATIVE_INT, iv);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Aclose(a);
    H5Dclose(d);
    H5Gclose(g);
    H5Sclose(sp);
    H5Fclose(f);
    H5Pclose(dcpl);
    H5Pclose(fapl);
    mf_h5_unlock();
}

/* The number of HDF5 objects of any kind open in the process. */
static inline ssize_t fuzz_h5_open_objects(void)
{
    mf_h5_lock();
    ssize_t n = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    mf_h5_unlock();
    return n;
}

/* After one input: abort (a crash the fuzzer records) if it left mf_alloc
 * blocks behind (live0: mf_alloc_live_count() before it) ... */
static inline void fuzz_check_alloc(size_t live0, const char *what)
{
    size_t live = mf_alloc_live_count();
    if (live != live0) {
        fprintf(stderr, "fuzz: %s leaked %zu mf_alloc blocks\n", what, live - live0);
        abort();
    }
}

/* ... or, for the HDF5 readers, HDF5 objects too. */
static inline void fuzz_check_clean(size_t live0, const char *what)
{
    fuzz_check_alloc(live0, what);
    ssize_t open = fuzz_h5_open_objects();
    if (open != 0) {
        /* which ones: their kind and path say which reader forgot them */
        static const char *kinds[] = {"?", "file", "group", "datatype", "dataspace", "dataset", "?", "attribute"};
        hid_t ids[16];
        mf_h5_lock();
        ssize_t n = H5Fget_obj_ids((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL, 16, ids);
        for (ssize_t i = 0; i < n; i++) {
            char name[256] = "";
            H5I_type_t t = H5Iget_type(ids[i]);
            H5Iget_name(ids[i], name, sizeof name);
            fprintf(stderr, "fuzz: open: %s %s\n", t >= 0 && t < 8 ? kinds[t] : "?", name);
        }
        mf_h5_unlock();
        fprintf(stderr, "fuzz: %s left %zd HDF5 objects open\n", what, open);
        abort();
    }
}
#endif
