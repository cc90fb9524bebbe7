/* progress.c: Keras' progress output.
 *
 * verbose 1 on a terminal: the bar, redrawn in place,
 *   12/33 [=======>......................] - ETA: 4s - loss: 0.8123 - accuracy: 0.6120
 * and at the end of the epoch
 *   33/33 [==============================] - 5s 150ms/step - 213.4 img/s - loss: ... - val_accuracy: ...
 * verbose 1 elsewhere (a Slurm log): no control characters, a plain line every
 * `every` steps and the epoch line. verbose 2: only the epoch line. */
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fit_internal.h"

static void print_logs(FILE *f, const mf_logs *logs)
{
    for (int i = 0; logs && i < logs->n; i++)
        fprintf(f, " - %s: %.4f", logs->name[i], logs->value[i]);
}

static void print_duration(FILE *f, double s)
{
    if (s >= 3600)
        fprintf(f, "%d:%02d:%02d", (int)s / 3600, ((int)s % 3600) / 60, (int)s % 60);
    else if (s >= 60)
        fprintf(f, "%d:%02d", (int)s / 60, (int)s % 60);
    else
        fprintf(f, "%ds", (int)s);
}

void mf_progress_begin(mf_progress *p, FILE *f, int verbose, int every, int total, int epoch, int epochs)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->verbose = verbose;
    p->tty = isatty(fileno(f));
    p->total = total;
    p->every = every > 0 ? every : (total >= 10 ? total / 10 : 1);
    p->t0 = mf_now();
    if (verbose > 0) {
        fprintf(f, "Epoch %d/%d\n", epoch + 1, epochs);
        fflush(f);
    }
}

static void bar(mf_progress *p, int done)
{
    int width = 30, filled = p->total > 0 ? (int)(width * (double)done / p->total) : width;
    int digits = snprintf(NULL, 0, "%d", p->total);
    fprintf(p->f, "%*d/%d [", digits, done, p->total);
    for (int i = 0; i < width; i++)
        fputc(i < filled - 1 ? '=' : i == filled - 1 ? (done < p->total ? '>' : '=') : '.', p->f);
    fputc(']', p->f);
}

void mf_progress_step(mf_progress *p, int done, const mf_logs *logs)
{
    if (p->verbose != 1)
        return;
    double now = mf_now(), el = now - p->t0;
    double eta = done > 0 ? el / done * (p->total - done) : 0.0;
    if (p->tty) {
        /* redraw at most ~20 times a second: printing is not free */
        if (done < p->total && now - p->last_draw < 0.05)
            return;
        p->last_draw = now;
        fputc('\r', p->f);
        bar(p, done);
        fprintf(p->f, " - ETA: ");
        print_duration(p->f, eta);
        print_logs(p->f, logs);
        fprintf(p->f, "\033[K"); /* clear what a longer previous line left */
        fflush(p->f);
        p->drawn = 1;
    } else if (done % p->every == 0 && done < p->total) {
        fprintf(p->f, "%d/%d - ETA: ", done, p->total);
        print_duration(p->f, eta);
        print_logs(p->f, logs);
        fputc('\n', p->f);
        fflush(p->f);
    }
}

void mf_progress_end(mf_progress *p, int done, const mf_logs *logs, double images_per_s)
{
    if (p->verbose == 0)
        return;
    double el = mf_now() - p->t0;
    if (p->tty && p->verbose == 1) {
        fputc('\r', p->f);
        bar(p, done);
        fputc(' ', p->f);
    } else {
        fprintf(p->f, "%d/%d ", done, p->total);
    }
    fprintf(p->f, "- ");
    print_duration(p->f, el);
    double per = done > 0 ? el / done : 0.0;
    if (per >= 1.0)
        fprintf(p->f, " %.0fs/step", per);
    else
        fprintf(p->f, " %.0fms/step", per * 1e3);
    fprintf(p->f, " - %.1f img/s", images_per_s);
    print_logs(p->f, logs);
    if (p->tty && p->verbose == 1)
        fprintf(p->f, "\033[K");
    fputc('\n', p->f);
    fflush(p->f);
}
