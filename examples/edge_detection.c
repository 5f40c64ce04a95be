/* Edge detection: a 6x8 image of ones with a black band in columns 2..5 and
 * the kernel [[1, -1]] mark the vertical edges with 1 and -1; on the
 * transposed image the same kernel sees nothing, because it only detects
 * vertical edges. */
#include "common.h"

int main(void)
{
    float img[48], tr[48];
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 8; c++)
            img[r * 8 + c] = (c >= 2 && c < 6) ? 0.0f : 1.0f;
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 8; c++)
            tr[c * 6 + r] = img[r * 8 + c];
    float k[2] = {1, -1};
    cnn_shape ks = {4, {1, 1, 1, 2}}, xs = {4, {1, 1, 6, 8}}, ts = {4, {1, 1, 8, 6}}, ys;
    const char *w[] = {"0.weight"};
    const float *kv[] = {k};
    cnn_graph *g = model("Conv2d(1, 1, kernel_size=(1, 2), bias=False)", 1, w, &ks, kv);
    print_matrices("X", img, &xs);
    print_matrices("\nY = corr2d(X, [[1, -1]])", run(g, &xs, img, &ys), &ys);
    print_matrices("\ncorr2d(X^T, [[1, -1]])", run(g, &ts, tr, &ys), &ys);
    cnn_graph_destroy(g);
    return 0;
}
