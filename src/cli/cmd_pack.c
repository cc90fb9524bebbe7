/* cmd_pack.c: `mpifit pack DIR OUT.h5`: a class-folder tree (or a tree of
 * train/ validation/ test/ splits of class folders) into one packed HDF5 file. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "mpifit.h"
#include "cli.h"
#include "core/core.h"
#include "data/sources.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpifit pack DIR OUT.h5 [--split NAME]\n\n"
            "Store the JPEG files of a class-folder tree in one HDF5 file (bytes unchanged,\n"
            "plus labels, class names and split). Parallel file systems serve one large file\n"
            "far better than thousands of small ones. Training reads either form.\n\n"
            "If DIR holds train/, validation/ and/or test/ folders of class folders, each\n"
            "becomes a split of that name (their class lists must agree). Otherwise DIR's\n"
            "class folders become one split, named by --split (default: train).\n"
            "Use a split as [data] train = OUT.h5:train.\n");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int mf_cmd_pack(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *split = "train";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--split") == 0 && i + 1 < argc) {
            split = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "mpifit pack: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!dir) {
            dir = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            fprintf(stderr, "mpifit pack: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir || !out) {
        usage(stderr);
        return 2;
    }
    const char *names[] = {"train", "validation", "test"};
    mf_pack_split splits[3];
    int n = 0;
    mf_status s = MF_STATUS_OK;
    mf_dataset_options o = mf_dataset_options_default();
    char path[4096];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (!is_dir(path))
            continue;
        splits[n].name = names[k];
        s = mf_dataset_open(&splits[n].ds, path, &o);
        if (s != MF_STATUS_OK)
            break;
        n++;
    }
    if (s == MF_STATUS_OK && n == 0) {
        splits[0].name = split;
        s = mf_dataset_open(&splits[0].ds, dir, &o);
        if (s == MF_STATUS_OK)
            n = 1;
    }
    if (s == MF_STATUS_OK)
        s = mf_packed_write(out, splits, n);
    if (s == MF_STATUS_OK) {
        struct stat st;
        stat(out, &st);
        printf("packed %s -> %s (%.1f MiB):", dir, out, (double)st.st_size / (1024.0 * 1024.0));
        for (int k = 0; k < n; k++)
            printf(" %s %d", splits[k].name, mf_dataset_size(splits[k].ds));
        printf(" images, %d classes:", mf_dataset_num_classes(splits[0].ds));
        for (int c = 0; c < mf_dataset_num_classes(splits[0].ds); c++)
            printf(" %s", mf_dataset_class_name(splits[0].ds, c));
        printf("\n");
    } else {
        fprintf(stderr, "mpifit pack: %s\n", mf_last_error());
    }
    for (int k = 0; k < n; k++)
        mf_dataset_free(splits[k].ds);
    return s == MF_STATUS_OK ? 0 : 1;
}
