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
    free(x), free(dy), free(y0), free(y1), free(d0), free(d1);
    return test_finish();
}
