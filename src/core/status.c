/* status.c: the thread-local last-error message and the panic path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

static _Thread_local char last_error[1024];
static mf_abort_fn abort_handler;

const char *mf_last_error(void) { return last_error; }
void mf_clear_error(void) { last_error[0] = '\0'; }

const char *mf_status_name(mf_status s)
{
    switch (s) {
    case MF_STATUS_OK: return "ok";
    case MF_STATUS_INVALID: return "invalid argument";
    case MF_STATUS_CONFIG: return "config";
    case MF_STATUS_IO: return "i/o";
    case MF_STATUS_DATA: return "data";
    case MF_STATUS_SHAPE: return "shape";
    case MF_STATUS_NOMEM: return "out of memory";
    case MF_STATUS_MPI: return "mpi";
    case MF_STATUS_HDF5: return "hdf5";
    case MF_STATUS_NUMERIC: return "numeric";
    case MF_STATUS_PREEMPTED: return "preempted";
    }
    return "unknown";
}

/* Formats into a copy first: callers may pass mf_last_error() itself as an
 * argument ("%s: %s", path, mf_last_error()), and vsnprintf into the buffer
 * it reads from would be undefined behaviour. */
mf_status mf_fail(mf_status s, const char *fmt, ...)
{
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
    return s;
}

void mf_set_abort_handler(mf_abort_fn fn) { abort_handler = fn; }

void mf_panic(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[mpifit rank %d/%d] %s:%d: %s\n", mf_log_rank(), mf_log_world(), file, line, msg);
    fflush(stderr);
    if (abort_handler)
        abort_handler(134); /* 128 + SIGABRT, what a plain abort() would give */
    abort();
}

int mf_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n == 0)
        return 0;
    if (len >= n) {
        memcpy(dst, src, n - 1);
        dst[n - 1] = '\0';
        return 0;
    }
    memcpy(dst, src, len + 1);
    return 1;
}
