/* cmd_bench_data.c: `mpifit bench-data CONFIG`: how many images per second the
 * input pipeline decodes, augments and preprocesses, with 1 and N threads, from
 * the class folders and from the same images packed into one HDF5 file. The
 * figure to beat: several times what training consumes, so data never sits on
 * the critical path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include "mpifit.h"
#include "cli.h"
#include "config.h"
#include "core/core.h"
#include "data/sources.h"

/* Evict the dataset's files from the page cache (posix_fadvise DONTNEED needs
 * no privileges), so a run reads from the disk as a first epoch on a cluster
 * file system would. */
static void evict(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

static void drop_cache(const mf_dataset *ds)
{
    if (ds->src->kind == MF_DS_PACKED) {
        evict(ds->path);
        return;
    }
    for (int i = 0; i < mf_dataset_size(ds); i++)
        evict(mf_dataset_source(ds, i));
}

/* Images/s over `images` images (whole batches), after one warm-up batch. */
static mf_status measure(mf_dataset *ds, const mf_config *c, int threads, int images, int cold, double *rate)
{
    if (cold)
        drop_cache(ds);
    mf_loader_options o = mf_loader_options_default();
    o.batch_size = c->data.batch_size;
    o.input_size = c->model.input_size;
    o.augment = c->data.augment;
    o.crop_scale_min = c->data.crop_scale_min;
    o.flip = c->data.flip;
    o.threads = threads;
    o.prefetch = threads + 2;
    o.seed = (uint64_t)c->train.seed;
    mf_loader *l;
    MF_TRY(mf_loader_create(&l, ds, &o));
    mf_status s = MF_STATUS_OK;
    const mf_batch *b;
    int done = 0, epoch = 0;
    double t0 = 0.0;
    while (s == MF_STATUS_OK && done < images) {
        s = mf_loader_begin_epoch(l, epoch++);
        for (int k = 0; s == MF_STATUS_OK && k < mf_loader_steps(l) && done < images; k++) {
            s = mf_loader_next(l, &b);
            if (s != MF_STATUS_OK)
                break;
            if (t0 == 0.0)
                t0 = mf_now(); /* after the first batch: threads started, caches warm */
            else
                done += b->n;
        }
    }
    double dt = mf_now() - t0;
    mf_loader_free(l);
    *rate = done / dt;
    return s;
}

int mf_cmd_bench_data(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f,
                "usage: mpifit bench-data CONFIG [--set section.key=value ...] [--images N] [--cold]\n\n"
                "Decode + augment + preprocess throughput of [data] train at [model] input_size,\n"
                "with 1 thread and with all cores, from the folder and from a packed copy.\n"
                "Each figure is the median of 3 runs over N images (default 384). --cold evicts\n"
                "the files from the page cache before every run, to see the file system too.\n");
        return argc < 2 ? 2 : 0;
    }
    mf_config c;
    mf_config_defaults(&c);
    mf_status s = mf_config_load(&c, argv[1]);
    int images = 384, cold = 0;
    for (int i = 2; s == MF_STATUS_OK && i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            s = mf_config_set(&c, argv[++i]);
        } else if (strcmp(argv[i], "--cold") == 0) {
            cold = 1;
        } else if (strcmp(argv[i], "--images") == 0 && i + 1 < argc) {
            images = atoi(argv[++i]);
            if (images <= 0)
                s = mf_fail(MF_STATUS_INVALID, "--images must be a positive integer, got '%s'", argv[i]);
        } else {
            s = mf_fail(MF_STATUS_INVALID, "unknown argument '%s' (try --help)", argv[i]);
        }
    }
    if (s == MF_STATUS_OK)
        s = mf_config_validate(&c);
    mf_dataset *folder = NULL, *packed = NULL;
    mf_dataset_options dopt = mf_dataset_options_default();
    char tmp[64] = "";
    if (s == MF_STATUS_OK)
        s = mf_dataset_open(&folder, c.data.train, &dopt);
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    double r[2][2] = {{0, 0}, {0, 0}};
    if (s == MF_STATUS_OK) {
        int n = mf_dataset_size(folder);
        printf("bench-data: %s: %d images, %d classes; input %d px, batch %d, augment %s%s\n", c.data.train, n,
               mf_dataset_num_classes(folder), c.model.input_size, c.data.batch_size, c.data.augment ? "on" : "off",
               cold ? ", cold page cache" : "");
        if (folder->src->kind == MF_DS_DIR) {
            /* the same images, packed into a scratch file */
            snprintf(tmp, sizeof tmp, "/tmp/mpifit-bench-%d.h5", (int)getpid());
            mf_pack_split sp = {"train", folder};
            s = mf_packed_write(tmp, &sp, 1);
            if (s == MF_STATUS_OK)
                s = mf_dataset_open(&packed, tmp, &dopt);
        }
    }
    int tcount[2] = {1, cores};
    for (int src = 0; s == MF_STATUS_OK && src < 2; src++) {
        mf_dataset *ds = src == 0 ? folder : packed;
        if (!ds)
            continue;
        for (int t = 0; s == MF_STATUS_OK && t < 2; t++) {
            /* the median of three runs: the machine may be shared and noisy */
            double rep[3];
            for (int k = 0; s == MF_STATUS_OK && k < 3; k++)
                s = measure(ds, &c, tcount[t], images, cold, &rep[k]);
            double lo = rep[0] < rep[1] ? rep[0] : rep[1], hi = rep[0] < rep[1] ? rep[1] : rep[0];
            r[src][t] = rep[2] < lo ? lo : rep[2] > hi ? hi : rep[2];
            if (s == MF_STATUS_OK)
                printf("  %-6s %d thread%s: %8.1f images/s  (%.1f per core)\n", src == 0 ? "folder" : "packed",
                       tcount[t], tcount[t] == 1 ? " " : "s", r[src][t], r[src][t] / tcount[t]);
        }
    }
    if (s == MF_STATUS_OK && packed)
        printf("  packed/folder, %d threads: %.2fx\n", cores, r[1][1] / r[0][1]);
    if (s != MF_STATUS_OK)
        fprintf(stderr, "mpifit bench-data: %s\n", mf_last_error());
    mf_dataset_free(folder);
    mf_dataset_free(packed);
    if (tmp[0])
        unlink(tmp);
    mf_config_free(&c);
    return s == MF_STATUS_OK ? 0 : 1;
}
