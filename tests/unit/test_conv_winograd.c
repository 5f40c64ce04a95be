/* The Winograd kernels against the reference convolution in double:
 * forward (with and without bias) and backward data on random 3x3 stride-1
 * geometries (odd sizes, tiles crossing every border, padding 0 to 2 on
 * each side independently, 1 to 80 channels, batch 1 to 3), with the
 * portable and the best instruction set's kernels; results bitwise equal
 * with 1, 2 and 3 threads; nothing written past the outputs. Then the
 * error on wide layers (64 to 512 channels), which sets the margin against
 * PyTorch's tolerance of 1e-5 of the largest output. */
#include "gradcheck.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/conv_winograd.h"

#define GUARD 37
#define GUARD_VALUE 1234.5f

static float *rand_f(int64_t n, double scale)
{
    float *v = malloc(sizeof(float) * (size_t)(n + GUARD));
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(scale * cnni_rng_uniform_range(&rng, -1, 1));
    for (int64_t i = n; i < n + GUARD; i++)
        v[i] = GUARD_VALUE;
    return v;
}

static double *to_d(const float *v, int64_t n)
{
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

/* Largest error relative to the largest reference magnitude. */
static double rel(const float *a, const double *ref, int64_t n)
{
    double s = 0, w = 0;
    for (int64_t i = 0; i < n; i++)
        s = fmax(s, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - ref[i]));
    return s > 0 ? w / s : w;
}

static int guards_ok(const float *v, int64_t n)
{
    for (int64_t i = n; i < n + GUARD; i++)
        if (v[i] != GUARD_VALUE)
            return 0;
    return 1;
}

static float *out_buf(int64_t n)
{
    float *v = malloc(sizeof(float) * (size_t)(n + GUARD));
    for (int64_t i = 0; i < n; i++)
        v[i] = NAN; /* every output must be written */
    for (int64_t i = n; i < n + GUARD; i++)
        v[i] = GUARD_VALUE;
    return v;
}

static void geom2d(cnni_conv_geom *g, int64_t N, int64_t C, int64_t O, int64_t H, int64_t W, int64_t plo_h,
                   int64_t phi_h, int64_t plo_w, int64_t phi_w)
{
    memset(g, 0, sizeof *g);
    g->N = N, g->C = C, g->O = O, g->G = 1;
    g->in[0] = g->out[0] = g->k[0] = 1;
    g->in[1] = H, g->in[2] = W;
    g->k[1] = g->k[2] = 3;
    for (int i = 0; i < 3; i++)
        g->s[i] = g->d[i] = 1;
    g->p[1] = plo_h, g->p[2] = plo_w;
    g->out[1] = H + plo_h + phi_h - 2;
    g->out[2] = W + plo_w + phi_w - 2;
}

static int64_t vol(const int64_t *v) { return v[0] * v[1] * v[2]; }

typedef struct {
    double fwd, bwd;
} errs;

/* Runs forward and backward data with `isa` on 1, 2 and 3 threads;
 * returns the errors, and checks bitwise equality and the guards. */
static errs run_case(int isa, cnni_pool **pools, const cnni_conv_geom *g, int bias)
{
    const int64_t nx = g->N * g->C * vol(g->in), ny = g->N * g->O * vol(g->out), nw = g->O * g->C * 9;
    float *x = rand_f(nx, 1), *w = rand_f(nw, 1.0 / sqrt(9.0 * (double)g->C)), *b = rand_f(g->O, 1),
          *dy = rand_f(ny, 1);
    double *xd = to_d(x, nx), *wd = to_d(w, nw), *bd = to_d(b, g->O), *dyd = to_d(dy, ny);
    double *yr = malloc(sizeof(double) * (size_t)ny), *dxr = malloc(sizeof(double) * (size_t)nx);
    cnni_ref_conv_forward_f64(g, xd, wd, bias ? bd : NULL, yr);
    cnni_ref_conv_backward_data_f64(g, dyd, wd, dxr);
    void *scr = malloc(cnni_conv_winograd_scratch(isa, g, 3));
    errs e = {0, 0};
    float *y[3], *dx[3];
    for (int t = 0; t < 3; t++) {
        y[t] = out_buf(ny);
        dx[t] = out_buf(nx);
        cnni_conv_winograd_forward(isa, pools[t], g, x, w, bias ? b : NULL, y[t], scr);
        cnni_conv_winograd_backward_data(isa, pools[t], g, dy, w, dx[t], scr);
        CHECK(guards_ok(y[t], ny) && guards_ok(dx[t], nx));
    }
    e.fwd = rel(y[0], yr, ny);
    e.bwd = rel(dx[0], dxr, nx);
    for (int t = 1; t < 3; t++)
        CHECKF(!memcmp(y[0], y[t], 4 * (size_t)ny) && !memcmp(dx[0], dx[t], 4 * (size_t)nx),
               "results differ between 1 and %d threads", t + 1);
    for (int t = 0; t < 3; t++)
        free(y[t]), free(dx[t]);
    free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(dyd), free(yr), free(dxr), free(scr);
    return e;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    const int best = (int)cnni_cpu_best_isa();
    cnni_pool *pools[3];
    for (int t = 0; t < 3; t++)
        cnni_pool_create(&pools[t], t + 1);
    const int isas[2] = {CNNI_ISA_GENERIC, best};
    const int nisa = best == CNNI_ISA_AVX512 ? 2 : 1;

    for (int s = 0; s < nisa; s++) {
        const int isa = isas[s];
        char name[128];
        snprintf(name, sizeof name, "winograd (%s) vs reference: random geometries, forward and backward data",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            for (int t = 0; t < 40; t++) {
                cnni_conv_geom g;
                const int64_t plo_h = pick(0, 2), plo_w = pick(0, 2);
                /* mostly symmetric padding, as PyTorch's; sometimes not */
                const int64_t phi_h = t % 3 ? plo_h : pick(0, 2), phi_w = t % 3 ? plo_w : pick(0, 2);
                const int64_t H = pick(3 - plo_h - phi_h > 1 ? 3 - plo_h - phi_h : 1, 23);
                const int64_t W = pick(3 - plo_w - phi_w > 1 ? 3 - plo_w - phi_w : 1, 23);
                geom2d(&g, pick(1, 3), t % 4 == 0 ? pick(1, 17) : pick(17, 80), t % 4 == 1 ? pick(1, 17) : pick(17, 80),
                       H, W, plo_h, phi_h, plo_w, phi_w);
                const int bias = t % 2;
                errs e = run_case(isa, pools, &g, bias);
                double m = fmax(e.fwd, e.bwd);
                CHECKF(m < 1e-5,
                       "N=%lld C=%lld O=%lld in %lldx%lld out %lldx%lld pad %lld,%lld bias %d: error fwd %.3g bwd %.3g",
                       (long long)g.N, (long long)g.C, (long long)g.O, (long long)g.in[1], (long long)g.in[2],
                       (long long)g.out[1], (long long)g.out[2], (long long)g.p[1], (long long)g.p[2], bias, e.fwd,
                       e.bwd);
                worst = fmax(worst, m);
            }
            printf("  %s: worst relative error %.3g\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }

    TEST("winograd error on wide layers stays 5x below PyTorch's tolerance")
    {
        const int64_t chans[4] = {64, 128, 256, 512};
        for (int i = 0; i < 4; i++) {
            cnni_conv_geom g;
            const int64_t hw = i < 2 ? 14 : 9;
            geom2d(&g, 2, chans[i], i < 3 ? 64 : 32, hw, hw, 1, 1, 1, 1);
            errs e = run_case(best, pools, &g, 1);
            printf("  %lld channels: relative error forward %.3g, backward data %.3g\n", (long long)chans[i], e.fwd,
                   e.bwd);
            CHECKF(e.fwd < 2e-6 && e.bwd < 2e-6, "%lld channels: error fwd %.3g bwd %.3g", (long long)chans[i], e.fwd,
                   e.bwd);
        }
    }

    TEST("winograd applies to wide 3x3 stride-1 layers only")
    {
        cnni_conv_geom g;
        geom2d(&g, 8, 128, 128, 28, 28, 1, 1, 1, 1);
        CHECK(cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g) && cnni_conv_winograd_applies_bwd(CNNI_ISA_AVX512, &g));
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_GENERIC, &g));
        g.s[2] = 2;
        g.out[2] = 14;
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 128, 128, 28, 28, 1, 1, 1, 1);
        g.G = 2;
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 3, 64, 28, 28, 1, 1, 1, 1);
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g));
    }
    for (int t = 0; t < 3; t++)
        cnni_pool_destroy(pools[t]);
    return test_finish();
}
