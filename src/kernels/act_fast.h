/* Fast elementwise activations in float: AVX-512 and AVX2 versions with a
 * vectorised exp (about 2 ulp), and a portable one. They cover the kinds
 * CNNs use most; the others (GELU, Softplus) stay on the reference kernel.
 * Large arrays are split into fixed chunks across threads. */
#ifndef CNN_ACT_FAST_H
#define CNN_ACT_FAST_H

#include "ref/activation_ref.h"

#include <math.h>
#include <stdint.h>

struct cnni_pool;

/* Thresholds are given in double (PyTorch's Python floats) and compared
 * with float inputs: x <= t exactly when x <= cnni_floor_f(t), and x >= t
 * exactly when x >= cnni_ceil_f(t), so the gradient's kinks fall where the
 * double comparison puts them. */
static inline float cnni_floor_f(double t)
{
    float f = (float)t;
    return (double)f > t ? nextafterf(f, -INFINITY) : f;
}
static inline float cnni_ceil_f(double t)
{
    float f = (float)t;
    return (double)f < t ? nextafterf(f, INFINITY) : f;
}

/* Whether the fast kernels handle this kind. */
int cnni_act_fast_supported(const cnni_act *a);
void cnni_act_fast_forward(int isa, struct cnni_pool *pool, const cnni_act *a, int64_t n, const float *x,
                           float *y);
/* dx = f'(x) dy (sigmoid and tanh from y, as PyTorch), overwritten. */
void cnni_act_fast_backward(int isa, struct cnni_pool *pool, const cnni_act *a, int64_t n, const float *x,
                            const float *y, const float *dy, float *dx);

/* An activation whose output an average pooling with planewise windows
 * (pool_fast.h) alone reads, run as one pass over whole planes: forward
 * writes y = f(x) and the pooling's output p; backward takes the pooling
 * output's gradient dp and writes dx = f'(x) (pooled gradient). Both are
 * bit for bit the two layers run apart: the planes are split so that every
 * span of f starts on a multiple of 16 elements (as the chunks of the
 * functions above), and the pooling is the plane kernel the pooling layer
 * runs. x has g->NC planes of cnni_pool_in_plane(g) values. */
struct cnni_pool_geom;
void cnni_act_fast_forward_avgpool(int isa, struct cnni_pool *pool, const cnni_act *a,
                                   const struct cnni_pool_geom *g, const float *x, float *y, float *p);
void cnni_act_fast_backward_avgpool(int isa, struct cnni_pool *pool, const cnni_act *a,
                                    const struct cnni_pool_geom *g, const float *x, const float *y,
                                    const float *dp, float *dx);

/* One contiguous span, per instruction set (x86/act_*.c and act_fast.c). */
typedef void (*cnni_act_fwd_fn)(const cnni_act *a, int64_t n, const float *x, float *y);
typedef void (*cnni_act_bwd_fn)(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                                float *dx);
void cnni_act_forward_generic(const cnni_act *a, int64_t n, const float *x, float *y);
void cnni_act_backward_generic(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                               float *dx);
void cnni_act_forward_avx2(const cnni_act *a, int64_t n, const float *x, float *y);
void cnni_act_backward_avx2(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                            float *dx);
void cnni_act_forward_avx512(const cnni_act *a, int64_t n, const float *x, float *y);
void cnni_act_backward_avx512(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                              float *dx);

#endif
