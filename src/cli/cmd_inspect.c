/* cmd_inspect.c: `mpifit inspect FILE.h5`, `mpifit export CKPT OUT.h5` and
 * `mpifit plot METRICS.h5 -o curves.png`: looking at what a run wrote (the
 * files are read by src/io/describe.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "cli.h"
#include "core/core.h"
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

int mf_cmd_export(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--help") == 0) {
        printf("usage: mpifit export CHECKPOINT.h5 OUT.h5\n\n"
               "Write the checkpoint's weights as a Keras weights file (model.save_weights layout:\n"
               "/<layer>/<layer>/<weight>:0, Conv2D kernels HWIO, Dense (in, out)), readable by\n"
               "h5py and by Keras' load_weights on the same architecture.\n");
        return argc == 3 ? 0 : 2;
    }
    if (mf_checkpoint_export_keras(argv[1], argv[2]) != MF_STATUS_OK) {
        fprintf(stderr, "mpifit export: %s\n", mf_last_error());
        return 1;
    }
    printf("exported the weights of %s to %s\n", argv[1], argv[2]);
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
