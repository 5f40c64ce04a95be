/* Depthwise convolution: one input channel per group (C == G), any channel
 * multiplier m = O/G, kernel, stride, dilation and padding, in 1 to 3
 * spatial dims. Output channel o reads input channel o / m alone, so a conv
 * is a set of independent planes:
 *   forward:          y[n,o](z) = b[o] + sum_t x[n,o/m](z*s - p + t*d) w[o,t]
 *   backward data:    at stride 1 the same kernel on dy with the taps flipped
 *                     and padding d*(k-1) - p, summed over the m channels;
 *                     otherwise each dy value is scattered into a padded
 *                     plane, which is then cropped
 *   backward weight:  dw[o,t] += sum_{n,z} x[n,o/m](z*s - p + t*d) dy[n,o](z),
 *                     all taps of a block accumulated in SIMD registers over
 *                     one plane, then added in double
 * Input rows are read in place, or through a zero-padded copy made once
 * per row just before use (see cnni_dw_plane), so the inner loops never
 * test a border. Rows are vectorised along the output width in blocks of
 * up to 4 vectors, with masked tails. Every output is
 * computed by one task in a fixed order, and weight gradients are split by
 * channel and by a batch slicing given by the shape, so results are bitwise
 * identical whatever the number of threads. */
#ifndef CNN_CONV_DEPTHWISE_H
#define CNN_CONV_DEPTHWISE_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

/* Whether these kernels serve the convolution (one input channel per group). */
int cnni_conv_dw_applies(const cnni_conv_geom *g);
size_t cnni_conv_dw_scratch(const cnni_conv_geom *g, int threads);
void cnni_conv_dw_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                          const float *w, const float *b, float *y, void *scratch);
/* dx is overwritten. */
void cnni_conv_dw_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                const float *w, float *dx, void *scratch);
/* dw += ...; db += sum of dy per channel (db may be NULL). */
void cnni_conv_dw_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                  const float *dy, float *dw, float *db, void *scratch);

/* One plane as the per-ISA loops see it. Kernel rows that fall in the
 * vertical padding are skipped (forward) or read as the zero row (weight
 * gradient). Input rows are read in place when no horizontal padding is
 * needed; otherwise each is copied once, zero-padded, into a small ring
 * of rows in per-thread scratch, just before the outputs that need it, so
 * the loops read every row in padded coordinates (output z2 of kernel
 * column t2 at z2*s2 + t2*d2) and never test a border. */
typedef struct cnni_dw_plane {
    const cnni_conv_geom *g;  /* sizes, stride, dilation, padding (N, C, O unused) */
    const float *x;           /* one input plane, in[0] x in[1] x in[2] */
    const float *w;           /* its k[0] x k[1] x k[2] taps */
    int64_t z1a, z1b;         /* output rows: z1 in [z1a, z1b), every z0 */
    int in_place;             /* rows need no horizontal padding */
    int64_t width;            /* floats per ring row */
    int64_t ring_rows;        /* ring rows per kernel row t0 (a power of two) */
    float *ring;              /* [k[0]][ring_rows][width], per thread */
    int64_t *tags;            /* [k[0]][ring_rows]: the input row held, -1 none */
    const float **rows;       /* [k[0] k[1]]: per-thread room for a row list */
    int64_t *wrow;            /* [k[0] k[1]] */
    const float *zero;        /* width zeros */
    void (*copy)(float *d, int64_t width, const float *s, int64_t lo, int64_t len);
    /* The scatter's padded plane (backward data at stride > 1): rows of pd[2]
     * floats, pd[1] rows per step of dim 0; off[t] is tap t's offset. */
    int64_t pd[3];
    const int64_t *off;
} cnni_dw_plane;

/* Input row (i0, i1) in padded coordinates, for kernel row t0. */
static inline const float *cnni_dw_row(const cnni_dw_plane *p, int64_t t0, int64_t i0, int64_t i1)
{
    const cnni_conv_geom *g = p->g;
    const float *src = p->x + (i0 * g->in[1] + i1) * g->in[2];
    if (p->in_place)
        return src;
    const int64_t slot = t0 * p->ring_rows + (i1 & (p->ring_rows - 1)), tag = i0 * g->in[1] + i1;
    float *d = p->ring + slot * p->width;
    if (p->tags[slot] != tag) {
        /* d[q] = src[q - p2] where that is inside the row, else 0 */
        int64_t lo = g->p[2] > 0 ? g->p[2] : 0, hi = g->p[2] + g->in[2];
        hi = hi < p->width ? hi : p->width;
        hi = hi > lo ? hi : lo;
        p->copy(d, p->width, src + (lo - g->p[2]), lo, hi - lo);
        p->tags[slot] = tag;
    }
    return d;
}

typedef struct cnni_dw_kernels {
    /* y = (accumulate ? y : bias) + sum_t x(z, t) w[t], over the plane's rows */
    void (*forward)(const cnni_dw_plane *p, float *y, float bias, int accumulate);
    /* dw[t] += sum_z x(z, t) dy(z) over all rows (w unused); db += sum dy when non-NULL */
    void (*weight)(const cnni_dw_plane *p, const float *dy, double *dw, double *db);
    /* xp(z, t) += dy(z) w[t] into the padded plane xp (x unused) */
    void (*scatter)(const cnni_dw_plane *p, float *xp, const float *dy);
    /* d[0, width) = 0 except d[lo, lo + len) = s[0, len) */
    void (*copy)(float *d, int64_t width, const float *s, int64_t lo, int64_t len);
} cnni_dw_kernels;

extern const cnni_dw_kernels cnni_dw_kernels_generic, cnni_dw_kernels_avx2, cnni_dw_kernels_avx512;

#endif
