/* cnn viz: pictures of what a network does: each convolution's kernels and
 * each layer's feature maps for one input, as PNG images. */
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cmd_viz_help(FILE *out)
{
    fprintf(out, "usage: cnn viz MODEL [--weights W] INPUT -o DIR [--normalize M,S]\n\n"
                 "Runs MODEL on INPUT (a PNG or JPEG image, or a safetensors file with a tensor\n"
                 "'input' of one sample, batch dimension included: (1, C, H, W)) and writes into\n"
                 "DIR, for each layer i:\n"
                 "  i-NAME-output.png    its feature maps, one tile per channel\n"
                 "  i-NAME-kernels.png   for convolutions, the kernels (rows: output channels,\n"
                 "                       columns: input channels)\n"
                 "Each tile is scaled from its own minimum (black) to maximum (white).\n");
}

/* A grid of rows x cols tiles of h x w, each scaled to [0, 1] and enlarged
 * by `zoom`, with 1-pixel gray gaps. */
static float *grid(const float *v, int64_t rows, int64_t cols, int64_t h, int64_t w, int zoom,
                   int64_t *H, int64_t *W)
{
    int64_t th = h * zoom, tw = w * zoom;
    *H = rows * (th + 1) - 1;
    *W = cols * (tw + 1) - 1;
    if (*H <= 0 || *W <= 0 || *H * *W > 64 * 1024 * 1024)
        return NULL;
    float *img = malloc(sizeof(float) * (size_t)(*H * *W));
    if (!img)
        return NULL;
    for (int64_t i = 0; i < *H * *W; i++)
        img[i] = 0.5f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const float *t = v + (r * cols + c) * h * w;
            float lo = t[0], hi = t[0];
            for (int64_t i = 1; i < h * w; i++) {
                lo = t[i] < lo ? t[i] : lo;
                hi = t[i] > hi ? t[i] : hi;
            }
            float scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
            for (int64_t y = 0; y < th; y++)
                for (int64_t x = 0; x < tw; x++) {
                    float val = hi > lo ? (t[(y / zoom) * w + x / zoom] - lo) * scale : 0.5f;
                    img[(r * (th + 1) + y) * *W + c * (tw + 1) + x] = val;
                }
        }
    return img;
}

static int save(cnn_dataset *io, const char *dir, int i, const char *name, const char *what, const float *v,
                int64_t rows, int64_t cols, int64_t h, int64_t w)
{
    int zoom = 1;
    while (zoom < 16 && h * zoom < 48 && w * zoom < 48)
        zoom *= 2;
    int64_t H, W;
    float *img = grid(v, rows, cols, h, w, zoom, &H, &W);
    if (!img) {
        tool_error("viz", "layer %s: %s picture too large or out of memory", name, what);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%02d-%s-%s.png", dir, i, name, what);
    for (char *p = path + strlen(dir) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    cnn_shape s = {2, {H, W}};
    int ok = cnn_image_save_png(io, path, img, &s, 0.0f, 1.0f) == CNN_OK;
    if (!ok)
        tool_error("viz", "%s", cnn_dataset_errmsg(io));
    else
        printf("%s\n", path);
    free(img);
    return ok;
}

int cmd_viz(int argc, char **argv)
{
    const char *S = "viz";
    const char *model = NULL, *weights = NULL, *input = NULL, *dir = NULL, *normalize = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **sv = NULL;
        if (!strcmp(a, "--weights")) sv = &weights;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) sv = &dir;
        else if (!strcmp(a, "--normalize")) sv = &normalize;
        else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn viz --help)", a);
            return EXIT_USAGE;
        } else if (!model) {
            model = a;
            continue;
        } else if (!input) {
            input = a;
            continue;
        } else {
            tool_error(S, "unexpected argument '%s'", a);
            return EXIT_USAGE;
        }
        if (!(*sv = tool_optarg(S, argc, argv, &i)))
            return EXIT_USAGE;
    }
    if (!model || !input || !dir) {
        tool_error(S, "MODEL, INPUT and -o DIR are required (see cnn viz --help)");
        return EXIT_USAGE;
    }
    int rc = EXIT_FAIL;
    cnn_graph *g = NULL;
    cnn_dataset *io = NULL;
    cnn_tensors *ts = NULL;
    float *data = NULL;
    cnn_shape shape;
    if (!tool_load_model(S, model, weights, &g))
        goto done;
    if (cnn_dataset_create(&io) || cnn_tensors_create(&ts)) {
        tool_error(S, "out of memory");
        goto done;
    }
    if (cnn_image_load(io, input, &data, &shape) == CNN_OK) {
        memmove(shape.dims + 1, shape.dims, sizeof(int64_t) * (size_t)shape.ndim);
        shape.dims[0] = 1;
        shape.ndim++;
    } else if (cnn_tensors_load(ts, input) == CNN_OK) {
        int k = cnn_tensors_find(ts, "input");
        cnn_tensor_info info;
        if (k < 0 || cnn_tensors_convert(ts, k, CNN_F32) || cnn_tensors_get(ts, k, &info)) {
            tool_error(S, "%s: no float tensor named 'input'", input);
            goto done;
        }
        shape = info.shape;
        data = malloc(info.nbytes ? info.nbytes : 1);
        if (!data) {
            tool_error(S, "out of memory");
            goto done;
        }
        memcpy(data, info.data, info.nbytes);
    } else {
        tool_error(S, "%s: neither an image nor a safetensors file (%s)", input, cnn_dataset_errmsg(io));
        goto done;
    }
    cnn_transform tf;
    int C = shape.ndim > 1 ? (int)shape.dims[1] : 1;
    if (!tool_parse_transform(S, normalize, NULL, &tf, C)) {
        rc = EXIT_USAGE;
        goto done;
    }
    int64_t numel = 1;
    for (int d = 0; d < shape.ndim; d++)
        numel *= shape.dims[d];
    if (tf.n_norm) {
        int64_t hw = numel / (shape.dims[0] * C);
        for (int64_t i = 0; i < numel; i++) {
            int c = (int)((i / hw) % C), k = tf.n_norm == 1 ? 0 : c;
            data[i] = (data[i] - tf.mean[k]) / tf.std[k];
        }
    }
    if (cnn_graph_input_count(g) != 1) {
        tool_error(S, "%s: the model must have one input", model);
        goto done;
    }
    int st = cnn_graph_plan(g, 1, &shape, NULL, 0);
    if (!st) {
        memcpy(cnn_graph_input_data(g, 0), data, sizeof(float) * (size_t)numel);
        st = cnn_graph_forward(g, 0);
    }
    if (st) {
        char a[96];
        tool_error(S, "%s: %s (the input has shape %s)", input, cnn_graph_errmsg(g),
                   cnn_shape_format(&shape, a, sizeof a));
        goto done;
    }
    /* The folder is made only once there is something to put in it. */
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        tool_error(S, "%s: cannot create the folder: %s", dir, strerror(errno));
        goto done;
    }
    /* The input itself first: tile 00. */
    int64_t hw_in = shape.ndim >= 4 ? shape.dims[shape.ndim - 2] * shape.dims[shape.ndim - 1] : 0;
    if (hw_in && !save(io, dir, 0, "input", "image", data, 1, C, shape.dims[shape.ndim - 2],
                       shape.dims[shape.ndim - 1]))
        goto done;
    for (int i = 0; i < cnn_graph_layer_count(g); i++) {
        cnn_layer_info li;
        cnn_graph_layer(g, i, &li);
        void *out;
        cnn_shape os;
        cnn_dtype dt;
        cnn_graph_layer_output(g, i, 0, &out, &os, &dt);
        if (dt != CNN_F32)
            continue;
        if (os.ndim == 4) {
            int64_t ch = os.dims[1], cols = ch < 16 ? ch : 16, rows = (ch + cols - 1) / cols;
            if (rows * cols != ch)
                cols = ch, rows = 1; /* keep every channel, in one row */
            if (!save(io, dir, i + 1, li.name, "output", out, rows, cols, os.dims[2], os.dims[3]))
                goto done;
        } else if (os.ndim == 2) {
            if (!save(io, dir, i + 1, li.name, "output", out, 1, 1, 1, os.dims[1]))
                goto done;
        }
        if (!strcmp(li.type, "Conv2d")) {
            char wname[300];
            snprintf(wname, sizeof wname, "%s.weight", li.name);
            for (int p = 0; p < cnn_graph_param_count(g); p++) {
                cnn_param_info pi;
                cnn_graph_param(g, p, &pi);
                if (strcmp(pi.name, wname) || pi.shape.ndim != 4)
                    continue;
                if (!save(io, dir, i + 1, li.name, "kernels", pi.data, pi.shape.dims[0], pi.shape.dims[1],
                          pi.shape.dims[2], pi.shape.dims[3]))
                    goto done;
            }
        }
    }
    rc = EXIT_OK;
done:
    free(data);
    cnn_tensors_destroy(ts);
    cnn_dataset_destroy(io);
    cnn_graph_destroy(g);
    return rc;
}
