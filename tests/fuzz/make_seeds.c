/* make_seeds.c: the seed files of the fuzz targets, written by mpifit itself
 * (tests/fuzz/make_seeds.sh runs it and copies the result to
 * tests/fuzz/corpus/). Small on purpose: a fuzzer mutates small files faster
 * and reaches their every part sooner.
 *
 *   make_seeds OUT_DIR
 * writes OUT_DIR/<target>/<name> for the targets jpeg, keras_weights,
 * checkpoint, packed and inspect (config seeds are INI files: the script
 * copies them):
 *   jpeg/           4 parameter bytes (see fuzz_jpeg.c) + JPEGs of every kind
 *                   TurboJPEG writes: 4:2:0, 4:2:2, 4:4:4, grayscale,
 *                   progressive, CMYK (with its Adobe marker), odd sizes
 *   keras_weights/  mf_weights_save_keras_desc of the tiny model (fuzz_common.h),
 *                   with a model description as train writes one
 *   checkpoint/     mf_checkpoint_save of it before training (no history) and
 *                   after two epochs of fit (history, EarlyStopping state),
 *                   with the model description
 *   packed/         mpifit pack's format: one split, and train + validation
 *   inspect/        one of each: checkpoint, metrics.h5, weights, packed */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include "mpifit.h"
#include "data/jpeg.h"
#include "data/sources.h"
#include "fuzz_common.h"

static const char *out;
static char tmp[64];

static void die(const char *what)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, mf_last_error());
    exit(1);
}

static void mkdirs(const char *path)
{
    if (mf_mkdir_p(path) != MF_STATUS_OK)
        die(path);
}

static void write_bytes(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* (h, w, channels) of a smooth pattern: what JPEG keeps in few bytes */
static uint8_t *pattern(int w, int h, int ch)
{
    uint8_t *p = malloc((size_t)w * h * ch);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                p[((size_t)y * w + x) * ch + c] = (uint8_t)(40 + 170 * ((x + 2 * y + 3 * c) % (w + 1)) / (w + 1));
    return p;
}

/* One JPEG from TurboJPEG; *jpeg tjAlloc'ed. */
static unsigned long tj_jpeg(int w, int h, int pf, int samp, int quality, int flags, unsigned char **jpeg)
{
    tjhandle tj = tjInitCompress();
    uint8_t *px = pattern(w, h, tjPixelSize[pf]);
    unsigned long len = 0;
    *jpeg = NULL;
    if (!tj || tjCompress2(tj, px, w, 0, h, pf, jpeg, &len, samp, quality, flags) != 0) {
        fprintf(stderr, "make_seeds: tjCompress2: %s\n", tjGetErrorStr2(tj));
        exit(1);
    }
    tjDestroy(tj);
    free(px);
    return len;
}

static void jpeg_seeds(void)
{
    static const struct {
        const char *name;
        int w, h, pf, samp, quality, flags;
        uint8_t param[4]; /* side - 1, augment|flip, scale_min, seed */
    } kinds[] = {
        {"rgb420_16x12", 16, 12, TJPF_RGB, TJSAMP_420, 90, 0, {7, 0, 128, 0}},
        {"rgb422_33x17_augment", 33, 17, TJPF_RGB, TJSAMP_422, 75, 0, {15, 3, 60, 1}},
        {"rgb444_progressive_24x16", 24, 16, TJPF_RGB, TJSAMP_444, 80, TJFLAG_PROGRESSIVE, {31, 1, 255, 2}},
        {"gray_9x7", 9, 7, TJPF_GRAY, TJSAMP_GRAY, 85, 0, {3, 2, 0, 3}},
        {"cmyk_8x8_adobe", 8, 8, TJPF_CMYK, TJSAMP_444, 90, 0, {63, 1, 10, 4}},
        {"rgb420_64x48_dct_scaled", 64, 48, TJPF_RGB, TJSAMP_420, 50, 0, {11, 0, 0, 5}},
        {"rgb440_1x40", 1, 40, TJPF_RGB, TJSAMP_440, 70, 0, {0, 3, 200, 6}},
    };
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/jpeg", out);
    mkdirs(dir);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        unsigned char *j = NULL;
        unsigned long n = tj_jpeg(kinds[i].w, kinds[i].h, kinds[i].pf, kinds[i].samp, kinds[i].quality,
                                  kinds[i].flags, &j);
        snprintf(path, sizeof path, "%s/%s", dir, kinds[i].name);
        write_bytes(path, kinds[i].param, 4, j, n);
        tjFree(j);
    }
}

/* tmp/tree/{train,validation}/{a,b}/N.jpg: tiny JPEGs from mpifit's encoder */
static void class_tree(void)
{
    const char *splits[] = {"train", "validation"}, *classes[] = {"a", "b"};
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < 2; c++) {
            char dir[256], path[300];
            snprintf(dir, sizeof dir, "%s/tree/%s/%s", tmp, splits[s], classes[c]);
            mkdirs(dir);
            for (int k = 0; k < 3 - s; k++) {
                uint8_t *px = pattern(8 + k, 8, 3);
                uint8_t *jpeg;
                size_t n;
                if (mf_jpeg_encode(px, 8 + k, 8, 60, &jpeg, &n) != MF_STATUS_OK)
                    die("mf_jpeg_encode");
                snprintf(path, sizeof path, "%s/%d.jpg", dir, k);
                write_bytes(path, jpeg, n, NULL, 0);
                mf_free(jpeg);
                free(px);
            }
        }
}

static mf_dataset *open_split(const char *split)
{
    char path[256];
    snprintf(path, sizeof path, "%s/tree/%s", tmp, split);
    mf_dataset *ds;
    mf_dataset_options o = mf_dataset_options_default();
    o.quiet = 1;
    if (mf_dataset_open(&ds, path, &o) != MF_STATUS_OK)
        die(path);
    return ds;
}

static void packed_seeds(char *two_splits, size_t n)
{
    mf_dataset *train = open_split("train"), *val = open_split("validation");
    char path[512];
    snprintf(path, sizeof path, "%s/packed", out);
    mkdirs(path);
    mf_pack_split one[1] = {{"train", train}}, two[2] = {{"train", train}, {"validation", val}};
    snprintf(path, sizeof path, "%s/packed/one_split.h5", out);
    if (mf_packed_write(path, one, 1) != MF_STATUS_OK)
        die(path);
    snprintf(two_splits, n, "%s/packed/train_validation.h5", out);
    if (mf_packed_write(two_splits, two, 2) != MF_STATUS_OK)
        die(two_splits);
    mf_dataset_free(train);
    mf_dataset_free(val);
}

static void copy_file(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        die(from);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(to, buf, n, NULL, 0);
}

/* checkpoints before and after two epochs of fit on the packed file, the
 * metrics file of that run, the weights */
static void model_seeds(const char *packed)
{
    char path[512], ckpt[512], metrics[512], weights[512];
    const char *dirs[] = {"keras_weights", "checkpoint", "inspect"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, dirs[i]);
        mkdirs(path);
    }
    mf_model *m = fuzz_tiny_model();
    /* the model description as train stores it (the tiny model has 3 outputs) */
    char *names[3] = {"a", "b", "c"};
    mf_model_desc desc = {"small_cnn", 1.0f, 32, 3, 0.2f, 0.9f, names};
    snprintf(weights, sizeof weights, "%s/keras_weights/tiny_model.h5", out);
    if (mf_weights_save_keras_desc(m, weights, &desc) != MF_STATUS_OK)
        die(weights);

    mf_fit_ctx *ctx = mf_fit_ctx_create(m, 3, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_ADAM);
    mf_schedule sch = {.kind = MF_SCHEDULE_COSINE, .base_lr = 0.01f, .total_steps = 100, .warmup_steps = 1};
    if (mf_compile(ctx, mf_optimizer_create(m, &oo), &sch, NULL, "accuracy") != MF_STATUS_OK)
        die("compile");
    const char *config = "[model]\narch = small_cnn\ninput_size = 32\n[train]\nepochs = 2\n";
    const char *classes[] = {"a", "b", "c"};
    mf_callback *stop = mf_early_stopping("val_loss", 0.0f, 3, "min", 0);
    mf_checkpoint_info info = {config, classes, 3, &stop, 1, &desc};
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint/untrained.h5", out);
    if (mf_checkpoint_save(ctx, ckpt, &info) != MF_STATUS_OK)
        die(ckpt);

    mf_dataset *train, *val;
    mf_dataset_options d = mf_dataset_options_default();
    d.split = "train";
    if (mf_dataset_open(&train, packed, &d) != MF_STATUS_OK)
        die(packed);
    d.split = "validation";
    if (mf_dataset_open(&val, packed, &d) != MF_STATUS_OK)
        die(packed);
    mf_loader *tl, *vl;
    mf_loader_options lo = mf_loader_options_default();
    lo.batch_size = 2;
    lo.input_size = 8;
    lo.threads = 1;
    lo.prefetch = 2;
    lo.seed = 3;
    if (mf_loader_create(&tl, train, &lo) != MF_STATUS_OK)
        die("loader");
    lo.training = 0;
    if (mf_loader_create(&vl, val, &lo) != MF_STATUS_OK)
        die("loader");
    snprintf(metrics, sizeof metrics, "%s/inspect/metrics.h5", out);
    mf_metrics_options mo = {config, classes, 3, 1, 2, -1, 0};
    mf_callback *writer = mf_metrics_h5_writer(metrics, &mo);
    mf_callback *cbs[2] = {stop, writer};
    mf_fit_options fo = mf_fit_options_default();
    fo.epochs = 2;
    fo.verbose = 0;
    fo.callbacks = cbs;
    fo.n_callbacks = 2;
    if (mf_fit(ctx, tl, vl, &fo) != MF_STATUS_OK)
        die("fit");
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint/after_2_epochs.h5", out);
    if (mf_checkpoint_save(ctx, ckpt, &info) != MF_STATUS_OK)
        die(ckpt);

    /* inspect: one file of every kind mpifit writes */
    snprintf(path, sizeof path, "%s/inspect/checkpoint.h5", out);
    copy_file(ckpt, path);
    snprintf(path, sizeof path, "%s/inspect/weights.h5", out);
    copy_file(weights, path);
    snprintf(path, sizeof path, "%s/inspect/packed.h5", out);
    copy_file(packed, path);

    mf_callback_free(writer);
    mf_callback_free(stop);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(train);
    mf_dataset_free(val);
    mf_fit_ctx_free(ctx);
    mf_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUT_DIR\n");
        return 2;
    }
    out = argv[1];
    snprintf(tmp, sizeof tmp, "/tmp/mf_seeds_XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "make_seeds: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    jpeg_seeds();
    class_tree();
    char packed[512];
    packed_seeds(packed, sizeof packed);
    model_seeds(packed);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "make_seeds: could not remove %s\n", tmp);
    printf("make_seeds: seeds written under %s\n", out);
    return 0;
}
