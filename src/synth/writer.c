/* writer.c: the synthetic beans dataset as a class-folder tree of JPEGs
 * (train/, validation/, test/ x angular_leaf_spot/, bean_rust/, healthy/),
 * drawn by render.c. Every image depends on (seed, split, index) only, so the
 * tree is the same bytes for any thread count. The images go over the
 * library's OpenMP threads; files through mf_write_file (temporary + rename)
 * and folders through mf_mkdir_p. */
#include <stdio.h>
#include <string.h>
#include "../core/core.h"
#include "../data/jpeg.h"
#include "synthetic.h"

#define MF_SYNTH_PATH_MAX 4096

enum { N_SPLITS = 3 };
static const char *const split_names[N_SPLITS] = {"train", "validation", "test"};

/* What every image's job needs: a job is one image. */
typedef struct writer {
    const char *out_dir;
    const mf_synth_options *opt;
    int count[N_SPLITS]; /* images per split */
    int total;
    int digits; /* of the number in the file names */
} writer;

static mf_status write_one(writer *w, int job, uint8_t *rgb8)
{
    int split = 0, i = job;
    while (i >= w->count[split]) {
        i -= w->count[split];
        split++;
    }
    int label = i % MF_SYNTH_NUM_CLASSES;
    const char *cls = mf_synth_class_names[label];
    char path[MF_SYNTH_PATH_MAX];
    int len = snprintf(path, sizeof path, "%s/%s/%s/%s_%0*d.jpg", w->out_dir, split_names[split], cls, cls, w->digits,
                       i / MF_SYNTH_NUM_CLASSES);
    if (len < 0 || (size_t)len >= sizeof path)
        return mf_fail(MF_STATUS_INVALID, "output path too long under '%.64s'", w->out_dir);
    /* the image's seed depends on (seed, split, i) only, never on which thread
     * or in which order it is drawn */
    mf_rng r;
    mf_rng_seed2(&r, w->opt->seed, (uint64_t)split << 32 | (uint64_t)i);
    mf_synth_draw(rgb8, w->opt->size, label, mf_rng_u64(&r));
    uint8_t *jpg = NULL;
    size_t jlen = 0;
    mf_status s = mf_jpeg_encode(rgb8, w->opt->size, w->opt->size, w->opt->quality, &jpg, &jlen);
    if (s != MF_STATUS_OK)
        return mf_fail(s, "%s: %s", path, mf_last_error());
    s = mf_write_file(path, jpg, jlen);
    mf_free(jpg);
    return s;
}

mf_status mf_synth_write_dataset(const char *out_dir, const mf_synth_options *opt, int threads)
{
    MF_ASSERT(out_dir && opt);
    if (out_dir[0] == '\0')
        return mf_fail(MF_STATUS_INVALID, "synthetic dataset: the output directory is empty");
    if (opt->n_train < 0 || opt->n_validation < 0 || opt->n_test < 0)
        return mf_fail(MF_STATUS_INVALID,
                       "synthetic dataset: image counts must be >= 0, got train %d, "
                       "validation %d, test %d",
                       opt->n_train, opt->n_validation, opt->n_test);
    if (opt->size < MF_SYNTH_MIN_SIZE || opt->size > MF_SYNTH_MAX_SIZE)
        return mf_fail(MF_STATUS_INVALID, "synthetic dataset: size must be %d..%d pixels, got %d", MF_SYNTH_MIN_SIZE,
                       MF_SYNTH_MAX_SIZE, opt->size);
    if (opt->quality < 1 || opt->quality > 100)
        return mf_fail(MF_STATUS_INVALID, "synthetic dataset: JPEG quality must be 1..100, got %d", opt->quality);
    if (threads < 1)
        return mf_fail(MF_STATUS_INVALID, "synthetic dataset: threads must be >= 1, got %d", threads);

    writer w;
    memset(&w, 0, sizeof w);
    w.out_dir = out_dir;
    w.opt = opt;
    w.count[0] = opt->n_train;
    w.count[1] = opt->n_validation;
    w.count[2] = opt->n_test;
    int most = 0;
    for (int s = 0; s < N_SPLITS; s++) {
        if (w.count[s] > INT32_MAX - w.total)
            return mf_fail(MF_STATUS_INVALID, "synthetic dataset: too many images");
        w.total += w.count[s];
        if (w.count[s] > most)
            most = w.count[s];
    }
    /* four digits, more when a class holds 10000 images or more, so that the
     * names of one folder always sort in number order */
    w.digits = 4;
    for (int m = (most - 1) / MF_SYNTH_NUM_CLASSES; m >= 10000; m /= 10)
        w.digits++;

    MF_TRY(mf_mkdir_p(out_dir));
    for (int s = 0; s < N_SPLITS; s++) {
        if (s == 2 && opt->n_test == 0)
            continue;
        for (int c = 0; c < MF_SYNTH_NUM_CLASSES; c++) {
            char dir[MF_SYNTH_PATH_MAX];
            int len = snprintf(dir, sizeof dir, "%s/%s/%s", out_dir, split_names[s], mf_synth_class_names[c]);
            if (len < 0 || (size_t)len >= sizeof dir)
                return mf_fail(MF_STATUS_INVALID, "output path too long under '%.64s'", out_dir);
            MF_TRY(mf_mkdir_p(dir));
        }
    }

    /* images over the library's threads; the first failure stops the rest
     * (a job already started finishes) and its message is handed back */
    if (threads > w.total)
        threads = w.total > 0 ? w.total : 1;
    mf_status status = MF_STATUS_OK;
    char msg[1024] = "";
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        uint8_t *rgb8 = mf_alloc((size_t)opt->size * opt->size * 3);
#pragma omp for schedule(dynamic, 1)
        for (int job = 0; job < w.total; job++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop)
                continue;
            mf_status s = write_one(&w, job, rgb8);
            if (s != MF_STATUS_OK) {
#pragma omp critical(mf_synth_failure)
                {
                    if (status == MF_STATUS_OK) {
                        status = s;
                        mf_strlcpy(msg, mf_last_error(), sizeof msg); /* thread-local: copy it out */
                    }
                }
#pragma omp atomic write
                failed = 1;
            }
        }
        mf_free(rgb8);
    }
    if (status != MF_STATUS_OK)
        return mf_fail(status, "%s", msg);
    return MF_STATUS_OK;
}
