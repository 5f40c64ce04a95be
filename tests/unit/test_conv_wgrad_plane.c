/* The plane weight gradient (kernels/conv_wgrad_plane.h): every
 * instruction set against the portable loops in double, on random
 * geometries (1 to 4 channels, 3x3 and 5x5 kernels and the portable-only
 * 1x1 and 7x7, paddings from none to past the kernel, planes from 1 wide
 * to past two vectors, odd sizes), and against a direct sum over the
 * convolution's definition. Every output is poisoned first. */
#include "kernel_test.h"
#include "core/cpu.h"
#include "kernels/conv_wgrad_plane.h"

/* The definition, from scratch: the output at (oy, ox) reads input
 * (oy + ky - ph, ox + kx - pw), so its gradient adds dy times that input. */
static double tap(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, int64_t c, int64_t ky, int64_t kx)
{
    double s = 0;
    for (int64_t oy = 0; oy < g->OH; oy++)
        for (int64_t ox = 0; ox < g->OW; ox++) {
            const int64_t iy = oy + ky - g->ph, ix = ox + kx - g->pw;
            if (iy >= 0 && iy < g->H && ix >= 0 && ix < g->W)
                s += (double)dy[oy * g->OW + ox] * x[(c * g->H + iy) * g->W + ix];
        }
    return s;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    static const int64_t ks[] = {3, 5, 3, 5, 1, 7};
    for (int isa = CNNI_ISA_GENERIC; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "plane weight gradient vs double loops and the definition (%s)",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            for (int t = 0; t < 200; t++) {
                cnni_wgrad_plane_geom g;
                g.C = pick(1, 4);
                g.KH = g.KW = ks[t % 6];
                g.ph = pick(0, g.KH);
                g.pw = pick(0, g.KW);
                g.H = pick(1, 30);
                g.W = t % 5 == 0 ? pick(30, 40) : pick(1, 30);
                g.OH = g.H + g.ph + pick(0, g.KH) - g.KH + 1;
                g.OW = g.W + g.pw + pick(0, g.KW) - g.KW + 1;
                if (g.OH < 1 || g.OW < 1)
                    continue;
                const int64_t nw = g.C * g.KH * g.KW + 1;
                float *dy = rand_f(g.OH * g.OW), *x = rand_f(g.C * g.H * g.W);
                float *got = malloc(sizeof(float) * (size_t)nw), *ref = malloc(sizeof(float) * (size_t)nw);
                for (int64_t i = 0; i < nw; i++)
                    got[i] = NAN;
                cnni_wgrad_plane_generic(&g, dy, x, ref);
                cnni_wgrad_plane(isa, &g, dy, x, got);
                int def_ok = 1;
                double bsum = 0;
                for (int64_t i = 0; i < g.OH * g.OW; i++)
                    bsum += dy[i];
                for (int64_t c = 0; c < g.C; c++)
                    for (int64_t ky = 0; ky < g.KH; ky++)
                        for (int64_t kx = 0; kx < g.KW; kx++)
                            def_ok &= ref[(c * g.KH + ky) * g.KW + kx] == (float)tap(&g, dy, x, c, ky, kx);
                def_ok &= ref[nw - 1] == (float)bsum;
                const double e = rel(got, ref, nw);
                worst = fmax(worst, e);
                CHECKF(def_ok, "case %d: the double loops differ from the definition", t);
                CHECKF(e <= 2e-6, "case %d (C %lld, %lldx%lld, pad %lld,%lld, %lldx%lld -> %lldx%lld): error %.3g", t,
                       (long long)g.C, (long long)g.KH, (long long)g.KW, (long long)g.ph, (long long)g.pw,
                       (long long)g.H, (long long)g.W, (long long)g.OH, (long long)g.OW, e);
                free(dy), free(x), free(got), free(ref);
            }
            printf("     %s: worst relative error %.3g\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }
    return test_finish();
}
