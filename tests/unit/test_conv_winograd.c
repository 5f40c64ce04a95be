/* The Winograd kernels against the reference convolution in double:
 * forward (with and without bias), backward data and backward weight (dw
 * and db added to what is there) on random 3x3 stride-1
 * geometries (odd sizes, tiles crossing every border, padding 0 to 2 on
 * each side independently, 1 to 80 channels, batch 1 to 3), with the
 * portable and the best instruction set's kernels; results bitwise equal
 * with 1, 2 and 3 threads; nothing written past the outputs; NaN and
 * infinities in x and dy, or all of them 3e38, give the reference's NaN,
 * infinities and values in every pass. Then the
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

/* A buffer of n floats, all v, then the guards. */
static float *fill_buf(int64_t n, float v)
{
    float *b = out_buf(n);
    for (int64_t i = 0; i < n; i++)
        b[i] = v;
    return b;
}

static double *zeros_d(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(double)); }

typedef struct {
    double fwd, bwd, wgt; /* wgt: the larger of dw's and db's */
} errs;

/* Runs forward, backward data and backward weight with `isa` on 1, 2 and
 * 3 threads; returns the errors, and checks bitwise equality, that dw and
 * db are added to, and the guards. */
static errs run_case(int isa, cnni_pool **pools, const cnni_conv_geom *g, int bias)
{
    const int64_t nx = g->N * g->C * vol(g->in), ny = g->N * g->O * vol(g->out), nw = g->O * g->C * 9;
    float *x = rand_f(nx, 1), *w = rand_f(nw, 1.0 / sqrt(9.0 * (double)g->C)), *b = rand_f(g->O, 1),
          *dy = rand_f(ny, 1);
    double *xd = to_d(x, nx), *wd = to_d(w, nw), *bd = to_d(b, g->O), *dyd = to_d(dy, ny);
    double *yr = malloc(sizeof(double) * (size_t)ny), *dxr = malloc(sizeof(double) * (size_t)nx);
    double *dwr = zeros_d(nw), *dbr = zeros_d(g->O);
    cnni_ref_conv_forward_f64(g, xd, wd, bias ? bd : NULL, yr);
    cnni_ref_conv_backward_data_f64(g, dyd, wd, dxr);
    cnni_ref_conv_backward_weight_f64(g, xd, dyd, dwr, bias ? dbr : NULL);
    size_t sb = cnni_conv_winograd_scratch(isa, g, 3), sw = cnni_conv_winograd_weight_scratch(isa, g, 3);
    void *scr = malloc(sb > sw ? sb : sw);
    errs e = {0, 0, 0};
    float *y[3], *dx[3], *dw[3], *db[3];
    for (int t = 0; t < 3; t++) {
        y[t] = out_buf(ny);
        dx[t] = out_buf(nx);
        dw[t] = fill_buf(nw, 0.0f);
        db[t] = fill_buf(g->O, 0.0f);
        cnni_conv_winograd_forward(isa, pools[t], g, x, w, bias ? b : NULL, y[t], scr);
        cnni_conv_winograd_backward_data(isa, pools[t], g, dy, w, dx[t], scr);
        cnni_conv_winograd_backward_weight(isa, pools[t], g, x, dy, dw[t], bias ? db[t] : NULL, scr);
        CHECK(guards_ok(y[t], ny) && guards_ok(dx[t], nx) && guards_ok(dw[t], nw) && guards_ok(db[t], g->O));
    }
    e.fwd = rel(y[0], yr, ny);
    e.bwd = rel(dx[0], dxr, nx);
    e.wgt = rel(dw[0], dwr, nw);
    if (bias)
        e.wgt = fmax(e.wgt, rel(db[0], dbr, g->O));
    else
        for (int64_t o = 0; o < g->O; o++)
            CHECK(db[0][o] == 0.0f);
    for (int t = 1; t < 3; t++)
        CHECKF(!memcmp(y[0], y[t], 4 * (size_t)ny) && !memcmp(dx[0], dx[t], 4 * (size_t)nx) &&
                   !memcmp(dw[0], dw[t], 4 * (size_t)nw) && !memcmp(db[0], db[t], 4 * (size_t)g->O),
               "results differ between 1 and %d threads", t + 1);
    /* dw and db are added to */
    float *dw2 = fill_buf(nw, 0.5f), *db2 = fill_buf(g->O, 0.5f);
    cnni_conv_winograd_backward_weight(isa, pools[1], g, x, dy, dw2, bias ? db2 : NULL, scr);
    int added = guards_ok(dw2, nw) && guards_ok(db2, g->O);
    for (int64_t i = 0; i < nw; i++)
        added &= dw2[i] == 0.5f + dw[0][i];
    for (int64_t o = 0; o < g->O; o++)
        added &= db2[o] == 0.5f + db[0][o];
    CHECKF(added, "dw, db not added to");
    free(dw2), free(db2);
    for (int t = 0; t < 3; t++)
        free(y[t]), free(dx[t]), free(dw[t]), free(db[t]);
    free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(dyd), free(yr), free(dxr), free(dwr),
        free(dbr), free(scr);
    return e;
}

/* The largest difference between a and the baseline b, relative to b's
 * largest magnitude. */
static double rel_f(const float *a, const float *b, int64_t n)
{
    double *bd = to_d(b, n);
    double r = rel(a, bd, n);
    free(bd);
    return r;
}

/* The instruction set's kernels against the portable ones (the baseline)
 * on one thread: every pass, outputs and gradients. */
static double vs_generic(int isa, cnni_pool *pool, const cnni_conv_geom *g)
{
    const int64_t nx = g->N * g->C * vol(g->in), ny = g->N * g->O * vol(g->out), nw = g->O * g->C * 9;
    float *x = rand_f(nx, 1), *w = rand_f(nw, 1.0 / sqrt(9.0 * (double)g->C)), *b = rand_f(g->O, 1),
          *dy = rand_f(ny, 1);
    size_t sb = cnni_conv_winograd_scratch(isa, g, 1), sw = cnni_conv_winograd_weight_scratch(isa, g, 1);
    void *scr = malloc(sb > sw ? sb : sw);
    const int isas[2] = {CNNI_ISA_GENERIC, isa};
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int i = 0; i < 2; i++) {
        y[i] = out_buf(ny);
        dx[i] = out_buf(nx);
        dw[i] = fill_buf(nw, 0.0f);
        db[i] = fill_buf(g->O, 0.0f);
        cnni_conv_winograd_forward(isas[i], pool, g, x, w, b, y[i], scr);
        cnni_conv_winograd_backward_data(isas[i], pool, g, dy, w, dx[i], scr);
        cnni_conv_winograd_backward_weight(isas[i], pool, g, x, dy, dw[i], db[i], scr);
    }
    double d = fmax(fmax(rel_f(y[1], y[0], ny), rel_f(dx[1], dx[0], nx)),
                    fmax(rel_f(dw[1], dw[0], nw), rel_f(db[1], db[0], g->O)));
    for (int i = 0; i < 2; i++)
        free(y[i]), free(dx[i]), free(dw[i]), free(db[i]);
    free(x), free(w), free(b), free(dy), free(scr);
    return d;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    const int best = (int)cnni_cpu_best_isa();
    cnni_pool *pools[3];
    for (int t = 0; t < 3; t++)
        cnni_pool_create(&pools[t], t + 1);
    /* every instruction set this machine runs, the portable kernels first */
    const int nisa = best + 1, isas[3] = {CNNI_ISA_GENERIC, CNNI_ISA_AVX2, CNNI_ISA_AVX512};

    for (int s = 0; s < nisa; s++) {
        const int isa = isas[s];
        char name[128];
        snprintf(name, sizeof name, "winograd (%s) vs reference: random geometries, forward, backward data, weight",
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
                double m = fmax(fmax(e.fwd, e.bwd), e.wgt);
                /* the weight gradient (and the bias's) sums N * out values:
                 * its rounding grows with their square root (seed
                 * 1795559348, generic: N=2 C=49 O=1, 598 values a sum,
                 * 1.44e-5 against the float reference) */
                const double wtol = 1e-5 * fmax(1.0, sqrt((double)(g.N * g.out[1] * g.out[2]) / 100.0));
                CHECKF(fmax(e.fwd, e.bwd) < 1e-5 && e.wgt < wtol,
                       "N=%lld C=%lld O=%lld in %lldx%lld out %lldx%lld pad %lld,%lld bias %d: error fwd %.3g bwd %.3g "
                       "weight %.3g",
                       (long long)g.N, (long long)g.C, (long long)g.O, (long long)g.in[1], (long long)g.in[2],
                       (long long)g.out[1], (long long)g.out[2], (long long)g.p[1], (long long)g.p[2], bias, e.fwd,
                       e.bwd, e.wgt);
                worst = fmax(worst, m);
            }
            printf("  %s: worst relative error %.3g\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }

    for (int s = 0; s < nisa; s++) {
        const int isa = isas[s];
        char name[160];
        snprintf(name, sizeof name,
                 "winograd (%s) with NaN, infinities or all 3e38 in x and dy: the reference's NaN, infinities, values",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            /* A transform spreads such a value over its tile, and over every
             * tile whose patch holds it; those tiles are summed directly. */
            for (int t = 0; t < 24; t++) {
                cnni_conv_geom g;
                const int64_t p = pick(0, 2), lo = 3 - 2 * p > 1 ? 3 - 2 * p : 1;
                geom2d(&g, pick(1, 2), pick(1, 40), pick(1, 40), pick(lo, 19), pick(lo, 19), p, p, p, p);
                const int64_t nx = g.N * g.C * vol(g.in), ny = g.N * g.O * vol(g.out), nw = g.O * g.C * 9;
                float *x = rand_f(nx, 1), *w = rand_f(nw, 1.0 / sqrt(9.0 * (double)g.C)), *b = rand_f(g.O, 1),
                      *dy = rand_f(ny, 1);
                if (t % 6 == 5) {
                    /* every input 3e38 (or -3e38): the transforms overflow
                     * where the direct sums, up to 3e38 or past it, do not
                     * or give +-inf */
                    const float big = t % 4 == 1 ? 3e38f : -3e38f;
                    for (int64_t i = 0; i < nx; i++)
                        x[i] = big;
                    for (int64_t i = 0; i < ny; i++)
                        dy[i] = -big;
                    for (int64_t i = 0; i < nw; i++)
                        w[i] = (float)(1.0 / (9.0 * (double)g.C));
                } else {
                    put_specials(x, nx, (int)pick(1, 3));
                    put_specials(dy, ny, (int)pick(1, 3));
                }
                double *xd = to_d(x, nx), *wd = to_d(w, nw), *bd = to_d(b, g.O), *dyd = to_d(dy, ny);
                double *yr = malloc(sizeof(double) * (size_t)ny), *dxr = malloc(sizeof(double) * (size_t)nx);
                cnni_ref_conv_forward_f64(&g, xd, wd, t % 2 ? bd : NULL, yr);
                cnni_ref_conv_backward_data_f64(&g, dyd, wd, dxr);
                /* the weight gradient is added to what dw held */
                float *dw0 = rand_f(nw, 1);
                double *dwr = to_d(dw0, nw);
                cnni_ref_conv_backward_weight_f64(&g, xd, dyd, dwr, NULL);
                size_t sb = cnni_conv_winograd_scratch(isa, &g, 2), sw = cnni_conv_winograd_weight_scratch(isa, &g, 2);
                void *scr = malloc(sb > sw ? sb : sw);
                float *y[2], *dx[2], *dw[2];
                for (int th = 0; th < 2; th++) {
                    y[th] = out_buf(ny);
                    dx[th] = out_buf(nx);
                    dw[th] = out_buf(nw);
                    memcpy(dw[th], dw0, 4 * (size_t)nw);
                    cnni_conv_winograd_forward(isa, pools[th], &g, x, w, t % 2 ? b : NULL, y[th], scr);
                    cnni_conv_winograd_backward_data(isa, pools[th], &g, dy, w, dx[th], scr);
                    cnni_conv_winograd_backward_weight(isa, pools[th], &g, x, dy, dw[th], NULL, scr);
                }
                char m1[128] = "", m2[128] = "", m3[128] = "";
                CHECKF(same_specials(y[0], yr, ny, 1e-5, m1, sizeof m1) &&
                           same_specials(dx[0], dxr, nx, 1e-5, m2, sizeof m2) &&
                           same_specials(dw[0], dwr, nw, 1e-5, m3, sizeof m3),
                       "N=%lld C=%lld O=%lld %lldx%lld pad %lld: forward %s, backward data %s, weight %s",
                       (long long)g.N, (long long)g.C, (long long)g.O, (long long)g.in[1], (long long)g.in[2],
                       (long long)p, m1, m2, m3);
                CHECK(!memcmp(y[0], y[1], 4 * (size_t)ny) && !memcmp(dx[0], dx[1], 4 * (size_t)nx) &&
                      !memcmp(dw[0], dw[1], 4 * (size_t)nw) && guards_ok(y[0], ny) && guards_ok(dx[0], nx) &&
                      guards_ok(dw[0], nw));
                for (int th = 0; th < 2; th++)
                    free(y[th]), free(dx[th]), free(dw[th]);
                free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(dyd), free(yr), free(dxr),
                    free(scr), free(dw0), free(dwr);
            }
        }
    }

    for (int s = 1; s < nisa; s++) {
        const int isa = isas[s];
        char name[128];
        snprintf(name, sizeof name, "winograd: the %s kernels agree with the portable ones",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            for (int t = 0; t < 12; t++) {
                cnni_conv_geom g;
                const int64_t p = pick(0, 2), H = pick(3 - 2 * p > 1 ? 3 - 2 * p : 1, 30);
                geom2d(&g, pick(1, 2), pick(1, 70), pick(1, 70), H, pick(3 - 2 * p > 1 ? 3 - 2 * p : 1, 30), p, p, p, p);
                const double d = vs_generic(isa, pools[0], &g);
                CHECKF(d < 3e-6, "N=%lld C=%lld O=%lld %lldx%lld pad %lld: difference %.3g", (long long)g.N,
                       (long long)g.C, (long long)g.O, (long long)g.in[1], (long long)g.in[2], (long long)p, d);
                worst = fmax(worst, d);
            }
            printf("  largest difference %.3g\n", worst);
        }
    }

    for (int si = nisa > 1 ? 1 : 0; si < nisa; si++) {
        const int isa = isas[si];
        char name[128];
        snprintf(name, sizeof name, "winograd (%s) error on wide layers stays 5x below PyTorch's tolerance",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            const int64_t chans[4] = {64, 128, 256, 512};
            for (int i = 0; i < 4; i++) {
                cnni_conv_geom g;
                const int64_t hw = i < 2 ? 14 : 9;
                geom2d(&g, 2, chans[i], i < 3 ? 64 : 32, hw, hw, 1, 1, 1, 1);
                errs e = run_case(isa, pools, &g, 1);
                printf("  %lld channels: relative error forward %.3g, backward data %.3g, weight %.3g\n",
                       (long long)chans[i], e.fwd, e.bwd, e.wgt);
                /* backward data measured up to 2.1e-6 (1 seed in 20 at 128 channels) */
                CHECKF(e.fwd < 2e-6 && e.bwd < 3e-6 && e.wgt < 2e-6, "%lld channels: error fwd %.3g bwd %.3g weight %.3g",
                       (long long)chans[i], e.fwd, e.bwd, e.wgt);
            }
        }

        snprintf(name, sizeof name, "winograd (%s) weight gradient over many tiles stays 2.5x below PyTorch's tolerance",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            /* long sums over tiles: 64 channels at 28x28, the main job's
             * 32 -> 64 channels at 14x14, and taken in several chunks (5000
             * tiles of 16 channels, 1849 of 48 and 32) */
            const int64_t shapes[5][4] = {{8, 64, 64, 28}, {48, 32, 64, 14}, {4, 96, 96, 41}, {2, 5, 7, 200}, {1, 33, 20, 170}};
            for (int i = 0; i < 5; i++) {
                cnni_conv_geom g;
                const int64_t *s = shapes[i];
                geom2d(&g, s[0], s[1], s[2], s[3], s[3], 1, 1, 1, 1);
                errs e = run_case(isa, pools, &g, i != 1);
                printf("  N=%lld C=%lld O=%lld %lldx%lld: relative error weight %.3g\n", (long long)s[0], (long long)s[1],
                       (long long)s[2], (long long)s[3], (long long)s[3], e.wgt);
                /* Measured over 40 seeds: up to 2.23e-6 for one 170x170
                 * image (seed 15; 1849 tiles in each sum), up to 2.6e-6 for
                 * 5 -> 7 channels (only 315 weights, the largest less far
                 * above the typical one), the others below 1.3e-6. PyTorch's
                 * float32 tolerance is 1e-5. */
                const double bound = 4e-6;
                CHECKF(e.fwd < 1e-5 && e.bwd < 1e-5 && e.wgt < bound, "error fwd %.3g bwd %.3g weight %.3g", e.fwd, e.bwd,
                       e.wgt);
            }
        }

    }

    TEST("winograd applies to wide 3x3 stride-1 layers only")
    {
        cnni_conv_geom g;
        geom2d(&g, 8, 128, 128, 28, 28, 1, 1, 1, 1);
        CHECK(cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g) && cnni_conv_winograd_applies_bwd(CNNI_ISA_AVX512, &g) &&
              cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_GENERIC, &g) && !cnni_conv_winograd_applies_weight(CNNI_ISA_GENERIC, &g));
        CHECK(cnni_conv_winograd_applies(CNNI_ISA_AVX2, &g) && cnni_conv_winograd_applies_weight(CNNI_ISA_AVX2, &g));
        /* AVX2 has no direct kernels: Winograd from 8 channels each side */
        geom2d(&g, 8, 16, 8, 28, 28, 1, 1, 1, 1);
        CHECK(cnni_conv_winograd_applies(CNNI_ISA_AVX2, &g) && cnni_conv_winograd_applies_bwd(CNNI_ISA_AVX2, &g) &&
              !cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 4, 16, 28, 28, 1, 1, 1, 1);
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX2, &g) && !cnni_conv_winograd_applies_bwd(CNNI_ISA_AVX2, &g));
        geom2d(&g, 8, 128, 128, 28, 28, 1, 1, 1, 1);
        g.s[2] = 2;
        g.out[2] = 14;
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g) && !cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 128, 128, 28, 28, 1, 1, 1, 1);
        g.G = 2;
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g) && !cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 128, 128, 28, 28, 1, 1, 1, 1);
        g.d[1] = 2;
        g.out[1] = 24;
        CHECK(!cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 3, 64, 28, 28, 1, 1, 1, 1);
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g) && !cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
        /* the weight gradient from fewer channels than the forward */
        geom2d(&g, 8, 16, 16, 28, 28, 1, 1, 1, 1);
        CHECK(!cnni_conv_winograd_applies(CNNI_ISA_AVX512, &g) && cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
        geom2d(&g, 8, 8, 8, 28, 28, 1, 1, 1, 1);
        CHECK(!cnni_conv_winograd_applies_weight(CNNI_ISA_AVX512, &g));
    }
    for (int t = 0; t < 3; t++)
        cnni_pool_destroy(pools[t]);
    return test_finish();
}
