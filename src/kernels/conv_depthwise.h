/* Plane convolution kernels (pixels along the SIMD lanes), made for
 * depthwise convolutions (one input channel per group, C == G) and serving
 * any group with few channels: a group's Cg input channels are simply more
 * taps, (channel, tap) pairs of one list. Any channel multiplier O/G,
 * kernel, stride, dilation and padding, in 1 to 3 spatial dims:
 *   forward:          y[n,o](z) = b[o] + sum_{c,t} x[n,c](z*s - p + t*d) w[o,c,t]
 *                     over the Cg channels c of o's group
 *   backward data:    at stride 1 the same loops on dy with the taps flipped,
 *                     the weights transposed and the padding d*(k-1) - p;
 *                     otherwise each dy value is scattered into padded
 *                     planes, which are then cropped
 *   backward weight:  dw[o,c,t] += sum_{n,z} x[n,c](z*s - p + t*d) dy[n,o](z),
 *                     a tile of taps x output channels in SIMD registers over
 *                     one plane, then added in double
 * Each pass works on (image, group) planes. Planes are read in place, or
 * through a zero-padded copy (see cnni_dw_plane), so the inner loops never
 * test a border. Rows are vectorised along the output width in blocks of up
 * to 4 vectors with masked tails, so narrow rows leave lanes empty: the
 * layer picks these kernels where that costs less than the alternatives
 * (src/layers/conv.c). Every output is computed by one task in a fixed
 * order, and weight gradients are split by channel block and by a batch
 * slicing given by the shape, so results are bitwise identical whatever
 * the number of threads. */
#ifndef CNN_CONV_DEPTHWISE_H
#define CNN_CONV_DEPTHWISE_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

/* Whether the convolution is depthwise (one input channel per group). The
 * kernels serve any convolution, though: see the top. */
int cnni_conv_dw_applies(const cnni_conv_geom *g);

/* Scratch bytes for the passes (a mask of these) run with `threads` threads. */
enum { CNNI_DW_FORWARD = 1, CNNI_DW_DATA = 2, CNNI_DW_WEIGHT = 4 };
size_t cnni_conv_dw_scratch(const cnni_conv_geom *g, int threads, unsigned passes);
void cnni_conv_dw_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                          const float *w, const float *b, float *y, void *scratch);
/* dx is overwritten. */
void cnni_conv_dw_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                const float *w, float *dx, void *scratch);
/* dw += ...; db += sum of dy per channel (db may be NULL). */
void cnni_conv_dw_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                  const float *dy, float *dw, float *db, void *scratch);

/* One plane as the per-ISA loops see it. Output (z0, z1, z2) and tap t read
 * x[z0*step0 + z1*step1 + z2*s2 + off[t]]: x is the input plane itself when
 * no padding is needed, otherwise a zero-padded copy in per-thread scratch
 * that the loops fill a few rows at a time, just before the first output
 * row that reads them, so the loads from memory overlap arithmetic. Either
 * way the inner loops never test a border. */
typedef struct cnni_dw_plane {
    const cnni_conv_geom *g;  /* sizes, stride, dilation, padding (N, C, O unused) */
    const float *x;           /* the planes read: nch input channels */
    const float *w;           /* ntaps weights per output channel */
    int64_t z1a, z1b;         /* output rows: z1 in [z1a, z1b), every z0 */
    int64_t step0, step1;
    int64_t ntaps;            /* nch x kernel volume: (channel, tap) pairs */
    const int64_t *off;       /* [ntaps] */
    /* The padded copy, when padded (then x == buf): rows of pd[2] floats,
     * pd[1] rows per step of dim 0, a plane per channel, of the nch input
     * planes at src; rows [0, filled) of dim 1 are done (every dim 0 and
     * channel). */
    int padded;
    int zeroed; /* the buffer's padding is zero already (from an earlier plane) */
    int64_t nch;
    const float *src;
    float *buf;
    int64_t pd[3], filled;
    void (*copy)(float *d, int64_t width, const float *s, int64_t lo, int64_t len);
} cnni_dw_plane;

/* Fills the padded copy's rows [p->filled, need). */
void cnni_dw_fill_rows(cnni_dw_plane *p, int64_t need);

/* Fills the padded copy's rows up to what output row z1 reads, and a few
 * more (a call per row would cost more than the copy on small planes). */
static inline void cnni_dw_fill(cnni_dw_plane *p, int64_t z1)
{
    const cnni_conv_geom *g = p->g;
    int64_t need = z1 * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
    if (p->padded && need > p->filled)
        cnni_dw_fill_rows(p, need + 8);
}

typedef struct cnni_dw_kernels {
    /* For q < m: y_q = (accumulate ? y_q : bias[q] or 0) + sum_t x(z, t) w_q[t] over
     * the plane's rows, where y_q = y + q*ystride and w_q = p->w + q*ntaps: the
     * m output channels of a group share each row of its input. */
    void (*forward)(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate);
    /* For q < m: acc_q[t] += sum_z x(z, t) dy_q(z) over all rows (w unused), and
     * acc_q[ntaps] += sum dy_q when want_db, where dy_q = dy + q*dystride and
     * acc_q = acc + q*accstride. */
    void (*weight)(cnni_dw_plane *p, int64_t m, const float *dy, int64_t dystride, double *acc, int64_t accstride,
                   int want_db);
    /* xp(z, t) += dy(z) w[t] over all rows, into the zeroed padded plane xp (x unused) */
    void (*scatter)(cnni_dw_plane *p, float *xp, const float *dy);
    /* d[0, width) = 0 except d[lo, lo + len) = s[0, len) */
    void (*copy)(float *d, int64_t width, const float *s, int64_t lo, int64_t len);
    /* c[t*ldc + p] = sum_{k < K} a[t*K + k] b[k*ldb + p] for t < T, p < P,
     * summed in the order of k */
    void (*cols)(int64_t T, int64_t K, int64_t P, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc);
    /* Rows r < rows of d, n wide: d[r*n + i] = sum over e in [first[r],
     * first[r + 1]) and t < k2 of src[e][t*ld + i - sh], where
     * sh = sh0 + t*dil, over the terms with 0 <= i - sh < m (0 when none),
     * for i < n, summed in an order fixed by the entries and k2 */
    void (*gather)(float *d, int64_t rows, int64_t n, int64_t m, const float *const *src, const int64_t *first,
                   int64_t k2, int64_t ld, int64_t sh0, int64_t dil);
    /* Whether the forward into m output channels per group (weight = 0),
     * or the weight gradient (weight = 1), reads the input planes of this
     * geometry (nch channels per group) in place whatever the padding,
     * applying the zeros itself: then no padded copy is made. */
    int (*pads)(const cnni_conv_geom *g, int64_t nch, int64_t m, int weight);
} cnni_dw_kernels;

extern const cnni_dw_kernels cnni_dw_kernels_generic, cnni_dw_kernels_avx2, cnni_dw_kernels_avx512;

#endif
