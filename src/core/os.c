/* os.c: what mpifit needs from the operating system, once: a monotonic clock,
 * `mkdir -p` and writing a whole file through a temporary. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
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
    struct stat st; /* EEXIST also covers a regular file of that name */
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return mf_fail(MF_STATUS_IO, "cannot create directory %s: a file of that name is in the way", buf);
    return MF_STATUS_OK;
}

mf_status mf_write_file(const char *path, const uint8_t *buf, size_t len)
{
    char tmp[4096 + 8];
    if (strlen(path) >= 4096)
        return mf_fail(MF_STATUS_INVALID, "path too long: '%.64s...'", path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp); /* a fresh file: no symlink followed, no leftover reused */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return mf_fail(MF_STATUS_IO, "cannot create '%s': %s", tmp, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return mf_fail(MF_STATUS_IO, "short write to '%s' (%zu of %zu bytes): %s", tmp, done, len, strerror(e));
        }
        done += (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return mf_fail(MF_STATUS_IO, "cannot write '%s': %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mf_fail(MF_STATUS_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    return MF_STATUS_OK;
}

int mf_fault_hit(const char *point)
{
    const char *spec = getenv("MF_FAULT_INJECT");
    size_t len = strlen(point);
    if (!spec || strncmp(spec, point, len) != 0 || spec[len] != ':')
        return 0;
    long n = 0, rank = -1;
    if (sscanf(spec + len + 1, "%ld:%ld", &n, &rank) < 1 || (rank >= 0 && rank != mf_log_rank()))
        return 0;
    static long passes; /* one spec per process: one counter */
    return ++passes == n;
}
