/* cmd_train.c: `mpifit train | summary CONFIG ...` (evaluate and predict: cmd_predict.c). */
#include <errno.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "job.h"
#include "core/core.h"
#include "core/trace.h"

static int help_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

static int fail(const char *cmd, mf_job *j)
{
    fprintf(stderr, "mpifit %s: %s\n", cmd, mf_last_error());
    mf_job_free(j);
    return 1;
}

/* user: the run's mf_model_desc, stored with the weights so that predict
 * and evaluate rebuild the model without the config */
static mf_status save_weights_hook(mf_fit_ctx *ctx, const char *path, void *user)
{
    if (mf_comm_rank(mf_fit_comm(ctx)) != 0) /* the rank-0 rule: one writer */
        return MF_STATUS_OK;
    const mf_model_desc *d = user;
    /* a [model] keras run's weights.h5 is a Keras full model: the model and
     * its weights in one file (keras.models.load_model opens it) */
    if (d && strcmp(d->arch, MF_MODEL_DESC_KERAS) == 0)
        return mf_model_to_keras_desc(mf_fit_model(ctx), path, d);
    return mf_weights_save_keras_desc(mf_fit_model(ctx), path, d && d->arch[0] ? d : NULL);
}

/* Everything of a training run that needs freeing. */
typedef struct run {
    mf_job j;
    mf_comm *comm;
    mf_loader *train, *val;
    mf_optimizer *opt;
    mf_fit_ctx *ctx;
    /* the [finetune] phase switch, [callbacks] EarlyStopping and
     * ReduceLROnPlateau (first: their logs, "lr", reach the writers), CSV
     * history, weights.h5, weights.h5 again at the end (after
     * restore_best_weights), metrics.h5 (rank 0) */
    mf_callback *cbs[7];
    int n_cbs;
    mf_callback *metrics; /* rank 0's metrics.h5 writer (one of cbs), or NULL */
    mf_callback final_weights; /* not heap: destroy is NULL */
    const char *wpath; /* weights.h5, for final_weights */
    int spe; /* steps per epoch */
    char ckpt_dir[MF_CFG_PATH + 16];
    char last_ckpt[MF_CFG_PATH + 64];
    double best; /* save_best: the best value so far */
    int resumed;
    mf_checkpoint_summary from;
    int lock_fd; /* [output] dir/.lock, held by rank 0; -1 */
    mf_model_desc desc; /* the model and class names, for weights.h5 and checkpoints */
} run;

static void run_free(run *r)
{
    if (mf_trace_stop() != MF_STATUS_OK) /* the timeline of whatever ran, also after a failure */
        mf_log_warn("[output] trace: %s", mf_last_error());
    for (int i = 0; i < r->n_cbs; i++)
        mf_callback_free(r->cbs[i]);
    /* a compiled context owns the optimizer; set-up may fail before compile */
    if (!r->ctx || mf_fit_optimizer(r->ctx) != r->opt)
        mf_optimizer_free(r->opt);
    mf_fit_ctx_free(r->ctx);
    mf_loader_free(r->train);
    mf_loader_free(r->val);
    mf_job_free(&r->j);
    mf_output_unlock(r->lock_fd);
    mf_model_desc_free(&r->desc);
    mf_comm_free(r->comm);
}

/* fit's checkpoint hook: collective; rank 0 writes, prunes, keeps best.h5. */
static mf_status checkpoint_hook(mf_fit_ctx *ctx, mf_checkpoint_reason why, void *user)
{
    run *r = user;
    const mf_config *c = &r->j.cfg;
    if (r->metrics)
        mf_metrics_h5_flush(r->metrics); /* the rows up to this checkpoint are on disk first */
    int step_in = 0, epoch = mf_fit_position(ctx, &step_in);
    mf_checkpoint_name(r->last_ckpt, sizeof r->last_ckpt, r->ckpt_dir, epoch, mf_fit_global_step(ctx));
    int nc = mf_dataset_num_classes(r->j.train);
    const char **classes = mf_alloc((size_t)(nc ? nc : 1) * sizeof *classes);
    for (int i = 0; i < nc; i++)
        classes[i] = mf_dataset_class_name(r->j.train, i);
    /* a checkpoint of a [model] keras run has no description of its own:
     * its config names the model's file */
    int own = r->desc.arch[0] && strcmp(r->desc.arch, MF_MODEL_DESC_KERAS) != 0;
    mf_checkpoint_info info = {c->text, classes, nc, r->cbs, r->n_cbs, own ? &r->desc : NULL};
    mf_status s = mf_checkpoint_save(ctx, r->last_ckpt, &info);
    mf_free(classes);
    MF_TRY(s);
    if (r->j.rank != 0)
        return MF_STATUS_OK;
    mf_checkpoint_prune(r->ckpt_dir, c->output.keep);
    /* save_best: compare the monitored value of the epoch that just ended */
    if (why == MF_CHECKPOINT_EPOCH && strcmp(c->output.save_best, "none") != 0 && mf_fit_history_len(ctx) > 0) {
        double v;
        if (mf_logs_get(mf_fit_history(ctx, mf_fit_history_len(ctx) - 1), c->output.save_best, &v)) {
            int up = strstr(c->output.save_best, "acc") != NULL;
            if (isnan(r->best) || (up ? v > r->best : v < r->best)) {
                r->best = v;
                if (mf_checkpoint_mark_best(r->ckpt_dir, r->last_ckpt) != MF_STATUS_OK)
                    mf_log_warn("save_best: %s", mf_last_error());
            }
        } else {
            mf_log_warn("save_best: '%s' is not among the epoch's metrics", c->output.save_best);
        }
    }
    return MF_STATUS_OK;
}

/* Rank 0: does the checkpoint at path belong to this run (the same class
 * names, in the same order)? If report, also print how the config changed
 * since it was written, key by key. */
static mf_status check_meta(run *r, const char *path, int report)
{
    mf_checkpoint_meta m;
    MF_TRY(mf_checkpoint_read_meta(path, &m));
    const mf_dataset *ds = r->j.train;
    int nc = mf_dataset_num_classes(ds), same = m.n_classes == nc;
    for (int i = 0; same && i < nc; i++)
        same = strcmp(m.class_names[i], mf_dataset_class_name(ds, i)) == 0;
    mf_status s = MF_STATUS_OK;
    if (m.n_classes > 0 && !same) {
        char was[512] = "", now[512] = "";
        for (int i = 0; i < m.n_classes && strlen(was) + 40 < sizeof was; i++)
            snprintf(was + strlen(was), sizeof was - strlen(was), "%s%.32s", i ? ", " : "", m.class_names[i]);
        for (int i = 0; i < nc && strlen(now) + 40 < sizeof now; i++)
            snprintf(now + strlen(now), sizeof now - strlen(now), "%s%.32s", i ? ", " : "",
                     mf_dataset_class_name(ds, i));
        s = mf_fail(MF_STATUS_CONFIG, "%s was written for the classes [%s]; this run's data has [%s]", path, was, now);
    }
    if (s == MF_STATUS_OK && report && m.config && m.config[0]) {
        mf_config was;
        mf_config_defaults(&was);
        char diff[4096];
        if (mf_config_parse(&was, path, m.config) == MF_STATUS_OK) {
            mf_config_validate(&was); /* the derived values the run compares with */
            int n = mf_config_diff(&was, &r->j.cfg, diff, sizeof diff);
            if (n > 0)
                printf("config changed since %s (%d key%s):\n%s", path, n, n == 1 ? "" : "s", diff);
        } else {
            printf("config: cannot compare with the one %s was written with (%s)\n", path, mf_last_error());
        }
        mf_config_free(&was);
    }
    mf_checkpoint_meta_free(&m);
    return s;
}

/* --resume auto|PATH: collective; sets r->resumed. auto tries the checkpoints
 * newest first and falls back past any that fails to open, verify or match
 * this run (architecture, optimizer, class names), naming each and why; a
 * failed load changes nothing, so the next try starts clean. */
static mf_status resume(run *r)
{
    mf_job *j = &r->j;
    int is_auto = strcmp(j->resume, "auto") == 0;
    char **names = NULL;
    int n = 1;
    if (j->rank == 0) {
        mf_checkpoint_remove_temporaries(r->ckpt_dir);
        if (is_auto && (n = mf_checkpoint_list(r->ckpt_dir, &names)) < 0)
            n = 0;
    }
    if (j->comm && j->world > 1)
        MF_TRY(mf_comm_bcast_bytes(j->comm, &n, sizeof n, 0));
    if (n == 0) {
        if (j->rank == 0)
            mf_log_info("--resume auto: no checkpoint (ckpt-EPOCH-STEP.h5) in %s; starting from the beginning",
                        r->ckpt_dir);
        return MF_STATUS_OK;
    }
    mf_status s = MF_STATUS_OK;
    char path[MF_CFG_PATH + 300] = "";
    for (int i = 0; i < n; i++) {
        if (j->rank == 0) {
            if (is_auto)
                snprintf(path, sizeof path, "%s/%s", r->ckpt_dir, names[i]);
            else
                mf_strlcpy(path, j->resume, sizeof path);
        }
        s = mf_job_agree(j, j->rank == 0 ? check_meta(r, path, 0) : MF_STATUS_OK);
        if (s == MF_STATUS_OK)
            s = mf_checkpoint_load(r->ctx, path, &r->from);
        if (s == MF_STATUS_OK || !is_auto)
            break;
        if (j->rank == 0)
            mf_log_warn("skipping checkpoint: %s; trying an older one", mf_last_error());
    }
    mf_checkpoint_list_free(names, is_auto ? n : 0);
    if (s != MF_STATUS_OK && is_auto)
        s = mf_fail(MF_STATUS_IO,
                    "--resume auto: none of the %d checkpoints in %s can be resumed (each is named above); "
                    "move them away to start from the beginning",
                    n, r->ckpt_dir);
    MF_TRY(s);
    r->resumed = 1;
    if (j->rank == 0) {
        printf("resumed from %s: epoch %d, step %d of it, global step %ld (written by %d rank%s)\n", path,
               r->from.epoch + 1, r->from.step_in_epoch, r->from.global_step, r->from.world_size,
               r->from.world_size == 1 ? "" : "s");
        check_meta(r, path, 1);
        fflush(stdout);
    }
    return MF_STATUS_OK;
}

/* Set up, collectively: any rank's failure stops all with that rank's message. */
static mf_status setup(run *r, int argc, char **argv, int *spe)
{
    mf_job *j = &r->j;
    MF_TRY(mf_job_parse(j, argc, argv, MF_JOB_TRAIN_DATA, r->comm));
    mf_set_num_threads(mf_job_threads(j));
    const mf_config *c = &j->cfg;
    MF_TRY(mf_job_agree(j, mf_job_open_data(j, 0)));
    MF_TRY(mf_job_agree(j, mf_job_build_model(j)));
    if (c->finetune.epochs > 0 && !mf_model_find_layer(j->model, c->finetune.trainable_from))
        /* now, not after hours of the first phase */
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [finetune] trainable_from = %s: model '%s' has no such layer "
                       "(`mpifit summary %s` lists them)",
                       c->path, c->finetune.trainable_from, mf_model_name(j->model), c->path);
    mf_job_model_desc(j, &r->desc);
    MF_TRY(mf_job_agree(j, j->rank == 0 ? mf_mkdir_p(c->output.dir) : MF_STATUS_OK));
    /* rank 0 writes the directory: it holds the lock for the run */
    MF_TRY(mf_job_agree(j, j->rank == 0 ? mf_output_lock(c->output.dir, &r->lock_fd) : MF_STATUS_OK));
    if (j->resume && strcmp(j->resume, "auto") != 0 && access(j->resume, R_OK) != 0)
        MF_TRY(mf_job_agree(j, mf_fail(MF_STATUS_IO, "--resume %s: %s", j->resume, strerror(errno))));
    mf_loader_options lo = mf_job_loader_options(j, 1);
    MF_TRY(mf_job_agree(j, mf_loader_create(&r->train, j->train, &lo)));
    if (j->validation) {
        mf_loader_options vo = mf_job_loader_options(j, 0);
        MF_TRY(mf_job_agree(j, mf_loader_create(&r->val, j->validation, &vo)));
    }
    *spe = c->train.steps_per_epoch > 0
        ? c->train.steps_per_epoch
        : mf_shard_train_steps(mf_dataset_size(j->train), j->world, c->data.batch_size, c->data.drop_remainder);
    r->spe = *spe;
    mf_schedule sch;
    MF_TRY(mf_job_make_optimizer(j, *spe, &r->opt, &sch));
    if (c->dist.scale_lr)
        mf_schedule_scale_for_world(&sch, j->world);
    r->ctx = mf_fit_ctx_create(j->model, (uint64_t)c->train.seed, j->rank);
    /* [train] class_weight: by the class names of the data */
    int nc = mf_dataset_num_classes(j->train), given = 0;
    const char **names = mf_alloc((size_t)(nc ? nc : 1) * sizeof *names);
    float *cw = mf_alloc((size_t)(nc ? nc : 1) * sizeof *cw);
    for (int i = 0; i < nc; i++)
        names[i] = mf_dataset_class_name(j->train, i);
    mf_status s = mf_job_agree(j, mf_config_class_weights(c, names, nc, cw, &given));
    mf_loss loss = {cw, nc};
    if (s == MF_STATUS_OK)
        s = mf_compile(r->ctx, r->opt, &sch, given ? &loss : NULL, "accuracy"); /* copies the weights */
    mf_free(names);
    mf_free(cw);
    MF_TRY(s);
    MF_TRY(mf_fit_set_accumulation(r->ctx, c->train.accumulate_steps));
    if (c->data.batch_size % c->train.accumulate_steps != 0)
        return mf_fail(MF_STATUS_CONFIG, "%s: [data] batch_size %d is not a multiple of [train] accumulate_steps %d",
                       c->path, c->data.batch_size, c->train.accumulate_steps);
    mf_dist_options d = mf_job_dist_options(j);
    MF_TRY(mf_fit_distribute(r->ctx, r->comm, &d));
    MF_TRY(mf_job_deterministic(j, r->ctx));
    snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", c->output.dir);
    MF_TRY(mf_job_agree(j, j->rank == 0 ? mf_mkdir_p(r->ckpt_dir) : MF_STATUS_OK));
    r->best = NAN;
    if (j->resume)
        MF_TRY(resume(r));
    return MF_STATUS_OK;
}

static void train_usage(void)
{
    printf("usage: [mpirun -np N] mpifit train CONFIG [--set section.key=value ...] [--weights FILE.h5] [--verbose]\n\n"
           "Train [model] on [data] train as configured (configs/README.md lists every key),\n"
           "validating on [data] validation after every epoch. Under mpirun/srun every rank\n"
           "trains on its own shard of each global batch and gradients are averaged; rank 0\n"
           "prints and writes, other ranks print only errors unless --verbose.\n"
           "Writes to [output] dir:\n"
           "  metrics.h5    per-epoch and per-step series, readable while the run goes\n"
           "  checkpoints/  ckpt-EPOCH-STEP.h5 every epoch or N steps ([output] checkpoint_every)\n"
           "  weights.h5    the weights after the last epoch, in Keras' HDF5 layout\n"
           "  history.csv   one row of metrics per epoch\n"
           "--weights starts from a Keras-layout weights file (after [model] weights).\n"
           "--resume auto continues from the newest complete checkpoint in [output] dir\n"
           "(skipping corrupt ones), --resume PATH from that file. SIGTERM or SIGUSR1:\n"
           "finish the step, write a checkpoint, exit [train] preempted_exit_status (75) on every\n"
           "rank; a second, different signal (or the same one 3 s later or more) exits at once\n"
           "(128 + signal).\n"
           "Exit status: 0 trained to the end (or nothing left to do); 75 preempted, checkpoint\n"
           "written (requeue and --resume auto); 1 error; 2 no CONFIG; 124 a rank waited past\n"
           "[dist] timeout; 128 + N killed by a second signal N.\n");
}

/* One line on rank 0: what is trained, how, on how much. */
static void print_plan(const run *r, int spe)
{
    const mf_config *c = &r->j.cfg;
    mf_model *m = r->j.model;
    printf("model: %s, %zu parameters (%zu trainable); optimizer %s, learning rate %g; %d steps/epoch of "
           "%d x %d images; %d compute thread%s per rank\n",
           mf_model_name(m), mf_model_count_trainable(m) + mf_model_count_non_trainable(m), mf_model_count_trainable(m),
           c->optimizer.name, (double)c->optimizer.learning_rate * (c->dist.scale_lr ? r->j.world : 1), spe,
           c->data.batch_size, r->j.world, mf_job_threads(&r->j), mf_job_threads(&r->j) == 1 ? "" : "s");
    if (c->finetune.epochs > 0)
        printf("then fine-tuning: %d epoch%s from layer %s, learning rate %g (%s)\n", c->finetune.epochs,
               c->finetune.epochs == 1 ? "" : "s", c->finetune.trainable_from,
               (double)c->finetune.learning_rate * (c->dist.scale_lr ? r->j.world : 1), c->finetune.schedule);
    fflush(stdout);
}

/* weights.h5 once more when training ends: EarlyStopping's on_train_end,
 * which runs before this, may have put the best epoch's weights back. */
static mf_status final_weights_end(mf_callback *cb, mf_fit_ctx *ctx, mf_logs *logs)
{
    (void)logs;
    run *r = cb->user;
    return save_weights_hook(ctx, r->wpath, &r->desc);
}

/* [callbacks] (every rank decides alike: their logs are global), history.csv,
 * weights.h5 on every rank (they write on rank 0), metrics.h5 on rank 0. */
static mf_status add_callbacks(run *r, const char *csv, const char *wpath)
{
    const mf_config *c = &r->j.cfg;
    if (c->finetune.epochs > 0) {
        /* every rank: the switch is collective in effect (same step, same layers) */
        mf_schedule fs = mf_job_finetune_schedule(&r->j, r->spe);
        r->cbs[r->n_cbs++] = mf_finetune(c->train.epochs, c->finetune.trainable_from, c->model.train_bn, &fs);
    }
    const struct mf_config_callbacks *k = &c->callbacks;
    if (k->early_stopping)
        r->cbs[r->n_cbs++] =
            mf_early_stopping(k->early_stopping_monitor, k->early_stopping_min_delta, k->early_stopping_patience,
                              k->early_stopping_mode, k->early_stopping_restore_best_weights);
    if (k->reduce_lr_on_plateau) {
        mf_reduce_lr_options o = {.monitor = k->reduce_lr_monitor,
                                  .factor = k->reduce_lr_factor,
                                  .patience = k->reduce_lr_patience,
                                  .mode = k->reduce_lr_mode,
                                  .min_delta = k->reduce_lr_min_delta,
                                  .cooldown = k->reduce_lr_cooldown,
                                  .min_lr = k->reduce_lr_min_lr,
                                  .verbose = c->train.verbose > 0};
        if (!(r->cbs[r->n_cbs] = mf_reduce_lr_on_plateau(&o))) /* checked by mf_config_validate already */
            return mf_fail(MF_STATUS_CONFIG, "%s: [callbacks] %s", c->path, mf_last_error());
        r->n_cbs++;
    }
    r->cbs[r->n_cbs++] = mf_csv_logger(csv, r->resumed);
    r->cbs[r->n_cbs++] = mf_model_checkpoint(wpath, "loss", "min", 0, save_weights_hook, &r->desc);
    if (k->early_stopping && k->early_stopping_restore_best_weights) {
        r->final_weights.name = "FinalWeights";
        r->final_weights.on_train_end = final_weights_end;
        r->wpath = wpath; /* mf_cmd_train's, alive for the whole fit */
        r->final_weights.user = r;
        r->cbs[r->n_cbs++] = &r->final_weights;
    }
    if (r->j.rank != 0) /* the rank-0 rule: one writer of metrics.h5 */
        return MF_STATUS_OK;
    char mpath[MF_CFG_PATH + 32];
    snprintf(mpath, sizeof mpath, "%s/metrics.h5", c->output.dir);
    const char *classes[256];
    int nc = mf_dataset_num_classes(r->j.train) < 256 ? mf_dataset_num_classes(r->j.train) : 256;
    for (int i = 0; i < nc; i++)
        classes[i] = mf_dataset_class_name(r->j.train, i);
    mf_metrics_options mo = {c->text,
                             classes,
                             nc,
                             r->j.world,
                             c->output.metrics_flush_steps,
                             r->resumed ? r->from.epoch : -1,
                             r->resumed ? r->from.global_step : 0};
    r->metrics = r->cbs[r->n_cbs++] = mf_metrics_h5_writer(mpath, &mo);
    return MF_STATUS_OK;
}

/* [train] and [output] -> mf_fit's options, with the checkpoint hook. */
static mf_fit_options fit_options(run *r)
{
    const mf_config *c = &r->j.cfg;
    mf_fit_options fo = mf_fit_options_default();
    fo.checkpoint = checkpoint_hook;
    fo.checkpoint_user = r;
    fo.checkpoint_every = c->output.checkpoint_steps; /* parsed and checked by mf_config_validate */
    fo.epochs = mf_job_total_epochs(&r->j); /* the [finetune] phase's epochs follow [train]'s */
    fo.steps_per_epoch = c->train.steps_per_epoch;
    fo.verbose = c->train.verbose;
    fo.verbose_all_ranks = r->j.verbose_ranks;
    fo.progress_every = c->train.progress_every;
    fo.callbacks = r->cbs;
    fo.n_callbacks = r->n_cbs;
    return fo;
}

/* The last epoch's metrics and where the files went (rank 0). */
static void print_result(const run *r, const char *wpath, const char *csv)
{
    const mf_logs *h = mf_fit_history(r->ctx, mf_fit_history_len(r->ctx) - 1);
    printf("trained %d epochs on %d rank%s:", mf_fit_history_len(r->ctx), r->j.world, r->j.world == 1 ? "" : "s");
    for (int i = 0; i < h->n; i++)
        printf(" %s=%.4f", h->name[i], h->value[i]);
    printf("\nweights: %s\nhistory: %s\n", wpath, csv);
}

int mf_cmd_train(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        train_usage();
        return argc < 2 ? 2 : 0;
    }
    run r;
    memset(&r, 0, sizeof r);
    r.lock_fd = -1;
    /* from the start: a signal during set-up is a request to stop, not a kill */
    mf_preemption_install();
    if (mf_comm_create(&argc, &argv, &r.comm) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit train: %s\n", mf_last_error());
        return 1;
    }
    int rank = mf_comm_rank(r.comm), spe = 0;
    mf_status s = setup(&r, argc, argv, &spe);
    const mf_config *c = &r.j.cfg;
    if (s == MF_STATUS_OK && r.resumed && mf_fit_position(r.ctx, NULL) >= mf_job_total_epochs(&r.j)) {
        if (rank == 0)
            printf("nothing to do: the checkpoint has finished %d of %d epochs ([train] epochs + [finetune] epochs)\n",
                   mf_fit_position(r.ctx, NULL), mf_job_total_epochs(&r.j));
        run_free(&r);
        return 0;
    }
    char csv[MF_CFG_PATH + 32], wpath[MF_CFG_PATH + 32];
    snprintf(csv, sizeof csv, "%s/history.csv", c->output.dir);
    snprintf(wpath, sizeof wpath, "%s/weights.h5", c->output.dir);
    if (s == MF_STATUS_OK) {
        if (rank == 0)
            print_plan(&r, spe);
        s = add_callbacks(&r, csv, wpath);
        mf_fit_options fo = fit_options(&r);
        mf_model_set_profiling(r.j.model, c->train.profile);
        if (s == MF_STATUS_OK && c->output.trace) {
            /* every rank's clock starts at this agreement (a barrier) */
            char tpath[MF_CFG_PATH + 48];
            snprintf(tpath, sizeof tpath, "%s/trace-rank%d.json", c->output.dir, rank);
            s = mf_job_agree(&r.j, MF_STATUS_OK);
            if (s == MF_STATUS_OK)
                s = mf_job_agree(&r.j, mf_trace_start(tpath, rank, 1000000));
        }
        if (s == MF_STATUS_OK)
            s = mf_fit(r.ctx, r.train, r.val, &fo);
        if (c->train.profile && rank == 0)
            mf_model_profile_report(r.j.model, stdout);
    }
    if (s == MF_STATUS_PREEMPTED) {
        /* the preemption contract: fit returns this status on every rank
         * only once the checkpoint is on disk (a failed write is an error,
         * exit 1), so a launcher may requeue on it and on nothing else */
        int status = c->train.preempted_exit_status;
        if (rank == 0) {
            printf("preempted: %s; checkpoint %s written; continue with --resume auto (exit status %d)\n",
                   mf_last_error(), r.last_ckpt, status);
            fflush(stdout);
        }
        run_free(&r);
        return status;
    }
    if (s == MF_STATUS_OK && rank == 0 && mf_fit_history_len(r.ctx) > 0)
        print_result(&r, wpath, csv);
    /* collective failures carry the same message everywhere: rank 0 says it */
    if (s != MF_STATUS_OK && rank == 0)
        fprintf(stderr, "mpifit train: %s\n", mf_last_error());
    run_free(&r);
    return s == MF_STATUS_OK ? 0 : 1;
}

int mf_cmd_summary(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        printf("usage: mpifit summary CONFIG [--set section.key=value ...]\n\n"
               "Print the model of [model] as Keras' model.summary() does: every layer with its\n"
               "type, output shape and parameter count, then total / trainable / non-trainable\n"
               "parameters ([model] freeze_base moves the base to non-trainable).\n");
        return argc < 2 ? 2 : 0;
    }
    mf_job j;
    if (mf_job_parse(&j, argc, argv, 0, NULL) != MF_STATUS_OK || mf_job_build_model(&j) != MF_STATUS_OK)
        return fail("summary", &j);
    mf_model_summary(j.model, stdout);
    mf_job_free(&j);
    return 0;
}
