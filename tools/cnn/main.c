/* cnn: the command-line tool. Dispatches to one file per subcommand. */
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const tool_cmd commands[] = {
    {"train", "train a model on a data set (Fashion-MNIST, CIFAR-10, images, tensors)", cmd_train, cmd_train_help},
    {"eval", "loss, accuracy and confusion matrix of a trained model on a data set", cmd_eval, cmd_eval_help},
    {"predict", "the most likely classes of images or tensors", cmd_predict, cmd_predict_help},
    {"run", "run a model on tensors from safetensors files (forward, backward)", cmd_run, cmd_run_help},
    {"summary", "print a model's layers, shapes, parameters and memory", cmd_summary, cmd_summary_help},
    {"bench", "per-layer forward and backward times, images/s, GFLOP/s", cmd_bench, cmd_bench_help},
    {"plot", "draw training curves from a metrics file as SVG", cmd_plot, cmd_plot_help},
    {"viz", "pictures of a network's kernels and feature maps", cmd_viz, cmd_viz_help},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

void tool_error(const char *sub, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cnn %s: ", sub);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int tool_parse_i64(const char *sub, const char *opt, const char *s, long long lo, long long hi,
                   long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        tool_error(sub, "%s expects an integer from %lld to %lld, got '%s'", opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int tool_parse_u64(const char *sub, const char *opt, const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (s[0] == '-') {
        tool_error(sub, "%s expects a non-negative integer, got '%s'", opt, s);
        return 0;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) {
        tool_error(sub, "%s expects a non-negative integer, got '%s'", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

int tool_parse_double(const char *sub, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        tool_error(sub, "%s expects a number, got '%s'", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

int tool_parse_dims(const char *s, long long *dims, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v <= 0 || n == max)
            return -1;
        dims[n++] = v;
        if (*end == ',' || *end == 'x')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return n;
}

const char *tool_optarg(const char *sub, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        tool_error(sub, "option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cnn COMMAND [ARGS...]\n"
                 "       cnn COMMAND --help\n"
                 "       cnn --version\n\n"
                 "Convolutional neural networks with PyTorch's semantics.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nexit status: 0 success, 1 the work failed (bad model, data or file; the\n"
                 "message says which), 2 bad command line, 130 interrupted.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && argc > 2) {
            for (int i = 0; i < N_COMMANDS; i++)
                if (strcmp(commands[i].name, argv[2]) == 0) {
                    commands[i].help(stdout);
                    return EXIT_OK;
                }
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("cnn %s\n", cnn_version());
        return EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, cmd) == 0) {
            for (int k = 2; k < argc; k++)
                if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                    commands[i].help(stdout);
                    return EXIT_OK;
                }
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "cnn: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
