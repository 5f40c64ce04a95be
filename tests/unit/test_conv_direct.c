/* The direct convolution kernels against the reference ones: forward and
 * weight gradient on random geometries (1-3 spatial dims, groups, stride,
 * dilation, asymmetric padding, kernels up to 5, 12 to 16 and 24 to 80
 * channels per group, with and without bias, inputs read in place or
 * through a padded copy), LeNet's conv2 and odd neighbours of it, and
 * backward data at stride 1; bitwise equal with 1, 2 and 3 threads. The
 * F(2,5) rows with NaN, infinities or all 3e38 in the input give the
 * reference's NaN, infinities and values. */
#include "kernel_test.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/conv_direct.h"

/* AVX-512's F(4,5) weight packing (conv_direct_avx512.c) */
void cnni_direct_quad_weights_avx512(const double v[5][16], float *uk);

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    const int best = (int)cnni_cpu_best_isa();
    cnni_pool *p1, *p2, *p3;
    cnni_pool_create(&p1, 1);
    cnni_pool_create(&p2, 2);
    cnni_pool_create(&p3, 3);
    if (!cnni_direct_max_mr(best))
        printf("  no direct kernels for %s\n", cnni_isa_name((cnni_isa)best));
    /* every instruction set with direct kernels that this machine runs */
    for (int isa = CNNI_ISA_AVX2; isa <= best; isa++) {
        char name[128];
        snprintf(name, sizeof name,
                 "direct convolution (%s) vs reference, forward, backward data and weight, threads bitwise equal",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            int bwd_cases = 0;
            for (int t = 0; t < 120; t++) {
                int nsp = t >= 80 && t < 90 ? 2 : 1 + t % 3;
                cnni_conv_geom g;
                memset(&g, 0, sizeof g);
                const int with_bias = t % 5 != 2;
                g.G = pick(1, 2);
                /* Odd cases: many input channels, so backward data qualifies too. */
                g.C = g.G * (t % 4 == 1 ? pick(24, 64) : pick(1, 6));
                g.O = g.G * (t % 4 == 1 ? pick(1, 40) : t % 4 == 3 ? pick(12, 16) : pick(24, 80));
                g.N = pick(1, 3);
                for (int i = 0; i < 3; i++) {
                    if (i < 3 - nsp) {
                        g.in[i] = g.out[i] = g.k[i] = g.s[i] = g.d[i] = 1;
                        continue;
                    }
                    g.k[i] = t % 3 == 2 ? pick(4, 5) : pick(1, 3);
                    g.s[i] = t % 2 ? 1 : pick(1, 2);
                    g.d[i] = pick(1, 2);
                    int64_t span = g.d[i] * (g.k[i] - 1) + 1;
                    g.p[i] = pick(0, span - 1);
                    g.in[i] = pick(span, span + (nsp == 1 ? 40 : 12));
                    int64_t hi = g.p[i] + pick(0, 1);
                    g.out[i] = (g.in[i] + g.p[i] + hi - span) / g.s[i] + 1;
                }
                if (t >= 90) {
                    /* Winograd along the rows: 5 wide at stride and
                     * dilation 1, an even number of outputs per row up to 16
                     * (AVX2: F(2,5), tiles of 3 to 5 pairs from 8 outputs;
                     * AVX-512: F(4,5) from 4 outputs, 1 to 4 quads, the
                     * last cut short, rows of 2 as one F(2,5) pair), one
                     * block of 12 to 16 channels, anything across the rows;
                     * 12 to 16 input channels per group now and then, so
                     * backward data runs it too. 30 cases, as AVX2 takes
                     * only the wider rows. */
                    g.G = pick(1, 2);
                    g.C = g.G * (t % 3 == 0 ? pick(12, 16) : pick(1, 9));
                    g.O = g.G * pick(12, 16);
                    g.k[2] = 5;
                    g.s[2] = g.d[2] = 1;
                    g.p[2] = pick(0, 4);
                    g.out[2] = 2 * pick(1, 8);
                    g.in[2] = g.out[2] + 4 - 2 * g.p[2] + pick(0, 1);
                    if (g.in[2] < 1) {
                        g.p[2] = 0;
                        g.in[2] = g.out[2] + 4;
                    }
                    g.out[2] = (g.in[2] + 2 * g.p[2] - 5) + 1;
                    g.out[2] -= g.out[2] % 2;
                    if (g.out[2] < 2) {
                        g.p[2] = 0;
                        g.in[2] = 6;
                        g.out[2] = 2;
                    }
                } else if (t >= 80) {
                    /* LeNet's conv2 (6 to 16 channels, 5x5 on 14x14), then odd
                     * sizes and padding around it */
                    g.G = 1;
                    g.C = t == 80 ? 6 : pick(1, 7);
                    g.O = t == 80 ? 16 : pick(12, 16);
                    g.N = t == 80 ? 4 : pick(1, 5);
                    for (int i = 1; i < 3; i++) {
                        g.k[i] = 5;
                        g.s[i] = g.d[i] = 1;
                        g.p[i] = t == 80 ? 0 : pick(0, 2);
                        g.in[i] = t == 80 ? 14 : pick(5, 17);
                        g.out[i] = g.in[i] + 2 * g.p[i] - 4;
                    }
                }
                if (!cnni_conv_direct_applies(isa, &g) && !cnni_conv_direct_applies_bwd(isa, &g))
                    continue;
                int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
                float *x = rand_f(nx), *w = rand_f(nw), *b = with_bias ? rand_f(g.O) : NULL, *dy = rand_f(ny);
                float *y0 = malloc(4 * (size_t)ny), *y1 = malloc(4 * (size_t)ny), *y2 = malloc(4 * (size_t)ny);
                float *y3 = malloc(4 * (size_t)ny);
                size_t sf = cnni_conv_direct_scratch(isa, &g, 3), sw = cnni_conv_direct_weight_scratch(isa, &g, 3);
                void *scr = malloc(sf > sw ? sf : sw);
                double e = 0;
                if (cnni_conv_direct_applies(isa, &g)) {
                    cnni_ref_conv_forward_f32(&g, x, w, b, y0);
                    cnni_conv_direct_forward(isa, p1, &g, x, w, b, y1, scr);
                    cnni_conv_direct_forward(isa, p2, &g, x, w, b, y2, scr);
                    cnni_conv_direct_forward(isa, p3, &g, x, w, b, y3, scr);
                    e = rel(y1, y0, ny);
                    CHECK(!memcmp(y1, y2, 4 * (size_t)ny) && !memcmp(y1, y3, 4 * (size_t)ny));
                    /* weight and bias gradients, added to what dw and db held */
                    float *dw0 = rand_f(nw), *db0 = rand_f(g.O), *dw1 = malloc(4 * (size_t)nw), *dw2 = malloc(4 * (size_t)nw);
                    float *db1 = malloc(4 * (size_t)g.O), *db2 = malloc(4 * (size_t)g.O);
                    float *dw3 = malloc(4 * (size_t)nw), *db3 = malloc(4 * (size_t)g.O), *dbk = malloc(4 * (size_t)g.O);
                    memcpy(dw1, dw0, 4 * (size_t)nw), memcpy(dw2, dw0, 4 * (size_t)nw), memcpy(dw3, dw0, 4 * (size_t)nw);
                    memcpy(db1, db0, 4 * (size_t)g.O), memcpy(db2, db0, 4 * (size_t)g.O), memcpy(db3, db0, 4 * (size_t)g.O);
                    memcpy(dbk, db0, 4 * (size_t)g.O);
                    cnni_ref_conv_backward_weight_f32(&g, x, dy, dw0, db0);
                    /* without a bias, db is left alone */
                    cnni_conv_direct_backward_weight(isa, p1, &g, x, dy, dw1, with_bias ? db1 : NULL, scr);
                    cnni_conv_direct_backward_weight(isa, p2, &g, x, dy, dw2, with_bias ? db2 : NULL, scr);
                    cnni_conv_direct_backward_weight(isa, p3, &g, x, dy, dw3, with_bias ? db3 : NULL, scr);
                    e = fmax(e, fmax(rel(dw1, dw0, nw), with_bias ? rel(db1, db0, g.O) : 0));
                    if (!with_bias)
                        CHECK(!memcmp(db1, dbk, 4 * (size_t)g.O));
                    CHECK(!memcmp(dw1, dw2, 4 * (size_t)nw) && !memcmp(db1, db2, 4 * (size_t)g.O));
                    CHECK(!memcmp(dw1, dw3, 4 * (size_t)nw) && !memcmp(db1, db3, 4 * (size_t)g.O));
                    free(dw0), free(db0), free(dw1), free(dw2), free(db1), free(db2), free(dw3), free(db3), free(dbk);
                }
                if (cnni_conv_direct_applies_bwd(isa, &g)) {
                    bwd_cases++;
                    float *d0 = malloc(4 * (size_t)nx), *d1 = malloc(4 * (size_t)nx), *d2 = malloc(4 * (size_t)nx);
                    float *d3 = malloc(4 * (size_t)nx);
                    cnni_ref_conv_backward_data_f32(&g, dy, w, d0);
                    cnni_conv_direct_backward_data(isa, p1, &g, dy, w, d1, scr);
                    cnni_conv_direct_backward_data(isa, p2, &g, dy, w, d2, scr);
                    cnni_conv_direct_backward_data(isa, p3, &g, dy, w, d3, scr);
                    e = fmax(e, rel(d1, d0, nx));
                    CHECK(!memcmp(d1, d2, 4 * (size_t)nx) && !memcmp(d1, d3, 4 * (size_t)nx));
                    free(d0), free(d1), free(d2), free(d3);
                }
                CHECKF(e < 1e-5, "%dd N=%lld C=%lld O=%lld G=%lld in %lldx%lldx%lld k %lldx%lldx%lld s %lld d %lld p %lld: error %.3g",
                       nsp, (long long)g.N, (long long)g.C, (long long)g.O, (long long)g.G, (long long)g.in[0],
                       (long long)g.in[1], (long long)g.in[2], (long long)g.k[0], (long long)g.k[1], (long long)g.k[2],
                       (long long)g.s[2], (long long)g.d[2], (long long)g.p[2], e);
                worst = fmax(worst, e);
                free(x), free(w), free(b), free(dy), free(y0), free(y1), free(y2), free(y3), free(scr);
            }
            printf("  worst relative error %.3g (%d backward cases)\n", worst, bwd_cases);
        }
    }
    for (int isa = CNNI_ISA_AVX2; isa <= best; isa++) {
        char name[160];
        snprintf(name, sizeof name,
                 "direct Winograd rows (%s) with NaN, infinities or all 3e38 in the input: the reference's NaN, "
                 "infinities, values",
                 isa == CNNI_ISA_AVX512 ? "F(4,5), avx512" : "F(2,5), avx2");
        TEST(name)
        {
            /* The row transforms spread such a value over every pair (quad)
             * whose inputs hold it; those are summed directly. LeNet's conv2
             * and neighbours, forward and (16 input channels) backward data. */
            int ran = 0;
            for (int t = 0; t < 24; t++) {
                cnni_conv_geom g;
                memset(&g, 0, sizeof g);
                g.G = 1;
                g.N = pick(1, 3);
                g.C = t % 3 == 0 ? 16 : pick(1, 8);
                g.O = pick(12, 16);
                g.in[0] = g.out[0] = g.k[0] = g.s[0] = g.d[0] = 1;
                for (int i = 1; i < 3; i++) {
                    g.k[i] = 5;
                    g.s[i] = g.d[i] = 1;
                    g.p[i] = pick(0, 2);
                    g.out[i] = 2 * pick(4, 8);
                    g.in[i] = g.out[i] + 4 - 2 * g.p[i];
                }
                const int fwd = cnni_conv_direct_wino(isa, &g), bwd = cnni_conv_direct_wino_bwd(isa, &g);
                if (!fwd && !bwd)
                    continue;
                ran++;
                const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * g.C * 25;
                float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.O), *dy = rand_f(ny);
                if (t % 6 == 5) {
                    /* every input +-3e38: the transforms overflow */
                    for (int64_t i = 0; i < nx; i++)
                        x[i] = t % 4 == 1 ? 3e38f : -3e38f;
                    for (int64_t i = 0; i < ny; i++)
                        dy[i] = t % 4 == 1 ? -3e38f : 3e38f;
                    for (int64_t i = 0; i < nw; i++)
                        w[i] = (float)(1.0 / (25.0 * (double)(g.C > g.O ? g.C : g.O)));
                } else {
                    put_specials(x, nx, (int)pick(1, 3));
                    put_specials(dy, ny, (int)pick(1, 3));
                }
                double *xd = malloc(8 * (size_t)nx), *wd = malloc(8 * (size_t)nw), *bd = malloc(8 * (size_t)g.O);
                double *dyd = malloc(8 * (size_t)ny), *yr = malloc(8 * (size_t)ny), *dxr = malloc(8 * (size_t)nx);
                for (int64_t i = 0; i < nx; i++)
                    xd[i] = x[i];
                for (int64_t i = 0; i < nw; i++)
                    wd[i] = w[i];
                for (int64_t i = 0; i < g.O; i++)
                    bd[i] = b[i];
                for (int64_t i = 0; i < ny; i++)
                    dyd[i] = dy[i];
                size_t sf = cnni_conv_direct_scratch(isa, &g, 2);
                void *scr = malloc(sf);
                float *y1 = malloc(4 * (size_t)ny), *y2 = malloc(4 * (size_t)ny);
                float *d1 = malloc(4 * (size_t)nx), *d2 = malloc(4 * (size_t)nx);
                char m1[128] = "", m2[128] = "";
                int ok = 1;
                if (fwd) {
                    cnni_ref_conv_forward_f64(&g, xd, wd, bd, yr);
                    cnni_conv_direct_forward(isa, p1, &g, x, w, b, y1, scr);
                    cnni_conv_direct_forward(isa, p2, &g, x, w, b, y2, scr);
                    ok &= same_specials(y1, yr, ny, 1e-5, m1, sizeof m1) && !memcmp(y1, y2, 4 * (size_t)ny);
                }
                if (bwd) {
                    cnni_ref_conv_backward_data_f64(&g, dyd, wd, dxr);
                    cnni_conv_direct_backward_data(isa, p1, &g, dy, w, d1, scr);
                    cnni_conv_direct_backward_data(isa, p2, &g, dy, w, d2, scr);
                    ok &= same_specials(d1, dxr, nx, 1e-5, m2, sizeof m2) && !memcmp(d1, d2, 4 * (size_t)nx);
                }
                CHECKF(ok, "N=%lld C=%lld O=%lld %lldx%lld pad %lld: forward %s, backward data %s", (long long)g.N,
                       (long long)g.C, (long long)g.O, (long long)g.in[1], (long long)g.in[2], (long long)g.p[1], m1,
                       m2);
                free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(dyd), free(yr), free(dxr);
                free(scr), free(y1), free(y2), free(d1), free(d2);
            }
            CHECK(ran >= 12);
        }
    }
    if (best >= CNNI_ISA_AVX512)
        TEST("F(4,5) weights of 16 channels (avx512): the plain loop's bits")
        {
            double v[5][16];
            float uk[8 * 16 + 4], want[8 * 16];
            for (int t = 0; t < 5; t++)
                for (int o = 0; o < 16; o++)
                    v[t][o] = (o + t) % 9 == 0 ? ((o & 1) ? -0.0 : 0.0) : (float)cnni_rng_uniform_range(&rng, -2, 2);
            for (int i = 0; i < 8 * 16 + 4; i++)
                uk[i] = 42;
            for (int j = 0; j < 8; j++)
                for (int o = 0; o < 16; o++) {
                    const double *G = cnni_f45_weight[j];
                    want[j * 16 + o] = (float)(G[0] * v[0][o] + G[1] * v[1][o] + G[2] * v[2][o] + G[3] * v[3][o] +
                                               G[4] * v[4][o]);
                }
            cnni_direct_quad_weights_avx512((const double(*)[16])v, uk);
            CHECK(!memcmp(uk, want, sizeof want));
            CHECK(uk[8 * 16] == 42 && uk[8 * 16 + 3] == 42);
        }
    cnni_pool_destroy(p1);
    cnni_pool_destroy(p2);
    cnni_pool_destroy(p3);
    return test_finish();
}
