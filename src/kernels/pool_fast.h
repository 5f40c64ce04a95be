/* Fast pooling: the reference kernels' contract (ref/pool_ref.h), split
 * over planes across threads (chunks fixed by the shape, so results never
 * depend on the thread count), with dedicated float loops for the common
 * non-overlapping 2-d windows and for the argmax gradient. */
#ifndef CNN_POOL_FAST_H
#define CNN_POOL_FAST_H

#include "ref/pool_ref.h"

struct cnni_pool;

void cnni_pool_fast_max_forward(struct cnni_pool *pool, const cnni_pool_geom *g, const float *x, float *y,
                                int64_t *idx);
void cnni_pool_fast_avg_forward(struct cnni_pool *pool, const cnni_pool_geom *g, const float *x, float *y);
void cnni_pool_fast_avg_backward(struct cnni_pool *pool, const cnni_pool_geom *g, const float *dy, float *dx);
/* dx[c, i] = sum of dy[c, j] over idx[c, j] == i, overwritten; indices
 * outside the plane are skipped. */
void cnni_pool_fast_argmax_backward(struct cnni_pool *pool, int64_t NC, int64_t in_plane, int64_t out_plane,
                                    const float *dy, const int64_t *idx, float *dx);

#endif
