/* The plane-by-plane weight gradient: portable loops and the dispatch. See
 * conv_wgrad_plane.h. */
#include "conv_wgrad_plane.h"
#include "../core/cpu.h"

int cnni_wgrad_plane_fast(const cnni_wgrad_plane_geom *g)
{
    return g->KH == g->KW && (g->KH == 3 || g->KH == 5);
}

void cnni_wgrad_plane_generic(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw)
{
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ky = 0; ky < g->KH; ky++)
            for (int64_t kx = 0; kx < g->KW; kx++) {
                double s = 0;
                for (int64_t oy = 0; oy < g->OH; oy++) {
                    const int64_t iy = oy + ky - g->ph;
                    if (iy < 0 || iy >= g->H)
                        continue;
                    const float *xr = x + (c * g->H + iy) * g->W + kx - g->pw, *dr = dy + oy * g->OW;
                    for (int64_t ox = 0; ox < g->OW; ox++) {
                        const int64_t ix = ox + kx - g->pw;
                        if (ix >= 0 && ix < g->W)
                            s += (double)dr[ox] * xr[ox];
                    }
                }
                dw[(c * g->KH + ky) * g->KW + kx] = (float)s;
            }
    double b = 0;
    for (int64_t i = 0; i < g->OH * g->OW; i++)
        b += dy[i];
    dw[g->C * g->KH * g->KW] = (float)b;
}

void cnni_wgrad_plane(int isa, const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw)
{
    if (cnni_wgrad_plane_fast(g) && isa == CNNI_ISA_AVX512)
        cnni_wgrad_plane_avx512(g, dy, x, dw);
    else if (cnni_wgrad_plane_fast(g) && isa == CNNI_ISA_AVX2)
        cnni_wgrad_plane_avx2(g, dy, x, dw);
    else
        cnni_wgrad_plane_generic(g, dy, x, dw);
}
