/* Finite-difference gradient checks, in double precision, of the activation
 * and dropout family's reference kernels (every elementwise kind with random
 * constants, PReLU with its weight gradient, softmax and log-softmax along a
 * random axis, block scaling), over random shapes: for a random r,
 * L = sum(y * r), and the backward kernels' gradients must match central
 * differences. Also: the float build against the double one, and finite
 * results where naive formulas overflow. */
#include "gradcheck.h"
#include "kernels/ref/activation_ref.h"

static const char *kind_name(cnni_act_kind k)
{
    static const char *names[] = {"Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "GELU",
                                  "GELU(tanh)", "SiLU", "Hardtanh", "Hardsigmoid", "Hardswish",
                                  "Softplus"};
    return names[k];
}

/* Random constants for a kind, covering negative slopes and alphas, ranges
 * and Softplus's negative beta and small thresholds. */
static cnni_act random_act(cnni_act_kind kind)
{
    cnni_act a = {kind, 0, 0};
    switch (kind) {
    case CNNI_ACT_LEAKY_RELU: a.a = cnni_rng_uniform_range(&rng, -1.5, 1.5); break;
    case CNNI_ACT_ELU: a.a = cnni_rng_uniform_range(&rng, -2, 2); break;
    case CNNI_ACT_HARDTANH:
        a.a = cnni_rng_uniform_range(&rng, -3, 1);
        a.b = a.a + cnni_rng_uniform_range(&rng, 0.1, 4);
        break;
    case CNNI_ACT_SOFTPLUS:
        a.a = cnni_rng_uniform_range(&rng, 0.2, 4) * (pick(0, 3) == 0 ? -1 : 1);
        a.b = cnni_rng_uniform_range(&rng, -2, 25);
        break;
    default: break;
    }
    return a;
}

/* Points where the kind's derivative jumps (or, for Softplus with a small
 * threshold, its value): finite differences are meaningless near them. */
static int near_kink(const cnni_act *a, double v)
{
    const double m = 1e-4;
    switch (a->kind) {
    case CNNI_ACT_RELU:
    case CNNI_ACT_LEAKY_RELU:
    case CNNI_ACT_ELU: return fabs(v) < m;
    case CNNI_ACT_HARDTANH: return fabs(v - a->a) < m || fabs(v - a->b) < m;
    case CNNI_ACT_HARDSIGMOID:
    case CNNI_ACT_HARDSWISH: return fabs(v - 3) < m || fabs(v + 3) < m;
    case CNNI_ACT_SOFTPLUS: return fabs(v * a->a - a->b) < m * fabs(a->a);
    default: return 0;
    }
}

typedef struct {
    cnni_act act;
    int64_t n;
    double *x, *y, *r;
} act_case;

static double act_loss(void *ctx)
{
    act_case *c = ctx;
    cnni_ref_act_forward_f64(&c->act, c->n, c->x, c->y);
    return dot(c->y, c->r, c->n);
}

static void check_act(cnni_act_kind kind, int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        act_case c;
        c.act = random_act(kind);
        c.n = pick(1, 60);
        c.x = rand_vec(c.n);
        c.y = rand_vec(c.n);
        c.r = rand_vec(c.n);
        /* Inputs over [-6, 6): every piece of the hard functions. */
        for (int64_t i = 0; i < c.n; i++)
            do
                c.x[i] = cnni_rng_uniform_range(&rng, -6, 6);
            while (near_kink(&c.act, c.x[i]));
        double *dx = calloc((size_t)c.n, sizeof(double));
        cnni_ref_act_forward_f64(&c.act, c.n, c.x, c.y);
        cnni_ref_act_backward_f64(&c.act, c.n, c.x, c.y, c.r, dx);
        double e = fd_check(act_loss, &c, c.x, dx, c.n, 20);
        if (!(e <= worst))
            worst = e;
        CHECKF(e < 1e-6, "trial %d: %s(a=%g, b=%g) n=%lld: relative error %.3g", t, kind_name(kind),
               c.act.a, c.act.b, (long long)c.n, e);
        free(dx);
        free(c.x);
        free(c.y);
        free(c.r);
    }
    printf("  %s: worst relative error %.3g over %d random configurations\n", kind_name(kind), worst,
           trials);
}

/* PyTorch's gradients at the kinks, which finite differences cannot see. */
static void check_kinks(void)
{
    struct {
        cnni_act act;
        double x, slope;
    } cases[] = {
        {{CNNI_ACT_RELU, 0, 0}, 0.0, 0.0},
        {{CNNI_ACT_LEAKY_RELU, 0.1, 0}, 0.0, 0.1},
        {{CNNI_ACT_ELU, 0.5, 0}, 0.0, 0.5},
        {{CNNI_ACT_HARDTANH, -1, 1}, -1.0, 0.0},
        {{CNNI_ACT_HARDTANH, -1, 1}, 1.0, 0.0},
        {{CNNI_ACT_HARDTANH, 0, 6}, 0.0, 0.0},
        {{CNNI_ACT_HARDTANH, 0, 6}, 6.0, 0.0},
        {{CNNI_ACT_HARDSIGMOID, 0, 0}, -3.0, 0.0},
        {{CNNI_ACT_HARDSIGMOID, 0, 0}, 3.0, 0.0},
        {{CNNI_ACT_HARDSWISH, 0, 0}, -3.0, -0.5},
        {{CNNI_ACT_HARDSWISH, 0, 0}, 3.0, 1.5},
        {{CNNI_ACT_SOFTPLUS, 1, 3}, 3.0, 0.9525741268224333},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double y, dx, one = 1.0;
        cnni_ref_act_forward_f64(&cases[i].act, 1, &cases[i].x, &y);
        cnni_ref_act_backward_f64(&cases[i].act, 1, &cases[i].x, &y, &one, &dx);
        CHECKF(fabs(dx - cases[i].slope) < 1e-12, "%s at %g: gradient %.17g, PyTorch %.17g",
               kind_name(cases[i].act.kind), cases[i].x, dx, cases[i].slope);
    }
}

typedef struct {
    cnni_axis_geom g;
    int take_log;
    double *x, *w, *y, *r;
    int64_t n;
} axis_case;

static void random_axis(axis_case *c, int with_weight)
{
    c->g.outer = pick(1, 3);
    c->g.C = pick(1, 5);
    c->g.inner = pick(1, 4);
    c->n = c->g.outer * c->g.C * c->g.inner;
    c->x = rand_vec(c->n);
    for (int64_t i = 0; i < c->n; i++) {
        c->x[i] *= 3;
        if (with_weight && fabs(c->x[i]) < 1e-4)
            c->x[i] = 0.5;
    }
    c->w = rand_vec(c->g.C);
    c->y = rand_vec(c->n);
    c->r = rand_vec(c->n);
}

static void free_axis(axis_case *c)
{
    free(c->x);
    free(c->w);
    free(c->y);
    free(c->r);
}

static double prelu_loss(void *ctx)
{
    axis_case *c = ctx;
    cnni_ref_prelu_forward_f64(&c->g, c->x, c->w, c->y);
    return dot(c->y, c->r, c->n);
}

static void check_prelu(int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        axis_case c;
        random_axis(&c, 1);
        double *dx = calloc((size_t)c.n, sizeof(double));
        double *dw = calloc((size_t)c.g.C, sizeof(double));
        /* dw accumulates: start from a known value and remove it after. */
        for (int64_t i = 0; i < c.g.C; i++)
            dw[i] = 1.0;
        cnni_ref_prelu_backward_f64(&c.g, c.x, c.w, c.r, dx, dw);
        for (int64_t i = 0; i < c.g.C; i++)
            dw[i] -= 1.0;
        double ex = fd_check(prelu_loss, &c, c.x, dx, c.n, 16);
        double ew = fd_check(prelu_loss, &c, c.w, dw, c.g.C, 8);
        /* dx may be skipped (NULL) and dw must then be the same. */
        double *dw2 = calloc((size_t)c.g.C, sizeof(double));
        cnni_ref_prelu_backward_f64(&c.g, c.x, c.w, c.r, NULL, dw2);
        int same = 1;
        for (int64_t i = 0; i < c.g.C; i++)
            same &= fabs(dw2[i] - dw[i]) < 1e-12;
        CHECKF(same, "trial %d: weight gradient differs without dx", t);
        double e = fmax(ex, ew);
        if (!(e <= worst))
            worst = e;
        CHECKF(e < 1e-6, "trial %d: PReLU outer=%lld C=%lld inner=%lld: relative error x %.3g w %.3g",
               t, (long long)c.g.outer, (long long)c.g.C, (long long)c.g.inner, ex, ew);
        free(dx);
        free(dw);
        free(dw2);
        free_axis(&c);
    }
    printf("  PReLU: worst relative error %.3g over %d random configurations\n", worst, trials);
}

static double softmax_loss(void *ctx)
{
    axis_case *c = ctx;
    cnni_ref_softmax_forward_f64(&c->g, c->take_log, c->x, c->y);
    return dot(c->y, c->r, c->n);
}

static void check_softmax(int take_log, int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        axis_case c;
        random_axis(&c, 0);
        c.take_log = take_log;
        double *dx = calloc((size_t)c.n, sizeof(double));
        cnni_ref_softmax_forward_f64(&c.g, take_log, c.x, c.y);
        cnni_ref_softmax_backward_f64(&c.g, take_log, c.y, c.r, dx);
        double e = fd_check(softmax_loss, &c, c.x, dx, c.n, 16);
        if (!(e <= worst))
            worst = e;
        CHECKF(e < 1e-6, "trial %d: %s outer=%lld D=%lld inner=%lld: relative error %.3g", t,
               take_log ? "LogSoftmax" : "Softmax", (long long)c.g.outer, (long long)c.g.C,
               (long long)c.g.inner, e);
        free(dx);
        free_axis(&c);
    }
    printf("  %s: worst relative error %.3g over %d random configurations\n",
           take_log ? "LogSoftmax" : "Softmax", worst, trials);
}

typedef struct {
    int64_t blocks, inner, n;
    double *x, *f, *y, *r;
} scale_case;

static double scale_loss(void *ctx)
{
    scale_case *c = ctx;
    cnni_ref_block_scale_f64(c->blocks, c->inner, c->x, c->f, c->y);
    return dot(c->y, c->r, c->n);
}

static void check_block_scale(int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        scale_case c;
        c.blocks = pick(1, 8);
        c.inner = pick(1, 6);
        c.n = c.blocks * c.inner;
        c.x = rand_vec(c.n);
        c.f = rand_vec(c.blocks);
        for (int64_t b = 0; b < c.blocks; b++)
            if (pick(0, 2) == 0)
                c.f[b] = 0; /* a dropped block */
        c.y = rand_vec(c.n);
        c.r = rand_vec(c.n);
        double *dx = calloc((size_t)c.n, sizeof(double));
        cnni_ref_block_scale_f64(c.blocks, c.inner, c.r, c.f, dx);
        double e = fd_check(scale_loss, &c, c.x, dx, c.n, 12);
        if (!(e <= worst))
            worst = e;
        CHECKF(e < 1e-6, "trial %d: blocks=%lld inner=%lld: relative error %.3g", t,
               (long long)c.blocks, (long long)c.inner, e);
        /* In place (y aliasing x, and f when inner is 1) gives the same. */
        double *z = malloc(sizeof(double) * (size_t)c.n);
        memcpy(z, c.x, sizeof(double) * (size_t)c.n);
        cnni_ref_block_scale_f64(c.blocks, c.inner, z, c.f, z);
        cnni_ref_block_scale_f64(c.blocks, c.inner, c.x, c.f, c.y);
        CHECK(memcmp(z, c.y, sizeof(double) * (size_t)c.n) == 0);
        free(z);
        free(dx);
        free(c.x);
        free(c.f);
        free(c.y);
        free(c.r);
    }
    printf("  block scale (dropout, RReLU): worst relative error %.3g over %d configurations\n",
           worst, trials);
}

/* The float build computes in double and rounds once: it must agree with
 * the double build to float precision. */
static void check_float_build(void)
{
    enum { N = 64 };
    float xf[N], yf[N], gf[N], dxf[N];
    double xd[N], yd[N], gd[N], dxd[N];
    double worst = 0;
    for (int kind = CNNI_ACT_SIGMOID; kind <= CNNI_ACT_SOFTPLUS; kind++) {
        cnni_act a = random_act((cnni_act_kind)kind);
        for (int i = 0; i < N; i++) {
            xf[i] = (float)cnni_rng_uniform_range(&rng, -8, 8);
            gf[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
            xd[i] = xf[i];
            gd[i] = gf[i];
        }
        cnni_ref_act_forward_f32(&a, N, xf, yf);
        cnni_ref_act_forward_f64(&a, N, xd, yd);
        cnni_ref_act_backward_f32(&a, N, xf, yf, gf, dxf);
        cnni_ref_act_backward_f64(&a, N, xd, yd, gd, dxd);
        for (int i = 0; i < N; i++) {
            double ey = fabs(yf[i] - yd[i]) / fmax(1, fabs(yd[i]));
            double ed = fabs(dxf[i] - dxd[i]) / fmax(1, fabs(dxd[i]));
            worst = fmax(worst, fmax(ey, ed));
            CHECKF(ey < 1e-6 && ed < 1e-6, "%s at %g: float %g / %g, double %g / %g",
                   kind_name(a.kind), xd[i], yf[i], dxf[i], yd[i], dxd[i]);
        }
    }
    printf("  float against double build: worst relative difference %.3g\n", worst);
}

static int all_finite(const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Where exp(|x|) overflows a naive formula gives inf or NaN. */
static void check_stability(void)
{
    double x[6] = {-1000, -100, -30, 30, 100, 1000};
    double y[6], dx[6], g[6] = {1, 1, 1, 1, 1, 1};
    cnni_act sig = {CNNI_ACT_SIGMOID, 0, 0};
    cnni_ref_act_forward_f64(&sig, 6, x, y);
    cnni_ref_act_backward_f64(&sig, 6, x, y, g, dx);
    CHECK(all_finite(y, 6) && all_finite(dx, 6) && y[0] == 0 && y[5] == 1);
    cnni_act silu = {CNNI_ACT_SILU, 0, 0};
    cnni_ref_act_forward_f64(&silu, 6, x, y);
    cnni_ref_act_backward_f64(&silu, 6, x, y, g, dx);
    CHECK(all_finite(y, 6) && all_finite(dx, 6) && y[5] == 1000);
    /* A threshold too large to switch to the identity: log(1 + e^z) must
     * still be finite and close to z. */
    cnni_act sp = {CNNI_ACT_SOFTPLUS, 1, 5000};
    cnni_ref_act_forward_f64(&sp, 6, x, y);
    cnni_ref_act_backward_f64(&sp, 6, x, y, g, dx);
    CHECK(all_finite(y, 6) && all_finite(dx, 6) && fabs(y[5] - 1000) < 1e-9 && y[0] >= 0);
    cnni_act elu = {CNNI_ACT_ELU, 1, 0};
    cnni_ref_act_forward_f64(&elu, 6, x, y);
    CHECK(all_finite(y, 6) && y[0] == -1);
    cnni_act gelu = {CNNI_ACT_GELU_TANH, 0, 0};
    cnni_ref_act_forward_f64(&gelu, 6, x, y);
    cnni_ref_act_backward_f64(&gelu, 6, x, y, g, dx);
    CHECK(all_finite(y, 6) && all_finite(dx, 6));
    /* Softmax of huge logits: max subtraction keeps it exact. */
    double lx[4] = {1000, 1001, -1000, 999}, ly[4], lg[4] = {1, 0, 0, 0}, ldx[4];
    cnni_axis_geom g4 = {1, 4, 1};
    cnni_ref_softmax_forward_f64(&g4, 0, lx, ly);
    cnni_ref_softmax_backward_f64(&g4, 0, ly, lg, ldx);
    CHECK(all_finite(ly, 4) && all_finite(ldx, 4) && fabs(ly[0] + ly[1] + ly[2] + ly[3] - 1) < 1e-15);
    cnni_ref_softmax_forward_f64(&g4, 1, lx, ly);
    cnni_ref_softmax_backward_f64(&g4, 1, ly, lg, ldx);
    CHECK(all_finite(ly, 4) && all_finite(ldx, 4) && fabs(ly[2] + 2001 + log1p(exp(-1) + exp(-2))) < 1e-9);
    float fx[3] = {88.0f, 89.0f, -89.0f}, fy[3];
    cnni_axis_geom g3 = {1, 3, 1};
    cnni_ref_softmax_forward_f32(&g3, 0, fx, fy);
    CHECK(isfinite(fy[0]) && isfinite(fy[1]) && fy[2] == 0);
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    for (int k = CNNI_ACT_SIGMOID; k <= CNNI_ACT_SOFTPLUS; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s gradients (double, finite differences)",
                 kind_name((cnni_act_kind)k));
        TEST(name) check_act((cnni_act_kind)k, 25);
    }
    TEST("gradients at the kinks are PyTorch's") check_kinks();
    TEST("PReLU input and weight gradients (double, finite differences)") check_prelu(40);
    TEST("Softmax gradients (double, finite differences)") check_softmax(0, 40);
    TEST("LogSoftmax gradients (double, finite differences)") check_softmax(1, 40);
    TEST("block scaling gradients (double, finite differences)") check_block_scale(30);
    TEST("float build agrees with the double build") check_float_build();
    TEST("no overflow for large |x| (sigmoid, SiLU, Softplus, ELU, GELU, softmax)") check_stability();
    return test_finish();
}
