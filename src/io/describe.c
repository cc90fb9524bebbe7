/* describe.c: what an HDF5 file mpifit wrote holds, in words (`mpifit
 * inspect`), and a metrics file's epoch curves (`mpifit plot`). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/core.h"
#include "describe.h"
#include "h5util.h"
#include "model_desc.h"

/* a string attribute (one element, at most 1 MiB: a config), mf_alloc'ed, or NULL */
static char *str_attr(hid_t obj, const char *name) { return mf_h5_attr_string(obj, name, (size_t)1 << 20); }

/* an integer attribute of one element, or -1 */
static long long int_attr(hid_t obj, const char *name)
{
    long long v = -1;
    if (mf_h5_attr_scalar(obj, name, H5T_NATIVE_LLONG, &v) != 0)
        v = -1;
    return v;
}

/* The model description (mf_model_desc), when the file has one: the
 * architecture and the class names that predict and evaluate will use. */
static void print_model(hid_t f, const char *path, FILE *out)
{
    if (H5Aexists(f, "model_arch") <= 0)
        return;
    mf_model_desc d;
    if (mf_model_desc_get(f, path, &d) != MF_STATUS_OK) {
        fprintf(out, "model: (a damaged description: %s)\n", mf_last_error());
        return;
    }
    fprintf(out, "model: %s", d.arch);
    if (strcmp(d.arch, "mobilenet_v2") == 0)
        fprintf(out, " alpha %g", (double)d.alpha);
    fprintf(out, ", %d px, %d classes", d.input_size, d.classes);
    for (int i = 0; d.class_names && i < d.classes && i < 32; i++)
        fprintf(out, "%s%.64s", i ? " " : ": ", d.class_names[i]);
    fprintf(out, "%s", d.class_names && d.classes > 32 ? " ..." : "");
    if (strcmp(d.arch, MF_MODEL_DESC_KERAS) == 0)
        fprintf(out, "; the Keras model_config in this file\n");
    else
        fprintf(out, "; dropout %g, bn_momentum %g\n", (double)d.dropout, (double)d.bn_momentum);
    mf_model_desc_free(&d);
}

/* every dataset under the group, with its shape */
typedef struct walk {
    int n;
    size_t values;
    int print;
    FILE *out;
} walk;

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    walk *w = data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t dims[32];
    int nd = mf_h5_dims(sp, 32, dims);
    if (nd < 0) {
        H5Sclose(sp);
        H5Dclose(d);
        if (w->print)
            fprintf(w->out, "  %-64s (more than 32 axes: not an mpifit or Keras file)\n", name);
        return 0;
    }
    size_t n = 1;
    if (w->print)
        fprintf(w->out, "  %-64s (", name);
    for (int i = 0; i < nd; i++) {
        n *= dims[i];
        if (w->print)
            fprintf(w->out, i ? ", %llu" : "%llu", (unsigned long long)dims[i]);
    }
    if (w->print)
        fprintf(w->out, nd == 1 ? ",)\n" : ")\n");
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
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t len = 0;
    double *v = NULL;
    /* one axis of floats and a sane length (16 M rows: a step row every
     * optimizer step of a very long run), or nothing: a chunked dataset can
     * claim any length in a few bytes of file, so the claim is bounded before
     * anything is allocated */
    if (sp >= 0 && mf_h5_dims(sp, 1, &len) == 1 && len <= ((hsize_t)1 << 24)) {
        v = malloc((len ? len : 1) * sizeof *v);
        if (v && mf_h5_read_exact(f, path, H5T_NATIVE_DOUBLE, 1, &len, v) >= 0) {
            *n = len;
        } else {
            free(v);
            v = NULL;
        }
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    return v;
}

static void names_of(hid_t f, const char *group, char names[][64], int *n, int cap)
{
    *n = 0;
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0)
        return;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0)
        return;
    hsize_t nl = mf_h5_num_links(g);
    for (hsize_t i = 0; i < nl && *n < cap && mf_h5_link_name(g, i, names[*n], 64) == 0; i++)
        (*n)++;
    H5Gclose(g);
}

static void print_epochs(hid_t f, FILE *out)
{
    char names[48][64];
    int n;
    names_of(f, "epoch", names, &n, 48);
    hsize_t rows = 0;
    double *ep = series(f, "epoch/epoch", &rows);
    fprintf(out, "epochs: %llu\n", (unsigned long long)rows);
    if (!rows) {
        free(ep);
        return;
    }
    fprintf(out, "  %-6s", "epoch");
    for (int k = 0; k < n; k++)
        if (strcmp(names[k], "epoch") != 0)
            fprintf(out, " %13.13s", names[k]);
    fprintf(out, "\n");
    double *col[48];
    hsize_t len[48];
    for (int k = 0; k < n; k++) {
        char p[80];
        snprintf(p, sizeof p, "epoch/%.63s", names[k]);
        col[k] = series(f, p, &len[k]);
    }
    for (hsize_t i = 0; i < rows; i++) {
        fprintf(out, "  %-6.0f", ep[i] + 1);
        for (int k = 0; k < n; k++)
            if (strcmp(names[k], "epoch") != 0)
                fprintf(out, " %13.6g", i < len[k] ? col[k][i] : NAN);
        fprintf(out, "\n");
    }
    for (int k = 0; k < n; k++)
        free(col[k]);
    free(ep);
}

int mf_h5_describe(const char *path, FILE *out)
{
    mf_h5_lock();
    hid_t f = mf_h5_open_read(path);
    if (f < 0) {
        char err[256];
        mf_fail(MF_STATUS_HDF5, "cannot open %s: %s", path, mf_h5_error(err, sizeof err));
        mf_h5_unlock();
        return 1;
    }
    char *fmt = str_attr(f, "format");
    walk w = {0, 0, 0, out};
    if (fmt && strcmp(fmt, "mpifit-checkpoint") == 0) {
        char *ver = str_attr(f, "mpifit_version"), *cfg = str_attr(f, "config");
        fprintf(out, "%s: mpifit checkpoint (written by mpifit %s, %s)\n", path, ver ? ver : "?",
                int_attr(f, "complete") == 1 ? "complete" : "INCOMPLETE");
        fprintf(out,
                "position: %lld epochs done, %lld steps into the next; global step %lld; data epoch %lld, step %lld\n",
                int_attr(f, "epoch"), int_attr(f, "step_in_epoch"), int_attr(f, "global_step"),
                int_attr(f, "data_epoch"), int_attr(f, "data_step"));
        fprintf(out, "world size: %lld ranks; seed %lld\n", int_attr(f, "world_size"), int_attr(f, "seed"));
        print_model(f, path, out);
        hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        char *kind = g >= 0 ? str_attr(g, "kind") : NULL;
        fprintf(out, "optimizer: %s, %lld iterations\n", kind ? kind : "?", g >= 0 ? int_attr(g, "iterations") : -1);
        mf_free(kind);
        if (g >= 0)
            H5Gclose(g);
        H5Ovisit_by_name(f, "model_weights", H5_INDEX_NAME, H5_ITER_INC, visit, &w, H5P_DEFAULT);
        fprintf(out, "weights: %d tensors, %zu values (/model_weights, Keras layout)\n", w.n, w.values);
        if (H5Lexists(f, "history", H5P_DEFAULT) > 0) {
            hid_t d = H5Dopen2(f, "history", H5P_DEFAULT), sp = H5Dget_space(d);
            hsize_t dims[2] = {0, 0};
            H5Sget_simple_extent_dims(sp, dims, NULL);
            fprintf(out, "history: %llu epochs of %llu metrics\n", (unsigned long long)dims[0],
                    (unsigned long long)dims[1]);
            H5Sclose(sp);
            H5Dclose(d);
        }
        fprintf(out, "config:\n%s%s", cfg ? cfg : "(none)\n",
                cfg && cfg[0] && cfg[strlen(cfg) - 1] != '\n' ? "\n" : "");
        mf_free(ver);
        mf_free(cfg);
    } else if (fmt && strcmp(fmt, "mpifit-metrics") == 0) {
        char *ver = str_attr(f, "mpifit_version");
        fprintf(out, "%s: mpifit metrics (mpifit %s), %lld rank%s\n", path, ver ? ver : "?", int_attr(f, "world_size"),
                int_attr(f, "world_size") == 1 ? "" : "s");
        mf_free(ver);
        print_epochs(f, out);
        hsize_t n = 0;
        double *gs = series(f, "step/global_step", &n), *loss = NULL;
        hsize_t nl = 0;
        loss = series(f, "step/loss", &nl);
        fprintf(out, "steps: %llu", (unsigned long long)n);
        if (n && nl == n)
            fprintf(out, " (last: global step %.0f, loss %.6g)", gs[n - 1], loss[n - 1]);
        fprintf(out, "\n");
        free(gs);
        free(loss);
    } else {
        w.print = 1;
        fprintf(out, "%s: HDF5 file (Keras-layout weights?), datasets:\n", path);
        print_model(f, path, out);
        H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, visit, &w);
        fprintf(out, "%d datasets, %zu values\n", w.n, w.values);
    }
    mf_free(fmt);
    H5Fclose(f);
    mf_h5_unlock();
    return 0;
}

/* The epoch numbers (*ep) and the loss, val_loss, accuracy, val_accuracy
 * columns (NULL where missing) of a metrics file; *rows 0 when it has none. */
int mf_metrics_read_curves(const char *in, double **ep, double *cols[4], size_t *rows)
{
    mf_h5_lock();
    hid_t f = mf_h5_open_read(in);
    if (f < 0) {
        mf_h5_unlock();
        mf_fail(MF_STATUS_HDF5, "cannot open %s", in);
        return 1;
    }
    hsize_t n = 0;
    *ep = series(f, "epoch/epoch", &n);
    *rows = (size_t)n;
    const char *want[] = {"loss", "val_loss", "accuracy", "val_accuracy"};
    for (int k = 0; k < 4; k++) {
        char p[80];
        hsize_t r = 0;
        snprintf(p, sizeof p, "epoch/%s", want[k]);
        cols[k] = n ? series(f, p, &r) : NULL;
        if (cols[k] && r != n) {
            free(cols[k]);
            cols[k] = NULL;
        }
    }
    H5Fclose(f);
    mf_h5_unlock();
    return 0;
}
