/* Output shapes under padding and stride, from the formula
 * floor((H + 2p - d(k - 1) - 1) / s + 1): an 8x8 input stays 8x8 with
 * k=3, p=1 and with k=(5, 3), p=(2, 1); k=3, p=1, s=2 halves it to 4x4;
 * k=(3, 5), p=(0, 1), s=(3, 4) gives 2x2. */
#include "common.h"

static void show(const char *module)
{
    cnn_graph *g;
    if (cnn_graph_create(&g))
        exit(1);
    CHECK(cnn_graph_parse(g, module, "example"), cnn_graph_errmsg(g));
    cnn_shape xs = {4, {1, 1, 8, 8}}, ys;
    CHECK(cnn_graph_plan(g, 1, &xs, NULL, 0), cnn_graph_errmsg(g));
    CHECK(cnn_graph_output(g, 0, NULL, &ys, NULL), cnn_graph_errmsg(g));
    printf("%-52s 8x8 -> %lldx%lld\n", module, (long long)ys.dims[2], (long long)ys.dims[3]);
    cnn_graph_destroy(g);
}

int main(void)
{
    show("Conv2d(1, 1, kernel_size=3, padding=1)");
    show("Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1))");
    show("Conv2d(1, 1, kernel_size=3, padding=1, stride=2)");
    show("Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))");
    return 0;
}
