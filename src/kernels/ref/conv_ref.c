/* Reference convolution and transposed convolution: direct loops over the
 * definition, in 3 spatial dims (1-d and 2-d use size-1 leading dims).
 *
 * y[n, o, z] = b[o] + sum_{c in group(o), t} x[n, c, z*s - p + t*d] * w[o, c, t]
 */
#include "real.h"
#include "ref.h"

#include <string.h>

#define IDX3(a, b, c, B, C) (((a) * (B) + (b)) * (C) + (c))

/* Input coordinate of output z and kernel tap t along one dim, or -1. */
static inline int64_t in_coord(int64_t z, int64_t t, int64_t s, int64_t p, int64_t d, int64_t n)
{
    int64_t i = z * s - p + t * d;
    return (i >= 0 && i < n) ? i : -1;
}

void REFN(cnni_ref_conv_forward)(const cnni_conv_geom *g, const REAL *x, const REAL *w,
                                 const REAL *b, REAL *y)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G;
    const int64_t in_sz = g->in[0] * g->in[1] * g->in[2];
    const int64_t out_sz = g->out[0] * g->out[1] * g->out[2];
    const int64_t k_sz = g->k[0] * g->k[1] * g->k[2];
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++) {
            const int64_t grp = o / Og;
            REAL *yo = y + (n * g->O + o) * out_sz;
            for (int64_t z0 = 0; z0 < g->out[0]; z0++)
                for (int64_t z1 = 0; z1 < g->out[1]; z1++)
                    for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                        ACC acc = b ? b[o] : (REAL)0;
                        for (int64_t c = 0; c < Cg; c++) {
                            const REAL *xc = x + (n * g->C + grp * Cg + c) * in_sz;
                            const REAL *wc = w + (o * Cg + c) * k_sz;
                            for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
                                int64_t i0 = in_coord(z0, t0, g->s[0], g->p[0], g->d[0], g->in[0]);
                                if (i0 < 0)
                                    continue;
                                for (int64_t t1 = 0; t1 < g->k[1]; t1++) {
                                    int64_t i1 = in_coord(z1, t1, g->s[1], g->p[1], g->d[1], g->in[1]);
                                    if (i1 < 0)
                                        continue;
                                    for (int64_t t2 = 0; t2 < g->k[2]; t2++) {
                                        int64_t i2 = in_coord(z2, t2, g->s[2], g->p[2], g->d[2], g->in[2]);
                                        if (i2 < 0)
                                            continue;
                                        acc += xc[IDX3(i0, i1, i2, g->in[1], g->in[2])] *
                                               wc[IDX3(t0, t1, t2, g->k[1], g->k[2])];
                                    }
                                }
                            }
                        }
                        yo[IDX3(z0, z1, z2, g->out[1], g->out[2])] = (REAL)acc;
                    }
        }
}

/* The scatter that both conv backward-data and transposed-conv forward are:
 * for every output position z and tap t, in[z*s - p + t*d] += out[z] * w. */
static void scatter(const cnni_conv_geom *g, const REAL *dy, const REAL *w, REAL *dx)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G;
    const int64_t in_sz = g->in[0] * g->in[1] * g->in[2];
    const int64_t out_sz = g->out[0] * g->out[1] * g->out[2];
    const int64_t k_sz = g->k[0] * g->k[1] * g->k[2];
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++) {
            const int64_t grp = o / Og;
            const REAL *dyo = dy + (n * g->O + o) * out_sz;
            for (int64_t c = 0; c < Cg; c++) {
                REAL *dxc = dx + (n * g->C + grp * Cg + c) * in_sz;
                const REAL *wc = w + (o * Cg + c) * k_sz;
                for (int64_t z0 = 0; z0 < g->out[0]; z0++)
                    for (int64_t z1 = 0; z1 < g->out[1]; z1++)
                        for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                            REAL gy = dyo[IDX3(z0, z1, z2, g->out[1], g->out[2])];
                            for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
                                int64_t i0 = in_coord(z0, t0, g->s[0], g->p[0], g->d[0], g->in[0]);
                                if (i0 < 0)
                                    continue;
                                for (int64_t t1 = 0; t1 < g->k[1]; t1++) {
                                    int64_t i1 = in_coord(z1, t1, g->s[1], g->p[1], g->d[1], g->in[1]);
                                    if (i1 < 0)
                                        continue;
                                    for (int64_t t2 = 0; t2 < g->k[2]; t2++) {
                                        int64_t i2 = in_coord(z2, t2, g->s[2], g->p[2], g->d[2], g->in[2]);
                                        if (i2 < 0)
                                            continue;
                                        dxc[IDX3(i0, i1, i2, g->in[1], g->in[2])] +=
                                            gy * wc[IDX3(t0, t1, t2, g->k[1], g->k[2])];
                                    }
                                }
                            }
                        }
            }
        }
}

/* dw[o, c, t] += sum_{n, z} x[n, c, z*s - p + t*d] * dy[n, o, z] */
static void weight_grad(const cnni_conv_geom *g, const REAL *x, const REAL *dy, REAL *dw)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G;
    const int64_t in_sz = g->in[0] * g->in[1] * g->in[2];
    const int64_t out_sz = g->out[0] * g->out[1] * g->out[2];
    const int64_t k_sz = g->k[0] * g->k[1] * g->k[2];
    for (int64_t o = 0; o < g->O; o++) {
        const int64_t grp = o / Og;
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t t0 = 0; t0 < g->k[0]; t0++)
                for (int64_t t1 = 0; t1 < g->k[1]; t1++)
                    for (int64_t t2 = 0; t2 < g->k[2]; t2++) {
                        ACC acc = 0;
                        for (int64_t n = 0; n < g->N; n++) {
                            const REAL *xc = x + (n * g->C + grp * Cg + c) * in_sz;
                            const REAL *dyo = dy + (n * g->O + o) * out_sz;
                            for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
                                int64_t i0 = in_coord(z0, t0, g->s[0], g->p[0], g->d[0], g->in[0]);
                                if (i0 < 0)
                                    continue;
                                for (int64_t z1 = 0; z1 < g->out[1]; z1++) {
                                    int64_t i1 = in_coord(z1, t1, g->s[1], g->p[1], g->d[1], g->in[1]);
                                    if (i1 < 0)
                                        continue;
                                    for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                                        int64_t i2 = in_coord(z2, t2, g->s[2], g->p[2], g->d[2], g->in[2]);
                                        if (i2 < 0)
                                            continue;
                                        acc += xc[IDX3(i0, i1, i2, g->in[1], g->in[2])] *
                                               dyo[IDX3(z0, z1, z2, g->out[1], g->out[2])];
                                    }
                                }
                            }
                        }
                        dw[(o * Cg + c) * k_sz + IDX3(t0, t1, t2, g->k[1], g->k[2])] += (REAL)acc;
                    }
    }
}

static void sum_channels(int64_t N, int64_t Ch, int64_t sz, const REAL *dy, REAL *db)
{
    for (int64_t c = 0; c < Ch; c++) {
        ACC acc = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < sz; i++)
                acc += dy[(n * Ch + c) * sz + i];
        db[c] += (REAL)acc;
    }
}

void REFN(cnni_ref_conv_backward_data)(const cnni_conv_geom *g, const REAL *dy, const REAL *w,
                                       REAL *dx)
{
    memset(dx, 0, sizeof(REAL) * (size_t)(g->N * g->C * g->in[0] * g->in[1] * g->in[2]));
    scatter(g, dy, w, dx);
}

void REFN(cnni_ref_conv_backward_weight)(const cnni_conv_geom *g, const REAL *x, const REAL *dy,
                                         REAL *dw, REAL *db)
{
    weight_grad(g, x, dy, dw);
    if (db)
        sum_channels(g->N, g->O, g->out[0] * g->out[1] * g->out[2], dy, db);
}

void REFN(cnni_ref_convt_forward)(const cnni_conv_geom *g, const REAL *x, const REAL *w,
                                  const REAL *b, REAL *y)
{
    const int64_t in_sz = g->in[0] * g->in[1] * g->in[2];
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t i = 0; i < in_sz; i++)
                y[(n * g->C + c) * in_sz + i] = b ? b[c] : (REAL)0;
    scatter(g, x, w, y);
}

void REFN(cnni_ref_convt_backward_data)(const cnni_conv_geom *g, const REAL *dy, const REAL *w,
                                        REAL *dx)
{
    REFN(cnni_ref_conv_forward)(g, dy, w, NULL, dx);
}

void REFN(cnni_ref_convt_backward_weight)(const cnni_conv_geom *g, const REAL *x, const REAL *dy,
                                          REAL *dw, REAL *db)
{
    /* Same reduction as the conv's, with the roles of "input" (dy, on the
     * large side) and "output" (x) as in the reversed conv. */
    weight_grad(g, dy, x, dw);
    if (db)
        sum_channels(g->N, g->C, g->in[0] * g->in[1] * g->in[2], dy, db);
}
