/* The F(4,5) input gradient with images along the lanes (conv_quadimg.h)
 * against the reference kernel: random geometries it serves (1-d and 2-d,
 * groups, 1 to 9 input and 1 to 20 output channels a group, outputs 4 to
 * 12 wide, 1 to 6 kernel rows, any padding, 12 to 40 images: whole and
 * part-filled blocks of 16), LeNet's conv2, bitwise equal with 1, 2 and 3
 * threads; the geometries it must not take; and dy holding NaN, infinities
 * or 3e38: the reference's NaN, infinities and values (those blocks are
 * summed directly). */
#include "kernel_test.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/conv_quadimg.h"
#include "kernels/conv_direct.h"

/* widest: the widest output row (12 for the input gradient, 28 for the
 * weight's); every third case of a wide one has one or two input channels
 * a group (the weight gradient's tiles over kernel rows) */
static void random_geom(cnni_conv_geom *g, int t, int64_t widest)
{
    memset(g, 0, sizeof *g);
    g->G = t % 4 == 3 ? pick(2, 3) : 1;
    g->C = g->G * (widest > 12 && t % 3 == 0 ? pick(1, 2) : pick(1, 9));
    g->O = g->G * pick(1, 20);
    g->N = t % 3 == 0 ? pick(12, 16) : pick(17, 40);
    const int two = t % 5 != 4; /* else 1-d */
    for (int i = 0; i < 3; i++)
        g->s[i] = g->d[i] = g->k[i] = 1;
    g->in[0] = g->out[0] = 1;
    g->k[2] = 5;
    g->k[1] = two ? pick(1, 6) : 1;
    g->p[1] = two ? pick(0, g->k[1] - 1) : 0;
    g->p[2] = pick(0, 4);
    g->out[2] = widest > 12 && t % 2 ? pick(13, widest) : pick(4, 12);
    g->out[1] = two ? pick(1, 12) : 1;
    /* wide rows: channels within the weight gradient's transforms' megabyte */
    while (widest > 12 && !cnni_conv_quadimg_applies_weight(CNNI_ISA_AVX512, &(cnni_conv_geom){
               .N = g->N, .C = g->C, .O = g->O, .G = g->G, .in = {1, 1, 1}, .out = {1, g->out[1], g->out[2]},
               .k = {1, g->k[1], 5}, .s = {1, 1, 1}, .p = {0, 0, 0}, .d = {1, 1, 1}}) && g->O > g->G)
        g->O -= g->G;
    g->in[2] = g->out[2] + 4 - 2 * g->p[2];
    g->in[1] = g->out[1] + g->k[1] - 1 - 2 * g->p[1];
    if (g->in[2] < 1 || g->in[1] < 1) { /* padding past the input: less of it */
        g->p[2] = 0;
        g->p[1] = 0;
        g->in[2] = g->out[2] + 4;
        g->in[1] = g->out[1] + g->k[1] - 1;
    }
}

static void describe(const cnni_conv_geom *g, char *buf, size_t n)
{
    snprintf(buf, n, "N=%lld C=%lld O=%lld G=%lld in %lldx%lld k %lldx5 p %lld,%lld", (long long)g->N,
             (long long)g->C, (long long)g->O, (long long)g->G, (long long)g->in[1], (long long)g->in[2],
             (long long)g->k[1], (long long)g->p[1], (long long)g->p[2]);
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    if (cnni_cpu_best_isa() < CNNI_ISA_AVX512) {
        printf("  no AVX-512 on this CPU: these kernels never run\n");
        TEST("F(4,5) input gradient: not chosen without AVX-512")
        {
            cnni_conv_geom g;
            random_geom(&g, 0, 12);
            CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX2, &g));
        }
        return test_finish();
    }
    cnni_pool *p1, *p2, *p3;
    cnni_pool_create(&p1, 1);
    cnni_pool_create(&p2, 2);
    cnni_pool_create(&p3, 3);
    TEST("F(4,5) input gradient, images along the lanes (avx512) vs reference, threads bitwise equal")
    {
        double worst = 0;
        for (int t = 0; t < 101; t++) {
            cnni_conv_geom g;
            random_geom(&g, t, 12);
            if (t == 100) { /* LeNet's conv2 on a part of a batch */
                memset(&g, 0, sizeof g);
                g = (cnni_conv_geom){.N = 32, .C = 6, .O = 16, .G = 1, .in = {1, 14, 14}, .out = {1, 10, 10},
                                     .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 0, 0}, .d = {1, 1, 1}};
            }
            char desc[200];
            describe(&g, desc, sizeof desc);
            if (!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &g)) {
                CHECKF(0, "not served: %s", desc);
                continue;
            }
            const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
            float *dy = rand_f(ny), *w = rand_f(nw), *d0 = malloc(4 * (size_t)nx), *d[3];
            void *scr = malloc(cnni_conv_quadimg_scratch(CNNI_ISA_AVX512, &g, 3, 1, 0));
            cnni_ref_conv_backward_data_f32(&g, dy, w, d0);
            cnni_pool *pools[3] = {p1, p2, p3};
            for (int k = 0; k < 3; k++) {
                d[k] = malloc(4 * (size_t)nx);
                for (int64_t i = 0; i < nx; i++)
                    d[k][i] = NAN; /* an output left unwritten fails */
                cnni_conv_quadimg_backward(CNNI_ISA_AVX512, pools[k], &g, NULL, dy, w, d[k], NULL, NULL, scr);
            }
            const double e = rel(d[0], d0, nx);
            CHECKF(e < 1e-5, "%s: error %.3g", desc, e);
            CHECKF(!memcmp(d[0], d[1], 4 * (size_t)nx) && !memcmp(d[0], d[2], 4 * (size_t)nx),
                   "%s: threads differ", desc);
            worst = fmax(worst, e);
            free(dy), free(w), free(d0), free(scr);
            for (int k = 0; k < 3; k++)
                free(d[k]);
        }
        printf("  worst relative error %.3g\n", worst);
    }
    TEST("F(4,5) forward, images along the lanes (avx512) vs reference, threads bitwise equal")
    {
        double worst = 0;
        for (int t = 0; t < 60; t++) {
            cnni_conv_geom g;
            random_geom(&g, 3 * t, 28); /* every third: one or two channels a group */
            if (t == 59) /* LeNet's conv1 */
                g = (cnni_conv_geom){.N = 32, .C = 1, .O = 6, .G = 1, .in = {1, 28, 28}, .out = {1, 28, 28},
                                     .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 2, 2}, .d = {1, 1, 1}};
            char desc[200];
            describe(&g, desc, sizeof desc);
            if (!cnni_conv_quadimg_applies_forward(CNNI_ISA_AVX512, &g)) {
                CHECKF(0, "not served: %s", desc);
                continue;
            }
            const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
            float *x = rand_f(nx), *w = rand_f(nw), *b = t % 3 == 1 ? NULL : rand_f(g.O), *y0 = malloc(4 * (size_t)ny);
            float *y[3];
            void *scr = malloc(cnni_conv_quadimg_forward_scratch(CNNI_ISA_AVX512, &g, 3));
            cnni_ref_conv_forward_f32(&g, x, w, b, y0);
            cnni_pool *pools[3] = {p1, p2, p3};
            for (int k = 0; k < 3; k++) {
                y[k] = malloc(4 * (size_t)ny);
                for (int64_t i = 0; i < ny; i++)
                    y[k][i] = NAN; /* an output left unwritten fails */
                cnni_conv_quadimg_forward(CNNI_ISA_AVX512, pools[k], &g, x, w, b, y[k], scr);
            }
            const double e = rel(y[0], y0, ny);
            CHECKF(e < 5e-6, "%s: error %.3g", desc, e);
            CHECKF(!memcmp(y[0], y[1], 4 * (size_t)ny) && !memcmp(y[0], y[2], 4 * (size_t)ny), "%s: threads differ",
                   desc);
            worst = fmax(worst, e);
            free(x), free(w), free(b), free(y0), free(scr);
            for (int k = 0; k < 3; k++)
                free(y[k]);
        }
        printf("  worst relative error %.3g\n", worst);
    }
    TEST("F(4,5) forward with NaN, infinities or 3e38 in x: the reference's NaN, infinities, values")
    {
        static const float special[3] = {NAN, INFINITY, 3e38f};
        for (int t = 0; t < 12; t++) {
            cnni_conv_geom g = {.N = 20 + t % 13, .C = 1, .O = 6, .G = 1, .in = {1, 28, 28}, .out = {1, 28, 28},
                                .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 2, 2}, .d = {1, 1, 1}};
            const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
            float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.O), *y0 = malloc(4 * (size_t)ny), *y1 = malloc(4 * (size_t)ny);
            const float v = special[t % 3];
            if (t % 2)
                x[pick(0, nx - 1)] = -v;
            else /* a whole image */
                for (int64_t i = 0; i < g.C * vol(g.in); i++)
                    x[(g.N - 1) * g.C * vol(g.in) + i] = v;
            void *scr = malloc(cnni_conv_quadimg_forward_scratch(CNNI_ISA_AVX512, &g, 2));
            cnni_ref_conv_forward_f32(&g, x, w, b, y0);
            cnni_conv_quadimg_forward(CNNI_ISA_AVX512, p2, &g, x, w, b, y1, scr);
            const double e = rel(y1, y0, ny);
            CHECKF(e < 5e-6, "case %d (%g): error %.3g", t, (double)v, e);
            free(x), free(w), free(b), free(y0), free(y1), free(scr);
        }
    }
    TEST("F(4,5) weight gradient, images along the lanes (avx512) vs reference, threads bitwise equal")
    {
        double worst = 0;
        for (int t = 0; t < 101; t++) {
            cnni_conv_geom g;
            random_geom(&g, t + 7, 28);
            if (t == 100)
                g = (cnni_conv_geom){.N = 32, .C = 6, .O = 16, .G = 1, .in = {1, 14, 14}, .out = {1, 10, 10},
                                     .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 0, 0}, .d = {1, 1, 1}};
            if (t == 99) /* LeNet's conv1 */
                g = (cnni_conv_geom){.N = 32, .C = 1, .O = 6, .G = 1, .in = {1, 28, 28}, .out = {1, 28, 28},
                                     .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 2, 2}, .d = {1, 1, 1}};
            char desc[200];
            describe(&g, desc, sizeof desc);
            if (!cnni_conv_quadimg_applies_weight(CNNI_ISA_AVX512, &g)) {
                CHECKF(0, "not served: %s", desc);
                continue;
            }
            const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
            float *x = rand_f(nx), *dy = rand_f(ny), *w0 = rand_f(nw), *b0 = rand_f(g.O), *w[3], *b[3];
            void *scr = malloc(cnni_conv_quadimg_scratch(CNNI_ISA_AVX512, &g, 3, cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &g), 1));
            float *wr = malloc(4 * (size_t)nw), *br = malloc(4 * (size_t)g.O);
            /* against float64: sums of up to 40 x 12 x 28 values, where the
             * float reference's own rounding reached 5e-6 (seed 1795563782,
             * the bias of N=25 over 10 x 18) */
            {
                double *xd = malloc(8 * (size_t)nx), *dyd = malloc(8 * (size_t)ny), *wd = malloc(8 * (size_t)nw),
                       *bd = malloc(8 * (size_t)g.O);
                for (int64_t i = 0; i < nx; i++)
                    xd[i] = x[i];
                for (int64_t i = 0; i < ny; i++)
                    dyd[i] = dy[i];
                for (int64_t i = 0; i < nw; i++)
                    wd[i] = w0[i];
                for (int64_t i = 0; i < g.O; i++)
                    bd[i] = b0[i];
                cnni_ref_conv_backward_weight_f64(&g, xd, dyd, wd, bd);
                for (int64_t i = 0; i < nw; i++)
                    wr[i] = (float)wd[i];
                for (int64_t i = 0; i < g.O; i++)
                    br[i] = (float)bd[i];
                free(xd), free(dyd), free(wd), free(bd);
            }
            cnni_pool *pools[3] = {p1, p2, p3};
            for (int k = 0; k < 3; k++) {
                w[k] = malloc(4 * (size_t)nw);
                b[k] = malloc(4 * (size_t)g.O);
                memcpy(w[k], w0, 4 * (size_t)nw);
                memcpy(b[k], b0, 4 * (size_t)g.O);
                cnni_conv_quadimg_backward(CNNI_ISA_AVX512, pools[k], &g, x, dy, NULL, NULL, w[k],
                                           t % 4 == 1 ? NULL : b[k], scr);
            }
            if (cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &g)) {
                /* both gradients in one call (dy transformed once): the same bits */
                const int64_t nx1 = g.N * g.C * vol(g.in);
                float *wt = rand_f(nw), *d1 = malloc(4 * (size_t)nx1), *d2 = malloc(4 * (size_t)nx1);
                float *w1 = malloc(4 * (size_t)nw), *b1 = malloc(4 * (size_t)g.O);
                memcpy(w1, w0, 4 * (size_t)nw);
                memcpy(b1, b0, 4 * (size_t)g.O);
                cnni_conv_quadimg_backward(CNNI_ISA_AVX512, p2, &g, NULL, dy, wt, d1, NULL, NULL, scr);
                cnni_conv_quadimg_backward(CNNI_ISA_AVX512, p2, &g, x, dy, wt, d2, w1, t % 4 == 1 ? NULL : b1, scr);
                CHECKF(!memcmp(d1, d2, 4 * (size_t)nx1) && !memcmp(w1, w[0], 4 * (size_t)nw) &&
                           !memcmp(b1, b[0], 4 * (size_t)g.O),
                       "%s: both gradients in one call differ from each alone", desc);
                free(wt), free(d1), free(d2), free(w1), free(b1);
            }
            /* (LeNet's conv2 gives 7e-7 here, the direct F(2,5) kernels
             * 7e-7 to 1e-6) */
            const double e = rel(w[0], wr, nw), eb = t % 4 == 1 ? 0 : rel(b[0], br, g.O);
            CHECKF(e < 5e-6 && eb < 5e-6, "%s: error %.3g, bias %.3g", desc, e, eb);
            if (t % 4 == 1)
                CHECKF(!memcmp(b[0], b0, 4 * (size_t)g.O), "%s: db written though NULL was passed", desc);
            CHECKF(!memcmp(w[0], w[1], 4 * (size_t)nw) && !memcmp(w[0], w[2], 4 * (size_t)nw) &&
                       !memcmp(b[0], b[1], 4 * (size_t)g.O) && !memcmp(b[0], b[2], 4 * (size_t)g.O),
                   "%s: threads differ", desc);
            worst = fmax(worst, fmax(e, eb));
            free(x), free(dy), free(w0), free(b0), free(wr), free(br), free(scr);
            for (int k = 0; k < 3; k++)
                free(w[k]), free(b[k]);
        }
        printf("  worst relative error %.3g\n", worst);
    }
    TEST("F(4,5) weight gradient with NaN, infinities or 3e38 in x or dy: the reference's NaN, infinities, values")
    {
        static const float special[3] = {NAN, INFINITY, 3e38f};
        for (int t = 0; t < 24; t++) {
            cnni_conv_geom g = {.N = 20 + t % 13, .C = 6, .O = 16, .G = 1 + t % 2, .in = {1, 14, 14},
                                .out = {1, 10, 10}, .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 0, 0}, .d = {1, 1, 1}};
            if (g.G == 2)
                g.C = 8;
            if (t >= 12) /* LeNet's conv1: rows 28 wide, padded, one input channel */
                g = (cnni_conv_geom){.N = 20 + t % 13, .C = 1, .O = 6, .G = 1, .in = {1, 28, 28}, .out = {1, 28, 28},
                                     .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 2, 2}, .d = {1, 1, 1}};
            const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
            float *x = rand_f(nx), *dy = rand_f(ny), *w0 = calloc((size_t)nw, 4), *w1 = calloc((size_t)nw, 4);
            float *b0 = calloc((size_t)g.O, 4), *b1 = calloc((size_t)g.O, 4);
            const float v = special[t % 3];
            if (t % 4 == 0)
                dy[pick(0, ny - 1)] = v;
            else if (t % 4 == 1)
                x[pick(0, nx - 1)] = -v;
            else if (t % 4 == 2) /* a whole image's input: sums overflow */
                for (int64_t i = 0; i < g.C * vol(g.in); i++)
                    x[(g.N - 1) * g.C * vol(g.in) + i] = v;
            else
                for (int64_t i = 0; i < g.O * vol(g.out); i++)
                    dy[i] = v;
            void *scr = malloc(cnni_conv_quadimg_scratch(CNNI_ISA_AVX512, &g, 2, 0, 1));
            cnni_ref_conv_backward_weight_f32(&g, x, dy, w0, b0);
            cnni_conv_quadimg_backward(CNNI_ISA_AVX512, p2, &g, x, dy, NULL, NULL, w1, b1, scr);
            const double e = rel(w1, w0, nw), eb = rel(b1, b0, g.O);
            CHECKF(e < 1e-4 && eb < 1e-4, "case %d (%g): error %.3g, bias %.3g", t, (double)v, e, eb);
            free(x), free(dy), free(w0), free(w1), free(b0), free(b1), free(scr);
        }
    }
    TEST("F(4,5) weight gradient's G^T: the plain loop's bits")
        {
            /* random sums, signed zeros among them */
            enum { NK = 37 };
            double m[NK * 8], out[NK * 5 + 3], want[NK * 5];
            for (int i = 0; i < NK * 8; i++)
                m[i] = i % 11 == 0 ? (i % 2 ? -0.0 : 0.0) : cnni_rng_uniform_range(&rng, -1e3, 1e3);
            for (int i = 0; i < NK * 5 + 3; i++)
                out[i] = 42;
            for (int k = 0; k < NK; k++)
                for (int t = 0; t < 5; t++) {
                    double v = 0;
                    for (int j = 0; j < 8; j++)
                        v += cnni_f45_weight[j][t] * m[k * 8 + j];
                    want[k * 5 + t] = v;
                }
            cnni_quadimg_g_transpose_avx512(NK, m, out);
            CHECK(!memcmp(out, want, sizeof want));
            CHECK(out[NK * 5] == 42 && out[NK * 5 + 2] == 42); /* nothing written past */
        }
    TEST("F(4,5) kernel rows' transform: the plain loop's bits")
    {
        enum { NR = 23 };
        float w[NR * 5], gw[NR * 8 + 8], want[NR * 8];
        for (int i = 0; i < NR * 5; i++)
            w[i] = i % 7 == 0 ? (i % 2 ? -0.0f : 0.0f) : (float)cnni_rng_uniform_range(&rng, -3, 3);
        for (int i = 0; i < NR * 8 + 8; i++)
            gw[i] = 42;
        for (int r = 0; r < NR; r++)
            for (int j = 0; j < 8; j++) {
                const double *G = cnni_f45_weight[j];
                const float *t = w + r * 5;
                want[r * 8 + j] = (float)(G[0] * (double)t[0] + G[1] * (double)t[1] + G[2] * (double)t[2] +
                                          G[3] * (double)t[3] + G[4] * (double)t[4]);
            }
        cnni_quadimg_g_rows_avx512(NR, w, gw);
        CHECK(!memcmp(gw, want, sizeof want));
        CHECK(gw[NR * 8] == 42 && gw[NR * 8 + 7] == 42);
    }
    TEST("F(4,5) gradients: not chosen off their geometries")
    {
        cnni_conv_geom g = {.N = 32, .C = 6, .O = 16, .G = 1, .in = {1, 14, 14}, .out = {1, 10, 10}, .k = {1, 5, 5},
                            .s = {1, 1, 1}, .p = {0, 0, 0}, .d = {1, 1, 1}};
        CHECK(cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &g));
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX2, &g));
        cnni_conv_geom h = g;
        h.N = 11; /* lanes mostly empty */
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h = g;
        h.s[2] = 2;
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h = g;
        h.d[1] = 2;
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h = g;
        h.k[2] = 3;
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h = g;
        h.out[2] = 13; /* the padded row past a vector */
        h.in[2] = 17;
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h = g;
        h.out[2] = 3;
        h.in[2] = 7;
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h = g; /* the weight gradient up to 28 wide, the input's to 12 */
        h.out[2] = 28;
        h.in[2] = 32;
        CHECK(cnni_conv_quadimg_applies_weight(CNNI_ISA_AVX512, &h) && !cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
        h.out[2] = 29;
        h.in[2] = 33;
        CHECK(!cnni_conv_quadimg_applies_weight(CNNI_ISA_AVX512, &h));
        h = g; /* transforms past a megabyte a thread */
        h.O = 200;
        CHECK(!cnni_conv_quadimg_applies_weight(CNNI_ISA_AVX512, &h));
        h = g; /* the forward: one or two input channels a group */
        CHECK(!cnni_conv_quadimg_applies_forward(CNNI_ISA_AVX512, &h));
        h.C = 2;
        CHECK(cnni_conv_quadimg_applies_forward(CNNI_ISA_AVX512, &h));
        h = g; /* 3-d */
        h.in[0] = 3;
        h.k[0] = 3;
        CHECK(!cnni_conv_quadimg_applies(CNNI_ISA_AVX512, &h));
    }
    TEST("F(4,5) input gradient with NaN, infinities or 3e38 in dy: the reference's NaN, infinities, values")
    {
        static const float special[3] = {NAN, INFINITY, 3e38f};
        for (int t = 0; t < 24; t++) {
            cnni_conv_geom g = {.N = 20 + t % 13, .C = 6, .O = 16, .G = 1 + t % 2, .in = {1, 14, 14},
                                .out = {1, 10, 10}, .k = {1, 5, 5}, .s = {1, 1, 1}, .p = {0, 0, 0}, .d = {1, 1, 1}};
            if (g.G == 2)
                g.C = 8;
            const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
            float *dy = rand_f(ny), *w = rand_f(nw), *d0 = malloc(4 * (size_t)nx), *d1 = malloc(4 * (size_t)nx);
            const float v = special[t % 3];
            if (t % 6 < 3)
                dy[pick(0, ny - 1)] = t % 2 ? -v : v;
            else /* a whole image's gradient 3e38 or infinite: sums overflow */
                for (int64_t i = 0; i < g.O * vol(g.out); i++)
                    dy[(g.N - 1) * g.O * vol(g.out) + i] = v;
            void *scr = malloc(cnni_conv_quadimg_scratch(CNNI_ISA_AVX512, &g, 2, 1, 0));
            cnni_ref_conv_backward_data_f32(&g, dy, w, d0);
            cnni_conv_quadimg_backward(CNNI_ISA_AVX512, p2, &g, NULL, dy, w, d1, NULL, NULL, scr);
            const double e = rel(d1, d0, nx);
            CHECKF(e < 1e-5, "case %d (%g): error %.3g", t, (double)v, e);
            free(dy), free(w), free(d0), free(d1), free(scr);
        }
    }
    cnni_pool_destroy(p1);
    cnni_pool_destroy(p2);
    cnni_pool_destroy(p3);
    return test_finish();
}
