/* Fast normalisation kernels (BatchNorm, InstanceNorm, GroupNorm,
 * LayerNorm) with the reference kernels' contract (ref/norm_ref.h), in
 * float with SIMD span loops and per-statistic sums kept in double; work
 * is split over statistics and channels in a fixed way, so the results do
 * not depend on the number of threads. */
#ifndef CNN_NORM_FAST_H
#define CNN_NORM_FAST_H

#include "conv_wgrad_plane.h"
#include "ref/norm_ref.h"
#include "ref/pool_ref.h"

#include <stddef.h>

struct cnni_pool;

/* Scratch bytes the backward needs. */
size_t cnni_norm_fast_scratch(const cnni_norm_geom *g);
void cnni_norm_fast_stats(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                          double *mean, double *var);
/* With z not NULL, also z = ReLU(y), in the same pass (a normalisation
 * followed by a ReLU, fused by the graph). */
void cnni_norm_fast_forward(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                            const double *mean, const double *rstd, const float *w, const float *b, float *y,
                            float *z);
/* A convolution's weight gradient taken in a BatchNorm2d's backward (the
 * graph fuses them when the convolution's output only the BatchNorm reads
 * and its input needs no gradient): each span's input gradient (one
 * (sample, channel) plane, g->S <= CNNI_NORM_POOL_MAX_PLANE) is formed in
 * a stack buffer instead of dx, and its plane weight gradient against
 * sample n's input (conv_wgrad_plane.h) is kept per span; the spans' sums,
 * in double in sample order, are added to dw (C KH KW per channel) and db
 * (NULL: no bias). The gradient tensor is never written or read back.
 *
 * With g NULL, only the bias gradient of a convolution (any kind) whose
 * output only the normalisation reads, and whose channels are its spans'
 * (BatchNorm): dx is written as usual, and each span's sum is taken while
 * it is still in cache (db[c] += the sum of dx over channel c's spans, each
 * span's sum in double, then in sample order), so the convolution's
 * backward need not read its output gradient once more for it. x and dw
 * are unused then. */
typedef struct cnni_norm_wgrad {
    const cnni_wgrad_plane_geom *g;
    const float *x; /* the convolution's input, N x C x H x W */
    float *dw, *db;
} cnni_norm_wgrad;
/* Scratch bytes the backward needs besides cnni_norm_fast_scratch's, for
 * the weight gradient of geometry wg (NULL: the bias gradient alone). */
size_t cnni_norm_fast_wgrad_scratch(const cnni_norm_geom *g, const cnni_wgrad_plane_geom *wg);

/* With relu set, dy is the gradient of ReLU(y) instead of y's: it is masked
 * where the forward's y (recomputed from x, w and b, bit for bit) was not
 * positive, as the ReLU's own backward would. b is only read then. With wg
 * set (dx then unused), the weight gradient above. */
void cnni_norm_fast_backward(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                             const float *dy, const double *mean, const double *rstd, const float *w,
                             const float *b, int relu, int batch_stats, float *dx, float *dw, float *db,
                             const cnni_norm_wgrad *wg, void *scratch);

/* BatchNorm -> ReLU -> max pooling, fused by the graph when the pooling
 * alone reads the ReLU's output: its planes are the spans (pool in-plane =
 * g->S <= CNNI_NORM_POOL_MAX_PLANE, planewise windows, pool plane q = span
 * (n * G + grp) * Cg + j). The forward writes only the pooled values and
 * their argmax; the ReLU output of each span lives in a stack buffer on the
 * way. The backward rebuilds each span's ReLU-output gradient the same way
 * from the pooled gradient. Every value is bitwise what the three layers
 * compute apart. */
#define CNNI_NORM_POOL_MAX_PLANE 4096
typedef struct cnni_norm_pool {
    const cnni_pool_geom *g;
    float *y;        /* forward: the pooled output */
    int64_t *idx;    /* the argmax of each pooled output (forward writes, backward reads); for
                      * 2x2 windows a byte each, its window position (pool_fast.h) */
    const float *dy; /* backward: the pooled output's gradient */
} cnni_norm_pool;
/* y and z (the ReLU's output) are not written; w and b as in forward. */
void cnni_norm_fast_forward_pool(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                                 const double *mean, const double *rstd, const float *w, const float *b,
                                 const cnni_norm_pool *pl);
/* backward with relu set and dy taken from the pooling's gradient */
void cnni_norm_fast_backward_pool(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                                  const cnni_norm_pool *pl, const double *mean, const double *rstd,
                                  const float *w, const float *b, int batch_stats, float *dx, float *dw,
                                  float *db, const cnni_norm_wgrad *wg, void *scratch);

/* The span loops each instruction set provides. A mean is passed as two
 * floats, hi + lo, and deviations are formed as (x - hi) - lo: exact enough
 * that inputs far from zero with a small spread lose nothing. */
typedef struct cnni_norm_spans {
    double (*sum)(const float *x, int64_t n);
    /* sum of d and of d^2 for d = x - mean: the first corrects the mean's rounding */
    void (*dev2)(const float *x, int64_t n, float hi, float lo, double *sd, double *sd2);
    /* y = (x - mean) a + b */
    void (*affine)(const float *x, int64_t n, float hi, float lo, float a, float b, float *y);
    void (*sums)(const float *x, const float *dy, int64_t n, float hi, float lo, double *sdy, double *sdyx);
    /* dx = r (w dy - c) + k (x - mean); w dy - c is exactly 0 where it should be
     * (a statistic over one element), which r (w dy) - r c would not be.
     * With sdx set, also the sum of dx (as sum does it), for a bias
     * gradient: dx is the same bits either way. */
    void (*grad)(const float *x, const float *dy, int64_t n, float hi, float lo, float r, float w, float c,
                 float k, float *dx, double *sdx);
    /* Fused with a ReLU after the affine map y = (x - mean) a + b. */
    /* y as affine, and z = ReLU(y) */
    void (*affine_relu)(const float *x, int64_t n, float hi, float lo, float a, float b, float *y, float *z);
    /* g = dz where y > 0, else 0 */
    void (*relu_grad)(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b, float *g);
    /* sums and grad of g = relu_grad(dz) */
    void (*sums_relu)(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b,
                      double *sdy, double *sdyx);
    void (*grad_relu)(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b, float r,
                      float w, float c, float k, float *dx, double *sdx);
} cnni_norm_spans;

extern const cnni_norm_spans cnni_norm_spans_generic, cnni_norm_spans_avx2, cnni_norm_spans_avx512;

#endif
