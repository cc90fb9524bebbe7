/* main.c: the `mpifit` command: dispatch to a subcommand. */
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
    {"selfcheck", "check the build: BLAS, MPI, HDF5, TurboJPEG and a gradient check of a small model",
     mf_cmd_selfcheck},
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
