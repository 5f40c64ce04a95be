/* cnn summary: a Keras-style table (or JSON) of a model for an input shape. */
#include "tool.h"

#include <stdlib.h>
#include <string.h>

void cmd_summary_help(FILE *out)
{
    fprintf(out,
            "usage: cnn summary MODEL --input-shape C,H,W [--batch N] [--json]\n\n"
            "Prints each layer's name, type, output shape, parameter count, multiply-adds and\n"
            "inputs; the totals of trainable and non-trainable parameters; and the memory a\n"
            "forward pass and a training step need at the given batch (default 1).\n\n"
            "  --input-shape S   the input's shape without the batch, e.g. 1,28,28 or 3x224x224;\n"
            "                    a model with several inputs takes one --input-shape NAME=S each\n"
            "  --batch N         batch size for the memory figures (default 1)\n"
            "  --json            machine-readable output\n");
}

int cmd_summary(int argc, char **argv)
{
    const char *S = "summary";
    const char *model = NULL;
    const char *shapes_arg[8];
    int n_shapes = 0, json = 0;
    long long batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--input-shape") == 0) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v)
                return EXIT_USAGE;
            if (n_shapes == 8) {
                tool_error(S, "at most 8 --input-shape options");
                return EXIT_USAGE;
            }
            shapes_arg[n_shapes++] = v;
        } else if (strcmp(a, "--batch") == 0) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v || !tool_parse_i64(S, "--batch", v, 1, 1 << 20, &batch))
                return EXIT_USAGE;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn summary --help)", a);
            return EXIT_USAGE;
        } else if (!model) {
            model = a;
        } else {
            tool_error(S, "unexpected argument '%s'", a);
            return EXIT_USAGE;
        }
    }
    if (!model || n_shapes == 0) {
        tool_error(S, "MODEL and --input-shape are required (see cnn summary --help)");
        return EXIT_USAGE;
    }
    cnn_graph *g = NULL;
    int rc = EXIT_FAIL;
    if (cnn_graph_create(&g)) {
        tool_error(S, "out of memory");
        return EXIT_FAIL;
    }
    if (cnn_graph_load(g, model)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    int nin = cnn_graph_input_count(g);
    cnn_shape shapes[8];
    if (nin > 8) {
        tool_error(S, "%s: the model has %d inputs; at most 8 are supported", model, nin);
        goto done;
    }
    for (int i = 0; i < nin; i++) {
        const char *spec = NULL;
        const char *name = cnn_graph_input_name(g, i);
        for (int k = 0; k < n_shapes; k++) {
            const char *eq = strchr(shapes_arg[k], '=');
            if (eq && (size_t)(eq - shapes_arg[k]) == strlen(name) &&
                strncmp(shapes_arg[k], name, strlen(name)) == 0)
                spec = eq + 1;
            else if (!eq && n_shapes == 1 && nin == 1)
                spec = shapes_arg[k];
        }
        if (!spec) {
            tool_error(S, "no --input-shape for the model's input '%s' (give --input-shape %s=C,H,W)",
                       name, name);
            rc = EXIT_USAGE;
            goto done;
        }
        long long dims[CNN_MAX_DIMS];
        int nd = tool_parse_dims(spec, dims, CNN_MAX_DIMS - 1);
        if (nd < 0) {
            tool_error(S, "--input-shape '%s' is not a list of positive sizes such as 3,224,224", spec);
            rc = EXIT_USAGE;
            goto done;
        }
        shapes[i].ndim = nd + 1;
        shapes[i].dims[0] = batch;
        for (int d = 0; d < nd; d++)
            shapes[i].dims[d + 1] = dims[d];
    }
    if (cnn_graph_plan(g, nin, shapes, NULL, 0)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    const char *text;
    if (cnn_graph_summary(g, json ? CNN_SUMMARY_JSON : CNN_SUMMARY_TEXT, &text)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    fputs(text, stdout);
    rc = EXIT_OK;
done:
    cnn_graph_destroy(g);
    return rc;
}
