/* Finite-difference gradient checks, in double precision, of the reference
 * kernels: for a random r, L = sum(y * r); the backward kernels' gradients
 * of L must match central differences (L(v + h) - L(v - h)) / 2h. */
#include "gradcheck.h"
#include "kernels/ref/ref.h"

typedef struct {
    cnni_conv_geom g;
    int transposed;
    double *x, *w, *b, *y, *r;
    int64_t nx, nw, ny;
} conv_case;

static double conv_loss(void *ctx)
{
    conv_case *c = ctx;
    if (c->transposed)
        cnni_ref_convt_forward_f64(&c->g, c->x, c->w, c->b, c->y);
    else
        cnni_ref_conv_forward_f64(&c->g, c->x, c->w, c->b, c->y);
    return dot(c->y, c->r, c->ny);
}

static void random_conv(conv_case *c, int nsp, int transposed)
{
    memset(c, 0, sizeof *c);
    cnni_conv_geom *g = &c->g;
    c->transposed = transposed;
    g->G = pick(1, 3);
    g->C = g->G * pick(1, 3);
    g->O = g->G * pick(1, 3);
    g->N = pick(1, 2);
    for (int i = 0; i < 3; i++) {
        if (i < 3 - nsp) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            g->p[i] = 0;
            continue;
        }
        g->k[i] = pick(1, 3);
        g->s[i] = pick(1, 3);
        g->d[i] = pick(1, 2);
        int64_t span = g->d[i] * (g->k[i] - 1) + 1;
        g->p[i] = pick(0, span - 1 < 2 ? span - 1 : 2);
        int64_t in = pick(span, span + 4);
        if (in + 2 * g->p[i] < span)
            in = span;
        g->in[i] = in;
        /* Asymmetric right padding of 0 or 1 extra, as 'same' produces. */
        int64_t hi = g->p[i] + pick(0, 1);
        g->out[i] = (in + g->p[i] + hi - span) / g->s[i] + 1;
    }
    int64_t insz = g->in[0] * g->in[1] * g->in[2], outsz = g->out[0] * g->out[1] * g->out[2];
    int64_t ksz = g->k[0] * g->k[1] * g->k[2];
    c->nw = g->O * (g->C / g->G) * ksz;
    if (!transposed) {
        c->nx = g->N * g->C * insz;
        c->ny = g->N * g->O * outsz;
        c->b = rand_vec(g->O);
    } else {
        c->nx = g->N * g->O * outsz;
        c->ny = g->N * g->C * insz;
        c->b = rand_vec(g->C);
    }
    c->x = rand_vec(c->nx);
    c->w = rand_vec(c->nw);
    c->y = rand_vec(c->ny);
    c->r = rand_vec(c->ny);
}

static void free_conv(conv_case *c)
{
    free(c->x);
    free(c->w);
    free(c->b);
    free(c->y);
    free(c->r);
}

static void check_conv(int nsp, int transposed, int trials)
{
    double worst = 0;
    for (int t = 0; t < trials; t++) {
        conv_case c;
        random_conv(&c, nsp, transposed);
        cnni_conv_geom *g = &c.g;
        int64_t nb = transposed ? g->C : g->O;
        double *dx = calloc((size_t)c.nx, sizeof(double));
        double *dw = calloc((size_t)c.nw, sizeof(double));
        double *db = calloc((size_t)nb, sizeof(double));
        if (transposed) {
            cnni_ref_convt_backward_data_f64(g, c.r, c.w, dx);
            cnni_ref_convt_backward_weight_f64(g, c.x, c.r, dw, db);
        } else {
            cnni_ref_conv_backward_data_f64(g, c.r, c.w, dx);
            cnni_ref_conv_backward_weight_f64(g, c.x, c.r, dw, db);
        }
        double ex = fd_check(conv_loss, &c, c.x, dx, c.nx, 12);
        double ew = fd_check(conv_loss, &c, c.w, dw, c.nw, 12);
        double eb = fd_check(conv_loss, &c, c.b, db, nb, 4);
        double e = fmax(ex, fmax(ew, eb));
        if (e > worst)
            worst = e;
        CHECKF(e < 1e-6,
               "trial %d: %dd %s N=%lld C=%lld O=%lld G=%lld k=%lldx%lldx%lld s=%lldx%lldx%lld: "
               "relative error x %.3g w %.3g b %.3g",
               t, nsp, transposed ? "convT" : "conv", (long long)g->N, (long long)g->C,
               (long long)g->O, (long long)g->G, (long long)g->k[0], (long long)g->k[1],
               (long long)g->k[2], (long long)g->s[0], (long long)g->s[1], (long long)g->s[2], ex,
               ew, eb);
        free(dx);
        free(dw);
        free(db);
        free_conv(&c);
    }
    printf("  %dd %s: worst relative error %.3g over %d random configurations\n", nsp,
           transposed ? "transposed conv" : "conv", worst, trials);
}

typedef struct {
    cnni_pad_geom g;
    double *x, *y, *r;
    int64_t nx, ny;
} pad_case;

static double pad_loss(void *ctx)
{
    pad_case *c = ctx;
    cnni_ref_pad_forward_f64(&c->g, c->x, c->y);
    return dot(c->y, c->r, c->ny);
}

static void check_pad(void)
{
    for (int mode = 0; mode < 4; mode++) {
        for (int t = 0; t < 6; t++) {
            pad_case c;
            memset(&c, 0, sizeof c);
            c.g.mode = (cnni_pad_mode)mode;
            c.g.NC = pick(1, 3);
            int64_t sz = 1;
            for (int i = 0; i < 3; i++) {
                c.g.in[i] = pick(2, 5);
                int64_t maxp = mode == CNNI_PAD_REFLECT ? c.g.in[i] - 1 : c.g.in[i];
                /* Negative amounts crop (never below one element left). */
                c.g.lo[i] = pick(mode == CNNI_PAD_ZEROS ? 0 : -1, maxp);
                c.g.hi[i] = pick(mode == CNNI_PAD_ZEROS ? 0 : -1, maxp);
                sz *= c.g.in[i] + c.g.lo[i] + c.g.hi[i];
            }
            c.nx = c.g.NC * c.g.in[0] * c.g.in[1] * c.g.in[2];
            c.ny = c.g.NC * sz;
            c.x = rand_vec(c.nx);
            c.y = rand_vec(c.ny);
            c.r = rand_vec(c.ny);
            double *dx = calloc((size_t)c.nx, sizeof(double));
            cnni_ref_pad_backward_f64(&c.g, c.r, dx);
            double e = fd_check(pad_loss, &c, c.x, dx, c.nx, 20);
            CHECKF(e < 1e-6, "pad mode %d: relative error %.3g", mode, e);
            free(dx);
            free(c.x);
            free(c.y);
            free(c.r);
        }
    }
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    for (int nsp = 1; nsp <= 3; nsp++) {
        char name[64];
        snprintf(name, sizeof name, "conv%dd gradients (double, finite differences)", nsp);
        TEST(name) check_conv(nsp, 0, nsp == 3 ? 10 : 25);
        snprintf(name, sizeof name, "conv_transpose%dd gradients (double, finite differences)", nsp);
        TEST(name) check_conv(nsp, 1, nsp == 3 ? 10 : 25);
    }
    TEST("padding gradients, every mode (double, finite differences)") check_pad();
    return test_finish();
}
