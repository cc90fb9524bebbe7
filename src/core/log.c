/* log.c: rank-aware logging. Only rank 0 speaks for the job (the rank-0 rule);
 * warnings and errors come from every rank, prefixed with it, so a Slurm log
 * says which rank saw what. */
#include <stdio.h>
#include "core.h"

static int log_rank = 0;
static int log_world = 1;

void mf_log_set_rank(int rank, int world)
{
    log_rank = rank;
    log_world = world;
}
int mf_log_rank(void) { return log_rank; }
int mf_log_world(void) { return log_world; }

/* One line per message, whole: the stream is locked for the line, so the
 * loader's threads reporting at the same moment never interleave. */
static void vlog(FILE *f, const char *tag, const char *fmt, va_list ap)
{
    flockfile(f);
    if (log_world > 1)
        fprintf(f, "[mpifit rank %d/%d] ", log_rank, log_world);
    if (tag)
        fputs(tag, f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
    funlockfile(f);
}

void mf_log_info(const char *fmt, ...)
{
    if (log_rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(stdout, NULL, fmt, ap);
    va_end(ap);
}

void mf_log_all(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(stdout, NULL, fmt, ap);
    va_end(ap);
}

void mf_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(stderr, "warning: ", fmt, ap);
    va_end(ap);
}

void mf_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(stderr, "error: ", fmt, ap);
    va_end(ap);
}
