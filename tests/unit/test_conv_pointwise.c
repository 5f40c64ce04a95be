/* The pointwise (1x1, stride 1, no padding) kernels against the reference
 * ones: forward and backward data on random geometries (1-3 spatial dims,
 * 1 to about 700 pixels so the blocks of 16-pixel stripes end anywhere,
 * groups, 16 to 80 channels and now and then up to 512, with and without
 * bias), ResNet's and MobileNet's 1x1 layers; bitwise equal with 1, 2 and
 * 3 threads; NaN and infinities where the reference has them; and which
 * geometries the kernels take; and 1x1 layers run through the library on
 * AVX2 against the generic kernels. */
#include "kernel_test.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/conv_pointwise.h"

/* A 1x1 geometry of n images, C -> O channels in G groups, spatial dims. */
static cnni_conv_geom pointwise(int64_t n, int64_t C, int64_t O, int64_t G, int64_t d0, int64_t d1, int64_t d2)
{
    cnni_conv_geom g;
    memset(&g, 0, sizeof g);
    g.N = n, g.C = C, g.O = O, g.G = G;
    const int64_t d[3] = {d0, d1, d2};
    for (int i = 0; i < 3; i++) {
        g.in[i] = g.out[i] = d[i];
        g.k[i] = g.s[i] = g.d[i] = 1;
    }
    return g;
}

/* Forward and backward data of g against the reference, 1/2/3 threads
 * bitwise equal; the larger relative error of the two passes, or -1 when
 * neither pass runs here. specials: NaN and infinities in x and dy, and
 * the outputs must be NaN and infinite exactly where the reference's are. */
static double compare(int isa, cnni_pool *const pools[3], const cnni_conv_geom *g, int with_bias, int specials)
{
    const int fwd = cnni_conv_pointwise_applies(isa, g), bwd = cnni_conv_pointwise_applies_bwd(isa, g);
    if (!fwd && !bwd)
        return -1;
    const int64_t nx = g->N * g->C * vol(g->in), ny = g->N * g->O * vol(g->out), nw = g->O * (g->C / g->G);
    float *x = rand_f(nx), *w = rand_f(nw), *b = with_bias ? rand_f(g->O) : NULL, *dy = rand_f(ny);
    if (specials) {
        put_specials(x, nx, 3);
        put_specials(dy, ny, 3);
    }
    const int64_t most = nx > ny ? nx : ny;
    float *r = malloc(4 * (size_t)most), *o[3];
    for (int i = 0; i < 3; i++)
        o[i] = malloc(4 * (size_t)most);
    void *scr = malloc(cnni_conv_pointwise_scratch(isa, g, 3));
    double e = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 ? !fwd : !bwd)
            continue;
        const int64_t n = pass == 0 ? ny : nx;
        if (pass == 0)
            cnni_ref_conv_forward_f32(g, x, w, b, r);
        else
            cnni_ref_conv_backward_data_f32(g, dy, w, r);
        for (int i = 0; i < 3; i++) {
            /* what the pass overwrites starts as garbage */
            for (int64_t k = 0; k < n; k++)
                o[i][k] = (float)(1e30 * (k % 3));
            if (pass == 0)
                cnni_conv_pointwise_forward(isa, pools[i], g, x, w, b, o[i], scr);
            else
                cnni_conv_pointwise_backward_data(isa, pools[i], g, dy, w, o[i], scr);
        }
        CHECKF(!memcmp(o[0], o[1], 4 * (size_t)n) && !memcmp(o[0], o[2], 4 * (size_t)n),
               "%s: 1, 2 and 3 threads differ", pass ? "backward data" : "forward");
        if (!specials) {
            e = fmax(e, rel(o[0], r, n));
            continue;
        }
        int64_t bad = -1, nonfinite = 0;
        for (int64_t k = 0; k < n; k++) {
            nonfinite += !isfinite(r[k]);
            const int same = isnan(r[k]) ? isnan(o[0][k]) : isinf(r[k]) ? o[0][k] == r[k] : isfinite(o[0][k]);
            if (!same && bad < 0)
                bad = k;
        }
        CHECKF(bad < 0, "%s with NaN/inf inputs: element %lld is %g, the reference's %g",
               pass ? "backward data" : "forward", (long long)bad, bad < 0 ? 0.0 : (double)o[0][bad],
               bad < 0 ? 0.0 : (double)r[bad]);
        CHECK(nonfinite > 0);
    }
    free(x), free(w), free(b), free(dy), free(r), free(scr);
    for (int i = 0; i < 3; i++)
        free(o[i]);
    return e;
}

static int64_t numel(const cnn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

/* A model of 1x1 layers run forward and backward on isa: its output, input
 * gradient and parameter gradients, concatenated into *out (malloc'd); the
 * count, or -1 on an error. */
static int64_t run_model(const char *text, const cnn_shape *xs, const char *isa, float **out)
{
    cnn_graph *g;
    *out = NULL;
    if (cnn_graph_create(&g))
        return -1;
    if (cnn_graph_parse(g, text, "pointwise.txt") || cnn_graph_reset_parameters(g, 5) ||
        cnn_graph_set_threads(g, 2) || cnn_graph_set_isa(g, isa) ||
        cnn_graph_plan(g, 1, xs, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        printf("  %s: %s\n", isa, cnn_graph_errmsg(g));
        cnn_graph_destroy(g);
        return -1;
    }
    const int64_t nx = numel(xs);
    float *x = cnn_graph_input_data(g, 0);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (float)sin(0.37 * (double)i) + (i % 11 == 0 ? 1.5f : 0.0f);
    cnn_shape ys;
    int64_t total = -1;
    if (cnn_graph_forward(g, 1) == CNN_OK && cnn_graph_output(g, 0, NULL, &ys, NULL) == CNN_OK) {
        float *gy = cnn_graph_output_grad(g, 0);
        for (int64_t i = 0; i < numel(&ys); i++)
            gy[i] = (float)cos(0.61 * (double)i);
        if (cnn_graph_backward(g) == CNN_OK) {
            total = numel(&ys) + nx;
            for (int p = 0; p < cnn_graph_param_count(g); p++) {
                cnn_param_info pi;
                cnn_graph_param(g, p, &pi);
                total += pi.kind == CNN_PARAM ? numel(&pi.shape) : 0;
            }
            float *o = *out = malloc(sizeof(float) * (size_t)total);
            void *y;
            cnn_graph_output(g, 0, &y, NULL, NULL);
            memcpy(o, y, sizeof(float) * (size_t)numel(&ys));
            o += numel(&ys);
            memcpy(o, cnn_graph_input_grad(g, 0), sizeof(float) * (size_t)nx);
            o += nx;
            for (int p = 0; p < cnn_graph_param_count(g); p++) {
                cnn_param_info pi;
                cnn_graph_param(g, p, &pi);
                if (pi.kind != CNN_PARAM)
                    continue;
                memcpy(o, pi.grad, sizeof(float) * (size_t)numel(&pi.shape));
                o += numel(&pi.shape);
            }
        }
    }
    if (total < 0)
        printf("  %s: %s\n", isa, cnn_graph_errmsg(g));
    cnn_graph_destroy(g);
    return total;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    const int best = (int)cnni_cpu_best_isa();
    cnni_pool *pools[3];
    for (int i = 0; i < 3; i++)
        cnni_pool_create(&pools[i], i + 1);
    const int isa = CNNI_ISA_AVX2;

    TEST("pointwise kernels take 1x1 convolutions at stride 1 without padding, 16 to 512 channels a group, AVX2")
    {
        const cnni_conv_geom ok = pointwise(2, 256, 64, 1, 1, 56, 56);
        CHECK(cnni_conv_pointwise_applies(isa, &ok) && cnni_conv_pointwise_applies_bwd(isa, &ok));
        CHECK(!cnni_conv_pointwise_applies(CNNI_ISA_AVX512, &ok));
        CHECK(!cnni_conv_pointwise_applies(CNNI_ISA_GENERIC, &ok));
        cnni_conv_geom g = ok;
        g.k[2] = 3, g.out[2] = 54;
        CHECK(!cnni_conv_pointwise_applies(isa, &g) && !cnni_conv_pointwise_applies_bwd(isa, &g));
        g = ok;
        g.s[1] = 2, g.out[1] = 28;
        CHECK(!cnni_conv_pointwise_applies(isa, &g) && !cnni_conv_pointwise_applies_bwd(isa, &g));
        g = ok;
        g.p[2] = 1, g.out[2] = 58;
        CHECK(!cnni_conv_pointwise_applies(isa, &g) && !cnni_conv_pointwise_applies_bwd(isa, &g));
        g = pointwise(1, 1024, 64, 1, 1, 7, 7); /* the forward sums 1024 channels, backward data 64 */
        CHECK(!cnni_conv_pointwise_applies(isa, &g) && cnni_conv_pointwise_applies_bwd(isa, &g));
        g = pointwise(1, 64, 1024, 1, 1, 7, 7); /* and the other way round */
        CHECK(cnni_conv_pointwise_applies(isa, &g) && !cnni_conv_pointwise_applies_bwd(isa, &g));
        g = pointwise(1, 64, 8, 1, 1, 7, 7); /* 8 output channels */
        CHECK(!cnni_conv_pointwise_applies(isa, &g) && !cnni_conv_pointwise_applies_bwd(isa, &g));
        g = pointwise(1, 64, 64, 8, 1, 7, 7); /* 8 channels a group */
        CHECK(!cnni_conv_pointwise_applies(isa, &g) && !cnni_conv_pointwise_applies_bwd(isa, &g));
    }

    if (best < CNNI_ISA_AVX2) {
        printf("  no AVX2 on this machine: the pointwise kernels are not run\n");
        for (int i = 0; i < 3; i++)
            cnni_pool_destroy(pools[i]);
        return test_finish();
    }

    TEST("pointwise convolution (avx2) vs reference, forward and backward data, 1/2/3 threads bitwise equal")
    {
        double worst = 0;
        int ran = 0;
        for (int t = 0; t < 80; t++) {
            const int nsp = 1 + t % 3;
            const int64_t G = pick(1, 3);
            const int64_t Cg = t % 10 == 7 ? pick(200, 600) : pick(10, 80);
            const int64_t Og = t % 10 == 3 ? pick(200, 600) : pick(10, 80);
            int64_t d[3] = {1, 1, 1};
            for (int i = 3 - nsp; i < 3; i++)
                d[i] = nsp == 1 ? pick(1, 700) : nsp == 2 ? pick(1, 26) : pick(1, 9);
            const cnni_conv_geom g = pointwise(pick(1, 3), G * Cg, G * Og, G, d[0], d[1], d[2]);
            const double e = compare(isa, pools, &g, t % 4 != 1, 0);
            if (e < 0)
                continue;
            ran++;
            CHECKF(e < 1e-5, "N=%lld C=%lld O=%lld G=%lld %lldx%lldx%lld: error %.3g", (long long)g.N,
                   (long long)g.C, (long long)g.O, (long long)g.G, (long long)d[0], (long long)d[1],
                   (long long)d[2], e);
            worst = fmax(worst, e);
        }
        printf("  worst relative error %.3g over %d geometries\n", worst, ran);
        CHECK(ran >= 40);
    }

    TEST("pointwise convolution (avx2): ResNet's and MobileNet's 1x1 layers")
    {
        const cnni_conv_geom layers[] = {pointwise(1, 256, 64, 1, 1, 56, 56), pointwise(1, 64, 256, 1, 1, 56, 56),
                                         pointwise(2, 512, 512, 1, 1, 7, 7), pointwise(1, 32, 64, 1, 1, 112, 112),
                                         pointwise(2, 128, 128, 1, 1, 28, 28)};
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
            const double e = compare(isa, pools, &layers[i], (int)(i % 2), 0);
            CHECKF(e >= 0 && e < 1e-5, "%lld -> %lld on %lldx%lld: error %.3g", (long long)layers[i].C,
                   (long long)layers[i].O, (long long)layers[i].in[1], (long long)layers[i].in[2], e);
        }
    }

    TEST("pointwise convolution (avx2) with NaN and infinities in the input: the reference's NaN and infinities")
    {
        for (int t = 0; t < 12; t++) {
            const cnni_conv_geom g = pointwise(pick(1, 2), pick(16, 40), pick(16, 40), 1, 1, pick(1, 9), pick(1, 40));
            CHECK(compare(isa, pools, &g, t % 2, 1) >= 0);
        }
    }

    TEST("1x1 layers through the library (avx2 against generic): outputs, input and parameter gradients")
    {
        /* the forward and backward data passes here, in groups too; the
         * 8-channel layer and the 3x3 one run other kernels around them */
        const char *text = "Conv2d(24, 48, 1)\nReLU()\nConv2d(48, 32, 1, groups=2, bias=False)\n"
                           "Conv2d(32, 8, 1)\nConv2d(8, 16, 3, padding=1)\nConv2d(16, 20, 1)\n";
        const cnn_shape xs = {4, {3, 24, 13, 17}};
        float *a, *b;
        const int64_t na = run_model(text, &xs, "avx2", &a), nb = run_model(text, &xs, "generic", &b);
        CHECK(na > 0 && na == nb);
        if (na > 0 && na == nb) {
            const double e = rel(a, b, na);
            printf("  relative error %.3g over %lld values\n", e, (long long)na);
            CHECK(e < 1e-5);
        }
        free(a), free(b);
    }

    for (int i = 0; i < 3; i++)
        cnni_pool_destroy(pools[i]);
    return test_finish();
}
