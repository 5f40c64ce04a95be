/* The Inception module of the tutorial, built with the C graph builder:
 * parallel 1x1, 3x3 and 5x5 'same' convolutions of a 224x224x3 image,
 * concatenated on channels into 224x224x192; then its summary. */
#include "common.h"

int main(void)
{
    cnn_graph *g;
    if (cnn_graph_create(&g))
        return 1;
    int x, b1, b2, b3, out;
    cnn_shape img = {3, {3, 224, 224}};
    CHECK(cnn_graph_add_input(g, "input", &img, &x), cnn_graph_errmsg(g));
    CHECK(cnn_graph_add(g, "b1", "Conv2d(3, 64, 1)", 1, &x, &b1, NULL), cnn_graph_errmsg(g));
    CHECK(cnn_graph_add(g, "b2", "Conv2d(3, 64, 3, padding='same')", 1, &x, &b2, NULL), cnn_graph_errmsg(g));
    CHECK(cnn_graph_add(g, "b3", "Conv2d(3, 64, 5, padding='same')", 1, &x, &b3, NULL), cnn_graph_errmsg(g));
    int branches[3] = {b1, b2, b3};
    CHECK(cnn_graph_add(g, "output", "Concat(dim=1)", 3, branches, &out, NULL), cnn_graph_errmsg(g));

    cnn_shape xs = {4, {1, 3, 224, 224}};
    CHECK(cnn_graph_plan(g, 1, &xs, NULL, 0), cnn_graph_errmsg(g));
    const char *text;
    CHECK(cnn_graph_summary(g, CNN_SUMMARY_TEXT, &text), cnn_graph_errmsg(g));
    fputs(text, stdout);
    cnn_shape ys;
    CHECK(cnn_graph_output(g, 0, NULL, &ys, NULL), cnn_graph_errmsg(g));
    printf("\n224x224x3 in, %lldx%lldx%lld out\n", (long long)ys.dims[2], (long long)ys.dims[3],
           (long long)ys.dims[1]);

    /* A mismatch is reported as the node is added, naming both inputs:
     * a 2x2 convolution without padding gives 223x223, which cannot be
     * concatenated with the 224x224 branch. */
    int b4, bad;
    CHECK(cnn_graph_add(g, "b4", "Conv2d(3, 8, 2)", 1, &x, &b4, NULL), cnn_graph_errmsg(g));
    int pair[2] = {b1, b4};
    if (cnn_graph_add(g, "bad", "Concat(dim=1)", 2, pair, &bad, NULL) != CNN_OK)
        printf("\nas expected: %s\n", cnn_graph_errmsg(g));
    cnn_graph_destroy(g);
    return 0;
}
