/* The fast normalisation kernels against the reference ones: every layout
 * (batch, instance, group, layer), batch and running statistics, with and
 * without affine parameters, inputs far from zero; every instruction set,
 * and the same bits with 1 and 2 threads. */
#include "kernel_test.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/norm_fast.h"

/* dw and db sum one term per element of a channel. Float arithmetic rounds
 * each partial sum, so their error grows with the terms' root-sum-square,
 * the size a sum of terms of either sign reaches, not with a total that
 * happens to cancel; that is the scale the error is measured against. A
 * term lost or counted twice still moves the sum by about one term, which
 * is far above 1e-5 of the root-sum-square for the sizes drawn here. */
static double rel_sums(const float *a, const float *b, const double *rss, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]) / fmax(1, fmax(fabs(b[i]), rss[i])));
    return w;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    cnni_pool *p1, *p2;
    cnni_pool_create(&p1, 1);
    cnni_pool_create(&p2, 2);
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "fast normalisation (%s) vs reference, threads bitwise equal",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            for (int t = 0; t < 60; t++) {
                cnni_norm_geom g = {pick(1, 6), pick(1, 6), pick(1, 3), pick(1, 700), (int)pick(0, 1)};
                if (t % 4 == 0)
                    g.S = pick(2000, 5000);
                int64_t n = g.N * g.G * g.Cg * g.S, C = g.G * g.Cg, ns = cnni_norm_nstat(&g);
                double shift = t % 3 == 0 ? 50 : 0, spread = t % 3 == 0 ? 0.01 : 1;
                float *x = malloc(4 * (size_t)n), *dy = malloc(4 * (size_t)n), *w = malloc(4 * (size_t)C),
                      *b = malloc(4 * (size_t)C);
                for (int64_t i = 0; i < n; i++) {
                    x[i] = (float)(shift + spread * cnni_rng_uniform_range(&rng, -1, 1));
                    dy[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                }
                for (int64_t c = 0; c < C; c++) {
                    w[c] = (float)cnni_rng_uniform_range(&rng, 0.5, 1.5);
                    b[c] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                }
                int affine = (int)pick(0, 1), batch = (int)pick(0, 1);
                double *m0 = malloc(8 * (size_t)ns), *v0 = malloc(8 * (size_t)ns), *r0 = malloc(8 * (size_t)ns);
                double *m1 = malloc(8 * (size_t)ns), *v1 = malloc(8 * (size_t)ns), *m2 = malloc(8 * (size_t)ns),
                       *v2 = malloc(8 * (size_t)ns);
                cnni_ref_norm_stats_f32(&g, x, m0, v0);
                cnni_norm_fast_stats(isa, p1, &g, x, m1, v1);
                cnni_norm_fast_stats(isa, p2, &g, x, m2, v2);
                double es = 0;
                for (int64_t i = 0; i < ns; i++) {
                    es = fmax(es, fabs(m1[i] - m0[i]) / fmax(1e-3, spread));
                    es = fmax(es, fabs(v1[i] - v0[i]) / fmax(1e-6, v0[i]));
                    r0[i] = 1.0 / sqrt(v0[i] + 1e-5);
                }
                CHECK(!memcmp(m1, m2, 8 * (size_t)ns) && !memcmp(v1, v2, 8 * (size_t)ns));
                float *y0 = malloc(4 * (size_t)n), *y1 = malloc(4 * (size_t)n), *y2 = malloc(4 * (size_t)n);
                cnni_ref_norm_forward_f32(&g, x, m0, r0, affine ? w : NULL, affine ? b : NULL, y0);
                cnni_norm_fast_forward(isa, p1, &g, x, m0, r0, affine ? w : NULL, affine ? b : NULL, y1, NULL);
                cnni_norm_fast_forward(isa, p2, &g, x, m0, r0, affine ? w : NULL, affine ? b : NULL, y2, NULL);
                CHECK(!memcmp(y1, y2, 4 * (size_t)n));
                float *d0 = malloc(4 * (size_t)n), *d1 = malloc(4 * (size_t)n), *d2 = malloc(4 * (size_t)n);
                float *dw0 = calloc((size_t)C, 4), *db0 = calloc((size_t)C, 4), *dw1 = calloc((size_t)C, 4),
                      *db1 = calloc((size_t)C, 4), *dw2 = calloc((size_t)C, 4), *db2 = calloc((size_t)C, 4);
                void *scr = malloc(cnni_norm_fast_scratch(&g));
                cnni_ref_norm_backward_f32(&g, x, dy, m0, r0, affine ? w : NULL, batch, d0, dw0, db0);
                cnni_norm_fast_backward(isa, p1, &g, x, dy, m0, r0, affine ? w : NULL, NULL, 0, batch, d1, dw1, db1, NULL, scr);
                cnni_norm_fast_backward(isa, p2, &g, x, dy, m0, r0, affine ? w : NULL, NULL, 0, batch, d2, dw2, db2, NULL, scr);
                CHECK(!memcmp(d1, d2, 4 * (size_t)n) && !memcmp(dw1, dw2, 4 * (size_t)C) && !memcmp(db1, db2, 4 * (size_t)C));
                double *rw = calloc((size_t)C, 8), *rb = calloc((size_t)C, 8);
                for (int64_t nn = 0; nn < g.N; nn++)
                    for (int64_t c = 0; c < C; c++) {
                        const int64_t st = g.across_batch ? c / g.Cg : nn * g.G + c / g.Cg;
                        for (int64_t i = 0; i < g.S; i++) {
                            const int64_t o = (nn * C + c) * g.S + i;
                            const double term = dy[o] * ((x[o] - m0[st]) * r0[st]);
                            rw[c] += term * term;
                            rb[c] += (double)dy[o] * dy[o];
                        }
                    }
                for (int64_t c = 0; c < C; c++)
                    rw[c] = sqrt(rw[c]), rb[c] = sqrt(rb[c]);
                double e = fmax(fmax(rel(y1, y0, n), rel(d1, d0, n)), fmax(rel_sums(dw1, dw0, rw, C), rel_sums(db1, db0, rb, C)));
                free(rw), free(rb);
                e = fmax(e, es * 1e-2);
                CHECKF(e < 1e-5 && es < 1e-3, "N=%lld G=%lld Cg=%lld S=%lld across=%d affine=%d batch=%d shift=%g: error %.3g (stats %.3g)",
                       (long long)g.N, (long long)g.G, (long long)g.Cg, (long long)g.S, g.across_batch, affine, batch,
                       shift, e, es);
                worst = fmax(worst, e);
                free(x), free(dy), free(w), free(b), free(m0), free(v0), free(r0), free(m1), free(v1), free(m2), free(v2);
                free(y0), free(y1), free(y2), free(d0), free(d1), free(d2), free(dw0), free(db0), free(dw1), free(db1);
                free(dw2), free(db2), free(scr);
            }
            printf("  %s: worst relative error %.3g\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }
    /* BatchNorm fused with the ReLU after it: the forward's y and z, and
     * the backward from z's gradient, bit for bit what the separate passes
     * give (the backward recomputes y from x to mask the gradient). */
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "fast BatchNorm + ReLU fused (%s) equals the separate passes",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            for (int t = 0; t < 40; t++) {
                /* BatchNorm: statistics across the batch, one channel per group */
                cnni_norm_geom g = {pick(1, 5), pick(1, 6), 1, t % 3 == 0 ? pick(1, 20) : pick(1, 900), 1};
                int64_t n = g.N * g.G * g.S, C = g.G, ns = cnni_norm_nstat(&g);
                float *x = malloc(4 * (size_t)n), *dz = malloc(4 * (size_t)n), *w = malloc(4 * (size_t)C),
                      *b = malloc(4 * (size_t)C);
                for (int64_t i = 0; i < n; i++) {
                    x[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                    dz[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                    if (i % 17 == 3)
                        x[i] = x[i > 0 ? i - 1 : 0]; /* ties */
                }
                if (t == 5 && n > 2)
                    x[1] = NAN, dz[2] = NAN;
                for (int64_t c = 0; c < C; c++) {
                    w[c] = (float)cnni_rng_uniform_range(&rng, -1.5, 1.5);
                    b[c] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                }
                int affine = (int)pick(0, 1), batch = (int)pick(0, 1);
                if (t % 4 == 1) /* a channel whose output is exactly 0: ReLU passes no gradient there */
                    affine = 1, w[0] = 0, b[0] = 0;
                const float *wa = affine ? w : NULL, *ba = affine ? b : NULL;
                double *m = malloc(8 * (size_t)ns), *r = malloc(8 * (size_t)ns);
                cnni_norm_fast_stats(isa, p2, &g, x, m, r);
                for (int64_t i = 0; i < ns; i++)
                    r[i] = 1.0 / sqrt(r[i] + 1e-5);
                float *y0 = malloc(4 * (size_t)n), *z0 = malloc(4 * (size_t)n), *y1 = malloc(4 * (size_t)n),
                      *z1 = malloc(4 * (size_t)n), *gy = malloc(4 * (size_t)n);
                cnni_norm_fast_forward(isa, p2, &g, x, m, r, wa, ba, y0, NULL);
                for (int64_t i = 0; i < n; i++) {
                    z0[i] = y0[i] > 0 ? y0[i] : (y0[i] != y0[i] ? y0[i] : 0.0f);
                    gy[i] = y0[i] <= 0 ? 0.0f : dz[i]; /* the ReLU's gradient: NaN passes dz, as PyTorch */
                }
                cnni_norm_fast_forward(isa, (t & 1) ? p1 : p2, &g, x, m, r, wa, ba, y1, z1);
                CHECKF(!memcmp(y0, y1, 4 * (size_t)n) && !memcmp(z0, z1, 4 * (size_t)n),
                       "forward N=%lld C=%lld S=%lld affine=%d", (long long)g.N, (long long)C, (long long)g.S,
                       affine);
                float *d0 = malloc(4 * (size_t)n), *d1 = malloc(4 * (size_t)n);
                float *dw0 = calloc((size_t)C, 4), *db0 = calloc((size_t)C, 4), *dw1 = calloc((size_t)C, 4),
                      *db1 = calloc((size_t)C, 4);
                void *scr = malloc(cnni_norm_fast_scratch(&g));
                cnni_norm_fast_backward(isa, p2, &g, x, gy, m, r, wa, NULL, 0, batch, d0, dw0, db0, NULL, scr);
                cnni_norm_fast_backward(isa, (t & 1) ? p1 : p2, &g, x, dz, m, r, wa, ba, 1, batch, d1, dw1, db1,
                                        NULL, scr);
                CHECKF(!memcmp(d0, d1, 4 * (size_t)n) && !memcmp(dw0, dw1, 4 * (size_t)C) &&
                           !memcmp(db0, db1, 4 * (size_t)C),
                       "backward N=%lld C=%lld S=%lld affine=%d batch=%d", (long long)g.N, (long long)C,
                       (long long)g.S, affine, batch);
                free(x), free(dz), free(w), free(b), free(m), free(r), free(y0), free(z0), free(y1), free(z1);
                free(gy), free(d0), free(d1), free(dw0), free(db0), free(dw1), free(db1), free(scr);
            }
        }
    }
    /* Statistics where float sums overflow or cancel: constant channels far
     * from 0 (exact mean, variance 0), an inf (mean inf, variance NaN, as
     * PyTorch), one value of 1e20 among small ones (its square overflows
     * float). */
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "fast norm statistics of extreme inputs (%s)", cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            const float consts[4] = {1e10f, 1e18f, 1e30f, 3e38f};
            cnni_norm_geom g = {8, 6, 1, 50, 1};
            const int64_t n = g.N * g.G * g.S;
            float *x = malloc(4 * (size_t)n);
            double m[6], v[6];
            for (int64_t i = 0; i < n; i++) {
                const int64_t c = (i / g.S) % g.G;
                x[i] = c < 4 ? consts[c] : (float)cnni_rng_uniform_range(&rng, -1, 1);
            }
            x[4 * g.S + 7] = INFINITY;            /* channel 4, image 0 */
            x[(6 + 5) * g.S + 3] = 1e20f;         /* channel 5, image 1 */
            cnni_norm_fast_stats(isa, p2, &g, x, m, v);
            for (int c = 0; c < 4; c++)
                CHECKF(m[c] == (double)consts[c] && v[c] == 0, "constant %g: mean %.17g, var %g", (double)consts[c],
                       m[c], v[c]);
            CHECKF(isinf(m[4]) && m[4] > 0 && isnan(v[4]), "with inf: mean %g, var %g", m[4], v[4]);
            double s = 0, ss = 0;
            for (int64_t k = 0; k < g.N; k++)
                for (int64_t i = 0; i < g.S; i++)
                    s += x[(k * g.G + 5) * g.S + i];
            const double mm = s / (double)(g.N * g.S);
            for (int64_t k = 0; k < g.N; k++)
                for (int64_t i = 0; i < g.S; i++)
                    ss += ((double)x[(k * g.G + 5) * g.S + i] - mm) * ((double)x[(k * g.G + 5) * g.S + i] - mm);
            const double vv = ss / (double)(g.N * g.S);
            CHECKF(fabs(m[5] - mm) <= 1e-9 * fabs(mm) && fabs(v[5] - vv) <= 1e-9 * vv, "with 1e20: mean %g vs %g, var %g vs %g",
                   m[5], mm, v[5], vv);
            free(x);
        }
    }
    /* With running statistics the input gradient is r w dy whatever x is:
     * a NaN or inf in x must not reach it (PyTorch's eval-mode backward),
     * with or without the fused ReLU. */
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "fast norm backward with running statistics ignores x (%s)",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            cnni_norm_geom g = {3, 2, 1, 37, 1};
            const int64_t n = g.N * g.G * g.S;
            float x[222], dy[222], dx[222], w[2] = {0.75f, -1.25f}, b[2] = {0.5f, 0.25f}, dw[2] = {0}, db[2] = {0};
            double m[2] = {0.125, -0.5}, r[2] = {1.5, 0.8};
            for (int64_t i = 0; i < n; i++) {
                x[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                dy[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
            }
            x[5] = NAN, x[40] = INFINITY, x[100] = -INFINITY, x[150] = NAN;
            void *scr = malloc(cnni_norm_fast_scratch(&g));
            for (int relu = 0; relu < 2; relu++) {
                cnni_norm_fast_backward(isa, p2, &g, x, dy, m, r, w, b, relu, 0, dx, dw, db, NULL, scr);
                for (int64_t i = 0; i < n; i++) {
                    const int64_t c = (i / g.S) % g.G;
                    const double y = ((double)x[i] - m[c]) * r[c] * w[c] + b[c];
                    /* the ReLU passes dy where y > 0 or y is NaN */
                    const double want = relu && y <= 0 ? 0.0 : r[c] * w[c] * dy[i];
                    CHECKF(fabs(dx[i] - want) <= 1e-6, "relu %d, x[%lld] = %g: dx %g, want %g", relu, (long long)i,
                           (double)x[i], (double)dx[i], want);
                }
            }
            free(scr);
        }
    }
    cnni_pool_destroy(p1);
    cnni_pool_destroy(p2);
    return test_finish();
}
