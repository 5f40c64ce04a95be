/* cnn plot: training curves (loss and accuracy per epoch) from a metrics
 * JSON Lines file, as an SVG image. */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cmd_plot_help(FILE *out)
{
    fprintf(out, "usage: cnn plot METRICS.jsonl -o CURVES.svg\n\n"
                 "Draws the loss and the accuracy per epoch (training and test) from the metrics\n"
                 "file written by cnn train --metrics.\n");
}

enum { F_EPOCH, F_TRAIN_LOSS, F_TEST_LOSS, F_TRAIN_ACC, F_TEST_ACC, N_FIELDS };
static const char *const field_names[N_FIELDS] = {"epoch", "train_loss", "test_loss", "train_acc", "test_acc"};

/* Reads the numeric fields of one flat JSON object line ("key": number or
 * null); unknown keys are skipped. Returns 0 on a malformed line. */
static int parse_line(const char *s, double *v)
{
    for (int i = 0; i < N_FIELDS; i++)
        v[i] = NAN;
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p++ != '{')
        return 0;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '}')
            return 1;
        if (*p++ != '"')
            return 0;
        const char *k = p;
        while (*p && *p != '"')
            p++;
        if (!*p)
            return 0;
        size_t klen = (size_t)(p - k);
        p++;
        while (*p == ' ')
            p++;
        if (*p++ != ':')
            return 0;
        while (*p == ' ')
            p++;
        double val = NAN;
        if (!strncmp(p, "null", 4)) {
            p += 4;
        } else if (*p == '"') {
            p++;
            while (*p && *p != '"')
                p++;
            if (!*p)
                return 0;
            p++;
        } else {
            char *end;
            val = strtod(p, &end);
            if (end == p)
                return 0;
            p = end;
        }
        for (int i = 0; i < N_FIELDS; i++)
            if (strlen(field_names[i]) == klen && !strncmp(field_names[i], k, klen))
                v[i] = val;
    }
}

static double nice_step(double range)
{
    double raw = range / 5, mag = pow(10, floor(log10(raw)));
    double n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

static void panel(FILE *f, double x0, double y0, double w, double h, const char *title,
                  double (*rows)[N_FIELDS], int n, int fa, int fb, const char *la, const char *lb,
                  int percent)
{
    double xmin = rows[0][F_EPOCH], xmax = rows[n - 1][F_EPOCH];
    double ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            double v = rows[i][k ? fb : fa];
            if (isfinite(v)) {
                ymin = fmin(ymin, v);
                ymax = fmax(ymax, v);
            }
        }
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='15' font-weight='bold'>%s</text>\n", x0, y0 - 12, title);
    if (!isfinite(ymin)) {
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='13'>no data</text>\n", x0 + 10, y0 + 30);
        return;
    }
    if (ymax - ymin < 1e-9) {
        ymin -= 0.5;
        ymax += 0.5;
    }
    double pad = (ymax - ymin) * 0.08;
    ymin -= pad;
    ymax += pad;
    if (xmax <= xmin)
        xmax = xmin + 1;
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#888'/>\n", x0, y0, w, h);
    double ys = nice_step(ymax - ymin);
    for (double t = ceil(ymin / ys) * ys; t <= ymax; t += ys) {
        double y = y0 + h - (t - ymin) / (ymax - ymin) * h;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#e4e4e4'/>\n", x0, y, x0 + w, y);
        if (percent)
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%g%%</text>\n", x0 - 4, y + 4, t * 100);
        else
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%g</text>\n", x0 - 4, y + 4, t);
    }
    double xs = nice_step(xmax - xmin);
    if (xs < 1)
        xs = 1;
    for (double t = ceil(xmin / xs) * xs; t <= xmax + 1e-9; t += xs) {
        double x = x0 + (t - xmin) / (xmax - xmin) * w;
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%g</text>\n", x, y0 + h + 16, t);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>epoch</text>\n", x0 + w / 2, y0 + h + 32);
    static const char *colors[2] = {"#1f77b4", "#d62728"};
    for (int k = 0; k < 2; k++) {
        int fld = k ? fb : fa;
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", colors[k]);
        int any = 0;
        for (int i = 0; i < n; i++) {
            double v = rows[i][fld];
            if (!isfinite(v))
                continue;
            any = 1;
            fprintf(f, "%.1f,%.1f ", x0 + (rows[i][F_EPOCH] - xmin) / (xmax - xmin) * w,
                    y0 + h - (v - ymin) / (ymax - ymin) * h);
        }
        fprintf(f, "'/>\n");
        if (any)
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' fill='%s'>%s</text>\n", x0 + w - 110,
                    y0 + 18 + 16 * k, colors[k], k ? lb : la);
    }
}

int cmd_plot(int argc, char **argv)
{
    const char *S = "plot";
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!(out = tool_optarg(S, argc, argv, &i)))
                return EXIT_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            tool_error(S, "unknown option '%s'", argv[i]);
            return EXIT_USAGE;
        } else if (!in) {
            in = argv[i];
        } else {
            tool_error(S, "unexpected argument '%s'", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!in || !out) {
        tool_error(S, "METRICS and -o OUT.svg are required (see cnn plot --help)");
        return EXIT_USAGE;
    }
    FILE *fin = fopen(in, "r");
    if (!fin) {
        tool_error(S, "%s: cannot open: %s", in, strerror(errno));
        return EXIT_FAIL;
    }
    double(*rows)[N_FIELDS] = NULL;
    int n = 0, cap = 0, lineno = 0;
    char line[4096];
    while (fgets(line, sizeof line, fin)) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            void *nr = realloc(rows, sizeof *rows * (size_t)cap);
            if (!nr) {
                free(rows);
                fclose(fin);
                tool_error(S, "out of memory");
                return EXIT_FAIL;
            }
            rows = nr;
        }
        if (!parse_line(line, rows[n]) || !isfinite(rows[n][F_EPOCH])) {
            tool_error(S, "%s:%d: not a metrics line (a JSON object with an \"epoch\" number)", in, lineno);
            free(rows);
            fclose(fin);
            return EXIT_FAIL;
        }
        n++;
    }
    fclose(fin);
    if (n == 0) {
        tool_error(S, "%s: no metrics lines", in);
        free(rows);
        return EXIT_FAIL;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        tool_error(S, "%s: cannot write: %s", out, strerror(errno));
        free(rows);
        return EXIT_FAIL;
    }
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' "
               "font-family='sans-serif'>\n<rect width='900' height='380' fill='white'/>\n");
    panel(f, 70, 40, 340, 280, "Loss", rows, n, F_TRAIN_LOSS, F_TEST_LOSS, "train", "test", 0);
    panel(f, 520, 40, 340, 280, "Accuracy", rows, n, F_TRAIN_ACC, F_TEST_ACC, "train", "test", 1);
    fprintf(f, "</svg>\n");
    free(rows);
    if (fflush(f) || ferror(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, out)) {
        tool_error(S, "%s: cannot write: %s", out, strerror(errno));
        unlink(tmp);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
