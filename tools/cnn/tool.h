/* Shared pieces of the command-line tool: one file per subcommand. */
#ifndef CNN_TOOL_H
#define CNN_TOOL_H

#include "cnn.h"

#include <stdio.h>

/* Exit codes (documented in `cnn --help` and the README). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,      /* the work failed: bad model, bad data, I/O error */
    EXIT_USAGE = 2,     /* the command line is wrong */
    EXIT_INTERRUPT = 130
};

typedef struct tool_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
} tool_cmd;

/* Prints "cnn SUB: message" on stderr. */
void tool_error(const char *sub, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Option parsing helpers: parse an integer / float with range check; print
 * a usage error naming the option on failure. */
int tool_parse_i64(const char *sub, const char *opt, const char *s, long long lo, long long hi,
                   long long *out);
int tool_parse_u64(const char *sub, const char *opt, const char *s, unsigned long long *out);
int tool_parse_double(const char *sub, const char *opt, const char *s, double *out);
/* "3,224,224" into dims; returns the count or -1. */
int tool_parse_dims(const char *s, long long *dims, int max);

/* Takes the value of option argv[*i] (advancing *i); prints a usage error
 * if it is missing. */
const char *tool_optarg(const char *sub, int argc, char **argv, int *i);

/* "--normalize M,S" and "--augment crop:P,flip" into t (either may be NULL). */
int tool_parse_transform(const char *sub, const char *normalize, const char *augment, cnn_transform *t,
                         int channels);
/* Whether a file can be created at path (its folder exists and is writable,
 * and path is not a folder); prints the error naming path otherwise. */
int tool_check_writable(const char *sub, const char *path);
/* Default for --threads: the processors online (1..256), as PyTorch uses
 * every core unless told otherwise. */
int tool_default_threads(void);
/* A model file with optional weights; prints the error and returns 0 on failure. */
int tool_load_model(const char *sub, const char *model, const char *weights, cnn_graph **out);

int cmd_run(int argc, char **argv);
void cmd_run_help(FILE *out);
int cmd_summary(int argc, char **argv);
void cmd_summary_help(FILE *out);
int cmd_train(int argc, char **argv);
void cmd_train_help(FILE *out);
int cmd_plot(int argc, char **argv);
void cmd_plot_help(FILE *out);
int cmd_eval(int argc, char **argv);
void cmd_eval_help(FILE *out);
int cmd_predict(int argc, char **argv);
void cmd_predict_help(FILE *out);
int cmd_bench(int argc, char **argv);
void cmd_bench_help(FILE *out);
int cmd_viz(int argc, char **argv);
void cmd_viz_help(FILE *out);

#endif
