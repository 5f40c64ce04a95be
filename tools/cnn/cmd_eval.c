/* cnn eval: loss, accuracy and a confusion matrix of a trained model on a
 * data set. */
#include "tool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cmd_eval_help(FILE *out)
{
    fprintf(out, "usage: cnn eval MODEL --weights W --data DATA [--split test|train] [--batch-size B]\n"
                 "                [--normalize M,S] [--loss L] [--threads N] [--json]\n\n"
                 "Evaluates MODEL in eval mode on DATA (the test split by default when DATA has one)\n"
                 "and prints the loss, the accuracy and a confusion matrix (rows: true class,\n"
                 "columns: predicted class). --loss takes the names of cnn train; --threads\n"
                 "defaults to all cores.\n");
}

/* s as a JSON string literal on stdout. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static const char *loss_call(const char *name, cnn_dtype ydt)
{
    static const struct {
        const char *s, *cls;
    } map[] = {{"cross_entropy", "CrossEntropyLoss()"}, {"mse", "MSELoss()"}, {"l1", "L1Loss()"},
               {"smooth_l1", "SmoothL1Loss()"},         {"nll", "NLLLoss()"}, {"bce", "BCELoss()"},
               {"bce_with_logits", "BCEWithLogitsLoss()"}};
    if (!name)
        return ydt == CNN_I64 ? "CrossEntropyLoss()" : "MSELoss()";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(name, map[i].s))
            return map[i].cls;
    return name;
}

int cmd_eval(int argc, char **argv)
{
    const char *S = "eval";
    const char *model = NULL, *weights = NULL, *data = NULL, *split = NULL, *normalize = NULL, *loss = NULL;
    long long batch = 256, threads = tool_default_threads();
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **sv = NULL;
        if (!strcmp(a, "--weights")) sv = &weights;
        else if (!strcmp(a, "--data")) sv = &data;
        else if (!strcmp(a, "--split")) sv = &split;
        else if (!strcmp(a, "--normalize")) sv = &normalize;
        else if (!strcmp(a, "--loss")) sv = &loss;
        else if (!strcmp(a, "--json")) { json = 1; continue; }
        else if (!strcmp(a, "--batch-size") || !strcmp(a, "--threads")) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v || !tool_parse_i64(S, a, v, 1, a[2] == 'b' ? 1 << 20 : 256, a[2] == 'b' ? &batch : &threads))
                return EXIT_USAGE;
            continue;
        } else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn eval --help)", a);
            return EXIT_USAGE;
        } else if (!model) {
            model = a;
            continue;
        } else {
            tool_error(S, "unexpected argument '%s'", a);
            return EXIT_USAGE;
        }
        if (!(*sv = tool_optarg(S, argc, argv, &i)))
            return EXIT_USAGE;
    }
    if (!model || !weights || !data) {
        tool_error(S, "MODEL, --weights and --data are required (see cnn eval --help)");
        return EXIT_USAGE;
    }
    int which = CNN_SPLIT_TEST;
    if (split && !strcmp(split, "train"))
        which = CNN_SPLIT_TRAIN;
    else if (split && strcmp(split, "test")) {
        tool_error(S, "--split is test or train, got '%s'", split);
        return EXIT_USAGE;
    }
    if (!split && !cnn_dataset_has_split(data, CNN_SPLIT_TEST))
        which = CNN_SPLIT_TRAIN;
    int rc = EXIT_FAIL;
    cnn_graph *g = NULL;
    cnn_dataset *ds = NULL;
    int64_t *idx = NULL, *confusion = NULL;
    if (!tool_load_model(S, model, weights, &g))
        goto done;
    if (cnn_dataset_create(&ds) || cnn_dataset_load(ds, data, which)) {
        tool_error(S, "%s", ds ? cnn_dataset_errmsg(ds) : "out of memory");
        goto done;
    }
    cnn_shape xs, ys;
    cnn_dtype ydt;
    cnn_dataset_shapes(ds, &xs, &ys, &ydt);
    cnn_transform tf;
    if (!tool_parse_transform(S, normalize, NULL, &tf, xs.ndim ? (int)xs.dims[0] : 1)) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (cnn_graph_input_count(g) != 1 || cnn_graph_set_loss(g, loss_call(loss, ydt)) ||
        cnn_graph_set_threads(g, (int)threads)) {
        tool_error(S, "%s", cnn_graph_input_count(g) != 1 ? "the model must have one input" : cnn_graph_errmsg(g));
        goto done;
    }
    int64_t N = cnn_dataset_size(ds), planned = -1;
    idx = malloc(sizeof(int64_t) * (size_t)N);
    if (!idx) {
        tool_error(S, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < N; i++)
        idx[i] = i;
    double loss_sum = 0;
    int64_t correct = 0, classes = 0;
    for (int64_t start = 0; start < N; start += batch) {
        int64_t n = N - start < batch ? N - start : batch;
        if (n != planned) {
            cnn_shape shapes[2] = {xs, ys};
            shapes[0].ndim = xs.ndim + 1;
            shapes[0].dims[0] = n;
            memcpy(shapes[0].dims + 1, xs.dims, sizeof(int64_t) * (size_t)xs.ndim);
            shapes[1].ndim = ys.ndim + 1;
            shapes[1].dims[0] = n;
            memcpy(shapes[1].dims + 1, ys.dims, sizeof(int64_t) * (size_t)ys.ndim);
            cnn_dtype dts[2] = {CNN_F32, ydt};
            if (cnn_graph_plan(g, 2, shapes, dts, 0)) {
                char a[96];
                tool_error(S, "%s (the data's samples have shape %s)", cnn_graph_errmsg(g),
                           cnn_shape_format(&xs, a, sizeof a));
                goto done;
            }
            planned = n;
            cnn_shape os;
            cnn_graph_output(g, 0, NULL, &os, NULL);
            if (ydt == CNN_I64 && os.ndim == 2 && !confusion) {
                classes = os.dims[1];
                int64_t k = cnn_dataset_classes(ds);
                if (k > classes) {
                    tool_error(S, "%s has labels up to %lld but the model gives %lld outputs per sample",
                               cnn_dataset_source(ds), (long long)(k - 1), (long long)classes);
                    goto done;
                }
                confusion = calloc((size_t)(classes * classes), sizeof(int64_t));
                if (!confusion) {
                    tool_error(S, "out of memory");
                    goto done;
                }
            }
        }
        float *x = cnn_graph_input_data(g, 0);
        void *y = cnn_graph_input_data(g, 1);
        double l;
        if (cnn_dataset_batch(ds, idx + start, n, &tf, NULL, x, y)) {
            tool_error(S, "%s", cnn_dataset_errmsg(ds));
            goto done;
        }
        if (cnn_graph_forward(g, 0) || cnn_graph_loss(g, &l)) {
            tool_error(S, "%s", cnn_graph_errmsg(g));
            goto done;
        }
        loss_sum += l * (double)n;
        if (confusion) {
            float *out;
            cnn_graph_output(g, 0, (void **)&out, NULL, NULL);
            for (int64_t i = 0; i < n; i++) {
                int64_t best = 0, t = ((int64_t *)y)[i];
                for (int64_t c = 1; c < classes; c++)
                    if (out[i * classes + c] > out[i * classes + best])
                        best = c;
                correct += best == t;
                confusion[t * classes + best]++;
            }
        }
    }
    double mean_loss = N ? loss_sum / (double)N : NAN;
    if (json) {
        printf("{\"data\": ");
        json_string(cnn_dataset_source(ds));
        printf(", \"samples\": %lld, \"loss\": ", (long long)N);
        if (isfinite(mean_loss))
            printf("%.6g", mean_loss);
        else
            printf("null");
        if (confusion) {
            printf(", \"accuracy\": %.6g, \"confusion\": [", (double)correct / (double)N);
            for (int64_t r = 0; r < classes; r++) {
                printf(r ? ", [" : "[");
                for (int64_t c = 0; c < classes; c++)
                    printf(c ? ", %lld" : "%lld", (long long)confusion[r * classes + c]);
                printf("]");
            }
            printf("]");
        }
        printf("}\n");
    } else {
        printf("%s: %lld samples, loss %.4f", cnn_dataset_source(ds), (long long)N, mean_loss);
        if (confusion)
            printf(", accuracy %.2f%% (%lld correct)", 100.0 * (double)correct / (double)N, (long long)correct);
        printf("\n");
        if (confusion) {
            printf("\nconfusion matrix (rows: true class, columns: predicted):\n%14s", "");
            for (int64_t c = 0; c < classes; c++)
                printf(" %6lld", (long long)c);
            printf("\n");
            for (int64_t r = 0; r < classes; r++) {
                const char *name = cnn_dataset_class_name(ds, r);
                char label[32];
                snprintf(label, sizeof label, "%lld %s", (long long)r, name ? name : "");
                printf("%-14.14s", label);
                for (int64_t c = 0; c < classes; c++)
                    printf(" %6lld", (long long)confusion[r * classes + c]);
                printf("\n");
            }
        }
    }
    rc = EXIT_OK;
done:
    free(idx);
    free(confusion);
    cnn_dataset_destroy(ds);
    cnn_graph_destroy(g);
    return rc;
}
