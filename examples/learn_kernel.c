/* Learning the edge-detection kernel from data: Conv2d(1, 1, (1, 2),
 * bias=False) is trained on X -> Y = corr2d(X, [[1, -1]]) with the squared
 * error and plain gradient descent (lr 3e-2) for 10 epochs, printing the
 * loss every 2 epochs; the learned kernel ends near [1, -1]. */
#include "common.h"

int main(void)
{
    float x[48], y[42];
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 8; c++)
            x[r * 8 + c] = (c >= 2 && c < 6) ? 0.0f : 1.0f;
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 7; c++)
            y[r * 7 + c] = x[r * 8 + c] - x[r * 8 + c + 1];
    cnn_graph *g;
    cnn_optimizer *opt;
    if (cnn_graph_create(&g) || cnn_optimizer_create(&opt))
        return 1;
    CHECK(cnn_graph_parse(g, "Conv2d(1, 1, kernel_size=(1, 2), bias=False)", "example"), cnn_graph_errmsg(g));
    CHECK(cnn_graph_reset_parameters(g, 1), cnn_graph_errmsg(g));
    /* l = (Y_hat - Y) ** 2, summed, as in the tutorial; W -= lr * grad. */
    CHECK(cnn_graph_set_loss(g, "MSELoss(reduction='sum')"), cnn_graph_errmsg(g));
    CHECK(cnn_optimizer_init(opt, g, "SGD(lr=3e-2)"), cnn_optimizer_errmsg(opt));
    cnn_shape shapes[2] = {{4, {1, 1, 6, 8}}, {4, {1, 1, 6, 7}}};
    CHECK(cnn_graph_plan(g, 2, shapes, NULL, CNN_PLAN_BACKWARD), cnn_graph_errmsg(g));
    memcpy(cnn_graph_input_data(g, 0), x, sizeof x);
    memcpy(cnn_graph_input_data(g, 1), y, sizeof y);
    for (int epoch = 1; epoch <= 10; epoch++) {
        double loss;
        cnn_graph_zero_grad(g);
        CHECK(cnn_graph_forward(g, 1), cnn_graph_errmsg(g));
        CHECK(cnn_graph_loss(g, &loss), cnn_graph_errmsg(g));
        CHECK(cnn_graph_backward(g), cnn_graph_errmsg(g));
        CHECK(cnn_optimizer_step(opt), cnn_optimizer_errmsg(opt));
        if (epoch % 2 == 0)
            printf("epoch %d, loss %.3f\n", epoch, loss);
    }
    cnn_param_info w;
    cnn_graph_param(g, 0, &w);
    const float *k = w.data;
    printf("learned kernel: [%.3f, %.3f] (the target is [1, -1])\n", k[0], k[1]);
    int ok = k[0] > 0.9f && k[0] < 1.1f && k[1] < -0.9f && k[1] > -1.1f;
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    return ok ? 0 : 1;
}
