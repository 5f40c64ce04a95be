/* Helper of test_crash.py: checkpoints written in a loop, to be killed.
 *   ck_loop write CK   saves a checkpoint of a small trained model over CK
 *                      again and again, each with the next step count, and
 *                      prints "saved N" (flushed) after save N returned;
 *   ck_loop check CK   loads CK into the same model and prints "step N".
 * Each save changes the weights too (one training step), so a file mixing
 * two saves would not load or would hold the wrong weights for its step:
 * check recomputes the weights of step N and compares. */
#include <cnn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *MODEL = "Conv2d(1, 8, 3, padding=1)\nReLU()\nFlatten()\nLinear(512, 64)\nReLU()\n"
                           "Linear(64, 10)\n";

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "ck_loop: %s: %s\n", what, msg);
    return 1;
}

static int setup(cnn_graph **g, cnn_optimizer **opt)
{
    cnn_shape shapes[2] = {{4, {4, 1, 8, 8}}, {1, {4}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    if (cnn_graph_create(g) || cnn_optimizer_create(opt))
        return fail("setup", "out of memory");
    if (cnn_graph_parse(*g, MODEL, "ck_loop") || cnn_graph_set_loss(*g, "CrossEntropyLoss()") ||
        cnn_graph_reset_parameters(*g, 5) || cnn_graph_plan(*g, 2, shapes, dtypes, CNN_PLAN_BACKWARD))
        return fail("setup", cnn_graph_errmsg(*g));
    if (cnn_optimizer_init(*opt, *g, "Adam(lr=0.001)"))
        return fail("setup", cnn_optimizer_errmsg(*opt));
    float *x = cnn_graph_input_data(*g, 0);
    int64_t *y = cnn_graph_input_data(*g, 1);
    for (int i = 0; i < 4 * 64; i++)
        x[i] = (float)((i * 13) % 17) / 17.0f;
    for (int i = 0; i < 4; i++)
        y[i] = i * 3;
    return 0;
}

static int step(cnn_graph *g, cnn_optimizer *opt)
{
    double loss;
    cnn_graph_zero_grad(g);
    if (cnn_graph_forward(g, 1) || cnn_graph_loss(g, &loss) || cnn_graph_backward(g))
        return fail("step", cnn_graph_errmsg(g));
    if (cnn_optimizer_step(opt))
        return fail("step", cnn_optimizer_errmsg(opt));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "check"))) {
        fprintf(stderr, "usage: ck_loop write|check CHECKPOINT\n");
        return 2;
    }
    cnn_graph *g;
    cnn_optimizer *opt;
    if (setup(&g, &opt))
        return 1;
    cnn_progress p;
    memset(&p, 0, sizeof p);
    if (!strcmp(argv[1], "write")) {
        for (;;) {
            if (step(g, opt))
                return 1;
            p.step++;
            if (cnn_checkpoint_save(g, opt, &p, argv[2]))
                return fail(argv[2], cnn_graph_errmsg(g));
            printf("saved %lld\n", (long long)p.step);
            fflush(stdout);
        }
    }
    if (cnn_checkpoint_load(g, opt, &p, argv[2]))
        return fail(argv[2], cnn_graph_errmsg(g));
    /* The weights of that step, recomputed from the start. */
    cnn_graph *ref;
    cnn_optimizer *ropt;
    if (setup(&ref, &ropt))
        return 1;
    for (int64_t s = 0; s < p.step; s++)
        if (step(ref, ropt))
            return 1;
    for (int i = 0; i < cnn_graph_param_count(g); i++) {
        cnn_param_info a, b;
        cnn_graph_param(g, i, &a);
        cnn_graph_param(ref, i, &b);
        size_t n = cnn_dtype_size(a.dtype);
        for (int d = 0; d < a.shape.ndim; d++)
            n *= (size_t)a.shape.dims[d];
        if (memcmp(a.data, b.data, n) != 0)
            return fail(argv[2], "the weights differ from those of the step the checkpoint names");
    }
    printf("step %lld\n", (long long)p.step);
    cnn_optimizer_destroy(ropt);
    cnn_graph_destroy(ref);
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    return 0;
}
