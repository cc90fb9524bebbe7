/* h5util.c: the process-wide HDF5 lock and error text. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "h5util.h"

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void mf_h5_lock(void)
{
    pthread_mutex_lock(&h5_mutex);
    pthread_once(&h5_once, h5_quiet);
}

void mf_h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

typedef struct walk_ctx { char *buf; size_t n; } walk_ctx;

static herr_t last_desc(unsigned n, const H5E_error2_t *e, void *data)
{
    walk_ctx *w = data;
    (void)n;
    if (e->desc && e->desc[0])
        snprintf(w->buf, w->n, "%s", e->desc);
    return 0;
}

const char *mf_h5_error(char *buf, size_t n)
{
    walk_ctx w = {buf, n};
    if (n)
        buf[0] = '\0';
    /* walking downward from the API call, the innermost (most specific) error comes last */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, last_desc, &w);
    return buf;
}
