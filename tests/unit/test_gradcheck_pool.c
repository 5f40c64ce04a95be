/* Finite-difference gradient checks, in double precision, of the pooling
 * reference kernels (max, average, adaptive, unpooling) over random shapes
 * and every option, plus the cases where PyTorch's choice of element is a
 * convention rather than calculus: ties, NaN, empty windows, bad indices.
 * For a random r, L = sum(y * r); each backward kernel's gradient of L must
 * match central differences. */
#include "gradcheck.h"
#include "kernels/ref/pool_ref.h"

/* Max pooling needs inputs without near-ties, or a perturbation of h could
 * move the argmax: distinct values at least 1e-3 apart, in random order. */
static double *distinct_vec(int64_t n)
{
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = -1 + 2.0 * (double)i / (double)(n ? n : 1);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = pick(0, i);
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
}

/* The layer's output-size rule (PyTorch's pooling_output_shape). */
static int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil_mode)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t q = num / s - (num % s != 0 && num < 0);
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

enum { K_MAX, K_AVG, K_AMAX, K_AAVG };

typedef struct {
    int kind;
    cnni_pool_geom g;
    double *x, *y, *r;
    int64_t *idx;
    int64_t nx, ny;
} pool_case;

static double pool_loss(void *ctx)
{
    pool_case *c = ctx;
    switch (c->kind) {
    case K_MAX: cnni_ref_maxpool_forward_f64(&c->g, c->x, c->y, c->idx); break;
    case K_AVG: cnni_ref_avgpool_forward_f64(&c->g, c->x, c->y); break;
    case K_AMAX: cnni_ref_adaptive_max_forward_f64(&c->g, c->x, c->y, c->idx); break;
    case K_AAVG: cnni_ref_adaptive_avg_forward_f64(&c->g, c->x, c->y); break;
    }
    return dot(c->y, c->r, c->ny);
}

/* A random geometry for kind over nsp trailing dims. Windowed kinds draw
 * kernel, stride, padding <= kernel/2, dilation (max only) and ceil mode;
 * adaptive kinds draw output sizes both below and above the input's. */
static void random_geom(cnni_pool_geom *g, int kind, int nsp, int *ceil_mode)
{
    memset(g, 0, sizeof *g);
    g->NC = pick(1, 2) * pick(1, 3);
    *ceil_mode = (int)pick(0, 1);
    g->count_include_pad = (int)pick(0, 1);
    g->divisor = pick(0, 2) ? 0 : pick(-3, 5);
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->p[i] = 0;
        if (i < 3 - nsp)
            continue;
        if (kind == K_AMAX || kind == K_AAVG) {
            g->in[i] = pick(1, 7);
            g->out[i] = pick(1, 7);
            continue;
        }
        g->k[i] = pick(1, 4);
        g->s[i] = pick(1, 3);
        g->p[i] = pick(0, g->k[i] / 2);
        g->d[i] = kind == K_MAX ? pick(1, 2) : 1;
        int64_t span = g->d[i] * (g->k[i] - 1) + 1;
        g->in[i] = pick(span > 2 * g->p[i] + 1 ? span - 2 * g->p[i] : 1, span + 5);
        g->out[i] = pooled_size(g->in[i], g->k[i], g->s[i], g->p[i], g->d[i], *ceil_mode);
    }
}

static int geom_ok(const cnni_pool_geom *g)
{
    for (int i = 0; i < 3; i++)
        if (g->out[i] < 1)
            return 0;
    return 1;
}

static const char *kind_name(int kind)
{
    static const char *names[] = {"max pool", "average pool", "adaptive max pool",
                                  "adaptive average pool"};
    return names[kind];
}

static void check_pool(int kind, int nsp, int trials)
{
    double worst = 0;
    int done = 0, tries = 0;
    while (done < trials && tries < 50 * trials) {
        tries++;
        pool_case c;
        memset(&c, 0, sizeof c);
        c.kind = kind;
        int ceil_mode;
        random_geom(&c.g, kind, nsp, &ceil_mode);
        if (!geom_ok(&c.g))
            continue;
        cnni_pool_geom *g = &c.g;
        int64_t ip = cnni_pool_in_plane(g), op = cnni_pool_out_plane(g);
        c.nx = g->NC * ip;
        c.ny = g->NC * op;
        c.x = (kind == K_MAX || kind == K_AMAX) ? distinct_vec(c.nx) : rand_vec(c.nx);
        c.y = rand_vec(c.ny);
        c.r = rand_vec(c.ny);
        c.idx = calloc((size_t)c.ny, sizeof(int64_t));
        pool_loss(&c);
        /* A max window holding no input element (dilation past the input)
         * has no derivative: draw again. */
        int finite = 1;
        for (int64_t j = 0; j < c.ny; j++)
            finite &= isfinite(c.y[j]) != 0;
        if (!finite) {
            free(c.x);
            free(c.y);
            free(c.r);
            free(c.idx);
            continue;
        }
        double *dx = rand_vec(c.nx); /* garbage: backward must overwrite it */
        switch (kind) {
        case K_MAX:
        case K_AMAX: {
            double *acc = malloc(sizeof(double) * (size_t)ip);
            cnni_ref_argmax_backward_f64(g->NC, ip, op, c.r, c.idx, acc, dx);
            free(acc);
            break;
        }
        case K_AVG: cnni_ref_avgpool_backward_f64(g, c.r, dx); break;
        case K_AAVG: cnni_ref_adaptive_avg_backward_f64(g, c.r, dx); break;
        }
        double e = fd_check(pool_loss, &c, c.x, dx, c.nx, 24);
        if (e > worst)
            worst = e;
        CHECKF(e < 1e-6,
               "trial %d: %dd %s NC=%lld in=%lldx%lldx%lld out=%lldx%lldx%lld k=%lldx%lldx%lld "
               "s=%lldx%lldx%lld p=%lldx%lldx%lld d=%lldx%lldx%lld ceil=%d cip=%d div=%lld: "
               "relative error %.3g",
               done, nsp, kind_name(kind), (long long)g->NC, (long long)g->in[0],
               (long long)g->in[1], (long long)g->in[2], (long long)g->out[0], (long long)g->out[1],
               (long long)g->out[2], (long long)g->k[0], (long long)g->k[1], (long long)g->k[2],
               (long long)g->s[0], (long long)g->s[1], (long long)g->s[2], (long long)g->p[0],
               (long long)g->p[1], (long long)g->p[2], (long long)g->d[0], (long long)g->d[1],
               (long long)g->d[2], ceil_mode, g->count_include_pad, (long long)g->divisor, e);
        free(dx);
        free(c.x);
        free(c.y);
        free(c.r);
        free(c.idx);
        done++;
    }
    CHECKF(done == trials, "only %d of %d random geometries were usable", done, trials);
    printf("  %dd %s: worst relative error %.3g over %d random configurations\n", nsp,
           kind_name(kind), worst, done);
}

typedef struct {
    int64_t NC, ip, op;
    double *x, *y, *r;
    int64_t *idx;
} unpool_case;

static double unpool_loss(void *ctx)
{
    unpool_case *c = ctx;
    cnni_ref_unpool_forward_f64(c->NC, c->ip, c->op, c->x, c->idx, c->y);
    return dot(c->y, c->r, c->NC * c->op);
}

static void check_unpool(int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        unpool_case c;
        c.NC = pick(1, 4);
        c.ip = pick(1, 12);
        c.op = c.ip + pick(0, 20);
        c.x = rand_vec(c.NC * c.ip);
        c.y = rand_vec(c.NC * c.op);
        c.r = rand_vec(c.NC * c.op);
        c.idx = malloc(sizeof(int64_t) * (size_t)(c.NC * c.ip));
        /* Distinct indices per plane: with repeats only the last value
         * lands, and PyTorch's gradient (a gather) is not the derivative. */
        int64_t *perm = malloc(sizeof(int64_t) * (size_t)c.op);
        for (int64_t n = 0; n < c.NC; n++) {
            for (int64_t j = 0; j < c.op; j++)
                perm[j] = j;
            for (int64_t j = 0; j < c.ip; j++) {
                int64_t s = pick(j, c.op - 1);
                int64_t tmp = perm[j];
                perm[j] = perm[s];
                perm[s] = tmp;
                c.idx[n * c.ip + j] = perm[j];
            }
        }
        double *dx = rand_vec(c.NC * c.ip);
        int64_t bad = cnni_ref_unpool_backward_f64(c.NC, c.ip, c.op, c.r, c.idx, dx);
        CHECK(bad == -1);
        double e = fd_check(unpool_loss, &c, c.x, dx, c.NC * c.ip, 16);
        if (e > worst)
            worst = e;
        CHECKF(e < 1e-6, "trial %d: NC=%lld in=%lld out=%lld: relative error %.3g", t,
               (long long)c.NC, (long long)c.ip, (long long)c.op, e);
        free(perm);
        free(dx);
        free(c.x);
        free(c.y);
        free(c.r);
        free(c.idx);
    }
    printf("  max unpool: worst relative error %.3g over %d random configurations\n", worst, trials);
}

static cnni_pool_geom line_geom(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    cnni_pool_geom g;
    memset(&g, 0, sizeof g);
    g.NC = 1;
    for (int i = 0; i < 3; i++)
        g.in[i] = g.out[i] = g.k[i] = g.s[i] = g.d[i] = 1;
    g.in[2] = in;
    g.k[2] = k;
    g.s[2] = s;
    g.p[2] = p;
    g.d[2] = d;
    g.out[2] = pooled_size(in, k, s, p, d, 0);
    return g;
}

/* PyTorch's conventions, checked against values it gives (torch 1.13). */
static void check_conventions(void)
{
    /* MaxPool1d(3, stride=2) on [1, 3, 3, nan, 2, nan, 5]: indices [1, 3, 5]. */
    double x[7] = {1, 3, 3, NAN, 2, NAN, 5}, y[3];
    int64_t idx[3];
    cnni_pool_geom g = line_geom(7, 3, 2, 0, 1);
    cnni_ref_maxpool_forward_f64(&g, x, y, idx);
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 5);
    CHECK(y[0] == 3 && isnan(y[1]) && isnan(y[2]));
    /* MaxPool1d(4) on [nan, 2, nan, 1]: the last NaN wins, index 2. */
    double xn[4] = {NAN, 2, NAN, 1}, yn[1];
    g = line_geom(4, 4, 4, 0, 1);
    cnni_ref_maxpool_forward_f64(&g, xn, yn, idx);
    CHECK(idx[0] == 2 && isnan(yn[0]));
    /* MaxPool1d(2, padding=1) on all -inf: indices [0, 1, 3]. */
    double xi[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, yi[3];
    g = line_geom(4, 2, 2, 1, 1);
    cnni_ref_maxpool_forward_f64(&g, xi, yi, idx);
    CHECK(g.out[2] == 3 && idx[0] == 0 && idx[1] == 1 && idx[2] == 3);
    /* MaxPool1d(2, padding=1, dilation=3) on length 2: the window's taps
     * (-1 and 2) miss the input; PyTorch gives -inf and index 2. */
    double xe[2] = {0.5, -0.5}, ye[1], dxe[2] = {7, 7}, dye[1] = {1};
    g = line_geom(2, 2, 2, 1, 3);
    cnni_ref_maxpool_forward_f64(&g, xe, ye, idx);
    CHECK(g.out[2] == 1 && isinf(ye[0]) && ye[0] < 0 && idx[0] == 2);
    double acc[2];
    cnni_ref_argmax_backward_f64(1, 2, 1, dye, idx, acc, dxe);
    CHECK(dxe[0] == 0 && dxe[1] == 0);
    /* Unpooling: the last of equal indices wins; a bad index is reported. */
    double ux[4] = {1, 2, 3, 4}, uy[16], ug[16], udx[4];
    int64_t uidx[4] = {5, 5, 0, 5};
    CHECK(cnni_ref_unpool_forward_f64(1, 4, 16, ux, uidx, uy) == -1);
    CHECK(uy[5] == 4 && uy[0] == 3 && uy[1] == 0);
    for (int i = 0; i < 16; i++)
        ug[i] = i;
    CHECK(cnni_ref_unpool_backward_f64(1, 4, 16, ug, uidx, udx) == -1);
    CHECK(udx[0] == 5 && udx[1] == 5 && udx[2] == 0 && udx[3] == 5);
    uidx[2] = 16;
    CHECK(cnni_ref_unpool_forward_f64(1, 4, 16, ux, uidx, uy) == 2);
    uidx[2] = -1;
    CHECK(cnni_ref_unpool_forward_f64(1, 4, 16, ux, uidx, uy) == 2);
    /* An empty output plane checks no index, as in PyTorch. */
    CHECK(cnni_ref_unpool_forward_f64(1, 4, 0, ux, uidx, uy) == -1);
    /* AvgPool1d(3, stride=2, padding=1, ceil_mode=True) on length 4: the
     * last window [3, 6) is cut at the right padding (5), divisor 2. */
    double ax[4] = {1, 2, 3, 4}, ay[3];
    g = line_geom(4, 3, 2, 1, 1);
    g.out[2] = pooled_size(4, 3, 2, 1, 1, 1);
    g.count_include_pad = 1;
    cnni_ref_avgpool_forward_f64(&g, ax, ay);
    CHECK(g.out[2] == 3 && fabs(ay[0] - 1) < 1e-12 && fabs(ay[1] - 3) < 1e-12 &&
          fabs(ay[2] - 2) < 1e-12);
    /* Adaptive windows of 5 into 3: [0, 2), [1, 4), [3, 5). */
    double bx[5] = {1, 2, 3, 4, 5}, by[3];
    cnni_pool_geom ag = line_geom(5, 1, 1, 0, 1);
    ag.out[2] = 3;
    cnni_ref_adaptive_avg_forward_f64(&ag, bx, by);
    CHECK(fabs(by[0] - 1.5) < 1e-12 && fabs(by[1] - 3) < 1e-12 && fabs(by[2] - 4.5) < 1e-12);
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    for (int kind = K_MAX; kind <= K_AAVG; kind++)
        for (int nsp = 1; nsp <= 3; nsp++) {
            char name[96];
            snprintf(name, sizeof name, "%s %dd gradients (double, finite differences)",
                     kind_name(kind), nsp);
            TEST(name) check_pool(kind, nsp, nsp == 3 ? 12 : 30);
        }
    TEST("max unpool gradients (double, finite differences)") check_unpool(30);
    TEST("pooling conventions: ties, NaN, empty windows, unpool indices, ceil-mode divisor")
        check_conventions();
    return test_finish();
}
