/* checkpoint_h5.c: checkpoints (see mpifit/checkpoint.h for the layout).
 *
 * Save and load are collective: the ranks' parts (rng streams, running metric
 * sums) are gathered or scattered with one call each, and only rank 0 touches
 * the file. Every HDF5 call holds mf_h5_lock(). What is stored of the training
 * context comes from, and goes back through, train/fit_state.h. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit/checkpoint.h"
#include "h5util.h"
#include "keras_io.h"
#include "model_desc.h"
#include "../core/core.h"
#include "../train/fit_state.h"

#define CKPT_FORMAT "mpifit-checkpoint"
#define CKPT_MAX_WORLD 1000000 /* ranks a checkpoint may describe (bounds the tables) */

/* ---- what each rank contributes ------------------------------------------------ */

/* this rank's dropout stream and running metric sums (gathered to rank 0) */
typedef struct rank_part {
    uint64_t rng[4];
    double metrics[2 * MF_MAX_TRACKED];
} rank_part;

static const char *opt_kind(mf_optimizer *opt)
{
    return !opt ? "none" : mf_optimizer_options_of(opt)->kind == MF_OPT_ADAM ? "adam" : "sgd";
}

/* ---- save ---------------------------------------------------------------------- */

static int write_position(hid_t f, const mf_fit_state *st, const mf_checkpoint_info *info, int world)
{
    int bad = 0;
    bad |= mf_h5_put_string(f, "format", CKPT_FORMAT, 0) < 0;
    bad |= mf_h5_put_i64(f, "format_version", 1) < 0;
    bad |= mf_h5_put_string(f, "mpifit_version", mf_version(), 0) < 0;
    bad |= mf_h5_put_i64(f, "world_size", world) < 0;
    bad |= mf_h5_put_i64(f, "epoch", st->epoch) < 0;
    bad |= mf_h5_put_i64(f, "step_in_epoch", st->step_in_epoch) < 0;
    bad |= mf_h5_put_i64(f, "global_step", st->global_step) < 0;
    bad |= mf_h5_put_i64(f, "data_epoch", st->data_epoch) < 0;
    bad |= mf_h5_put_i64(f, "data_step", st->data_step) < 0;
    bad |= mf_h5_put_i64(f, "data_started", st->data_started) < 0;
    bad |= mf_h5_put_i64(f, "seed", (int64_t)st->seed) < 0;
    bad |= mf_h5_put_i64(f, "stopped", st->stopped) < 0;
    bad |= mf_h5_put_string(f, "config", info && info->config_text ? info->config_text : "", 0) < 0;
    bad |= mf_h5_put_strings(f, "class_names", info ? info->class_names : NULL,
                             info && info->class_names ? info->n_classes : 0, 0) < 0;
    if (info && info->model) /* the class names are the ones just written */
        bad |= mf_model_desc_put(f, info->model, 0) < 0;
    return bad;
}

static int write_optimizer(hid_t f, mf_optimizer *opt, size_t n_params)
{
    hid_t g = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return 1;
    int bad = mf_h5_put_string(g, "kind", opt_kind(opt), 0) < 0;
    if (opt) {
        const mf_optimizer_options *o = mf_optimizer_options_of(opt);
        bad |= mf_h5_put_i64(g, "iterations", mf_optimizer_iterations(opt)) < 0;
        bad |= mf_h5_put_f64(g, "momentum", o->momentum) < 0 || mf_h5_put_i64(g, "nesterov", o->nesterov) < 0;
        bad |= mf_h5_put_f64(g, "beta1", o->beta1) < 0 || mf_h5_put_f64(g, "beta2", o->beta2) < 0;
        bad |= mf_h5_put_f64(g, "epsilon", o->epsilon) < 0 || mf_h5_put_f64(g, "weight_decay", o->weight_decay) < 0;
        float *bufs[2];
        const char *names[2];
        int nb = mf_optimizer_state(opt, bufs, names);
        hsize_t np = n_params ? n_params : 1;
        for (int i = 0; i < nb && !bad; i++)
            bad |= mf_h5_put_dataset(g, names[i], H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, &np, bufs[i], MF_H5_CHECKED) < 0;
    }
    H5Gclose(g);
    return bad;
}

static int write_schedule(hid_t f, const mf_fit_state *st)
{
    hid_t g = H5Gcreate2(f, "schedule", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return 1;
    const mf_schedule *sc = &st->schedule;
    int bad = mf_h5_put_i64(g, "kind", sc->kind) < 0 || mf_h5_put_f64(g, "base_lr", sc->base_lr) < 0;
    bad |=
        mf_h5_put_i64(g, "warmup_steps", sc->warmup_steps) < 0 || mf_h5_put_i64(g, "total_steps", sc->total_steps) < 0;
    bad |= mf_h5_put_f64(g, "decay_rate", sc->decay_rate) < 0 || mf_h5_put_i64(g, "decay_steps", sc->decay_steps) < 0;
    bad |= mf_h5_put_f64(g, "lr_override", st->lr_override) < 0; /* NaN: none */
    bad |= mf_h5_put_i64(g, "start_step", sc->start_step) < 0;
    bad |= mf_h5_put_f64(g, "lr_scale", st->lr_scale) < 0; /* ReduceLROnPlateau's, 1: none */
    H5Gclose(g);
    return bad;
}

static int write_ranks(hid_t f, const mf_fit_state *st, const rank_part *parts, int world)
{
    hid_t g = H5Gcreate2(f, "ranks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return 1;
    uint64_t *rng = mf_alloc((size_t)world * 4 * sizeof *rng);
    int nm = 2 * st->n_metrics;
    double *met = mf_alloc((size_t)world * (nm ? nm : 1) * sizeof *met);
    for (int r = 0; r < world; r++) {
        memcpy(rng + (size_t)r * 4, parts[r].rng, 4 * sizeof *rng);
        for (int k = 0; k < nm; k++)
            met[(size_t)r * nm + k] = parts[r].metrics[k];
    }
    hsize_t d2[2] = {(hsize_t)world, 4};
    int bad = mf_h5_put_dataset(g, "rng", H5T_NATIVE_UINT64, H5T_STD_U64LE, 2, d2, rng, MF_H5_CHECKED) < 0;
    if (nm) {
        hsize_t dm[2] = {(hsize_t)world, (hsize_t)nm};
        bad |= mf_h5_put_dataset(g, "metrics", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dm, met, MF_H5_CHECKED) < 0;
    }
    bad |= mf_h5_put_strings(g, "metric_names", st->metric_names, st->n_metrics, 0) < 0;
    mf_free(rng);
    mf_free(met);
    H5Gclose(g);
    return bad;
}

/* history: the union of the names, NaN where an epoch did not log one */
static int write_history(hid_t f, mf_fit_ctx *ctx)
{
    int ne = mf_fit_history_len(ctx);
    if (ne <= 0)
        return 0;
    const char *names[MF_LOGS_MAX * 2];
    int nn = 0;
    for (int e = 0; e < ne; e++) {
        const mf_logs *l = mf_fit_history(ctx, e);
        for (int i = 0; i < l->n && nn < MF_LOGS_MAX * 2; i++) {
            int seen = 0;
            for (int k = 0; k < nn; k++)
                seen |= strcmp(names[k], l->name[i]) == 0;
            if (!seen)
                names[nn++] = l->name[i];
        }
    }
    double *h = mf_alloc((size_t)ne * (nn ? nn : 1) * sizeof *h);
    for (int e = 0; e < ne; e++)
        for (int k = 0; k < nn; k++) {
            double v = NAN;
            mf_logs_get(mf_fit_history(ctx, e), names[k], &v);
            h[(size_t)e * nn + k] = v;
        }
    hsize_t dh[2] = {(hsize_t)ne, (hsize_t)nn};
    int bad = mf_h5_put_dataset(f, "history", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dh, h, MF_H5_CHECKED) < 0;
    hid_t d = H5Dopen2(f, "history", H5P_DEFAULT);
    bad |= d < 0 || mf_h5_put_strings(d, "names", names, nn, 0) < 0;
    if (d >= 0)
        H5Dclose(d);
    mf_free(h);
    return bad;
}

/* /callback_buffers/<callback>/<buffer>: float32, checksummed (EarlyStopping's
 * copy of the best weights); the group only when some callback has one */
static int write_callback_buffers(hid_t f, const mf_checkpoint_info *info)
{
    hid_t top = -1;
    int bad = 0;
    for (int c = 0; c < info->n_callbacks && !bad; c++) {
        mf_callback *cb = info->callbacks[c];
        hid_t g = -1;
        const char *name;
        const float *v;
        size_t n;
        for (int i = 0; cb->get_buffer && cb->name && !bad && cb->get_buffer(cb, i, &name, &v, &n); i++) {
            if (n == 0)
                continue;
            if (top < 0 && (top = H5Gcreate2(f, "callback_buffers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
                return 1;
            if (g < 0 && (g = H5Gcreate2(top, cb->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
                bad = 1;
                break;
            }
            hsize_t d = (hsize_t)n;
            bad |= mf_h5_put_dataset(g, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, &d, v, MF_H5_CHECKED) < 0;
        }
        if (g >= 0)
            H5Gclose(g);
    }
    if (top >= 0)
        H5Gclose(top);
    return bad;
}

static int write_callbacks(hid_t f, const mf_checkpoint_info *info)
{
    if (!info || info->n_callbacks <= 0)
        return 0;
    hid_t g = H5Gcreate2(f, "callbacks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return 1;
    int bad = 0;
    for (int i = 0; i < info->n_callbacks; i++) {
        mf_callback *cb = info->callbacks[i];
        double v[MF_CB_STATE_LEN];
        int n = cb->get_state && cb->name ? cb->get_state(cb, v, MF_CB_STATE_LEN) : 0;
        hsize_t d = (hsize_t)n;
        if (n > 0)
            bad |= mf_h5_put_dataset(g, cb->name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &d, v, MF_H5_CHECKED) < 0;
    }
    H5Gclose(g);
    return bad || write_callback_buffers(f, info);
}

static mf_status write_file(mf_fit_ctx *ctx, hid_t f, const char *what, const mf_checkpoint_info *info,
                            const rank_part *parts, int world)
{
    char err[256];
    mf_fit_state st;
    mf_fit_state_get(ctx, &st);
    if (write_position(f, &st, info, world))
        return mf_fail(MF_STATUS_HDF5, "writing attributes of %s: %s", what, mf_h5_error(err, sizeof err));
    hid_t g = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    mf_status s = g < 0 ? mf_fail(MF_STATUS_HDF5, "%s: %s", what, mf_h5_error(err, sizeof err))
                        : mf_keras_write_group(g, mf_fit_model(ctx), what);
    if (g >= 0)
        H5Gclose(g);
    MF_TRY(s);
    int bad = write_optimizer(f, mf_fit_optimizer(ctx), mf_model_num_params(mf_fit_model(ctx)));
    bad = bad || write_schedule(f, &st) || write_ranks(f, &st, parts, world) || write_history(f, ctx) ||
        write_callbacks(f, info);
    if (bad)
        return mf_fail(MF_STATUS_HDF5, "writing %s: %s", what, mf_h5_error(err, sizeof err));
    /* last: a file without this is a crash's leftover, never a checkpoint */
    if (mf_h5_put_i64(f, "complete", 1) < 0)
        return mf_fail(MF_STATUS_HDF5, "writing %s: %s", what, mf_h5_error(err, sizeof err));
    return MF_STATUS_OK;
}

mf_status mf_checkpoint_save(mf_fit_ctx *ctx, const char *path, const mf_checkpoint_info *info)
{
    mf_comm *comm = mf_fit_comm(ctx);
    int world = comm ? mf_comm_size(comm) : 1;
    MF_TRY(mf_fit_average_state(ctx));
    mf_fit_state st;
    mf_fit_state_get(ctx, &st);
    rank_part mine, *parts = mf_alloc((size_t)world * sizeof *parts);
    memset(&mine, 0, sizeof mine);
    memcpy(mine.rng, st.rng, sizeof mine.rng);
    memcpy(mine.metrics, st.metric_sums, 2 * (size_t)st.n_metrics * sizeof *mine.metrics);
    mf_status s = MF_STATUS_OK;
    if (world > 1)
        s = mf_comm_allgather_bytes(comm, &mine, sizeof mine, parts);
    else
        parts[0] = mine;
    if (s == MF_STATUS_OK && st.rank == 0) {
        char err[256];
        mf_h5_lock();
        hid_t f = mf_h5_mem_create(path, MF_H5_CHECKED);
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
    char why[200];
    int sum_ok = mf_h5_verify_sum(path, why, sizeof why);
    if (sum_ok < 0 || sum_ok == 2) /* 2: a checkpoint's user block is only ever its checksum line */
        return mf_fail(MF_STATUS_DATA, "%s is damaged: %s", path, why);
    hid_t f = mf_h5_open_read(path);
    if (f < 0)
        return mf_fail(MF_STATUS_DATA, "%s is not a readable HDF5 file (truncated or corrupt?): %s", path,
                       mf_h5_error(err, sizeof err));
    char *fmt = NULL;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    int ok = mf_h5_attr_scalar(f, "format", t, &fmt) == 0 && fmt && strcmp(fmt, CKPT_FORMAT) == 0;
    if (fmt)
        H5free_memory(fmt);
    H5Tclose(t);
    if (!ok) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s is not an mpifit checkpoint (no format = \"%s\")", path, CKPT_FORMAT);
    }
    int bad = 0;
    int64_t complete = mf_h5_get_i64(f, "complete", &bad);
    if (bad || complete != 1) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s is incomplete (its writer stopped before the end)", path);
    }
    int64_t version = mf_h5_get_i64(f, "format_version", &bad);
    if (version != 1) {
        H5Fclose(f);
        return mf_fail(MF_STATUS_DATA, "%s has checkpoint format version %lld; this mpifit reads version 1", path,
                       (long long)version);
    }
    if (sum) {
        sum->epoch = (int)mf_h5_get_i64(f, "epoch", &bad);
        sum->step_in_epoch = (int)mf_h5_get_i64(f, "step_in_epoch", &bad);
        sum->global_step = (long)mf_h5_get_i64(f, "global_step", &bad);
        sum->world_size = (int)mf_h5_get_i64(f, "world_size", &bad);
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

/* How many chunks dataset d (dataspace sp) is stored in: 1 if it is not
 * chunked, UINT64_MAX for a layout that does not fit its shape. */
static uint64_t stored_chunks(hid_t d, hid_t sp)
{
    hid_t dcpl = H5Dget_create_plist(d);
    uint64_t n = dcpl < 0 ? UINT64_MAX : 1;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t dims[32], chunk[32];
        int rank = H5Sget_simple_extent_ndims(sp);
        if (rank < 0 || rank > 32 || H5Sget_simple_extent_dims(sp, dims, NULL) != rank ||
            H5Pget_chunk(dcpl, 32, chunk) != rank)
            n = UINT64_MAX;
        for (int i = 0; n != UINT64_MAX && i < rank; i++) {
            uint64_t k = chunk[i] ? (dims[i] + chunk[i] - 1) / chunk[i] : UINT64_MAX;
            n = k && n > UINT64_MAX / k ? UINT64_MAX : n * k;
        }
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return n;
}

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
    if (H5Tget_class(t) != H5T_STRING && !mf_h5_stored(d, t, sp)) {
        snprintf(v->bad, sizeof v->bad, "dataset %s claims more values than the file stores (damaged)", name);
        H5Sclose(sp);
        H5Tclose(t);
        H5Dclose(d);
        return 1;
    }
    /* mpifit writes each dataset as one chunk (a few past 2 GiB:
     * mf_h5_checked_dcpl), and libhdf5 keeps bookkeeping for every chunk a
     * read touches: a forged layout of millions of chunks cost gigabytes
     * for a file of kilobytes (a fuzz input) */
    uint64_t chunks = stored_chunks(d, sp);
    if (chunks > 1024) {
        snprintf(v->bad, sizeof v->bad, "dataset %s is stored in %s chunks (mpifit writes one; damaged layout)", name,
                 chunks == UINT64_MAX ? "an impossible number of" : "more than 1024");
        H5Sclose(sp);
        H5Tclose(t);
        H5Dclose(d);
        return 1;
    }
    if (n > 0 && esz > 0 && H5Tget_class(t) != H5T_STRING) {
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

/* every dataset of f read back through its checksum */
static mf_status verify_all(hid_t f, const char *path)
{
    verify v = {""};
    if (H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, verify_dataset, &v) != 0 || v.bad[0])
        return mf_fail(MF_STATUS_DATA, "%s: %s", path, v.bad[0] ? v.bad : "its objects cannot be listed (damaged)");
    return MF_STATUS_OK;
}

mf_status mf_checkpoint_check(const char *path, mf_checkpoint_summary *out)
{
    mf_h5_lock();
    hid_t f;
    mf_status s = open_checked(path, &f, out);
    if (s == MF_STATUS_OK) {
        s = verify_all(f, path);
        H5Fclose(f);
    }
    mf_h5_unlock();
    return s;
}

mf_status mf_checkpoint_latest(const char *dir, char *path, size_t n)
{
    char **names;
    int nc = mf_checkpoint_list(dir, &names);
    if (nc < 0)
        return mf_fail(MF_STATUS_IO, "no checkpoints: cannot open %s: %s", dir, strerror(errno));
    mf_status s = mf_fail(MF_STATUS_IO, "no complete checkpoint (ckpt-EPOCH-STEP.h5) in %s", dir);
    for (int i = 0; i < nc; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (mf_checkpoint_check(p, NULL) == MF_STATUS_OK) {
            mf_strlcpy(path, p, n);
            s = MF_STATUS_OK;
            break;
        }
        mf_log_warn("skipping checkpoint: %s; trying an older one", mf_last_error());
    }
    if (s != MF_STATUS_OK && nc > 0)
        s = mf_fail(MF_STATUS_IO, "none of the %d checkpoints in %s is complete and readable", nc, dir);
    mf_checkpoint_list_free(names, nc);
    return s;
}

mf_status mf_checkpoint_read_meta(const char *path, mf_checkpoint_meta *m)
{
    memset(m, 0, sizeof m[0]);
    mf_h5_lock();
    hid_t f;
    mf_status s = open_checked(path, &f, NULL);
    if (s == MF_STATUS_OK) {
        m->config = mf_h5_attr_string(f, "config", (size_t)1 << 20);
        hid_t a = H5Aexists(f, "class_names") > 0 ? H5Aopen(f, "class_names", H5P_DEFAULT) : -1;
        if (a >= 0) {
            s = mf_h5_read_strings(a, 1, -1, 1000000, &m->class_names, &m->n_classes, "class_names");
            H5Aclose(a);
        }
        if (s != MF_STATUS_OK)
            s = mf_fail(s, "%s: %s", path, mf_last_error());
        H5Fclose(f);
    }
    mf_h5_unlock();
    if (s != MF_STATUS_OK)
        mf_checkpoint_meta_free(m);
    return s;
}

void mf_checkpoint_meta_free(mf_checkpoint_meta *m)
{
    mf_free(m->config);
    mf_h5_strings_free(m->class_names, m->n_classes);
    memset(m, 0, sizeof m[0]);
}

/* ---- load ----------------------------------------------------------------------------- */

/* What rank 0 reads besides the model and optimizer buffers; broadcast as bytes. */
typedef struct loaded {
    mf_fit_state st; /* world = the writer's; rng and metric sums filled per rank */
    int64_t iterations;
    int32_t n_history;
    int32_t n_cb;
    mf_fit_cb_state cb[MF_MAX_CB_STATES];
    int32_t n_buf;
    mf_fit_cb_buffer buf[MF_MAX_CB_BUFFERS]; /* v: rank 0's arrays (the others allocate their own) */
} loaded;

static mf_status read_position(hid_t f, const char *path, loaded *L)
{
    int bad = 0;
    L->st.epoch = (int)mf_h5_get_i64(f, "epoch", &bad);
    L->st.step_in_epoch = (int)mf_h5_get_i64(f, "step_in_epoch", &bad);
    int64_t world = mf_h5_get_i64(f, "world_size", &bad);
    L->st.global_step = (long)mf_h5_get_i64(f, "global_step", &bad);
    L->st.data_epoch = (int)mf_h5_get_i64(f, "data_epoch", &bad);
    L->st.data_step = (int)mf_h5_get_i64(f, "data_step", &bad);
    L->st.data_started = (int)mf_h5_get_i64(f, "data_started", &bad);
    /* written since callbacks could end a run early; absent: not stopped */
    if (H5Aexists(f, "stopped") > 0)
        L->st.stopped = mf_h5_get_i64(f, "stopped", &bad) != 0;
    if (bad)
        return mf_fail(MF_STATUS_DATA,
                       "%s: a position attribute (epoch, step, world size, data order) is missing or not one integer",
                       path);
    if (world < 1 || world > CKPT_MAX_WORLD || L->st.epoch < 0 || L->st.step_in_epoch < 0 || L->st.global_step < 0 ||
        L->st.data_epoch < 0 || L->st.data_step < 0)
        return mf_fail(MF_STATUS_DATA,
                       "%s: position out of range (world_size %lld, epoch %d, step %d, global step %ld)", path,
                       (long long)world, L->st.epoch, L->st.step_in_epoch, L->st.global_step);
    L->st.world = (int)world;
    return MF_STATUS_OK;
}

/* weights: the architecture must match layer by layer */
static mf_status read_weights(hid_t f, const char *path, mf_model *m)
{
    if (H5Lexists(f, "model_weights", H5P_DEFAULT) <= 0)
        return mf_fail(MF_STATUS_DATA, "%s: no /model_weights group", path);
    hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
    if (g < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /model_weights cannot be opened", path);
    mf_weights_report r;
    memset(&r, 0, sizeof r);
    mf_status s = mf_keras_read_group(g, m, path, &r);
    H5Gclose(g);
    MF_TRY(s);
    if (r.missing_layers > 0)
        return mf_fail(MF_STATUS_SHAPE, "%s was written for another architecture: this model's layer%s %s %s not in it",
                       path, r.missing_layers > 1 ? "s" : "", r.missing, r.missing_layers > 1 ? "are" : "is");
    if (r.file_layers != r.loaded_layers)
        return mf_fail(MF_STATUS_SHAPE,
                       "%s was written for another architecture: it has %d layers with weights, this model %d", path,
                       r.file_layers, r.loaded_layers);
    return MF_STATUS_OK;
}

static mf_status read_optimizer(hid_t f, const char *path, mf_optimizer *opt, size_t n_params, loaded *L)
{
    hid_t g = H5Lexists(f, "optimizer", H5P_DEFAULT) > 0 ? H5Gopen2(f, "optimizer", H5P_DEFAULT) : -1;
    if (g < 0)
        return mf_fail(MF_STATUS_DATA, "%s: no /optimizer group", path);
    char *kind = mf_h5_attr_string(g, "kind", 64);
    mf_status s = MF_STATUS_OK;
    if (!kind || strcmp(kind, opt_kind(opt)) != 0)
        s = mf_fail(MF_STATUS_CONFIG, "%s holds %s optimizer state but this run uses %s", path, kind ? kind : "no",
                    opt_kind(opt));
    mf_free(kind);
    if (s == MF_STATUS_OK && opt) {
        int bad = 0;
        L->iterations = mf_h5_get_i64(g, "iterations", &bad);
        if (bad || L->iterations < 0)
            s = mf_fail(MF_STATUS_DATA, "%s: /optimizer has no valid 'iterations'", path);
        float *bufs[2];
        const char *names[2];
        int nb = mf_optimizer_state(opt, bufs, names);
        hsize_t np = n_params ? n_params : 1;
        for (int i = 0; i < nb && s == MF_STATUS_OK; i++)
            if (mf_h5_read_exact(g, names[i], H5T_NATIVE_FLOAT, 1, &np, bufs[i]) < 0)
                s = mf_fail(MF_STATUS_DATA, "%s: optimizer state '%s' missing or not %llu floats", path, names[i],
                            (unsigned long long)np);
    }
    H5Gclose(g);
    return s;
}

static mf_status read_schedule(hid_t f, const char *path, loaded *L)
{
    hid_t g = H5Lexists(f, "schedule", H5P_DEFAULT) > 0 ? H5Gopen2(f, "schedule", H5P_DEFAULT) : -1;
    int bad = g < 0;
    if (g >= 0) {
        mf_schedule *sc = &L->st.schedule;
        sc->kind = (mf_schedule_kind)mf_h5_get_i64(g, "kind", &bad);
        sc->base_lr = (float)mf_h5_get_f64(g, "base_lr", &bad);
        sc->warmup_steps = (long)mf_h5_get_i64(g, "warmup_steps", &bad);
        sc->total_steps = (long)mf_h5_get_i64(g, "total_steps", &bad);
        sc->decay_rate = (float)mf_h5_get_f64(g, "decay_rate", &bad);
        sc->decay_steps = (long)mf_h5_get_i64(g, "decay_steps", &bad);
        L->st.lr_override = (float)mf_h5_get_f64(g, "lr_override", &bad);
        /* written since fine-tuning phases; older checkpoints start at 0 */
        sc->start_step = H5Aexists(g, "start_step") > 0 ? (long)mf_h5_get_i64(g, "start_step", &bad) : 0;
        bad |= sc->start_step < 0;
        /* written since ReduceLROnPlateau; absent: no reduction */
        L->st.lr_scale = H5Aexists(g, "lr_scale") > 0 ? mf_h5_get_f64(g, "lr_scale", &bad) : 1.0;
        H5Gclose(g);
    }
    if (!bad && !(isfinite(L->st.lr_scale) && L->st.lr_scale >= 0.0))
        return mf_fail(MF_STATUS_DATA, "%s: /schedule lr_scale is %g, not a finite number >= 0", path, L->st.lr_scale);
    return bad ? mf_fail(MF_STATUS_DATA, "%s: the schedule is incomplete", path) : MF_STATUS_OK;
}

/* /history: (epochs, metrics) float64 with a name per metric, bounded before
 * anything is allocated */
static mf_status read_history(hid_t f, const char *path, mf_logs **history, int *n_history)
{
    if (H5Lexists(f, "history", H5P_DEFAULT) <= 0)
        return MF_STATUS_OK;
    hid_t d = H5Dopen2(f, "history", H5P_DEFAULT);
    if (d < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /history cannot be opened", path);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int rank = mf_h5_dims(sp, 2, dims);
    H5Sclose(sp);
    char **names = NULL;
    int nn = 0;
    mf_status s = MF_STATUS_OK;
    if (rank != 2 || dims[0] > 1000000 || dims[1] > MF_LOGS_MAX)
        s = mf_fail(MF_STATUS_DATA, "%s: /history is not an (epochs, at most %d metrics) table", path, MF_LOGS_MAX);
    hid_t a = s == MF_STATUS_OK && H5Aexists(d, "names") > 0 ? H5Aopen(d, "names", H5P_DEFAULT) : -1;
    if (s == MF_STATUS_OK && a < 0)
        s = mf_fail(MF_STATUS_DATA, "%s: /history has no 'names' attribute", path);
    if (s == MF_STATUS_OK)
        s = mf_h5_read_strings(a, 1, (int)dims[1], MF_LOGS_MAX, &names, &nn, "/history names");
    if (a >= 0)
        H5Aclose(a);
    int ne = (int)dims[0];
    double *h = s == MF_STATUS_OK ? mf_alloc((size_t)(ne > 0 && nn > 0 ? ne * nn : 1) * sizeof *h) : NULL;
    if (s == MF_STATUS_OK && mf_h5_read_exact(f, "history", H5T_NATIVE_DOUBLE, 2, dims, h) < 0)
        s = mf_fail(MF_STATUS_DATA, "%s: /history cannot be read as float64", path);
    if (s == MF_STATUS_OK) {
        *history = mf_alloc((size_t)(ne ? ne : 1) * sizeof **history);
        for (int e = 0; e < ne; e++) {
            mf_logs_clear(&(*history)[e]);
            for (int k = 0; k < nn; k++)
                if (!isnan(h[(size_t)e * nn + k]))
                    mf_logs_set(&(*history)[e], names[k], h[(size_t)e * nn + k]);
        }
        *n_history = ne;
    }
    mf_h5_strings_free(names, nn);
    mf_free(h);
    H5Dclose(d);
    return s;
}

/* callback states: one float64 vector of at most MF_CB_STATE_LEN per callback;
 * anything else in the group is skipped */
static void read_callbacks(hid_t f, loaded *L)
{
    if (H5Lexists(f, "callbacks", H5P_DEFAULT) <= 0)
        return;
    hid_t g = H5Gopen2(f, "callbacks", H5P_DEFAULT);
    hsize_t nl = g >= 0 ? mf_h5_num_links(g) : 0;
    for (hsize_t i = 0; i < nl && L->n_cb < MF_MAX_CB_STATES; i++) {
        mf_fit_cb_state *c = &L->cb[L->n_cb];
        if (mf_h5_link_name(g, i, c->name, sizeof c->name) < 0)
            break;
        for (hsize_t n = 1; n <= MF_CB_STATE_LEN; n++)
            if (mf_h5_read_exact(g, c->name, H5T_NATIVE_DOUBLE, 1, &n, c->v) == 0) {
                c->n = (int)n;
                L->n_cb++;
                break;
            }
    }
    if (g >= 0)
        H5Gclose(g);
}

static void free_buffers(loaded *L)
{
    for (int i = 0; i < L->n_buf; i++)
        mf_free(L->buf[i].v);
    L->n_buf = 0;
}

/* One callback's buffers (/callback_buffers/<callback>/<buffer>): 1-D float
 * datasets of at most `cap` values (a buffer is a copy of the model's
 * parameters or state), read into L->buf. */
static mf_status read_buffer_group(hid_t g, const char *path, const char *callback, size_t cap, loaded *L)
{
    hsize_t nl = mf_h5_num_links(g);
    for (hsize_t i = 0; i < nl; i++) {
        if (L->n_buf == MF_MAX_CB_BUFFERS)
            return mf_fail(MF_STATUS_DATA, "%s: more than %d callback buffers", path, MF_MAX_CB_BUFFERS);
        mf_fit_cb_buffer *b = &L->buf[L->n_buf];
        memset(b, 0, sizeof *b);
        mf_strlcpy(b->callback, callback, sizeof b->callback);
        if (mf_h5_link_name(g, i, b->name, sizeof b->name) < 0)
            return mf_fail(MF_STATUS_DATA, "%s: a buffer of callback %s has no name of at most %zu bytes", path,
                           callback, sizeof b->name - 1);
        hid_t d = H5Dopen2(g, b->name, H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1, t = d >= 0 ? H5Dget_type(d) : -1;
        hsize_t dims[1] = {0};
        int ok =
            sp >= 0 && mf_h5_is_number(t, H5T_FLOAT) && mf_h5_dims(sp, 1, dims) == 1 && dims[0] >= 1 && dims[0] <= cap;
        if (sp >= 0)
            H5Sclose(sp);
        if (t >= 0)
            H5Tclose(t);
        if (d >= 0)
            H5Dclose(d);
        if (!ok)
            return mf_fail(MF_STATUS_DATA,
                           "%s: /callback_buffers/%s/%s is not a list of 1 to %zu floats (the model's parameters "
                           "and state)",
                           path, callback, b->name, cap);
        b->n = (size_t)dims[0];
        b->v = mf_alloc(b->n * sizeof(float));
        L->n_buf++;
        if (mf_h5_read_exact(g, b->name, H5T_NATIVE_FLOAT, 1, dims, b->v) < 0)
            return mf_fail(MF_STATUS_DATA, "%s: /callback_buffers/%s/%s cannot be read", path, callback, b->name);
    }
    return MF_STATUS_OK;
}

/* /callback_buffers: absent in checkpoints written before it, or without a
 * callback that keeps one */
static mf_status read_callback_buffers(hid_t f, const char *path, size_t cap, loaded *L)
{
    if (H5Lexists(f, "callback_buffers", H5P_DEFAULT) <= 0)
        return MF_STATUS_OK;
    hid_t top = H5Gopen2(f, "callback_buffers", H5P_DEFAULT);
    if (top < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /callback_buffers cannot be opened", path);
    hsize_t nl = mf_h5_num_links(top);
    mf_status s = MF_STATUS_OK;
    for (hsize_t i = 0; i < nl && s == MF_STATUS_OK; i++) {
        char name[32];
        hid_t g = -1;
        if (mf_h5_link_name(top, i, name, sizeof name) < 0 || (g = H5Gopen2(top, name, H5P_DEFAULT)) < 0)
            s = mf_fail(MF_STATUS_DATA, "%s: entry %llu of /callback_buffers is not a callback's group", path,
                        (unsigned long long)i);
        else
            s = read_buffer_group(g, path, name, cap, L);
        if (g >= 0)
            H5Gclose(g);
    }
    H5Gclose(top);
    return s;
}

static mf_status read_file(mf_fit_ctx *ctx, hid_t f, const char *path, loaded *L, uint64_t **rng_table,
                           double **met_table, mf_logs **history)
{
    mf_model *m = mf_fit_model(ctx);
    MF_TRY(read_position(f, path, L));
    MF_TRY(read_weights(f, path, m));
    MF_TRY(read_optimizer(f, path, mf_fit_optimizer(ctx), mf_model_num_params(m), L));
    MF_TRY(read_schedule(f, path, L));
    /* the ranks' parts */
    hsize_t d2[2] = {(hsize_t)L->st.world, 4};
    *rng_table = mf_alloc((size_t)L->st.world * 4 * sizeof **rng_table);
    if (mf_h5_read_exact(f, "ranks/rng", H5T_NATIVE_UINT64, 2, d2, *rng_table) < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /ranks/rng missing or not (world_size %d, 4) integers", path, L->st.world);
    mf_fit_state now;
    mf_fit_state_get(ctx, &now);
    L->st.n_metrics = now.n_metrics;
    int nm = 2 * now.n_metrics;
    hsize_t dm[2] = {(hsize_t)L->st.world, (hsize_t)nm};
    *met_table = mf_alloc((size_t)L->st.world * (nm ? nm : 1) * sizeof **met_table);
    if (nm > 0 && mf_h5_read_exact(f, "ranks/metrics", H5T_NATIVE_DOUBLE, 2, dm, *met_table) < 0)
        return mf_fail(MF_STATUS_DATA, "%s: /ranks/metrics missing or not for %d tracked metrics", path, now.n_metrics);
    int nh = 0;
    MF_TRY(read_history(f, path, history, &nh));
    L->n_history = nh;
    read_callbacks(f, L);
    return read_callback_buffers(f, path, mf_model_num_params(m) + mf_model_num_state(m), L);
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
    mf_model *m = mf_fit_model(ctx);
    mf_optimizer *o = mf_fit_optimizer(ctx);
    float *opt[2] = {NULL, NULL};
    int no = o ? mf_optimizer_state(o, opt, NULL) : 0;
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

/* Rank 0: verify every checksum first, then copy: nothing is touched unless
 * the whole file reads back as written and fits this model. */
static mf_status load_on_root(mf_fit_ctx *ctx, const char *path, loaded *L, uint64_t **rng_table, double **met_table,
                              mf_logs **history)
{
    mf_h5_lock();
    hid_t f;
    mf_status s = open_checked(path, &f, NULL);
    if (s == MF_STATUS_OK) {
        s = verify_all(f, path);
        if (s == MF_STATUS_OK) {
            snapshot sn;
            snapshot_take(&sn, ctx);
            s = read_file(ctx, f, path, L, rng_table, met_table, history);
            snapshot_end(&sn, s != MF_STATUS_OK);
            if (s != MF_STATUS_OK)
                free_buffers(L);
        }
        H5Fclose(f);
    }
    mf_h5_unlock();
    return s;
}

mf_status mf_checkpoint_load(mf_fit_ctx *ctx, const char *path, mf_checkpoint_summary *out)
{
    mf_comm *comm = mf_fit_comm(ctx);
    int world = comm ? mf_comm_size(comm) : 1, rank = comm ? mf_comm_rank(comm) : 0;
    loaded L;
    memset(&L, 0, sizeof L);
    uint64_t *rng_table = NULL;
    double *met_table = NULL;
    mf_logs *history = NULL;
    mf_status s = rank == 0 ? load_on_root(ctx, path, &L, &rng_table, &met_table, &history) : MF_STATUS_OK;
    s = mf_fit_agree(ctx, s);
    if (s != MF_STATUS_OK) {
        free_buffers(&L);
        mf_free(rng_table);
        mf_free(met_table);
        mf_free(history);
        return s;
    }
    /* rank 0 tells the others; weights and optimizer buffers follow with
     * mf_fit_broadcast_state */
    if (world > 1) {
        s = mf_comm_bcast_bytes(comm, &L, sizeof L, 0);
        if (s != MF_STATUS_OK) {
            if (rank == 0)
                free_buffers(&L);
            mf_free(rng_table);
            mf_free(met_table);
            mf_free(history);
            return s;
        }
        /* the callback buffers: each rank's own arrays, then rank 0's values */
        for (int i = 0; i < L.n_buf; i++) {
            if (rank != 0)
                L.buf[i].v = mf_alloc(L.buf[i].n * sizeof(float));
            if (s == MF_STATUS_OK)
                s = mf_comm_bcast_floats(comm, L.buf[i].v, L.buf[i].n, 0);
        }
        if (s != MF_STATUS_OK) {
            free_buffers(&L);
            mf_free(rng_table);
            mf_free(met_table);
            mf_free(history);
            return s;
        }
    }
    int nm = 2 * L.st.n_metrics; /* known on every rank only now */
    if (world > 1) {
        if (rank != 0) {
            rng_table = mf_alloc((size_t)L.st.world * 4 * sizeof *rng_table);
            met_table = mf_alloc((size_t)L.st.world * (nm ? nm : 1) * sizeof *met_table);
            history = mf_alloc((size_t)(L.n_history ? L.n_history : 1) * sizeof *history);
        }
        MF_TRY(mf_comm_bcast_bytes(comm, rng_table, (size_t)L.st.world * 4 * sizeof *rng_table, 0));
        if (nm)
            MF_TRY(mf_comm_bcast_bytes(comm, met_table, (size_t)L.st.world * nm * sizeof *met_table, 0));
        if (L.n_history)
            MF_TRY(mf_comm_bcast_bytes(comm, history, (size_t)L.n_history * sizeof *history, 0));
        MF_TRY(mf_fit_broadcast_state(ctx));
    }
    if (mf_fit_optimizer(ctx))
        mf_optimizer_set_iterations(mf_fit_optimizer(ctx), L.iterations);
    /* every rank's own dropout stream and running metric sums; with another
     * world size the streams restart and rank 0 carries the sums */
    mf_fit_state st = L.st;
    memset(st.metric_names, 0, sizeof st.metric_names);
    st.have_rng = L.st.world == world;
    if (st.have_rng) {
        memcpy(st.rng, rng_table + (size_t)rank * 4, sizeof st.rng);
    } else if (rank == 0) {
        mf_log_warn("%s was written by %d ranks, this run has %d: the data order re-shards and dropout "
                    "restarts, so the run continues but not bit for bit",
                    path, L.st.world, world);
    }
    for (int i = 0; i < st.n_metrics; i++) {
        double total = 0.0, count = 0.0;
        if (st.have_rng) {
            total = met_table[(size_t)rank * nm + 2 * i];
            count = met_table[(size_t)rank * nm + 2 * i + 1];
        } else if (rank == 0) { /* rank 0 carries the saved ranks' sums */
            for (int rk = 0; rk < L.st.world; rk++) {
                total += met_table[(size_t)rk * nm + 2 * i];
                count += met_table[(size_t)rk * nm + 2 * i + 1];
            }
        }
        st.metric_sums[2 * i] = total;
        st.metric_sums[2 * i + 1] = count;
    }
    mf_fit_state_restore(ctx, &st, history, L.n_history, L.cb, L.n_cb, L.buf, L.n_buf); /* takes the buffers */
    mf_free(met_table);
    mf_free(rng_table);
    if (out) {
        out->epoch = L.st.epoch;
        out->step_in_epoch = L.st.step_in_epoch;
        out->global_step = L.st.global_step;
        out->world_size = L.st.world;
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
            hsize_t nl = mf_h5_num_links(g);
            for (hsize_t i = 0; i < nl && s == MF_STATUS_OK; i++) {
                char name[256];
                if (mf_h5_link_name(g, i, name, sizeof name) < 0)
                    s = mf_fail(MF_STATUS_DATA, "export: %s: link %llu of /model_weights has no readable name",
                                checkpoint, (unsigned long long)i);
                else if (H5Ocopy(g, name, o, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
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
            /* the model description (a checkpoint written before there was
             * one has none): the export rebuilds its model without a config */
            if (s == MF_STATUS_OK && H5Aexists(f, "model_arch") > 0) {
                mf_model_desc d;
                s = mf_model_desc_get(f, checkpoint, &d);
                if (s == MF_STATUS_OK && mf_model_desc_put(o, &d, 1) < 0)
                    s = mf_fail(MF_STATUS_HDF5, "export: the model description: %s", mf_h5_error(err, sizeof err));
                mf_model_desc_free(&d);
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
