/* main.c: the `mpifit` command: dispatch to a subcommand. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "mpifit.h"
#include "cli.h"

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"train", "train a model as a config file says (mpirun/srun for several ranks)", mf_cmd_train},
    {"summary", "print the configured model layer by layer, with parameter counts", mf_cmd_summary},
    {"evaluate", "evaluate weights on a dataset; ends with a machine-readable line", mf_cmd_evaluate},
    {"predict", "classify JPEG images with trained weights", mf_cmd_predict},
    {"inspect", "show what a checkpoint, metrics or weights file holds", mf_cmd_inspect},
    {"export", "write a checkpoint's weights (or, --full, model and weights) as a Keras .h5", mf_cmd_export},
    {"plot", "draw loss and accuracy curves of a metrics file (gnuplot)", mf_cmd_plot},
    {"selfcheck", "check the build: BLAS, MPI, HDF5, TurboJPEG and a gradient check of a small model",
     mf_cmd_selfcheck},
    {"pack", "store a class-folder tree of JPEGs in one HDF5 file", mf_cmd_pack},
    {"bench", "measure training speed on synthetic in-memory batches (or --gemm: the sgemm peak)", mf_cmd_bench},
    {"bench-data", "measure the input pipeline's images/s (folder and packed, 1 and N threads)", mf_cmd_bench_data},
    {"make-dataset", "write the synthetic beans-like leaf dataset as a class-folder tree of JPEGs",
     mf_cmd_make_dataset},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpifit [--version] [--help] COMMAND [ARGS...]\n"
            "\n"
            "mpifit trains convolutional networks data-parallel over MPI, the way Keras'\n"
            "Model.fit does with a custom train_step. Run it under mpirun or srun for\n"
            "several ranks.\n"
            "\n"
            "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`mpifit COMMAND --help` describes one command.\n");
}

int main(int argc, char **argv)
{
    /* a file-size limit (quota) must fail a write with EFBIG and an error
     * message, not kill the process mid-checkpoint */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("mpifit %s\n%s\n", mf_version(), mf_build_info());
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mpifit: unknown command '%s'; valid commands:", argv[1]);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(stderr, " %s", commands[i].name);
    fprintf(stderr, "\n");
    return 2;
}
