/* Cross-correlation, the operation a convolution layer computes: a 3x3
 * input and a 2x2 kernel give [[19, 25], [37, 43]]. Then two input
 * channels, three output channels (kernels K, K+1, K+2), and a 1x1
 * convolution, which is a matrix product over channels. */
#include "common.h"

int main(void)
{
    /* X = arange(9) as 3x3, K = [[0, 1], [2, 3]] */
    float x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, k[4] = {0, 1, 2, 3};
    cnn_shape xs = {4, {1, 1, 3, 3}}, ks = {4, {1, 1, 2, 2}}, ys;
    const char *w[] = {"0.weight"};
    const float *kv[] = {k};
    cnn_graph *g = model("Conv2d(1, 1, kernel_size=2, bias=False)", 1, w, &ks, kv);
    print_matrices("corr2d(X, K)", run(g, &xs, x, &ys), &ys);
    cnn_graph_destroy(g);

    /* Two input channels: X = [arange(9), arange(1, 10)], K = [[[0,1],[2,3]], [[1,2],[3,4]]] */
    float x2[18], k2[8] = {0, 1, 2, 3, 1, 2, 3, 4};
    for (int i = 0; i < 9; i++) {
        x2[i] = (float)i;
        x2[9 + i] = (float)(i + 1);
    }
    cnn_shape x2s = {4, {1, 2, 3, 3}}, k2s = {4, {1, 2, 2, 2}};
    const float *k2v[] = {k2};
    g = model("Conv2d(2, 1, 2, bias=False)", 1, w, &k2s, k2v);
    print_matrices("\nmulti-input-channel corr2d", run(g, &x2s, x2, &ys), &ys);
    cnn_graph_destroy(g);

    /* Three output channels: kernels K, K + 1, K + 2 stacked. */
    float k3[24];
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 8; i++)
            k3[o * 8 + i] = k2[i] + (float)o;
    cnn_shape k3s = {4, {3, 2, 2, 2}};
    const float *k3v[] = {k3};
    g = model("Conv2d(2, 3, 2, bias=False)", 1, w, &k3s, k3v);
    print_matrices("\nthree output channels", run(g, &x2s, x2, &ys), &ys);
    cnn_graph_destroy(g);

    /* A 1x1 convolution mixes channels at every pixel: Y = W X over a 3x9 matrix. */
    float x4[27], w4[6] = {0.5f, -1, 2, 1, 0, -0.25f};
    for (int i = 0; i < 27; i++)
        x4[i] = (float)((i * 7) % 10) - 4;
    cnn_shape x4s = {4, {1, 3, 3, 3}}, w4s = {4, {2, 3, 1, 1}};
    const float *w4v[] = {w4};
    g = model("Conv2d(3, 2, 1, bias=False)", 1, w, &w4s, w4v);
    const float *y = run(g, &x4s, x4, &ys);
    double maxdiff = 0;
    for (int o = 0; o < 2; o++)
        for (int p = 0; p < 9; p++) {
            double mm = 0;
            for (int c = 0; c < 3; c++)
                mm += (double)w4[o * 3 + c] * x4[c * 9 + p];
            double d = y[o * 9 + p] - mm;
            maxdiff = d > maxdiff ? d : (-d > maxdiff ? -d : maxdiff);
        }
    printf("\n1x1 convolution vs matrix product: largest difference %g\n", maxdiff);
    cnn_graph_destroy(g);
    return 0;
}
