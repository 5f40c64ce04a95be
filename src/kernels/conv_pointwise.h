/* Pointwise convolution: 1x1 kernels at stride 1 without padding (the 1x1
 * layers of ResNet's bottlenecks and of depthwise-separable blocks), per
 * image and group the product
 *   Y (O/G x P) = W (O/G x C/G) X (C/G x P) + b,  P = the pixels,
 * with the pixels along the SIMD lanes. Each task copies a block of up to
 * a few hundred pixels of every input channel into stripes of 16 pixels
 * (K x 16 floats, contiguous), reading each channel's row in order, and
 * runs tiles of 6 output channels x 16 pixels over each stripe while it
 * sits in L1. Read in place instead, the channel rows of a 56 x 56 image
 * lie 12.5 KB apart, and the tiles waited on memory: AVX2 direct tiles
 * (channels along the lanes) ran at 50-60% of the FMA peak on ResNet's
 * 256 -> 64 layer.
 * The backward data pass is the same product with W transposed:
 *   dX (C/G x P) = W^T dY.
 * Each task prefetches the next task's block into L2 as its tiles run, and
 * the tasks run in contiguous ranges per thread, so that block is the
 * thread's own next.
 * Tasks (image, group, pixel block) never share outputs and each output's
 * sum runs in one order, so results do not depend on the number of
 * threads. AVX2 only (AVX-512's direct tiles do better there); callers
 * check cnni_conv_pointwise_applies() and otherwise use another kernel. */
#ifndef CNN_CONV_POINTWISE_H
#define CNN_CONV_POINTWISE_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

#define CNNI_PW_MR 6  /* output channels a tile */
#define CNNI_PW_NR 16 /* pixels a tile (a stripe) */

/* One tile: y[r*ldy + j] = sum_k w[k*CNNI_PW_MR + r] x[k*CNNI_PW_NR + j]
 * (+ bias[r] when bias is non-NULL) for r < m, j < n. */
typedef void (*cnni_pw_tile_fn)(int64_t K, const float *w, const float *x, float *y, int64_t ldy, int m, int n,
                                const float *bias);

/* The forward (and the backward data pass) run here for this geometry. */
int cnni_conv_pointwise_applies(int isa, const cnni_conv_geom *g);
int cnni_conv_pointwise_applies_bwd(int isa, const cnni_conv_geom *g);

/* Scratch bytes for either pass with `threads` threads. */
size_t cnni_conv_pointwise_scratch(int isa, const cnni_conv_geom *g, int threads);

void cnni_conv_pointwise_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                 const float *w, const float *b, float *y, void *scratch);
/* dx is overwritten. */
void cnni_conv_pointwise_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                       const float *w, float *dx, void *scratch);

#endif
