/* dirset.c: a class-folder tree as a dataset, with Keras'
 * image_dataset_from_directory semantics: class names are the sorted names of
 * the sub-folders of the root (labels are their indices); each class folder is
 * walked recursively; *.jpg and *.jpeg in any letter case are images, in sorted
 * path order; anything else is ignored with one summary warning. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include "sources.h"

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static void names_push(name_list *l, const char *s)
{
    l->v = mf_grow(l->v, l->n, &l->cap, 32, sizeof *l->v);
    l->v[l->n++] = mf_strdup(s);
}

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        mf_free(l->v[i]);
    mf_free(l->v);
    memset(l, 0, sizeof *l);
}

/* Byte order, like Python's sorted(): locale-independent and the same on every rank. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* out = dir/name; MF_STATUS_IO if it does not fit (never a silently cut path). */
static mf_status join(char *out, size_t n, const char *dir, const char *name)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n)
        return mf_fail(MF_STATUS_IO, "path too long: %s/%s", dir, name);
    return MF_STATUS_OK;
}

static int is_jpeg_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

/* Entries of dir (not "." / "..", not hidden), split into sub-directories and
 * files, each sorted. Symbolic links are followed, as os.walk(followlinks=True). */
static mf_status list_dir(const char *dir, name_list *dirs, name_list *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return mf_fail(MF_STATUS_IO, "cannot open directory %s: %s", dir, strerror(errno));
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (join(path, sizeof path, dir, e->d_name) != MF_STATUS_OK) {
            closedir(d);
            return MF_STATUS_IO;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            /* a dangling link or a racing delete: an unreadable image, reported
             * by the loader when it tries to read it */
            if (files)
                names_push(files, e->d_name);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (dirs)
                names_push(dirs, e->d_name);
        } else if (files) {
            names_push(files, e->d_name);
        }
    }
    closedir(d);
    if (dirs && dirs->n > 1)
        qsort(dirs->v, (size_t)dirs->n, sizeof *dirs->v, cmp_str);
    if (files && files->n > 1)
        qsort(files->v, (size_t)files->n, sizeof *files->v, cmp_str);
    return MF_STATUS_OK;
}

typedef struct scan {
    mf_dataset *ds;
    int label;
    int images; /* in the current class */
    char first_ignored[4096];
} scan;

/* The directories on the way down (device, inode): a symbolic link back to
 * one of them is a loop, found at once instead of after 32 levels. */
typedef struct ancestors {
    dev_t dev[33];
    ino_t ino[33];
} ancestors;

static mf_status walk_class(scan *sc, const char *dir, int depth, ancestors *up)
{
    if (depth > 32)
        return mf_fail(MF_STATUS_IO, "%s: directories nested more than 32 deep", dir);
    struct stat st;
    if (stat(dir, &st) != 0)
        return mf_fail(MF_STATUS_IO, "%s: %s", dir, strerror(errno));
    for (int i = 0; i < depth; i++)
        if (up->dev[i] == st.st_dev && up->ino[i] == st.st_ino) {
            mf_log_warn("%s: a link back to a folder above it (a loop): its images are counted once, not again", dir);
            return MF_STATUS_OK;
        }
    up->dev[depth] = st.st_dev;
    up->ino[depth] = st.st_ino;
    name_list dirs = {0}, files = {0};
    MF_TRY(list_dir(dir, &dirs, &files));
    char path[4096];
    mf_status s = MF_STATUS_OK;
    for (int i = 0; i < files.n && s == MF_STATUS_OK; i++) {
        s = join(path, sizeof path, dir, files.v[i]);
        if (s != MF_STATUS_OK)
            break;
        if (is_jpeg_name(files.v[i])) {
            mf_ds_push(sc->ds, sc->label, path, 0, 0);
            sc->images++;
        } else {
            if (sc->ds->n_ignored++ == 0)
                mf_strlcpy(sc->first_ignored, path, sizeof sc->first_ignored);
        }
    }
    for (int i = 0; i < dirs.n && s == MF_STATUS_OK; i++) {
        s = join(path, sizeof path, dir, dirs.v[i]);
        if (s == MF_STATUS_OK)
            s = walk_class(sc, path, depth + 1, up);
    }
    names_free(&dirs);
    names_free(&files);
    return s;
}

/* A class-folder image: the whole file, with the reason if it cannot be read.
 * Opened non-blocking and checked to be a regular file first, so a FIFO or a
 * device named x.jpg is refused instead of hanging the loader. */
static mf_status read_file(const char *path, size_t max, uint8_t **buf, size_t *cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return mf_fail(MF_STATUS_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mf_fail(MF_STATUS_IO, "not a regular file");
    }
    if ((uint64_t)st.st_size > max) { /* checked before anything is allocated */
        close(fd);
        return mf_fail(MF_STATUS_IO, "%lld bytes, more than the limit of %zu ([data] max_image_mb)",
                       (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size, got = 0;
    mf_ds_grow(buf, cap, n ? n : 1);
    while (got < n) {
        ssize_t r = read(fd, *buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            mf_status s = mf_fail(MF_STATUS_IO, "read %zu of %zu bytes: %s", got, n,
                                  r < 0 ? strerror(errno) : "file shrank while reading");
            close(fd);
            return s;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = n;
    return MF_STATUS_OK;
}

static mf_status dir_read(const mf_dataset *ds, int i, uint8_t **buf, size_t *cap, size_t *len)
{
    return read_file(ds->items[i].source, ds->max_bytes, buf, cap, len);
}

const mf_ds_source mf_dirset_source = {MF_DS_DIR, dir_read, NULL};

mf_status mf_dirset_open(mf_dataset *ds, const mf_dataset_options *opt)
{
    name_list classes = {0}, top_files = {0};
    MF_TRY(list_dir(ds->path, &classes, &top_files));
    mf_status s = MF_STATUS_OK;
    if (classes.n == 0) {
        s = mf_fail(MF_STATUS_DATA,
                    "%s has no class folders: expected one sub-folder of .jpg images per class "
                    "(e.g. %s/healthy/*.jpg)%s",
                    ds->path, ds->path, top_files.n ? " and found only loose files" : "");
        goto done;
    }
    ds->n_classes = classes.n;
    ds->class_names = mf_alloc((size_t)classes.n * sizeof *ds->class_names);
    for (int c = 0; c < classes.n; c++)
        ds->class_names[c] = mf_strdup(classes.v[c]);
    scan sc;
    memset(&sc, 0, sizeof sc);
    sc.ds = ds;
    ds->n_ignored = top_files.n; /* files beside the class folders belong to no class */
    if (top_files.n && join(sc.first_ignored, sizeof sc.first_ignored, ds->path, top_files.v[0]) != MF_STATUS_OK)
        sc.first_ignored[0] = '\0';
    char path[4096];
    for (int c = 0; c < classes.n && s == MF_STATUS_OK; c++) {
        sc.label = c;
        sc.images = 0;
        s = join(path, sizeof path, ds->path, classes.v[c]);
        ancestors up;
        if (s == MF_STATUS_OK)
            s = walk_class(&sc, path, 0, &up);
        if (s == MF_STATUS_OK && sc.images == 0)
            s = mf_fail(MF_STATUS_DATA, "class folder %s has no .jpg/.jpeg images (every class needs at least one)",
                        path);
    }
    if (s == MF_STATUS_OK && ds->n_ignored && !opt->quiet)
        mf_log_warn("%s: ignored %d file%s that %s not .jpg/.jpeg (first: %s)", ds->path, ds->n_ignored,
                    ds->n_ignored == 1 ? "" : "s", ds->n_ignored == 1 ? "is" : "are", sc.first_ignored);
done:
    names_free(&classes);
    names_free(&top_files);
    return s;
}
