/* Finite-difference gradient checks, in double precision, of the
 * normalisation kernels (norm_ref.h) in both forms: batch statistics
 * (training, and GroupNorm/LayerNorm always), where the mean and variance
 * depend on x, and constant statistics (eval mode with running statistics).
 * For a random r, L = sum(y * r); the backward kernel's dx, dw, db must
 * match central differences. Random shapes cover the views of BatchNorm,
 * InstanceNorm, GroupNorm and LayerNorm, with and without weight and bias.
 *
 * Then laws checked through the library: LayerNorm(bias=False) (absent in
 * torch 1.13) equals LayerNorm with a zero bias minus the bias parameter,
 * and a few of PyTorch's rejections carry their message. */
#include "gradcheck.h"
#include "kernels/ref/norm_ref.h"

typedef enum { V_BATCH, V_INSTANCE, V_GROUP, V_LAYER } view;
static const char *const view_name[] = {"BatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm"};

typedef struct {
    cnni_norm_geom g;
    int from_batch;
    double eps;
    double *x, *w, *b, *y, *r;
    double *mean, *rstd; /* constant statistics (eval form), or scratch */
    int64_t nx, nc, nstat;
} norm_case;

static void statistics(norm_case *c)
{
    cnni_ref_norm_stats_f64(&c->g, c->x, c->mean, c->rstd);
    for (int64_t i = 0; i < c->nstat; i++)
        c->rstd[i] = 1.0 / sqrt(c->rstd[i] + c->eps);
}

static double norm_loss(void *ctx)
{
    norm_case *c = ctx;
    if (c->from_batch)
        statistics(c);
    cnni_ref_norm_forward_f64(&c->g, c->x, c->mean, c->rstd, c->w, c->b, c->y);
    return dot(c->y, c->r, c->nx);
}

static void random_case(norm_case *c, view v, int from_batch)
{
    memset(c, 0, sizeof *c);
    cnni_norm_geom *g = &c->g;
    switch (v) {
    case V_BATCH:
        *g = (cnni_norm_geom){.N = pick(1, 4), .G = pick(1, 4), .Cg = 1, .S = pick(1, 6),
                              .across_batch = 1};
        if (g->N * g->S < 2)
            g->N = 2;
        break;
    case V_INSTANCE:
        *g = (cnni_norm_geom){.N = pick(1, 3), .G = pick(1, 4), .Cg = 1, .S = pick(2, 8)};
        break;
    case V_GROUP:
        *g = (cnni_norm_geom){.N = pick(1, 3), .G = pick(1, 3), .Cg = pick(1, 3), .S = pick(1, 5)};
        break;
    case V_LAYER:
        *g = (cnni_norm_geom){.N = pick(1, 4), .G = 1, .Cg = pick(1, 12), .S = 1};
        break;
    }
    static const double epss[] = {1e-5, 1e-3, 0.1, 0.0};
    c->from_batch = from_batch;
    /* eps 0 only where no statistic can have zero variance. */
    c->eps = epss[pick(0, cnni_norm_count(g) > 1 && !from_batch ? 3 : 2)];
    c->nx = g->N * g->G * g->Cg * g->S;
    c->nc = g->G * g->Cg;
    c->nstat = cnni_norm_nstat(g);
    c->x = rand_vec(c->nx);
    c->y = rand_vec(c->nx);
    c->r = rand_vec(c->nx);
    c->w = pick(0, 3) ? rand_vec(c->nc) : NULL;
    c->b = pick(0, 3) ? rand_vec(c->nc) : NULL;
    c->mean = rand_vec(c->nstat);
    c->rstd = rand_vec(c->nstat);
    /* A shifted input checks that the variance survives a large mean. */
    if (pick(0, 3) == 0)
        for (int64_t i = 0; i < c->nx; i++)
            c->x[i] += 50.0;
    if (from_batch) {
        statistics(c);
    } else {
        for (int64_t i = 0; i < c->nstat; i++) {
            c->mean[i] = c->mean[i] * 0.5;
            c->rstd[i] = 1.0 / sqrt(fabs(c->rstd[i]) + 0.2 + c->eps);
        }
    }
}

static void free_case(norm_case *c)
{
    free(c->x);
    free(c->w);
    free(c->b);
    free(c->y);
    free(c->r);
    free(c->mean);
    free(c->rstd);
}

static void check_norm(view v, int from_batch, int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        norm_case c;
        random_case(&c, v, from_batch);
        const cnni_norm_geom *g = &c.g;
        double *dx = rand_vec(c.nx); /* overwritten: garbage must not leak in */
        /* dw and db accumulate: start from a known base and subtract it. */
        double *dw0 = rand_vec(c.nc), *db0 = rand_vec(c.nc);
        double *dw = malloc(sizeof(double) * (size_t)c.nc), *db = malloc(sizeof(double) * (size_t)c.nc);
        memcpy(dw, dw0, sizeof(double) * (size_t)c.nc);
        memcpy(db, db0, sizeof(double) * (size_t)c.nc);
        cnni_ref_norm_backward_f64(g, c.x, c.r, c.mean, c.rstd, c.w, from_batch, dx,
                                   c.w ? dw : NULL, c.b ? db : NULL);
        for (int64_t i = 0; i < c.nc; i++) {
            dw[i] -= dw0[i];
            db[i] -= db0[i];
        }
        /* Without dx the parameter gradients are the same. */
        double *dw2 = calloc((size_t)c.nc, sizeof(double)), *db2 = calloc((size_t)c.nc, sizeof(double));
        cnni_ref_norm_backward_f64(g, c.x, c.r, c.mean, c.rstd, c.w, from_batch, NULL,
                                   c.w ? dw2 : NULL, c.b ? db2 : NULL);
        double same = 0;
        for (int64_t i = 0; i < c.nc; i++) {
            if (c.w)
                same = fmax(same, fabs(dw2[i] - dw[i]));
            if (c.b)
                same = fmax(same, fabs(db2[i] - db[i]));
        }
        double ex = fd_check(norm_loss, &c, c.x, dx, c.nx, 16);
        double ew = c.w ? fd_check(norm_loss, &c, c.w, dw, c.nc, 6) : 0;
        double eb = c.b ? fd_check(norm_loss, &c, c.b, db, c.nc, 6) : 0;
        double e = fmax(ex, fmax(ew, eb));
        if (!(e <= worst))
            worst = e;
        CHECKF(e < 1e-6 && same < 1e-12,
               "trial %d: %s %s N=%lld G=%lld Cg=%lld S=%lld eps=%g weight=%d bias=%d: relative "
               "error x %.3g w %.3g b %.3g (dw/db without dx differ by %.3g)",
               t, view_name[v], from_batch ? "batch stats" : "constant stats", (long long)g->N,
               (long long)g->G, (long long)g->Cg, (long long)g->S, c.eps, c.w != NULL,
               c.b != NULL, ex, ew, eb, same);
        free(dx);
        free(dw0);
        free(db0);
        free(dw);
        free(db);
        free(dw2);
        free(db2);
        free_case(&c);
    }
    printf("  %s, %s: worst relative error %.3g over %d random configurations\n", view_name[v],
           from_batch ? "batch statistics" : "constant statistics", worst, trials);
}

/* The statistics themselves: two-pass mean and biased variance, against
 * a direct sum per statistic, including an empty statistic (0 and 0). */
static void check_stats(void)
{
    double worst = 0;
    for (int t = 0; t < 40; t++) {
        norm_case c;
        random_case(&c, (view)pick(0, 3), 1);
        const cnni_norm_geom *g = &c.g;
        double *m = malloc(sizeof(double) * (size_t)c.nstat), *var = malloc(sizeof(double) * (size_t)c.nstat);
        cnni_ref_norm_stats_f64(g, c.x, m, var);
        for (int64_t st = 0; st < c.nstat; st++) {
            double s = 0, ss = 0;
            int64_t cnt = 0;
            for (int64_t n = 0; n < g->N; n++)
                for (int64_t grp = 0; grp < g->G; grp++) {
                    if (g->across_batch ? grp != st : n * g->G + grp != st)
                        continue;
                    for (int64_t i = 0; i < g->Cg * g->S; i++) {
                        s += c.x[(n * g->G + grp) * g->Cg * g->S + i];
                        cnt++;
                    }
                }
            double mu = s / (double)cnt;
            for (int64_t n = 0; n < g->N; n++)
                for (int64_t grp = 0; grp < g->G; grp++) {
                    if (g->across_batch ? grp != st : n * g->G + grp != st)
                        continue;
                    for (int64_t i = 0; i < g->Cg * g->S; i++) {
                        double d = c.x[(n * g->G + grp) * g->Cg * g->S + i] - mu;
                        ss += d * d;
                    }
                }
            CHECK(cnt == cnni_norm_count(g));
            worst = fmax(worst, fmax(fabs(m[st] - mu), fabs(var[st] - ss / (double)cnt)));
        }
        free(m);
        free(var);
        free_case(&c);
    }
    CHECKF(worst < 1e-12, "statistics differ from a direct sum by %.3g", worst);
    cnni_norm_geom empty = {.N = 2, .G = 3, .Cg = 1, .S = 0};
    double m[6] = {9, 9, 9, 9, 9, 9}, var[6] = {9, 9, 9, 9, 9, 9};
    cnni_ref_norm_stats_f64(&empty, NULL, m, var);
    for (int i = 0; i < 6; i++)
        CHECK(m[i] == 0 && var[i] == 0);
}

/* ---- through the library ---- */

static cnn_graph *planned(const char *text, const cnn_shape *shape)
{
    cnn_graph *g = NULL;
    if (cnn_graph_create(&g) || cnn_graph_parse(g, text, "law.txt") ||
        cnn_graph_plan(g, 1, shape, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        CHECKF(0, "%s: %s", text, g ? cnn_graph_errmsg(g) : "out of memory");
        cnn_graph_destroy(g);
        return NULL;
    }
    return g;
}

static void run_graph(cnn_graph *g, const float *x, const float *gy, size_t n)
{
    memcpy(cnn_graph_input_data(g, 0), x, n * sizeof(float));
    CHECK(cnn_graph_forward(g, 1) == CNN_OK);
    memcpy(cnn_graph_output_grad(g, 0), gy, n * sizeof(float));
    CHECK(cnn_graph_backward(g) == CNN_OK);
}

static void check_layernorm_no_bias(void)
{
    cnn_shape s = {3, {2, 3, 4}};
    float x[24], gy[24];
    for (int i = 0; i < 24; i++) {
        x[i] = (float)cnni_rng_uniform_range(&rng, -2, 2);
        gy[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
    }
    cnn_graph *a = planned("LayerNorm([3, 4], bias=False)\n", &s);
    cnn_graph *b = planned("LayerNorm([3, 4], 1e-5, True, True)\n", &s);
    if (a && b) {
        CHECK(cnn_graph_param_count(a) == 1 && cnn_graph_param_count(b) == 2);
        cnn_param_info pa, pb, bias;
        cnn_graph_param(a, 0, &pa);
        cnn_graph_param(b, 0, &pb);
        cnn_graph_param(b, 1, &bias);
        CHECK(strcmp(pa.name, "0.weight") == 0 && pa.shape.ndim == 2 && strcmp(bias.name, "0.bias") == 0);
        for (int i = 0; i < 12; i++) {
            ((float *)pa.data)[i] = ((float *)pb.data)[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
            CHECK(((float *)bias.data)[i] == 0.0f);
        }
        run_graph(a, x, gy, 24);
        run_graph(b, x, gy, 24);
        float *ya, *yb;
        cnn_graph_output(a, 0, (void **)&ya, NULL, NULL);
        cnn_graph_output(b, 0, (void **)&yb, NULL, NULL);
        const float *dxa = cnn_graph_input_grad(a, 0), *dxb = cnn_graph_input_grad(b, 0);
        double ey = 0, ex = 0, ew = 0;
        for (int i = 0; i < 24; i++) {
            ey = fmax(ey, fabs(ya[i] - yb[i]));
            ex = fmax(ex, fabs(dxa[i] - dxb[i]));
        }
        for (int i = 0; i < 12; i++)
            ew = fmax(ew, fabs(pa.grad[i] - pb.grad[i]));
        CHECKF(ey == 0 && ex == 0 && ew == 0,
               "LayerNorm(bias=False) differs from a zero bias: output %.3g, input grad %.3g, "
               "weight grad %.3g",
               ey, ex, ew);
    }
    cnn_graph_destroy(a);
    cnn_graph_destroy(b);
}

/* Messages of rejected configurations: at construction, planning, forward. */
static void check_errors(void)
{
    struct {
        const char *model;
        int64_t dims[4];
        int ndim, training;
        cnn_status want;
        const char *frag;
    } cases[] = {
        {"GroupNorm(4, 6)\n", {0}, 0, 0, CNN_ERR_CONFIG, "divisible by num_groups"},
        {"GroupNorm(0, 6)\n", {0}, 0, 0, CNN_ERR_CONFIG, "num_groups"},
        {"LayerNorm(())\n", {0}, 0, 0, CNN_ERR_CONFIG, "at least 1-dimensional"},
        {"BatchNorm2d(-1)\n", {0}, 0, 0, CNN_ERR_CONFIG, "negative"},
        {"InstanceNorm2d(3, momentum=None)\n", {0}, 0, 0, CNN_ERR_CONFIG, "momentum"},
        {"LayerNorm([3, 4])\n", {2, 4, 3}, 3, 0, CNN_ERR_SHAPE, "[*, 3, 4]"},
        {"BatchNorm2d(3)\n", {2, 3, 4}, 3, 0, CNN_ERR_SHAPE, "expected 4D input, got 3D"},
        {"BatchNorm1d(3)\n", {2, 4}, 2, 0, CNN_ERR_SHAPE, "expected input with 3 channels"},
        {"BatchNorm1d(3)\n", {1, 3}, 2, 1, CNN_ERR_SHAPE, "more than 1 value per channel"},
        {"InstanceNorm1d(3)\n", {2, 3, 1}, 3, 0, CNN_ERR_SHAPE, "more than 1 spatial element"},
        {"GroupNorm(2, 4, affine=False)\n", {2, 5, 3}, 3, 0, CNN_ERR_SHAPE, "divisible"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnn_graph *g;
        cnn_graph_create(&g);
        cnn_status st = cnn_graph_parse(g, cases[i].model, "m.txt");
        if (!st && cases[i].ndim) {
            cnn_shape s = {cases[i].ndim, {0}};
            memcpy(s.dims, cases[i].dims, sizeof cases[i].dims);
            st = cnn_graph_plan(g, 1, &s, NULL, 0);
            if (!st) {
                int64_t n = 1;
                for (int d = 0; d < s.ndim; d++)
                    n *= s.dims[d];
                for (int64_t k = 0; k < n; k++)
                    ((float *)cnn_graph_input_data(g, 0))[k] = (float)k;
                st = cnn_graph_forward(g, cases[i].training);
            }
        }
        CHECK_ERR(st, cases[i].want, cnn_graph_errmsg(g), cases[i].frag);
        cnn_graph_destroy(g);
    }
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    for (int v = V_BATCH; v <= V_LAYER; v++)
        for (int from_batch = 1; from_batch >= 0; from_batch--) {
            char name[96];
            snprintf(name, sizeof name, "%s gradients, %s (double, finite differences)",
                     view_name[v], from_batch ? "batch statistics" : "constant statistics");
            TEST(name) check_norm((view)v, from_batch, 40);
        }
    TEST("normalisation statistics: two-pass mean and variance") check_stats();
    TEST("LayerNorm(bias=False) equals a zero bias without the parameter") check_layernorm_no_bias();
    TEST("normalisation: PyTorch's rejections, with messages") check_errors();
    return test_finish();
}
