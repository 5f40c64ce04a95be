/* The model file: both forms, PyTorch's argument rules, and errors that name
 * the file, line and column. */
#include "test.h"

static cnn_graph *parse(const char *text, cnn_status *st)
{
    cnn_graph *g;
    cnn_graph_create(&g);
    *st = cnn_graph_parse(g, text, "m.txt");
    return g;
}

static void expect_ok(const char *text, int nparams)
{
    cnn_status st;
    cnn_graph *g = parse(text, &st);
    CHECKF(st == CNN_OK, "parse failed: %s\n  for: %s", cnn_graph_errmsg(g), text);
    if (nparams >= 0)
        CHECKF(cnn_graph_param_count(g) == nparams, "%d parameters, expected %d, for: %s",
               cnn_graph_param_count(g), nparams, text);
    cnn_graph_destroy(g);
}

#define EXPECT_ERR(text, code, ...)                                                                \
    do {                                                                                           \
        cnn_status st_;                                                                            \
        cnn_graph *g_ = parse(text, &st_);                                                         \
        CHECK_ERR(st_, code, cnn_graph_errmsg(g_), __VA_ARGS__);                                   \
        CHECK(cnn_graph_param_count(g_) == 0);                                                     \
        cnn_graph_destroy(g_);                                                                     \
    } while (0)

/* Runs a one-layer model forward on given data and compares with want. */
static void run_case(const char *model, const cnn_shape *xs, const float *x, const char *wname,
                     const float *w, const cnn_shape *ws, const float *want, int nwant)
{
    cnn_status st;
    cnn_graph *g = parse(model, &st);
    CHECKF(st == CNN_OK, "%s", cnn_graph_errmsg(g));
    if (st) {
        cnn_graph_destroy(g);
        return;
    }
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    if (wname) {
        cnn_tensors_add(ts, wname, CNN_F32, ws, w, NULL);
        st = cnn_graph_load_state(g, ts);
        CHECKF(st == CNN_OK, "%s", cnn_graph_errmsg(g));
    }
    st = cnn_graph_plan(g, 1, xs, NULL, 0);
    CHECKF(st == CNN_OK, "%s", cnn_graph_errmsg(g));
    if (!st) {
        memcpy(cnn_graph_input_data(g, 0), x, sizeof(float) * (size_t)(xs->dims[0] * xs->dims[1] * xs->dims[2] * (xs->ndim > 3 ? xs->dims[3] : 1)));
        CHECK(cnn_graph_forward(g, 0) == CNN_OK);
        float *y;
        cnn_shape ys;
        cnn_graph_output(g, 0, (void **)&y, &ys, NULL);
        int n = 1;
        for (int i = 0; i < ys.ndim; i++)
            n *= (int)ys.dims[i];
        CHECKF(n == nwant, "output has %d elements, expected %d", n, nwant);
        for (int i = 0; i < n && i < nwant; i++)
            CHECKF(fabsf(y[i] - want[i]) < 1e-5f, "output[%d] = %g, expected %g", i, y[i], want[i]);
    }
    cnn_tensors_destroy(ts);
    cnn_graph_destroy(g);
}

int main(void)
{
    TEST("Sequential form: comments, blank lines, nn. prefixes, multi-line calls")
    {
        expect_ok("# LeNet-5\nConv2d(1, 6, kernel_size=5, padding=2)\n\n  nn.Conv2d(6, 16, 5)  # trailing comment\n", 4);
        expect_ok("torch.nn.Conv1d(\n   in_channels=2,\n   out_channels=4,\n   kernel_size=(3,),\n   bias=False,\n)\n", 1);
        expect_ok("Conv2d(3, 8, 3, padding='same', padding_mode=\"reflect\", device=None, dtype=torch.float32)", 2);
        expect_ok("Conv3d(2, 4, (1, 2, 3), stride=[1, 2, 1], padding='valid', dilation=(2, 1, 1), groups=2)", 2);
        expect_ok("ConvTranspose2d(4, 2, 3, stride=2, output_padding=1, groups=2, bias=True, dilation=1)", 2);
        expect_ok("nn.Sequential(\n  nn.Conv2d(1, 6, 5),\n  nn.Conv2d(6, 16, 5),\n)\n", 4);
        expect_ok("Conv2d(1, 6, 5) \\\n", 2);
    }

    TEST("arithmetic in arguments, as in PyTorch code: Linear(16 * 5 * 5, 120)")
    {
        cnn_status st;
        cnn_graph *g = parse("Linear(16 * 5 * 5, (120 - 20) // 3 + 1 % 2 * 5)\n", &st);
        CHECKF(st == CNN_OK, "%s", cnn_graph_errmsg(g));
        cnn_param_info info;
        CHECK(cnn_graph_param(g, 0, &info) == CNN_OK && info.shape.dims[0] == 38 && info.shape.dims[1] == 400);
        cnn_graph_destroy(g);
        g = parse("Conv2d(4, 4, -7 // -2, padding=-(-1), groups=2 ** 1)\n", &st);
        CHECK_ERR(st, CNN_ERR_PARSE, cnn_graph_errmsg(g), "m.txt:1:49:", "expected a value");
        cnn_graph_destroy(g);
        expect_ok("Conv2d(4, 4, -7 // -2, padding=-(-1))\n", 2);
        expect_ok("LeakyReLU(1 / 8 + 0.5 * 2)\n", 0);
        EXPECT_ERR("Linear(3 // 0, 2)\n", CNN_ERR_PARSE, "m.txt:1:10:", "division or modulo by zero");
        EXPECT_ERR("Linear('a' * 2, 2)\n", CNN_ERR_PARSE, "m.txt:1:12:", "'*' needs numbers");
        EXPECT_ERR("Linear(9223372036854775807 + 1, 2)\n", CNN_ERR_PARSE, "overflow");
    }

    TEST("graph form: names, nested Sequential, parameter names")
    {
        cnn_status st;
        cnn_graph *g = parse("a = Conv2d(3, 4, 3, padding=1)(input)\n"
                             "block = Sequential(Conv2d(4, 4, 1), Conv2d(4, 2, 1, bias=False))(a)\n",
                             &st);
        CHECKF(st == CNN_OK, "%s", cnn_graph_errmsg(g));
        const char *want[] = {"a.weight", "a.bias", "block.0.weight", "block.0.bias", "block.1.weight"};
        CHECK(cnn_graph_param_count(g) == 5);
        for (int i = 0; i < 5 && i < cnn_graph_param_count(g); i++) {
            cnn_param_info info;
            cnn_graph_param(g, i, &info);
            CHECKF(strcmp(info.name, want[i]) == 0, "param %d is %s, expected %s", i, info.name, want[i]);
        }
        CHECK(cnn_graph_input_count(g) == 1 && strcmp(cnn_graph_input_name(g, 0), "input") == 0);
        cnn_graph_destroy(g);
    }

    TEST("Sequential parameter names follow nn.Sequential's state_dict")
    {
        cnn_status st;
        cnn_graph *g = parse("Conv2d(1, 2, 3)\nConv2d(2, 2, 3, bias=False)\n", &st);
        cnn_param_info info;
        CHECK(st == CNN_OK && cnn_graph_param_count(g) == 3);
        cnn_graph_param(g, 0, &info);
        CHECK(strcmp(info.name, "0.weight") == 0 && info.shape.ndim == 4 && info.shape.dims[0] == 2 &&
              info.shape.dims[1] == 1 && info.shape.dims[2] == 3);
        cnn_graph_param(g, 1, &info);
        CHECK(strcmp(info.name, "0.bias") == 0);
        cnn_graph_param(g, 2, &info);
        CHECK(strcmp(info.name, "1.weight") == 0);
        cnn_graph_destroy(g);
    }

    TEST("syntax errors name file, line and column")
    {
        EXPECT_ERR("Conv2d(1, 6, 5\n", CNN_ERR_PARSE, "m.txt:1:7:", "never closed");
        EXPECT_ERR("Conv2d(1, 6, 5))\n", CNN_ERR_PARSE, "m.txt:1:16:", "unexpected");
        EXPECT_ERR("\n\nConv2d(1, 6, 'same)\n", CNN_ERR_PARSE, "m.txt:3:14:", "unterminated string");
        EXPECT_ERR("Conv2d(1, 6, 5) Conv2d(6, 6, 5)\n", CNN_ERR_PARSE, "m.txt:1:17:");
        EXPECT_ERR("Conv2d(1, 6, 5; )\n", CNN_ERR_PARSE, "m.txt:1:15:", "unexpected character ';'");
        EXPECT_ERR("Conv2d(1, 6, 5,,)\n", CNN_ERR_PARSE, "m.txt:1:16:", "expected a value");
        EXPECT_ERR("Conv2d(1, 6, kernel_size=5, 2)\n", CNN_ERR_PARSE, "m.txt:1:29:", "positional argument follows keyword");
        EXPECT_ERR("3\n", CNN_ERR_PARSE, "m.txt:1:1:", "expected a module");
        EXPECT_ERR("Conv2d(1, 6, 12abc)\n", CNN_ERR_PARSE, "m.txt:1:14:", "invalid number");
        EXPECT_ERR("Conv2d(1, 6, 99999999999999999999)\n", CNN_ERR_PARSE, "too large");
        EXPECT_ERR("", CNN_ERR_PARSE, "no modules");
        EXPECT_ERR("# only a comment\n", CNN_ERR_PARSE, "no modules");
    }

    TEST("argument errors: unknown module, unknown/duplicate/missing arguments, wrong types")
    {
        EXPECT_ERR("Conv2D(1, 6, 5)\n", CNN_ERR_CONFIG, "m.txt:1:1:", "unknown module 'Conv2D'", "did you mean 'Conv2d'");
        EXPECT_ERR("Conv2d(1, 6, 5, strid=2)\n", CNN_ERR_CONFIG, "m.txt:1:17:", "unexpected keyword argument 'strid'");
        EXPECT_ERR("Conv2d(1, 6, 5, stride=2, stride=1)\n", CNN_ERR_CONFIG, "m.txt:1:27:", "multiple values for argument 'stride'");
        EXPECT_ERR("Conv2d(1, 6, 5, 1, kernel_size=3)\n", CNN_ERR_CONFIG, "multiple values for argument 'kernel_size'");
        EXPECT_ERR("Conv2d(1, 6)\n", CNN_ERR_CONFIG, "m.txt:1:1:", "missing required argument 'kernel_size'");
        EXPECT_ERR("Conv2d(1, 6, 5, 1, 0, 1, 1, True, 'zeros', None, None, 7)\n", CNN_ERR_CONFIG, "at most 11 positional");
        EXPECT_ERR("Conv2d(1, 6, 'a')\n", CNN_ERR_CONFIG, "m.txt:1:14:", "'kernel_size' must be an int or a tuple of 2 ints", "a string");
        EXPECT_ERR("Conv2d(1, 6, (3, 3, 3))\n", CNN_ERR_CONFIG, "tuple of 2 ints", "got 3 values");
        EXPECT_ERR("Conv2d(1, 6, 3.0)\n", CNN_ERR_CONFIG, "must be an int");
        EXPECT_ERR("Conv2d(1, 6, 3, bias='yes')\n", CNN_ERR_CONFIG, "'bias' must be True or False");
        EXPECT_ERR("Conv2d(1, 6, 3, device='cuda')\n", CNN_ERR_CONFIG, "device must be None or 'cpu'");
        EXPECT_ERR("Conv2d(1, 6, 3, dtype=torch.float64)\n", CNN_ERR_CONFIG, "dtype must be None or torch.float32");
    }

    TEST("configurations PyTorch rejects at construction are rejected")
    {
        EXPECT_ERR("Conv2d(3, 6, 3, groups=2)\n", CNN_ERR_CONFIG, "in_channels must be divisible by groups");
        EXPECT_ERR("Conv2d(4, 6, 3, groups=4)\n", CNN_ERR_CONFIG, "out_channels must be divisible by groups");
        EXPECT_ERR("Conv2d(4, 6, 3, groups=0)\n", CNN_ERR_CONFIG, "groups must be a positive integer");
        EXPECT_ERR("Conv2d(1, 1, 3, padding='same', stride=2)\n", CNN_ERR_CONFIG, "padding='same' is not supported for strided");
        EXPECT_ERR("Conv2d(1, 1, 3, padding='full')\n", CNN_ERR_CONFIG, "invalid padding string 'full'");
        EXPECT_ERR("Conv2d(1, 1, 3, padding=-1)\n", CNN_ERR_CONFIG, "negative padding");
        expect_ok("Conv2d(1, 1, 3, padding=(-1, 2), padding_mode='replicate')\n", 2);
        EXPECT_ERR("Conv2d(1, 1, 3, stride=0)\n", CNN_ERR_CONFIG, "non-positive stride");
        EXPECT_ERR("Conv2d(1, 1, 3, dilation=0)\n", CNN_ERR_CONFIG, "dilation should be greater than zero");
        EXPECT_ERR("Conv2d(1, 1, 0)\n", CNN_ERR_CONFIG, "kernel_size must be positive");
        EXPECT_ERR("Conv2d(1, 1, 3, padding_mode='mirror')\n", CNN_ERR_CONFIG, "padding_mode must be one of");
        EXPECT_ERR("ConvTranspose2d(1, 1, 3, padding_mode='reflect')\n", CNN_ERR_CONFIG, "only \"zeros\" padding mode");
        EXPECT_ERR("ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)\n", CNN_ERR_CONFIG, "output padding must be smaller than either stride or dilation");
        EXPECT_ERR("ConvTranspose1d(1, 1, 3, padding='same')\n", CNN_ERR_CONFIG, "'padding' must be an int");
    }

    TEST("graph-form errors")
    {
        EXPECT_ERR("a = Conv2d(1, 2, 3)(x)\n", CNN_ERR_PARSE, "m.txt:1:21:", "name 'x' is not defined");
        EXPECT_ERR("a = Conv2d(1, 2, 3)(input)\na = Conv2d(2, 2, 3)(a)\n", CNN_ERR_PARSE, "m.txt:2:1:", "'a' is already defined");
        EXPECT_ERR("a = Conv2d(1, 2, 3)(input)\nConv2d(2, 2, 3)\n", CNN_ERR_PARSE, "m.txt:2:1:", "graph form");
        EXPECT_ERR("a = Conv2d(1, 2, 3)\n", CNN_ERR_PARSE, "must say what it is applied to");
        EXPECT_ERR("Conv2d(1, 2, 3)(input)\n", CNN_ERR_PARSE, "must be assigned to a name");
        EXPECT_ERR("input = Conv2d(1, 2, 3)(input)\n", CNN_ERR_PARSE, "cannot be assigned");
        EXPECT_ERR("a, b = Conv2d(1, 2, 3)(input)\n", CNN_ERR_PARSE, "gives 1 output but 2 names are assigned");
        EXPECT_ERR("a = Conv2d(1, 2, 3)(input, input)\n", CNN_ERR_CONFIG, "takes 1 input, got 2");
    }

    TEST("graph form: extra inputs with Input(), several outputs with 'outputs ='")
    {
        cnn_status st;
        cnn_graph *g = parse("other = Input()\n"
                             "a = Conv2d(2, 3, 1)(input)\n"
                             "b = Conv2d(2, 3, 1)(other)\n"
                             "s = Add()(a, b)\n"
                             "outputs = s, a\n",
                             &st);
        CHECKF(st == CNN_OK, "%s", cnn_graph_errmsg(g));
        CHECK(cnn_graph_input_count(g) == 2);
        CHECK(cnn_graph_output_count(g) == 2 && strcmp(cnn_graph_output_name(g, 0), "s") == 0 &&
              strcmp(cnn_graph_output_name(g, 1), "a") == 0);
        cnn_shape sh[2] = {{4, {1, 2, 3, 3}}, {4, {1, 2, 3, 3}}};
        CHECK(cnn_graph_plan(g, 2, sh, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD) == CNN_OK);
        cnn_graph_destroy(g);
        EXPECT_ERR("a = Conv2d(2, 3, 1)(input)\noutputs = a, zz\n", CNN_ERR_PARSE, "m.txt:2:14:", "output 'zz' is not defined");
        EXPECT_ERR("a = Conv2d(2, 3, 1)(input)\noutputs = a, 3\n", CNN_ERR_PARSE, "m.txt:2:14:", "outputs must be names");
        EXPECT_ERR("x = Input(3)\na = Conv2d(2, 3, 1)(x)\n", CNN_ERR_PARSE, "name = Input()");
    }

    TEST("a concat mismatch names both input nodes and both shapes")
    {
        cnn_status st;
        cnn_graph *g = parse("a = Conv2d(3, 4, 1)(input)\nb = Conv2d(3, 4, 2)(input)\noutput = Concat(dim=1)(a, b)\n", &st);
        cnn_shape xs = {4, {1, 3, 15, 15}};
        st = cnn_graph_plan(g, 1, &xs, NULL, 0);
        CHECK_ERR(st, CNN_ERR_SHAPE, cnn_graph_errmsg(g), "m.txt:3", "node 'output' (Concat)", "a [1, 4, 15, 15]", "b [1, 4, 14, 14]");
        cnn_graph_destroy(g);
    }

    TEST("seed examples: corr2d and multi-channel correlation")
    {
        /* corr2d of arange(9) with [[0, 1], [2, 3]] is [[19, 25], [37, 43]]. */
        cnn_shape xs = {4, {1, 1, 3, 3}}, ws = {4, {1, 1, 2, 2}};
        float x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, k[4] = {0, 1, 2, 3};
        float want[4] = {19, 25, 37, 43};
        run_case("Conv2d(1, 1, 2, bias=False)", &xs, x, "0.weight", k, &ws, want, 4);
        /* Two input channels: X = [arange(9), arange(1, 10)], K = [[0,1],[2,3]], [[1,2],[3,4]]. */
        cnn_shape xs2 = {4, {1, 2, 3, 3}}, ws2 = {4, {1, 2, 2, 2}};
        float x2[18], k2[8] = {0, 1, 2, 3, 1, 2, 3, 4};
        for (int i = 0; i < 9; i++) {
            x2[i] = (float)i;
            x2[9 + i] = (float)(i + 1);
        }
        float want2[4] = {56, 72, 104, 120};
        run_case("Conv2d(2, 1, 2, bias=False)", &xs2, x2, "0.weight", k2, &ws2, want2, 4);
    }

    TEST("shape errors at plan time name the node and the shapes")
    {
        cnn_status st;
        cnn_graph *g = parse("Conv2d(3, 4, 3)\nConv2d(5, 4, 3)\n", &st);
        cnn_shape xs = {4, {2, 3, 8, 8}};
        st = cnn_graph_plan(g, 1, &xs, NULL, 0);
        CHECK_ERR(st, CNN_ERR_SHAPE, cnn_graph_errmsg(g), "m.txt:2", "node '1' (Conv2d)", "[2, 4, 6, 6]", "5 channels", "got 4");
        cnn_shape small = {4, {2, 3, 2, 2}};
        g = (cnn_graph_destroy(g), parse("Conv2d(3, 4, 3)", &st));
        st = cnn_graph_plan(g, 1, &small, NULL, 0);
        CHECK_ERR(st, CNN_ERR_SHAPE, cnn_graph_errmsg(g), "node '0' (Conv2d)", "kernel size can't be greater");
        cnn_shape three = {3, {3, 8, 8}};
        st = cnn_graph_plan(g, 1, &three, NULL, 0);
        CHECK_ERR(st, CNN_ERR_SHAPE, cnn_graph_errmsg(g), "expected a 4-d input (N, C, H, W)", "[3, 8, 8]");
        cnn_graph_destroy(g);
        g = parse("Conv2d(1, 1, 3, padding=3, padding_mode='reflect')", &st);
        cnn_shape xr = {4, {1, 1, 3, 3}};
        st = cnn_graph_plan(g, 1, &xr, NULL, 0);
        CHECK_ERR(st, CNN_ERR_SHAPE, cnn_graph_errmsg(g), "reflect padding (3, 3) must be smaller than the input size 3");
        cnn_graph_destroy(g);
    }

    TEST("weights: missing, extra and mis-shaped keys name the key and both shapes")
    {
        cnn_status st;
        cnn_graph *g = parse("Conv2d(1, 2, 3)", &st);
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        cnn_shape w = {4, {2, 1, 3, 3}}, wrong = {4, {2, 1, 5, 5}}, b = {1, {2}};
        cnn_tensors_add(ts, "0.weight", CNN_F32, &w, NULL, NULL);
        CHECK_ERR(cnn_graph_load_state(g, ts), CNN_ERR_NOT_FOUND, cnn_graph_errmsg(g), "missing key '0.bias'");
        cnn_tensors_add(ts, "0.bias", CNN_F32, &b, NULL, NULL);
        cnn_tensors_add(ts, "1.weight", CNN_F32, &b, NULL, NULL);
        CHECK_ERR(cnn_graph_load_state(g, ts), CNN_ERR_NOT_FOUND, cnn_graph_errmsg(g), "unexpected key '1.weight'");
        cnn_tensors_clear(ts);
        cnn_tensors_add(ts, "0.weight", CNN_F32, &wrong, NULL, NULL);
        cnn_tensors_add(ts, "0.bias", CNN_F32, &b, NULL, NULL);
        CHECK_ERR(cnn_graph_load_state(g, ts), CNN_ERR_SHAPE, cnn_graph_errmsg(g), "'0.weight'", "[2, 1, 5, 5]", "[2, 1, 3, 3]");
        cnn_tensors_destroy(ts);
        cnn_graph_destroy(g);
    }

    TEST("default initialisation: PyTorch's bounds, reproducible from the seed")
    {
        cnn_status st;
        cnn_graph *g = parse("Conv2d(4, 8, 3, groups=2)", &st);
        cnn_graph_reset_parameters(g, 42);
        cnn_param_info w, b;
        cnn_graph_param(g, 0, &w);
        cnn_graph_param(g, 1, &b);
        float bound = 1.0f / sqrtf(2 * 9), maxabs = 0;
        double mean = 0;
        for (int i = 0; i < 8 * 2 * 9; i++) {
            float v = ((float *)w.data)[i];
            maxabs = fmaxf(maxabs, fabsf(v));
            mean += v;
        }
        CHECKF(maxabs <= bound && maxabs > 0.8f * bound, "max |w| %g, bound %g", maxabs, bound);
        float first = ((float *)w.data)[0];
        cnn_graph_reset_parameters(g, 42);
        CHECK(((float *)w.data)[0] == first);
        cnn_graph_reset_parameters(g, 43);
        CHECK(((float *)w.data)[0] != first);
        CHECK(fabsf(((float *)b.data)[0]) <= bound);
        cnn_graph_destroy(g);
    }

    return test_finish();
}
