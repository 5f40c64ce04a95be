/* Fused layers: a BatchNorm whose output only a ReLU reads runs the ReLU in
 * its own passes, and a max pooling that alone reads that ReLU's output
 * too; an elementwise activation runs the average pooling that alone reads
 * its output (src/graph/plan.c). The fusion must change no bit: every model here
 * runs twice from the same parameters and data, once fused and once with
 * anomaly detection on (which runs every layer on its own), on every
 * instruction set the machine has, and every layer's output (the ones a
 * fused pooling skipped are written on request, in either order), the
 * input gradient, every parameter gradient and the running statistics must
 * be identical; the plan must fuse exactly the layers it may.
 *
 * Without an input gradient, a Conv2d whose output only a BatchNorm2d reads
 * has its weight gradient taken in the BatchNorm's backward, plane by plane
 * (vector instruction sets only): there every output, input-free gradient
 * and statistic must still be identical, and the convolution's weight and
 * bias gradients, float sums over the batch's planes taken in another
 * order, within 1e-6 sqrt(input elements) of the unfused ones, relative to
 * their largest magnitude (the bias's, a sum of BatchNorm input gradients,
 * nearly cancels).
 *
 * Otherwise a convolution with a bias whose output only a BatchNorm reads
 * has its bias gradient summed by the BatchNorm from the input gradient it
 * writes (every instruction set): that bias gradient is held to the same
 * tolerance, every other value must still be identical. In eval mode the
 * sum does not cancel, so a sum over the wrong planes or none fails.
 *
 * And a convolution whose output only a sigmoid or tanh reads, run with
 * its 2x2 average pooling, takes their backward (act_taken_cases). */
#include "test.h"
#include "graph/graph_internal.h"
#include "core/cpu.h"

typedef struct {
    const char *name, *text;
    int ndim;
    int64_t dims[5];
    int fused;  /* pairs the plan must fuse */
    int pooled; /* of which with their max pooling */
    int act_pooled; /* activations run with their average pooling */
    int bias_taken; /* convolutions whose bias gradient their BatchNorm takes */
} model_case;

static const model_case cases[] = {
    {"Sequential: conv, BatchNorm2d, ReLU twice (one without affine), linear",
     "Conv2d(3, 8, 3, padding=1)\nBatchNorm2d(8)\nReLU()\nMaxPool2d(2)\nConv2d(8, 6, 3)\n"
     "BatchNorm2d(6, affine=False)\nReLU()\nFlatten()\nLinear(6 * 3 * 3, 5)\n",
     4, {4, 3, 10, 10}, 2, 1, 0, 2},
    {"BatchNorm1d + ReLU in a classifier, momentum=None",
     "Flatten()\nLinear(12, 20)\nBatchNorm1d(20, momentum=None)\nReLU()\nLinear(20, 3)\n", 2, {7, 12}, 1, 0, 0, 0},
    {"graph: the BatchNorm's output also feeds an Add (not fused), the other pair is",
     "c = Conv2d(2, 4, 3, padding=1)(input)\nb = BatchNorm2d(4)(c)\nr = ReLU()(b)\ns = Add()(r, b)\n"
     "b2 = BatchNorm2d(4)(s)\noutput = ReLU()(b2)\n",
     4, {3, 2, 6, 5}, 1, 0, 0, 1},
    {"graph: the BatchNorm's output is a model output (not fused)",
     "b = BatchNorm2d(3)(input)\nr = ReLU()(b)\noutputs = (r, b)\n", 4, {2, 3, 4, 4}, 0, 0, 0, 0},
    {"BatchNorm3d + ReLU, single-value planes",
     "BatchNorm3d(5)\nReLU()\nConv3d(5, 2, 1)\n", 5, {3, 5, 1, 1, 2}, 1, 0, 0, 0},
    {"pooled: odd planes (the last row and column in no window), 3x3 and 2x1 windows, no affine",
     "Conv2d(2, 5, 3, padding=1)\nBatchNorm2d(5)\nReLU()\nMaxPool2d(2)\nBatchNorm2d(5, affine=False)\nReLU()\n"
     "MaxPool2d(3)\nBatchNorm2d(5)\nReLU()\nMaxPool2d((2, 1))\nFlatten()\n",
     4, {3, 2, 23, 37}, 3, 3, 0, 1},
    {"pooled: 1-d, MaxPool1d(4) after BatchNorm1d on (N, C, L)",
     "Conv1d(3, 4, 3)\nBatchNorm1d(4)\nReLU()\nMaxPool1d(4)\nFlatten()\nLinear(4 * 7, 2)\n", 3, {5, 3, 30}, 1, 1, 0, 1},
    {"not pooled: overlapping, padded, ceil-mode and dilated windows, and one plane too large",
     "BatchNorm2d(2)\nReLU()\nMaxPool2d(2, ceil_mode=True)\nBatchNorm2d(2)\nReLU()\nMaxPool2d(3, stride=2)\n"
     "BatchNorm2d(2)\nReLU()\nMaxPool2d(2, padding=1)\nBatchNorm2d(2)\nReLU()\nMaxPool2d(2, dilation=2)\n",
     4, {2, 2, 30, 31}, 4, 0, 0, 0},
    {"not pooled: a plane past the largest",
     "BatchNorm2d(1)\nReLU()\nMaxPool2d(2)\n", 4, {2, 1, 65, 64}, 1, 0, 0, 0},
    {"pooled at the largest plane (64 x 64); not when the ReLU's output has a second reader",
     "b = BatchNorm2d(1)(input)\nr = ReLU()(b)\np = MaxPool2d(2)(r)\nb2 = BatchNorm2d(1)(input)\n"
     "r2 = ReLU()(b2)\np2 = MaxPool2d(2)(r2)\nc = Conv2d(1, 1, 2, stride=2)(r2)\noutputs = (p, p2, c)\n",
     4, {2, 1, 64, 64}, 2, 1, 0, 0},
    {"pooled: the pooling's output feeds two layers, and the graph returns it",
     "b = BatchNorm2d(3)(input)\nr = ReLU()(b)\np = MaxPool2d(2)(r)\nq = Conv2d(3, 2, 1)(p)\n"
     "outputs = (p, q)\n",
     4, {2, 3, 6, 6}, 1, 1, 0, 0},
    {"LeNet-5's layers: Sigmoid runs the AvgPool2d(2) after it; 10 x 10 planes (a task's span ends inside one)",
     "Conv2d(1, 6, 5, padding=2)\nSigmoid()\nAvgPool2d(kernel_size=2, stride=2)\nConv2d(6, 16, 5)\nSigmoid()\n"
     "AvgPool2d(kernel_size=2, stride=2)\nFlatten()\nLinear(16 * 5 * 5, 10)\n",
     4, {70, 1, 28, 28}, 0, 0, 2, 0},
    {"activations with their average pooling: odd planes, 3x3 and 2x1 windows, 1-d, tiny planes",
     "Conv2d(2, 5, 3, padding=1)\nTanh()\nAvgPool2d(2)\nReLU()\nAvgPool2d(3)\nELU(alpha=0.7)\n"
     "AvgPool2d((2, 1))\nLeakyReLU(0.2)\nAvgPool2d(1)\nFlatten()\n",
     4, {3, 2, 23, 37}, 0, 0, 4, 0},
    {"AvgPool1d after SiLU and Hardswish; 3x3 planes (9 values, spans end inside planes)",
     "Conv1d(3, 4, 3)\nSiLU()\nAvgPool1d(4)\nHardswish()\nAvgPool1d(1)\nFlatten()\n", 3, {41, 3, 30}, 0, 0, 2, 0},
    {"not fused: padded, overlapping, ceil-mode windows, a divisor, a second reader, in place, GELU; fused: a pooling whose output is read twice",
     "a = Sigmoid()(input)\np = AvgPool2d(2, padding=1)(a)\nb = Tanh()(input)\nq = AvgPool2d(3, stride=2)(b)\n"
     "c = Sigmoid()(input)\nr = AvgPool2d(2, ceil_mode=True)(c)\nd = Sigmoid()(input)\n"
     "s = AvgPool2d(2, divisor_override=3)(d)\ne = Sigmoid()(input)\nt = AvgPool2d(2)(e)\nu = Add()(t, t)\n"
     "f = ReLU(inplace=True)(input)\nv = AvgPool2d(2)(f)\nh = GELU()(input)\nw = AvgPool2d(2)(h)\n"
     "k = Tanh()(input)\nz = AvgPool2d(2)(k)\nm = Add()(k, k)\noutputs = (p, q, r, s, u, v, w, z, m)\n",
     4, {2, 2, 9, 9}, 0, 0, 1, 0},
};

/* Models planned without an input gradient: conv_fused convolutions must
 * have their weight gradient fused into their BatchNorm (on AVX2 and
 * AVX-512). */
typedef struct {
    const char *name, *text;
    int ndim;
    int64_t dims[5];
    int conv_fused;
    int bias_taken[2]; /* convolutions whose bias gradient alone their BatchNorm takes: AVX2 and AVX-512, portable */
} wgrad_case;

static const wgrad_case wgrad_cases[] = {
    {"first conv 1 -> 8, 3x3, before BatchNorm, ReLU, MaxPool; the second conv needs its input's gradient",
     "Conv2d(1, 8, 3, padding=1)\nBatchNorm2d(8)\nReLU()\nMaxPool2d(2)\nConv2d(8, 4, 3)\nBatchNorm2d(4)\nReLU()\n"
     "Flatten()\n",
     4, {5, 1, 12, 12}, 1, {1, 2}},
    {"3 -> 6 channels, 5x5 without bias, odd planes, BatchNorm alone",
     "Conv2d(3, 6, 5, padding=2, bias=False)\nBatchNorm2d(6)\nFlatten()\n", 4, {3, 3, 17, 23}, 1, {0, 0}},
    {"uneven padding (0, 2), padding='same' 5x5, 2 input channels, planes 1 wide",
     "a = Conv2d(2, 3, 3, padding=(0, 2))(input)\nb = BatchNorm2d(3)(a)\nc = Conv2d(2, 3, 5, padding='same')(input)\n"
     "d = BatchNorm2d(3, affine=False)(c)\ne = ReLU()(d)\noutputs = (b, e)\n",
     4, {4, 2, 9, 1}, 2, {0, 2}},
    {"the largest plane (64 x 64) fused; not past it, nor at stride 2, dilation 2, 5 input channels, 7x7, "
     "reflect padding, a second reader, a model output",
     "a = Conv2d(1, 2, 3, padding=1)(input)\nb = BatchNorm2d(2)(a)\n"
     "c = Conv2d(1, 2, 3, padding=(2, 1))(input)\nd = BatchNorm2d(2)(c)\n"
     "e = Conv2d(1, 2, 3, stride=2)(input)\nf = BatchNorm2d(2)(e)\n"
     "g = Conv2d(1, 2, 3, dilation=2)(input)\nh = BatchNorm2d(2)(g)\n"
     "i = Conv2d(1, 5, 1)(input)\nj = Conv2d(5, 2, 3)(i)\nk = BatchNorm2d(2)(j)\n"
     "l = Conv2d(1, 2, 7)(input)\nm = BatchNorm2d(2)(l)\n"
     "n = Conv2d(1, 2, 3, padding=1, padding_mode='reflect')(input)\no = BatchNorm2d(2)(n)\n"
     "p = Conv2d(1, 2, 3)(input)\nq = BatchNorm2d(2)(p)\nr = ReLU()(p)\n"
     "s = Conv2d(1, 2, 3)(input)\nt = BatchNorm2d(2)(s)\n"
     "outputs = (b, d, f, h, k, m, o, q, r, s, t)\n",
     4, {2, 1, 64, 64}, 1, {6, 7}},
};

static int64_t numel(const cnn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

static cnn_graph *build(const model_case *mc, int anomaly, const float *x, int training, const char *isa,
                        unsigned flags)
{
    cnn_graph *g;
    cnn_graph_create(&g);
    cnn_shape xs = {mc->ndim, {0}};
    for (int i = 0; i < mc->ndim; i++)
        xs.dims[i] = mc->dims[i];
    if (cnn_graph_parse(g, mc->text, "fusion.txt") || cnn_graph_reset_parameters(g, 7) ||
        cnn_graph_set_threads(g, 2) || cnn_graph_set_isa(g, isa) || cnn_graph_set_detect_anomaly(g, anomaly) ||
        cnn_graph_plan(g, 1, &xs, NULL, flags)) {
        CHECKF(0, "%s: %s", mc->name, cnn_graph_errmsg(g));
        cnn_graph_destroy(g);
        return NULL;
    }
    /* Parameters off their defaults (a BatchNorm's weight 1 and bias 0 would
     * make a * d + b round the same with and without a fused multiply-add). */
    for (int p = 0; p < cnn_graph_param_count(g); p++) {
        cnn_param_info pi;
        cnn_graph_param(g, p, &pi);
        if (pi.kind != CNN_PARAM)
            continue;
        float *d = pi.data;
        for (int64_t i = 0; i < numel(&pi.shape); i++)
            d[i] += (float)(0.37 * sin(2.1 * (double)i + p));
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

/* Whether parameter `name` has its gradient taken by a BatchNorm in g's
 * plan: any of a convolution's with its weight gradient fused, or the bias
 * of one with its bias gradient taken. */
static int taken_by_norm(const cnn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const size_t k = strlen(g->nodes[i].name);
        if (strncmp(name, g->nodes[i].name, k) || name[k] != '.')
            continue;
        if (g->np[i].wgrad_into >= 0 || (g->np[i].bgrad_into >= 0 && !strcmp(name + k + 1, "bias")))
            return 1;
    }
    return 0;
}

/* The gradient a fused run took in another order: within 1e-6 sqrt(n) of
 * the unfused one, relative to its largest magnitude (at least 1). */
static void check_close(const cnn_param_info *pa, const cnn_param_info *pb, int64_t k, int64_t n)
{
    double big = 1, worst = 0;
    for (int64_t i = 0; i < k; i++)
        big = fmax(big, fabs(pb->grad[i]));
    for (int64_t i = 0; i < k; i++)
        worst = fmax(worst, fabs((double)pa->grad[i] - pb->grad[i]) / big);
    CHECKF(worst <= 1e-6 * sqrt((double)n), "gradient of %s: %.3g from the unfused one", pa->name, worst);
}

static int count_bias_taken(const cnn_graph *g)
{
    int taken = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->np[i].bgrad_node >= 0) {
            taken++;
            CHECK(g->np[g->np[i].bgrad_node].bgrad_into == i);
        }
    return taken;
}

/* A convolution taking its sigmoid's or tanh's backward (the activation
 * run with its 2x2 average pooling; AVX-512): dy made as the kernels read
 * it. Each model runs fused and with the plan's links between the
 * convolutions and their activations undone (every other fusion kept), on
 * 2 threads; every output and gradient must be the same bits. */
typedef struct {
    const char *name, *text;
    int64_t dims[4];
    int input_grad;
    int taken;     /* activations taken by their convolution, on AVX-512 */
    int poison;    /* NaN and infinity in the input: the reference kernels' path */
    int force;     /* the links set by hand where the kernels do not serve the batch */
    int no_out_grad; /* no gradient given for the outputs (then zero) */
} act_case;

static const char lenet[] = "Conv2d(1, 6, 5, padding=2)\nSigmoid()\nAvgPool2d(kernel_size=2, stride=2)\n"
                            "Conv2d(6, 16, 5)\nSigmoid()\nAvgPool2d(kernel_size=2, stride=2)\nFlatten()\n"
                            "Linear(16 * 5 * 5, 120)\nSigmoid()\nLinear(120, 10)\n";

static const act_case act_cases[] = {
    {"LeNet-5, 70 images (halves of 35 on the two threads)", lenet, {70, 1, 28, 28}, 0, 2, 0, 0, 0},
    {"LeNet-5 with the input gradient: conv2 only (conv1's input gradient runs other kernels)", lenet,
     {40, 1, 28, 28}, 1, 1, 0, 0, 0},
    {"LeNet-5, NaN and infinity in two images, with the input gradient (the other images' stays finite)", lenet,
     {37, 1, 28, 28}, 1, 1, 1, 0, 0},
    {"Tanh, 2 -> 4 -> 6 channels (groups 2), with the input gradient, 20 images (one batch)",
     "Conv2d(2, 4, 5)\nTanh()\nAvgPool2d(2)\nConv2d(4, 6, 5, padding=2, groups=2)\nTanh()\nAvgPool2d(2)\nFlatten()\n",
     {20, 2, 16, 16}, 1, 2, 0, 0, 0},
    {"not taken: odd planes (13 x 13, the pooling's last row and column in no window)",
     "Conv2d(1, 3, 5, padding=2)\nSigmoid()\nAvgPool2d(2)\nFlatten()\n", {16, 1, 13, 13}, 0, 0, 0, 0, 0},
    {"not taken: 3x3 windows, a second reader, ReLU, a model output; taken: the pooling a model output",
     "d = Conv2d(1, 2, 5, padding=2)(input)\ne = Sigmoid()(d)\nf = AvgPool2d(3)(e)\n"
     "g = Conv2d(1, 2, 5, padding=2)(input)\nh = Tanh()(g)\ni = AvgPool2d(2)(h)\nj = Add()(g, g)\n"
     "k = Conv2d(1, 2, 5, padding=2)(input)\nl = ReLU()(k)\nm = AvgPool2d(2)(l)\n"
     "n = Conv2d(1, 2, 5, padding=2)(input)\no = Sigmoid()(n)\np = AvgPool2d(2)(o)\n"
     "q = Conv2d(1, 2, 5, padding=2)(input)\nr = Sigmoid()(q)\ns = AvgPool2d(2)(r)\n"
     "outputs = (f, i, j, m, p, n, s)\n",
     {16, 1, 12, 12}, 0, 1, 0, 0, 0},
    {"the pooled value read by nothing (its gradient zero, written by no layer); the one beside it an output",
     "a = Conv2d(1, 2, 5, padding=2)(input)\nb = Sigmoid()(a)\nc = AvgPool2d(2)(b)\n"
     "d = Conv2d(1, 2, 5, padding=2)(input)\ne = Tanh()(d)\noutput = AvgPool2d(2)(e)\n",
     {16, 1, 12, 12}, 0, 2, 0, 0, 0},
    {"8 images (too few for the kernels), linked by hand: the convolution writes the gradient itself", lenet,
     {8, 1, 28, 28}, 0, 2, 0, 1, 0},
    {"Sequential, 40 images (sharded), no gradient given for the pooled output: the convolution reads zeros",
     "Conv2d(1, 2, 5, padding=2)\nSigmoid()\nAvgPool2d(2)\n", {40, 1, 12, 12}, 0, 1, 0, 0, 1},
};

static cnn_graph *build_act(const act_case *ac, int undo, const char *isa)
{
    cnn_graph *g;
    cnn_graph_create(&g);
    cnn_shape xs = {4, {ac->dims[0], ac->dims[1], ac->dims[2], ac->dims[3]}};
    const unsigned fl = CNN_PLAN_BACKWARD | (ac->input_grad ? CNN_PLAN_INPUT_GRAD : 0);
    if (cnn_graph_parse(g, ac->text, "act.txt") || cnn_graph_reset_parameters(g, 11) || cnn_graph_set_threads(g, 2) ||
        cnn_graph_set_isa(g, isa) || cnn_graph_plan(g, 1, &xs, NULL, fl)) {
        CHECKF(0, "%s: %s", ac->name, cnn_graph_errmsg(g));
        cnn_graph_destroy(g);
        return NULL;
    }
    for (int i = 0; undo && i < g->n_nodes; i++)
        g->np[i].agrad_node = g->np[i].agrad_into = -1;
    for (int j = 0; ac->force && !undo && j < g->n_nodes; j++)
        if (g->np[j].pool_node >= 0 && g->np[j].relu_node < 0) { /* LeNet's: conv, activation, pooling */
            const int c = g->vals[g->nodes[j].in[0]].producer;
            CHECK(g->np[c].agrad_node < 0);
            g->np[c].agrad_node = j;
            g->np[j].agrad_into = c;
        }
    float *x = cnn_graph_input_data(g, 0);
    const int64_t n = numel(&xs);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(1.5 * cos(1.3 * (double)i) + 0.3 * sin(0.05 * (double)i));
    if (ac->poison) {
        x[n / 3] = NAN;               /* an image of one block */
        x[n - 100] = INFINITY;        /* of the last, partial block */
    }
    CHECKF(cnn_graph_forward(g, 1) == CNN_OK, "%s: %s", ac->name, cnn_graph_errmsg(g));
    /* every value's gradient holds NaN, as an arena reused at other offsets
     * holds stale bytes: a gradient read before it is written shows */
    for (int i = 0; i < g->n_vals; i++)
        if (g->vals[i].grad)
            for (int64_t e = 0; e < numel(&g->vals[i].t.shape); e++)
                g->vals[i].grad[e] = NAN;
    for (int k = 0; k < cnn_graph_output_count(g) && !ac->no_out_grad; k++) {
        cnn_shape ys;
        cnn_graph_output(g, k, NULL, &ys, NULL);
        float *gy = cnn_graph_output_grad(g, k);
        for (int64_t i = 0; i < numel(&ys); i++)
            gy[i] = (float)sin(0.7 * (double)i + k) + (i % 5 == 0 ? 0.0f : 0.25f);
    }
    CHECKF(cnn_graph_backward(g) == CNN_OK, "%s: %s", ac->name, cnn_graph_errmsg(g));
    return g;
}

static void act_taken_cases(void)
{
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (size_t c = 0; c < sizeof act_cases / sizeof act_cases[0]; c++) {
        const act_case *ac = &act_cases[c];
        for (int k = 0; k <= (int)cnni_cpu_best_isa(); k++) {
            char name[300];
            snprintf(name, sizeof name, "activation's backward taken by its convolution: %s (%s)", ac->name, isas[k]);
            TEST(name)
            {
                cnn_graph *a = build_act(ac, 0, isas[k]), *b = build_act(ac, 1, isas[k]);
                if (a && b) {
                    int taken = 0, nonfinite = 0;
                    for (int i = 0; i < a->n_nodes; i++)
                        if (a->np[i].agrad_node >= 0) {
                            taken++;
                            CHECK(a->np[a->np[i].agrad_node].agrad_into == i);
                        }
                    const int want = k == CNNI_ISA_AVX512 || ac->force ? ac->taken : 0;
                    CHECKF(taken == want, "%d activations taken, expected %d", taken, want);
                    const int nl = cnn_graph_layer_count(a);
                    for (int l = 0; l < nl; l++) {
                        void *da, *db;
                        cnn_shape sa;
                        cnn_dtype ta;
                        if (cnn_graph_layer_output(a, l, 0, &da, &sa, &ta) ||
                            cnn_graph_layer_output(b, l, 0, &db, NULL, NULL))
                            continue;
                        CHECKF(same(da, db, (size_t)numel(&sa) * cnn_dtype_size(ta)), "layer %d's output differs", l);
                    }
                    if (ac->input_grad)
                        CHECKF(same(cnn_graph_input_grad(a, 0), cnn_graph_input_grad(b, 0),
                                    sizeof(float) * (size_t)(ac->dims[0] * ac->dims[1] * ac->dims[2] * ac->dims[3])),
                               "input gradient differs");
                    for (int p = 0; p < cnn_graph_param_count(a); p++) {
                        cnn_param_info pa, pb;
                        cnn_graph_param(a, p, &pa);
                        cnn_graph_param(b, p, &pb);
                        if (pa.kind != CNN_PARAM)
                            continue;
                        const int64_t m = numel(&pa.shape);
                        CHECKF(same(pa.grad, pb.grad, (size_t)m * sizeof(float)), "gradient of %s differs", pa.name);
                        for (int64_t i = 0; i < m; i++)
                            nonfinite += !isfinite(pa.grad[i]);
                    }
                    /* the poisoned input reaches the convolutions' gradients, and
                     * the input gradient of the images beside it stays finite */
                    CHECKF(!ac->poison || nonfinite > 0, "%d gradients not finite", nonfinite);
                    if (ac->poison) {
                        const float *gx = cnn_graph_input_grad(a, 0);
                        CHECKF(isfinite(gx[0]) && isfinite(gx[784 * 17]), "input gradient %g, %g", (double)gx[0],
                               (double)gx[784 * 17]);
                    }
                }
                cnn_graph_destroy(a);
                cnn_graph_destroy(b);
            }
        }
    }
}

int main(void)
{
    act_taken_cases();
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const model_case *mc = &cases[c];
        for (int run = 0; run < 6; run++) {
            const int training = run % 2 == 0;
            const char *isa = isas[run / 2];
            if (run / 2 > (int)cnni_cpu_best_isa())
                continue; /* a set this CPU lacks */
            char name[300];
            snprintf(name, sizeof name, "%s (%s, %s)", mc->name, training ? "training" : "eval", isa);
            TEST(name)
            {
                int64_t n = 1;
                for (int i = 0; i < mc->ndim; i++)
                    n *= mc->dims[i];
                float *x = malloc(sizeof(float) * (size_t)n);
                for (int64_t i = 0; i < n; i++)
                    x[i] = (float)cos(1.3 * (double)i) * (i % 7 == 0 ? 3.0f : 1.0f);
                const unsigned fl = CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD;
                cnn_graph *a = build(mc, 0, x, training, isa, fl), *b = build(mc, 1, x, training, isa, fl);
                if (a && b) {
                    int pairs = 0, pooled = 0, act_pooled = 0;
                    for (int i = 0; i < a->n_nodes; i++) {
                        pairs += a->np[i].relu_node >= 0;
                        pooled += a->np[i].relu_node >= 0 && a->np[i].pool_node >= 0;
                        act_pooled += a->np[i].relu_node < 0 && a->np[i].pool_node >= 0;
                    }
                    CHECKF(pairs == mc->fused, "%d pairs fused, expected %d", pairs, mc->fused);
                    CHECKF(pooled == mc->pooled, "%d poolings fused, expected %d", pooled, mc->pooled);
                    CHECKF(act_pooled == mc->act_pooled, "%d activations fused with their pooling, expected %d",
                           act_pooled, mc->act_pooled);
                    const int taken = count_bias_taken(a);
                    CHECKF(taken == mc->bias_taken, "%d convolutions' bias gradients taken by their BatchNorm, expected %d",
                           taken, mc->bias_taken);
                    CHECK(a->fused_run && !b->fused_run);
                    const int nl = cnn_graph_layer_count(a);
                    for (int t = 0; t < nl; t++) {
                        const int l = run % 4 < 2 ? t : nl - 1 - t; /* ReLU before its BatchNorm too */
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
                        if (pa.kind != CNN_PARAM)
                            continue;
                        if (taken_by_norm(a, pa.name))
                            check_close(&pa, &pb, numel(&pa.shape), n);
                        else
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
    for (size_t c = 0; c < sizeof wgrad_cases / sizeof wgrad_cases[0]; c++) {
        const wgrad_case *wc = &wgrad_cases[c];
        const model_case mc = {wc->name, wc->text, wc->ndim, {wc->dims[0], wc->dims[1], wc->dims[2], wc->dims[3]}, 0, 0, 0, 0};
        for (int run = 0; run < 6; run++) {
            const int training = run % 2 == 0;
            const char *isa = isas[run / 2];
            if (run / 2 > (int)cnni_cpu_best_isa())
                continue;
            char name[400];
            snprintf(name, sizeof name, "weight gradient fused: %s (%s, %s)", wc->name,
                     training ? "training" : "eval", isa);
            TEST(name)
            {
                const int64_t n = numel(&(cnn_shape){mc.ndim, {mc.dims[0], mc.dims[1], mc.dims[2], mc.dims[3]}});
                float *x = malloc(sizeof(float) * (size_t)n);
                for (int64_t i = 0; i < n; i++)
                    x[i] = (float)cos(1.3 * (double)i) * (i % 7 == 0 ? 3.0f : 1.0f);
                cnn_graph *a = build(&mc, 0, x, training, isa, CNN_PLAN_BACKWARD),
                          *b = build(&mc, 1, x, training, isa, CNN_PLAN_BACKWARD);
                if (a && b) {
                    int fused = 0;
                    for (int i = 0; i < a->n_nodes; i++)
                        if (a->np[i].wgrad_node >= 0) {
                            fused++;
                            CHECK(a->np[a->np[i].wgrad_node].wgrad_into == i);
                        }
                    const int want = run / 2 == 0 ? 0 : wc->conv_fused;
                    CHECKF(fused == want, "%d convolutions fused, expected %d", fused, want);
                    const int taken = count_bias_taken(a), want_taken = wc->bias_taken[run / 2 == 0];
                    CHECKF(taken == want_taken, "%d convolutions' bias gradients taken by their BatchNorm, expected %d",
                           taken, want_taken);
                    const int nl = cnn_graph_layer_count(a);
                    for (int l = 0; l < nl; l++) {
                        void *da, *db;
                        cnn_shape sa;
                        cnn_dtype ta;
                        if (cnn_graph_layer_output(a, l, 0, &da, &sa, &ta) ||
                            cnn_graph_layer_output(b, l, 0, &db, NULL, NULL))
                            continue;
                        CHECKF(same(da, db, (size_t)numel(&sa) * cnn_dtype_size(ta)),
                               "layer %d's output differs fused and unfused", l);
                    }
                    for (int p = 0; p < cnn_graph_param_count(a); p++) {
                        cnn_param_info pa, pb;
                        cnn_graph_param(a, p, &pa);
                        cnn_graph_param(b, p, &pb);
                        const int64_t k = numel(&pa.shape);
                        CHECKF(same(pa.data, pb.data, (size_t)k * cnn_dtype_size(pa.dtype)), "%s differs", pa.name);
                        if (pa.kind != CNN_PARAM)
                            continue;
                        if (taken_by_norm(a, pa.name))
                            check_close(&pa, &pb, k, n);
                        else
                            CHECKF(same(pa.grad, pb.grad, (size_t)k * sizeof(float)), "gradient of %s differs", pa.name);
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
