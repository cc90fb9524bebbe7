/* test_synthetic.c: the synthetic beans dataset: pictures are a function of the
 * seed; each class shows its disease in simple colour statistics over the leaf;
 * the writer makes the expected tree of decodable JPEGs, byte-identical for any
 * thread count; I/O failures name the path. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mpifit.h"
#include "core/core.h"
#include "data/jpeg.h"
#include "synth/synthetic.h"
#include "test.h"

static char root[64];

static const char *at(const char *rel)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static uint8_t *read_all(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)
        n = -1;
    fclose(f);
    if (n < 0) {
        free(b);
        return NULL;
    }
    *len = (size_t)n;
    return b;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_determinism(void)
{
    enum { S = 96 };
    static uint8_t a[S * S * 3], b[S * S * 3], m1[S * S], m2[S * S];
    mf_synth_draw(a, S, 0, 42);
    mf_synth_draw(b, S, 0, 42);
    MF_CHECK_MSG(memcmp(a, b, sizeof a) == 0, "same seed must give the same pixels");
    mf_synth_draw(b, S, 0, 43);
    MF_CHECK_MSG(memcmp(a, b, sizeof a) != 0, "another seed must give another picture");
    /* the class changes the disease, never the leaf */
    mf_synth_draw_ex(a, m1, S, 1, 42);
    mf_synth_draw_ex(b, m2, S, 2, 42);
    MF_CHECK(memcmp(a, b, sizeof a) != 0);
    MF_CHECK(memcmp(m1, m2, sizeof m1) == 0);
    /* the leaf is a sizeable part of the frame, not all of it */
    int leaf = 0;
    for (int i = 0; i < S * S; i++)
        leaf += m1[i] == 255;
    MF_CHECK_MSG(leaf > S * S / 10 && leaf < S * S * 9 / 10, "leaf covers %d of %d pixels", leaf, S * S);
}

/* Fractions of the leaf's inner pixels that look like rust pustules (bright,
 * saturated orange) and like necrotic lesions (darker, duller brown). */
static void leaf_colour_stats(const uint8_t *rgb, const uint8_t *mask, int n, double *orange, double *brown)
{
    int leaf = 0, o = 0, b = 0;
    for (int i = 0; i < n; i++) {
        if (mask[i] != 255)
            continue;
        leaf++;
        float r = rgb[3 * i] / 255.0f, g = rgb[3 * i + 1] / 255.0f, bl = rgb[3 * i + 2] / 255.0f;
        if (!(r >= g && r >= bl) || r - bl < 0.08f)
            continue; /* green, yellow-green and grey pixels */
        float sat = (r - bl) / r, hue = 60.0f * (g - bl) / (r - bl); /* red = 0, yellow = 60 */
        if (hue > 48.0f)
            continue; /* yellow: halos, mottling */
        if (sat > 0.6f && r > 0.42f)
            o++;
        else if (sat > 0.25f && r < 0.5f)
            b++;
    }
    *orange = leaf ? (double)o / leaf : 0.0;
    *brown = leaf ? (double)b / leaf : 0.0;
}

static void test_class_features(void)
{
    enum { S = 128, N = 30 };
    static uint8_t rgb[S * S * 3], mask[S * S];
    double orange[3] = {0}, brown[3] = {0};
    for (int c = 0; c < MF_SYNTH_NUM_CLASSES; c++)
        for (int i = 0; i < N; i++) {
            /* different seeds per class: backgrounds and leaves differ too */
            mf_synth_draw_ex(rgb, mask, S, c, 1000 + 100 * (uint64_t)c + (uint64_t)i);
            double o, b;
            leaf_colour_stats(rgb, mask, S * S, &o, &b);
            orange[c] += o / N;
            brown[c] += b / N;
        }
    printf("leaf pixels orange / brown: angular_leaf_spot %.4f / %.4f, bean_rust %.4f / %.4f, "
           "healthy %.4f / %.4f\n",
           orange[0], brown[0], orange[1], brown[1], orange[2], brown[2]);
    MF_CHECK_MSG(orange[1] > 3.0 * orange[0] && orange[1] > 3.0 * orange[2], "rust must be the orange class");
    MF_CHECK_MSG(brown[0] > 1.5 * brown[1] && brown[0] > 3.0 * brown[2], "leaf spot must be the brown class");
    /* leaf spot lesions are grey to dark brown, never orange: none on either */
    MF_CHECK_MSG(orange[2] <= orange[0] && brown[2] < brown[1], "healthy must have the least of both");
    MF_CHECK_MSG(orange[1] > 0.01 && brown[0] > 0.01, "the disease must be visible at 128 px");
}

static void test_write_tree(void)
{
    mf_synth_options o = {.n_train = 7, .n_validation = 3, .n_test = 3, .size = 48, .quality = 90, .seed = 9};
    MF_CHECK(mf_synth_write_dataset(at("tree"), &o, 2) == MF_STATUS_OK);
    /* 7 train images: classes 0,1,2,0,1,2,0 -> 3, 2, 2 per class */
    static const int per_class_train[3] = {3, 2, 2};
    static const char *const splits[3] = {"train", "validation", "test"};
    mf_jpeg_decoder *dec = mf_jpeg_decoder_create();
    for (int s = 0; s < 3; s++)
        for (int c = 0; c < MF_SYNTH_NUM_CLASSES; c++) {
            const char *cls = mf_synth_class_names[c];
            char rel[256];
            snprintf(rel, sizeof rel, "tree/%s/%s", splits[s], cls);
            int want = s == 0 ? per_class_train[c] : 1;
            MF_CHECK_MSG(count_entries(at(rel)) == want, "%s holds %d entries, want %d (no .tmp left)", rel,
                         count_entries(at(rel)), want);
            for (int k = 0; k < want; k++) {
                char f[300];
                snprintf(f, sizeof f, "%s/%s_%04d.jpg", rel, cls, k);
                size_t len;
                uint8_t *buf = read_all(at(f), &len);
                MF_CHECK_MSG(buf != NULL, "missing %s", f);
                if (!buf)
                    continue;
                mf_image_rgb8 img;
                MF_CHECK_MSG(mf_jpeg_decode(dec, buf, len, 0, 0, &img) == MF_STATUS_OK, "%s: %s", f, mf_last_error());
                MF_CHECK(img.w == 48 && img.h == 48);
                free(buf);
            }
        }
    /* the file really is image i of its split: bean_rust_0001 in train is i = 4,
     * drawn with the seed derived from (seed, split 0, 4) */
    size_t len;
    uint8_t *buf = read_all(at("tree/train/bean_rust/bean_rust_0001.jpg"), &len);
    mf_image_rgb8 img;
    if (buf && mf_jpeg_decode(dec, buf, len, 0, 0, &img) == MF_STATUS_OK) {
        static uint8_t want[48 * 48 * 3];
        mf_rng r;
        mf_rng_seed2(&r, 9, (uint64_t)0 << 32 | 4);
        mf_synth_draw(want, 48, 1, mf_rng_u64(&r));
        double err = 0;
        for (int i = 0; i < 48 * 48 * 3; i++)
            err += abs((int)img.rgb[i] - (int)want[i]);
        err /= 48 * 48 * 3;
        MF_CHECK_MSG(err < 6.0, "decoded image differs from its drawing by %.2f levels on average", err);
    }
    free(buf);
    mf_jpeg_decoder_free(dec);

    /* no test/ unless asked; an existing tree is fine (mkdir -p) */
    o.n_test = 0;
    MF_CHECK(mf_synth_write_dataset(at("tree2/a/b"), &o, 1) == MF_STATUS_OK);
    MF_CHECK(mf_synth_write_dataset(at("tree2/a/b/"), &o, 1) == MF_STATUS_OK);
    struct stat st;
    MF_CHECK(stat(at("tree2/a/b/validation/healthy/healthy_0000.jpg"), &st) == 0);
    MF_CHECK(stat(at("tree2/a/b/test"), &st) != 0);
}

static void test_threads_identical(void)
{
    mf_synth_options o = {.n_train = 9, .n_validation = 4, .n_test = 2, .size = 64, .quality = 85, .seed = 77};
    MF_CHECK(mf_synth_write_dataset(at("t1"), &o, 1) == MF_STATUS_OK);
    MF_CHECK(mf_synth_write_dataset(at("t3"), &o, 3) == MF_STATUS_OK);
    static const char *const splits[3] = {"train", "validation", "test"};
    const int count[3] = {9, 4, 2};
    int compared = 0;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < count[s]; i++) {
            const char *cls = mf_synth_class_names[i % 3];
            char rel[256];
            snprintf(rel, sizeof rel, "%s/%s/%s_%04d.jpg", splits[s], cls, cls, i / 3);
            char p1[300], p3[300];
            snprintf(p1, sizeof p1, "t1/%s", rel);
            snprintf(p3, sizeof p3, "t3/%s", rel);
            size_t l1, l3;
            uint8_t *b1 = read_all(at(p1), &l1), *b3 = read_all(at(p3), &l3);
            MF_CHECK_MSG(b1 && b3 && l1 == l3 && memcmp(b1, b3, l1) == 0, "%s differs between 1 and 3 threads", rel);
            compared += b1 && b3;
            free(b1);
            free(b3);
        }
    MF_CHECK(compared == 15);
}

static void test_errors(void)
{
    /* a directory under a regular file cannot be made */
    FILE *f = fopen(at("plainfile"), "wb");
    MF_CHECK(f != NULL);
    if (f)
        fclose(f);
    mf_synth_options o = {.n_train = 3, .n_validation = 3, .n_test = 0, .size = 32, .quality = 90, .seed = 1};
    mf_clear_error();
    MF_CHECK(mf_synth_write_dataset(at("plainfile/sub"), &o, 2) == MF_STATUS_IO);
    MF_CHECK_MSG(strstr(mf_last_error(), at("plainfile/sub")) != NULL, "message: %s", mf_last_error());
    MF_CHECK_MSG(strstr(mf_last_error(), "Not a directory") != NULL, "message: %s", mf_last_error());
    /* OUT itself a regular file */
    MF_CHECK(mf_synth_write_dataset(at("plainfile"), &o, 1) == MF_STATUS_IO);
    MF_CHECK_MSG(strstr(mf_last_error(), at("plainfile")) != NULL, "message: %s", mf_last_error());
    /* a class folder taken by a file: the failure names it */
    MF_CHECK(mf_synth_write_dataset(at("taken"), &o, 1) == MF_STATUS_OK);
    MF_CHECK(rename(at("taken/train/healthy"), at("taken/healthy_old")) == 0);
    f = fopen(at("taken/train/healthy"), "wb");
    if (f)
        fclose(f);
    MF_CHECK(mf_synth_write_dataset(at("taken"), &o, 2) == MF_STATUS_IO);
    MF_CHECK_MSG(strstr(mf_last_error(), at("taken/train/healthy")) != NULL, "message: %s", mf_last_error());
    /* an image path taken by a directory: rename() fails, naming the file */
    MF_CHECK(unlink(at("taken/train/healthy")) == 0);
    MF_CHECK(rename(at("taken/healthy_old"), at("taken/train/healthy")) == 0);
    MF_CHECK(unlink(at("taken/train/bean_rust/bean_rust_0000.jpg")) == 0);
    MF_CHECK(mkdir(at("taken/train/bean_rust/bean_rust_0000.jpg"), 0777) == 0);
    MF_CHECK(mf_synth_write_dataset(at("taken"), &o, 2) == MF_STATUS_IO);
    MF_CHECK_MSG(strstr(mf_last_error(), "bean_rust_0000.jpg") != NULL, "message: %s", mf_last_error());
    struct stat st;
    MF_CHECK_MSG(stat(at("taken/train/bean_rust/bean_rust_0000.jpg.tmp"), &st) != 0, "a failed write leaves no .tmp");
    /* bad options */
    mf_synth_options bad = o;
    bad.quality = 0;
    MF_CHECK(mf_synth_write_dataset(at("bad"), &bad, 1) == MF_STATUS_INVALID);
    MF_CHECK(strstr(mf_last_error(), "quality") != NULL);
    bad = o;
    bad.size = 8;
    MF_CHECK(mf_synth_write_dataset(at("bad"), &bad, 1) == MF_STATUS_INVALID);
    bad = o;
    bad.n_train = -1;
    MF_CHECK(mf_synth_write_dataset(at("bad"), &bad, 1) == MF_STATUS_INVALID);
    MF_CHECK(mf_synth_write_dataset(at("bad"), &o, 0) == MF_STATUS_INVALID);
}

int main(void)
{
    mf_test_dir_make(root, sizeof root, "synth");
    test_determinism();
    test_class_features();
    test_write_tree();
    test_threads_identical();
    test_errors();
    mf_test_dir_remove(root);
    MF_CHECK_MSG(mf_alloc_live_count() == 0, "%zu mpifit allocations leaked", mf_alloc_live_count());
    return mf_test_report();
}
