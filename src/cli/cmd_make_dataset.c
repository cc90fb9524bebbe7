/* cmd_make_dataset.c: `mpifit make-dataset synthetic-beans OUT [options]`:
 * write a class-folder tree of JPEGs that `mpifit train` (and Keras'
 * image_dataset_from_directory) can read, so a quickstart needs no download.
 * A plain single-process command: no MPI, threads for speed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mpifit.h"
#include "cli.h"
#include "core/core.h"
#include "synth/synthetic.h"

#define ME "mpifit make-dataset"

static const char *const kinds[] = {"synthetic-beans"};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " ME " synthetic-beans OUT [--train N] [--validation N] [--test N]\n"
            "           [--size PX] [--quality Q] [--seed S] [--threads T]\n"
            "\n"
            "Writes OUT/train/<class>/<class>_NNNN.jpg and the same under OUT/validation\n"
            "(and OUT/test with --test), for the beans classes angular_leaf_spot,\n"
            "bean_rust and healthy, in equal shares (image i of a split has class i %% 3).\n"
            "\n"
            "Each image is a photo-like drawing of one bean leaflet: ovate with a pointed\n"
            "tip, 55-85%% of the frame, any rotation, varied green with pale midrib and\n"
            "lateral veins, over soil, a dark gap or out-of-focus foliage, with a cast\n"
            "shadow, uneven lighting, a colour cast, slight blur and sensor noise.\n"
            "  angular_leaf_spot  angular brown lesions bounded by the small veins,\n"
            "                     some with a yellow margin\n"
            "  bean_rust          many small round orange to rust-brown pustules, each in\n"
            "                     a pale yellow halo\n"
            "  healthy            a clean leaf\n"
            "Any class may show a few tiny blemishes and some yellow mottling. The tree\n"
            "is a function of the options alone: byte-identical for any --threads, and a\n"
            "larger --train reproduces a smaller run's files. OUT may exist.\n"
            "\n"
            "options:\n"
            "  --train N        images in train/ (default 300)\n"
            "  --validation N   images in validation/ (default 60)\n"
            "  --test N         images in test/; 0 writes no test/ (default 0)\n"
            "  --size PX        square side in pixels, %d..%d (default 500, as beans)\n"
            "  --quality Q      JPEG quality 1..100 (default 90)\n"
            "  --seed S         random seed, 0..2^64-1 (default 1)\n"
            "  --threads T      drawing threads (default: the number of online CPUs)\n",
            MF_SYNTH_MIN_SIZE, MF_SYNTH_MAX_SIZE);
}

/* A whole-string integer in [lo, hi]; `what` describes the valid values for
 * the message, e.g. "a positive integer". */
static int parse_int(const char *opt, const char *s, long lo, long hi, const char *what, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, ME ": %s must be %s, got '%s'\n", opt, what, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    /* strtoull accepts "-1" and wraps it: refuse any sign */
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    if (!(s[0] >= '0' && s[0] <= '9') || *end != '\0' || errno == ERANGE) {
        fprintf(stderr, ME ": --seed must be an integer in 0..18446744073709551615, got '%s'\n", s);
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 && n <= 1024 ? (int)n : 1;
}

/* The command line into opt, threads and the two positional arguments.
 * Returns -1 to go on, or the exit status (0 after --help, 2 on an error). */
static int parse_args(int argc, char **argv, mf_synth_options *opt, int *threads, const char *pos[2], int *n_pos)
{
    char size_what[64];
    snprintf(size_what, sizeof size_what, "an integer in %d..%d", MF_SYNTH_MIN_SIZE, MF_SYNTH_MAX_SIZE);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (*n_pos == 2) {
                fprintf(stderr, ME ": unexpected argument '%s' (try --help)\n", a);
                return 2;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        /* "--name value" or "--name=value" */
        char name[32];
        const char *val = NULL, *eq = strchr(a, '=');
        if (eq) {
            size_t len = (size_t)(eq - a) < sizeof name - 1 ? (size_t)(eq - a) : sizeof name - 1;
            memcpy(name, a, len);
            name[len] = '\0';
            val = eq + 1;
        } else {
            mf_strlcpy(name, a, sizeof name);
        }
        static const char *const known[] = {"--train",   "--validation", "--test",   "--size",
                                            "--quality", "--seed",       "--threads"};
        int k = -1;
        for (int j = 0; j < (int)(sizeof known / sizeof known[0]); j++)
            if (strcmp(name, known[j]) == 0)
                k = j;
        if (k < 0) {
            fprintf(stderr, ME ": unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, ME ": %s needs a value (try --help)\n", name);
                return 2;
            }
            val = argv[++i];
        }
        int ok = 0;
        switch (k) {
        case 0: ok = parse_int(name, val, 1, 100000000, "a positive integer", &opt->n_train); break;
        case 1: ok = parse_int(name, val, 1, 100000000, "a positive integer", &opt->n_validation); break;
        case 2: ok = parse_int(name, val, 0, 100000000, "a non-negative integer", &opt->n_test); break;
        case 3: ok = parse_int(name, val, MF_SYNTH_MIN_SIZE, MF_SYNTH_MAX_SIZE, size_what, &opt->size); break;
        case 4: ok = parse_int(name, val, 1, 100, "an integer in 1..100", &opt->quality); break;
        case 5: ok = parse_seed(val, &opt->seed); break;
        case 6: ok = parse_int(name, val, 1, 1024, "an integer in 1..1024", threads); break;
        }
        if (!ok)
            return 2;
    }
    if (*n_pos < 2) {
        fprintf(stderr, ME ": %s\n\n", *n_pos == 0 ? "missing the dataset kind and OUT" : "missing OUT");
        usage(stderr);
        return 2;
    }
    return -1;
}

/* The index of a dataset kind's name, or -1 after saying which kinds exist. */
static int find_kind(const char *name)
{
    for (int j = 0; j < N_KINDS; j++)
        if (strcmp(name, kinds[j]) == 0)
            return j;
    fprintf(stderr, ME ": unknown dataset kind '%s'; valid kinds:", name);
    for (int j = 0; j < N_KINDS; j++)
        fprintf(stderr, " %s", kinds[j]);
    fprintf(stderr, "\n");
    return -1;
}

int mf_cmd_make_dataset(int argc, char **argv)
{
    mf_synth_options opt = {.n_train = 300, .n_validation = 60, .n_test = 0, .size = 500, .quality = 90, .seed = 1};
    int threads = online_cpus();
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    int rc = parse_args(argc, argv, &opt, &threads, pos, &n_pos);
    if (rc >= 0)
        return rc;
    int kind = find_kind(pos[0]);
    if (kind < 0)
        return 2;

    const char *out = pos[1];
    double t0 = mf_now();
    if (mf_synth_write_dataset(out, &opt, threads) != MF_STATUS_OK) {
        fprintf(stderr, ME ": %s\n", mf_last_error());
        return 1;
    }
    double secs = mf_now() - t0;
    int total = opt.n_train + opt.n_validation + opt.n_test;
    char test_part[48] = "";
    if (opt.n_test > 0)
        snprintf(test_part, sizeof test_part, ", %d test", opt.n_test);
    printf("make-dataset: %s: %d train, %d validation%s images of %dx%d px in %s, %.2f s, %.1f images/s "
           "(%d thread%s)\n",
           kinds[kind], opt.n_train, opt.n_validation, test_part, opt.size, opt.size, out, secs,
           secs > 0.0 ? (double)total / secs : 0.0, threads, threads == 1 ? "" : "s");
    return 0;
}
