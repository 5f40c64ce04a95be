/* Pooling as in the tutorial: 2x2 max and average pooling of arange(9);
 * padding and stride on a 4x4 arange(16); two channels pooled apart;
 * max pooling with indices undone by MaxUnpool2d; and AvgPool2d with
 * divisor_override=3 on ones, where every output is 4/3. */
#include "common.h"

static void pool(const char *label, const char *module, const cnn_shape *xs, const float *x)
{
    cnn_graph *g = model(module, 0, NULL, NULL, NULL);
    cnn_shape ys;
    char title[256];
    snprintf(title, sizeof title, "%s: %s", label, module);
    print_matrices(title, run(g, xs, x, &ys), &ys);
    cnn_graph_destroy(g);
}

int main(void)
{
    float x9[9], x16[16], x32[32], ones[16];
    for (int i = 0; i < 9; i++)
        x9[i] = (float)i;
    for (int i = 0; i < 16; i++) {
        x16[i] = (float)i;
        x32[i] = (float)i;
        x32[16 + i] = (float)i + 1; /* the second channel is X + 1 */
        ones[i] = 1;
    }
    cnn_shape s9 = {4, {1, 1, 3, 3}}, s16 = {4, {1, 1, 4, 4}}, s32 = {4, {1, 2, 4, 4}};
    pool("max", "MaxPool2d(2, stride=1)", &s9, x9);
    pool("\naverage", "AvgPool2d(2, stride=1)", &s9, x9);
    pool("\ndefault stride = kernel", "MaxPool2d(3)", &s16, x16);
    pool("\npadding and stride", "MaxPool2d(3, padding=1, stride=2)", &s16, x16);
    pool("\nrectangular window", "MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))", &s16, x16);
    pool("\ntwo channels", "MaxPool2d(3, padding=1, stride=2)", &s32, x32);
    pool("\ndivisor_override=3 on ones", "AvgPool2d(2, divisor_override=3)", &s16, ones);

    /* MaxPool2d with return_indices, then MaxUnpool2d puts each maximum back
     * where it came from (zeros elsewhere). */
    cnn_graph *g = model("p, idx = MaxPool2d(2, stride=2, return_indices=True)(input)\n"
                         "output = MaxUnpool2d(2, stride=2)(p, idx)\n"
                         "outputs = p, idx, output\n",
                         0, NULL, NULL, NULL);
    cnn_shape ys;
    print_matrices("\npooled", run(g, &s16, x16, &ys), &ys);
    int64_t *idx;
    cnn_shape is;
    CHECK(cnn_graph_output(g, 1, (void **)&idx, &is, NULL), cnn_graph_errmsg(g));
    printf("indices: [[%lld, %lld], [%lld, %lld]]\n", (long long)idx[0], (long long)idx[1],
           (long long)idx[2], (long long)idx[3]);
    float *u;
    CHECK(cnn_graph_output(g, 2, (void **)&u, &ys, NULL), cnn_graph_errmsg(g));
    print_matrices("unpooled", u, &ys);
    cnn_graph_destroy(g);
    return 0;
}
