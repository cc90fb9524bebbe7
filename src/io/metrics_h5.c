/* metrics_h5.c: OUTPUT_DIR/metrics.h5 (see mpifit/checkpoint.h). Closed
 * between writes, so other programs can read it during the run; HDF5's file
 * lock keeps a reader and the writer from overlapping, and a write that finds
 * the file locked is retried at the next flush with the rows kept. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mpifit/checkpoint.h"
#include "h5util.h"
#include "../core/core.h"

#define MAX_SERIES 48

typedef struct row_buf {
    int n, cap;
    double *v; /* n rows x n_cols */
} row_buf;

typedef struct writer {
    char path[1024];
    char *config;
    char **classes;
    int n_classes, world, flush_every;
    int resume_epoch;
    long resume_step;
    int created;
    int broken; /* an H5Fclose failed (disk full): HDF5 keeps a half-closed file; never touch it again */
    /* pending rows; columns named in *_names: the 5 series of every step,
     * then each rank's time split (compute_r<r>, comm_wait_r<r>,
     * data_wait_r<r>, optimizer_r<r>) */
    int ncol;
    char (*step_names)[24];
    double *steps; /* pending step rows x ncol */
    int n_steps, cap_steps;
    long step_row0; /* file row of the first pending step row */
    mf_logs epochs[64]; /* pending epoch rows (epoch, logs, lr, images_per_s, wall_time) */
    int epoch_row[64];
    int n_epochs;
    double t0, wall0; /* process clock at train begin; wall time already in the file */
    int warned;
} writer;

static const char *units_of(const char *name)
{
    if (strcmp(name, "images_per_s") == 0)
        return "images/s";
    if (strcmp(name, "wall_time") == 0 || strcmp(name, "step_time") == 0 || strcmp(name, "data_wait") == 0)
        return "s";
    static const char *const split[] = {"compute_r", "comm_wait_r", "data_wait_r", "optimizer_r"};
    for (int k = 0; k < 4; k++)
        if (strncmp(name, split[k], strlen(split[k])) == 0)
            return "s";
    if (strcmp(name, "epoch") == 0)
        return "epoch (0-based)";
    if (strcmp(name, "global_step") == 0)
        return "optimizer steps (1-based)";
    return "1";
}

/* Open (or create) dataset group/name, 1-D extendible float64 filled with NaN. */
static hid_t series(hid_t f, const char *group, const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", group, name);
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0) {
        hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0)
            return -1;
        H5Gclose(g);
    }
    if (H5Lexists(f, p, H5P_DEFAULT) > 0)
        return H5Dopen2(f, p, H5P_DEFAULT);
    hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = 1024;
    hid_t sp = H5Screate_simple(1, &zero, &unlimited);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, &chunk);
    double nan = NAN;
    H5Pset_fill_value(pl, H5T_NATIVE_DOUBLE, &nan);
    hid_t d = H5Dcreate2(f, p, H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Pclose(pl);
    H5Sclose(sp);
    if (d >= 0) {
        const char *u = units_of(name);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(u) + 1);
        hid_t as = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(d, "units", t, as, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            H5Awrite(a, t, u);
            H5Aclose(a);
        }
        H5Sclose(as);
        H5Tclose(t);
    }
    return d;
}

/* rows of a series (one axis; 0 for anything else) */
static hsize_t rows_of(hid_t d)
{
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    if (mf_h5_dims(sp, 1, &n) != 1)
        n = 0;
    H5Sclose(sp);
    return n;
}

/* v at row `row` of dataset d, growing it as needed. */
static herr_t put(hid_t d, hsize_t row, double v)
{
    hsize_t n = rows_of(d);
    if (row >= n) {
        hsize_t grow = row + 1;
        if (H5Dset_extent(d, &grow) < 0)
            return -1;
    }
    hid_t fs = H5Dget_space(d);
    hsize_t one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &row, NULL, &one, NULL);
    herr_t e = H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &v);
    H5Sclose(ms);
    H5Sclose(fs);
    return e;
}

/* Cut every dataset of group to `keep` rows. */
static void truncate_group(hid_t f, const char *group, hsize_t keep)
{
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0)
        return;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    hsize_t nl = g >= 0 ? mf_h5_num_links(g) : 0;
    for (hsize_t i = 0; i < nl; i++) {
        char name[64];
        if (mf_h5_link_name(g, i, name, sizeof name) < 0)
            break;
        hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
        if (d >= 0 && rows_of(d) > keep)
            H5Dset_extent(d, &keep);
        if (d >= 0)
            H5Dclose(d);
    }
    if (g >= 0)
        H5Gclose(g);
}

/* the value of the last row of group/name, or NaN */
static double last_value(hid_t f, const char *path)
{
    if (H5Lexists(f, "epoch", H5P_DEFAULT) <= 0 || H5Lexists(f, path, H5P_DEFAULT) <= 0)
        return NAN;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    hsize_t n = rows_of(d);
    double v = NAN;
    hid_t t = H5Dget_type(d);
    int number = mf_h5_is_number(t, H5T_FLOAT); /* no conversion from a forged type */
    if (t >= 0)
        H5Tclose(t);
    if (n > 0 && number) {
        hid_t fs = H5Dget_space(d);
        hsize_t one = 1, at = n - 1;
        hid_t ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL);
        H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &v);
        H5Sclose(ms);
        H5Sclose(fs);
    }
    H5Dclose(d);
    return v;
}

static herr_t root_attrs(hid_t f, const writer *w)
{
    herr_t e = mf_h5_put_string(f, "format", "mpifit-metrics", 0);
    e |= mf_h5_put_string(f, "config", w->config ? w->config : "", 0);
    e |= mf_h5_put_string(f, "mpifit_version", mf_version(), 0);
    e |= mf_h5_put_i64(f, "world_size", w->world);
    e |= mf_h5_put_strings(f, "class_names", (const char *const *)w->classes, w->n_classes, 0);
    return e < 0 ? -1 : 0;
}

/* Open the file for writing, waiting a little for a reader's lock. */
static hid_t open_rw(const char *path)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        if (f >= 0)
            return f;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static mf_status flush_locked(writer *w)
{
    char err[256];
    hid_t f;
    if (!w->created) {
        if (w->resume_epoch >= 0 && access(w->path, F_OK) == 0) {
            f = open_rw(w->path);
            if (f < 0)
                return mf_fail(MF_STATUS_IO, "metrics %s: cannot reopen to continue it: %s", w->path,
                               mf_h5_error(err, sizeof err));
            /* back to the checkpoint: rows written after it are redone */
            truncate_group(f, "epoch", (hsize_t)w->resume_epoch);
            truncate_group(f, "step", (hsize_t)w->resume_step);
            double wall = last_value(f, "epoch/wall_time");
            w->wall0 = isnan(wall) ? 0.0 : wall;
        } else {
            f = H5Fcreate(w->path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
            if (f < 0)
                return mf_fail(MF_STATUS_IO, "metrics %s: cannot create: %s", w->path, mf_h5_error(err, sizeof err));
            if (root_attrs(f, w) < 0) {
                H5Fclose(f);
                return mf_fail(MF_STATUS_HDF5, "metrics %s: attributes: %s", w->path, mf_h5_error(err, sizeof err));
            }
        }
        w->created = 1;
    } else {
        f = open_rw(w->path);
        if (f < 0)
            return mf_fail(MF_STATUS_IO, "metrics %s: cannot open (locked by a reader?): %s", w->path,
                           mf_h5_error(err, sizeof err));
    }
    herr_t e = 0;
    for (int c = 0; c < w->ncol && w->n_steps > 0; c++) {
        hid_t d = series(f, "step", w->step_names[c]);
        for (int r = 0; r < w->n_steps && d >= 0 && e >= 0; r++)
            e = put(d, (hsize_t)(w->step_row0 + r), w->steps[(size_t)r * w->ncol + c]);
        if (d >= 0)
            H5Dclose(d);
        else
            e = -1;
    }
    for (int r = 0; r < w->n_epochs && e >= 0; r++)
        for (int i = 0; i < w->epochs[r].n && e >= 0; i++) {
            hid_t d = series(f, "epoch", w->epochs[r].name[i]);
            e = d < 0 ? -1 : put(d, (hsize_t)w->epoch_row[r], w->epochs[r].value[i]);
            if (d >= 0)
                H5Dclose(d);
        }
    if (H5Fclose(f) < 0) {
        w->broken = 1;
        return mf_fail(MF_STATUS_HDF5,
                       "metrics %s: closing it failed (%s); HDF5 leaves such a file half-closed, so no more rows go "
                       "to it in this run (the checkpoints keep the epoch history)",
                       w->path, mf_h5_error(err, sizeof err));
    }
    if (e < 0)
        return mf_fail(MF_STATUS_HDF5, "metrics %s: writing rows: %s", w->path, mf_h5_error(err, sizeof err));
    w->step_row0 += w->n_steps;
    w->n_steps = 0;
    w->n_epochs = 0;
    return MF_STATUS_OK;
}

mf_status mf_metrics_h5_flush(mf_callback *cb)
{
    writer *w = cb->user;
    if (w->broken)
        return MF_STATUS_OK; /* said once, when it happened */
    mf_h5_lock();
    mf_status s = flush_locked(w);
    mf_h5_unlock();
    if (s != MF_STATUS_OK && !w->warned++)
        mf_log_warn("%s%s", mf_last_error(), w->broken ? "" : " (the rows are kept and written at the next flush)");
    if (s == MF_STATUS_OK)
        w->warned = 0;
    return s;
}

static mf_status on_train_begin(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)logs;
    writer *w = cb->user;
    w->t0 = mf_now();
    w->step_row0 = w->resume_epoch >= 0 ? w->resume_step : mf_fit_global_step(ctx);
    mf_metrics_h5_flush(cb); /* create or cut back now, so readers see it from the start */
    return MF_STATUS_OK;
}

static mf_status on_batch_end(mf_callback *cb, mf_fit_ctx *ctx, int step, mf_logs *logs)
{
    (void)step;
    writer *w = cb->user;
    w->steps = mf_grow(w->steps, w->n_steps, &w->cap_steps, 256, (size_t)w->ncol * sizeof *w->steps);
    double loss = NAN;
    mf_logs_get(logs, "loss", &loss);
    double *row = w->steps + (size_t)w->n_steps++ * w->ncol;
    /* the rate of the step just taken: the schedule at the step before */
    row[0] = (double)mf_fit_global_step(ctx);
    row[1] = loss;
    row[2] = mf_fit_learning_rate(ctx);
    row[3] = mf_fit_last_step_seconds(ctx);
    row[4] = mf_fit_last_wait_seconds(ctx);
    /* every rank's split (NaN if the run's ranks are not the file's) */
    const double *t;
    int nr = mf_fit_rank_times(ctx, &t);
    for (int c = 5; c < w->ncol; c++)
        row[c] = nr == w->world ? t[c - 5] : NAN;
    if (w->n_steps >= w->flush_every)
        mf_metrics_h5_flush(cb);
    return MF_STATUS_OK;
}

static mf_status on_epoch_end(mf_callback *cb, mf_fit_ctx *ctx, int epoch, mf_logs *logs)
{
    writer *w = cb->user;
    if (w->n_epochs == 64)
        mf_metrics_h5_flush(cb);
    if (w->n_epochs < 64) {
        mf_logs *r = &w->epochs[w->n_epochs];
        mf_logs_clear(r);
        mf_logs_set(r, "epoch", epoch);
        for (int i = 0; i < logs->n; i++)
            mf_logs_set(r, logs->name[i], logs->value[i]);
        if (!mf_logs_get(r, "lr", NULL))
            mf_logs_set(r, "lr", mf_fit_learning_rate(ctx));
        mf_logs_set(r, "images_per_s", mf_fit_last_epoch_images_per_s(ctx));
        mf_logs_set(r, "wall_time", w->wall0 + mf_now() - w->t0);
        w->epoch_row[w->n_epochs++] = epoch;
    }
    mf_metrics_h5_flush(cb);
    return MF_STATUS_OK;
}

static mf_status on_train_end(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)ctx;
    (void)logs;
    mf_metrics_h5_flush(cb);
    return MF_STATUS_OK;
}

static void destroy(mf_callback *cb)
{
    writer *w = cb->user;
    for (int i = 0; i < w->n_classes; i++)
        mf_free(w->classes[i]);
    mf_free(w->classes);
    mf_free(w->config);
    mf_free(w->steps);
    mf_free(w->step_names);
    mf_free(w);
    mf_free(cb);
}

mf_callback *mf_metrics_h5_writer(const char *path, const mf_metrics_options *o)
{
    mf_callback *cb = mf_alloc(sizeof *cb);
    writer *w = mf_alloc(sizeof *w);
    mf_strlcpy(w->path, path, sizeof w->path);
    w->config = mf_strdup(o && o->config_text ? o->config_text : "");
    w->n_classes = o && o->class_names ? o->n_classes : 0;
    w->classes = mf_alloc((size_t)(w->n_classes ? w->n_classes : 1) * sizeof *w->classes);
    for (int i = 0; i < w->n_classes; i++)
        w->classes[i] = mf_strdup(o->class_names[i]);
    w->world = o ? o->world_size : 1;
    w->flush_every = o && o->flush_every > 0 ? o->flush_every : 100;
    w->resume_epoch = o ? o->resume_epoch : -1;
    w->resume_step = o ? o->resume_step : 0;
    const char *names[5] = {"global_step", "loss", "lr", "step_time", "data_wait"};
    static const char *const split[4] = {"compute", "comm_wait", "data_wait", "optimizer"};
    w->ncol = 5 + 4 * (w->world > 0 ? w->world : 1);
    w->step_names = mf_alloc((size_t)w->ncol * sizeof *w->step_names);
    for (int c = 0; c < 5; c++)
        mf_strlcpy(w->step_names[c], names[c], sizeof w->step_names[c]);
    for (int c = 5; c < w->ncol; c++)
        snprintf(w->step_names[c], sizeof w->step_names[c], "%s_r%d", split[(c - 5) % 4], (c - 5) / 4);
    cb->name = "MetricsH5";
    cb->user = w;
    cb->on_train_begin = on_train_begin;
    cb->on_train_batch_end = on_batch_end;
    cb->on_epoch_end = on_epoch_end;
    cb->on_train_end = on_train_end;
    cb->destroy = destroy;
    return cb;
}
