/* Finite-difference gradient checks (double) of the loss kernels, over
 * random shapes and every option: reductions, weights broadcast from random
 * shapes, pos_weight, ignore_index, label smoothing, index and probability
 * targets; plus the data checks the forward kernels make. */
#include "gradcheck.h"
#include "kernels/ref/loss_ref.h"

static const char *red_name(int r)
{
    return r == CNNI_RED_NONE ? "none" : r == CNNI_RED_MEAN ? "mean" : "sum";
}

/* A loss evaluation f = <y, r> for whichever kernel `which` names. */
typedef struct {
    int which; /* 0 pointwise, 1 BCE, 2 BCE with logits, 3 class */
    int kind, reduction;
    double beta;
    int64_t n;
    cnni_loss_bcast b;
    cnni_class_geom g;
    cnni_class_opts o;
    double *x, *t, *w, *pw, *y, *r;
    int64_t *ti;
    int64_t ny;
} loss_case;

static double case_loss(void *ctx)
{
    loss_case *c = ctx;
    switch (c->which) {
    case 0:
        cnni_ref_pointwise_loss_forward_f64(c->kind, c->reduction, c->beta, c->n, c->x,
                                            c->ti ? NULL : c->t, c->ti, c->y);
        break;
    case 1:
        cnni_ref_bce_forward_f64(c->reduction, &c->b, c->x, c->t, c->w, c->y);
        break;
    case 2:
        cnni_ref_bce_logits_forward_f64(c->reduction, &c->b, c->x, c->t, c->w, c->pw, c->y);
        break;
    default:
        cnni_ref_class_loss_forward_f64(&c->g, &c->o, c->x, c->ti, c->ti ? NULL : c->t, c->w, c->y);
        break;
    }
    return dot(c->y, c->r, c->ny);
}

/* A random shape of 0..4 dims of sizes 1..4 into b; returns the element count. */
static int64_t rand_shape(cnni_loss_bcast *b)
{
    memset(b, 0, sizeof *b);
    b->ndim = (int)pick(0, 4);
    int64_t n = 1;
    for (int d = 0; d < b->ndim; d++)
        n *= b->dims[d] = pick(1, 4);
    return n;
}

/* A random weight shape that broadcasts to b's shape: a suffix of its dims,
 * some set to 1. Fills `stride` and returns the weight's element count. */
static int64_t rand_weight(const cnni_loss_bcast *b, int64_t *stride, char *desc, size_t dn)
{
    int wn = (int)pick(0, b->ndim);
    int64_t dims[CNNI_LOSS_MAX_DIMS], step = 1;
    size_t used = (size_t)snprintf(desc, dn, "(");
    for (int d = 0; d < wn; d++) {
        int64_t xd = b->dims[b->ndim - wn + d];
        dims[d] = pick(0, 2) ? xd : 1;
        used += (size_t)snprintf(desc + used, dn - used, "%s%lld", d ? "," : "", (long long)dims[d]);
    }
    snprintf(desc + used, dn - used, ")");
    for (int d = 0; d < b->ndim; d++)
        stride[d] = 0;
    for (int d = wn - 1; d >= 0; d--) {
        stride[b->ndim - wn + d] = dims[d] == 1 ? 0 : step;
        step *= dims[d];
    }
    return step;
}

/* Uniform in [lo, hi). */
static double *rand_range(int64_t n, double lo, double hi)
{
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = cnni_rng_uniform_range(&rng, lo, hi);
    return v;
}

static int64_t out_count(int reduction, int64_t n) { return reduction == CNNI_RED_NONE ? n : 1; }

static void free_case(loss_case *c)
{
    free(c->x), free(c->t), free(c->w), free(c->pw), free(c->y), free(c->r), free(c->ti);
}

static double test_pointwise(void)
{
    double worst = 0;
    for (int it = 0; it < 120; it++) {
        loss_case c;
        memset(&c, 0, sizeof c);
        c.which = 0;
        c.kind = (int)pick(0, 2);
        c.reduction = (int)pick(0, 2);
        c.beta = 1.0;
        if (c.kind == CNNI_LOSS_SMOOTH_L1)
            c.beta = pick(0, 3) ? cnni_rng_uniform_range(&rng, 0.1, 1.5) : 0.0;
        c.n = pick(1, 24);
        int int_target = c.kind != CNNI_LOSS_MSE && pick(0, 3) == 0;
        c.x = rand_range(c.n, -2, 2);
        if (int_target) {
            c.ti = malloc(sizeof(int64_t) * (size_t)c.n);
            for (int64_t i = 0; i < c.n; i++)
                c.ti[i] = pick(-2, 2);
            /* keep x off the kinks at the integer targets */
            for (int64_t i = 0; i < c.n; i++)
                c.x[i] = (double)c.ti[i] +
                         cnni_rng_uniform_range(&rng, 0.01, 0.6) * (pick(0, 1) ? 1 : -1);
        } else {
            c.t = rand_range(c.n, -2, 2);
        }
        c.ny = out_count(c.reduction, c.n);
        c.y = rand_vec(c.ny);
        c.r = rand_vec(c.ny);
        double *dx = calloc((size_t)c.n, sizeof(double)), *dt = calloc((size_t)c.n, sizeof(double));
        cnni_ref_pointwise_loss_backward_f64(c.kind, c.reduction, c.beta, c.n, c.x, c.t, c.ti, c.r,
                                             dx, int_target ? NULL : dt);
        double e = fd_check(case_loss, &c, c.x, dx, c.n, 12);
        if (!int_target)
            e = fmax(e, fd_check(case_loss, &c, c.t, dt, c.n, 12));
        CHECKF(e < 1e-6,
               "pointwise kind=%d reduction=%s beta=%g n=%lld int_target=%d: relative error %.3g",
               c.kind, red_name(c.reduction), c.beta, (long long)c.n, int_target, e);
        worst = fmax(worst, e);
        free(dx), free(dt);
        free_case(&c);
    }
    return worst;
}

static double test_bce(int logits)
{
    double worst = 0;
    for (int it = 0; it < 120; it++) {
        loss_case c;
        memset(&c, 0, sizeof c);
        c.which = logits ? 2 : 1;
        c.reduction = (int)pick(0, 2);
        c.n = rand_shape(&c.b);
        char wdesc[64] = "none", pdesc[64] = "none";
        if (pick(0, 1))
            c.w = rand_range(rand_weight(&c.b, c.b.wstride, wdesc, sizeof wdesc), 0.2, 2);
        if (logits && pick(0, 1))
            c.pw = rand_range(rand_weight(&c.b, c.b.pstride, pdesc, sizeof pdesc), 0.2, 3);
        c.x = logits ? rand_range(c.n, -4, 4) : rand_range(c.n, 0.05, 0.95);
        c.t = rand_range(c.n, 0, 1);
        c.ny = out_count(c.reduction, c.n);
        c.y = rand_vec(c.ny);
        c.r = rand_vec(c.ny);
        double *dx = calloc((size_t)c.n, sizeof(double)), *dt = calloc((size_t)c.n, sizeof(double));
        if (logits)
            cnni_ref_bce_logits_backward_f64(c.reduction, &c.b, c.x, c.t, c.w, c.pw, c.r, dx, dt);
        else
            cnni_ref_bce_backward_f64(c.reduction, &c.b, c.x, c.t, c.w, c.r, dx, dt);
        double e = fd_check(case_loss, &c, c.x, dx, c.n, 12);
        e = fmax(e, fd_check(case_loss, &c, c.t, dt, c.n, 12));
        CHECKF(e < 1e-6, "%s ndim=%d n=%lld reduction=%s weight %s pos_weight %s: relative error %.3g",
               logits ? "BCEWithLogits" : "BCE", c.b.ndim, (long long)c.n, red_name(c.reduction),
               wdesc, pdesc, e);
        worst = fmax(worst, e);
        free(dx), free(dt);
        free_case(&c);
    }
    return worst;
}

static double test_class(void)
{
    double worst = 0;
    for (int it = 0; it < 200; it++) {
        loss_case c;
        memset(&c, 0, sizeof c);
        c.which = 3;
        c.g.N = pick(1, 3);
        c.g.C = pick(1, 5);
        c.g.S = pick(0, 1) ? 1 : pick(1, 4);
        c.o.log_softmax = (int)pick(0, 1);
        c.o.reduction = (int)pick(0, 2);
        c.o.ignore_index = pick(0, 1) ? -100 : pick(0, c.g.C - 1);
        c.o.label_smoothing = c.o.log_softmax && pick(0, 1) ? cnni_rng_uniform_range(&rng, 0, 1) : 0;
        int probs = c.o.log_softmax && pick(0, 2) == 0;
        if (probs)
            c.o.ignore_index = -100;
        int64_t P = c.g.N * c.g.S, n = P * c.g.C;
        c.n = n;
        c.x = rand_range(n, c.o.log_softmax ? -3 : -4, c.o.log_softmax ? 3 : 0);
        if (pick(0, 1))
            c.w = rand_range(c.g.C, 0.2, 2);
        if (probs) {
            c.t = rand_range(n, 0, 1);
        } else {
            c.ti = malloc(sizeof(int64_t) * (size_t)P);
            int any = 0;
            for (int64_t p = 0; p < P; p++) {
                c.ti[p] = pick(0, 4) == 0 ? c.o.ignore_index : pick(0, c.g.C - 1);
                any |= c.ti[p] != c.o.ignore_index;
            }
            if (!any) {
                /* mean over nothing is NaN; keep one target for the check */
                c.ti[0] = c.o.ignore_index == 0 ? c.g.C - 1 : 0;
                if (c.ti[0] == c.o.ignore_index)
                    c.o.ignore_index = -100;
            }
        }
        c.ny = out_count(c.o.reduction, P);
        c.y = rand_vec(c.ny);
        c.r = rand_vec(c.ny);
        double *dx = calloc((size_t)n, sizeof(double)), *dt = calloc((size_t)n, sizeof(double));
        cnni_ref_class_loss_backward_f64(&c.g, &c.o, c.x, c.ti, probs ? c.t : NULL, c.w, c.r, dx,
                                         probs ? dt : NULL);
        double e = fd_check(case_loss, &c, c.x, dx, n, 16);
        if (probs)
            e = fmax(e, fd_check(case_loss, &c, c.t, dt, n, 12));
        CHECKF(e < 1e-6, "%s N=%lld C=%lld S=%lld %s reduction=%s ignore=%lld smoothing=%g weight=%d: "
               "relative error %.3g",
               c.o.log_softmax ? "CrossEntropy" : "NLL", (long long)c.g.N, (long long)c.g.C,
               (long long)c.g.S, probs ? "probabilities" : "indices", red_name(c.o.reduction),
               (long long)c.o.ignore_index, c.o.label_smoothing, c.w != NULL, e);
        worst = fmax(worst, e);
        free(dx), free(dt);
        free_case(&c);
    }
    return worst;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    TEST("MSE, L1, SmoothL1 gradients (double, finite differences)")
    printf("  worst relative error %.3g\n", test_pointwise());
    TEST("BCELoss gradients with broadcast weights (double, finite differences)")
    printf("  worst relative error %.3g\n", test_bce(0));
    TEST("BCEWithLogitsLoss gradients with weight and pos_weight (double, finite differences)")
    printf("  worst relative error %.3g\n", test_bce(1));
    TEST("CrossEntropyLoss, NLLLoss gradients (double, finite differences)")
    printf("  worst relative error %.3g\n", test_class());

    TEST("PyTorch's special points")
    {
        /* SmoothL1 with beta 0 has slope -1 at d = 0 for input and target
         * alike; L1 has 0 there. */
        double x = 0.5, t = 0.5, dy = 1, dx, dt;
        cnni_ref_pointwise_loss_backward_f64(CNNI_LOSS_SMOOTH_L1, CNNI_RED_SUM, 0.0, 1, &x, &t, NULL,
                                             &dy, &dx, &dt);
        CHECK(dx == -1 && dt == -1);
        cnni_ref_pointwise_loss_backward_f64(CNNI_LOSS_L1, CNNI_RED_SUM, 0.0, 1, &x, &t, NULL, &dy,
                                             &dx, &dt);
        CHECK(dx == 0 && dt == 0);
        /* BCE clamps log at -100 and the input gradient's denominator at 1e-12. */
        cnni_loss_bcast b;
        memset(&b, 0, sizeof b);
        b.ndim = 1;
        b.dims[0] = 2;
        double bx[2] = {0, 1}, bt[2] = {1, 0}, by, bdx[2];
        CHECK(cnni_ref_bce_forward_f64(CNNI_RED_SUM, &b, bx, bt, NULL, &by) == -1);
        CHECK(by == 200);
        cnni_ref_bce_backward_f64(CNNI_RED_SUM, &b, bx, bt, NULL, &dy, bdx, NULL);
        CHECK(fabs(bdx[0] + 1e12) < 1 && fabs(bdx[1] - 1e12) < 1);
        /* BCEWithLogits with targets of +-inf (outside [0, 1], not checked):
         * PyTorch's loss (-inf, -inf, -inf, NaN) and input gradient
         * sigmoid(x) - t (-inf, inf, -inf, -inf); with pos_weight 2 its
         * gradient is NaN throughout. */
        {
            double lx[4] = {0.5, -2, 3, 0}, lt[4] = {INFINITY, -INFINITY, INFINITY, INFINITY}, ly[4], ldx[4];
            double pw[4] = {2, 2, 2, 2};
            b.dims[0] = 4;
            cnni_ref_bce_logits_forward_f64(CNNI_RED_NONE, &b, lx, lt, NULL, NULL, ly);
            CHECK(ly[0] == -INFINITY && ly[1] == -INFINITY && ly[2] == -INFINITY && isnan(ly[3]));
            double ones[4] = {1, 1, 1, 1};
            cnni_ref_bce_logits_backward_f64(CNNI_RED_NONE, &b, lx, lt, NULL, NULL, ones, ldx, NULL);
            CHECKF(ldx[0] == -INFINITY && ldx[1] == INFINITY && ldx[2] == -INFINITY && ldx[3] == -INFINITY,
                   "dx %g %g %g %g", ldx[0], ldx[1], ldx[2], ldx[3]);
            b.pstride[0] = 1;
            cnni_ref_bce_logits_backward_f64(CNNI_RED_NONE, &b, lx, lt, NULL, pw, ones, ldx, NULL);
            CHECK(isnan(ldx[0]) && isnan(ldx[1]) && isnan(ldx[2]) && isnan(ldx[3]));
            b.pstride[0] = 0;
            b.dims[0] = 2;
        }
        /* Mean over targets that are all ignored is NaN, with zero gradients. */
        cnni_class_geom g = {2, 3, 1};
        cnni_class_opts o = {1, CNNI_RED_MEAN, -100, 0.1};
        double cx[6] = {1, 2, 3, 4, 5, 6}, cy, cdx[6];
        int64_t ct[2] = {-100, -100};
        CHECK(cnni_ref_class_loss_forward_f64(&g, &o, cx, ct, NULL, NULL, &cy) == -1);
        CHECK(isnan(cy));
        cnni_ref_class_loss_backward_f64(&g, &o, cx, ct, NULL, NULL, &dy, cdx, NULL);
        for (int i = 0; i < 6; i++)
            CHECK(cdx[i] == 0);
    }

    TEST("data checks: BCE input range, class index range")
    {
        cnni_loss_bcast b;
        memset(&b, 0, sizeof b);
        b.ndim = 2;
        b.dims[0] = 2;
        b.dims[1] = 2;
        double t[4] = {0, 1, 0, 1}, y;
        double x1[4] = {0.5, 0.2, 1.5, 0.1}, x2[4] = {0.5, NAN, 0.3, 0.1}, x3[4] = {0, 1, 0.3, -0.0};
        CHECK(cnni_ref_bce_forward_f64(CNNI_RED_MEAN, &b, x1, t, NULL, &y) == 2);
        CHECK(cnni_ref_bce_forward_f64(CNNI_RED_MEAN, &b, x2, t, NULL, &y) == 1);
        CHECK(cnni_ref_bce_forward_f64(CNNI_RED_MEAN, &b, x3, t, NULL, &y) == -1);
        cnni_class_geom g = {3, 4, 1};
        cnni_class_opts o = {1, CNNI_RED_MEAN, -100, 0};
        double x[12] = {0};
        int64_t ok[3] = {0, 3, -100}, high[3] = {0, 4, 1}, neg[3] = {0, 1, -1};
        CHECK(cnni_ref_class_loss_forward_f64(&g, &o, x, ok, NULL, NULL, &y) == -1);
        CHECK(cnni_ref_class_loss_forward_f64(&g, &o, x, high, NULL, NULL, &y) == 1);
        CHECK(cnni_ref_class_loss_forward_f64(&g, &o, x, neg, NULL, NULL, &y) == 2);
        o.ignore_index = -1;
        CHECK(cnni_ref_class_loss_forward_f64(&g, &o, x, neg, NULL, NULL, &y) == -1);
    }
    TEST("CrossEntropyLoss with huge tied logits (PyTorch's values)")
    {
        /* the log-sum-exp's log must survive beside a max of 1e20 */
        cnni_class_geom g = {2, 4, 1};
        for (int smooth = 0; smooth < 2; smooth++) {
            cnni_class_opts o = {1, CNNI_RED_MEAN, -100, smooth ? 0.2 : 0.0};
            float x[8] = {1e20f, 1e20f, 1e20f, 1e20f, 1e20f, 1e20f, 0, 0}, y, dx[8], dy = 1;
            int64_t t[2] = {2, 2};
            CHECK(cnni_ref_class_loss_forward_f32(&g, &o, x, t, NULL, NULL, &y) == -1);
            cnni_ref_class_loss_backward_f32(&g, &o, x, t, NULL, NULL, &dy, dx, NULL);
            /* row 0: log 4 and softmax 1/4 each; row 1: log-probability of the
             * target -1e20 (dwarfing log 2); softmax 1/2, 1/2, 0, 0 */
            const double e = o.label_smoothing;
            const double want_dx[8] = {0.125 - e / 8, 0.125 - e / 8, 0.125 - (1 - e) / 2 - e / 8, 0.125 - e / 8,
                                       0.25 - e / 8,  0.25 - e / 8,  -(1 - e) / 2 - e / 8,       -e / 8};
            for (int i = 0; i < 8; i++)
                CHECKF(fabs(dx[i] - want_dx[i]) < 1e-6, "smoothing %g: dx[%d] = %.9g, want %.9g", e, i,
                       (double)dx[i], want_dx[i]);
            if (!smooth)
                CHECKF(fabs(y - (log(4.0) + 1e20) / 2) <= 1e13, "loss %.9g", (double)y);
        }
    }
    return test_finish();
}
