/* test_dataset.c: class-folder datasets, packed HDF5 datasets, the loader
 * (determinism, coverage, preprocessing), and every kind of bad input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mpifit.h"
#include "mpifit/data.h"
#include "data/sources.h"
#include "data/jpeg.h"
#include "test.h"

static char root[64];

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    MF_CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f)
        return;
    if (n)
        fwrite(p, 1, n, f);
    fclose(f);
}

/* A size x size JPEG: four quadrants of colours q[0..3] (TL, TR, BL, BR). */
static void write_jpeg(const char *path, int size, const uint8_t q[4][3])
{
    uint8_t *rgb = malloc((size_t)size * size * 3);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            int k = (y >= size / 2) * 2 + (x >= size / 2);
            memcpy(rgb + ((size_t)y * size + x) * 3, q[k], 3);
        }
    uint8_t *jpg;
    size_t len;
    MF_CHECK(mf_jpeg_encode(rgb, size, size, 95, &jpg, &len) == MF_STATUS_OK);
    write_bytes(path, jpg, len);
    mf_free(jpg);
    free(rgb);
}

static void write_solid(const char *path, int size, int r, int g, int b)
{
    const uint8_t q[4][3] = {{r, g, b}, {r, g, b}, {r, g, b}, {r, g, b}};
    write_jpeg(path, size, q);
}

static void mkdirs(const char *p)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    MF_CHECK(system(cmd) == 0);
}

static const char *at(const char *rel)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static void test_tree(void)
{
    mkdirs(at("tree/b_cls"));
    mkdirs(at("tree/a_cls/sub"));
    mkdirs(at("tree/c_cls"));
    mkdirs(at("tree/.hidden"));
    write_solid(at("tree/b_cls/img1.JPG"), 32, 10, 20, 30);
    write_solid(at("tree/b_cls/img2.jpeg"), 32, 10, 20, 30);
    write_solid(at("tree/a_cls/x.jpg"), 32, 10, 20, 30);
    write_solid(at("tree/a_cls/sub/y.jpg"), 32, 10, 20, 30);
    write_solid(at("tree/c_cls/z.Jpeg"), 32, 10, 20, 30);
    write_bytes(at("tree/c_cls/notes.txt"), "hi", 2);
    write_bytes(at("tree/README.md"), "hi", 2);
    write_solid(at("tree/.hidden/h.jpg"), 32, 10, 20, 30);
    mf_dataset_options o = mf_dataset_options_default();
    o.quiet = 1;
    mf_dataset *ds;
    MF_CHECK(mf_dataset_open(&ds, at("tree"), &o) == MF_STATUS_OK);
    MF_CHECK(mf_dataset_num_classes(ds) == 3);
    MF_CHECK(strcmp(mf_dataset_class_name(ds, 0), "a_cls") == 0);
    MF_CHECK(strcmp(mf_dataset_class_name(ds, 1), "b_cls") == 0);
    MF_CHECK(strcmp(mf_dataset_class_name(ds, 2), "c_cls") == 0);
    MF_CHECK(mf_dataset_size(ds) == 5);
    MF_CHECK(mf_dataset_num_ignored(ds) == 2);
    const char *want[5] = {"a_cls/x.jpg", "a_cls/sub/y.jpg", "b_cls/img1.JPG", "b_cls/img2.jpeg", "c_cls/z.Jpeg"};
    int labels[5] = {0, 0, 1, 1, 2};
    for (int i = 0; i < 5 && i < mf_dataset_size(ds); i++) {
        MF_CHECK_MSG(strstr(mf_dataset_source(ds, i), want[i]) != NULL, "item %d is %s", i, mf_dataset_source(ds, i));
        MF_CHECK(mf_dataset_label(ds, i) == labels[i]);
    }
    /* the packed form holds the same images, labels and bytes */
    mf_pack_split sp = {"train", ds};
    MF_CHECK(mf_packed_write(at("tree.h5"), &sp, 1) == MF_STATUS_OK);
    MF_CHECK(access(at("tree.h5.tmp"), F_OK) != 0);
    mf_dataset *pk;
    MF_CHECK(mf_dataset_open(&pk, at("tree.h5"), &o) == MF_STATUS_OK); /* the only split */
    MF_CHECK(mf_dataset_size(pk) == 5 && mf_dataset_num_classes(pk) == 3);
    MF_CHECK(mf_dataset_same_classes(ds, pk) == MF_STATUS_OK);
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t c1 = 0, c2 = 0, l1 = 0, l2 = 0;
    for (int i = 0; i < 5; i++) {
        MF_CHECK(mf_dataset_label(pk, i) == labels[i]);
        MF_CHECK(mf_dataset_read(ds, i, &b1, &c1, &l1) == MF_STATUS_OK);
        MF_CHECK(mf_dataset_read(pk, i, &b2, &c2, &l2) == MF_STATUS_OK);
        MF_CHECK(l1 == l2 && l1 > 0 && memcmp(b1, b2, l1) == 0);
    }
    mf_free(b1);
    mf_free(b2);
    mf_dataset_free(pk);
    char spec[600];
    snprintf(spec, sizeof spec, "%s:train", at("tree.h5"));
    MF_CHECK(mf_dataset_open(&pk, spec, &o) == MF_STATUS_OK);
    mf_dataset_free(pk);
    snprintf(spec, sizeof spec, "%s:validation", at("tree.h5"));
    MF_CHECK(mf_dataset_open(&pk, spec, &o) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "no split 'validation'") && strstr(mf_last_error(), "train"), "got: %s",
                 mf_last_error());

    /* validation_split: complementary subsets, Keras' sizes */
    mkdirs(at("many/one"));
    mkdirs(at("many/two"));
    char p[600];
    for (int i = 0; i < 20; i++) {
        snprintf(p, sizeof p, "%s/%s/%02d.jpg", at("many"), i % 2 ? "two" : "one", i);
        write_solid(p, 16, 100, 100, 100);
    }
    o.validation_split = 0.25f;
    o.subset = MF_SUBSET_TRAINING;
    mf_dataset *tr, *va;
    MF_CHECK(mf_dataset_open(&tr, at("many"), &o) == MF_STATUS_OK);
    o.subset = MF_SUBSET_VALIDATION;
    MF_CHECK(mf_dataset_open(&va, at("many"), &o) == MF_STATUS_OK);
    MF_CHECK(mf_dataset_size(tr) == 15 && mf_dataset_size(va) == 5);
    int overlap = 0;
    for (int i = 0; i < mf_dataset_size(tr); i++)
        for (int j = 0; j < mf_dataset_size(va); j++)
            overlap += strcmp(mf_dataset_source(tr, i), mf_dataset_source(va, j)) == 0;
    MF_CHECK(overlap == 0);
    /* class lists that differ are an error naming both */
    MF_CHECK(mf_dataset_same_classes(ds, tr) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "a_cls") && strstr(mf_last_error(), "one"), "got: %s", mf_last_error());
    mf_dataset_free(tr);
    mf_dataset_free(va);
    mf_dataset_free(ds);
}

static void test_tree_errors(void)
{
    mf_dataset_options o = mf_dataset_options_default();
    o.quiet = 1;
    mf_dataset *ds = NULL;
    MF_CHECK(mf_dataset_open(&ds, at("does_not_exist"), &o) == MF_STATUS_IO);
    MF_CHECK(strstr(mf_last_error(), "does_not_exist") != NULL);
    mkdirs(at("flat"));
    write_solid(at("flat/a.jpg"), 16, 1, 2, 3);
    MF_CHECK(mf_dataset_open(&ds, at("flat"), &o) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "no class folders") != NULL, "got: %s", mf_last_error());
    mkdirs(at("holey/full"));
    mkdirs(at("holey/empty"));
    write_solid(at("holey/full/a.jpg"), 16, 1, 2, 3);
    write_bytes(at("holey/empty/readme.txt"), "x", 1);
    MF_CHECK(mf_dataset_open(&ds, at("holey"), &o) == MF_STATUS_DATA);
    MF_CHECK_MSG(strstr(mf_last_error(), "holey/empty") && strstr(mf_last_error(), "no .jpg"), "got: %s",
                 mf_last_error());
    MF_CHECK(ds == NULL);
    /* an HDF5 file that is not a packed dataset */
    write_bytes(at("notjpeg.h5"), "\x89HDF\r\n\x1a\n", 8);
    MF_CHECK(mf_dataset_open(&ds, at("notjpeg.h5"), &o) != MF_STATUS_OK);
}

/* 3 classes x 7 images, each a distinct solid colour: sample i has red = 10*i. */
static mf_dataset *colour_tree(void)
{
    const char *cls[3] = {"c0", "c1", "c2"};
    char p[600];
    for (int c = 0; c < 3; c++) {
        snprintf(p, sizeof p, "%s/%s", at("colours"), cls[c]);
        mkdirs(p);
        for (int k = 0; k < 7; k++) {
            snprintf(p, sizeof p, "%s/%s/%d.jpg", at("colours"), cls[c], k);
            write_solid(p, 48, 10 * (c * 7 + k), 40 * c, 200);
        }
    }
    mf_dataset_options o = mf_dataset_options_default();
    mf_dataset *ds;
    MF_CHECK(mf_dataset_open(&ds, at("colours"), &o) == MF_STATUS_OK);
    return ds;
}

static int batches_equal(mf_dataset *ds, mf_loader_options o1, mf_loader_options o2, int epochs)
{
    mf_loader *a, *b;
    MF_CHECK(mf_loader_create(&a, ds, &o1) == MF_STATUS_OK);
    MF_CHECK(mf_loader_create(&b, ds, &o2) == MF_STATUS_OK);
    int same = 1;
    size_t xs = (size_t)o1.batch_size * o1.input_size * o1.input_size * 3 * sizeof(float);
    for (int e = 0; e < epochs; e++) {
        mf_loader_begin_epoch(a, e);
        mf_loader_begin_epoch(b, e);
        for (int s = 0; s < mf_loader_steps(a); s++) {
            const mf_batch *ba, *bb;
            MF_CHECK(mf_loader_next(a, &ba) == MF_STATUS_OK);
            MF_CHECK(mf_loader_next(b, &bb) == MF_STATUS_OK);
            same &= memcmp(ba->x, bb->x, xs) == 0 && memcmp(ba->y, bb->y, (size_t)ba->n * 4) == 0 &&
                memcmp(ba->index, bb->index, (size_t)ba->n * 4) == 0;
        }
    }
    mf_loader_free(a);
    mf_loader_free(b);
    return same;
}

static void test_loader(void)
{
    mf_dataset *ds = colour_tree();
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = 4;
    o.input_size = 16;
    o.threads = 1;
    o.seed = 9;
    mf_loader_options o3 = o;
    o3.threads = 3;
    o3.prefetch = 5;
    MF_CHECK_MSG(batches_equal(ds, o, o3, 2), "same seed must give byte-identical batches with 1 and 3 threads");
    mf_loader_options other = o;
    other.seed = 10;
    MF_CHECK_MSG(!batches_equal(ds, o, other, 1), "another seed must give other batches");

    /* evaluation: every sample once, in order, labels right, no augmentation:
     * a solid colour comes out as colour / 127.5 - 1 everywhere */
    o.training = 0;
    o.world = 2;
    int seen[21] = {0};
    for (int r = 0; r < 2; r++) {
        o.rank = r;
        mf_loader *l;
        MF_CHECK(mf_loader_create(&l, ds, &o) == MF_STATUS_OK);
        MF_CHECK(mf_loader_begin_epoch(l, 0) == MF_STATUS_OK);
        MF_CHECK(mf_loader_steps(l) == 3); /* ceil(21 / (4 * 2)) */
        for (int s = 0; s < mf_loader_steps(l); s++) {
            const mf_batch *b;
            MF_CHECK(mf_loader_next(l, &b) == MF_STATUS_OK);
            for (int k = 0; k < b->n; k++) {
                int i = b->index[k];
                if (i < 0) {
                    MF_CHECK(b->w[k] == 0.0f);
                    continue;
                }
                seen[i]++;
                MF_CHECK(b->w[k] == 1.0f && b->y[k] == mf_dataset_label(ds, i));
                const float *x = b->x + (size_t)k * 16 * 16 * 3;
                double red = 10.0 * i / 127.5 - 1.0, blue = 200 / 127.5 - 1.0;
                MF_CHECK_NEAR(x[0], red, 3.0 / 127.5);
                MF_CHECK_NEAR(x[16 * 16 * 3 - 1], blue, 3.0 / 127.5);
            }
        }
        const mf_batch *b;
        MF_CHECK(mf_loader_next(l, &b) == MF_STATUS_INVALID); /* past the end */
        mf_loader_free(l);
    }
    int once = 1;
    for (int i = 0; i < 21; i++)
        once &= seen[i] == 1;
    MF_CHECK_MSG(once, "evaluation over 2 ranks must see each of 21 samples exactly once");

    /* freeing mid-epoch with batches in flight neither hangs nor leaks */
    o.training = 1;
    o.world = 1;
    o.rank = 0;
    o.threads = 3;
    mf_loader *l;
    MF_CHECK(mf_loader_create(&l, ds, &o) == MF_STATUS_OK);
    mf_loader_begin_epoch(l, 0);
    const mf_batch *b;
    MF_CHECK(mf_loader_next(l, &b) == MF_STATUS_OK);
    mf_loader_begin_epoch(l, 1); /* abandon epoch 0 */
    MF_CHECK(mf_loader_next(l, &b) == MF_STATUS_OK && b->step == 0);
    mf_loader_free(l);
    mf_dataset_free(ds);
}

/* A known image through decode + resize: quadrants of red, green, blue, white at
 * 64 px, read at 32 px without augmentation. */
static void test_known_image(void)
{
    mkdirs(at("quad/only"));
    const uint8_t q[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    write_jpeg(at("quad/only/q.jpg"), 64, q);
    mf_dataset *ds;
    mf_dataset_options dopt = mf_dataset_options_default();
    MF_CHECK(mf_dataset_open(&ds, at("quad"), &dopt) == MF_STATUS_OK);
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = 1;
    o.input_size = 32;
    o.training = 0;
    o.threads = 1;
    mf_loader *l;
    MF_CHECK(mf_loader_create(&l, ds, &o) == MF_STATUS_OK);
    mf_loader_begin_epoch(l, 0);
    const mf_batch *b;
    MF_CHECK(mf_loader_next(l, &b) == MF_STATUS_OK);
    /* away from the seams (JPEG chroma bleeds a few pixels) each quadrant keeps its colour */
    const int px[4][2] = {{4, 4}, {27, 4}, {4, 27}, {27, 27}}; /* (x, y) */
    for (int k = 0; k < 4; k++) {
        const float *v = b->x + ((size_t)px[k][1] * 32 + px[k][0]) * 3;
        for (int c = 0; c < 3; c++)
            MF_CHECK_NEAR(v[c], q[k][c] / 127.5 - 1.0, 0.06);
    }
    mf_loader_free(l);
    mf_dataset_free(ds);
}

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

static void test_bad_images(void)
{
    mkdirs(at("bad/good"));
    mkdirs(at("bad/junk"));
    for (int k = 0; k < 3; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/good/%d.jpg", at("bad"), k);
        write_solid(p, 32, 50, 100, 150);
    }
    /* a valid JPEG to cut and patch */
    uint8_t rgb[64 * 64 * 3];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)(i * 7);
    uint8_t *jpg;
    size_t len;
    MF_CHECK(mf_jpeg_encode(rgb, 64, 64, 90, &jpg, &len) == MF_STATUS_OK);
    write_bytes(at("bad/junk/truncated.jpg"), jpg, len / 2);
    write_bytes(at("bad/junk/png.jpg"), "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    write_bytes(at("bad/junk/empty.jpg"), "", 0);
    for (size_t i = 0; i + 8 < len; i++) /* SOF0: FF C0, len, precision, height, width */
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = 0xEA;
            jpg[i + 6] = 0x60; /* 60000 */
            jpg[i + 7] = 0xEA;
            jpg[i + 8] = 0x60;
            break;
        }
    write_bytes(at("bad/junk/huge.jpg"), jpg, len);
    mf_free(jpg);
    MF_CHECK(symlink("/nonexistent/target.jpg", at("bad/junk/dangling.jpg")) == 0);
    MF_CHECK(mkfifo(at("bad/junk/fifo.jpg"), 0600) == 0);
    write_solid(at("bad/junk/fine.jpg"), 32, 9, 9, 9);

    mf_dataset *ds;
    mf_dataset_options dopt = mf_dataset_options_default();
    MF_CHECK(mf_dataset_open(&ds, at("bad"), &dopt) == MF_STATUS_OK);
    MF_CHECK(mf_dataset_size(ds) == 10);
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = 4;
    o.input_size = 16;
    o.threads = 2;
    o.training = 0;
    mf_loader *l;
    MF_CHECK(mf_loader_create(&l, ds, &o) == MF_STATUS_OK);
    /* capture the warnings: each bad file reported once over two epochs */
    char log[600];
    snprintf(log, sizeof log, "%s/stderr.txt", root);
    fflush(stderr);
    int saved = dup(2);
    FILE *cap = freopen(log, "w", stderr);
    MF_CHECK(cap != NULL);
    long bad_total = 0;
    for (int e = 0; e < 2; e++) {
        mf_loader_begin_epoch(l, e);
        int good = 0;
        for (int s = 0; s < mf_loader_steps(l); s++) {
            const mf_batch *b;
            MF_CHECK(mf_loader_next(l, &b) == MF_STATUS_OK);
            for (int k = 0; k < b->n; k++) {
                int i = b->index[k];
                if (i < 0)
                    continue;
                MF_CHECK(b->y[k] == mf_dataset_label(ds, i)); /* never a wrong label */
                int is_bad = strstr(mf_dataset_source(ds, i), "fine.jpg") == NULL &&
                    strstr(mf_dataset_source(ds, i), "/junk/") != NULL;
                MF_CHECK_MSG(b->w[k] == (is_bad ? 0.0f : 1.0f), "%s weight %g", mf_dataset_source(ds, i), b->w[k]);
                good += b->w[k] == 1.0f;
            }
        }
        MF_CHECK(good == 4);
        mf_loader_stats st = mf_loader_epoch_stats(l);
        MF_CHECK(st.bad_images == 6 && st.images == 4);
        bad_total += st.bad_images;
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    MF_CHECK(bad_total == 12);
    MF_CHECK_MSG(count_lines(log, "skipping bad image") == 6, "each bad file must be reported exactly once, got %d",
                 count_lines(log, "skipping bad image"));
    const char *reason[6][2] = {{"truncated.jpg", "truncated"},   {"png.jpg", "not a JPEG"},
                                {"empty.jpg", "empty"},           {"huge.jpg", "60000"},
                                {"dangling.jpg", "No such file"}, {"fifo.jpg", "regular file"}};
    for (int k = 0; k < 6; k++) {
        FILE *f = fopen(log, "r");
        char line[2048];
        int found = 0;
        while (f && fgets(line, sizeof line, f))
            found |= strstr(line, reason[k][0]) && strstr(line, reason[k][1]);
        if (f)
            fclose(f);
        MF_CHECK_MSG(found, "no report for %s naming '%s'", reason[k][0], reason[k][1]);
    }
    mf_loader_free(l);

    /* on_bad_image = fail: the run stops with the path */
    o.on_bad_image = MF_BAD_IMAGE_FAIL;
    MF_CHECK(mf_loader_create(&l, ds, &o) == MF_STATUS_OK);
    mf_loader_begin_epoch(l, 0);
    mf_status s = MF_STATUS_OK;
    for (int k = 0; k < mf_loader_steps(l) && s == MF_STATUS_OK; k++) {
        const mf_batch *b;
        s = mf_loader_next(l, &b);
    }
    MF_CHECK(s == MF_STATUS_DATA || s == MF_STATUS_IO);
    MF_CHECK_MSG(strstr(mf_last_error(), "/junk/") && strstr(mf_last_error(), "on_bad_image = fail"), "got: %s",
                 mf_last_error());
    mf_loader_free(l);
    mf_dataset_free(ds);
}

/* An image file over [data] max_image_mb is refused before anything is read
 * or allocated for it, from folders and from packed files alike. */
static void test_size_limit(void)
{
    mkdirs(at("big/one"));
    static uint8_t blob[3000];
    memset(blob, 0xab, sizeof blob);
    write_bytes(at("big/one/large.jpg"), blob, sizeof blob);
    write_bytes(at("big/one/small.jpg"), blob, 500);
    mf_dataset *ds;
    mf_dataset_options o = mf_dataset_options_default();
    o.max_image_bytes = 1000;
    mf_status st = mf_dataset_open(&ds, at("big"), &o);
    MF_CHECK_MSG(st == MF_STATUS_OK, "%s", mf_last_error());
    if (st != MF_STATUS_OK)
        return;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    int large = strstr(mf_dataset_source(ds, 0), "large") ? 0 : 1;
    MF_CHECK(mf_dataset_read(ds, large, &buf, &cap, &len) == MF_STATUS_IO);
    MF_CHECK(strstr(mf_last_error(), "3000 bytes, more than the limit of 1000") != NULL);
    MF_CHECK(cap < 3000); /* nothing was allocated for it */
    MF_CHECK(mf_dataset_read(ds, 1 - large, &buf, &cap, &len) == MF_STATUS_OK && len == 500);
    /* packed: the same limit on the stored length */
    mf_dataset *all; /* packed without the limit, read back with it */
    mf_dataset_options d = mf_dataset_options_default();
    MF_CHECK(mf_dataset_open(&all, at("big"), &d) == MF_STATUS_OK);
    mf_pack_split sp = {"train", all};
    MF_CHECK(mf_packed_write(at("big.h5"), &sp, 1) == MF_STATUS_OK);
    mf_dataset_free(all);
    mf_dataset *pk;
    st = mf_dataset_open(&pk, at("big.h5"), &o);
    MF_CHECK_MSG(st == MF_STATUS_OK, "%s", mf_last_error());
    if (st != MF_STATUS_OK) {
        mf_dataset_free(ds);
        mf_free(buf);
        return;
    }
    int plarge = strstr(mf_dataset_source(pk, 0), "large") ? 0 : 1;
    MF_CHECK(mf_dataset_read(pk, plarge, &buf, &cap, &len) == MF_STATUS_IO);
    MF_CHECK(strstr(mf_last_error(), "more than the limit") != NULL);
    mf_dataset_free(pk);
    mf_dataset_free(ds);
    mf_free(buf);
}

/* A symbolic link from a class folder back to an ancestor is a loop: found
 * at once, its images counted once, with a warning. */
static void test_link_loop(void)
{
    mkdirs(at("loop/a/sub"));
    const uint8_t q[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    write_jpeg(at("loop/a/x.jpg"), 16, q);
    write_jpeg(at("loop/a/sub/y.jpg"), 16, q);
    char target[256];
    mf_strlcpy(target, at("loop/a"), sizeof target);
    MF_CHECK(symlink(target, at("loop/a/sub/back")) == 0);
    mf_dataset *ds;
    mf_dataset_options o = mf_dataset_options_default();
    o.quiet = 1;
    MF_CHECK(mf_dataset_open(&ds, at("loop"), &o) == MF_STATUS_OK);
    MF_CHECK_MSG(mf_dataset_size(ds) == 2, "%d images, expected 2", mf_dataset_size(ds));
    mf_dataset_free(ds);
}

int main(void)
{
    mf_test_dir_make(root, sizeof root, "dataset");
    test_tree();
    test_tree_errors();
    test_loader();
    test_known_image();
    test_bad_images();
    test_size_limit();
    test_link_loop();
    mf_test_dir_remove(root);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
