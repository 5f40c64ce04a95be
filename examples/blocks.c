/* Two building blocks of modern CNNs, as model files: a depthwise-separable
 * convolution (a 3x3 convolution per channel, groups = channels, then a 1x1
 * across channels) and a residual block (two 3x3 convolutions with batch
 * norm, added to the input). Their parameter counts show why the first is
 * cheap: 32 channels to 64 cost 2,432 parameters instead of 18,496. */
#include "common.h"

static void summarize(const char *title, const char *text, int64_t c, int64_t hw)
{
    cnn_graph *g = model(text, 0, NULL, NULL, NULL);
    cnn_shape xs = {4, {1, c, hw, hw}};
    CHECK(cnn_graph_plan(g, 1, &xs, NULL, 0), cnn_graph_errmsg(g));
    const char *s;
    CHECK(cnn_graph_summary(g, CNN_SUMMARY_TEXT, &s), cnn_graph_errmsg(g));
    printf("%s\n%s\n", title, s);
    cnn_graph_destroy(g);
}

int main(void)
{
    summarize("depthwise-separable block:",
              "dw = Conv2d(32, 32, 3, padding=1, groups=32)(input)\n"
              "pw = Conv2d(32, 64, 1)(dw)\n",
              32, 16);
    summarize("plain 3x3 convolution, for comparison:", "Conv2d(32, 64, 3, padding=1)", 32, 16);
    summarize("residual block:",
              "c1 = Conv2d(64, 64, 3, padding=1, bias=False)(input)\n"
              "n1 = BatchNorm2d(64)(c1)\n"
              "r1 = ReLU()(n1)\n"
              "c2 = Conv2d(64, 64, 3, padding=1, bias=False)(r1)\n"
              "n2 = BatchNorm2d(64)(c2)\n"
              "sum = Add()(n2, input)\n"
              "output = ReLU()(sum)\n",
              64, 8);
    return 0;
}
