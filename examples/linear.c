/* A fully connected layer: Linear(3, 4) whose weight rows are all 1, 2, 3
 * and 4 and whose bias is 0.5, applied to [[1, 2, 3]], gives
 * [[6.5, 12.5, 18.5, 24.5]]; y = x W^T + b. */
#include "common.h"

int main(void)
{
    float w[12], b[4] = {0.5f, 0.5f, 0.5f, 0.5f}, x[3] = {1, 2, 3};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++)
            w[r * 3 + c] = (float)(r + 1);
    const char *names[] = {"0.weight", "0.bias"};
    cnn_shape shapes[] = {{2, {4, 3}}, {1, {4}}};
    const float *values[] = {w, b};
    cnn_graph *g = model("Linear(3, 4)", 2, names, shapes, values);
    cnn_shape xs = {2, {1, 3}}, ys;
    print_matrices("Linear(3, 4)([[1, 2, 3]])", run(g, &xs, x, &ys), &ys);
    cnn_graph_destroy(g);
    return 0;
}
