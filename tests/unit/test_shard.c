/* Shards (src/graph/plan.c, run.c): when a model starts with layers that
 * treat each sample on its own, on batches of CNNI_SHARD_MIN_BATCH or
 * more, those layers run on CNNI_SHARDS parts of the batch, each part
 * through the whole chain on one thread, and the parts' parameter
 * gradients are added in part order.
 *
 * For each model here the plan must shard exactly the layers it may. Then,
 * on every instruction set the machine has, in training and eval mode:
 *  - runs on 1, 2 and 3 threads, with per-layer profiling (which runs the
 *    chain layer by layer) and with anomaly detection (which runs every
 *    layer apart and checks it) must agree in every bit: outputs, the input
 *    gradient and every parameter gradient, over two steps without zeroing
 *    the gradients (the parts' gradient copies must be zero again after a
 *    step);
 *  - the same model with the chain run on the whole batch at once (the
 *    plan's shard_end cleared) must agree within float rounding: a part
 *    reading or writing the wrong rows, or a lost part's gradient, is far
 *    off. */
#include "test.h"
#include "graph/graph_internal.h"
#include "core/cpu.h"

typedef struct {
    const char *name, *text;
    int ndim;
    int64_t dims[5];
    int shard_end; /* nodes the plan must shard */
} shard_case;

static const shard_case cases[] = {
    {"LeNet-5 (every layer; the sigmoids run their average pooling)",
     "Conv2d(1, 6, kernel_size=5, padding=2)\nSigmoid()\nAvgPool2d(kernel_size=2, stride=2)\n"
     "Conv2d(6, 16, kernel_size=5)\nSigmoid()\nAvgPool2d(kernel_size=2, stride=2)\nFlatten()\n"
     "Linear(16 * 5 * 5, 120)\nSigmoid()\nLinear(120, 84)\nSigmoid()\nLinear(84, 10)\n",
     4, {64, 1, 28, 28}, 12},
    {"odd batch: Conv1d, PReLU per channel, AvgPool1d, Flatten, Linear",
     "Conv1d(3, 5, 3, padding=1)\nPReLU(5)\nAvgPool1d(2)\nFlatten()\nLinear(5 * 6, 4)\nTanh()\n", 3, {33, 3, 12}, 6},
    {"transposed, grouped, strided and dilated convolutions, adaptive pooling",
     "ConvTranspose2d(2, 4, 3, stride=2)\nLeakyReLU(0.1)\nConv2d(4, 6, 3, stride=2, dilation=2, groups=2)\n"
     "ELU()\nAdaptiveAvgPool2d(2)\nFlatten()\nLinear(24, 3)\n",
     4, {37, 2, 5, 6}, 7},
    {"stops at a BatchNorm (it couples the samples)",
     "Conv2d(2, 4, 3)\nReLU()\nBatchNorm2d(4)\nReLU()\nFlatten()\nLinear(4 * 4 * 4, 3)\n", 4, {40, 2, 6, 6}, 2},
    {"stops at Dropout (random)", "Linear(10, 12)\nGELU()\nDropout(0.3)\nLinear(12, 2)\n", 2, {48, 10}, 2},
    {"stops at a max pooling that keeps its indices for the backward",
     "Conv2d(1, 3, 3)\nSiLU()\nMaxPool2d(2)\nFlatten()\nLinear(3 * 3 * 3, 2)\n", 4, {32, 1, 8, 8}, 2},
    {"a batch below the smallest split: none", "Linear(10, 12)\nTanh()\nLinear(12, 2)\n", 2, {31, 10}, 0},
    {"the input read twice (a graph): none",
     "a = Linear(6, 4)(input)\nb = Linear(6, 4)(input)\noutput = Add()(a, b)\n", 2, {40, 6}, 0},
    {"a branch after the chain: the chain's last output feeds two layers",
     "h = Linear(6, 8)(input)\nr = Softplus()(h)\na = Linear(8, 3)(r)\nb = Linear(8, 3)(r)\noutput = Add()(a, b)\n",
     2, {34, 6}, 2},
    {"one sample of 40 features (dim 0 is no batch): none", "Linear(40, 3)\nReLU()\n", 1, {40}, 0},
};

static int64_t numel(const cnn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

enum { WHOLE = 1, PROFILE = 2, ANOMALY = 4 };

/* Two steps (forward, output gradients, backward) without zeroing the
 * parameter gradients, from the same parameters and data. */
static cnn_graph *run(const shard_case *sc, const float *x, const char *isa, int threads, unsigned how,
                      int training)
{
    cnn_graph *g;
    cnn_graph_create(&g);
    cnn_shape xs = {sc->ndim, {0}};
    for (int i = 0; i < sc->ndim; i++)
        xs.dims[i] = sc->dims[i];
    if (cnn_graph_parse(g, sc->text, "shard.txt") || cnn_graph_reset_parameters(g, 11) ||
        cnn_graph_set_threads(g, threads) || cnn_graph_set_isa(g, isa) ||
        cnn_graph_set_detect_anomaly(g, (how & ANOMALY) != 0) ||
        cnn_graph_plan(g, 1, &xs, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        CHECKF(0, "%s: %s", sc->name, cnn_graph_errmsg(g));
        cnn_graph_destroy(g);
        return NULL;
    }
    CHECKF(g->shard_end == sc->shard_end, "%d nodes sharded, expected %d", g->shard_end, sc->shard_end);
    if (how & WHOLE)
        g->shard_end = 0;
    cnn_graph_set_profiling(g, (how & PROFILE) != 0);
    cnn_graph_zero_grad(g);
    for (int step = 0; step < 2; step++) {
        memcpy(cnn_graph_input_data(g, 0), x + step, sizeof(float) * (size_t)numel(&xs));
        CHECKF(cnn_graph_forward(g, training) == CNN_OK, "%s", cnn_graph_errmsg(g));
        for (int k = 0; k < cnn_graph_output_count(g); k++) {
            cnn_shape ys;
            cnn_graph_output(g, k, NULL, &ys, NULL);
            float *gy = cnn_graph_output_grad(g, k);
            for (int64_t i = 0; i < numel(&ys); i++)
                gy[i] = (float)sin(0.7 * (double)i + k + step) + 0.25f;
        }
        CHECKF(cnn_graph_backward(g) == CNN_OK, "%s", cnn_graph_errmsg(g));
    }
    return g;
}

/* Bitwise equal, or (tol > 0) within tol of each other relative to the
 * larger magnitude of either array (at least 1). */
static void compare(const char *what, const float *a, const float *b, int64_t n, double tol)
{
    if (tol == 0) {
        int64_t i = 0;
        while (i < n && !memcmp(&a[i], &b[i], sizeof(float)))
            i++;
        CHECKF(i == n, "%s differs at %lld: %.9g vs %.9g", what, (long long)i, i < n ? a[i] : 0.0,
               i < n ? b[i] : 0.0);
        return;
    }
    double big = 1, worst = 0;
    for (int64_t i = 0; i < n; i++)
        big = fmax(big, fmax(fabs(a[i]), fabs(b[i])));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / big);
    CHECKF(worst <= tol, "%s: %.3g from the whole batch's", what, worst);
}

/* Outputs, input gradient and parameter gradients of a against b. */
static void compare_runs(const cnn_graph *a0, const cnn_graph *b0, int64_t n_in, double tol)
{
    cnn_graph *a = (cnn_graph *)a0, *b = (cnn_graph *)b0;
    for (int k = 0; k < cnn_graph_output_count(a); k++) {
        void *da, *db;
        cnn_shape s;
        cnn_graph_output(a, k, &da, &s, NULL);
        cnn_graph_output(b, k, &db, NULL, NULL);
        compare("output", da, db, numel(&s), tol);
    }
    compare("input gradient", cnn_graph_input_grad(a, 0), cnn_graph_input_grad(b, 0), n_in, tol);
    for (int p = 0; p < cnn_graph_param_count(a); p++) {
        cnn_param_info pa, pb;
        cnn_graph_param(a, p, &pa);
        cnn_graph_param(b, p, &pb);
        if (pa.kind != CNN_PARAM)
            continue;
        char what[200];
        snprintf(what, sizeof what, "gradient of %s", pa.name);
        compare(what, pa.grad, pb.grad, numel(&pa.shape), tol);
    }
}

int main(void)
{
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const shard_case *sc = &cases[c];
        for (int r = 0; r < 6; r++) {
            const int training = r % 2 == 0;
            const char *isa = isas[r / 2];
            if (r / 2 > (int)cnni_cpu_best_isa())
                continue; /* a set this CPU lacks */
            char name[300];
            snprintf(name, sizeof name, "%s (%s, %s)", sc->name, training ? "training" : "eval", isa);
            TEST(name)
            {
                int64_t n = 1;
                for (int i = 0; i < sc->ndim; i++)
                    n *= sc->dims[i];
                float *x = malloc(sizeof(float) * (size_t)(n + 1));
                for (int64_t i = 0; i < n + 1; i++)
                    x[i] = (float)cos(1.3 * (double)i) * (i % 7 == 0 ? 2.0f : 1.0f);
                cnn_graph *one = run(sc, x, isa, 1, 0, training);
                cnn_graph *others[4] = {run(sc, x, isa, 2, 0, training), run(sc, x, isa, 3, 0, training),
                                        run(sc, x, isa, 2, PROFILE, training),
                                        run(sc, x, isa, 2, ANOMALY, training)};
                cnn_graph *whole = run(sc, x, isa, 2, WHOLE, training);
                if (one) {
                    for (int k = 0; k < 4; k++)
                        if (others[k])
                            compare_runs(one, others[k], n, 0);
                    if (whole)
                        compare_runs(one, whole, n, 1e-5);
                    if (one->shard_grad)
                        for (size_t k = 0; k < one->p_cap * (CNNI_SHARDS - 1); k++)
                            if (one->shard_grad[k] != 0.0f) {
                                CHECKF(0, "a part's gradient copy is not zero after the step (float %zu)", k);
                                break;
                            }
                }
                cnn_graph_destroy(one);
                for (int k = 0; k < 4; k++)
                    cnn_graph_destroy(others[k]);
                cnn_graph_destroy(whole);
                free(x);
            }
        }
    }
    TEST("a plan without backward: the forward in halves, the same bits on 1 and 2 threads, close to the whole batch")
    {
        const shard_case *sc = &cases[0]; /* LeNet-5 */
        cnn_shape xs = {sc->ndim, {0}};
        for (int i = 0; i < sc->ndim; i++)
            xs.dims[i] = sc->dims[i];
        const int64_t n = numel(&xs);
        float *x = malloc(sizeof(float) * (size_t)n), *outs[3] = {NULL, NULL, NULL};
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)cos(0.7 * (double)i);
        int64_t ny = 0;
        for (int k = 0; k < 3; k++) { /* 1 thread, 2 threads, 2 threads whole */
            cnn_graph *g;
            cnn_graph_create(&g);
            if (cnn_graph_parse(g, sc->text, "shard.txt") || cnn_graph_reset_parameters(g, 11) ||
                cnn_graph_set_threads(g, k ? 2 : 1) || cnn_graph_plan(g, 1, &xs, NULL, 0)) {
                CHECKF(0, "%s", cnn_graph_errmsg(g));
                cnn_graph_destroy(g);
                continue;
            }
            CHECKF(g->shard_end == sc->shard_end && !g->shard_grad, "%d nodes sharded, gradient copy %p", g->shard_end,
                   (void *)g->shard_grad);
            if (k == 2)
                g->shard_end = 0;
            memcpy(cnn_graph_input_data(g, 0), x, sizeof(float) * (size_t)n);
            CHECKF(cnn_graph_forward(g, 0) == CNN_OK, "%s", cnn_graph_errmsg(g));
            void *y;
            cnn_shape ys;
            cnn_graph_output(g, 0, &y, &ys, NULL);
            ny = numel(&ys);
            outs[k] = malloc(sizeof(float) * (size_t)ny);
            memcpy(outs[k], y, sizeof(float) * (size_t)ny);
            CHECK(cnn_graph_backward(g) == CNN_ERR_STATE); /* not planned for it */
            cnn_graph_destroy(g);
        }
        if (outs[0] && outs[1] && outs[2]) {
            compare("output (1 and 2 threads)", outs[0], outs[1], ny, 0);
            compare("output", outs[1], outs[2], ny, 1e-5);
        }
        for (int k = 0; k < 3; k++)
            free(outs[k]);
        free(x);
    }
    return test_finish();
}
