/* cmd_inspect.c: `mpifit inspect FILE.h5`, `mpifit export CKPT OUT.h5` and
 * `mpifit plot METRICS.h5 -o curves.png`: looking at what a run wrote. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mpifit.h"
#include "cli.h"
#include "core/core.h"
#include "io/h5util.h"

static char *str_attr(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0)
        return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &v) >= 0 && v) {
            size_t n = strlen(v) + 1;
            out = malloc(n);
            memcpy(out, v, n);
            H5free_memory(v);
        }
        H5Tclose(mt);
    } else if (H5Tget_class(t) == H5T_STRING) {
        size_t n = H5Tget_size(t);
        out = calloc(n + 1, 1);
        H5Aread(a, t, out);
    }
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

static long long int_attr(hid_t obj, const char *name)
{
    long long v = -1;
    if (H5Aexists(obj, name) > 0) {
        hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
        H5Aread(a, H5T_NATIVE_LLONG, &v);
        H5Aclose(a);
    }
    return v;
}

/* every dataset under the group, with its shape */
typedef struct walk {
    int n;
    size_t values;
    int print;
} walk;

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    walk *w = data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t dims[8];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t n = 1;
    if (w->print)
        printf("  %-64s (", name);
    for (int i = 0; i < nd; i++) {
        n *= dims[i];
        if (w->print)
            printf(i ? ", %llu" : "%llu", (unsigned long long)dims[i]);
    }
    if (w->print)
        printf(nd == 1 ? ",)\n" : ")\n");
    w->n++;
    w->values += n;
    H5Sclose(sp);
    H5Dclose(d);
    return 0;
}

/* the values of a 1-D float64 dataset, or NULL */
static double *series(hid_t f, const char *path, hsize_t *n)
{
    *n = 0;
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0)
        return NULL;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT), sp = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp, n, NULL);
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(sp);
    H5Dclose(d);
    return v;
}

static void names_of(hid_t f, const char *group, char names[][64], int *n, int cap)
{
    *n = 0;
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0)
        return;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    H5G_info_t info;
    H5Gget_info(g, &info);
    for (hsize_t i = 0; i < info.nlinks && *n < cap; i++)
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, names[*n], 64, H5P_DEFAULT) >= 0)
            (*n)++;
    H5Gclose(g);
}

static void print_epochs(hid_t f)
{
    char names[48][64];
    int n;
    names_of(f, "epoch", names, &n, 48);
    hsize_t rows = 0;
    double *ep = series(f, "epoch/epoch", &rows);
    printf("epochs: %llu\n", (unsigned long long)rows);
    if (!rows) {
        free(ep);
        return;
    }
    printf("  %-6s", "epoch");
    for (int k = 0; k < n; k++)
        if (strcmp(names[k], "epoch") != 0)
            printf(" %13.13s", names[k]);
    printf("\n");
    double *col[48];
    hsize_t len[48];
    for (int k = 0; k < n; k++) {
        char p[80];
        snprintf(p, sizeof p, "epoch/%.63s", names[k]);
        col[k] = series(f, p, &len[k]);
    }
    for (hsize_t i = 0; i < rows; i++) {
        printf("  %-6.0f", ep[i] + 1);
        for (int k = 0; k < n; k++)
            if (strcmp(names[k], "epoch") != 0)
                printf(" %13.6g", i < len[k] ? col[k][i] : NAN);
        printf("\n");
    }
    for (int k = 0; k < n; k++)
        free(col[k]);
    free(ep);
}

static int inspect(const char *path)
{
    mf_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char err[256];
        fprintf(stderr, "mpifit inspect: cannot open %s: %s\n", path, mf_h5_error(err, sizeof err));
        mf_h5_unlock();
        return 1;
    }
    char *fmt = str_attr(f, "format");
    walk w = {0, 0, 0};
    if (fmt && strcmp(fmt, "mpifit-checkpoint") == 0) {
        char *ver = str_attr(f, "mpifit_version"), *cfg = str_attr(f, "config");
        printf("%s: mpifit checkpoint (written by mpifit %s, %s)\n", path, ver ? ver : "?",
               int_attr(f, "complete") == 1 ? "complete" : "INCOMPLETE");
        printf("position: %lld epochs done, %lld steps into the next; global step %lld; data epoch %lld, step %lld\n",
               int_attr(f, "epoch"), int_attr(f, "step_in_epoch"), int_attr(f, "global_step"),
               int_attr(f, "data_epoch"), int_attr(f, "data_step"));
        printf("world size: %lld ranks; seed %lld\n", int_attr(f, "world_size"), int_attr(f, "seed"));
        hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        char *kind = g >= 0 ? str_attr(g, "kind") : NULL;
        printf("optimizer: %s, %lld iterations\n", kind ? kind : "?", g >= 0 ? int_attr(g, "iterations") : -1);
        free(kind);
        if (g >= 0)
            H5Gclose(g);
        H5Ovisit_by_name(f, "model_weights", H5_INDEX_NAME, H5_ITER_INC, visit, &w, H5P_DEFAULT);
        printf("weights: %d tensors, %zu values (/model_weights, Keras layout)\n", w.n, w.values);
        if (H5Lexists(f, "history", H5P_DEFAULT) > 0) {
            hid_t d = H5Dopen2(f, "history", H5P_DEFAULT), sp = H5Dget_space(d);
            hsize_t dims[2] = {0, 0};
            H5Sget_simple_extent_dims(sp, dims, NULL);
            printf("history: %llu epochs of %llu metrics\n", (unsigned long long)dims[0], (unsigned long long)dims[1]);
            H5Sclose(sp);
            H5Dclose(d);
        }
        printf("config:\n%s%s", cfg ? cfg : "(none)\n", cfg && cfg[0] && cfg[strlen(cfg) - 1] != '\n' ? "\n" : "");
        free(ver);
        free(cfg);
    } else if (fmt && strcmp(fmt, "mpifit-metrics") == 0) {
        char *ver = str_attr(f, "mpifit_version");
        printf("%s: mpifit metrics (mpifit %s), %lld rank%s\n", path, ver ? ver : "?", int_attr(f, "world_size"),
               int_attr(f, "world_size") == 1 ? "" : "s");
        free(ver);
        print_epochs(f);
        hsize_t n = 0;
        double *gs = series(f, "step/global_step", &n), *loss = NULL;
        hsize_t nl = 0;
        loss = series(f, "step/loss", &nl);
        printf("steps: %llu", (unsigned long long)n);
        if (n && nl == n)
            printf(" (last: global step %.0f, loss %.6g)", gs[n - 1], loss[n - 1]);
        printf("\n");
        free(gs);
        free(loss);
    } else {
        w.print = 1;
        printf("%s: HDF5 file (Keras-layout weights?), datasets:\n", path);
        H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, visit, &w);
        printf("%d datasets, %zu values\n", w.n, w.values);
    }
    free(fmt);
    H5Fclose(f);
    mf_h5_unlock();
    return 0;
}

int mf_cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: mpifit inspect FILE.h5\n\n"
               "What a checkpoint (position, optimizer, weights, history, config), a metrics\n"
               "file (the per-epoch table, the step count) or a Keras weights file (every\n"
               "dataset and its shape) holds.\n");
        return argc == 2 ? 0 : 2;
    }
    return inspect(argv[1]);
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
/* The epoch numbers (*ep) and the loss, val_loss, accuracy, val_accuracy
 * columns (NULL where missing) of a metrics file; *rows 0 when it has none. */
static int read_curves(const char *in, double **ep, double *cols[4], hsize_t *rows)
{
    mf_h5_lock();
    hid_t f = H5Fopen(in, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        mf_h5_unlock();
        fprintf(stderr, "mpifit plot: cannot open %s\n", in);
        return 1;
    }
    *rows = 0;
    *ep = series(f, "epoch/epoch", rows);
    const char *want[] = {"loss", "val_loss", "accuracy", "val_accuracy"};
    for (int k = 0; k < 4; k++) {
        char p[80];
        hsize_t r = 0;
        snprintf(p, sizeof p, "epoch/%s", want[k]);
        cols[k] = *rows ? series(f, p, &r) : NULL;
        if (cols[k] && r != *rows) {
            free(cols[k]);
            cols[k] = NULL;
        }
    }
    H5Fclose(f);
    mf_h5_unlock();
    return 0;
}

/* gnuplot's input: one row per epoch (1-based), the four columns. */
static void write_curves(const char *path, const double *ep, double *const cols[4], hsize_t rows)
{
    FILE *d = fopen(path, "w");
    for (hsize_t i = 0; d && i < rows; i++) {
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
    hsize_t rows = 0;
    if (read_curves(in, &ep, cols, &rows) != 0)
        return 1;
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
