/* Reference pooling kernels: direct loops over PyTorch's definitions, in 3
 * spatial dims (1-d and 2-d use size-1 leading dims). Window bounds follow
 * PyTorch's CPU kernels exactly, because the bounds decide the divisor of
 * average pooling and which element an empty or tied window reports. */
#include "real.h"
#include "pool_ref.h"

#include <math.h>

#define IDX3(a, b, c, B, C) (((a) * (B) + (b)) * (C) + (c))

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Taps of max-pooling output z along one dim: [*lo, *hi) in steps of d,
 * with lo moved past the left padding onto the first tap inside the input
 * (it may land beyond hi: the window is then empty). */
static inline void max_window(const cnni_pool_geom *g, int i, int64_t z, int64_t *lo, int64_t *hi)
{
    int64_t start = z * g->s[i] - g->p[i];
    *hi = min64(start + (g->k[i] - 1) * g->d[i] + 1, g->in[i]);
    if (start < 0)
        start += (-start + g->d[i] - 1) / g->d[i] * g->d[i];
    *lo = start;
}

void REFN(cnni_ref_maxpool_forward)(const cnni_pool_geom *g, const REAL *x, REAL *y, int64_t *idx)
{
    const int64_t in_sz = cnni_pool_in_plane(g), out_sz = cnni_pool_out_plane(g);
    for (int64_t c = 0; c < g->NC; c++) {
        const REAL *xc = x + c * in_sz;
        for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
            int64_t a0, b0;
            max_window(g, 0, z0, &a0, &b0);
            for (int64_t z1 = 0; z1 < g->out[1]; z1++) {
                int64_t a1, b1;
                max_window(g, 1, z1, &a1, &b1);
                for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                    int64_t a2, b2;
                    max_window(g, 2, z2, &a2, &b2);
                    int64_t best = IDX3(a0, a1, a2, g->in[1], g->in[2]);
                    REAL m = (REAL)-INFINITY;
                    for (int64_t i0 = a0; i0 < b0; i0 += g->d[0])
                        for (int64_t i1 = a1; i1 < b1; i1 += g->d[1])
                            for (int64_t i2 = a2; i2 < b2; i2 += g->d[2]) {
                                int64_t at = IDX3(i0, i1, i2, g->in[1], g->in[2]);
                                REAL v = xc[at];
                                if (v > m || isnan(v)) {
                                    m = v;
                                    best = at;
                                }
                            }
                    int64_t o = c * out_sz + IDX3(z0, z1, z2, g->out[1], g->out[2]);
                    y[o] = m;
                    if (idx)
                        idx[o] = best;
                }
            }
        }
    }
}

/* Average-pooling window along one dim: clipped bounds [*lo, *hi) and the
 * length counted with padding, where a ceil-mode window is cut at the end of
 * the right padding. */
static inline int64_t avg_window(const cnni_pool_geom *g, int i, int64_t z, int64_t *lo, int64_t *hi)
{
    int64_t start = z * g->s[i] - g->p[i];
    int64_t end = min64(start + g->k[i], g->in[i] + g->p[i]);
    int64_t padded = end - start;
    *lo = max64(start, 0);
    *hi = min64(end, g->in[i]);
    return padded;
}

/* The divisor of one window, or 0 when the window holds no input element
 * (PyTorch writes 0 there and passes no gradient). */
static inline int64_t avg_divisor(const cnni_pool_geom *g, const int64_t *z, int64_t *lo, int64_t *hi)
{
    int64_t padded = 1, inside = 1;
    for (int i = 0; i < 3; i++) {
        padded *= avg_window(g, i, z[i], &lo[i], &hi[i]);
        if (lo[i] >= hi[i])
            return 0;
        inside *= hi[i] - lo[i];
    }
    if (g->divisor)
        return g->divisor;
    return g->count_include_pad ? padded : inside;
}

void REFN(cnni_ref_avgpool_forward)(const cnni_pool_geom *g, const REAL *x, REAL *y)
{
    const int64_t in_sz = cnni_pool_in_plane(g), out_sz = cnni_pool_out_plane(g);
    for (int64_t c = 0; c < g->NC; c++) {
        const REAL *xc = x + c * in_sz;
        REAL *yc = y + c * out_sz;
        int64_t z[3];
        for (z[0] = 0; z[0] < g->out[0]; z[0]++)
            for (z[1] = 0; z[1] < g->out[1]; z[1]++)
                for (z[2] = 0; z[2] < g->out[2]; z[2]++) {
                    int64_t lo[3], hi[3];
                    int64_t div = avg_divisor(g, z, lo, hi);
                    int64_t o = IDX3(z[0], z[1], z[2], g->out[1], g->out[2]);
                    if (!div) {
                        yc[o] = 0;
                        continue;
                    }
                    ACC sum = 0;
                    for (int64_t i0 = lo[0]; i0 < hi[0]; i0++)
                        for (int64_t i1 = lo[1]; i1 < hi[1]; i1++)
                            for (int64_t i2 = lo[2]; i2 < hi[2]; i2++)
                                sum += xc[IDX3(i0, i1, i2, g->in[1], g->in[2])];
                    yc[o] = (REAL)(sum / (ACC)div);
                }
    }
}

/* Outputs whose average-pooling window along dim i holds input j: those z
 * with z*s - p <= j < z*s - p + k, as [*lo, *hi). */
static inline void avg_covering(const cnni_pool_geom *g, int i, int64_t j, int64_t *lo, int64_t *hi)
{
    int64_t a = j + g->p[i] - g->k[i] + 1; /* z*s >= a */
    *lo = a <= 0 ? 0 : (a + g->s[i] - 1) / g->s[i];
    *hi = min64((j + g->p[i]) / g->s[i] + 1, g->out[i]);
}

/* A gather over the outputs covering each input element, so the sum is
 * taken in ACC rather than by adding into dx. */
void REFN(cnni_ref_avgpool_backward)(const cnni_pool_geom *g, const REAL *dy, REAL *dx)
{
    const int64_t in_sz = cnni_pool_in_plane(g), out_sz = cnni_pool_out_plane(g);
    for (int64_t c = 0; c < g->NC; c++) {
        REAL *dxc = dx + c * in_sz;
        const REAL *dyc = dy + c * out_sz;
        int64_t j[3];
        for (j[0] = 0; j[0] < g->in[0]; j[0]++)
            for (j[1] = 0; j[1] < g->in[1]; j[1]++)
                for (j[2] = 0; j[2] < g->in[2]; j[2]++) {
                    int64_t lo[3], hi[3];
                    for (int i = 0; i < 3; i++)
                        avg_covering(g, i, j[i], &lo[i], &hi[i]);
                    ACC sum = 0;
                    int64_t z[3];
                    for (z[0] = lo[0]; z[0] < hi[0]; z[0]++)
                        for (z[1] = lo[1]; z[1] < hi[1]; z[1]++)
                            for (z[2] = lo[2]; z[2] < hi[2]; z[2]++) {
                                int64_t wlo[3], whi[3];
                                int64_t div = avg_divisor(g, z, wlo, whi);
                                if (div)
                                    sum += (ACC)dyc[IDX3(z[0], z[1], z[2], g->out[1], g->out[2])] /
                                           (ACC)div;
                            }
                    dxc[IDX3(j[0], j[1], j[2], g->in[1], g->in[2])] = (REAL)sum;
                }
    }
}

/* PyTorch's adaptive window of output i: [floor(i*n/m), ceil((i+1)*n/m)).
 * The layer keeps n*(m+1) within int64. */
static inline void adaptive_window(int64_t i, int64_t n, int64_t m, int64_t *lo, int64_t *hi)
{
    *lo = i * n / m;
    *hi = 1 + ((i + 1) * n - 1) / m;
}

void REFN(cnni_ref_adaptive_avg_forward)(const cnni_pool_geom *g, const REAL *x, REAL *y)
{
    const int64_t in_sz = cnni_pool_in_plane(g), out_sz = cnni_pool_out_plane(g);
    for (int64_t c = 0; c < g->NC; c++) {
        const REAL *xc = x + c * in_sz;
        for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
            int64_t a0, b0;
            adaptive_window(z0, g->in[0], g->out[0], &a0, &b0);
            for (int64_t z1 = 0; z1 < g->out[1]; z1++) {
                int64_t a1, b1;
                adaptive_window(z1, g->in[1], g->out[1], &a1, &b1);
                for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                    int64_t a2, b2;
                    adaptive_window(z2, g->in[2], g->out[2], &a2, &b2);
                    ACC sum = 0;
                    for (int64_t i0 = a0; i0 < b0; i0++)
                        for (int64_t i1 = a1; i1 < b1; i1++)
                            for (int64_t i2 = a2; i2 < b2; i2++)
                                sum += xc[IDX3(i0, i1, i2, g->in[1], g->in[2])];
                    int64_t cnt = (b0 - a0) * (b1 - a1) * (b2 - a2);
                    y[c * out_sz + IDX3(z0, z1, z2, g->out[1], g->out[2])] = (REAL)(sum / (ACC)cnt);
                }
            }
        }
    }
}

/* Outputs whose adaptive window holds input j of n (m outputs): from
 * floor(j*m/n) to ceil((j+1)*m/n), as [*lo, *hi). */
static inline void adaptive_covering(int64_t j, int64_t n, int64_t m, int64_t *lo, int64_t *hi)
{
    *lo = j * m / n;
    *hi = ((j + 1) * m + n - 1) / n;
}

void REFN(cnni_ref_adaptive_avg_backward)(const cnni_pool_geom *g, const REAL *dy, REAL *dx)
{
    const int64_t in_sz = cnni_pool_in_plane(g), out_sz = cnni_pool_out_plane(g);
    for (int64_t c = 0; c < g->NC; c++) {
        REAL *dxc = dx + c * in_sz;
        const REAL *dyc = dy + c * out_sz;
        for (int64_t j0 = 0; j0 < g->in[0]; j0++) {
            int64_t a0, b0;
            adaptive_covering(j0, g->in[0], g->out[0], &a0, &b0);
            for (int64_t j1 = 0; j1 < g->in[1]; j1++) {
                int64_t a1, b1;
                adaptive_covering(j1, g->in[1], g->out[1], &a1, &b1);
                for (int64_t j2 = 0; j2 < g->in[2]; j2++) {
                    int64_t a2, b2;
                    adaptive_covering(j2, g->in[2], g->out[2], &a2, &b2);
                    ACC sum = 0;
                    for (int64_t z0 = a0; z0 < b0; z0++) {
                        int64_t l0, h0;
                        adaptive_window(z0, g->in[0], g->out[0], &l0, &h0);
                        for (int64_t z1 = a1; z1 < b1; z1++) {
                            int64_t l1, h1;
                            adaptive_window(z1, g->in[1], g->out[1], &l1, &h1);
                            for (int64_t z2 = a2; z2 < b2; z2++) {
                                int64_t l2, h2;
                                adaptive_window(z2, g->in[2], g->out[2], &l2, &h2);
                                int64_t cnt = (h0 - l0) * (h1 - l1) * (h2 - l2);
                                sum += (ACC)dyc[IDX3(z0, z1, z2, g->out[1], g->out[2])] / (ACC)cnt;
                            }
                        }
                    }
                    dxc[IDX3(j0, j1, j2, g->in[1], g->in[2])] = (REAL)sum;
                }
            }
        }
    }
}

void REFN(cnni_ref_adaptive_max_forward)(const cnni_pool_geom *g, const REAL *x, REAL *y,
                                         int64_t *idx)
{
    const int64_t in_sz = cnni_pool_in_plane(g), out_sz = cnni_pool_out_plane(g);
    for (int64_t c = 0; c < g->NC; c++) {
        const REAL *xc = x + c * in_sz;
        for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
            int64_t a0, b0;
            adaptive_window(z0, g->in[0], g->out[0], &a0, &b0);
            for (int64_t z1 = 0; z1 < g->out[1]; z1++) {
                int64_t a1, b1;
                adaptive_window(z1, g->in[1], g->out[1], &a1, &b1);
                for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                    int64_t a2, b2;
                    adaptive_window(z2, g->in[2], g->out[2], &a2, &b2);
                    int64_t best = IDX3(a0, a1, a2, g->in[1], g->in[2]);
                    REAL m = (REAL)-INFINITY;
                    for (int64_t i0 = a0; i0 < b0; i0++)
                        for (int64_t i1 = a1; i1 < b1; i1++)
                            for (int64_t i2 = a2; i2 < b2; i2++) {
                                int64_t at = IDX3(i0, i1, i2, g->in[1], g->in[2]);
                                REAL v = xc[at];
                                if (v > m || isnan(v)) {
                                    m = v;
                                    best = at;
                                }
                            }
                    int64_t o = c * out_sz + IDX3(z0, z1, z2, g->out[1], g->out[2]);
                    y[o] = m;
                    if (idx)
                        idx[o] = best;
                }
            }
        }
    }
}

void REFN(cnni_ref_argmax_backward)(int64_t NC, int64_t in_plane, int64_t out_plane, const REAL *dy,
                                    const int64_t *idx, double *acc, REAL *dx)
{
    for (int64_t c = 0; c < NC; c++) {
        for (int64_t i = 0; i < in_plane; i++)
            acc[i] = 0;
        for (int64_t j = 0; j < out_plane; j++) {
            int64_t at = idx[c * out_plane + j];
            /* PyTorch writes an out-of-plane index's gradient into the next
             * plane or past the buffer; it belongs to no element here. */
            if (at >= 0 && at < in_plane)
                acc[at] += dy[c * out_plane + j];
        }
        for (int64_t i = 0; i < in_plane; i++)
            dx[c * in_plane + i] = (REAL)acc[i];
    }
}

int64_t REFN(cnni_ref_unpool_forward)(int64_t NC, int64_t in_plane, int64_t out_plane,
                                      const REAL *x, const int64_t *idx, REAL *y)
{
    for (int64_t i = 0; i < NC * out_plane; i++)
        y[i] = 0;
    if (out_plane == 0)
        return -1; /* PyTorch checks no index when the output is empty */
    for (int64_t c = 0; c < NC; c++)
        for (int64_t j = 0; j < in_plane; j++) {
            int64_t at = idx[c * in_plane + j];
            if (at < 0 || at >= out_plane)
                return c * in_plane + j;
            y[c * out_plane + at] = x[c * in_plane + j];
        }
    return -1;
}

int64_t REFN(cnni_ref_unpool_backward)(int64_t NC, int64_t in_plane, int64_t out_plane,
                                       const REAL *dy, const int64_t *idx, REAL *dx)
{
    for (int64_t c = 0; c < NC; c++)
        for (int64_t j = 0; j < in_plane; j++) {
            int64_t at = idx[c * in_plane + j];
            if (at < 0 || at >= out_plane)
                return c * in_plane + j;
            dx[c * in_plane + j] = dy[c * out_plane + at];
        }
    return -1;
}
