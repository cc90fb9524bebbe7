/* cmd_predict.c: `mpifit evaluate` and `mpifit predict`: trained weights on
 * images. The model and the class names come from the weights file's model
 * description (mf_model_desc, which mpifit train stores in weights.h5 and in
 * every checkpoint), or from a config given first. Under mpirun the images
 * are shared out over the ranks and the result is the one-rank result:
 * evaluate sums the metric states (mf_evaluate on a distributed context);
 * predict gathers every rank's lines to rank 0, which prints them in input
 * order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* "a, b, c" into buf (cap bytes), each name cut at 32 bytes, the list at cap */
static void join_names(char *buf, size_t cap, const char *const *names, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n && strlen(buf) + 40 < cap; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%.32s", i ? ", " : "", names[i]);
}

/* MF_STATUS_CONFIG naming both lists unless they are the same names in the
 * same order (the labels would mean other classes) */
static mf_status same_classes(const char *a_what, const char *const *a, int na, const char *b_what,
                              const char *const *b, int nb)
{
    int same = na == nb;
    for (int i = 0; same && i < na; i++)
        same = strcmp(a[i], b[i]) == 0;
    if (same)
        return MF_STATUS_OK;
    char la[512], lb[512];
    join_names(la, sizeof la, a, na);
    join_names(lb, sizeof lb, b, nb);
    return mf_fail(MF_STATUS_CONFIG, "%s was trained on the classes [%s] but %s has [%s]", a_what, la, b_what, lb);
}

/* A checkpoint written before model descriptions were stored still has its
 * config text and class names: the description comes from them.
 * MF_STATUS_CONFIG if path is no such checkpoint. */
static mf_status desc_from_checkpoint(const char *path, mf_model_desc *d)
{
    memset(d, 0, sizeof *d);
    mf_checkpoint_meta m;
    if (mf_checkpoint_read_meta(path, &m) != MF_STATUS_OK)
        return MF_STATUS_CONFIG;
    mf_status s = MF_STATUS_CONFIG;
    mf_config c;
    mf_config_defaults(&c);
    /* a [model] keras run's model is its description file: only a config names it */
    if (m.config && m.config[0] && mf_config_parse(&c, path, m.config) == MF_STATUS_OK &&
        strcmp(c.model.keras, "none") == 0) {
        int classes = m.n_classes > 0 ? m.n_classes : c.model.classes;
        if (classes > 0) {
            mf_strlcpy(d->arch, c.model.arch, sizeof d->arch);
            d->alpha = c.model.alpha;
            d->input_size = c.model.input_size;
            d->classes = classes;
            d->dropout = c.model.dropout;
            d->bn_momentum = c.model.bn_momentum;
            if (m.n_classes > 0) { /* the names move to d */
                d->class_names = m.class_names;
                m.class_names = NULL;
                m.n_classes = 0;
            }
            s = MF_STATUS_OK;
        }
    }
    mf_config_free(&c);
    mf_checkpoint_meta_free(&m);
    return s;
}

/* The model description of --weights into d, on every rank (each reads the
 * file, as each reads the weights in it). Without a config it is the model:
 * a file without one is an error that names the file and the missing
 * attribute and shows the command with a config; with a config, d stays
 * zeroed (d->arch "") and the config's [model] is used as is. Without a
 * config the description becomes j's [model] (then the --set values). */
static mf_status weights_desc(mf_job *j, const char *cmd, const char *rest, mf_model_desc *d)
{
    mf_status s = mf_model_desc_read(j->weights, d);
    if (s == MF_STATUS_CONFIG) {
        char why[700];
        mf_strlcpy(why, mf_last_error(), sizeof why);
        s = desc_from_checkpoint(j->weights, d);
        if (s != MF_STATUS_OK && j->has_config) {
            mf_clear_error();
            return MF_STATUS_OK;
        }
        if (s != MF_STATUS_OK)
            return mf_fail(
                MF_STATUS_CONFIG,
                "%s (a Keras weights file from elsewhere, or one written before mpifit stored its model), "
                "so the model must come from a config (the one it was trained with): mpifit %s CONFIG --weights "
                "%s %s",
                why, cmd, j->weights, rest);
    }
    MF_TRY(s);
    return j->has_config ? MF_STATUS_OK : mf_job_apply_desc(j, d);
}

/* Every rank scanned DATA itself: they must have seen the same images. */
static mf_status same_data_everywhere(mf_job *j, const mf_dataset *ds, const char *data)
{
    if (!j->comm || j->world == 1)
        return MF_STATUS_OK;
    int64_t lo[2] = {mf_dataset_size(ds), mf_dataset_num_classes(ds)}, hi[2] = {lo[0], lo[1]};
    MF_TRY(mf_comm_allreduce_min_max(j->comm, lo, hi, 2));
    if (lo[0] != hi[0] || lo[1] != hi[1])
        return mf_fail(MF_STATUS_DATA,
                       "the ranks see different datasets in %s (%lld..%lld images, %lld..%lld classes): is it on a "
                       "file system every node shares?",
                       data, (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1]);
    return MF_STATUS_OK;
}

/* Set up evaluate on every rank: DATA (*data, opened as j->validation), the
 * model with the weights. Collective: any rank's failure is every rank's. */
static mf_status evaluate_setup(mf_job *j, mf_model_desc *file, const char **data)
{
    MF_TRY(mf_job_agree(j, weights_desc(j, "evaluate", "DATA", file)));
    *data = j->n_positional ? j->positional[0] : j->cfg.data.validation;
    if (strcmp(*data, "none") == 0) {
        mf_status none = j->has_config ? mf_fail(MF_STATUS_CONFIG,
                                                 "%s: nothing to evaluate: give DATA or set [data] "
                                                 "validation",
                                                 j->cfg.path)
                                       : mf_fail(MF_STATUS_INVALID,
                                                 "nothing to evaluate: give DATA (a class-folder "
                                                 "directory or packed .h5)");
        return mf_job_agree(j, none);
    }
    mf_dataset_options o = mf_dataset_options_default();
    o.quiet = j->rank != 0;
    o.max_image_bytes = (size_t)((double)j->cfg.data.max_image_mb * 1048576.0);
    MF_TRY(mf_job_agree(j, mf_dataset_open(&j->validation, *data, &o)));
    MF_TRY(same_data_everywhere(j, j->validation, *data));
    const mf_dataset *ds = j->validation;
    int nc = mf_dataset_num_classes(ds);
    const char **names = mf_alloc((size_t)(nc ? nc : 1) * sizeof *names);
    for (int i = 0; i < nc; i++)
        names[i] = mf_dataset_class_name(ds, i);
    mf_status s = MF_STATUS_OK;
    if (file->class_names)
        s = same_classes(j->weights, (const char *const *)file->class_names, file->classes, *data, names, nc);
    else if (file->arch[0] && file->classes != nc)
        s = mf_fail(MF_STATUS_CONFIG, "%s has %d classes but %s has %d class folders", j->weights, file->classes, *data,
                    nc);
    mf_free(names);
    MF_TRY(mf_job_agree(j, s));
    if (j->cfg.model.classes == 0)
        j->cfg.model.classes = nc;
    return mf_job_agree(j, mf_job_build_model(j));
}

static void evaluate_usage(void)
{
    printf("usage: [mpirun -np N] mpifit evaluate [CONFIG] --weights FILE.h5 [--set section.key=value ...] [DATA]\n\n"
           "Evaluate the weights on DATA (a class-folder dir or packed .h5; with a CONFIG the\n"
           "default is [data] validation). FILE.h5 is a weights.h5 or a checkpoint (ckpt-*.h5)\n"
           "that mpifit train wrote: the model and the class names come from it, and DATA's\n"
           "class folders must be those classes. A Keras weights file from elsewhere has no\n"
           "model description: give the CONFIG it was trained with as the first argument, whose\n"
           "[model] then sets the model (a CONFIG always does). Under mpirun the images are\n"
           "shared out over the ranks and the metrics summed: the same numbers as one rank.\n"
           "The last line is machine-readable:\n"
           "  loss=0.1234 accuracy=0.9531\n"
           "(every metric as name=value, space-separated, %%.6g).\n");
}

int mf_cmd_evaluate(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        evaluate_usage();
        return argc < 2 ? 2 : 0;
    }
    mf_comm *comm = NULL;
    if (mf_comm_create(&argc, &argv, &comm) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit evaluate: %s\n", mf_last_error());
        return 1;
    }
    mf_job j;
    mf_model_desc file;
    memset(&file, 0, sizeof file);
    const char *data = NULL;
    mf_status s = mf_job_parse(&j, argc, argv, MF_JOB_CONFIG_OPTIONAL, comm);
    if (s == MF_STATUS_OK && !j.weights)
        s = mf_fail(MF_STATUS_INVALID, "--weights FILE.h5 is required (try --help)");
    s = mf_job_agree(&j, s);
    if (s == MF_STATUS_OK) {
        mf_set_num_threads(mf_job_threads(&j));
        s = evaluate_setup(&j, &file, &data);
    }
    mf_loader *l = NULL;
    mf_fit_ctx *ctx = NULL;
    mf_logs logs;
    if (s == MF_STATUS_OK) {
        mf_loader_options lo = mf_job_loader_options(&j, 0);
        s = mf_job_agree(&j, mf_loader_create(&l, j.validation, &lo));
    }
    if (s == MF_STATUS_OK) {
        ctx = mf_fit_ctx_create(j.model, 1, j.rank);
        mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
        s = mf_compile(ctx, mf_optimizer_create(j.model, &oo), NULL, NULL, "accuracy");
        if (s == MF_STATUS_OK) /* metrics summed over ranks, BatchNorm statistics the same everywhere */
            s = mf_fit_distribute(ctx, comm, NULL);
        s = mf_job_agree(&j, s);
    }
    if (s == MF_STATUS_OK)
        s = mf_evaluate(ctx, l, 0, &logs);
    if (s == MF_STATUS_OK && j.rank == 0) {
        printf("evaluated %s on %d images of %s\n", j.weights, mf_dataset_size(j.validation), data);
        for (int i = 0; i < logs.n; i++)
            printf("%s%s=%.6g", i ? " " : "", logs.name[i], logs.value[i]);
        printf("\n");
    } else if (s != MF_STATUS_OK && j.rank == 0) { /* the same message on every rank: rank 0 says it */
        fprintf(stderr, "mpifit evaluate: %s\n", mf_last_error());
    }
    mf_fit_ctx_free(ctx);
    mf_loader_free(l);
    mf_model_desc_free(&file);
    mf_job_free(&j);
    mf_comm_free(comm);
    return s == MF_STATUS_OK ? 0 : 1;
}

/* ---- predict --------------------------------------------------------------- */

/* The class names predict prints, *names (j->classes of them, pointing into
 * file or j->train), and j->classes. Without a config they are the file's.
 * With one, [data] train's class folders when they can be read (and then
 * they must be the file's, if it has names), else the file's. */
static mf_status predict_classes(mf_job *j, const mf_model_desc *file, const char ***names)
{
    const char *const *fn = (const char *const *)file->class_names;
    int n = file->class_names ? file->classes : 0;
    if (j->has_config && strcmp(j->cfg.data.train, "none") != 0) {
        mf_dataset_options o = mf_dataset_options_default();
        o.quiet = 1;
        if (mf_dataset_open(&j->train, j->cfg.data.train, &o) != MF_STATUS_OK) {
            if (!fn) {
                char why[900];
                mf_strlcpy(why, mf_last_error(), sizeof why);
                return mf_fail(MF_STATUS_CONFIG,
                               "%s has no class names, and [data] train, where they would come from, cannot be "
                               "read: %s",
                               j->weights, why);
            }
            mf_clear_error();
            j->train = NULL;
        }
    }
    if (j->train) {
        int nd = mf_dataset_num_classes(j->train);
        *names = mf_alloc((size_t)nd * sizeof **names);
        for (int i = 0; i < nd; i++)
            (*names)[i] = mf_dataset_class_name(j->train, i);
        if (fn) {
            char what[MF_CFG_PATH + 32];
            snprintf(what, sizeof what, "[data] train %s", j->cfg.data.train);
            MF_TRY(same_classes(j->weights, fn, n, what, *names, nd));
        }
        n = nd;
    } else if (fn) {
        *names = mf_alloc((size_t)n * sizeof **names);
        memcpy(*names, fn, (size_t)n * sizeof **names);
    } else if (j->has_config) {
        return mf_fail(MF_STATUS_CONFIG, "%s has no class names and %s sets no [data] train to take them from",
                       j->weights, j->cfg.path);
    } else {
        return mf_fail(MF_STATUS_CONFIG,
                       "%s has no class names: give a config whose [data] train has the class folders "
                       "(mpifit predict CONFIG --weights %s IMAGE...)",
                       j->weights, j->weights);
    }
    if (j->has_config && j->cfg.model.classes > 0 && j->cfg.model.classes != n)
        return mf_fail(MF_STATUS_CONFIG, "%s: [model] classes = %d but there are %d class names", j->cfg.path,
                       j->cfg.model.classes, n);
    j->classes = n;
    return MF_STATUS_OK;
}

/* Set up predict on every rank: the model with the weights and the class
 * names. Collective. */
static mf_status predict_setup(mf_job *j, mf_model_desc *file, const char ***names)
{
    MF_TRY(mf_job_agree(j, weights_desc(j, "predict", "IMAGE...", file)));
    MF_TRY(mf_job_agree(j, predict_classes(j, file, names)));
    return mf_job_agree(j, mf_job_build_model(j));
}

/* One image's result as it travels to rank 0: a header, the C probabilities,
 * and the message of an image that could not be read. */
#define PRED_MSG 1024
enum { PRED_NONE = 0, PRED_OK = 1, PRED_BAD = 2 };
typedef struct pred_head {
    int32_t state; /* PRED_* */
    int32_t rank; /* who classified it */
} pred_head;

static size_t pred_slot_bytes(int C)
{
    size_t b = sizeof(pred_head) + (size_t)C * sizeof(float) + PRED_MSG;
    return (b + 7) / 8 * 8;
}

/* Rank 0: the line of one image (stdout) or its error (stderr, once, with the
 * rank that hit it). */
static void print_result(const mf_job *j, const char *path, const unsigned char *slot, const char **names)
{
    pred_head h;
    memcpy(&h, slot, sizeof h);
    int C = j->classes;
    if (h.state == PRED_BAD) {
        const char *msg = (const char *)(slot + sizeof h + (size_t)C * sizeof(float));
        if (j->world > 1)
            fprintf(stderr, "mpifit predict: rank %d: %s\n", h.rank, msg);
        else
            fprintf(stderr, "mpifit predict: %s\n", msg);
        return;
    }
    float *p = mf_alloc((size_t)C * sizeof *p);
    memcpy(p, slot + sizeof h, (size_t)C * sizeof *p);
    int best = 0;
    for (int k = 1; k < C; k++)
        best = p[k] > p[best] ? k : best;
    printf("%s\t%s", path, names[best]);
    for (int k = 0; k < C; k++)
        printf("\t%.4f", p[k]);
    printf("\n");
    mf_free(p);
}

/* Classify j->positional over the ranks, in rounds: in each, rank r takes the
 * next `per` images after those of ranks < r, one at a time (batch 1, so an
 * image's probabilities do not depend on which rank, or next to which images,
 * it ran), and one allgather brings every result of the round to rank 0,
 * which prints them in input order as they come. Every rank returns the
 * number of images that could not be read; *s gets a failure of the
 * collective calls. */
static int predict_all(mf_job *j, const char **names, mf_status *s)
{
    int n = j->n_positional, W = j->world, S = j->cfg.model.input_size, C = j->classes;
    int per = (n + W - 1) / W;
    per = per > 64 ? 64 : per; /* bounds the buffers and lets lines stream */
    size_t slot = pred_slot_bytes(C);
    unsigned char *mine = mf_alloc((size_t)per * slot), *all = mf_alloc((size_t)per * W * slot);
    float *x = mf_alloc((size_t)S * S * 3 * sizeof *x);
    mf_fit_ctx *ctx = mf_fit_ctx_create(j->model, 1, j->rank);
    int bad = 0;
    *s = MF_STATUS_OK;
    for (int base = 0; base < n && *s == MF_STATUS_OK; base += per * W) {
        memset(mine, 0, (size_t)per * slot);
        for (int k = 0; k < per; k++) {
            int i = base + j->rank * per + k;
            if (i >= n)
                break;
            unsigned char *sl = mine + (size_t)k * slot;
            pred_head h = {PRED_OK, j->rank};
            if (mf_image_load(j->positional[i], S, x) == MF_STATUS_OK) {
                mf_predict(ctx, x, 1, 1, (float *)(sl + sizeof h));
            } else {
                h.state = PRED_BAD;
                mf_strlcpy((char *)(sl + sizeof h + (size_t)C * sizeof(float)), mf_last_error(), PRED_MSG);
            }
            memcpy(sl, &h, sizeof h);
        }
        if (W > 1)
            *s = mf_comm_allgather_bytes(j->comm, mine, (size_t)per * slot, all);
        else
            memcpy(all, mine, (size_t)per * slot);
        /* rank r's k-th slot is image base + r * per + k: input order */
        for (int q = 0; *s == MF_STATUS_OK && q < per * W && base + q < n; q++) {
            const unsigned char *sl = all + (size_t)q * slot;
            pred_head h;
            memcpy(&h, sl, sizeof h);
            bad += h.state == PRED_BAD;
            if (j->rank == 0)
                print_result(j, j->positional[base + q], sl, names);
        }
        if (j->rank == 0)
            fflush(stdout);
    }
    mf_fit_ctx_free(ctx);
    mf_free(x);
    mf_free(all);
    mf_free(mine);
    return bad;
}

static void predict_usage(void)
{
    printf("usage: [mpirun -np N] mpifit predict [CONFIG] --weights FILE.h5 [--set section.key=value ...] "
           "IMAGE.jpg...\n\n"
           "One line per image, in the order given, tab-separated: the path, the predicted\n"
           "class name, then the probability of every class in class order, e.g.\n"
           "  leaf.jpg\tbean_rust\t0.0312\t0.9511\t0.0177\n"
           "FILE.h5 is a weights.h5 or a checkpoint (ckpt-*.h5) that mpifit train wrote: the\n"
           "model and the class names come from it, from any directory. A Keras weights file\n"
           "from elsewhere has no model description: give the CONFIG it was trained with as\n"
           "the first argument. A CONFIG always sets the model ([model]); the class names are\n"
           "then [data] train's class folders, which must match the file's names when both\n"
           "exist (the file's alone when the folders cannot be read). CONFIG is the first\n"
           "argument when it is not an option, a directory, or a JPEG or .h5 file.\n"
           "An image that cannot be read is reported on stderr (path, reason and, under\n"
           "mpirun, the rank that read it) and the exit status is 1. Under mpirun the images\n"
           "are shared out over the ranks and rank 0 prints every line.\n");
}

int mf_cmd_predict(int argc, char **argv)
{
    if (help_wanted(argc, argv) || argc < 2) {
        predict_usage();
        return argc < 2 ? 2 : 0;
    }
    mf_comm *comm = NULL;
    if (mf_comm_create(&argc, &argv, &comm) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit predict: %s\n", mf_last_error());
        return 1;
    }
    mf_job j;
    mf_model_desc file;
    memset(&file, 0, sizeof file);
    const char **names = NULL;
    mf_status s = mf_job_parse(&j, argc, argv, MF_JOB_CONFIG_OPTIONAL, comm);
    j.info = stderr; /* stdout carries only the result lines */
    if (s == MF_STATUS_OK && (!j.weights || j.n_positional == 0))
        s = mf_fail(MF_STATUS_INVALID, "--weights FILE.h5 and at least one IMAGE are required (try --help)");
    s = mf_job_agree(&j, s);
    if (s == MF_STATUS_OK) {
        mf_set_num_threads(mf_job_threads(&j));
        s = predict_setup(&j, &file, &names);
    }
    int bad = 0;
    if (s == MF_STATUS_OK)
        bad = predict_all(&j, names, &s);
    if (s != MF_STATUS_OK && j.rank == 0) /* the same message on every rank: rank 0 says it */
        fprintf(stderr, "mpifit predict: %s\n", mf_last_error());
    mf_free(names);
    mf_model_desc_free(&file);
    mf_job_free(&j);
    mf_comm_free(comm);
    return s == MF_STATUS_OK && bad == 0 ? 0 : 1;
}
