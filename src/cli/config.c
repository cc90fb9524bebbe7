/* config.c: INI configuration, one table of keys (name, type, range or choices,
 * default, help) drives parsing, --set overrides, defaults and the key listing. */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "core/core.h"

typedef enum { K_INT, K_LONG, K_FLOAT, K_DOUBLE, K_BOOL, K_STR, K_ENUM, K_FLOAT_CHOICE } ktype;

typedef struct key_def {
    const char *section, *name;
    ktype type;
    size_t offset, size; /* into mf_config; size for strings */
    double lo, hi; /* numeric range, inclusive */
    const char *choices; /* K_ENUM: "a|b|c" */
    const char *def; /* default, parsed like any value */
    const char *help;
} key_def;

#define OFF(f) offsetof(mf_config, f), sizeof(((mf_config *)0)->f)
static const key_def keys[] = {
    {"model", "arch", K_ENUM, OFF(model.arch), 0, 0, "mobilenet_v2|small_cnn", "mobilenet_v2", "network architecture"},
    {"model", "keras", K_STR, OFF(model.keras), 0, 0, NULL, "none",
     "a Keras model description to train instead of arch: model.to_json() saved as .json, or a Keras full-model .h5 "
     "(model.save(\"m.h5\"); its weights are loaded); arch, alpha, input_size and dropout must then be unset"},
    {"model", "alpha", K_FLOAT_CHOICE, OFF(model.alpha), 0, 0, "0.35|0.5|0.75|1.0|1.3|1.4", "1.0",
     "MobileNetV2 width multiplier"},
    {"model", "input_size", K_INT, OFF(model.input_size), 32, 4096, NULL, "224", "square input side in pixels"},
    {"model", "classes", K_INT, OFF(model.classes), 0, 100000, NULL, "0",
     "output classes; 0 = the number of class folders"},
    {"model", "dropout", K_FLOAT, OFF(model.dropout), 0, 0.99, NULL, "0.2", "dropout rate before the classifier"},
    {"model", "bn_momentum", K_FLOAT, OFF(model.bn_momentum), 0, 1, NULL, "0",
     "BatchNormalization momentum; 0 = the architecture's own (MobileNetV2 0.999, small_cnn 0.99)"},
    {"model", "weights", K_STR, OFF(model.weights), 0, 0, NULL, "none",
     "Keras-layout .h5 weights to start from, or none"},
    {"model", "freeze_base", K_BOOL, OFF(model.freeze_base), 0, 0, NULL, "false",
     "train only the classifier head (transfer learning)"},
    {"model", "trainable_from", K_STR, OFF(model.trainable_from), 0, 0, NULL, "none",
     "fine-tuning: train this layer and every later one, freeze those before it (a Keras layer name such as "
     "block_13_expand; `mpifit summary` lists them); none = as freeze_base says"},
    {"model", "train_bn", K_BOOL, OFF(model.train_bn), 0, 0, NULL, "false",
     "BatchNormalization layers of the trainable part train too (default: they stay frozen, in inference mode, "
     "as Keras' fine-tuning guide recommends)"},
    {"data", "train", K_STR, OFF(data.train), 0, 0, NULL, "none",
     "training images: a class-folder dir or a packed .h5 (file.h5, or file.h5:split)"},
    {"data", "validation", K_STR, OFF(data.validation), 0, 0, NULL, "none", "validation images (same forms), or none"},
    {"data", "batch_size", K_INT, OFF(data.batch_size), 1, 65536, NULL, "32", "batch size per rank"},
    {"data", "augment", K_BOOL, OFF(data.augment), 0, 0, NULL, "true",
     "random resized crop + horizontal flip on training images"},
    {"data", "crop_scale_min", K_FLOAT, OFF(data.crop_scale_min), 0.05, 1.0, NULL, "0.5",
     "smallest crop area fraction when augmenting"},
    {"data", "flip", K_BOOL, OFF(data.flip), 0, 0, NULL, "true", "random horizontal flip when augmenting"},
    {"data", "threads", K_INT, OFF(data.threads), 0, 256, NULL, "0",
     "decoding threads per rank; 0 = auto (half the rank's cores, at least 1)"},
    {"data", "prefetch", K_INT, OFF(data.prefetch), 0, 1024, NULL, "0", "batches decoded ahead; 0 = threads + 2"},
    {"data", "validation_split", K_FLOAT, OFF(data.validation_split), 0, 0.95, NULL, "0",
     "carve this fraction of train out as validation (seeded)"},
    {"data", "drop_remainder", K_BOOL, OFF(data.drop_remainder), 0, 0, NULL, "false",
     "drop the last partial global batch instead of wrapping around"},
    {"data", "on_bad_image", K_ENUM, OFF(data.on_bad_image), 0, 0, "skip|fail", "skip",
     "a corrupt or unreadable image is skipped (reported once) or stops the run"},
    {"data", "max_image_mb", K_FLOAT, OFF(data.max_image_mb), 0.001, 4096, NULL, "64",
     "an image file larger than this many MiB is a bad image, never read into memory"},
    {"optimizer", "name", K_ENUM, OFF(optimizer.name), 0, 0, "adam|sgd", "adam", "optimizer"},
    {"optimizer", "learning_rate", K_FLOAT, OFF(optimizer.learning_rate), 0, 100, NULL, "0.001", "peak learning rate"},
    {"optimizer", "momentum", K_FLOAT, OFF(optimizer.momentum), 0, 0.9999, NULL, "0.9", "SGD momentum"},
    {"optimizer", "nesterov", K_BOOL, OFF(optimizer.nesterov), 0, 0, NULL, "false", "SGD Nesterov momentum"},
    {"optimizer", "weight_decay", K_FLOAT, OFF(optimizer.weight_decay), 0, 1, NULL, "0", "decoupled weight decay"},
    {"optimizer", "schedule", K_ENUM, OFF(optimizer.schedule), 0, 0, "constant|step|cosine", "constant",
     "learning-rate schedule after warm-up"},
    {"optimizer", "warmup_epochs", K_FLOAT, OFF(optimizer.warmup_epochs), 0, 1000, NULL, "0",
     "linear warm-up length in epochs"},
    {"optimizer", "decay_rate", K_FLOAT, OFF(optimizer.decay_rate), 0, 1, NULL, "0.1",
     "step schedule: multiply the rate by this ..."},
    {"optimizer", "decay_epochs", K_FLOAT, OFF(optimizer.decay_epochs), 0.001, 1e6, NULL, "30",
     "step schedule: ... every this many epochs"},
    {"train", "epochs", K_INT, OFF(train.epochs), 1, 1000000, NULL, "10", "epochs to train"},
    {"train", "seed", K_LONG, OFF(train.seed), 0, 9.0e15, NULL, "1",
     "seed of weights, data order, augmentation and dropout"},
    {"train", "steps_per_epoch", K_INT, OFF(train.steps_per_epoch), 0, 100000000, NULL, "0",
     "steps per epoch; 0 = the whole training set"},
    {"train", "verbose", K_INT, OFF(train.verbose), 0, 2, NULL, "1", "0 silent, 1 progress bar, 2 one line per epoch"},
    {"train", "progress_every", K_INT, OFF(train.progress_every), 0, 1000000, NULL, "0",
     "off a terminal: a progress line every N steps (0 = ten per epoch)"},
    {"train", "profile", K_BOOL, OFF(train.profile), 0, 0, NULL, "false",
     "time every layer kind's forward and backward; print the table at the end"},
    {"train", "accumulate_steps", K_INT, OFF(train.accumulate_steps), 1, 1024, NULL, "1",
     "split each batch into this many micro-batches, one optimizer step (batch_size must be a multiple)"},
    {"train", "preempted_exit_status", K_INT, OFF(train.preempted_exit_status), 1, 255, NULL, "75",
     "exit status of `mpifit train` on every rank when a preemption signal stopped it and its checkpoint is written "
     "(75: EX_TEMPFAIL; launch/slurm.sbatch requeues on it)"},
    {"train", "class_weight", K_STR, OFF(train.class_weight), 0, 0, NULL, "none",
     "Keras' class_weight for the training loss: weights in class order (2, 1, 1) or by class name "
     "(bean_rust: 2), or none"},
    {"callbacks", "early_stopping", K_BOOL, OFF(callbacks.early_stopping), 0, 0, NULL, "false",
     "Keras' EarlyStopping: stop when early_stopping_monitor stops improving"},
    {"callbacks", "early_stopping_monitor", K_ENUM, OFF(callbacks.early_stopping_monitor), 0, 0,
     "val_loss|val_accuracy|loss|accuracy", "val_loss", "EarlyStopping: the epoch log to watch"},
    {"callbacks", "early_stopping_min_delta", K_FLOAT, OFF(callbacks.early_stopping_min_delta), 0, 1e9, NULL, "0",
     "EarlyStopping: smaller changes are no improvement"},
    {"callbacks", "early_stopping_patience", K_INT, OFF(callbacks.early_stopping_patience), 0, 1000000, NULL, "0",
     "EarlyStopping: epochs without improvement before stopping (0 and 1: the first one)"},
    {"callbacks", "early_stopping_mode", K_ENUM, OFF(callbacks.early_stopping_mode), 0, 0, "auto|min|max", "auto",
     "EarlyStopping: min, max, or auto (max for accuracies)"},
    {"callbacks", "early_stopping_restore_best_weights", K_BOOL, OFF(callbacks.early_stopping_restore_best_weights), 0,
     0, NULL, "false", "EarlyStopping: end with the best epoch's weights (also in weights.h5)"},
    {"callbacks", "reduce_lr_on_plateau", K_BOOL, OFF(callbacks.reduce_lr_on_plateau), 0, 0, NULL, "false",
     "Keras' ReduceLROnPlateau: reduce the learning rate when reduce_lr_monitor stops improving"},
    {"callbacks", "reduce_lr_monitor", K_ENUM, OFF(callbacks.reduce_lr_monitor), 0, 0,
     "val_loss|val_accuracy|loss|accuracy", "val_loss", "ReduceLROnPlateau: the epoch log to watch"},
    {"callbacks", "reduce_lr_factor", K_DOUBLE, OFF(callbacks.reduce_lr_factor), 0, 1, NULL, "0.1",
     "ReduceLROnPlateau: new rate = rate x factor (< 1)"},
    {"callbacks", "reduce_lr_patience", K_INT, OFF(callbacks.reduce_lr_patience), 0, 1000000, NULL, "10",
     "ReduceLROnPlateau: epochs without improvement before a reduction"},
    {"callbacks", "reduce_lr_min_lr", K_DOUBLE, OFF(callbacks.reduce_lr_min_lr), 0, 100, NULL, "0",
     "ReduceLROnPlateau: a reduction never goes below this rate"},
    {"callbacks", "reduce_lr_cooldown", K_INT, OFF(callbacks.reduce_lr_cooldown), 0, 1000000, NULL, "0",
     "ReduceLROnPlateau: epochs of rest after a reduction"},
    {"callbacks", "reduce_lr_min_delta", K_DOUBLE, OFF(callbacks.reduce_lr_min_delta), 0, 1e9, NULL, "0.0001",
     "ReduceLROnPlateau: an improvement must beat the best by more than this"},
    {"callbacks", "reduce_lr_mode", K_ENUM, OFF(callbacks.reduce_lr_mode), 0, 0, "auto|min|max", "auto",
     "ReduceLROnPlateau: min, max, or auto (max for accuracies)"},
    {"finetune", "epochs", K_INT, OFF(finetune.epochs), 0, 1000000, NULL, "0",
     "epochs of a second, fine-tuning phase after [train] epochs; 0 = none"},
    {"finetune", "learning_rate", K_FLOAT, OFF(finetune.learning_rate), 0, 100, NULL, "0.00001",
     "peak learning rate of the fine-tuning phase (a fresh optimizer state, as Keras' recompile)"},
    {"finetune", "trainable_from", K_STR, OFF(finetune.trainable_from), 0, 0, NULL, "none",
     "the first layer that trains in the fine-tuning phase (required when epochs > 0)"},
    {"finetune", "schedule", K_ENUM, OFF(finetune.schedule), 0, 0, "constant|step|cosine", "constant",
     "learning-rate schedule of the fine-tuning phase ([optimizer] decay_rate and decay_epochs for step)"},
    {"finetune", "warmup_epochs", K_FLOAT, OFF(finetune.warmup_epochs), 0, 1000, NULL, "0",
     "linear warm-up of the fine-tuning phase, in epochs"},
    {"dist", "threads", K_INT, OFF(dist.threads), 0, 1024, NULL, "0",
     "compute threads (OpenBLAS and kernels) per rank; 0 = this rank's share of the node's cores"},
    {"dist", "overlap", K_BOOL, OFF(dist.overlap), 0, 0, NULL, "true",
     "start each gradient bucket's allreduce during backward"},
    {"dist", "bucket_mb", K_FLOAT, OFF(dist.bucket_mb), 0.01, 4096, NULL, "4", "gradient allreduce bucket size in MiB"},
    {"dist", "compress", K_ENUM, OFF(dist.compress), 0, 0, "none|fp16|bf16", "none",
     "gradients sent as 16-bit floats (half the bytes) with error feedback; not with deterministic"},
    {"dist", "sync_batchnorm", K_BOOL, OFF(dist.sync_batchnorm), 0, 0, NULL, "false",
     "BatchNorm statistics over the global batch instead of per rank"},
    {"dist", "deterministic", K_BOOL, OFF(dist.deterministic), 0, 0, NULL, "false",
     "the same weights and metrics at any number of ranks and threads (docs/deterministic.md)"},
    {"dist", "chunk", K_INT, OFF(dist.chunk), 1, 1 << 20, NULL, "8",
     "deterministic mode: rows per chunk, dividing data.batch_size"},
    {"dist", "scale_lr", K_BOOL, OFF(dist.scale_lr), 0, 0, NULL, "false",
     "multiply the learning rate by the number of ranks (use with warmup_epochs)"},
    {"dist", "check_identical", K_BOOL, OFF(dist.check_identical), 0, 0, NULL, "false",
     "debug: after every step check that all ranks hold identical parameters"},
    {"dist", "timeout", K_FLOAT, OFF(dist.timeout), 0, 1e7, NULL, "600",
     "seconds one collective may wait for the other ranks before the job is ended; 0 = wait forever"},
    {"output", "dir", K_STR, OFF(output.dir), 0, 0, NULL, "runs/default", "where metrics and checkpoints go"},
    {"output", "checkpoint_every", K_STR, OFF(output.checkpoint_every), 0, 0, NULL, "epoch",
     "epoch, or a number of steps"},
    {"output", "keep", K_INT, OFF(output.keep), 0, 1000000, NULL, "3", "newest checkpoints kept; 0 = all"},
    {"output", "save_best", K_STR, OFF(output.save_best), 0, 0, NULL, "none",
     "a metric (e.g. val_accuracy): keep best.h5 of the best epoch"},
    {"output", "trace", K_BOOL, OFF(output.trace), 0, 0, NULL, "false",
     "write a timeline per rank (trace-rank<r>.json, Chrome trace format: Perfetto opens it)"},
    {"output", "metrics_flush_steps", K_INT, OFF(output.metrics_flush_steps), 1, 1000000, NULL, "50",
     "write the per-step metrics every this many steps"},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))
_Static_assert(sizeof keys / sizeof keys[0] <= MF_CFG_MAX_KEYS,
               "raise MF_CFG_MAX_KEYS: mf_config.line has a slot per key");

static const key_def *find_key(const char *section, const char *name)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int section_known(const char *section)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0)
            return 1;
    return 0;
}

/* "train, validation, batch_size, ..." for messages */
static void list_keys(char *buf, size_t n, const char *section)
{
    buf[0] = '\0';
    for (int i = 0; i < N_KEYS; i++) {
        size_t len = strlen(buf);
        if (section && strcmp(keys[i].section, section) != 0)
            continue;
        if (!section) {
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= strcmp(keys[j].section, keys[i].section) == 0;
            if (dup)
                continue;
            snprintf(buf + len, n - len, "%s[%s]", len ? ", " : "", keys[i].section);
        } else {
            snprintf(buf + len, n - len, "%s%s", len ? ", " : "", keys[i].name);
        }
    }
}

static int parse_bool(const char *v, int *out)
{
    const char *t[] = {"true", "yes", "on", "1"}, *f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, t[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(v, f[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

static int enum_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

/* Store value v into c for key k; on error writes why into err. */
static int store(mf_config *c, const key_def *k, const char *v, char *err, size_t errn)
{
    char *dst = (char *)c + k->offset;
    char *end = NULL;
    errno = 0;
    switch (k->type) {
    case K_INT:
    case K_LONG: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno || (double)x < k->lo || (double)x > k->hi) {
            snprintf(err, errn, "must be an integer in [%.0f, %.0f], got '%s'", k->lo, k->hi, v);
            return 0;
        }
        if (k->type == K_INT)
            *(int *)dst = (int)x;
        else
            *(long *)dst = (long)x;
        return 1;
    }
    case K_FLOAT:
    case K_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x) || x < k->lo || x > k->hi) {
            snprintf(err, errn, "must be a number in [%g, %g], got '%s'", k->lo, k->hi, v);
            return 0;
        }
        if (k->type == K_FLOAT)
            *(float *)dst = (float)x;
        else
            *(double *)dst = x; /* Keras' own double: ReduceLROnPlateau's factor 0.1 is not 0.1f */
        return 1;
    }
    case K_BOOL:
        if (!parse_bool(v, (int *)dst)) {
            snprintf(err, errn, "must be true or false, got '%s'", v);
            return 0;
        }
        return 1;
    case K_FLOAT_CHOICE: /* a number restricted to a list (Keras' MobileNetV2 alphas) */
        if (!enum_ok(k->choices, v)) {
            snprintf(err, errn, "must be one of %s, got '%s'", k->choices, v);
            return 0;
        }
        *(float *)dst = strtof(v, NULL);
        return 1;
    case K_ENUM:
        if (!enum_ok(k->choices, v)) {
            snprintf(err, errn, "must be one of %s, got '%s'", k->choices, v);
            return 0;
        }
        /* fall through - stored as text */
    case K_STR:
        if (!*v) {
            snprintf(err, errn, "must not be empty");
            return 0;
        }
        if (!mf_strlcpy(dst, v, k->size)) {
            snprintf(err, errn, "is longer than %zu characters", k->size - 1);
            return 0;
        }
        return 1;
    }
    return 0;
}

void mf_config_defaults(mf_config *c)
{
    memset(c, 0, sizeof *c);
    char err[256];
    for (int i = 0; i < N_KEYS; i++)
        MF_ASSERT(store(c, &keys[i], keys[i].def, err, sizeof err));
}

typedef struct parse_ctx {
    mf_config *c;
    const char *text; /* what is left to read */
    const char *path;
    int line; /* of the line the reader handed out last */
    int too_long;
    mf_status status;
    char section[64];
} parse_ctx;

/* fgets over the config text that counts lines, so the handler can name
 * path:line (Debian's inih is built without INI_HANDLER_LINENO). */
static char *reader(char *str, int num, void *stream)
{
    parse_ctx *p = stream;
    if (!*p->text)
        return NULL;
    const char *nl = strchr(p->text, '\n');
    size_t len = nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
    if (len > (size_t)num - 1) {
        if (!p->too_long)
            p->too_long = p->line + 1;
        len = (size_t)num - 1;
    }
    memcpy(str, p->text, len);
    str[len] = '\0';
    p->text += len;
    if (len && str[len - 1] == '\n')
        p->line++;
    else if (!*p->text)
        p->line++;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    if (p->status != MF_STATUS_OK)
        return 1;
    char err[512];
    if (!section_known(section)) {
        list_keys(err, sizeof err, NULL);
        p->status = mf_fail(MF_STATUS_CONFIG, "%s:%d: unknown section [%s]; valid sections: %s", p->path, p->line,
                            section, err);
        return 1;
    }
    const key_def *k = find_key(section, name);
    if (!k) {
        list_keys(err, sizeof err, section);
        p->status = mf_fail(MF_STATUS_CONFIG, "%s:%d: unknown key '%s' in [%s]; valid keys: %s", p->path, p->line, name,
                            section, err);
        return 1;
    }
    if (!store(p->c, k, value, err, sizeof err))
        p->status = mf_fail(MF_STATUS_CONFIG, "%s:%d: [%s] %s %s", p->path, p->line, section, name, err);
    else
        p->c->line[k - keys] = p->line;
    return 1;
}

static void append_text(mf_config *c, const char *s, size_t n)
{
    size_t old = c->text ? strlen(c->text) : 0;
    char *t = mf_alloc(old + n + 1);
    if (c->text)
        memcpy(t, c->text, old);
    memcpy(t + old, s, n);
    t[old + n] = '\0';
    mf_free(c->text);
    c->text = t;
}

mf_status mf_config_parse(mf_config *c, const char *path, const char *text)
{
    mf_strlcpy(c->path, path, sizeof c->path);
    parse_ctx p;
    memset(&p, 0, sizeof p);
    p.c = c;
    p.text = text;
    p.path = path;
    int r = ini_parse_stream(reader, &p, handler, &p);
    if (p.status == MF_STATUS_OK && p.too_long)
        p.status =
            mf_fail(MF_STATUS_CONFIG, "%s:%d: line longer than %d characters", path, p.too_long, INI_MAX_LINE - 2);
    if (p.status == MF_STATUS_OK && r > 0)
        p.status = mf_fail(MF_STATUS_CONFIG, "%s:%d: not 'key = value', '[section]' or a comment", path, r);
    if (p.status == MF_STATUS_OK) {
        /* keep the exact text for checkpoints and metrics files */
        mf_free(c->text);
        c->text = NULL;
        append_text(c, text, strlen(text));
    }
    return p.status;
}

mf_status mf_config_read_file(const char *path, char **text)
{
    *text = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return mf_fail(MF_STATUS_IO, "cannot open config %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0, got;
    char *t = mf_alloc(cap);
    while ((got = fread(t + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *bigger = mf_alloc(cap * 2);
            memcpy(bigger, t, n);
            mf_free(t);
            t = bigger;
            cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        mf_free(t);
        return mf_fail(MF_STATUS_IO, "cannot read config %s", path);
    }
    t[n] = '\0';
    *text = t;
    return MF_STATUS_OK;
}

mf_status mf_config_load(mf_config *c, const char *path)
{
    char *text;
    MF_TRY(mf_config_read_file(path, &text));
    mf_status s = mf_config_parse(c, path, text);
    mf_free(text);
    return s;
}

mf_status mf_config_set(mf_config *c, const char *a)
{
    const char *dot = strchr(a, '.'), *eq = strchr(a, '=');
    if (!dot || !eq || dot > eq)
        return mf_fail(MF_STATUS_CONFIG, "--set %s: expected section.key=value, e.g. --set data.batch_size=16", a);
    char section[64], name[64];
    size_t ls = (size_t)(dot - a), ln = (size_t)(eq - dot - 1);
    if (ls == 0 || ls >= sizeof section || ln == 0 || ln >= sizeof name)
        return mf_fail(MF_STATUS_CONFIG, "--set %s: expected section.key=value", a);
    memcpy(section, a, ls);
    section[ls] = '\0';
    memcpy(name, dot + 1, ln);
    name[ln] = '\0';
    char err[512];
    if (!section_known(section)) {
        list_keys(err, sizeof err, NULL);
        return mf_fail(MF_STATUS_CONFIG, "--set %s: unknown section [%s]; valid sections: %s", a, section, err);
    }
    const key_def *k = find_key(section, name);
    if (!k) {
        list_keys(err, sizeof err, section);
        return mf_fail(MF_STATUS_CONFIG, "--set %s: unknown key '%s' in [%s]; valid keys: %s", a, name, section, err);
    }
    if (!store(c, k, eq + 1, err, sizeof err))
        return mf_fail(MF_STATUS_CONFIG, "--set %s: [%s] %s %s", a, section, name, err);
    c->line[k - keys] = -1;
    char line[1200];
    int n = snprintf(line, sizeof line, "\n# --set\n[%s]\n%s = %s\n", section, name, eq + 1);
    append_text(c, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
    return MF_STATUS_OK;
}

void mf_config_where(const mf_config *c, const char *section, const char *key, char *buf, size_t n)
{
    const key_def *k = find_key(section, key);
    MF_ASSERT(k);
    int line = c->line[k - keys];
    const char *path = c->path[0] ? c->path : "config";
    if (line > 0)
        snprintf(buf, n, "%s:%d", path, line);
    else if (line < 0)
        snprintf(buf, n, "--set %s.%s", section, key);
    else
        snprintf(buf, n, "%s", path);
}

mf_status mf_config_check_keras(const mf_config *c)
{
    if (strcmp(c->model.keras, "none") == 0)
        return MF_STATUS_OK;
    const char *unused[] = {"arch", "alpha", "input_size", "dropout"};
    for (int i = 0; i < 4; i++)
        if (c->line[find_key("model", unused[i]) - keys] != 0) {
            char where[MF_CFG_PATH + 64];
            mf_config_where(c, "model", unused[i], where, sizeof where);
            return mf_fail(MF_STATUS_CONFIG,
                           "%s: [model] %s is set, but [model] keras = %s describes the whole model (its input size "
                           "and layers): remove %s",
                           where, unused[i], c->model.keras, unused[i]);
        }
    return MF_STATUS_OK;
}

/* a monitor the epoch logs will have: val_ ones need validation data */
static mf_status check_monitor(const mf_config *c, const char *enable_key, const char *monitor_key, const char *monitor)
{
    if (strncmp(monitor, "val_", 4) != 0 || strcmp(c->data.validation, "none") != 0 || c->data.validation_split > 0.0f)
        return MF_STATUS_OK;
    char where[MF_CFG_PATH + 64];
    mf_config_where(c, "callbacks", c->line[find_key("callbacks", monitor_key) - keys] ? monitor_key : enable_key,
                    where, sizeof where);
    return mf_fail(MF_STATUS_CONFIG,
                   "%s: [callbacks] %s watches %s, but there is no validation data ([data] validation = none, "
                   "validation_split = 0); watch loss or accuracy, or give validation data",
                   where, monitor_key, monitor);
}

static mf_status validate_callbacks(const mf_config *c)
{
    char where[MF_CFG_PATH + 64];
    if (!(c->callbacks.reduce_lr_factor < 1.0)) {
        mf_config_where(c, "callbacks", "reduce_lr_factor", where, sizeof where);
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [callbacks] reduce_lr_factor must be < 1 (Keras: ReduceLROnPlateau does not support a "
                       "factor >= 1.0), got %g",
                       where, c->callbacks.reduce_lr_factor);
    }
    if (c->callbacks.early_stopping)
        MF_TRY(check_monitor(c, "early_stopping", "early_stopping_monitor", c->callbacks.early_stopping_monitor));
    if (c->callbacks.reduce_lr_on_plateau)
        MF_TRY(check_monitor(c, "reduce_lr_on_plateau", "reduce_lr_monitor", c->callbacks.reduce_lr_monitor));
    int given;
    return mf_config_class_weights(c, NULL, 0, NULL, &given);
}

/* "  bean_rust : 2.5 " -> name "bean_rust" (or "" without a colon), value text "2.5" */
static int split_entry(const char *e, size_t len, char *name, size_t name_n, char *num, size_t num_n)
{
    while (len && (*e == ' ' || *e == '\t'))
        e++, len--;
    while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
        len--;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (e[i] == ':')
            colon = e + i; /* the last one: a folder name may hold a colon */
    size_t nl = colon ? (size_t)(colon - e) : 0;
    const char *v = colon ? colon + 1 : e;
    size_t vl = len - (size_t)(v - e);
    while (nl && (e[nl - 1] == ' ' || e[nl - 1] == '\t'))
        nl--;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    if (nl >= name_n || vl >= num_n)
        return 0;
    memcpy(name, e, nl);
    name[nl] = '\0';
    memcpy(num, v, vl);
    num[vl] = '\0';
    return 1;
}

mf_status mf_config_class_weights(const mf_config *c, const char *const *names, int n, float *w, int *given)
{
    const char *t = c->train.class_weight;
    *given = 0;
    for (int i = 0; w && i < n; i++)
        w[i] = 1.0f;
    if (strcmp(t, "none") == 0)
        return MF_STATUS_OK;
    char where[MF_CFG_PATH + 64];
    mf_config_where(c, "train", "class_weight", where, sizeof where);
    int count = 0, named = -1; /* -1: no entry yet, 0 positional, 1 by name */
    int any_positive = 0;
    char seen[1024] = ","; /* ",name," of every class named so far */
    for (const char *p = t;;) {
        size_t len = strcspn(p, ",");
        char name[256], num[64], *end = NULL;
        if (!split_entry(p, len, name, sizeof name, num, sizeof num) || !num[0])
            return mf_fail(MF_STATUS_CONFIG,
                           "%s: [train] class_weight entry %d '%.*s' is not a weight or name: weight (e.g. "
                           "'2, 1, 1' or 'bean_rust: 2')",
                           where, count + 1, (int)(len < 64 ? len : 64), p);
        errno = 0;
        double x = strtod(num, &end);
        if (*end || errno || !isfinite(x) || x < 0.0)
            return mf_fail(MF_STATUS_CONFIG,
                           "%s: [train] class_weight entry %d: the weight must be a number >= 0, "
                           "got '%s'",
                           where, count + 1, num);
        int is_named = name[0] != '\0';
        if (named >= 0 && is_named != named)
            return mf_fail(MF_STATUS_CONFIG,
                           "%s: [train] class_weight mixes weights in class order with name: weight entries; use "
                           "one form",
                           where);
        named = is_named;
        any_positive |= x > 0.0;
        if (is_named && names) {
            int k = 0;
            while (k < n && strcmp(names[k], name) != 0)
                k++;
            if (k == n) {
                char valid[512] = "";
                for (int i = 0; i < n && strlen(valid) + 40 < sizeof valid; i++)
                    snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%.32s", i ? ", " : "", names[i]);
                return mf_fail(MF_STATUS_CONFIG,
                               "%s: [train] class_weight names class '%s', which the data does "
                               "not have; classes: %s",
                               where, name, valid);
            }
            w[k] = (float)x;
        } else if (!is_named && names && count < n) {
            w[count] = (float)x;
        }
        if (is_named) {
            char key[260];
            snprintf(key, sizeof key, ",%s,", name);
            if (strstr(seen, key))
                return mf_fail(MF_STATUS_CONFIG, "%s: [train] class_weight names class '%s' twice", where, name);
            if (strlen(seen) + strlen(name) + 2 < sizeof seen)
                snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s,", name);
        }
        count++;
        if (!p[len])
            break;
        p += len + 1;
    }
    if (!named && names && count != n)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [train] class_weight has %d weight%s but the data has %d classes (%s%s%s); give one per "
                       "class in this order, or name: weight entries",
                       where, count, count == 1 ? "" : "s", n, n > 0 ? names[0] : "", n > 1 ? ", ..., " : "",
                       n > 1 ? names[n - 1] : "");
    if (!any_positive)
        return mf_fail(MF_STATUS_CONFIG, "%s: [train] class_weight: every weight is 0, nothing would be learned",
                       where);
    *given = 1;
    return MF_STATUS_OK;
}

mf_status mf_config_validate(mf_config *c)
{
    const char *where = c->path[0] ? c->path : "config";
    if (strcmp(c->data.train, "none") == 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [data] train is not set: give a class-folder directory or a packed .h5 "
                       "(e.g. make one with `mpifit make-dataset synthetic-beans data/synth`)",
                       where);
    if (c->data.validation_split > 0.0f && strcmp(c->data.validation, "none") != 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [data] validation_split = %g carves validation out of train, so "
                       "[data] validation must be none (it is '%s')",
                       where, (double)c->data.validation_split, c->data.validation);
    /* parsed once, here: 'epoch' or 1 .. INT_MAX steps */
    const char *ce = c->output.checkpoint_every;
    char *end = NULL;
    errno = 0;
    long every = strtol(ce, &end, 10);
    if (strcmp(ce, "epoch") == 0)
        c->output.checkpoint_steps = 0;
    else if (!*ce || *end || errno || every < 1 || every > INT_MAX)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [output] checkpoint_every must be 'epoch' or a number of steps from 1 to %d, "
                       "got '%s'",
                       where, INT_MAX, ce);
    else
        c->output.checkpoint_steps = (int)every;
    if (strcmp(c->optimizer.name, "adam") == 0 && c->optimizer.nesterov)
        return mf_fail(MF_STATUS_CONFIG, "%s: [optimizer] nesterov applies to sgd, not adam", where);
    if (c->model.freeze_base && strcmp(c->model.trainable_from, "none") != 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [model] freeze_base = true and trainable_from = %s say different things; keep one "
                       "(trainable_from = dense trains the head alone)",
                       where, c->model.trainable_from);
    if (c->finetune.epochs > 0 && strcmp(c->finetune.trainable_from, "none") == 0)
        return mf_fail(MF_STATUS_CONFIG,
                       "%s: [finetune] epochs = %d needs [finetune] trainable_from: the first layer to train in "
                       "that phase (e.g. block_13_expand; `mpifit summary` lists the layers)",
                       where, c->finetune.epochs);
    return validate_callbacks(c);
}

void mf_config_free(mf_config *c)
{
    mf_free(c->text);
    c->text = NULL;
}

void mf_config_print_keys(FILE *f)
{
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        fprintf(f, "[%s] %s = %s", k->section, k->name, k->def);
        if (k->choices)
            fprintf(f, "  (%s)", k->choices);
        fprintf(f, "  - %s\n", k->help);
    }
}

/* key k's value in c as text: how the diff shows it */
static void value_text(const mf_config *c, const key_def *k, char *buf, size_t n)
{
    const char *src = (const char *)c + k->offset;
    switch (k->type) {
    case K_INT: snprintf(buf, n, "%d", *(const int *)src); break;
    case K_LONG: snprintf(buf, n, "%ld", *(const long *)src); break;
    case K_FLOAT:
    case K_FLOAT_CHOICE: snprintf(buf, n, "%g", (double)*(const float *)src); break;
    case K_DOUBLE: snprintf(buf, n, "%.15g", *(const double *)src); break;
    case K_BOOL: snprintf(buf, n, "%s", *(const int *)src ? "true" : "false"); break;
    case K_ENUM:
    case K_STR: snprintf(buf, n, "%s", src); break;
    }
}

int mf_config_diff(const mf_config *was, const mf_config *now, char *out, size_t n)
{
    int changed = 0;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char a[MF_CFG_PATH + 32], b[MF_CFG_PATH + 32];
        value_text(was, &keys[i], a, sizeof a);
        value_text(now, &keys[i], b, sizeof b);
        if (strcmp(a, b) == 0)
            continue;
        changed++;
        if (used < n)
            used +=
                (size_t)snprintf(out + used, n - used, "  [%s] %s: %s -> %s\n", keys[i].section, keys[i].name, a, b);
    }
    return changed;
}
