/* job.c: see job.h. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "job.h"
#include "core/core.h"

mf_status mf_job_agree(mf_job *j, mf_status s)
{
    if (!j->comm || mf_comm_size(j->comm) == 1)
        return s;
    return mf_comm_agree(j->comm, s);
}

/* Rank 0 reads the config; its text (or its failure) goes to every rank. */
static mf_status load_config(mf_job *j, const char *path)
{
    char *text = NULL;
    mf_status s = MF_STATUS_OK;
    if (j->rank == 0)
        s = mf_config_read_file(path, &text);
    MF_TRY(mf_job_agree(j, s));
    if (j->comm && j->world > 1) {
        uint64_t len = text ? strlen(text) : 0;
        MF_TRY(mf_comm_bcast_bytes(j->comm, &len, sizeof len, 0));
        if (j->rank != 0)
            text = mf_alloc(len + 1);
        s = mf_comm_bcast_bytes(j->comm, text, len + 1, 0);
    }
    if (s == MF_STATUS_OK)
        s = mf_config_parse(&j->cfg, path, text);
    mf_free(text);
    return s;
}

int mf_job_threads(const mf_job *j)
{
    if (j->cfg.dist.threads > 0)
        return j->cfg.dist.threads;
    /* what the launcher says (srun, mpirun -x, a batch script) */
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0)
        return atoi(env);
    /* the cores this rank may run on (mpirun --bind-to, srun --cpus-per-task),
     * but no more than its share of the node when ranks are not bound */
    int visible = omp_get_num_procs();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int local = j->comm ? mf_comm_local_size(j->comm) : 1;
    int share = online > 0 ? (int)(online / local) : 1;
    int t = visible < share ? visible : share;
    return t > 0 ? t : 1;
}

/* 1 if s ends in suffix, ignoring case */
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int mf_job_is_config(const char *a)
{
    if (a[0] == '-')
        return 0;
    if (ends_with(a, ".ini"))
        return 1;
    if (ends_with(a, ".jpg") || ends_with(a, ".jpeg") || ends_with(a, ".h5") || ends_with(a, ".hdf5") ||
        strstr(a, ".h5:"))
        return 0;
    struct stat st;
    if (stat(a, &st) != 0 || S_ISDIR(st.st_mode))
        return 0;
    /* a file named otherwise: a JPEG or HDF5 file by its first bytes is not a config */
    unsigned char head[4] = {0, 0, 0, 0};
    FILE *f = fopen(a, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    if (got >= 2 && head[0] == 0xFF && head[1] == 0xD8)
        return 0;
    return !(got == 4 && memcmp(head, "\x89HDF", 4) == 0);
}

mf_status mf_job_parse(mf_job *j, int argc, char **argv, unsigned flags, mf_comm *comm)
{
    memset(j, 0, sizeof *j);
    j->comm = comm;
    j->rank = mf_comm_rank(comm);
    j->world = mf_comm_size(comm);
    j->info = stdout;
    mf_config_defaults(&j->cfg);
    j->has_config = argc >= 2 && (flags & MF_JOB_CONFIG_OPTIONAL ? mf_job_is_config(argv[1]) : argv[1][0] != '-');
    if (!j->has_config && !(flags & MF_JOB_CONFIG_OPTIONAL))
        return mf_fail(MF_STATUS_INVALID, "%s: the first argument must be a config file (try --help)", argv[0]);
    if (j->has_config)
        MF_TRY(load_config(j, argv[1]));
    for (int i = j->has_config ? 2 : 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--set") == 0 || strcmp(a, "--weights") == 0 || strcmp(a, "--resume") == 0) {
            if (i + 1 >= argc)
                return mf_fail(MF_STATUS_INVALID, "%s: %s needs a value", argv[0], a);
            const char *v = argv[++i];
            if (strcmp(a, "--set") == 0) {
                if (j->n_sets == MF_JOB_MAX_ARGS)
                    return mf_fail(MF_STATUS_INVALID, "%s: more than %d --set", argv[0], MF_JOB_MAX_ARGS);
                MF_TRY(mf_config_set(&j->cfg, v));
                j->sets[j->n_sets++] = v;
            } else if (strcmp(a, "--weights") == 0)
                j->weights = v;
            else
                j->resume = v;
        } else if (strcmp(a, "--verbose") == 0) {
            j->verbose_ranks = 1;
        } else if (a[0] == '-' && a[1]) {
            return mf_fail(MF_STATUS_INVALID, "%s: unknown option '%s' (try --help)", argv[0], a);
        } else if (j->n_positional < MF_JOB_MAX_ARGS) {
            j->positional[j->n_positional++] = a;
        } else {
            return mf_fail(MF_STATUS_INVALID, "%s: more than %d arguments", argv[0], MF_JOB_MAX_ARGS);
        }
    }
    if (flags & MF_JOB_TRAIN_DATA)
        MF_TRY(mf_config_validate(&j->cfg));
    if (comm) /* from here on a stuck rank ends the job instead of hanging it */
        mf_comm_set_timeout(comm, (double)j->cfg.dist.timeout);
    return MF_STATUS_OK;
}

mf_status mf_job_open_data(mf_job *j, int need_validation)
{
    const mf_config *c = &j->cfg;
    mf_dataset_options o = mf_dataset_options_default();
    o.seed = (uint64_t)c->train.seed;
    o.quiet = j->rank != 0;
    o.max_image_bytes = (size_t)((double)c->data.max_image_mb * 1048576.0);
    int split = c->data.validation_split > 0.0f;
    if (split) {
        o.validation_split = c->data.validation_split;
        o.subset = MF_SUBSET_TRAINING;
    }
    MF_TRY(mf_dataset_open(&j->train, c->data.train, &o));
    if (split) {
        o.subset = MF_SUBSET_VALIDATION;
        MF_TRY(mf_dataset_open(&j->validation, c->data.train, &o));
    } else if (strcmp(c->data.validation, "none") != 0) {
        o.validation_split = 0.0f;
        o.subset = MF_SUBSET_ALL;
        MF_TRY(mf_dataset_open(&j->validation, c->data.validation, &o));
        MF_TRY(mf_dataset_same_classes(j->train, j->validation));
    } else if (need_validation) {
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [data] validation is none and there is no validation_split: nothing to "
                       "evaluate on",
                       c->path);
    }
    if (j->comm && j->world > 1) {
        /* every rank scanned the folders itself: they must have seen the same */
        int64_t lo[3] = {mf_dataset_size(j->train), j->validation ? mf_dataset_size(j->validation) : 0,
                         mf_dataset_num_classes(j->train)};
        int64_t hi[3] = {lo[0], lo[1], lo[2]};
        MF_TRY(mf_comm_allreduce_min_max(j->comm, lo, hi, 3));
        if (lo[0] != hi[0] || lo[1] != hi[1] || lo[2] != hi[2])
            return mf_fail(MF_STATUS_DATA,
                           "the ranks see different datasets (train %lld..%lld images, validation "
                           "%lld..%lld, classes %lld..%lld): is %s on a file system every node shares?",
                           (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1], (long long)lo[2],
                           (long long)hi[2], c->data.train);
    }
    if (j->rank == 0) {
        fprintf(j->info, "classes (%d):", mf_dataset_num_classes(j->train));
        for (int k = 0; k < mf_dataset_num_classes(j->train); k++)
            fprintf(j->info, " %d=%s", k, mf_dataset_class_name(j->train, k));
        fprintf(j->info, "\ntrain: %s, %d images", c->data.train, mf_dataset_size(j->train));
        if (j->validation)
            fprintf(j->info, "; validation: %s, %d images", split ? "validation_split of train" : c->data.validation,
                    mf_dataset_size(j->validation));
        fprintf(j->info, "\n");
    }
    return MF_STATUS_OK;
}

mf_status mf_job_classes(mf_job *j)
{
    int from_data = j->train ? mf_dataset_num_classes(j->train) : 0;
    if (j->cfg.model.classes > 0) {
        if (from_data && from_data != j->cfg.model.classes)
            return mf_fail(MF_STATUS_CONFIG, "%s: [model] classes = %d but %s has %d class folders", j->cfg.path,
                           j->cfg.model.classes, j->cfg.data.train, from_data);
        j->classes = j->cfg.model.classes;
        return MF_STATUS_OK;
    }
    if (!from_data) {
        mf_dataset_options o = mf_dataset_options_default();
        o.quiet = 1;
        mf_dataset *ds;
        if (mf_dataset_open(&ds, j->cfg.data.train, &o) != MF_STATUS_OK)
            return mf_fail(MF_STATUS_CONFIG,
                           "%s: [model] classes = 0 means 'as many as class folders in [data] train', "
                           "but %s cannot be read: %s",
                           j->cfg.path, j->cfg.data.train, mf_last_error());
        from_data = mf_dataset_num_classes(ds);
        mf_dataset_free(ds);
    }
    j->classes = from_data;
    return MF_STATUS_OK;
}

static mf_status load_weights(mf_job *j, const char *path)
{
    mf_weights_report r;
    mf_status s = mf_weights_load_keras(j->model, path, &r);
    if (s != MF_STATUS_OK)
        return s;
    if (j->rank == 0) {
        fprintf(j->info, "weights: %d layers loaded from %s", r.loaded_layers, path);
        if (r.missing_layers)
            fprintf(j->info, "; %d not in the file, kept as initialised: %s", r.missing_layers, r.missing);
        fprintf(j->info, "\n");
    }
    if (r.loaded_layers == 0)
        return mf_fail(MF_STATUS_DATA, "%s: no layer of the model is in this file (another architecture?)", path);
    return MF_STATUS_OK;
}

/* [model] keras: the model of a Keras description; its input becomes
 * [model] input_size (the loader's square RGB images) and its outputs must be
 * the classes. */
static mf_status build_keras(mf_job *j, uint64_t seed)
{
    mf_config *c = &j->cfg;
    MF_TRY(mf_config_check_keras(c));
    mf_keras_info info;
    MF_TRY(mf_model_from_keras_info(&j->model, c->model.keras, seed, &info));
    mf_shape in = mf_model_input_shape(j->model), out = mf_model_output_shape(j->model);
    if (in.ndim != 4 || in.d[1] != in.d[2] || in.d[3] != 3)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [model] keras = %s: the model's input is %s; mpifit's image loader feeds square RGB "
                       "images (None, S, S, 3)",
                       c->path, c->model.keras, mf_shape_str(&in, (char[64]){0}, 64));
    if (out.ndim != 2 || out.d[1] != j->classes)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [model] keras = %s: the model outputs %s but there are %d classes (%s): the last layer "
                       "must be a Dense(%d)",
                       c->path, c->model.keras, mf_shape_str(&out, (char[64]){0}, 64), j->classes,
                       c->model.classes > 0 ? "[model] classes" : "class folders of [data] train", j->classes);
    c->model.input_size = in.d[1];
    if (j->rank == 0) {
        fprintf(j->info, "model: '%s' from %s, %d layers, input %dx%dx3", mf_model_name(j->model), c->model.keras,
                mf_model_num_layers(j->model), in.d[1], in.d[2]);
        if (info.softmax_folded)
            fprintf(j->info, "; the softmax of '%s' is folded into the loss (trained on logits, predict applies it)",
                    info.softmax_layer);
        if (info.weights_loaded)
            fprintf(j->info, "; weights: %d layers loaded from its /model_weights", info.weights.loaded_layers);
        fprintf(j->info, "\n");
    }
    return MF_STATUS_OK;
}

/* freeze_base on a Keras model: the base is every layer before the last
 * Dense (the classifier head); a model without a Dense has no head. */
static mf_status freeze_keras_base(mf_model *m, const mf_config *c)
{
    int head = -1;
    for (int i = 0; i < mf_model_num_layers(m); i++)
        if (strcmp(mf_layer_kind(mf_model_layer(m, i)), "Dense") == 0)
            head = i;
    if (head < 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [model] freeze_base freezes everything before the last Dense layer, but %s has no Dense "
                       "layer: use [model] trainable_from = LAYER",
                       c->path, c->model.keras);
    if (head == 0)
        return MF_STATUS_OK;
    return mf_model_set_trainable_upto(m, mf_layer_name(mf_model_layer(m, head - 1)), 0);
}

/* [model] trainable_from or freeze_base, on a model built from c */
static mf_status apply_freezing(mf_model *m, const mf_config *c)
{
    if (strcmp(c->model.trainable_from, "none") != 0)
        return mf_model_set_trainable_from(m, c->model.trainable_from, c->model.train_bn);
    if (c->model.freeze_base && strcmp(c->model.keras, "none") != 0)
        return freeze_keras_base(m, c);
    if (c->model.freeze_base) /* everything before the classifier head */
        return mf_model_set_trainable_upto(m, strcmp(c->model.arch, "mobilenet_v2") == 0 ? "out_relu" : "re_lu_2", 0);
    return MF_STATUS_OK;
}

mf_status mf_config_apply_trainable(mf_model *m, const mf_config *c, int epoch, int step_in_epoch)
{
    MF_TRY(apply_freezing(m, c));
    /* the [finetune] switch runs as epoch c->train.epochs begins (mf_finetune) */
    int started = epoch > c->train.epochs || (epoch == c->train.epochs && step_in_epoch > 0);
    if (c->finetune.epochs > 0 && started)
        MF_TRY(mf_model_set_trainable_from(m, c->finetune.trainable_from, c->model.train_bn));
    return MF_STATUS_OK;
}

mf_status mf_job_build_model(mf_job *j)
{
    const mf_config *c = &j->cfg;
    if (!j->classes)
        MF_TRY(mf_job_classes(j));
    uint64_t seed = (uint64_t)c->train.seed;
    int keras = strcmp(c->model.keras, "none") != 0;
    if (keras)
        MF_TRY(build_keras(j, seed));
    else if (strcmp(c->model.arch, "mobilenet_v2") == 0)
        MF_TRY(mf_mobilenet_v2_classifier(&j->model, c->model.alpha, c->model.input_size, j->classes, c->model.dropout,
                                          seed));
    else
        MF_TRY(mf_small_cnn(&j->model, c->model.input_size, j->classes, 16, c->model.dropout, seed));
    if (c->model.bn_momentum > 0.0f)
        for (int i = 0; i < mf_model_num_layers(j->model); i++) {
            mf_layer *l = mf_model_layer(j->model, i);
            if (strcmp(mf_layer_kind(l), "BatchNormalization") == 0)
                MF_TRY(mf_batchnorm_set_momentum(l, c->model.bn_momentum));
        }
    if (strcmp(c->model.weights, "none") != 0)
        MF_TRY(load_weights(j, c->model.weights));
    if (j->weights)
        MF_TRY(load_weights(j, j->weights));
    return apply_freezing(j->model, c);
}

void mf_job_model_desc(const mf_job *j, mf_model_desc *d)
{
    const mf_config *c = &j->cfg;
    memset(d, 0, sizeof *d);
    /* a Keras model: arch "keras", its model_config goes into weights.h5 with
     * it (mf_model_to_keras_desc); input_size is the model's (build_keras) */
    int keras = strcmp(c->model.keras, "none") != 0;
    mf_strlcpy(d->arch, keras ? MF_MODEL_DESC_KERAS : c->model.arch, sizeof d->arch);
    d->alpha = c->model.alpha;
    d->input_size = c->model.input_size;
    d->classes = j->classes;
    d->dropout = c->model.dropout;
    d->bn_momentum = c->model.bn_momentum;
    if (!j->train || mf_dataset_num_classes(j->train) != j->classes)
        return;
    d->class_names = mf_alloc((size_t)(j->classes ? j->classes : 1) * sizeof *d->class_names);
    for (int i = 0; i < j->classes; i++)
        d->class_names[i] = mf_strdup(mf_dataset_class_name(j->train, i));
}

mf_status mf_job_apply_desc(mf_job *j, const mf_model_desc *d)
{
    mf_config *c = &j->cfg;
    if (strcmp(d->arch, MF_MODEL_DESC_KERAS) == 0) { /* the weights file is the model's description */
        if (strlen(j->weights) >= sizeof c->model.keras)
            return mf_fail(MF_STATUS_CONFIG, "%s: the path is too long for [model] keras", j->weights);
        mf_strlcpy(c->model.keras, j->weights, sizeof c->model.keras);
        c->model.classes = d->classes;
        for (int i = 0; i < j->n_sets; i++)
            MF_TRY(mf_config_set(c, j->sets[i]));
        j->classes = c->model.classes;
        return MF_STATUS_OK;
    }
    mf_strlcpy(c->model.arch, d->arch, sizeof c->model.arch);
    c->model.alpha = d->alpha;
    c->model.input_size = d->input_size;
    c->model.classes = d->classes;
    c->model.dropout = d->dropout;
    c->model.bn_momentum = d->bn_momentum;
    for (int i = 0; i < j->n_sets; i++)
        MF_TRY(mf_config_set(c, j->sets[i]));
    j->classes = c->model.classes;
    return MF_STATUS_OK;
}

mf_loader_options mf_job_loader_options(const mf_job *j, int training)
{
    const mf_config *c = &j->cfg;
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = c->data.batch_size;
    o.input_size = c->model.input_size;
    o.training = training;
    o.augment = training && c->data.augment;
    o.crop_scale_min = c->data.crop_scale_min;
    o.flip = c->data.flip;
    o.drop_remainder = c->data.drop_remainder;
    if (c->data.threads > 0)
        o.threads = c->data.threads;
    o.prefetch = c->data.prefetch > 0 ? c->data.prefetch : o.threads + 2;
    o.rank = j->rank;
    o.world = j->world;
    o.seed = (uint64_t)c->train.seed;
    o.on_bad_image = strcmp(c->data.on_bad_image, "fail") == 0 ? MF_BAD_IMAGE_FAIL : MF_BAD_IMAGE_SKIP;
    return o;
}

void mf_job_free(mf_job *j)
{
    mf_model_free(j->model);
    mf_dataset_free(j->train);
    mf_dataset_free(j->validation);
    mf_config_free(&j->cfg);
    memset(j, 0, sizeof *j);
}

int mf_job_total_epochs(const mf_job *j) { return j->cfg.train.epochs + j->cfg.finetune.epochs; }

mf_schedule mf_job_finetune_schedule(const mf_job *j, int steps_per_epoch)
{
    const mf_config *c = &j->cfg;
    mf_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = strcmp(c->finetune.schedule, "cosine") == 0 ? MF_SCHEDULE_COSINE
        : strcmp(c->finetune.schedule, "step") == 0      ? MF_SCHEDULE_STEP
                                                         : MF_SCHEDULE_CONSTANT;
    s.base_lr = c->finetune.learning_rate;
    if (c->dist.scale_lr)
        mf_schedule_scale_for_world(&s, j->world);
    s.warmup_steps = lroundf(c->finetune.warmup_epochs * (float)steps_per_epoch);
    s.total_steps = (long)c->finetune.epochs * steps_per_epoch; /* counted from the phase's start_step */
    s.decay_rate = c->optimizer.decay_rate;
    s.decay_steps = lroundf(c->optimizer.decay_epochs * (float)steps_per_epoch);
    return s;
}

/* [optimizer] -> optimizer and schedule, for steps_per_epoch steps an epoch. */
mf_status mf_job_make_optimizer(const mf_job *j, int steps_per_epoch, mf_optimizer **opt, mf_schedule *sch)
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
        : strcmp(c->optimizer.schedule, "step") == 0         ? MF_SCHEDULE_STEP
                                                             : MF_SCHEDULE_CONSTANT;
    sch->base_lr = c->optimizer.learning_rate;
    sch->warmup_steps = lroundf(c->optimizer.warmup_epochs * (float)steps_per_epoch);
    sch->total_steps = (long)c->train.epochs * steps_per_epoch;
    sch->decay_rate = c->optimizer.decay_rate;
    sch->decay_steps = lroundf(c->optimizer.decay_epochs * (float)steps_per_epoch);
    return MF_STATUS_OK;
}

mf_status mf_job_deterministic(const mf_job *j, mf_fit_ctx *ctx)
{
    const mf_config *c = &j->cfg;
    if (!c->dist.deterministic)
        return MF_STATUS_OK;
    if (c->data.batch_size % c->dist.chunk != 0) {
        char where[MF_CFG_PATH + 64];
        mf_config_where(c, "dist", "chunk", where, sizeof where);
        return mf_fail(MF_STATUS_CONFIG, "%s: [dist] chunk = %d does not divide [data] batch_size = %d", where,
                       c->dist.chunk, c->data.batch_size);
    }
    mf_status s = mf_fit_set_deterministic(ctx, c->dist.chunk);
    if (s != MF_STATUS_OK)
        return mf_fail(s, "%s: [dist] deterministic: %s", c->path, mf_last_error());
    if (j->rank == 0)
        mf_log_info("deterministic mode: chunks of %d rows, ghost BatchNorm, exact gradient sums: the same result at "
                    "any number of ranks and threads for a global batch of %d (docs/deterministic.md)",
                    c->dist.chunk, c->data.batch_size * j->world);
    return MF_STATUS_OK;
}

mf_dist_options mf_job_dist_options(const mf_job *j)
{
    const mf_config *c = &j->cfg;
    mf_dist_options d = mf_dist_options_default();
    d.overlap = c->dist.overlap;
    d.bucket_bytes = (size_t)(c->dist.bucket_mb * 1048576.0f);
    d.sync_batchnorm = c->dist.sync_batchnorm;
    d.check_identical = c->dist.check_identical;
    d.compress = !strcmp(c->dist.compress, "fp16") ? MF_COMPRESS_FP16
        : !strcmp(c->dist.compress, "bf16")        ? MF_COMPRESS_BF16
                                                   : MF_COMPRESS_NONE;
    return d;
}
