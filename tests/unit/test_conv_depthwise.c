/* The depthwise (plane) convolution kernels against the reference ones, on
 * random geometries, two thirds with one input channel per group and the
 * rest with 2 to 4: 1-3 spatial dims, channel multipliers 1 to 6, kernels 1
 * to 5, stride, dilation, padding up to and beyond the dilated kernel, an
 * extra row or column of right padding, rows wider than one block of
 * vectors; then fixed few-channel layers (LeNet's conv2 and others, odd
 * sizes) for the row blocks, wide weight tiles and backward data by
 * columns; the stride-1 3x3, 5x5, 7x7 and 1xK kernels with every padding
 * and width; forward, backward data and backward weight and bias, for every
 * instruction set this CPU has, and the same bits with 1, 2 and 3 threads. */
#include "kernel_test.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/conv_depthwise.h"

static void random_geom(cnni_conv_geom *g, int nsp, int t)
{
    memset(g, 0, sizeof *g);
    g->G = pick(1, 6);
    /* A third of the cases: several input channels per group. */
    g->C = g->G * (t % 3 == 2 ? pick(2, 4) : 1);
    g->O = g->G * (t % 5 == 4 ? pick(4, 6) : pick(1, 3));
    g->N = pick(1, 3);
    for (int i = 0; i < 3; i++) {
        if (i < 3 - nsp) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            continue;
        }
        g->k[i] = pick(1, nsp == 3 ? 3 : 5);
        g->s[i] = t % 3 == 0 ? 1 : pick(1, 3);
        g->d[i] = pick(1, 2);
        int64_t span = g->d[i] * (g->k[i] - 1) + 1;
        /* Padding past the kernel's span now and then: its backward crops. */
        g->p[i] = t % 7 == 3 ? pick(0, span + 2) : pick(0, span - 1);
        int64_t room = nsp == 3 ? 6 : nsp == 2 ? 24 : 90;
        int64_t lo = span - 2 * g->p[i] > 1 ? span - 2 * g->p[i] : 1;
        g->in[i] = pick(lo, lo + room);
        int64_t hi = g->p[i] + pick(0, 1);
        g->out[i] = (g->in[i] + g->p[i] + hi - span) / g->s[i] + 1;
    }
}

static void describe(const cnni_conv_geom *g, int nsp, char *buf, size_t n)
{
    snprintf(buf, n, "%dd N=%lld C=%lld O=%lld G=%lld in=%lldx%lldx%lld k=%lldx%lldx%lld s=%lldx%lldx%lld "
                     "d=%lldx%lldx%lld p=%lldx%lldx%lld out=%lldx%lldx%lld",
             nsp, (long long)g->N, (long long)g->C, (long long)g->O, (long long)g->G, (long long)g->in[0],
             (long long)g->in[1], (long long)g->in[2], (long long)g->k[0], (long long)g->k[1], (long long)g->k[2],
             (long long)g->s[0], (long long)g->s[1], (long long)g->s[2], (long long)g->d[0], (long long)g->d[1],
             (long long)g->d[2], (long long)g->p[0], (long long)g->p[1], (long long)g->p[2], (long long)g->out[0],
             (long long)g->out[1], (long long)g->out[2]);
}

#define NTHREADS 3

/* One geometry on one instruction set: the error against the reference, and
 * whether 1, 2 and 3 threads gave the same bits. */
static double one_case(int isa, cnni_pool **pools, const cnni_conv_geom *g, int with_bias, int *bitwise_ok)
{
    int64_t nx = g->N * g->C * vol(g->in), ny = g->N * g->O * vol(g->out), nw = g->O * (g->C / g->G) * vol(g->k);
    float *x = rand_f(nx), *w = rand_f(nw), *b = with_bias ? rand_f(g->O) : NULL, *dy = rand_f(ny);
    float *dw0 = rand_f(nw), *db0 = rand_f(g->O);
    float *y_ref = malloc(4 * (size_t)ny), *dx_ref = malloc(4 * (size_t)nx);
    float *dw_ref = malloc(4 * (size_t)nw), *db_ref = malloc(4 * (size_t)g->O);
    memcpy(dw_ref, dw0, 4 * (size_t)nw);
    memcpy(db_ref, db0, 4 * (size_t)g->O);
    cnni_ref_conv_forward_f32(g, x, w, b, y_ref);
    cnni_ref_conv_backward_data_f32(g, dy, w, dx_ref);
    cnni_ref_conv_backward_weight_f32(g, x, dy, dw_ref, with_bias ? db_ref : NULL);
    float *y[NTHREADS], *dx[NTHREADS], *dw[NTHREADS], *db[NTHREADS];
    void *scr = malloc(cnni_conv_dw_scratch(g, NTHREADS, CNNI_DW_FORWARD | CNNI_DW_DATA | CNNI_DW_WEIGHT));
    /* GUARD floats past y and dx, which no kernel may write (a store of a
     * whole vector past a row's last output shows here on the last row) */
    enum { GUARD = 32 };
    const float canary = 1234.5f;
    int guard_ok = 1;
    for (int t = 0; t < NTHREADS; t++) {
        y[t] = malloc(4 * (size_t)(ny + GUARD));
        dx[t] = malloc(4 * (size_t)(nx + GUARD));
        for (int i = 0; i < GUARD; i++)
            y[t][ny + i] = dx[t][nx + i] = canary;
        dw[t] = malloc(4 * (size_t)nw);
        db[t] = malloc(4 * (size_t)g->O);
        memcpy(dw[t], dw0, 4 * (size_t)nw);
        memcpy(db[t], db0, 4 * (size_t)g->O);
        /* Poison: the kernels must overwrite y and dx completely. */
        for (int64_t i = 0; i < ny; i++)
            y[t][i] = NAN;
        for (int64_t i = 0; i < nx; i++)
            dx[t][i] = NAN;
        cnni_conv_dw_forward(isa, pools[t], g, x, w, b, y[t], scr);
        cnni_conv_dw_backward_data(isa, pools[t], g, dy, w, dx[t], scr);
        cnni_conv_dw_backward_weight(isa, pools[t], g, x, dy, dw[t], with_bias ? db[t] : NULL, scr);
        for (int i = 0; i < GUARD; i++)
            guard_ok &= y[t][ny + i] == canary && dx[t][nx + i] == canary;
    }
    double e = fmax(fmax(rel(y[0], y_ref, ny), rel(dx[0], dx_ref, nx)), rel(dw[0], dw_ref, nw));
    if (!guard_ok)
        e = INFINITY; /* written past the output */
    if (with_bias)
        e = fmax(e, rel(db[0], db_ref, g->O));
    else if (memcmp(db[0], db0, 4 * (size_t)g->O))
        e = INFINITY; /* no bias: db untouched */
    for (int t = 1; t < NTHREADS; t++)
        if (memcmp(y[t], y[0], 4 * (size_t)ny) || memcmp(dx[t], dx[0], 4 * (size_t)nx) ||
            memcmp(dw[t], dw[0], 4 * (size_t)nw) || memcmp(db[t], db[0], 4 * (size_t)g->O))
            *bitwise_ok = 0;
    for (int t = 0; t < NTHREADS; t++)
        free(y[t]), free(dx[t]), free(dw[t]), free(db[t]);
    free(x), free(w), free(b), free(dy), free(dw0), free(db0), free(y_ref), free(dx_ref), free(dw_ref), free(db_ref);
    free(scr);
    return e;
}

/* One geometry through one_case: its error within 1e-5 (the geometry named
 * otherwise), the worst error so far kept. */
static void check_case(int isa, cnni_pool **pools, const cnni_conv_geom *g, int nsp, int with_bias, int *bitwise,
                       double *worst)
{
    double e = one_case(isa, pools, g, with_bias, bitwise);
    char d[256];
    describe(g, nsp, d, sizeof d);
    CHECKF(e <= 1e-5, "%s: error %.3g", d, e);
    *worst = fmax(*worst, e);
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    cnni_pool *pools[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        cnni_pool_create(&pools[t], t + 1);
    TEST("depthwise applies exactly when each group has one input channel")
    {
        cnni_conv_geom g = {.N = 2, .C = 8, .O = 16, .G = 8};
        CHECK(cnni_conv_dw_applies(&g));
        g.G = 4;
        CHECK(!cnni_conv_dw_applies(&g));
        g.C = g.G = 1;
        CHECK(cnni_conv_dw_applies(&g));
    }
    cnni_isa best = cnni_cpu_best_isa();
    for (int isa = 0; isa <= (int)best; isa++) {
        char name[160];
        snprintf(name, sizeof name,
                 "depthwise convolution (%s) vs reference, forward and backward, 1/2/3 threads bitwise equal",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            int bitwise = 1;
            for (int t = 0; t < 90; t++) {
                int nsp = t % 6 < 3 ? 2 : t % 6 == 3 ? 1 : t % 6 == 4 ? 3 : 2;
                cnni_conv_geom g;
                random_geom(&g, nsp, t);
                check_case(isa, pools, &g, nsp, t % 2, &bitwise, &worst);
            }
            CHECK(bitwise);
            printf("  %s: worst relative error %.3g over 90 geometries\n", cnni_isa_name((cnni_isa)isa), worst);
        }
        snprintf(name, sizeof name, "depthwise convolution (%s): MobileNet-like and LeNet-like layers",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            /* 3x3 pad 1 at strides 1 and 2 on 56x56 and 29x29 (odd), LeNet's
             * conv1 (1 to 6 channels, 5x5 pad 2, 28x28), a 7x7 on 20x70. */
            static const int64_t cases[][8] = {
                /* C, m, H, W, k, s, p, N */
                {32, 1, 56, 56, 3, 1, 1, 2}, {16, 1, 29, 29, 3, 2, 1, 2}, {1, 6, 28, 28, 5, 1, 2, 4},
                {8, 2, 20, 70, 7, 1, 3, 1},  {4, 3, 33, 47, 3, 2, 0, 2},
            };
            int bitwise = 1;
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const int64_t *c = cases[i];
                cnni_conv_geom g = {.N = c[7], .C = c[0], .G = c[0], .O = c[0] * c[1]};
                g.in[0] = g.out[0] = g.k[0] = g.s[0] = g.d[0] = 1;
                g.in[1] = c[2];
                g.in[2] = c[3];
                for (int a = 1; a < 3; a++) {
                    g.k[a] = c[4];
                    g.s[a] = c[5];
                    g.p[a] = c[6];
                    g.d[a] = 1;
                    g.out[a] = (g.in[a] + 2 * g.p[a] - g.k[a]) / g.s[a] + 1;
                }
                double e = one_case(isa, pools, &g, (int)(i % 2), &bitwise);
                char d[256];
                describe(&g, 2, d, sizeof d);
                CHECKF(e <= 1e-5, "%s: error %.3g", d, e);
            }
            CHECK(bitwise);
        }
        snprintf(name, sizeof name,
                 "depthwise stride-1 kernels (%s) 3x3, 5x5, 7x7, 1xK: every padding, widths 1-150, 1-3 dims",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            /* The sliding-rows forward (and backward data, its flipped
             * geometry): blocks of rows and their remainder, rows of 1 to 3
             * chunks of 4 vectors with every tail, padding from none to past
             * the kernel on each side (an extra column or row on the right
             * or bottom now and then), channel multipliers 1-3, a dim 0 of
             * kernel 1 with and without padding. */
            static const int64_t kinds[][2] = {{3, 3}, {5, 5}, {7, 7}, {1, 3}, {1, 5}, {1, 7}};
            int bitwise = 1;
            double worst = 0;
            for (int t = 0; t < 72; t++) {
                const int64_t *kk = kinds[t % 6];
                const int nsp = kk[0] == 1 && t % 4 == 1 ? 1 : t % 9 == 4 ? 3 : 2;
                cnni_conv_geom g = {.N = pick(1, 2), .G = pick(1, 3)};
                g.C = g.G;
                g.O = g.G * pick(1, 3);
                for (int a = 0; a < 3; a++) {
                    g.s[a] = g.d[a] = 1;
                    g.k[a] = a == 0 ? 1 : kk[a - 1];
                }
                g.in[0] = nsp == 3 ? pick(1, 3) : 1;
                g.p[0] = nsp == 3 ? pick(0, 1) : 0;
                g.in[1] = nsp == 1 ? 1 : pick(1, 13);
                g.p[1] = nsp == 1 ? 0 : pick(0, g.k[1] + 1);
                g.in[2] = t % 3 == 0 ? pick(1, 20) : pick(1, 150);
                g.p[2] = pick(0, g.k[2] + 1);
                for (int a = 0; a < 3; a++) {
                    const int64_t hi = a == 0 ? g.p[0] : g.p[a] + pick(0, 1);
                    g.out[a] = g.in[a] + g.p[a] + hi - g.k[a] + 1;
                    if (g.out[a] < 1) { /* too small for the kernel: grow the input */
                        g.in[a] += 1 - g.out[a];
                        g.out[a] = 1;
                    }
                }
                check_case(isa, pools, &g, nsp, t % 2, &bitwise, &worst);
            }
            CHECK(bitwise);
            printf("  %s: worst relative error %.3g over 72 geometries\n", cnni_isa_name((cnni_isa)isa), worst);
        }
        snprintf(name, sizeof name,
                 "plane kernels (%s) on few-channel groups: LeNet's conv2, wider groups, strided and dilated",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            /* Groups with several input and output channels: the row blocks
             * of the forward (narrow rows at stride 1), the weight gradient's
             * wide tiles and the backward data by columns (4 or more output
             * channels per group on small planes), odd sizes included. */
            static const int64_t cases[][11] = {
                /* C, O, G, H, W, k, s, p, d, N, bias */
                {6, 16, 1, 14, 14, 5, 1, 0, 1, 5, 1}, {6, 16, 1, 14, 14, 5, 1, 0, 1, 2, 0},
                {16, 32, 2, 9, 11, 3, 1, 1, 1, 3, 1}, {3, 12, 1, 13, 7, 5, 2, 2, 1, 2, 0},
                {4, 8, 2, 10, 10, 3, 1, 3, 2, 1, 1},  {2, 5, 1, 17, 23, 5, 1, 2, 1, 3, 0},
                {6, 16, 2, 7, 5, 3, 3, 1, 1, 2, 1},   {5, 7, 1, 31, 3, 3, 1, 1, 2, 2, 1},
                /* by columns with rows over 16 wide and over 7 taps (the gather's general rows) */
                {2, 8, 1, 6, 21, 9, 1, 4, 1, 2, 1},   {3, 4, 1, 9, 19, 8, 1, 3, 1, 2, 0},
            };
            int bitwise = 1;
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const int64_t *c = cases[i];
                cnni_conv_geom g = {.N = c[9], .C = c[0], .O = c[1], .G = c[2]};
                g.in[0] = g.out[0] = g.k[0] = g.s[0] = g.d[0] = 1;
                g.in[1] = c[3];
                g.in[2] = c[4];
                for (int a = 1; a < 3; a++) {
                    g.k[a] = c[5];
                    g.s[a] = c[6];
                    g.p[a] = c[7];
                    g.d[a] = c[8];
                    g.out[a] = (g.in[a] + 2 * g.p[a] - g.d[a] * (g.k[a] - 1) - 1) / g.s[a] + 1;
                }
                double e = one_case(isa, pools, &g, (int)c[10], &bitwise);
                char d[256];
                describe(&g, 2, d, sizeof d);
                CHECKF(e <= 1e-5, "%s: error %.3g", d, e);
            }
            CHECK(bitwise);
        }
    }
    for (int t = 0; t < NTHREADS; t++)
        cnni_pool_destroy(pools[t]);
    return test_finish();
}
