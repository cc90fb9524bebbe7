/* os.c: what mpifit needs from the operating system, once: a monotonic clock
 * and `mkdir -p`. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "core.h"

double mf_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

mf_status mf_mkdir_p(const char *path)
{
    char buf[4096];
    if (!mf_strlcpy(buf, path, sizeof buf))
        return mf_fail(MF_STATUS_INVALID, "path too long: '%.64s...'", path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char keep = buf[i];
        buf[i] = '\0';
        /* a file in the way of an inner component makes the next mkdir
         * fail with ENOTDIR, which names the path */
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mf_fail(MF_STATUS_IO, "cannot create directory %s: %s", buf, strerror(errno));
        buf[i] = keep;
    }
    struct stat st;  /* EEXIST also covers a regular file of that name */
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return mf_fail(MF_STATUS_IO, "cannot create directory %s: a file of that name is in the way", buf);
    return MF_STATUS_OK;
}
