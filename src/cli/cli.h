/* cli.h: the mpifit command's subcommands. Each returns the process exit status. */
#ifndef MF_CLI_H
#define MF_CLI_H
int mf_cmd_selfcheck(int argc, char **argv);
int mf_cmd_make_dataset(int argc, char **argv);
#endif
