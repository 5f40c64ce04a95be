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
 * A plane is read through a zero-padded copy in per-thread scratch, so the
 * inner loops never test borders; when no padding is needed the input is
 * read in place. Rows are vectorised along the output width with masked
 * tails; every output is computed by one task in a fixed order and weight
 * gradients are split by channel and by a shape-given batch slicing, so
 * results are bitwise identical whatever the number of threads. */
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

/* One plane as the per-ISA loops see it: output row (z0, z1) reads the
 * window at x + z0*step0 + z1*step1, output z2 of that row adds
 * x[off[t] + z2*s2] w[t] over the taps. Rows z0 in [0, out0), z1 in
 * [z1a, z1b); the output (or output gradient) plane is dense, out1 x out2
 * per z0. */
typedef struct cnni_dw_plane {
    const float *x;
    int64_t step0, step1, s2;
    int64_t out0, out1, out2, z1a, z1b;
    const int64_t *off;
    const float *w;
    int64_t ntaps;
} cnni_dw_plane;

typedef struct cnni_dw_kernels {
    /* y = (accumulate ? y : bias) + sum_t ... over the plane's rows */
    void (*forward)(const cnni_dw_plane *p, float *y, float bias, int accumulate);
    /* dw[t] += sum_z x(z, t) dy(z) over all rows (w unused); db += sum dy when non-NULL */
    void (*weight)(const cnni_dw_plane *p, const float *dy, double *dw, double *db);
    /* xp(z, t) += dy(z) w[t]: p->x is the plane xp, written through */
    void (*scatter)(const cnni_dw_plane *p, float *xp, const float *dy);
} cnni_dw_kernels;

extern const cnni_dw_kernels cnni_dw_kernels_generic, cnni_dw_kernels_avx2, cnni_dw_kernels_avx512;

#endif
