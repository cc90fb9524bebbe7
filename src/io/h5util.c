/* h5util.c: the process-wide HDF5 lock and error text. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "h5util.h"
#include "../core/core.h"

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

mf_status mf_commit_file(const char *tmp, const char *path, mf_status s)
{
    if (s == MF_STATUS_OK) {
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0)
            s = mf_fail(MF_STATUS_IO, "fsync %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (s == MF_STATUS_OK && rename(tmp, path) != 0)
        s = mf_fail(MF_STATUS_IO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    if (s != MF_STATUS_OK) {
        unlink(tmp);
        return s;
    }
    /* the directory entry: fsync the directory that holds path */
    char dir[4096];
    mf_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        mf_strlcpy(dir, ".", sizeof dir);
    int dfd = open(slash && !dir[0] ? "/" : dir, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return MF_STATUS_OK;
}
