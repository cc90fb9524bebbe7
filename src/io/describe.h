/* describe.h: reading mpifit's HDF5 files for people (the inspect and plot
 * commands). */
#ifndef MF_DESCRIBE_H
#define MF_DESCRIBE_H
#include <stddef.h>
#include <stdio.h>

/* What path holds, written to out: a checkpoint (position, optimizer,
 * weights, history, config), a metrics file (the per-epoch table, the step
 * count) or any other HDF5 file (every dataset and its shape). 0, or 1 with
 * mf_last_error() set when the file cannot be opened. */
int mf_h5_describe(const char *path, FILE *out);

/* A metrics file's epoch numbers (*ep, *rows of them; 0 rows: none yet) and
 * its loss, val_loss, accuracy, val_accuracy columns (NULL where missing);
 * free() each. 0, or 1 with mf_last_error() set. */
int mf_metrics_read_curves(const char *in, double **ep, double *cols[4], size_t *rows);
#endif
