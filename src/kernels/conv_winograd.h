/* Winograd convolution F(4x4, 3x3) for 2-d 3x3 convolutions at stride 1,
 * dilation 1, one group, with many channels: each 4x4 block of outputs
 * (a tile) is computed from the 6x6 input patch under it as
 *     Y = A^T [ sum_c (G w[o,c] G^T) . (B^T x[c] B) ] A
 * (. elementwise), so the 36 points of the transformed domain cost one
 * product each where the direct algorithm spends 144 multiply-adds per tile:
 * for every point, [tiles x C] x [C x O], 4x fewer multiplications.
 *
 * Accuracy. Float32 Winograd loses precision in the transforms; with the
 * usual points (0, +-1, +-2) F(4,3) errs by 2e-5 of the largest output at
 * 512 channels. The points here, (0, +-2/3, +-3/2, inf), were the best of
 * a search over pairs of rationals (measured 3x smaller error), the weights
 * are transformed in double, and the sums over channels run in blocks of 64
 * whose partial sums are then added: about 1.5e-6 of the largest output
 * from 64 to 1024 channels (tests/unit/test_conv_winograd.c).
 *
 * Layout. Inside a call, channels lie along the SIMD lanes: a task takes a
 * block of tiles, gathers each run of tiles in one tile row from the NCHW
 * planes into rows of [column][16 channels] (zero outside the image, so
 * any padding, cropping or ragged edge is one code path), transforms them
 * to V[point][tile][channel], multiplies every point's [tiles x C] by the
 * weights' [C x O] (packed once per call as U[point][32-channel
 * block][C][32]) in register tiles of up to 12 tiles x 32 channels (AVX2:
 * up to 6 x 16), and
 * transforms M[point][tile][channel] back to 4x4 outputs, stored to the
 * NCHW planes (bias added). The backward data pass at stride 1 is the same
 * convolution of dy with the weights flipped and transposed and padding
 * 2 - p. Every output depends only on its own tile, never on how tiles are
 * grouped into tasks, so results are bitwise identical for any thread
 * count. A tile whose outputs come out NaN or infinite is recomputed by the
 * direct sum (see conv_winograd.c). The weight gradient (below) sums over tiles instead, in an order
 * set by the shape alone. */
#ifndef CNN_CONV_WINOGRAD_H
#define CNN_CONV_WINOGRAD_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

/* Whether Winograd serves this forward (and this backward data) on an
 * instruction set: 3x3, stride 1, dilation 1, one group, 2-d, and enough
 * channels and tiles to beat the other kernels (measured with AVX-512 and
 * AVX2; the portable kernels never apply). The kernels themselves run any
 * such geometry on any instruction set. */
int cnni_conv_winograd_applies(int isa, const cnni_conv_geom *g);
int cnni_conv_winograd_applies_bwd(int isa, const cnni_conv_geom *g);

/* Scratch bytes for the forward and the backward data pass with up to
 * `threads` threads. */
size_t cnni_conv_winograd_scratch(int isa, const cnni_conv_geom *g, int threads);
/* x (N, C, H, W), w (O, C, 3, 3), b (O) or NULL -> y (N, O, OH, OW), overwritten. */
void cnni_conv_winograd_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                const float *w, const float *b, float *y, void *scratch);
/* dy (N, O, OH, OW), w (O, C, 3, 3) -> dx (N, C, H, W), overwritten. */
void cnni_conv_winograd_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                      const float *w, float *dx, void *scratch);

/* The weight gradient, dw[o][c] += G^T [ sum over tiles (A dy A^T) . (B^T x B) ] G
 * (dy's 4x4 tile taken to the transformed domain by the output
 * transform's transpose, x's patch by the forward's input transform), and
 * db += the sum of dy (db may be NULL). Tiles are taken in chunks of a size
 * set by the shape alone: a chunk's transforms are stored, then every
 * point's [O x tiles] x [tiles x C] product is added to the point's sums
 * (each sum its own chain of products, by chunk in order), and the sums
 * are taken back to 3x3 in double. Results are bitwise identical for any
 * thread count. */
/* Whether it serves the weight gradient (the same geometries, from fewer
 * channels than the forward: measured on AVX-512). */
int cnni_conv_winograd_applies_weight(int isa, const cnni_conv_geom *g);
size_t cnni_conv_winograd_weight_scratch(int isa, const cnni_conv_geom *g, int threads);
void cnni_conv_winograd_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                        const float *dy, float *dw, float *db, void *scratch);

/* ---- the per-instruction-set pieces ---- */
#define CNNI_WINO_MR 12 /* tiles per register tile */
#define CNNI_WINO_KB 64 /* channels per block of the sums */

/* Floats in one row of the run buffers for runs of nt tiles: columns
 * [4 nt + 2 rounded up to 16][16 channels], plus a line so that rows do not
 * fall into one cache set. */
static inline int64_t cnni_wino_row_floats(int nt) { return ((4 * (int64_t)nt + 2 + 15) / 16 * 16 + 1) * 16; }

/* m[r*ldm + j] (=, or += when accumulate) sum_{k<K} v[r*ldv + k] * u[k*nr + j]
 * for r < mr tiles and j < nr (16 or 32) channels. */
typedef void (*cnni_wino_gemm_fn)(int64_t K, const float *v, int64_t ldv, const float *u, float *m, int64_t ldm,
                                  int accumulate);

/* m[r*ldm + j] (=, or += when accumulate) sum_{k<K} a[k*lda + r] * b[k*nr + j]
 * for r < mr and j < nr (16 or 32): the weight gradient's products, with
 * the out channels r broadcast and the in channels j along the lanes. */
typedef void (*cnni_wino_gemmt_fn)(int64_t K, const float *a, int64_t lda, const float *b, float *m, int64_t ldm,
                                   int accumulate);

typedef struct cnni_wino_kernels {
    cnni_wino_gemm_fn gemm32[CNNI_WINO_MR], gemm16[CNNI_WINO_MR]; /* [mr - 1] */
    cnni_wino_gemmt_fn gemmt32[CNNI_WINO_MR], gemmt16[CNNI_WINO_MR];
    /* Input transform of a run of nt tiles in one tile row, for 16 channels
     * (nch of them real, the rest zero): x is the first channel's plane
     * (plane floats apart, H x W), the run's patches start at row h0 and
     * column w0 (either may be negative); buf holds 6 rows of
     * cnni_wino_row_floats(nt). Point p of tile i goes to v[p*vs + i*ldv],
     * 16 floats. */
    void (*in_run)(const float *x, int64_t plane, int nch, int64_t H, int64_t W, int64_t h0, int64_t w0, int nt,
                   float *buf, float *v, int64_t ldv, int64_t vs);
    /* Output transform of nt tiles from m (point p of tile i at
     * m[p*ms + i*ldm], 16 channels), plus bias[0..15] when not NULL, to the
     * nch planes at y (plane floats apart, OH x OW; bias has nch floats),
     * outputs from row oh0,
     * column ow0; outputs past the edges are dropped; buf holds 4 rows of
     * cnni_wino_row_floats(nt). Returns nonzero when an output came out NaN
     * or infinite (see "Non-finite values" in conv_winograd.c). */
    int (*out_run)(const float *m, int64_t ldm, int64_t ms, int nt, const float *bias, int nch, float *y,
                    int64_t plane, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0, float *buf);
    /* Weight transform (in double) of 16 lanes (nl real, the rest zero) for
     * k < K: 3x3 filter t of lane l and row k is w[l*ls + k*ks + t], taps
     * reversed when flip; point p of row k goes to u[p*us + k*ldu], 16 floats. */
    void (*weights)(const float *w, int64_t ls, int64_t ks, int flip, int nl, int64_t K, float *u, int64_t ldu,
                    int64_t us);
    /* The weight gradient's transform of a run of nt dy tiles in one tile
     * row, 16 channels (nch real, the rest zero): dy is the first
     * channel's plane (plane floats apart, OH x OW, zero past its edges),
     * the tiles start at row oh0, column ow0; buf holds 4 rows of
     * cnni_wino_row_floats(nt). Point p of tile i goes to z[p*zs + i*ldz]. */
    void (*dy_run)(const float *dy, int64_t plane, int nch, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0, int nt,
                   float *buf, float *z, int64_t ldz, int64_t zs);
    /* dw[l*9 + t] += (G^T M_l G)[t], in double, for lanes l < nl, where
     * point p of M_l is m[p*ms + l]. */
    void (*wout)(const float *m, int64_t ms, int nl, float *dw);
} cnni_wino_kernels;

extern const cnni_wino_kernels cnni_wino_kernels_generic;
extern const cnni_wino_kernels cnni_wino_kernels_avx2;
extern const cnni_wino_kernels cnni_wino_kernels_avx512;

#endif
