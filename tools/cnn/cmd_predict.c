/* cnn predict: the most likely classes of images or tensors. */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cmd_predict_help(FILE *out)
{
    fprintf(out, "usage: cnn predict MODEL --weights W [--top K] [--normalize M,S] [--labels DATA]\n"
                 "                   FILE...\n\n"
                 "Prints the K most likely classes (default 3) with their probabilities (softmax of\n"
                 "the model's outputs) for each FILE: a PNG or JPEG image (pixels scaled to [0, 1]),\n"
                 "or a safetensors file with a tensor 'input' (or 'x') holding a batch (N first).\n"
                 "--labels names the classes after a data set's ('fashion-mnist', a CIFAR-10 or\n"
                 "image folder).\n");
}

/* Whether path starts like a PNG or JPEG file; -1 if it cannot be opened. */
static int is_image(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char m[4] = {0};
    if (!f)
        return -1;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && ((m[0] == 0x89 && m[1] == 'P') || (m[0] == 0xFF && m[1] == 0xD8));
}

int cmd_predict(int argc, char **argv)
{
    const char *S = "predict";
    const char *model = NULL, *weights = NULL, *normalize = NULL, *labels = NULL;
    long long top = 3;
    const char **files = calloc((size_t)argc, sizeof(char *));
    int nfiles = 0;
    if (!files)
        return EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **sv = NULL;
        if (!strcmp(a, "--weights")) sv = &weights;
        else if (!strcmp(a, "--normalize")) sv = &normalize;
        else if (!strcmp(a, "--labels")) sv = &labels;
        else if (!strcmp(a, "--top")) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v || !tool_parse_i64(S, a, v, 1, 1000, &top)) {
                free(files);
                return EXIT_USAGE;
            }
            continue;
        } else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn predict --help)", a);
            free(files);
            return EXIT_USAGE;
        } else if (!model) {
            model = a;
            continue;
        } else {
            files[nfiles++] = a;
            continue;
        }
        if (!(*sv = tool_optarg(S, argc, argv, &i))) {
            free(files);
            return EXIT_USAGE;
        }
    }
    if (!model || !weights || !nfiles) {
        tool_error(S, "MODEL, --weights and at least one FILE are required (see cnn predict --help)");
        free(files);
        return EXIT_USAGE;
    }
    int rc = EXIT_FAIL;
    cnn_graph *g = NULL;
    cnn_dataset *names = NULL, *io = NULL;
    cnn_tensors *ts = NULL;
    if (!tool_load_model(S, model, weights, &g))
        goto done;
    if (cnn_dataset_create(&io) || cnn_tensors_create(&ts)) {
        tool_error(S, "out of memory");
        goto done;
    }
    if (labels && (cnn_dataset_create(&names) || cnn_dataset_load(names, labels, CNN_SPLIT_TEST))) {
        if (names && cnn_dataset_load(names, labels, CNN_SPLIT_TRAIN)) {
            tool_error(S, "%s", cnn_dataset_errmsg(names));
            goto done;
        }
    }
    if (cnn_graph_input_count(g) != 1) {
        tool_error(S, "%s: the model must have one input", model);
        goto done;
    }
    for (int f = 0; f < nfiles; f++) {
        float *data = NULL;
        cnn_shape shape;
        int own = 0;
        int kind = is_image(files[f]);
        if (kind < 0) {
            tool_error(S, "%s: cannot open: %s", files[f], strerror(errno));
            goto done;
        }
        if (kind) {
            if (cnn_image_load(io, files[f], &data, &shape)) {
                tool_error(S, "%s", cnn_dataset_errmsg(io));
                goto done;
            }
            own = 1;
            /* one sample: add the batch dimension */
            memmove(shape.dims + 1, shape.dims, sizeof(int64_t) * (size_t)shape.ndim);
            shape.dims[0] = 1;
            shape.ndim++;
        } else {
            if (cnn_tensors_load(ts, files[f])) {
                tool_error(S, "%s (not a PNG or JPEG image either)", cnn_tensors_errmsg(ts));
                goto done;
            }
            int k = cnn_tensors_find(ts, "input");
            if (k < 0)
                k = cnn_tensors_find(ts, "x");
            cnn_tensor_info info;
            if (k < 0 || cnn_tensors_convert(ts, k, CNN_F32) || cnn_tensors_get(ts, k, &info)) {
                tool_error(S, "%s: no float tensor named 'input' or 'x'", files[f]);
                goto done;
            }
            data = info.data;
            shape = info.shape;
        }
        cnn_transform tf;
        if (!tool_parse_transform(S, normalize, NULL, &tf, shape.ndim > 1 ? (int)shape.dims[1] : 1)) {
            if (own)
                free(data);
            rc = EXIT_USAGE;
            goto done;
        }
        int64_t count = 1, per = 1;
        for (int d = 1; d < shape.ndim; d++)
            per *= shape.dims[d];
        count = shape.ndim ? shape.dims[0] : 1;
        if (tf.n_norm) {
            int64_t C = shape.ndim > 1 ? shape.dims[1] : 1, hw = C ? per / C : 0;
            for (int64_t n = 0; n < count; n++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t i = 0; i < hw; i++) {
                        int k = tf.n_norm == 1 ? 0 : (int)c;
                        float *v = &data[(n * C + c) * hw + i];
                        *v = (*v - tf.mean[k]) / tf.std[k];
                    }
        }
        int st = cnn_graph_plan(g, 1, &shape, NULL, 0);
        if (!st) {
            memcpy(cnn_graph_input_data(g, 0), data, sizeof(float) * (size_t)(count * per));
            st = cnn_graph_forward(g, 0);
        }
        if (own)
            free(data);
        if (st) {
            char a[96];
            tool_error(S, "%s: %s (the input has shape %s)", files[f], cnn_graph_errmsg(g),
                       cnn_shape_format(&shape, a, sizeof a));
            goto done;
        }
        float *out;
        cnn_shape os;
        cnn_graph_output(g, 0, (void **)&out, &os, NULL);
        int64_t C = os.ndim == 2 ? os.dims[1] : 0;
        if (!C) {
            tool_error(S, "the model's output has shape [%lld, ...]; predict needs (N, classes)",
                       (long long)os.dims[0]);
            goto done;
        }
        for (int64_t n = 0; n < count; n++) {
            const float *z = out + n * C;
            double m = z[0], sum = 0;
            for (int64_t c = 1; c < C; c++)
                m = z[c] > m ? z[c] : m;
            for (int64_t c = 0; c < C; c++)
                sum += exp(z[c] - m);
            printf("%s", files[f]);
            if (count > 1)
                printf("[%lld]", (long long)n);
            printf(":");
            int64_t shown[1000];
            for (int64_t k = 0; k < top && k < C; k++) {
                int64_t best = -1;
                for (int64_t c = 0; c < C; c++) {
                    int taken = 0;
                    for (int64_t j = 0; j < k; j++)
                        taken |= shown[j] == c;
                    if (!taken && (best < 0 || z[c] > z[best]))
                        best = c;
                }
                shown[k] = best;
                const char *nm = names ? cnn_dataset_class_name(names, best) : NULL;
                printf(" %lld%s%s%s %.2f%%", (long long)best, nm ? " (" : "", nm ? nm : "", nm ? ")" : "",
                       100.0 * exp(z[best] - m) / sum);
                if (k + 1 < top && k + 1 < C)
                    printf(",");
            }
            printf("\n");
        }
    }
    rc = EXIT_OK;
done:
    free(files);
    cnn_tensors_destroy(ts);
    cnn_dataset_destroy(io);
    cnn_dataset_destroy(names);
    cnn_graph_destroy(g);
    return rc;
}
