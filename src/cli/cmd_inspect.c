/* cmd_inspect.c: `mpifit inspect FILE.h5`, `mpifit export CKPT OUT.h5 [--full]` and
 * `mpifit plot METRICS.h5 -o curves.png`: looking at what a run wrote (the
 * files are read by src/io/describe.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "cli.h"
#include "job.h"
#include "core/core.h"
#include "config.h"
#include "io/describe.h"

int mf_cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: mpifit inspect FILE.h5\n\n"
               "What a checkpoint (position, optimizer, weights, history, config), a metrics\n"
               "file (the per-epoch table, the step count) or a Keras weights file (every\n"
               "dataset and its shape) holds.\n");
        return argc == 2 ? 0 : 2;
    }
    if (mf_h5_describe(argv[1], stdout) != 0) {
        fprintf(stderr, "mpifit inspect: %s\n", mf_last_error());
        return 1;
    }
    return 0;
}

/* The model of a checkpoint (or weights file) with its weights, for
 * `export --full`: from its model description (mf_model_desc_read), or from
 * the [model] keras file its stored config names; then every layer's weights
 * and moving statistics from the file. */
static mf_status checkpoint_model(const char *path, mf_model **out)
{
    *out = NULL;
    mf_model_desc d;
    mf_model *m = NULL;
    float bn_momentum = 0.0f;
    mf_status s = mf_model_desc_read(path, &d);
    if (s == MF_STATUS_OK) {
        if (strcmp(d.arch, MF_MODEL_DESC_KERAS) == 0) /* the file holds its model_config */
            s = mf_model_from_keras(&m, path, 0);
        else if (strcmp(d.arch, "mobilenet_v2") == 0)
            s = mf_mobilenet_v2_classifier(&m, d.alpha, d.input_size, d.classes, d.dropout, 0);
        else /* small_cnn, at the width mpifit train builds it (job.c) */
            s = mf_small_cnn(&m, d.input_size, d.classes, 16, d.dropout, 0);
        bn_momentum = d.bn_momentum;
        mf_model_desc_free(&d);
    } else if (s == MF_STATUS_CONFIG) {
        /* no description: a [model] keras run (its model is that file), or a
         * checkpoint from before descriptions were stored: its config */
        char why[512];
        mf_strlcpy(why, mf_last_error(), sizeof why);
        mf_checkpoint_meta meta;
        mf_config c;
        mf_config_defaults(&c);
        int tried = 0; /* 1: the config named a model, whose own error stands */
        if (mf_checkpoint_read_meta(path, &meta) == MF_STATUS_OK) {
            if (meta.config && mf_config_parse(&c, path, meta.config) == MF_STATUS_OK) {
                tried = 1;
                int classes = meta.n_classes > 0 ? meta.n_classes : c.model.classes;
                if (strcmp(c.model.keras, "none") != 0)
                    s = mf_model_from_keras(&m, c.model.keras, 0);
                else if (classes > 0 && strcmp(c.model.arch, "mobilenet_v2") == 0)
                    s = mf_mobilenet_v2_classifier(&m, c.model.alpha, c.model.input_size, classes, c.model.dropout, 0);
                else if (classes > 0)
                    s = mf_small_cnn(&m, c.model.input_size, classes, 16, c.model.dropout, 0);
                else
                    tried = 0;
                bn_momentum = c.model.bn_momentum;
            }
            mf_checkpoint_meta_free(&meta);
        }
        mf_config_free(&c);
        if (!tried)
            s = mf_fail(
                MF_STATUS_CONFIG,
                "%s; --full needs the model: a checkpoint or weights file of mpifit train with [model] arch, or a "
                "checkpoint whose config names its [model] keras file (the weights-only export needs neither)",
                why);
    }
    if (s == MF_STATUS_OK && bn_momentum > 0.0f)
        for (int i = 0; i < mf_model_num_layers(m) && s == MF_STATUS_OK; i++) {
            mf_layer *l = mf_model_layer(m, i);
            if (strcmp(mf_layer_kind(l), "BatchNormalization") == 0)
                s = mf_batchnorm_set_momentum(l, bn_momentum);
        }
    /* a checkpoint: its layers trainable as its run had them (the config's
     * freezing, the [finetune] phase); a weights file keeps the flags of its
     * model_config (a [model] keras run's), or all trainable */
    mf_checkpoint_summary at;
    mf_checkpoint_meta meta;
    if (s == MF_STATUS_OK && mf_checkpoint_check(path, &at) == MF_STATUS_OK &&
        mf_checkpoint_read_meta(path, &meta) == MF_STATUS_OK) {
        mf_config c;
        mf_config_defaults(&c);
        if (meta.config && mf_config_parse(&c, path, meta.config) == MF_STATUS_OK)
            s = mf_config_apply_trainable(m, &c, at.epoch, at.step_in_epoch);
        mf_config_free(&c);
        mf_checkpoint_meta_free(&meta);
    }
    if (s == MF_STATUS_OK) /* a weights file is no checkpoint: not an error */
        mf_clear_error();
    mf_weights_report r;
    if (s == MF_STATUS_OK)
        s = mf_weights_load_keras(m, path, &r);
    if (s == MF_STATUS_OK && r.missing_layers)
        s = mf_fail(MF_STATUS_DATA, "%s: %d layers of the model have no weights there: %s", path, r.missing_layers,
                    r.missing);
    if (s != MF_STATUS_OK) {
        mf_model_free(m);
        return s;
    }
    *out = m;
    return MF_STATUS_OK;
}

int mf_cmd_export(int argc, char **argv)
{
    int full = argc == 4 && strcmp(argv[3], "--full") == 0;
    if ((argc != 3 && !full) || strcmp(argv[1], "--help") == 0) {
        printf("usage: mpifit export CHECKPOINT.h5 OUT.h5 [--full]\n\n"
               "Write the checkpoint's weights as a Keras weights file (model.save_weights layout:\n"
               "/<layer>/<layer>/<weight>:0, Conv2D kernels HWIO, Dense (in, out)), readable by\n"
               "h5py and by Keras' load_weights on the same architecture.\n\n"
               "--full: write a Keras 2 full-model file instead (the layout of model.save(\"m.h5\")):\n"
               "the model's architecture as the root attribute model_config (model.to_json()'s\n"
               "Functional form), keras_version, backend, and the weights under /model_weights.\n"
               "Keras loads it with keras.models.load_model(OUT.h5, compile=False); the classifier's\n"
               "output layer is written with activation \"softmax\" (mpifit trains on logits), so\n"
               "model.predict gives probabilities. Not written: optimizer state, training config.\n"
               "The model comes from the checkpoint's model description ([model] arch runs, and\n"
               "weights.h5) or from the [model] keras file its config names.\n");
        return argc == 3 || full ? 0 : 2;
    }
    if (!full) {
        if (mf_checkpoint_export_keras(argv[1], argv[2]) != MF_STATUS_OK) {
            fprintf(stderr, "mpifit export: %s\n", mf_last_error());
            return 1;
        }
        printf("exported the weights of %s to %s\n", argv[1], argv[2]);
        return 0;
    }
    mf_model *m = NULL;
    if (checkpoint_model(argv[1], &m) != MF_STATUS_OK || mf_model_to_keras(m, argv[2]) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit export: %s\n", mf_last_error());
        mf_model_free(m);
        return 1;
    }
    printf("exported the model %s (%d layers) and weights of %s to %s\n", mf_model_name(m), mf_model_num_layers(m),
           argv[1], argv[2]);
    mf_model_free(m);
    return 0;
}

/* gnuplot draws: loss (train and validation) and every accuracy, per epoch. */
/* gnuplot's input: one row per epoch (1-based), the four columns. */
static void write_curves(const char *path, const double *ep, double *const cols[4], size_t rows)
{
    FILE *d = fopen(path, "w");
    for (size_t i = 0; d && i < rows; i++) {
        fprintf(d, "%g", ep[i] + 1);
        for (int k = 0; k < 4; k++)
            fprintf(d, " %g", cols[k] ? cols[k][i] : NAN);
        fprintf(d, "\n");
    }
    if (d)
        fclose(d);
}

/* Loss and accuracy side by side, train against validation, as a PNG. */
static int run_gnuplot(const char *out, const char *data)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"set terminal pngcairo size 1000,420; set output '%s'; set multiplot layout 1,2; "
             "set xlabel 'epoch'; set grid; set key top right; set title 'loss'; "
             "plot '%s' using 1:2 with linespoints title 'train', '' using 1:3 with linespoints title 'validation'; "
             "set key bottom right; set title 'accuracy'; set yrange [0:1]; "
             "plot '%s' using 1:4 with linespoints title 'train', '' using 1:5 with linespoints title 'validation'; "
             "unset multiplot\"",
             out, data, data);
    return system(cmd);
}

int mf_cmd_plot(int argc, char **argv)
{
    const char *in = NULL, *out = "curves.png";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            in = NULL;
            argc = -1;
            break;
        } else {
            in = argv[i];
        }
    }
    if (!in) {
        printf("usage: mpifit plot OUTPUT_DIR/metrics.h5 [-o curves.png]\n\n"
               "Loss and accuracy per epoch, train against validation, as a PNG (needs gnuplot;\n"
               "Debian: apt-get install gnuplot-nox).\n");
        return argc == -1 ? 0 : 2;
    }
    double *ep = NULL, *cols[4] = {0};
    size_t rows = 0;
    if (mf_metrics_read_curves(in, &ep, cols, &rows) != 0) {
        fprintf(stderr, "mpifit plot: %s\n", mf_last_error());
        return 1;
    }
    int rc = 1;
    if (!rows) {
        fprintf(stderr, "mpifit plot: %s has no epoch rows yet\n", in);
    } else {
        char data[] = "/tmp/mpifit-plot-XXXXXX";
        int fd = mkstemp(data);
        if (fd >= 0)
            close(fd);
        write_curves(data, ep, cols, rows);
        rc = run_gnuplot(out, data);
        unlink(data);
        if (rc != 0)
            fprintf(stderr, "mpifit plot: gnuplot failed (status %d); is it installed? (apt-get install gnuplot-nox)\n",
                    rc);
        else
            printf("%s: loss and accuracy of %llu epochs\n", out, (unsigned long long)rows);
        rc = rc != 0;
    }
    free(ep);
    for (int k = 0; k < 4; k++)
        free(cols[k]);
    return rc;
}
