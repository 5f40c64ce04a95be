/* Fast pooling: the reference kernels' contract (ref/pool_ref.h), split
 * over planes across threads (chunks fixed by the shape, so results never
 * depend on the thread count), with dedicated float loops for the common
 * non-overlapping 2-d windows and for the argmax gradient. */
#ifndef CNN_POOL_FAST_H
#define CNN_POOL_FAST_H

#include "ref/pool_ref.h"

struct cnni_pool;

/* isa: a cnni_isa; AVX-512 runs the 2x2 stride-2 windows 16 outputs at a time. */
void cnni_pool_fast_max_forward(int isa, struct cnni_pool *pool, const cnni_pool_geom *g, const float *x,
                                float *y, int64_t *idx);
void cnni_pool_fast_avg_forward(int isa, struct cnni_pool *pool, const cnni_pool_geom *g, const float *x,
                                float *y);
void cnni_pool_fast_avg_backward(int isa, struct cnni_pool *pool, const cnni_pool_geom *g, const float *dy,
                                 float *dx);
/* dx[c, i] = sum of dy[c, j] over idx[c, j] == i, overwritten; indices
 * outside the plane are skipped. */
void cnni_pool_fast_argmax_backward(struct cnni_pool *pool, int64_t NC, int64_t in_plane, int64_t out_plane,
                                    const float *dy, const int64_t *idx, float *dx);

/* The plane by plane pieces of the above, for a normalisation that pools
 * its fused ReLU's output plane by plane (norm_fast.h). planewise: the
 * windows have stride = kernel, no padding or dilation, and lie inside the
 * input; max_plane then computes one plane as cnni_pool_fast_max_forward
 * does, bit for bit. */
int cnni_pool_fast_planewise(const cnni_pool_geom *g);
void cnni_pool_fast_max_plane(int isa, const cnni_pool_geom *g, const float *x, float *y, int64_t *idx);
void cnni_pool_fast_argmax_plane_backward(int64_t in_plane, int64_t out_plane, const float *dy,
                                          const int64_t *idx, float *dx);
/* One plane of an average pooling with planewise windows, bit for bit as
 * cnni_pool_fast_avg_forward and _backward compute it (the backward
 * overwrites the whole input plane); for an activation that pools its own
 * output (act_fast.h). */
void cnni_pool_fast_avg_plane(int isa, const cnni_pool_geom *g, const float *x, float *y);
void cnni_pool_fast_avg_plane_backward(int isa, const cnni_pool_geom *g, const float *dy, float *dx);

/* 2x2 windows (planewise): the argmax kept as a byte per output, its
 * window position 0..3 (row-major), as the fused normalisation stores it.
 * The values are max_plane's; the backward overwrites the whole input
 * plane with what cnni_pool_fast_argmax_backward writes for the same
 * argmax, bit for bit. */
int cnni_pool_fast_two_by_two(const cnni_pool_geom *g);
void cnni_pool_fast_max2_plane(int isa, const cnni_pool_geom *g, const float *x, float *y, uint8_t *code);
void cnni_pool_fast_max2_plane_backward(int isa, const cnni_pool_geom *g, const float *dy, const uint8_t *code,
                                        float *dx);

/* Rows of 2x2 stride-2 windows (x86/pool_avx512.c): each computes the OW
 * outputs of a row and returns OW (the count done, for the caller's loop). */
int64_t cnni_pool2_avg_row_avx512(int64_t OW, const float *r0, const float *r1, float *y);
int64_t cnni_pool2_avg_row_backward_avx512(int64_t OW, const float *dy, float *d0, float *d1);
int64_t cnni_pool2_max_row_avx512(int64_t OW, const float *r0, const float *r1, int64_t at0, int64_t W,
                                  float *y, int64_t *idx);

void cnni_pool2_max_plane_code_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y,
                                      uint8_t *code);
void cnni_pool2_max_plane_backward_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy,
                                          const uint8_t *code, float *dx);

/* Whole planes of 2x2 stride-2 average windows (H x W in, OH x OW out,
 * 2 OH <= H, 2 OW <= W): the rows above, stored with whole vectors where
 * the plane allows; the backward overwrites the whole input plane. */
void cnni_pool2_avg_plane_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y);
void cnni_pool2_avg_plane_backward_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy,
                                          float *dx);

/* The same with AVX2 (x86/pool_avx2.c). */
int64_t cnni_pool2_avg_row_avx2(int64_t OW, const float *r0, const float *r1, float *y);
int64_t cnni_pool2_avg_row_backward_avx2(int64_t OW, const float *dy, float *d0, float *d1);
int64_t cnni_pool2_max_row_avx2(int64_t OW, const float *r0, const float *r1, int64_t at0, int64_t W, float *y,
                                int64_t *idx);
void cnni_pool2_max_plane_code_avx2(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y,
                                    uint8_t *code);
void cnni_pool2_max_plane_backward_avx2(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy,
                                        const uint8_t *code, float *dx);

#endif
