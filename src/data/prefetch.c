/* prefetch.c: the batch loader. Worker threads decode, augment and preprocess
 * whole batches into a bounded ring of batch buffers while the model trains, so
 * the trainer only waits when decoding is slower than training.
 *
 * Step s of the epoch always lands in slot s % n_slots. A slot goes EMPTY ->
 * FILLING (a worker claimed step s) -> READY -> held by the consumer -> EMPTY
 * when the consumer asks for the next batch. Workers claim steps in order and
 * only into EMPTY slots, so at most n_slots batches exist at once (bounded
 * memory) and batches come out in step order whatever the thread timing.
 * Every sample's augmentation comes from its own rng (augment.c), so the bytes
 * of a batch do not depend on which worker filled it.
 *
 * begin_epoch bumps a generation counter: a worker still filling a slot for the
 * previous epoch drops its result. free() sets `stop`, wakes everyone and joins,
 * at any point (mid-epoch, after an error). */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "dataset.h"
#include "jpeg.h"
#include "resize.h"
#include "augment.h"

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    mf_batch b; /* buffers sized for batch_size */
    int state;
    int step;
    uint64_t gen; /* epoch generation it was claimed in */
    int32_t *plan; /* batch_size dataset indices (-1 = padding), copied at claim */
    mf_status status; /* of filling: OK, or the failure under on_bad_image = fail */
    char err[1024];
    long images, bad;
} slot;

typedef struct worker {
    struct mf_loader *l;
    int id;
    pthread_t thread;
    mf_jpeg_decoder *dec;
    uint8_t *buf; /* file bytes, cap bytes */
    size_t cap;
    float *scratch;
    size_t scratch_floats;
} worker;

struct mf_loader {
    mf_dataset *ds;
    mf_loader_options o;
    size_t sample_floats; /* input_size^2 * 3 */
    int *idx; /* steps * batch: this rank's plan for the epoch */
    int steps, epoch;
    uint64_t gen;
    slot *slots;
    int n_slots;
    int next_fill, next_out, held;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    worker *workers;
    unsigned char *reported; /* n: bad image already reported */
    mf_loader_stats stats;
};

int mf_loader_default_threads(void)
{
    int cores = omp_get_num_procs(); /* libgomp counts the affinity mask */
    return cores >= 2 ? cores / 2 : 1;
}

mf_loader_options mf_loader_options_default(void)
{
    mf_loader_options o;
    memset(&o, 0, sizeof o);
    o.batch_size = 32;
    o.input_size = 224;
    o.training = 1;
    o.augment = 1;
    o.crop_scale_min = 0.5f;
    o.crop_ratio_max = 4.0f / 3.0f;
    o.flip = 1;
    o.drop_remainder = 0;
    o.threads = mf_loader_default_threads();
    o.prefetch = o.threads + 2;
    o.rank = 0;
    o.world = 1;
    o.seed = 1;
    o.on_bad_image = MF_BAD_IMAGE_SKIP;
    return o;
}

/* Decode, crop/flip, resize and scale sample i into x (size, size, 3). On
 * failure returns the status with the reason in mf_last_error(). */
static mf_status load_sample(worker *w, int i, float *x)
{
    struct mf_loader *l = w->l;
    const mf_loader_options *o = &l->o;
    size_t len = 0;
    MF_TRY(mf_dataset_read(l->ds, i, &w->buf, &w->cap, &len));
    int aug = o->training && o->augment;
    int side = mf_augment_decode_side(o->input_size, aug, o->crop_scale_min);
    mf_image_rgb8 img;
    MF_TRY(mf_jpeg_decode(w->dec, w->buf, len, side, side, &img));
    mf_crop crop = {0.0f, 0.0f, (float)img.w, (float)img.h};
    int flipped = 0;
    if (aug) {
        mf_rng r;
        mf_augment_rng(&r, o->seed, l->epoch, i);
        mf_augment_sample(&crop, &flipped, img.w, img.h, o->crop_scale_min, o->crop_ratio_max, o->flip, &r);
    }
    size_t need = mf_resize_scratch_floats(o->input_size, o->input_size, img.w, img.h);
    if (need > w->scratch_floats) {
        mf_free(w->scratch);
        w->scratch = mf_alloc(need * sizeof(float));
        w->scratch_floats = need;
    }
    /* MobileNetV2's preprocess_input: x / 127.5 - 1 */
    mf_resize_rgb8(x, o->input_size, o->input_size, img.rgb, img.w, img.h, crop, flipped, 1.0f / 127.5f, -1.0f,
                   w->scratch);
    return MF_STATUS_OK;
}

static void fill(worker *w, slot *sl)
{
    struct mf_loader *l = w->l;
    mf_batch *b = &sl->b;
    sl->status = MF_STATUS_OK;
    sl->err[0] = '\0';
    sl->images = sl->bad = 0;
    b->n_valid = 0;
    for (int k = 0; k < b->n; k++) {
        int i = sl->plan[k];
        float *x = b->x + (size_t)k * l->sample_floats;
        b->index[k] = i;
        if (i < 0) { /* evaluation padding */
            memset(x, 0, l->sample_floats * sizeof(float));
            b->y[k] = 0;
            b->w[k] = 0.0f;
            continue;
        }
        b->y[k] = mf_dataset_label(l->ds, i);
        mf_status s = load_sample(w, i, x);
        if (s == MF_STATUS_OK) {
            b->w[k] = 1.0f;
            b->n_valid++;
            sl->images++;
            continue;
        }
        /* a bad image: never a crash, never a silently wrong label */
        char why[768];
        mf_strlcpy(why, mf_last_error(), sizeof why);
        if (l->o.on_bad_image == MF_BAD_IMAGE_FAIL) {
            sl->status = s;
            snprintf(sl->err, sizeof sl->err, "bad image %s: %s (on_bad_image = fail)", mf_dataset_source(l->ds, i),
                     why);
            return;
        }
        memset(x, 0, l->sample_floats * sizeof(float));
        b->w[k] = 0.0f;
        sl->bad++;
        pthread_mutex_lock(&l->mu);
        int first = !l->reported[i];
        l->reported[i] = 1;
        pthread_mutex_unlock(&l->mu);
        if (first)
            mf_log_warn("skipping bad image %s: %s", mf_dataset_source(l->ds, i), why);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct mf_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        slot *sl = l->next_fill < l->steps ? &l->slots[l->next_fill % l->n_slots] : NULL;
        if (!sl || sl->state != SLOT_EMPTY) {
            pthread_cond_wait(&l->cv_work, &l->mu);
            continue;
        }
        int step = l->next_fill++;
        sl->state = SLOT_FILLING;
        sl->step = step;
        sl->gen = l->gen;
        memcpy(sl->plan, l->idx + (size_t)step * l->o.batch_size, (size_t)l->o.batch_size * sizeof *sl->plan);
        sl->b.step = step;
        pthread_mutex_unlock(&l->mu);
        fill(w, sl);
        pthread_mutex_lock(&l->mu);
        sl->state = sl->gen == l->gen ? SLOT_READY : SLOT_EMPTY;
        pthread_cond_broadcast(sl->state == SLOT_READY ? &l->cv_ready : &l->cv_work);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

mf_status mf_loader_create(mf_loader **out, mf_dataset *ds, const mf_loader_options *opt)
{
    *out = NULL;
    const mf_loader_options *o = opt;
    if (o->batch_size <= 0)
        return mf_fail(MF_STATUS_INVALID, "loader: batch_size must be > 0, got %d", o->batch_size);
    if (o->input_size < 8 || o->input_size > 4096)
        return mf_fail(MF_STATUS_INVALID, "loader: input_size must be in [8, 4096], got %d", o->input_size);
    if (o->threads < 1 || o->threads > 256)
        return mf_fail(MF_STATUS_INVALID, "loader: threads must be in [1, 256], got %d", o->threads);
    if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
        return mf_fail(MF_STATUS_INVALID, "loader: rank %d of world %d", o->rank, o->world);
    if (o->augment && !(o->crop_scale_min > 0.0f && o->crop_scale_min <= 1.0f))
        return mf_fail(MF_STATUS_INVALID, "loader: crop_scale_min must be in (0, 1], got %g",
                       (double)o->crop_scale_min);
    if (o->augment && !(o->crop_ratio_max >= 1.0f))
        return mf_fail(MF_STATUS_INVALID, "loader: crop_ratio_max must be >= 1, got %g", (double)o->crop_ratio_max);
    if (mf_dataset_size(ds) <= 0)
        return mf_fail(MF_STATUS_DATA, "loader: dataset %s is empty", ds->path);

    mf_loader *l = mf_alloc(sizeof *l);
    l->ds = ds;
    l->o = *o;
    l->n_slots = o->prefetch > o->threads ? o->prefetch : o->threads + 1;
    l->sample_floats = (size_t)o->input_size * o->input_size * 3;
    l->held = -1;
    l->reported = mf_alloc((size_t)mf_dataset_size(ds));
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_ready, NULL);
    l->slots = mf_alloc((size_t)l->n_slots * sizeof *l->slots);
    for (int s = 0; s < l->n_slots; s++) {
        slot *sl = &l->slots[s];
        sl->b.n = o->batch_size;
        sl->b.x = mf_alloc((size_t)o->batch_size * l->sample_floats * sizeof(float));
        sl->b.y = mf_alloc((size_t)o->batch_size * sizeof(int32_t));
        sl->b.w = mf_alloc((size_t)o->batch_size * sizeof(float));
        sl->b.index = mf_alloc((size_t)o->batch_size * sizeof(int32_t));
        sl->plan = mf_alloc((size_t)o->batch_size * sizeof(int32_t));
    }
    l->workers = mf_alloc((size_t)o->threads * sizeof *l->workers);
    for (int t = 0; t < o->threads; t++) {
        worker *w = &l->workers[t];
        w->l = l;
        w->id = t;
        w->dec = mf_jpeg_decoder_create();
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            mf_jpeg_decoder_free(w->dec);
            w->dec = NULL;
            l->o.threads = t; /* join only what started */
            mf_loader_free(l);
            return mf_fail(MF_STATUS_NOMEM, "loader: cannot start decoding thread %d of %d", t + 1, o->threads);
        }
    }
    *out = l;
    return MF_STATUS_OK;
}

void mf_loader_free(mf_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_cond_broadcast(&l->cv_ready);
    pthread_mutex_unlock(&l->mu);
    for (int t = 0; t < l->o.threads; t++) {
        pthread_join(l->workers[t].thread, NULL);
        mf_jpeg_decoder_free(l->workers[t].dec);
        mf_free(l->workers[t].buf);
        mf_free(l->workers[t].scratch);
    }
    for (int s = 0; s < l->n_slots; s++) {
        slot *sl = &l->slots[s];
        mf_free(sl->b.x);
        mf_free(sl->b.y);
        mf_free(sl->b.w);
        mf_free(sl->b.index);
        mf_free(sl->plan);
    }
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_ready);
    pthread_mutex_destroy(&l->mu);
    mf_free(l->slots);
    mf_free(l->workers);
    mf_free(l->reported);
    mf_free(l->idx);
    mf_free(l);
}

mf_status mf_loader_begin_epoch(mf_loader *l, int epoch) { return mf_loader_begin_epoch_at(l, epoch, 0); }

mf_status mf_loader_begin_epoch_at(mf_loader *l, int epoch, int step)
{
    const mf_loader_options *o = &l->o;
    int n = mf_dataset_size(l->ds);
    int steps = o->training ? mf_shard_train_steps(n, o->world, o->batch_size, o->drop_remainder)
                            : mf_shard_eval_steps(n, o->world, o->batch_size);
    if (steps == 0)
        return mf_fail(MF_STATUS_DATA, "%s: %d images make no full global batch of %d x %d ranks with drop_remainder",
                       l->ds->path, n, o->batch_size, o->world);
    if (step < 0 || step > steps)
        return mf_fail(MF_STATUS_INVALID, "loader: epoch %d has %d steps, cannot start at step %d", epoch, steps, step);
    int *idx = mf_alloc((size_t)steps * o->batch_size * sizeof *idx);
    if (o->training)
        mf_shard_train_indices(idx, n, o->rank, o->world, o->batch_size, o->seed, epoch, 1, o->drop_remainder);
    else
        mf_shard_eval_indices(idx, n, o->rank, o->world, o->batch_size);
    pthread_mutex_lock(&l->mu);
    l->gen++;
    for (int s = 0; s < l->n_slots; s++)
        if (l->slots[s].state == SLOT_READY)
            l->slots[s].state = SLOT_EMPTY;
    l->held = -1;
    mf_free(l->idx);
    l->idx = idx;
    l->steps = steps;
    l->epoch = epoch;
    l->next_fill = l->next_out = step;
    memset(&l->stats, 0, sizeof l->stats);
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return MF_STATUS_OK;
}

int mf_loader_steps(const mf_loader *l) { return l->steps; }

mf_status mf_loader_next(mf_loader *l, const mf_batch **out)
{
    *out = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->held >= 0) {
        l->slots[l->held].state = SLOT_EMPTY;
        l->held = -1;
        pthread_cond_broadcast(&l->cv_work);
    }
    if (l->next_out >= l->steps) {
        int steps = l->steps;
        pthread_mutex_unlock(&l->mu);
        return mf_fail(MF_STATUS_INVALID, "loader: the epoch has %d steps, all consumed (call mf_loader_begin_epoch)",
                       steps);
    }
    int k = l->next_out % l->n_slots;
    slot *sl = &l->slots[k];
    double t0 = mf_now();
    while (!(sl->state == SLOT_READY && sl->step == l->next_out && sl->gen == l->gen))
        pthread_cond_wait(&l->cv_ready, &l->mu);
    l->stats.wait_seconds += mf_now() - t0;
    l->stats.images += sl->images;
    l->stats.bad_images += sl->bad;
    l->held = k;
    l->next_out++;
    mf_status s = sl->status;
    if (s != MF_STATUS_OK)
        mf_fail(s, "%s", sl->err);
    pthread_mutex_unlock(&l->mu);
    if (s == MF_STATUS_OK)
        *out = &sl->b;
    return s;
}

mf_loader_stats mf_loader_epoch_stats(const mf_loader *l)
{
    mf_loader_stats s;
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    s = l->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
    return s;
}
