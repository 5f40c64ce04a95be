/* The fast pooling kernels against the reference ones, on the common
 * non-overlapping windows and on general ones (padding, dilation,
 * overlapping, ceil-mode style windows), and the same bits with 1 and 2
 * threads. */
#include "gradcheck.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "kernels/pool_fast.h"

static void random_geom(cnni_pool_geom *g, int simple, int t)
{
    memset(g, 0, sizeof *g);
    g->NC = pick(1, 40);
    g->in[0] = g->out[0] = g->k[0] = g->s[0] = g->d[0] = 1;
    for (int i = 1; i < 3; i++) {
        if (simple) {
            g->k[i] = g->s[i] = pick(1, 3);
            g->d[i] = 1;
            /* widths past 32 reach the 16-wide 2x2 rows, with tails */
            g->in[i] = pick(g->k[i], i == 2 ? 75 : 30);
            if (i == 2 && t % 4 == 0)
                g->in[i] = 16 * g->k[i] * pick(1, 2) + pick(0, g->k[i] - 1); /* rows of whole vectors, a tail */
            g->out[i] = g->in[i] / g->k[i];
        } else {
            g->k[i] = pick(1, 4);
            g->s[i] = pick(1, 3);
            g->d[i] = pick(1, 2);
            g->p[i] = pick(0, g->k[i] / 2);
            g->in[i] = pick(g->d[i] * (g->k[i] - 1) + 1, 25);
            g->out[i] = (g->in[i] + 2 * g->p[i] - g->d[i] * (g->k[i] - 1) - 1) / g->s[i] + 1;
        }
    }
    g->count_include_pad = (int)pick(0, 1);
}

static int equal(const float *a, const float *b, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])) ||
              fabs((double)a[i] - b[i]) <= tol * fmax(1.0, fabs(b[i]))))
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    cnni_pool *p1, *p2;
    cnni_pool_create(&p1, 1);
    cnni_pool_create(&p2, 2);
    /* every instruction set this machine runs */
    for (int isa = CNNI_ISA_GENERIC; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "fast max/avg pooling vs reference, %s, threads bitwise equal",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            for (int t = 0; t < 300; t++) {
                cnni_pool_geom g;
                random_geom(&g, t % 3 != 0, t);
                if (g.out[1] <= 0 || g.out[2] <= 0)
                    continue;
                int64_t ni = g.NC * cnni_pool_in_plane(&g), no = g.NC * cnni_pool_out_plane(&g);
                float *x = malloc(4 * (size_t)ni), *dy = malloc(4 * (size_t)no);
                for (int64_t i = 0; i < ni; i++)
                    x[i] = (float)(int)cnni_rng_below(&rng, 7); /* ties on purpose */
                if (t % 5 == 1) /* NaN and -inf: the reference's rules for them */
                    for (int64_t i = 0; i < ni; i += 1 + (int64_t)cnni_rng_below(&rng, 13))
                        x[i] = cnni_rng_below(&rng, 2) ? NAN : -INFINITY;
                for (int64_t i = 0; i < no; i++)
                    dy[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
                float *y0 = malloc(4 * (size_t)no), *y1 = malloc(4 * (size_t)no), *y2 = malloc(4 * (size_t)no);
                int64_t *i0 = malloc(8 * (size_t)no), *i1 = malloc(8 * (size_t)no), *i2 = malloc(8 * (size_t)no);
                cnni_ref_maxpool_forward_f32(&g, x, y0, i0);
                cnni_pool_fast_max_forward(isa, p1, &g, x, y1, i1);
                cnni_pool_fast_max_forward(isa, p2, &g, x, y2, i2);
                CHECKF(!memcmp(y0, y1, 4 * (size_t)no) && !memcmp(i0, i1, 8 * (size_t)no), "max forward differs, case %d", t);
                CHECK(!memcmp(y1, y2, 4 * (size_t)no) && !memcmp(i1, i2, 8 * (size_t)no));
                float *d0 = malloc(4 * (size_t)ni), *d1 = malloc(4 * (size_t)ni), *d2 = malloc(4 * (size_t)ni);
                double *acc = malloc(8 * (size_t)cnni_pool_in_plane(&g));
                cnni_ref_argmax_backward_f32(g.NC, cnni_pool_in_plane(&g), cnni_pool_out_plane(&g), dy, i0, acc, d0);
                cnni_pool_fast_argmax_backward(p1, g.NC, cnni_pool_in_plane(&g), cnni_pool_out_plane(&g), dy, i0, d1);
                cnni_pool_fast_argmax_backward(p2, g.NC, cnni_pool_in_plane(&g), cnni_pool_out_plane(&g), dy, i0, d2);
                CHECKF(equal(d1, d0, ni, 1e-6), "argmax backward differs, case %d", t);
                CHECK(!memcmp(d1, d2, 4 * (size_t)ni));
                if (cnni_pool_fast_planewise(&g)) {
                    /* The plane by plane pieces (a fused normalisation's): the
                     * same values, argmax and gradient bits, and for 2x2 windows
                     * the byte positions give them too; -0 gradients on purpose. */
                    const int64_t ip = cnni_pool_in_plane(&g), op = cnni_pool_out_plane(&g);
                    const int two = cnni_pool_fast_two_by_two(&g);
                    CHECK(two == (g.k[1] == 2 && g.k[2] == 2));
                    uint8_t *code = malloc((size_t)no);
                    for (int64_t i = 0; i < no; i += 3)
                        dy[i] = -0.0f;
                    cnni_ref_argmax_backward_f32(g.NC, ip, op, dy, i0, acc, d0);
                    for (int64_t c = 0; c < g.NC; c++) {
                        cnni_pool_fast_max_plane(isa, &g, x + c * ip, y1 + c * op, i1 + c * op);
                        cnni_pool_fast_argmax_plane_backward(ip, op, dy + c * op, i0 + c * op, d1 + c * ip);
                    }
                    CHECKF(!memcmp(y0, y1, 4 * (size_t)no) && !memcmp(i0, i1, 8 * (size_t)no),
                           "max plane differs, case %d", t);
                    cnni_pool_fast_argmax_backward(p1, g.NC, ip, op, dy, i0, d2);
                    CHECKF(!memcmp(d1, d2, 4 * (size_t)ni) && equal(d1, d0, ni, 0), "argmax plane backward differs, case %d",
                           t);
                    if (two) {
                        for (int64_t i = 0; i < ni; i++)
                            d1[i] = NAN; /* every element must be written */
                        for (int64_t c = 0; c < g.NC; c++) {
                            cnni_pool_fast_max2_plane(isa, &g, x + c * ip, y1 + c * op, code + c * op);
                            cnni_pool_fast_max2_plane_backward(isa, &g, dy + c * op, code + c * op, d1 + c * ip);
                        }
                        int codes_ok = 1;
                        for (int64_t i = 0; i < no; i++) {
                            const int64_t o = i % op, oy = o / g.out[2], ox = o % g.out[2];
                            const int64_t at = 2 * oy * g.in[2] + 2 * ox;
                            codes_ok &= code[i] < 4 && i0[i] == at + (code[i] >> 1) * g.in[2] + (code[i] & 1);
                        }
                        CHECKF(!memcmp(y0, y1, 4 * (size_t)no) && codes_ok, "2x2 byte-coded forward differs, case %d", t);
                        CHECKF(!memcmp(d1, d2, 4 * (size_t)ni), "2x2 byte-coded backward differs, case %d", t);
                    }
                    free(code);
                }
                cnni_ref_avgpool_forward_f32(&g, x, y0);
                cnni_pool_fast_avg_forward(isa, p1, &g, x, y1);
                cnni_pool_fast_avg_forward(isa, p2, &g, x, y2);
                CHECKF(equal(y1, y0, no, 1e-6), "avg forward differs, case %d", t);
                CHECK(!memcmp(y1, y2, 4 * (size_t)no));
                cnni_ref_avgpool_backward_f32(&g, dy, d0);
                cnni_pool_fast_avg_backward(isa, p1, &g, dy, d1);
                cnni_pool_fast_avg_backward(isa, p2, &g, dy, d2);
                CHECKF(equal(d1, d0, ni, 1e-6), "avg backward differs, case %d", t);
                CHECK(!memcmp(d1, d2, 4 * (size_t)ni));
                free(x), free(dy), free(y0), free(y1), free(y2), free(i0), free(i1), free(i2), free(d0), free(d1), free(d2), free(acc);
            }
        }
    }
    cnni_pool_destroy(p1);
    cnni_pool_destroy(p2);
    return test_finish();
}
