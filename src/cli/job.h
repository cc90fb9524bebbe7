/* job.h: what the train, summary, evaluate and predict commands share: the
 * command line (CONFIG, --set, --weights), the datasets of [data], and the
 * model of [model]. */
#ifndef MF_JOB_H
#define MF_JOB_H
#include "mpifit.h"
#include "config.h"

#define MF_JOB_MAX_ARGS 256

typedef struct mf_job {
    mf_config cfg;
    int has_config; /* 0: evaluate/predict without CONFIG, the defaults + --set */
    const char *sets[MF_JOB_MAX_ARGS]; /* the --set assignments, in order */
    int n_sets;
    const char *weights; /* --weights FILE, or NULL */
    const char *positional[MF_JOB_MAX_ARGS]; /* arguments after CONFIG that are not options */
    int n_positional;
    int verbose_ranks; /* --verbose: every rank logs */
    const char *resume; /* --resume auto|PATH (train) */
    mf_dataset *train, *validation; /* NULL until mf_job_open_data */
    mf_model *model;
    int classes;
    int rank, world;
    FILE *info; /* where progress notes go: stdout, or stderr when stdout is data (predict) */
    mf_comm *comm; /* NULL: a single process */
} mf_job;

/* mf_job_parse's flags. */
enum {
    MF_JOB_TRAIN_DATA = 1, /* validate the config for training ([data] train set, ...) */
    MF_JOB_CONFIG_OPTIONAL = 2 /* evaluate, predict: CONFIG may be left out (mf_job_is_config) */
};
/* Parse `mpifit CMD CONFIG [--set s.k=v]... [--weights F] [args...]` (argv[0]
 * is CMD), load and validate the config. Errors name the argument. With a
 * communicator, rank 0 reads the file and broadcasts its text, so every rank
 * parses the same bytes (collective). With MF_JOB_CONFIG_OPTIONAL and a first
 * argument that is not a config, j->has_config is 0 and j->cfg holds the
 * defaults and the --set values. */
mf_status mf_job_parse(mf_job *j, int argc, char **argv, unsigned flags, mf_comm *comm);
/* Is arg, the first argument of evaluate or predict, the CONFIG? Not when it
 * is an option, a directory, a JPEG or HDF5 file (by name: .jpg, .jpeg, .h5,
 * .hdf5, file.h5:split; or by its first bytes), or a path that does not exist
 * and does not end in .ini: those are what the commands take besides. */
int mf_job_is_config(const char *arg);
/* Collective: every rank's status of a phase; on failure all ranks get the
 * failing rank's message. A no-op without a communicator. */
mf_status mf_job_agree(mf_job *j, mf_status s);
/* Compute threads per rank: [dist] threads, or this rank's share of the node. */
int mf_job_threads(const mf_job *j);
/* Open [data] train (and validation, or the validation_split subsets) and
 * check their class lists; prints the classes on rank 0. */
mf_status mf_job_open_data(mf_job *j, int need_validation);
/* Number of classes: [model] classes, else the class folders of [data] train. */
mf_status mf_job_classes(mf_job *j);
/* Build [model] (arch, alpha, input size, dropout), load [model] weights and
 * then --weights, freeze the base if asked. */
mf_status mf_job_build_model(mf_job *j);
/* [dist] deterministic and chunk onto ctx (after mf_fit_distribute); errors
 * name the config. */
mf_status mf_job_deterministic(const mf_job *j, mf_fit_ctx *ctx);
/* The trainable flags of a model built from config c as its run had them at
 * a checkpoint's position (epoch, step_in_epoch: mf_checkpoint_summary):
 * [model] trainable_from / freeze_base, then [finetune] trainable_from once
 * that phase began. For models rebuilt outside a run (export --full). */
mf_status mf_config_apply_trainable(mf_model *m, const mf_config *c, int epoch, int step_in_epoch);
/* The model of j (its [model], j->classes) and the class names of [data]
 * train (or none when j->train is not open), for weights files and
 * checkpoints to carry. Free with mf_model_desc_free. */
void mf_job_model_desc(const mf_job *j, mf_model_desc *d);
/* The [model] of a weights file's description: arch, alpha, input size,
 * classes, dropout and BatchNorm momentum from d, then the --set values again
 * (the command line has the last word). */
mf_status mf_job_apply_desc(mf_job *j, const mf_model_desc *d);
/* Loader options from [data] for this rank. */
mf_loader_options mf_job_loader_options(const mf_job *j, int training);
void mf_job_free(mf_job *j);
/* [optimizer] -> optimizer and schedule, for steps_per_epoch steps an epoch. */
mf_status mf_job_make_optimizer(const mf_job *j, int steps_per_epoch, mf_optimizer **opt, mf_schedule *sch);
/* [dist] -> the options of mf_fit_distribute. */
mf_dist_options mf_job_dist_options(const mf_job *j);
/* [train] epochs plus [finetune] epochs: where the whole run ends. */
int mf_job_total_epochs(const mf_job *j);
/* The [finetune] phase's schedule (its clock starts when the phase does). */
mf_schedule mf_job_finetune_schedule(const mf_job *j, int steps_per_epoch);
#endif
