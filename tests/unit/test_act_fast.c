/* The fast activation kernels against the reference ones, for every kind
 * they cover and every instruction set this CPU has, on random values and
 * on the kinks (0, +-3, the Hardtanh bounds), large magnitudes and NaN. */
#include "gradcheck.h"
#include "core/cpu.h"
#include "kernels/act_fast.h"

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    const cnni_act kinds[] = {{CNNI_ACT_RELU, 0, 0},        {CNNI_ACT_LEAKY_RELU, 0.01, 0},
                              {CNNI_ACT_LEAKY_RELU, -0.3, 0}, {CNNI_ACT_HARDTANH, -1, 1},
                              {CNNI_ACT_HARDTANH, -1.78, 1.03},
                              {CNNI_ACT_HARDTANH, 0, 6},      {CNNI_ACT_HARDSIGMOID, 0, 0},
                              {CNNI_ACT_HARDSWISH, 0, 0},     {CNNI_ACT_SIGMOID, 0, 0},
                              {CNNI_ACT_TANH, 0, 0},          {CNNI_ACT_SILU, 0, 0},
                              {CNNI_ACT_ELU, 1.0, 0},         {CNNI_ACT_ELU, 0.5, 0}};
    const int64_t n = 1003;
    float *x = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
    float *y0 = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * n);
    float *d0 = malloc(sizeof(float) * n), *d1 = malloc(sizeof(float) * n);
    /* Kinks, including bounds given in double that are not floats (-1.78, 1.03). */
    const float special[] = {0.0f, -0.0f, 3.0f, -3.0f, 1.0f, -1.0f, 6.0f, 1e-5f, -1e-5f, 30.0f, -30.0f,
                             90.0f, -90.0f, 2.5e-4f, -2.5e-4f, -1.78f, 1.03f};
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "fast activations (%s) vs reference", cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                const cnni_act *a = &kinds[k];
                CHECK(cnni_act_fast_supported(a));
                for (int64_t i = 0; i < n; i++) {
                    x[i] = (float)cnni_rng_uniform_range(&rng, -8, 8);
                    dy[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                }
                for (size_t s = 0; s < sizeof special / sizeof special[0]; s++)
                    x[7 * s + 3] = special[s];
                cnni_ref_act_forward_f32(a, n, x, y0);
                cnni_act_fast_forward(isa, NULL, a, n, x, y1);
                cnni_ref_act_backward_f32(a, n, x, y0, dy, d0);
                cnni_act_fast_backward(isa, NULL, a, n, x, y0, dy, d1);
                for (int64_t i = 0; i < n; i++) {
                    /* y relative to itself (small values keep their precision:
                     * tanh and ELU near 0, sigmoid far below 0), down to 1e-30 */
                    double ey = fabs((double)y1[i] - y0[i]) / fmax(1e-30, fabs(y0[i]));
                    double ed = fabs((double)d1[i] - d0[i]) / fmax(1.0, fabs(d0[i]));
                    CHECKF(ey < 2e-6 && ed < 2e-6, "kind %zu x=%.9g: y %.9g vs %.9g, dx %.9g vs %.9g", k,
                           (double)x[i], (double)y1[i], (double)y0[i], (double)d1[i], (double)d0[i]);
                    worst = fmax(worst, fmax(ey, ed));
                }
                /* NaN propagates through every kind, as in PyTorch: at every
                 * position of a vector and in the tail. */
                for (int64_t i = 0; i < 40; i++)
                    x[i] = i % 3 ? NAN : (float)(i - 20);
                cnni_act_fast_forward(isa, NULL, a, 40, x, y1);
                for (int64_t i = 0; i < 40; i++)
                    CHECKF((y1[i] != y1[i]) == (i % 3 != 0), "kind %zu: f(%g) = %g", k, (double)x[i], (double)y1[i]);
                /* The gradient at NaN is the reference's (PyTorch's): dy passed
                 * by ReLU, Hardtanh and Hardswish, 0 from Hardsigmoid, NaN from
                 * the smooth kinds. */
                cnni_ref_act_forward_f32(a, 40, x, y0);
                cnni_ref_act_backward_f32(a, 40, x, y0, dy, d0);
                cnni_act_fast_backward(isa, NULL, a, 40, x, y0, dy, d1);
                for (int64_t i = 0; i < 40; i++)
                    CHECKF(d0[i] != d0[i] ? d1[i] != d1[i] : fabs((double)d1[i] - d0[i]) <= 2e-6 * fmax(1.0, fabs(d0[i])),
                           "kind %zu: gradient at %g: %g vs %g", k, (double)x[i], (double)d1[i], (double)d0[i]);
            }
            printf("  %s: worst relative difference %.3g\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }
    /* tanh to about 1 ulp, as PyTorch's: its gradient 1 - y^2 magnifies
     * the error near |x| = 3 (5 ulp there would be 6e-5 of the gradient). */
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "tanh within 2 ulp on [-12, 12] (%s; libm's within 3)", cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            const int64_t m = 120000;
            float *xs = malloc(sizeof(float) * m), *ys = malloc(sizeof(float) * m);
            for (int64_t i = 0; i < m; i++)
                xs[i] = (float)(-12.0 + 24.0 * (double)i / (double)(m - 1));
            const cnni_act t = {CNNI_ACT_TANH, 0, 0};
            cnni_act_fast_forward(isa, NULL, &t, m, xs, ys);
            double worst = 0, at = 0;
            for (int64_t i = 0; i < m; i++) {
                const double want = tanh((double)xs[i]);
                const float w = (float)want;
                const double ulp = w == 0 ? 1e-45 : (double)nextafterf(fabsf(w), INFINITY) - fabs((double)w);
                const double e = fabs((double)ys[i] - want) / ulp;
                if (e > worst)
                    worst = e, at = xs[i];
            }
            /* the portable kernel is the C library's tanhf (glibc's: 1.94 ulp here) */
            CHECKF(worst <= (isa == CNNI_ISA_GENERIC ? 3.0 : 2.0), "worst %.2f ulp at x = %.9g", worst, at);
            printf("  %s: worst %.2f ulp at x = %.6g\n", cnni_isa_name((cnni_isa)isa), worst, at);
            free(xs), free(ys);
        }
    }
    /* sigmoid over its whole float range, against double: relative to the
     * result, so the tiny values far below 0 keep their precision; 0 below
     * -88.72284, 1 for +inf, 0 for -inf, NaN kept. */
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "sigmoid within 4 ulp on [-88.7, 20] (%s)", cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            const int64_t m = 400000;
            float *xs = malloc(sizeof(float) * (m + 16)), *ys = malloc(sizeof(float) * (m + 16));
            for (int64_t i = 0; i < m; i++)
                xs[i] = (float)(-88.7 + 108.7 * (double)i / (double)(m - 1));
            const float edge[16] = {-88.72283f, -88.7228394f, -88.8f, -100.0f, -INFINITY, INFINITY, NAN, 87.0f,
                                    87.5f,      88.8f,        1e30f,  -1e30f,  0.0f,      -0.0f,    30.0f, -30.0f};
            memcpy(xs + m, edge, sizeof edge);
            const cnni_act t = {CNNI_ACT_SIGMOID, 0, 0};
            cnni_act_fast_forward(isa, NULL, &t, m + 16, xs, ys);
            double worst = 0, at = 0;
            for (int64_t i = 0; i < m; i++) {
                const double want = 1.0 / (1.0 + exp(-(double)xs[i]));
                const float w = (float)want;
                const double ulp = (double)nextafterf(fabsf(w), INFINITY) - fabs((double)w);
                const double e = fabs((double)ys[i] - want) / ulp;
                if (e > worst)
                    worst = e, at = xs[i];
            }
            CHECKF(worst <= 4.0, "worst %.2f ulp at x = %.9g", worst, at);
            printf("  %s: worst %.2f ulp at x = %.6g\n", cnni_isa_name((cnni_isa)isa), worst, at);
            const float *ye = ys + m;
            CHECKF(ye[0] > 0 && ye[0] < 1e-38f, "sigmoid(-88.72283) = %g", (double)ye[0]);
            /* the vector kernels give PyTorch's 0; the portable one libm's
             * denormal (the true value, within 3e-39 of 0) */
            const float tiny = isa == CNNI_ISA_GENERIC ? 3e-39f : 0.0f;
            CHECKF(ye[2] <= tiny && ye[3] <= tiny && ye[4] == 0 && ye[11] == 0 && ye[2] >= 0 && ye[3] >= 0,
                   "below -88.72284: %g %g %g %g", (double)ye[2], (double)ye[3], (double)ye[4], (double)ye[11]);
            CHECKF(ye[5] == 1 && ye[7] == 1 && ye[8] == 1 && ye[9] == 1 && ye[10] == 1 && ye[14] == 1,
                   "large x: %g %g %g %g %g %g", (double)ye[5], (double)ye[7], (double)ye[8], (double)ye[9],
                   (double)ye[10], (double)ye[14]);
            CHECKF(ye[6] != ye[6], "sigmoid(NaN) = %g", (double)ye[6]);
            CHECKF(ye[12] == 0.5f && ye[13] == 0.5f, "sigmoid(0) = %g, sigmoid(-0) = %g", (double)ye[12],
                   (double)ye[13]);
            CHECKF(fabs(ye[15] - 9.35762297e-14) < 4 * 1e-20, "sigmoid(-30) = %.9g", (double)ye[15]);
            free(xs), free(ys);
        }
    }
    free(x), free(dy), free(y0), free(y1), free(d0), free(d1);
    return test_finish();
}
