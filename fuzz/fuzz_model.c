/* Model files: parsing, graph building, planning for a few small input
 * shapes and, when the plan is small, a forward and backward pass. */
#include "fuzz_common.h"

#include <math.h>

/* A model with more parameters than this is not planned: the point is the
 * parser and shape inference, not allocating what the file asks for. */
#define MAX_PARAMS (4 << 20)
/* Multiply-adds above which a planned model is not run. */
#define MAX_RUN_MACS (2 << 20)

static const cnn_shape shapes[] = {
    {4, {2, 3, 8, 8}}, {3, {1, 1, 5}}, {2, {2, 16}}, {5, {1, 2, 3, 4, 4}}, {4, {1, 1, 6, 6}}, {1, {4}},
};

static void run_small(cnn_graph *g, int n_in, const cnn_shape *in)
{
    int64_t macs = 0;
    for (int i = 0; i < cnn_graph_layer_count(g); i++) {
        cnn_layer_info li;
        if (cnn_graph_layer(g, i, &li) == CNN_OK)
            macs += li.macs;
    }
    if (macs > MAX_RUN_MACS)
        return;
    for (int i = 0; i < n_in; i++) {
        float *x = cnn_graph_input_data(g, i);
        int64_t n = 1;
        for (int d = 0; d < in[i].ndim; d++)
            n *= in[i].dims[d];
        for (int64_t j = 0; x && j < n; j++)
            x[j] = (float)sin((double)j);
    }
    cnn_status st = cnn_graph_forward(g, 1);
    fuzz_need_message(st, cnn_graph_errmsg(g), "cnn_graph_forward");
    if (st)
        return;
    for (int i = 0; i < cnn_graph_output_count(g); i++) {
        cnn_shape s;
        cnn_dtype dt;
        void *y;
        if (cnn_graph_output(g, i, &y, &s, &dt) != CNN_OK)
            abort(); /* a planned output always exists */
        float *gy = cnn_graph_output_grad(g, i);
        if (!gy)
            continue;
        int64_t n = 1;
        for (int d = 0; d < s.ndim; d++)
            n *= s.dims[d];
        for (int64_t j = 0; j < n; j++)
            gy[j] = (float)((j % 5) - 2);
    }
    st = cnn_graph_backward(g);
    fuzz_need_message(st, cnn_graph_errmsg(g), "cnn_graph_backward");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    cnn_graph *g;
    if (cnn_graph_create(&g)) {
        free(text);
        return 0;
    }
    cnn_status st = cnn_graph_parse(g, text, "fuzz.txt");
    fuzz_need_message(st, cnn_graph_errmsg(g), "cnn_graph_parse");
    int64_t total = 0;
    for (int i = 0; !st && i < cnn_graph_param_count(g); i++) {
        cnn_param_info info;
        if (cnn_graph_param(g, i, &info) != CNN_OK)
            abort();
        int64_t n = 1;
        for (int d = 0; d < info.shape.ndim; d++)
            n *= info.shape.dims[d];
        total += n;
    }
    int n_in = st ? 0 : cnn_graph_input_count(g);
    if (!st && total <= MAX_PARAMS && n_in >= 1 && n_in <= 4) {
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            cnn_shape in[4];
            for (int i = 0; i < n_in; i++)
                in[i] = shapes[k];
            unsigned flags = CNN_PLAN_BACKWARD | (k % 2 ? CNN_PLAN_INPUT_GRAD : 0);
            st = cnn_graph_plan(g, n_in, in, NULL, flags);
            fuzz_need_message(st, cnn_graph_errmsg(g), "cnn_graph_plan");
            if (st == CNN_OK) {
                const char *text_out;
                if (cnn_graph_summary(g, CNN_SUMMARY_TEXT, &text_out) == CNN_OK && !text_out)
                    abort();
                run_small(g, n_in, in);
            }
        }
    }
    cnn_graph_destroy(g);
    free(text);
    return 0;
}
