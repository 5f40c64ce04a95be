/* Direct convolution without im2col, for layers with at least 24 output
 * channels per group (blocks of 32) or 12 to 16 (one block of 16): output
 * channels along the SIMD lanes, up to 14 consecutive pixels of one output
 * row broadcast from a zero-padded copy of the input (or the input itself
 * when the outputs read exactly all of it), the tile transposed in
 * registers to channel-major rows on the way out, the reduction over
 * (input channel, kernel tap) read through a table of offsets. Weights are
 * packed once per call as K x 32 (or K x 16) blocks. Works for any stride,
 * dilation, padding and groups; the backward data pass at stride 1 runs the
 * same kernel on the padded output gradient with the weights flipped and
 * transposed.
 * Tasks (image, group, channel block, row) never share outputs, so results do
 * not depend on the number of threads. Falls back to nothing: callers check
 * cnni_conv_direct_applies() and otherwise use conv_fast.h. */
#ifndef CNN_CONV_DIRECT_H
#define CNN_CONV_DIRECT_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

#define CNNI_DIRECT_NR 32 /* the widest block of channels */
#define CNNI_DIRECT_MAX_MR 14

/* One tile: acc(pixel r, channel j) = sum_k x[base + r*s + off[k]] * w[k*nr + j];
 * stored to y[j*ldy + r] for j < nvalid (added to y when accumulate), with
 * bias[j] added when bias is non-NULL. */
typedef void (*cnni_direct_tile_fn)(int64_t K, const int64_t *off, const float *base, int64_t s,
                                    const float *w, float *y, int64_t ldy, int nvalid, const float *bias,
                                    int accumulate);

/* The tile kernel of an instruction set for blocks of nr (16 or 32)
 * channels and mr pixels (1..max), or NULL. */
cnni_direct_tile_fn cnni_direct_tile_for(int isa, int nr, int mr);
int cnni_direct_max_mr(int isa);

/* Layers with one block of 16 channels, kernels 5 wide along the rows at
 * stride and dilation 1 and rows of an even number (at most 16) of outputs
 * run the forward (and backward data) as Winograd F(2,5) along the rows:
 * each pair of outputs of a row takes 6 products per (channel, kernel row)
 * instead of 10. The input rows are transformed once per image (d below,
 * 6 vectors of 16 lanes per row, pair p read at lane 2p), the weights once
 * per call (u: per (input channel, kernel row), 6 vectors of 16 channels). */
typedef int (*cnni_direct_wino_fn)(int64_t K, const int64_t *off, const float *base, const float *u, float *y,
                                   int64_t ldy, int nvalid, const float *bias);
cnni_direct_wino_fn cnni_direct_wino_for(int isa, int np); /* np pairs (1..5), or NULL */
void cnni_direct_wino_input(int isa, const float *x, int64_t width, int64_t rows, float *d);
/* With AVX-512 the forward and backward data of those layers with rows of
 * 4 or more outputs run as Winograd F(4,5) instead: each quad of outputs
 * of a row takes 8 products per (channel, kernel row) instead of 20
 * (F(2,5): 12), the points 0, +-1, +-2, +-1/2 and infinity. A row of
 * outputs is nq = ceil(width / 4) quads (the last one cut short). The
 * input rows are transformed once per image (cnni_direct_quad_input:
 * d[channel][component j][quad q][row], ld rows a channel, the rows
 * rounded up to 16), the weights once per call (u: per (input channel,
 * kernel row), 8 vectors of 16 channels). cnni_direct_quad_for(isa, nq)
 * gives the tile for rows of nq quads: all of them, or 2 of 4; it stores
 * nout (<= 4 x its quads) outputs and returns nonzero when one of them is
 * NaN or infinite. */
/* F(4,5)'s weight transform for those points: (G w)[j] = sum_t G[j][t] w[t]
 * (a constant table, shared with conv_quadimg.c). */
extern const double cnni_f45_weight[8][5];
typedef int (*cnni_direct_quad_fn)(int64_t K, const int64_t *off, const float *base, int64_t ld, const float *u,
                                   float *y, int64_t ldy, int nout, int nvalid, const float *bias);
cnni_direct_quad_fn cnni_direct_quad_for(int isa, int nq);
void cnni_direct_quad_input(int isa, const float *x, int64_t width, int64_t rows, int64_t channels, int nq,
                            float *d);
/* The weight gradient of such layers, the same algorithm transposed:
 * m[k][j] = sum over images, output rows and pairs of d(x)[j] (A dy)[j] for
 * each (channel, kernel row) k, A dy = (d0, d0 + d1, d0 - d1, d0 + 2 d1,
 * d0 - 2 d1, d1) from each pair of dy, summed in float over an image and
 * in double over images; dw = G^T m once at the end. */
typedef void (*cnni_direct_wino_wtile_fn)(int64_t R, const int64_t *rowoff, int64_t np, const float *xt,
                                          const int64_t *koff, const float *a, double *acc);
cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_for(int isa, int mk); /* mk kernel rows (1..5) */
void cnni_direct_wino_dy(int isa, int64_t npairs, const float *dyt, float *a);

/* Whether the direct kernels serve this forward (and this backward data). */
int cnni_conv_direct_applies(int isa, const cnni_conv_geom *g);
int cnni_conv_direct_applies_bwd(int isa, const cnni_conv_geom *g);
/* Whether the direct forward (and weight gradient), or the backward data
 * pass, runs as Winograd F(2,5) along the rows (the layer's choice of
 * kernels weighs it). */
int cnni_conv_direct_wino(int isa, const cnni_conv_geom *g);
int cnni_conv_direct_wino_bwd(int isa, const cnni_conv_geom *g);
size_t cnni_conv_direct_scratch(int isa, const cnni_conv_geom *g, int threads);
void cnni_conv_direct_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                              const float *w, const float *b, float *y, void *scratch);
/* dx overwritten; stride 1 only (see applies_bwd). */
void cnni_conv_direct_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                    const float *w, float *dx, void *scratch);

/* The weight gradient with the same arrangement: a tile holds up to 10
 * taps x one block of output channels, every pixel of an image adds
 * x(pixel, tap) broadcast times the block's dy at that pixel (dy is first
 * transposed to pixel-major blocks, and summed there for the bias). Tasks
 * are (group, channel block, batch slice), the slices chosen from the shape
 * and their partial sums added in a fixed order. dw += ...; db += sum of
 * dy (db may be NULL).
 * Applies whenever cnni_conv_direct_applies() does. */
size_t cnni_conv_direct_weight_scratch(int isa, const cnni_conv_geom *g, int threads);
void cnni_conv_direct_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                      const float *dy, float *dw, float *db, void *scratch);

#define CNNI_DIRECT_MAX_MK 12
/* acc[i*nr + j] += sum_{z < P} x[pix[z] + toff[i]] * dyt[z*nr + j] for i < mk taps. */
typedef void (*cnni_direct_wtile_fn)(int64_t P, const int64_t *pix, const float *x, const int64_t *toff,
                                     const float *dyt, float *acc);
cnni_direct_wtile_fn cnni_direct_wtile_for(int isa, int nr, int mk);

/* dst[z*nr + c] = src[c*ld + z] for c < nvalid and 0 for c in [nvalid, nr),
 * z < P; sum[c] = the sum over z of dst[z*nr + c] (c < nr). */
typedef void (*cnni_direct_transpose_fn)(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst,
                                         float *sum);
cnni_direct_transpose_fn cnni_direct_transpose_for(int isa);

#endif
