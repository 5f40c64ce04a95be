/* Helpers shared by several subcommands: loading a model with its weights,
 * and the data transforms given on the command line. */
#include "tool.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_floats(const char *s, float *v, int max)
{
    int n = 0;
    const char *p = s;
    while (*p && n < max) {
        char *end;
        double d = strtod(p, &end);
        if (end == p)
            return -1;
        v[n++] = (float)d;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return *p ? -1 : n;
}

int tool_parse_transform(const char *sub, const char *normalize, const char *augment, cnn_transform *t,
                         int channels)
{
    memset(t, 0, sizeof *t);
    if (normalize) {
        float v[16];
        int n = parse_floats(normalize, v, 16);
        if (n < 2 || n % 2 || (n / 2 != 1 && n / 2 != channels)) {
            tool_error(sub, "--normalize takes MEAN,STD or %d means then %d stds, got '%s'",
                       channels, channels, normalize);
            return 0;
        }
        t->n_norm = n / 2;
        for (int i = 0; i < n / 2; i++) {
            t->mean[i] = v[i];
            t->std[i] = v[n / 2 + i];
            if (!(t->std[i] > 0)) {
                tool_error(sub, "--normalize: standard deviation %g must be positive", t->std[i]);
                return 0;
            }
        }
    }
    if (augment) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", augment);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (!strncmp(tok, "crop:", 5)) {
                char *end;
                long p = strtol(tok + 5, &end, 10);
                if (*end || p < 1 || p > 64) {
                    tool_error(sub, "--augment crop:P needs a padding from 1 to 64, got '%s'", tok);
                    return 0;
                }
                t->crop_pad = (int)p;
            } else if (!strcmp(tok, "flip")) {
                t->flip = 1;
            } else {
                tool_error(sub, "--augment takes crop:P and/or flip, got '%s'", tok);
                return 0;
            }
        }
    }
    return 1;
}

int tool_load_model(const char *sub, const char *model, const char *weights, cnn_graph **out)
{
    cnn_graph *g = NULL;
    cnn_tensors *ts = NULL;
    *out = NULL;
    if (cnn_graph_create(&g) || cnn_tensors_create(&ts)) {
        tool_error(sub, "out of memory");
        goto fail;
    }
    if (cnn_graph_load(g, model)) {
        tool_error(sub, "%s", cnn_graph_errmsg(g));
        goto fail;
    }
    if (weights) {
        if (cnn_tensors_load(ts, weights)) {
            tool_error(sub, "%s", cnn_tensors_errmsg(ts));
            goto fail;
        }
        if (cnn_graph_load_state(g, ts)) {
            tool_error(sub, "%s: %s", weights, cnn_graph_errmsg(g));
            goto fail;
        }
    }
    cnn_tensors_destroy(ts);
    *out = g;
    return 1;
fail:
    cnn_tensors_destroy(ts);
    cnn_graph_destroy(g);
    return 0;
}

int tool_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int tool_check_writable(const char *sub, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        tool_error(sub, "%s: is a folder, expected a file name to write", path);
        return 0;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        tool_error(sub, "%s: cannot write there: folder %s does not exist", path, dir);
        return 0;
    }
    if (access(dir, W_OK) != 0) {
        tool_error(sub, "%s: cannot write there: folder %s is not writable", path, dir);
        return 0;
    }
    return 1;
}
