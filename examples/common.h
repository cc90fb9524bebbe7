/* common.h: what the four examples share, so that each example file shows only
 * its own way of training: the data, the model, the hyper-parameters. */
#ifndef EXAMPLES_COMMON_H
#define EXAMPLES_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <mpifit.h>

#define EX_SEED 7
#define EX_EPOCHS 2
#define EX_BATCH 8
#define EX_SIZE 32
#define EX_LR 0.003f

/* Stop with the library's message on any failure. */
#define EX_TRY(expr)                                                             \
    do {                                                                         \
        if ((expr) != MF_STATUS_OK) {                                            \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, mf_last_error()); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* DATA/train and DATA/validation as datasets, and loaders for them. */
static inline void ex_data(const char *dir, mf_dataset **train, mf_dataset **val, mf_loader **tl, mf_loader **vl)
{
    char path[1024];
    mf_dataset_options d = mf_dataset_options_default();
    snprintf(path, sizeof path, "%s/train", dir);
    EX_TRY(mf_dataset_open(train, path, &d));
    snprintf(path, sizeof path, "%s/validation", dir);
    EX_TRY(mf_dataset_open(val, path, &d));
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = EX_BATCH;
    o.input_size = EX_SIZE;
    o.threads = 2;
    o.seed = EX_SEED;
    EX_TRY(mf_loader_create(tl, *train, &o));
    o.training = 0;
    EX_TRY(mf_loader_create(vl, *val, &o));
}

/* A small CNN for 3 classes, weights from EX_SEED. */
static inline mf_model *ex_model(void)
{
    mf_model *m;
    EX_TRY(mf_small_cnn(&m, EX_SIZE, 3, 8, 0.2f, EX_SEED));
    return m;
}

static inline mf_optimizer *ex_adam(mf_model *m)
{
    mf_optimizer_options o = mf_optimizer_defaults(MF_OPT_ADAM);
    return mf_optimizer_create(m, &o);
}

/* The trained weights, as raw floats, so the four ways can be compared bit for bit. */
static inline void ex_save(mf_model *m, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(mf_model_params(m), sizeof(float), mf_model_num_params(m), f) != mf_model_num_params(m) ||
        fwrite(mf_model_state(m), sizeof(float), mf_model_num_state(m), f) != mf_model_num_state(m) || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}
#endif
