/* cmd_train.c: `mpifit train | summary | evaluate | predict CONFIG ...`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "job.h"
#include "core/core.h"

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

/* mkdir -p */
static mf_status make_dirs(const char *path)
{
    char buf[MF_CFG_PATH];
    if (!mf_strlcpy(buf, path, sizeof buf))
        return mf_fail(MF_STATUS_IO, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char keep = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return mf_fail(MF_STATUS_IO, "cannot create directory %s: %s", buf, strerror(errno));
            *p = keep;
            if (!keep)
                break;
        }
    }
    return MF_STATUS_OK;
}

/* [optimizer] -> optimizer and schedule, for steps_per_epoch steps an epoch. */
static mf_status make_optimizer(const mf_job *j, int steps_per_epoch, mf_optimizer **opt, mf_schedule *sch)
{
    const mf_config *c = &j->cfg;
    int adam = strcmp(c->optimizer.name, "adam") == 0;
    mf_optimizer_options o = mf_optimizer_defaults(adam ? MF_OPT_ADAM : MF_OPT_SGD);
    if (!adam) {
        o.momentum = c->optimizer.momentum;
        o.nesterov = c->optimizer.nesterov;
    }
    o.weight_decay = c->optimizer.weight_decay;
    *opt = mf_optimizer_create(j->model, &o);
    if (!*opt)
        return mf_fail(MF_STATUS_CONFIG, "%s: [optimizer]: %s", c->path, mf_last_error());
    memset(sch, 0, sizeof *sch);
    sch->kind = strcmp(c->optimizer.schedule, "cosine") == 0 ? MF_SCHEDULE_COSINE
              : strcmp(c->optimizer.schedule, "step") == 0   ? MF_SCHEDULE_STEP
                                                             : MF_SCHEDULE_CONSTANT;
    sch->base_lr = c->optimizer.learning_rate;
    sch->warmup_steps = lroundf(c->optimizer.warmup_epochs * (float)steps_per_epoch);
    sch->total_steps = (long)c->train.epochs * steps_per_epoch;
    sch->decay_rate = c->optimizer.decay_rate;
    sch->decay_steps = lroundf(c->optimizer.decay_epochs * (float)steps_per_epoch);
    return MF_STATUS_OK;
}

static mf_status save_weights_hook(mf_fit_ctx *ctx, const char *path, void *user)
{
    (void)user;
    return mf_weights_save_keras(mf_fit_model(ctx), path);
}

int mf_cmd_train(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        printf("usage: mpifit train CONFIG [--set section.key=value ...] [--weights FILE.h5]\n\n"
               "Train [model] on [data] train as configured (configs/README.md lists every key),\n"
               "validating on [data] validation after every epoch. Writes to [output] dir:\n"
               "  weights.h5    the weights after the last epoch, in Keras' HDF5 layout\n"
               "  history.csv   one row of metrics per epoch\n"
               "--weights starts from a Keras-layout weights file (after [model] weights).\n");
        return argc < 2 ? 2 : 0;
    }
    mf_job j;
    if (mf_job_parse(&j, argc, argv, 1) != MF_STATUS_OK || mf_job_open_data(&j, 0) != MF_STATUS_OK ||
        mf_job_build_model(&j) != MF_STATUS_OK || make_dirs(j.cfg.output.dir) != MF_STATUS_OK)
        return fail("train", &j);
    const mf_config *c = &j.cfg;
    mf_loader *train = NULL, *val = NULL;
    mf_fit_ctx *ctx = NULL;
    mf_callback *cbs[2] = {NULL, NULL};
    mf_loader_options lo = mf_job_loader_options(&j, 1);
    mf_status s = mf_loader_create(&train, j.train, &lo);
    if (s == MF_STATUS_OK && j.validation) {
        mf_loader_options vo = mf_job_loader_options(&j, 0);
        s = mf_loader_create(&val, j.validation, &vo);
    }
    int spe = c->train.steps_per_epoch > 0
                  ? c->train.steps_per_epoch
                  : mf_shard_train_steps(mf_dataset_size(j.train), j.world, c->data.batch_size, c->data.drop_remainder);
    mf_optimizer *opt = NULL;
    mf_schedule sch;
    if (s == MF_STATUS_OK)
        s = make_optimizer(&j, spe, &opt, &sch);
    if (s == MF_STATUS_OK) {
        ctx = mf_fit_ctx_create(j.model, (uint64_t)c->train.seed, j.rank);
        s = mf_compile(ctx, opt, &sch, NULL, "accuracy");
    }
    char csv[MF_CFG_PATH + 32], wpath[MF_CFG_PATH + 32];
    snprintf(csv, sizeof csv, "%s/history.csv", c->output.dir);
    snprintf(wpath, sizeof wpath, "%s/weights.h5", c->output.dir);
    if (s == MF_STATUS_OK) {
        if (j.rank == 0) {
            printf("model: %s, %zu parameters (%zu trainable); optimizer %s, learning rate %g; %d steps/epoch of "
                   "%d x %d images\n", mf_model_name(j.model),
                   mf_model_count_trainable(j.model) + mf_model_count_non_trainable(j.model),
                   mf_model_count_trainable(j.model), c->optimizer.name, (double)c->optimizer.learning_rate, spe,
                   c->data.batch_size, j.world);
            fflush(stdout);
        }
        cbs[0] = mf_csv_logger(csv, 0);
        cbs[1] = mf_model_checkpoint(wpath, "loss", "min", 0, save_weights_hook, NULL);
        mf_fit_options fo = mf_fit_options_default();
        fo.epochs = c->train.epochs;
        fo.steps_per_epoch = c->train.steps_per_epoch;
        fo.verbose = c->train.verbose;
        fo.progress_every = c->train.progress_every;
        fo.callbacks = cbs;
        fo.n_callbacks = 2;
        s = mf_fit(ctx, train, val, &fo);
    }
    if (s == MF_STATUS_OK && j.rank == 0 && mf_fit_history_len(ctx) > 0) {
        const mf_logs *h = mf_fit_history(ctx, mf_fit_history_len(ctx) - 1);
        printf("trained %d epochs:", mf_fit_history_len(ctx));
        for (int i = 0; i < h->n; i++)
            printf(" %s=%.4f", h->name[i], h->value[i]);
        printf("\nweights: %s\nhistory: %s\n", wpath, csv);
    }
    if (s != MF_STATUS_OK)
        fprintf(stderr, "mpifit train: %s\n", mf_last_error());
    mf_callback_free(cbs[0]);
    mf_callback_free(cbs[1]);
    mf_fit_ctx_free(ctx);  /* frees opt */
    if (!ctx)
        mf_optimizer_free(opt);
    mf_loader_free(train);
    mf_loader_free(val);
    mf_job_free(&j);
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
    if (mf_job_parse(&j, argc, argv, 0) != MF_STATUS_OK || mf_job_build_model(&j) != MF_STATUS_OK)
        return fail("summary", &j);
    mf_model_summary(j.model, stdout);
    mf_job_free(&j);
    return 0;
}

int mf_cmd_evaluate(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        printf("usage: mpifit evaluate CONFIG --weights FILE.h5 [--set section.key=value ...] [DATA]\n\n"
               "Evaluate the weights on DATA (a class-folder dir or packed .h5; default [data]\n"
               "validation). The last line is machine-readable:\n"
               "  loss=0.1234 accuracy=0.9531\n"
               "(every metric as name=value, space-separated, %%.6g).\n");
        return argc < 2 ? 2 : 0;
    }
    mf_job j;
    if (mf_job_parse(&j, argc, argv, 0) != MF_STATUS_OK)
        return fail("evaluate", &j);
    if (!j.weights) {
        mf_fail(MF_STATUS_INVALID, "--weights FILE.h5 is required");
        return fail("evaluate", &j);
    }
    const char *data = j.n_positional ? j.positional[0] : j.cfg.data.validation;
    if (strcmp(data, "none") == 0) {
        mf_fail(MF_STATUS_CONFIG, "%s: nothing to evaluate: give DATA or set [data] validation", j.cfg.path);
        return fail("evaluate", &j);
    }
    mf_dataset_options o = mf_dataset_options_default();
    mf_dataset *ds = NULL;
    if (mf_dataset_open(&ds, data, &o) != MF_STATUS_OK)
        return fail("evaluate", &j);
    j.validation = ds;
    if (j.cfg.model.classes == 0)
        j.cfg.model.classes = mf_dataset_num_classes(ds);
    if (mf_job_build_model(&j) != MF_STATUS_OK)
        return fail("evaluate", &j);
    mf_loader *l = NULL;
    mf_loader_options lo = mf_job_loader_options(&j, 0);
    mf_status s = mf_loader_create(&l, ds, &lo);
    mf_fit_ctx *ctx = mf_fit_ctx_create(j.model, 1, 0);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
    if (s == MF_STATUS_OK)
        s = mf_compile(ctx, mf_optimizer_create(j.model, &oo), NULL, NULL, "accuracy");
    mf_logs logs;
    if (s == MF_STATUS_OK)
        s = mf_evaluate(ctx, l, 0, &logs);
    if (s == MF_STATUS_OK) {
        printf("evaluated %s on %d images of %s\n", j.weights, mf_dataset_size(ds), data);
        for (int i = 0; i < logs.n; i++)
            printf("%s%s=%.6g", i ? " " : "", logs.name[i], logs.value[i]);
        printf("\n");
    } else {
        fprintf(stderr, "mpifit evaluate: %s\n", mf_last_error());
    }
    mf_fit_ctx_free(ctx);
    mf_loader_free(l);
    mf_job_free(&j);
    return s == MF_STATUS_OK ? 0 : 1;
}

int mf_cmd_predict(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        printf("usage: mpifit predict CONFIG --weights FILE.h5 IMAGE.jpg...\n\n"
               "One line per image, tab-separated: the path, the predicted class name, then\n"
               "the probability of every class in class order (the sorted class folders of\n"
               "[data] train), e.g.\n"
               "  leaf.jpg\tbean_rust\t0.0312\t0.9511\t0.0177\n"
               "An image that cannot be read is reported on stderr and the exit status is 1.\n");
        return argc < 2 ? 2 : 0;
    }
    mf_job j;
    if (mf_job_parse(&j, argc, argv, 0) != MF_STATUS_OK)
        return fail("predict", &j);
    j.info = stderr;  /* stdout carries only the result lines */
    if (!j.weights || j.n_positional == 0) {
        mf_fail(MF_STATUS_INVALID, "--weights FILE.h5 and at least one IMAGE are required");
        return fail("predict", &j);
    }
    mf_dataset_options o = mf_dataset_options_default();
    o.quiet = 1;
    if (mf_dataset_open(&j.train, j.cfg.data.train, &o) != MF_STATUS_OK) {
        char why[900];
        mf_strlcpy(why, mf_last_error(), sizeof why);
        mf_fail(MF_STATUS_CONFIG, "the class names come from [data] train, which cannot be read: %s", why);
        return fail("predict", &j);
    }
    if (mf_job_build_model(&j) != MF_STATUS_OK)
        return fail("predict", &j);
    int S = j.cfg.model.input_size, C = j.classes, bad = 0;
    float *x = mf_alloc((size_t)S * S * 3 * sizeof(float)), *p = mf_alloc((size_t)C * sizeof(float));
    mf_fit_ctx *ctx = mf_fit_ctx_create(j.model, 1, 0);
    for (int i = 0; i < j.n_positional; i++) {
        const char *path = j.positional[i];
        if (mf_image_load(path, S, x) != MF_STATUS_OK) {
            fprintf(stderr, "mpifit predict: %s\n", mf_last_error());
            bad++;
            continue;
        }
        mf_predict(ctx, x, 1, 1, p);
        int best = 0;
        for (int k = 1; k < C; k++)
            best = p[k] > p[best] ? k : best;
        printf("%s\t%s", path, mf_dataset_class_name(j.train, best));
        for (int k = 0; k < C; k++)
            printf("\t%.4f", p[k]);
        printf("\n");
    }
    mf_fit_ctx_free(ctx);
    mf_free(x);
    mf_free(p);
    mf_job_free(&j);
    return bad ? 1 : 0;
}
