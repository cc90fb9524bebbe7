/* cli.h: the mpifit command's subcommands. Each returns the process exit status. */
#ifndef MF_CLI_H
#define MF_CLI_H
int mf_cmd_selfcheck(int argc, char **argv);
int mf_cmd_make_dataset(int argc, char **argv);
int mf_cmd_pack(int argc, char **argv);
int mf_cmd_bench_data(int argc, char **argv);
int mf_cmd_bench(int argc, char **argv);
int mf_cmd_train(int argc, char **argv);
int mf_cmd_summary(int argc, char **argv);
int mf_cmd_evaluate(int argc, char **argv);
int mf_cmd_predict(int argc, char **argv);
int mf_cmd_inspect(int argc, char **argv);
int mf_cmd_export(int argc, char **argv);
int mf_cmd_plot(int argc, char **argv);
#endif
