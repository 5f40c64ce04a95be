/* The fast convolution kernels against the reference kernels, on random
 * geometries (1-3 spatial dims, groups, stride, dilation, asymmetric
 * padding, odd sizes), for every instruction set this CPU has; and the
 * same bits whatever the number of threads. */
#include "kernel_test.h"
#include "core/pool.h"
#include "kernels/conv_fast.h"

static void random_geom(cnni_conv_geom *g, int nsp)
{
    memset(g, 0, sizeof *g);
    g->G = pick(1, 3);
    g->C = g->G * pick(1, 5);
    g->O = g->G * pick(1, 20);
    g->N = pick(1, 3);
    for (int i = 0; i < 3; i++) {
        if (i < 3 - nsp) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            continue;
        }
        g->k[i] = pick(1, 4);
        g->s[i] = pick(1, 3);
        g->d[i] = pick(1, 2);
        int64_t span = g->d[i] * (g->k[i] - 1) + 1;
        g->p[i] = pick(0, span - 1 < 3 ? span - 1 : 3);
        g->in[i] = pick(span, span + (nsp == 2 ? 30 : 8));
        int64_t hi = g->p[i] + pick(0, 1);
        g->out[i] = (g->in[i] + g->p[i] + hi - span) / g->s[i] + 1;
    }
}

static double rel_err(const float *a, const float *b, int64_t n)
{
    double scale = 1, worst = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst))
            worst = e;
    }
    return worst / scale;
}

static double one_case(const cnni_gemm_kernel *k, cnni_pool *p1, cnni_pool *p2, int nsp, int transposed, int *bitwise_ok)
{
    cnni_conv_geom g;
    random_geom(&g, nsp);
    int64_t nin = g.N * g.C * vol(g.in), nout = g.N * g.O * vol(g.out), nw = g.O * (g.C / g.G) * vol(g.k);
    int64_t nb = transposed ? g.C : g.O;
    float *x = rand_f(transposed ? nout : nin), *w = rand_f(nw), *b = rand_f(nb);
    float *dy = rand_f(transposed ? nin : nout);
    int64_t ny = transposed ? nin : nout, nx = transposed ? nout : nin;
    float *y_ref = calloc((size_t)ny, 4), *y1 = calloc((size_t)ny, 4), *y2 = calloc((size_t)ny, 4);
    float *dx_ref = calloc((size_t)nx, 4), *dx1 = calloc((size_t)nx, 4), *dx2 = calloc((size_t)nx, 4);
    float *dw_ref = rand_f(nw), *dw1 = malloc((size_t)nw * 4), *dw2 = malloc((size_t)nw * 4);
    float *db_ref = rand_f(nb), *db1 = malloc((size_t)nb * 4), *db2 = malloc((size_t)nb * 4);
    memcpy(dw1, dw_ref, (size_t)nw * 4);
    memcpy(dw2, dw_ref, (size_t)nw * 4);
    memcpy(db1, db_ref, (size_t)nb * 4);
    memcpy(db2, db_ref, (size_t)nb * 4);
    size_t sbytes = cnni_conv_fast_scratch(k, &g, 2);
    void *scr = malloc(sbytes);
    if (!transposed) {
        cnni_ref_conv_forward_f32(&g, x, w, b, y_ref);
        cnni_ref_conv_backward_data_f32(&g, dy, w, dx_ref);
        cnni_ref_conv_backward_weight_f32(&g, x, dy, dw_ref, db_ref);
        cnni_conv_fast_forward(k, p1, &g, x, w, b, y1, scr);
        cnni_conv_fast_backward_data(k, p1, &g, dy, w, dx1, scr);
        cnni_conv_fast_backward_weight(k, p1, &g, x, dy, dw1, db1, scr);
        cnni_conv_fast_forward(k, p2, &g, x, w, b, y2, scr);
        cnni_conv_fast_backward_data(k, p2, &g, dy, w, dx2, scr);
        cnni_conv_fast_backward_weight(k, p2, &g, x, dy, dw2, db2, scr);
    } else {
        cnni_ref_convt_forward_f32(&g, x, w, b, y_ref);
        cnni_ref_convt_backward_data_f32(&g, dy, w, dx_ref);
        cnni_ref_convt_backward_weight_f32(&g, x, dy, dw_ref, db_ref);
        cnni_convt_fast_forward(k, p1, &g, x, w, b, y1, scr);
        cnni_convt_fast_backward_data(k, p1, &g, dy, w, dx1, scr);
        cnni_convt_fast_backward_weight(k, p1, &g, x, dy, dw1, db1, scr);
        cnni_convt_fast_forward(k, p2, &g, x, w, b, y2, scr);
        cnni_convt_fast_backward_data(k, p2, &g, dy, w, dx2, scr);
        cnni_convt_fast_backward_weight(k, p2, &g, x, dy, dw2, db2, scr);
    }
    double e = fmax(fmax(rel_err(y1, y_ref, ny), rel_err(dx1, dx_ref, nx)),
                    fmax(rel_err(dw1, dw_ref, nw), rel_err(db1, db_ref, nb)));
    if (memcmp(y1, y2, (size_t)ny * 4) || memcmp(dx1, dx2, (size_t)nx * 4) || memcmp(dw1, dw2, (size_t)nw * 4) ||
        memcmp(db1, db2, (size_t)nb * 4))
        *bitwise_ok = 0;
    if (e > 1e-5)
        printf("  %dd %s N=%lld C=%lld O=%lld G=%lld in=%lldx%lldx%lld k=%lldx%lldx%lld s=%lldx%lldx%lld: error %.3g\n",
               nsp, transposed ? "convT" : "conv", (long long)g.N, (long long)g.C, (long long)g.O,
               (long long)g.G, (long long)g.in[0], (long long)g.in[1], (long long)g.in[2], (long long)g.k[0],
               (long long)g.k[1], (long long)g.k[2], (long long)g.s[0], (long long)g.s[1], (long long)g.s[2], e);
    free(x), free(w), free(b), free(dy), free(y_ref), free(y1), free(y2), free(dx_ref), free(dx1), free(dx2);
    free(dw_ref), free(dw1), free(dw2), free(db_ref), free(db1), free(db2), free(scr);
    return e;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    cnni_pool *p1 = NULL, *p2 = NULL;
    cnni_pool_create(&p1, 1);
    cnni_pool_create(&p2, 2);
    cnni_isa best = cnni_cpu_best_isa();
    for (int isa = 0; isa <= (int)best; isa++) {
        const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)isa);
        char name[128];
        snprintf(name, sizeof name, "fast convolution (%s) vs reference, 1 and 2 threads bitwise equal",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            int bitwise = 1;
            for (int t = 0; t < 60; t++) {
                int nsp = 1 + t % 3, tr = (t / 3) % 2;
                double e = one_case(k, p1, p2, nsp, tr, &bitwise);
                CHECK(e <= 1e-5);
                worst = fmax(worst, e);
            }
            CHECK(bitwise);
            printf("  %s: worst relative error %.3g over 60 geometries\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }
    cnni_pool_destroy(p1);
    cnni_pool_destroy(p2);
    return test_finish();
}
