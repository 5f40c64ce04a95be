/* Fused layers: a BatchNorm whose output only a ReLU reads runs the ReLU in
 * its own passes (src/graph/plan.c). The fusion must change no bit: every
 * model here runs twice from the same parameters and data, once fused and
 * once with anomaly detection on (which runs every layer on its own), and
 * every layer's output, the input gradient, every parameter gradient and
 * the running statistics must be identical; the plan must fuse exactly the
 * pairs it may. */
#include "test.h"
#include "graph/graph_internal.h"

typedef struct {
    const char *name, *text;
    int ndim;
    int64_t dims[5];
    int fused; /* pairs the plan must fuse */
} model_case;

static const model_case cases[] = {
    {"Sequential: conv, BatchNorm2d, ReLU twice (one without affine), linear",
     "Conv2d(3, 8, 3, padding=1)\nBatchNorm2d(8)\nReLU()\nMaxPool2d(2)\nConv2d(8, 6, 3)\n"
     "BatchNorm2d(6, affine=False)\nReLU()\nFlatten()\nLinear(6 * 3 * 3, 5)\n",
     4, {4, 3, 10, 10}, 2},
    {"BatchNorm1d + ReLU in a classifier, momentum=None",
     "Flatten()\nLinear(12, 20)\nBatchNorm1d(20, momentum=None)\nReLU()\nLinear(20, 3)\n", 2, {7, 12}, 1},
    {"graph: the BatchNorm's output also feeds an Add (not fused), the other pair is",
     "c = Conv2d(2, 4, 3, padding=1)(input)\nb = BatchNorm2d(4)(c)\nr = ReLU()(b)\ns = Add()(r, b)\n"
     "b2 = BatchNorm2d(4)(s)\noutput = ReLU()(b2)\n",
     4, {3, 2, 6, 5}, 1},
    {"graph: the BatchNorm's output is a model output (not fused)",
     "b = BatchNorm2d(3)(input)\nr = ReLU()(b)\noutputs = (r, b)\n", 4, {2, 3, 4, 4}, 0},
    {"BatchNorm3d + ReLU, single-value planes",
     "BatchNorm3d(5)\nReLU()\nConv3d(5, 2, 1)\n", 5, {3, 5, 1, 1, 2}, 1},
};

static int64_t numel(const cnn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

static cnn_graph *build(const model_case *mc, int anomaly, const float *x, int training)
{
    cnn_graph *g;
    cnn_graph_create(&g);
    cnn_shape xs = {mc->ndim, {0}};
    for (int i = 0; i < mc->ndim; i++)
        xs.dims[i] = mc->dims[i];
    if (cnn_graph_parse(g, mc->text, "fusion.txt") || cnn_graph_reset_parameters(g, 7) ||
        cnn_graph_set_threads(g, 2) || cnn_graph_set_detect_anomaly(g, anomaly) ||
        cnn_graph_plan(g, 1, &xs, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        CHECKF(0, "%s: %s", mc->name, cnn_graph_errmsg(g));
        cnn_graph_destroy(g);
        return NULL;
    }
    memcpy(cnn_graph_input_data(g, 0), x, sizeof(float) * (size_t)numel(&xs));
    CHECKF(cnn_graph_forward(g, training) == CNN_OK, "%s: %s", mc->name, cnn_graph_errmsg(g));
    for (int k = 0; k < cnn_graph_output_count(g); k++) {
        cnn_shape ys;
        cnn_graph_output(g, k, NULL, &ys, NULL);
        float *gy = cnn_graph_output_grad(g, k);
        for (int64_t i = 0; i < numel(&ys); i++)
            gy[i] = (float)sin(0.7 * (double)i + k) + (i % 5 == 0 ? 0.0f : 0.25f);
    }
    CHECKF(cnn_graph_backward(g) == CNN_OK, "%s: %s", mc->name, cnn_graph_errmsg(g));
    return g;
}

static int same(const void *a, const void *b, size_t bytes) { return !memcmp(a, b, bytes); }

int main(void)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const model_case *mc = &cases[c];
        for (int training = 1; training >= 0; training--) {
            char name[200];
            snprintf(name, sizeof name, "%s (%s)", mc->name, training ? "training" : "eval");
            TEST(name)
            {
                int64_t n = 1;
                for (int i = 0; i < mc->ndim; i++)
                    n *= mc->dims[i];
                float *x = malloc(sizeof(float) * (size_t)n);
                for (int64_t i = 0; i < n; i++)
                    x[i] = (float)cos(1.3 * (double)i) * (i % 7 == 0 ? 3.0f : 1.0f);
                cnn_graph *a = build(mc, 0, x, training), *b = build(mc, 1, x, training);
                if (a && b) {
                    int pairs = 0;
                    for (int i = 0; i < a->n_nodes; i++)
                        pairs += a->np[i].relu_node >= 0;
                    CHECKF(pairs == mc->fused, "%d pairs fused, expected %d", pairs, mc->fused);
                    CHECK(a->fused_run && !b->fused_run);
                    for (int l = 0; l < cnn_graph_layer_count(a); l++) {
                        void *da, *db;
                        cnn_shape sa, sb;
                        cnn_dtype ta;
                        if (cnn_graph_layer_output(a, l, 0, &da, &sa, &ta) ||
                            cnn_graph_layer_output(b, l, 0, &db, &sb, NULL))
                            continue;
                        CHECKF(same(da, db, (size_t)numel(&sa) * cnn_dtype_size(ta)),
                               "layer %d's output differs fused and unfused", l);
                    }
                    CHECKF(same(cnn_graph_input_grad(a, 0), cnn_graph_input_grad(b, 0), sizeof(float) * (size_t)n),
                           "input gradient differs");
                    for (int p = 0; p < cnn_graph_param_count(a); p++) {
                        cnn_param_info pa, pb;
                        cnn_graph_param(a, p, &pa);
                        cnn_graph_param(b, p, &pb);
                        const size_t bytes = (size_t)numel(&pa.shape) * cnn_dtype_size(pa.dtype);
                        CHECKF(same(pa.data, pb.data, bytes), "%s differs", pa.name);
                        if (pa.kind == CNN_PARAM)
                            CHECKF(same(pa.grad, pb.grad, (size_t)numel(&pa.shape) * sizeof(float)),
                                   "gradient of %s differs", pa.name);
                    }
                }
                cnn_graph_destroy(a);
                cnn_graph_destroy(b);
                free(x);
            }
        }
    }
    return test_finish();
}
