/* checkpoint_h5.c: checkpoints (see mpifit/checkpoint.h for the layout).
 *
 * Save and load are collective: the ranks' parts (rng streams, running metric
 * sums) are gathered or scattered with one call each, and only rank 0 touches
 * the file. Every HDF5 call holds mf_h5_lock(). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit/checkpoint.h"
#include "h5util.h"
#include "keras_io.h"
#include "../train/fit_internal.h"

#define CKPT_FORMAT "mpifit-checkpoint"

/* ---- small attribute helpers ------------------------------------------------ */

static herr_t attr_write(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return e;
}
static herr_t attr_i64(hid_t o, const char *n, int64_t v) { return attr_write(o, n, H5T_NATIVE_INT64, &v); }
static herr_t attr_f64(hid_t o, const char *n, double v) { return attr_write(o, n, H5T_NATIVE_DOUBLE, &v); }

static herr_t attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    herr_t e = attr_write(obj, name, t, &v);
    H5Tclose(t);
    return e;
}

static herr_t attr_strings(hid_t obj, const char *name, const char *const *v, int n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hsize_t d = (hsize_t)n;
    hid_t sp = n ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_NULL);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : (n ? H5Awrite(a, t, v) : 0);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return e;
}

/* one element of the attribute's class, or -1 (an attribute with several
 * elements would overflow v) */
static int attr_read(hid_t obj, const char *name, hid_t type, void *v) { return mf_h5_attr_scalar(obj, name, type, v); }

static int64_t get_i64(hid_t o, const char *n, int *bad)
{
    int64_t v = 0;
    if (attr_read(o, n, H5T_NATIVE_INT64, &v) < 0)
        *bad = 1;
    return v;
}

static double get_f64(hid_t o, const char *n, int *bad)
{
    double v = 0;
    if (attr_read(o, n, H5T_NATIVE_DOUBLE, &v) < 0)
        *bad = 1;
    return v;
}

static herr_t dataset_write(hid_t loc, const char *name, hid_t mem, hid_t file, int rank, const hsize_t *dims,
                            const void *v)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = mf_h5_checked_dcpl(rank, dims);
    hid_t d = H5Dcreate2(loc, name, file, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0)
        H5Dclose(d);
    mf_h5_dcpl_close(dcpl);
    H5Sclose(sp);
    return e;
}

/* n elements of dataset `name` into v (which holds exactly n), or -1 if the
 * dataset is missing or of another size */
static int dataset_read(hid_t loc, const char *name, hid_t mem, void *v, hssize_t n)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t sp = H5Dget_space(d);
    hssize_t have = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    herr_t e = have == n ? H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
    H5Dclose(d);
    return e < 0 ? -1 : 0;
}

/* ---- what each rank contributes ------------------------------------------------ */

/* rng (4 x u64 as doubles' bits would lose nothing, but keep them as u64) and
 * the running metric sums */
typedef struct rank_part {
    uint64_t rng[4];
    double metrics[2 * MF_MAX_TRACKED];
} rank_part;

static void my_part(const mf_fit_ctx *ctx, rank_part *p)
{
    memset(p, 0, sizeof *p);
    memcpy(p->rng, ctx->rng.s, sizeof p->rng);
    for (int i = 0; i < ctx->n_tracked; i++) {
        p->metrics[2 * i] = ctx->tracked[i]->total;
        p->metrics[2 * i + 1] = ctx->tracked[i]->count;
    }
}

/* ---- save ---------------------------------------------------------------------- */

static mf_status write_file(mf_fit_ctx *ctx, hid_t f, const char *what, const mf_checkpoint_info *info,
                            const rank_part *parts, int world)
{
    char err[256];
    mf_model *m = ctx->model;
    int bad = 0;
    int step = 0, epoch = mf_fit_position(ctx, &step);
    bad |= attr_str(f, "format", CKPT_FORMAT) < 0;
    bad |= attr_i64(f, "format_version", 1) < 0;
    bad |= attr_str(f, "mpifit_version", mf_version()) < 0;
    bad |= attr_i64(f, "world_size", world) < 0;
    bad |= attr_i64(f, "epoch", epoch) < 0;
    bad |= attr_i64(f, "step_in_epoch", step) < 0;
    bad |= attr_i64(f, "global_step", ctx->global_step) < 0;
    bad |= attr_i64(f, "data_epoch", ctx->data_epoch) < 0;
    bad |= attr_i64(f, "data_step", ctx->data_step) < 0;
    bad |= attr_i64(f, "data_started", ctx->data_started) < 0;
    bad |= attr_i64(f, "seed", (int64_t)ctx->seed) < 0;
    bad |= attr_str(f, "config", info && info->config_text ? info->config_text : "") < 0;
    bad |= attr_strings(f, "class_names", info ? info->class_names : NULL,
                        info && info->class_names ? info->n_classes : 0) < 0;
    if (bad)
        return mf_fail(MF_STATUS_HDF5, "writing attributes of %s: %s", what, mf_h5_error(err, sizeof err));

    hid_t g = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    mf_status s = g < 0 ? mf_fail(MF_STATUS_HDF5, "%s: %s", what, mf_h5_error(err, sizeof err))
                        : mf_keras_write_group(g, m, what);
    if (g >= 0)
        H5Gclose(g);
    MF_TRY(s);

    /* optimizer: kind, hyper-parameters, iterations, one dataset per buffer */
    g = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return mf_fail(MF_STATUS_HDF5, "%s: %s", what, mf_h5_error(err, sizeof err));
    if (ctx->opt) {
        const mf_optimizer_options *o = mf_optimizer_options_of(ctx->opt);
        bad |= attr_str(g, "kind", o->kind == MF_OPT_ADAM ? "adam" : "sgd") < 0;
        bad |= attr_i64(g, "iterations", mf_optimizer_iterations(ctx->opt)) < 0;
        bad |= attr_f64(g, "momentum", o->momentum) < 0 || attr_i64(g, "nesterov", o->nesterov) < 0;
        bad |= attr_f64(g, "beta1", o->beta1) < 0 || attr_f64(g, "beta2", o->beta2) < 0;
        bad |= attr_f64(g, "epsilon", o->epsilon) < 0 || attr_f64(g, "weight_decay", o->weight_decay) < 0;
        float *bufs[2];
        const char *names[2];
        int nb = mf_optimizer_state(ctx->opt, bufs, names);
        hsize_t np = mf_model_num_params(m) ? mf_model_num_params(m) : 1;
        for (int i = 0; i < nb && !bad; i++)
            bad |= dataset_write(g, names[i], H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, &np, bufs[i]) < 0;
    } else {
        bad |= attr_str(g, "kind", "none") < 0;
    }
    H5Gclose(g);

    g = H5Gcreate2(f, "schedule", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= g < 0;
    if (g >= 0) {
        const mf_schedule *sc = &ctx->schedule;
        bad |= attr_i64(g, "kind", sc->kind) < 0 || attr_f64(g, "base_lr", sc->base_lr) < 0;
        bad |= attr_i64(g, "warmup_steps", sc->warmup_steps) < 0 || attr_i64(g, "total_steps", sc->total_steps) < 0;
        bad |= attr_f64(g, "decay_rate", sc->decay_rate) < 0 || attr_i64(g, "decay_steps", sc->decay_steps) < 0;
        bad |= attr_f64(g, "lr_override", ctx->lr_override) < 0; /* NaN: none */
        H5Gclose(g);
    }

    /* every rank's part */
    g = H5Gcreate2(f, "ranks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= g < 0;
    if (g >= 0) {
        uint64_t *rng = mf_alloc((size_t)world * 4 * sizeof *rng);
        int nm = 2 * ctx->n_tracked;
        double *met = mf_alloc((size_t)world * (nm ? nm : 1) * sizeof *met);
        for (int r = 0; r < world; r++) {
            memcpy(rng + (size_t)r * 4, parts[r].rng, 4 * sizeof *rng);
            for (int k = 0; k < nm; k++)
                met[(size_t)r * nm + k] = parts[r].metrics[k];
        }
        hsize_t d2[2] = {(hsize_t)world, 4};
        bad |= dataset_write(g, "rng", H5T_NATIVE_UINT64, H5T_STD_U64LE, 2, d2, rng) < 0;
        if (nm) {
            hsize_t dm[2] = {(hsize_t)world, (hsize_t)nm};
            bad |= dataset_write(g, "metrics", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dm, met) < 0;
        }
        const char *mn[MF_MAX_TRACKED];
        for (int i = 0; i < ctx->n_tracked; i++)
            mn[i] = ctx->tracked[i]->name;
        bad |= attr_strings(g, "metric_names", mn, ctx->n_tracked) < 0;
        mf_free(rng);
        mf_free(met);
        H5Gclose(g);
    }

    /* history: the union of the names, NaN where an epoch did not log one */
    if (ctx->n_history > 0 && !bad) {
        const char *names[MF_LOGS_MAX * 2];
        int nn = 0;
        for (int e = 0; e < ctx->n_history; e++)
            for (int i = 0; i < ctx->history[e].n && nn < MF_LOGS_MAX * 2; i++) {
                int seen = 0;
                for (int k = 0; k < nn; k++)
                    seen |= strcmp(names[k], ctx->history[e].name[i]) == 0;
                if (!seen)
                    names[nn++] = ctx->history[e].name[i];
            }
        double *h = mf_alloc((size_t)ctx->n_history * (nn ? nn : 1) * sizeof *h);
        for (int e = 0; e < ctx->n_history; e++)
            for (int k = 0; k < nn; k++) {
                double v = NAN;
                mf_logs_get(&ctx->history[e], names[k], &v);
                h[(size_t)e * nn + k] = v;
            }
        hsize_t dh[2] = {(hsize_t)ctx->n_history, (hsize_t)nn};
        bad |= dataset_write(f, "history", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dh, h) < 0;
        hid_t d = H5Dopen2(f, "history", H5P_DEFAULT);
        if (d >= 0) {
            bad |= attr_strings(d, "names", names, nn) < 0;
            H5Dclose(d);
        }
        mf_free(h);
    }

    if (info && info->n_callbacks > 0 && !bad) {
        g = H5Gcreate2(f, "callbacks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (int i = 0; g >= 0 && i < info->n_callbacks; i++) {
            mf_callback *cb = info->callbacks[i];
            double v[16];
            int n = cb->get_state && cb->name ? cb->get_state(cb, v, 16) : 0;
            hsize_t d = (hsize_t)n;
            if (n > 0)
                bad |= dataset_write(g, cb->name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &d, v) < 0;
        }
        if (g >= 0)
            H5Gclose(g);
    }
    if (bad)
        return mf_fail(MF_STATUS_HDF5, "writing %s: %s", what, mf_h5_error(err, sizeof err));
    /* last: a file without this is a crash's leftover, never a checkpoint */
    if (attr_i64(f, "complete", 1) < 0)
        return mf_fail(MF_STATUS_HDF5, "writing %s: %s", what, mf_h5_error(err, sizeof err));
    return MF_STATUS_OK;
}

mf_status mf_checkpoint_save(mf_fit_ctx *ctx, const char *path, const mf_checkpoint_info *info)
{
    int world = ctx->comm ? mf_comm_size(ctx->comm) : 1;
    MF_TRY(mf_fit_average_state(ctx));
    rank_part mine, *parts = mf_alloc((size_t)world * sizeof *parts);
    my_part(ctx, &mine);
    mf_status s = MF_STATUS_OK;
    if (world > 1)
        s = mf_comm_allgather_bytes(ctx->comm, &mine, sizeof mine, parts);
    else
        parts[0] = mine;
    if (s == MF_STATUS_OK && ctx->rank == 0) {
        char err[256];
        mf_h5_lock();
        hid_t f = mf_h5_mem_create(path);
        if (f < 0)
            s = mf_fail(MF_STATUS_HDF5, "checkpoint %s: %s", path, mf_h5_error(err, sizeof err));
        else
            s = mf_h5_mem_commit(f, path, write_file(ctx, f, path, info, parts, world));
        mf_h5_unlock();
        if (s != MF_STATUS_OK) {
            char why[900];
            mf_strlcpy(why, mf_last_error(), sizeof why);
            s = mf_fail(s, "%s; no checkpoint written, the earlier ones are untouched", why);
        }
    }
    mf_free(parts);
    return mf_fit_agree(ctx, s);
}

/* ---- check, find ------------------------------------------------------------------- */

static mf_status open_checked(const char *path, hid_t *out, mf_checkpoint_summary *sum)
{
    char err[256];
    *out = H5I_INVALID_HID;
    hid_t f = mf_h5_open_read(path);
    if (f < 0)
        return mf_fail(MF_STATUS_DATA, "%s is not a readable HDF5 file (truncated or corrupt?): %s", path,
                       mf_h5_error(err, sizeof err));
    char *fmt = NULL;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    int ok = attr_read(f, "format", t, &fmt) == 0 && fmt && strcmp(fmt, CKPT_FORMAT) == 0;
    if (fmt)
        H5free_memory(fmt);
    H5Tclose(t);
    if (!ok) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s is not an mpifit checkpoint (no format = \"%s\")", path, CKPT_FORMAT);
    }
    int bad = 0;
    int64_t complete = get_i64(f, "complete", &bad);
    if (bad || complete != 1) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s is incomplete (its writer stopped before the end)", path);
    }
    int64_t version = get_i64(f, "format_version", &bad);
    if (version != 1) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s has checkpoint format version %lld; this mpifit reads version 1", path,
                       (long long)version);
    }
    if (sum) {
        sum->epoch = (int)get_i64(f, "epoch", &bad);
        sum->step_in_epoch = (int)get_i64(f, "step_in_epoch", &bad);
        sum->global_step = (long)get_i64(f, "global_step", &bad);
        sum->world_size = (int)get_i64(f, "world_size", &bad);
    }
    if (bad) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s lacks its position attributes (epoch, step, world_size)", path);
    }
    *out = f;
    return MF_STATUS_OK;
}

/* Read every dataset of a file once: HDF5 checks each one's Fletcher-32
 * checksum as it reads (mf_h5_checked_dcpl), so a flipped or zeroed byte
 * fails here, naming the dataset. */
typedef struct verify {
    char bad[200];
} verify;

static herr_t verify_dataset(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    verify *v = data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
    if (d < 0) {
        snprintf(v->bad, sizeof v->bad, "dataset %s cannot be opened", name);
        return 1;
    }
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t esz = H5Tget_size(t);
    herr_t e = 0;
    if (n > 0 && esz > 0 && H5Tget_class(t) != H5T_STRING && (size_t)n <= ((size_t)1 << 40) / esz) {
        void *buf = mf_alloc_uninit((size_t)n * esz);
        e = H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        mf_free(buf);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    if (e < 0) {
        snprintf(v->bad, sizeof v->bad, "dataset %s fails its checksum (damaged bytes)", name);
        return 1;
    }
    return 0;
}

mf_status mf_checkpoint_check(const char *path, mf_checkpoint_summary *out)
{
    mf_h5_lock();
    hid_t f;
    mf_status s = open_checked(path, &f, out);
    if (s == MF_STATUS_OK) {
        verify v = {""};
        if (H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, verify_dataset, &v) != 0 || v.bad[0])
            s = mf_fail(MF_STATUS_DATA, "%s: %s", path, v.bad[0] ? v.bad : "its objects cannot be listed (damaged)");
        H5Fclose(f);
    }
    mf_h5_unlock();
    return s;
}

typedef struct cand {
    char name[256];
    long epoch, step;
} cand;

static int by_position_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->epoch != y->epoch)
        return x->epoch < y->epoch ? 1 : -1;
    return x->step < y->step ? 1 : x->step > y->step ? -1 : 0;
}

mf_status mf_checkpoint_latest(const char *dir, char *path, size_t n)
{
    DIR *d = opendir(dir);
    if (!d)
        return mf_fail(MF_STATUS_IO, "no checkpoints: cannot open %s: %s", dir, strerror(errno));
    cand *c = NULL;
    int nc = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long ep, st;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%ld-%ld.h%7s", &ep, &st, tail) != 3 || strcmp(tail, "5") != 0)
            continue;
        c = mf_grow(c, nc, &cap, 16, sizeof *c);
        mf_strlcpy(c[nc].name, e->d_name, sizeof c[nc].name);
        c[nc].epoch = ep;
        c[nc].step = st;
        nc++;
    }
    closedir(d);
    if (nc > 1)
        qsort(c, (size_t)nc, sizeof *c, by_position_desc);
    mf_status s = mf_fail(MF_STATUS_IO, "no complete checkpoint (ckpt-EPOCH-STEP.h5) in %s", dir);
    for (int i = 0; i < nc; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, c[i].name);
        if (mf_checkpoint_check(p, NULL) == MF_STATUS_OK) {
            mf_strlcpy(path, p, n);
            s = MF_STATUS_OK;
            break;
        }
        mf_log_warn("skipping checkpoint: %s; trying an older one", mf_last_error());
    }
    if (s != MF_STATUS_OK && nc > 0)
        s = mf_fail(MF_STATUS_IO, "none of the %d checkpoints in %s is complete and readable", nc, dir);
    mf_free(c);
    return s;
}

/* ---- load ----------------------------------------------------------------------------- */

/* What rank 0 reads besides the model and optimizer buffers; broadcast as bytes. */
typedef struct loaded {
    int32_t status;
    int32_t epoch, step, epoch_done, data_epoch, data_step, data_started, world;
    int64_t global_step, iterations;
    float lr_override;
    mf_schedule schedule;
    int32_t n_history;
    int32_t n_cb;
    char cb_name[8][32];
    double cb_state[8][16];
    int32_t cb_len[8];
    int32_t n_metrics;
} loaded;

static mf_status read_file(mf_fit_ctx *ctx, hid_t f, const char *path, loaded *L, uint64_t **rng_table,
                           double **met_table, mf_logs **history)
{
    char err[256];
    int bad = 0;
    L->epoch = (int32_t)get_i64(f, "epoch", &bad);
    L->step = (int32_t)get_i64(f, "step_in_epoch", &bad);
    L->world = (int32_t)get_i64(f, "world_size", &bad);
    L->global_step = get_i64(f, "global_step", &bad);
    L->data_epoch = (int32_t)get_i64(f, "data_epoch", &bad);
    L->data_step = (int32_t)get_i64(f, "data_step", &bad);
    L->data_started = (int32_t)get_i64(f, "data_started", &bad);
    if (bad)
        return mf_fail(MF_STATUS_DATA, "%s: missing position attributes", path);
    /* weights: the architecture must match layer by layer */
    if (H5Lexists(f, "model_weights", H5P_DEFAULT) <= 0)
        return mf_fail(MF_STATUS_DATA, "%s: no /model_weights group", path);
    hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
    mf_weights_report r;
    memset(&r, 0, sizeof r);
    mf_status s = mf_keras_read_group(g, ctx->model, path, &r);
    H5Gclose(g);
    if (s != MF_STATUS_OK)
        return s;
    if (r.missing_layers > 0)
        return mf_fail(MF_STATUS_SHAPE, "%s was written for another architecture: this model's layer%s %s %s not in it",
                       path, r.missing_layers > 1 ? "s" : "", r.missing, r.missing_layers > 1 ? "are" : "is");
    if (r.file_layers != r.loaded_layers)
        return mf_fail(MF_STATUS_SHAPE,
                       "%s was written for another architecture: it has %d layers with weights, "
                       "this model %d",
                       path, r.file_layers, r.loaded_layers);
    /* optimizer */
    g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    if (g < 0)
        return mf_fail(MF_STATUS_DATA, "%s: no /optimizer group", path);
    char *kind = NULL;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    attr_read(g, "kind", t, &kind);
    H5Tclose(t);
    const char *want = !ctx->opt ? "none" : mf_optimizer_options_of(ctx->opt)->kind == MF_OPT_ADAM ? "adam" : "sgd";
    if (!kind || strcmp(kind, want) != 0)
        s = mf_fail(MF_STATUS_CONFIG, "%s holds %s optimizer state but this run uses %s", path, kind ? kind : "no",
                    want);
    if (kind)
        H5free_memory(kind);
    if (s == MF_STATUS_OK && ctx->opt) {
        L->iterations = get_i64(g, "iterations", &bad);
        float *bufs[2];
        const char *names[2];
        int nb = mf_optimizer_state(ctx->opt, bufs, names);
        for (int i = 0; i < nb && s == MF_STATUS_OK; i++)
            if (dataset_read(g, names[i], H5T_NATIVE_FLOAT, bufs[i], (hssize_t)mf_model_num_params(ctx->model)) < 0)
                s = mf_fail(MF_STATUS_DATA, "%s: optimizer state '%s' missing or of another size", path, names[i]);
    }
    H5Gclose(g);
    MF_TRY(s);
    /* schedule */
    g = H5Gopen2(f, "schedule", H5P_DEFAULT);
    if (g >= 0) {
        L->schedule.kind = (mf_schedule_kind)get_i64(g, "kind", &bad);
        L->schedule.base_lr = (float)get_f64(g, "base_lr", &bad);
        L->schedule.warmup_steps = (long)get_i64(g, "warmup_steps", &bad);
        L->schedule.total_steps = (long)get_i64(g, "total_steps", &bad);
        L->schedule.decay_rate = (float)get_f64(g, "decay_rate", &bad);
        L->schedule.decay_steps = (long)get_i64(g, "decay_steps", &bad);
        L->lr_override = (float)get_f64(g, "lr_override", &bad);
        H5Gclose(g);
    }
    if (bad || g < 0)
        return mf_fail(MF_STATUS_DATA, "%s: the schedule is incomplete", path);
    /* the ranks' parts */
    *rng_table = mf_alloc((size_t)L->world * 4 * sizeof **rng_table);
    if (dataset_read(f, "ranks/rng", H5T_NATIVE_UINT64, *rng_table, (hssize_t)L->world * 4) < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /ranks/rng missing or not (world_size, 4)", path);
    L->n_metrics = ctx->n_tracked;
    int nm = 2 * ctx->n_tracked;
    *met_table = mf_alloc((size_t)L->world * (nm ? nm : 1) * sizeof **met_table);
    if (nm > 0 && dataset_read(f, "ranks/metrics", H5T_NATIVE_DOUBLE, *met_table, (hssize_t)L->world * nm) < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /ranks/metrics missing or not for %d tracked metrics", path,
                       ctx->n_tracked);
    /* history */
    if (H5Lexists(f, "history", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, "history", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hsize_t dims[2] = {0, 0};
        int rank = mf_h5_dims(sp, 2, dims);
        H5Sclose(sp);
        /* (epochs, metrics), each metric a name: bounded before anything is allocated */
        hssize_t n_names = -1;
        if (d >= 0 && H5Aexists(d, "names") > 0) {
            hid_t na = H5Aopen(d, "names", H5P_DEFAULT), asp = na >= 0 ? H5Aget_space(na) : -1;
            n_names = asp >= 0 ? H5Sget_simple_extent_npoints(asp) : -1;
            if (asp >= 0)
                H5Sclose(asp);
            if (na >= 0)
                H5Aclose(na);
        }
        if (rank != 2 || dims[0] > 1000000 || dims[1] > MF_LOGS_MAX || n_names != (hssize_t)dims[1]) {
            H5Dclose(d);
            return mf_fail(MF_STATUS_DATA, "%s: /history is not an (epochs, metrics) table with a name per metric",
                           path);
        }
        int ne = (int)dims[0], nn = (int)dims[1];
        double *h = mf_alloc((size_t)(ne > 0 && nn > 0 ? ne * nn : 1) * sizeof *h);
        char **names = mf_alloc((size_t)(nn ? nn : 1) * sizeof *names);
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, H5T_VARIABLE);
        hid_t a = H5Aopen(d, "names", H5P_DEFAULT);
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) < 0 || a < 0 || H5Aread(a, st, names) < 0)
            s = mf_fail(MF_STATUS_DATA, "%s: cannot read /history: %s", path, mf_h5_error(err, sizeof err));
        if (a >= 0)
            H5Aclose(a);
        if (s == MF_STATUS_OK) {
            *history = mf_alloc((size_t)(ne ? ne : 1) * sizeof **history);
            for (int e = 0; e < ne; e++) {
                mf_logs_clear(&(*history)[e]);
                for (int k = 0; k < nn; k++)
                    if (!isnan(h[(size_t)e * nn + k]))
                        mf_logs_set(&(*history)[e], names[k], h[(size_t)e * nn + k]);
            }
            L->n_history = ne;
            H5Dvlen_reclaim(st, H5S_ALL, H5P_DEFAULT, names); /* frees the strings only */
        }
        H5Tclose(st);
        mf_free(names);
        mf_free(h);
        H5Dclose(d);
        MF_TRY(s);
    }
    /* callback states */
    if (H5Lexists(f, "callbacks", H5P_DEFAULT) > 0) {
        g = H5Gopen2(f, "callbacks", H5P_DEFAULT);
        H5G_info_t info;
        H5Gget_info(g, &info);
        for (hsize_t i = 0; i < info.nlinks && L->n_cb < 8; i++) {
            char name[32];
            if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
                continue;
            hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
            hid_t sp = H5Dget_space(d);
            hssize_t n = H5Sget_simple_extent_npoints(sp);
            H5Sclose(sp);
            if (n > 0 && n <= 16 &&
                H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, L->cb_state[L->n_cb]) >= 0) {
                mf_strlcpy(L->cb_name[L->n_cb], name, sizeof L->cb_name[0]);
                L->cb_len[L->n_cb++] = (int32_t)n;
            }
            H5Dclose(d);
        }
        H5Gclose(g);
    }
    return MF_STATUS_OK;
}

/* A copy of what read_file overwrites (parameters, state, optimizer
 * buffers), to put back if the load fails half-way: a failed load changes
 * nothing. */
typedef struct snapshot {
    float *buf[4];
    float *dst[4];
    size_t n[4];
    int k;
} snapshot;

static void snapshot_take(snapshot *sn, mf_fit_ctx *ctx)
{
    memset(sn, 0, sizeof *sn);
    mf_model *m = ctx->model;
    float *opt[2] = {NULL, NULL};
    int no = ctx->opt ? mf_optimizer_state(ctx->opt, opt, NULL) : 0;
    float *src[4] = {mf_model_params(m), mf_model_state(m), opt[0], opt[1]};
    size_t n[4] = {mf_model_num_params(m), mf_model_num_state(m), mf_model_num_params(m), mf_model_num_params(m)};
    for (int i = 0; i < 2 + no; i++) {
        if (!src[i] || !n[i])
            continue;
        sn->dst[sn->k] = src[i];
        sn->n[sn->k] = n[i];
        sn->buf[sn->k] = mf_alloc(n[i] * sizeof(float));
        memcpy(sn->buf[sn->k], src[i], n[i] * sizeof(float));
        sn->k++;
    }
}

static void snapshot_end(snapshot *sn, int restore)
{
    for (int i = 0; i < sn->k; i++) {
        if (restore)
            memcpy(sn->dst[i], sn->buf[i], sn->n[i] * sizeof(float));
        mf_free(sn->buf[i]);
    }
}

mf_status mf_checkpoint_load(mf_fit_ctx *ctx, const char *path, mf_checkpoint_summary *out)
{
    int world = ctx->comm ? mf_comm_size(ctx->comm) : 1;
    loaded L;
    memset(&L, 0, sizeof L);
    uint64_t *rng_table = NULL;
    double *met_table = NULL;
    mf_logs *history = NULL;
    mf_status s = MF_STATUS_OK;
    if (ctx->rank == 0) {
        mf_h5_lock();
        hid_t f;
        mf_checkpoint_summary sum;
        s = open_checked(path, &f, &sum);
        if (s == MF_STATUS_OK) {
            /* every checksum first, then the copy: nothing is touched unless
             * the whole file reads back as written */
            verify v = {""};
            if (H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, verify_dataset, &v) != 0 || v.bad[0])
                s = mf_fail(MF_STATUS_DATA, "%s: %s", path,
                            v.bad[0] ? v.bad : "its objects cannot be listed (damaged)");
            if (s == MF_STATUS_OK) {
                snapshot sn;
                snapshot_take(&sn, ctx);
                s = read_file(ctx, f, path, &L, &rng_table, &met_table, &history);
                snapshot_end(&sn, s != MF_STATUS_OK);
            }
            H5Fclose(f);
        }
        mf_h5_unlock();
        L.status = s;
    }
    s = mf_fit_agree(ctx, s);
    if (s != MF_STATUS_OK) {
        mf_free(rng_table);
        mf_free(met_table);
        mf_free(history);
        return s;
    }
    /* rank 0 tells the others; weights and optimizer buffers follow with
     * mf_fit_broadcast_state (fit calls it when it starts) */
    if (world > 1)
        MF_TRY(mf_comm_bcast_bytes(ctx->comm, &L, sizeof L, 0));
    int nm = 2 * L.n_metrics; /* known on every rank only now */
    if (world > 1) {
        if (ctx->rank != 0) {
            rng_table = mf_alloc((size_t)L.world * 4 * sizeof *rng_table);
            met_table = mf_alloc((size_t)L.world * (nm ? nm : 1) * sizeof *met_table);
            history = mf_alloc((size_t)(L.n_history ? L.n_history : 1) * sizeof *history);
        }
        MF_TRY(mf_comm_bcast_bytes(ctx->comm, rng_table, (size_t)L.world * 4 * sizeof *rng_table, 0));
        if (nm)
            MF_TRY(mf_comm_bcast_bytes(ctx->comm, met_table, (size_t)L.world * nm * sizeof *met_table, 0));
        if (L.n_history)
            MF_TRY(mf_comm_bcast_bytes(ctx->comm, history, (size_t)L.n_history * sizeof *history, 0));
        MF_TRY(mf_fit_broadcast_state(ctx));
    }
    /* position, schedule, optimizer counter */
    ctx->epoch = L.epoch;
    ctx->epoch_step = L.step;
    ctx->epoch_done = 0;
    ctx->global_step = L.global_step;
    ctx->data_epoch = L.data_epoch;
    ctx->data_step = L.data_step;
    ctx->data_started = 0; /* the loader is repositioned at the next batch */
    ctx->restored = 1;
    ctx->schedule = L.schedule;
    ctx->lr_override = L.lr_override;
    if (ctx->opt)
        mf_optimizer_set_iterations(ctx->opt, L.iterations);
    /* every rank's own dropout stream and running metric sums; with another
     * world size the streams restart and rank 0 carries the sums */
    if (L.world == world) {
        memcpy(ctx->rng.s, rng_table + (size_t)ctx->rank * 4, sizeof ctx->rng.s);
    } else {
        mf_rng_seed2(&ctx->rng, ctx->seed ^ (uint64_t)L.global_step, (uint64_t)ctx->rank);
        if (ctx->rank == 0)
            mf_log_warn("%s was written by %d ranks, this run has %d: the data order re-shards and dropout "
                        "restarts, so the run continues but not bit for bit",
                        path, L.world, world);
    }
    for (int i = 0; i < L.n_metrics && i < ctx->n_tracked; i++) {
        double total = 0.0, count = 0.0;
        if (L.world == world) {
            total = met_table[(size_t)ctx->rank * nm + 2 * i];
            count = met_table[(size_t)ctx->rank * nm + 2 * i + 1];
        } else if (ctx->rank == 0) { /* rank 0 carries the saved ranks' sums */
            for (int rk = 0; rk < L.world; rk++) {
                total += met_table[(size_t)rk * nm + 2 * i];
                count += met_table[(size_t)rk * nm + 2 * i + 1];
            }
        }
        ctx->tracked[i]->total = total;
        ctx->tracked[i]->count = count;
    }
    mf_free(met_table);
    mf_free(ctx->history);
    ctx->history = history;
    ctx->n_history = ctx->cap_history = history ? L.n_history : 0;
    ctx->n_cb_state = L.n_cb;
    for (int i = 0; i < L.n_cb; i++) {
        mf_strlcpy(ctx->cb_state_name[i], L.cb_name[i], sizeof ctx->cb_state_name[i]);
        memcpy(ctx->cb_state[i], L.cb_state[i], sizeof ctx->cb_state[i]);
        ctx->cb_state_len[i] = L.cb_len[i];
    }
    mf_free(rng_table);
    if (out) {
        out->epoch = L.epoch;
        out->step_in_epoch = L.step;
        out->global_step = L.global_step;
        out->world_size = L.world;
    }
    return MF_STATUS_OK;
}

/* ---- export ---------------------------------------------------------------------------- */

mf_status mf_checkpoint_export_keras(const char *checkpoint, const char *out)
{
    char err[256], tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out) >= (int)sizeof tmp)
        return mf_fail(MF_STATUS_INVALID, "output path too long: %s", out);
    mf_h5_lock();
    hid_t f;
    mf_status s = open_checked(checkpoint, &f, NULL);
    if (s == MF_STATUS_OK) {
        hid_t o = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
        if (o < 0 || g < 0) {
            s = mf_fail(MF_STATUS_IO, "export %s -> %s: %s", checkpoint, tmp, mf_h5_error(err, sizeof err));
        } else {
            /* the Keras weights file is /model_weights moved to the root:
             * every layer group, and the root attributes Keras reads */
            H5G_info_t info;
            H5Gget_info(g, &info);
            for (hsize_t i = 0; i < info.nlinks && s == MF_STATUS_OK; i++) {
                char name[256];
                H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
                if (H5Ocopy(g, name, o, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
                    s = mf_fail(MF_STATUS_HDF5, "export: copying %s: %s", name, mf_h5_error(err, sizeof err));
            }
            const char *attrs[] = {"layer_names", "backend", "keras_version", "mpifit_version"};
            for (int k = 0; k < 4 && s == MF_STATUS_OK; k++) {
                if (H5Aexists(g, attrs[k]) <= 0)
                    continue;
                hid_t src = H5Aopen(g, attrs[k], H5P_DEFAULT);
                hid_t type = H5Aget_type(src), space = H5Aget_space(src);
                size_t sz = H5Tget_size(type) * (size_t)H5Sget_simple_extent_npoints(space);
                void *buf = mf_alloc(sz ? sz : 1);
                hid_t dst = H5Acreate2(o, attrs[k], type, space, H5P_DEFAULT, H5P_DEFAULT);
                if (H5Aread(src, type, buf) < 0 || dst < 0 || H5Awrite(dst, type, buf) < 0)
                    s = mf_fail(MF_STATUS_HDF5, "export: attribute %s: %s", attrs[k], mf_h5_error(err, sizeof err));
                if (dst >= 0)
                    H5Aclose(dst);
                mf_free(buf);
                H5Sclose(space);
                H5Tclose(type);
                H5Aclose(src);
            }
        }
        if (g >= 0)
            H5Gclose(g);
        if (o >= 0 && H5Fclose(o) < 0 && s == MF_STATUS_OK)
            s = mf_fail(MF_STATUS_IO, "export: closing %s: %s", tmp, mf_h5_error(err, sizeof err));
        H5Fclose(f);
    }
    mf_h5_unlock();
    if (s != MF_STATUS_OK && access(tmp, F_OK) != 0)
        return s;
    return mf_commit_file(tmp, out, s);
}
