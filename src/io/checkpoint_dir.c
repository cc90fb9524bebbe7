/* checkpoint_dir.c: a directory of checkpoints and its retention policy:
 * the file names (ckpt-EEEE-SSSSSSS.h5, sorting by epoch then step), keeping
 * the newest K, best.h5 as a second name of the best one, and the leftovers of
 * writers that were killed. The files themselves: checkpoint_h5.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "mpifit/checkpoint.h"
#include "../core/core.h"

void mf_checkpoint_name(char *buf, size_t n, const char *dir, int epoch, long step)
{
    snprintf(buf, n, "%s/ckpt-%04d-%07ld.h5", dir, epoch, step);
}

/* A checkpoint's (epoch, step) from its name; 0 if the name is not ckpt-E-S.h5. */
static int parse_name(const char *name, long *epoch, long *step)
{
    char tail[4];
    return sscanf(name, "ckpt-%ld-%ld.%3s", epoch, step, tail) == 3 && strcmp(tail, "h5") == 0 && strlen(name) > 3 &&
        strcmp(name + strlen(name) - 3, ".h5") == 0;
}

/* by the numbers, not the text: epoch 10000 sorts after 9999 whatever the padding */
static int cmp_ckpt(const void *a, const void *b)
{
    long ea = 0, sa = 0, eb = 0, sb = 0;
    parse_name(*(char *const *)a, &ea, &sa);
    parse_name(*(char *const *)b, &eb, &sb);
    if (ea != eb)
        return ea < eb ? -1 : 1;
    return sa < sb ? -1 : sa > sb;
}

int mf_checkpoint_list(const char *dir, char ***names)
{
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long ep, st;
        if (parse_name(e->d_name, &ep, &st)) {
            v = mf_grow(v, n, &cap, 64, sizeof *v);
            v[n++] = mf_strdup(e->d_name);
        }
    }
    closedir(d);
    if (n > 1)
        qsort(v, (size_t)n, sizeof *v, cmp_ckpt); /* oldest first */
    for (int i = 0; i < n / 2; i++) { /* newest first */
        char *t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
    *names = v;
    return n;
}

void mf_checkpoint_list_free(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        mf_free(names[i]);
    mf_free(names);
}

void mf_checkpoint_prune(const char *dir, int keep)
{
    if (keep <= 0)
        return;
    char **names;
    int n = mf_checkpoint_list(dir, &names);
    for (int i = keep; i < n; i++) { /* newest first: all after the first keep */
        char p[4096 + 300];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    mf_checkpoint_list_free(names, n);
}

void mf_checkpoint_remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 7 && strcmp(e->d_name + len - 7, ".h5.tmp") == 0) {
            char p[4096 + 300];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            mf_log_info("removing %s, left by a writer that did not finish", p);
            unlink(p);
        }
    }
    closedir(d);
}

mf_status mf_output_lock(const char *dir, int *fd_out)
{
    char p[4096 + 16];
    snprintf(p, sizeof p, "%s/.lock", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0)
        return mf_fail(MF_STATUS_IO, "cannot open %s: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return mf_fail(MF_STATUS_IO,
                           "%s is in use by another run (%s is locked): two jobs writing one output directory "
                           "would prune each other's checkpoints; give this one its own [output] dir",
                           dir, p);
        return mf_fail(MF_STATUS_IO, "cannot lock %s: %s", p, strerror(e));
    }
    *fd_out = fd;
    return MF_STATUS_OK;
}

void mf_output_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the lock */
}

mf_status mf_checkpoint_mark_best(const char *dir, const char *checkpoint)
{
    char best[4096 + 32], tmp[4096 + 40];
    snprintf(best, sizeof best, "%s/best.h5", dir);
    snprintf(tmp, sizeof tmp, "%s/best.h5.tmp", dir);
    unlink(tmp);
    /* a second name for the file just written, swapped in atomically */
    if (link(checkpoint, tmp) != 0 || rename(tmp, best) != 0)
        return mf_fail(MF_STATUS_IO, "cannot update %s: %s", best, strerror(errno));
    return MF_STATUS_OK;
}
