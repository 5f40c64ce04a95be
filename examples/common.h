/* Small helpers shared by the examples: run a model on one input and print
 * 2-d results the way the tutorials print tensors. */
#ifndef CNN_EXAMPLES_COMMON_H
#define CNN_EXAMPLES_COMMON_H

#include <cnn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any failure ends the example with the library's message. */
#define CHECK(call, handle_msg)                                                                    \
    do {                                                                                           \
        if ((call) != CNN_OK) {                                                                    \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, handle_msg);                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* A model from model-file text, with the named parameters set. */
static inline cnn_graph *model(const char *text, int n_params, const char *const *names,
                               const cnn_shape *shapes, const float *const *values)
{
    cnn_graph *g;
    if (cnn_graph_create(&g) != CNN_OK)
        exit(1);
    CHECK(cnn_graph_parse(g, text, "example"), cnn_graph_errmsg(g));
    if (n_params) {
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        for (int i = 0; i < n_params; i++)
            CHECK(cnn_tensors_add(ts, names[i], CNN_F32, &shapes[i], values[i], NULL),
                  cnn_tensors_errmsg(ts));
        CHECK(cnn_graph_load_state(g, ts), cnn_graph_errmsg(g));
        cnn_tensors_destroy(ts);
    }
    return g;
}

/* Runs g forward on x (shape xs) and returns output 0 (owned by g). */
static inline const float *run(cnn_graph *g, const cnn_shape *xs, const float *x, cnn_shape *ys)
{
    CHECK(cnn_graph_plan(g, 1, xs, NULL, 0), cnn_graph_errmsg(g));
    size_t n = 1;
    for (int i = 0; i < xs->ndim; i++)
        n *= (size_t)xs->dims[i];
    memcpy(cnn_graph_input_data(g, 0), x, n * sizeof(float));
    CHECK(cnn_graph_forward(g, 0), cnn_graph_errmsg(g));
    void *y;
    CHECK(cnn_graph_output(g, 0, &y, ys, NULL), cnn_graph_errmsg(g));
    return y;
}

/* Prints the last two dims of a tensor, one matrix per leading index. */
static inline void print_matrices(const char *label, const float *v, const cnn_shape *s)
{
    int64_t rows = s->ndim >= 2 ? s->dims[s->ndim - 2] : 1, cols = s->dims[s->ndim - 1];
    int64_t count = 1;
    for (int i = 0; i < s->ndim - 2; i++)
        count *= s->dims[i];
    printf("%s (shape", label);
    for (int i = 0; i < s->ndim; i++)
        printf(" %lld", (long long)s->dims[i]);
    printf("):\n");
    for (int64_t m = 0; m < count; m++) {
        for (int64_t r = 0; r < rows; r++) {
            printf("  [");
            for (int64_t c = 0; c < cols; c++)
                printf(c ? ", %g" : "%g", (double)v[(m * rows + r) * cols + c]);
            printf("]\n");
        }
        if (m + 1 < count)
            printf("\n");
    }
}

#endif
