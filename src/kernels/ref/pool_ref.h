/* Reference kernels of the pooling family: max and average pooling, their
 * adaptive forms and max unpooling, over float and double (see ref.h).
 *
 * Every kernel works on NC independent planes of up to 3 spatial dims;
 * 1-d and 2-d use size-1 leading dims (kernel 1, stride 1, padding 0,
 * dilation 1), so each is written once. Indices are int64 flat positions
 * within one input plane, as PyTorch's return_indices gives them. */
#ifndef CNN_POOL_REF_H
#define CNN_POOL_REF_H

#include <stdint.h>

typedef struct cnni_pool_geom {
    int64_t NC;             /* planes: batch x channels */
    int64_t in[3];          /* input plane size (D, H, W) */
    int64_t out[3];         /* output plane size */
    int64_t k[3], s[3], p[3], d[3]; /* kernel, stride, padding (both sides), dilation */
    int count_include_pad;  /* average: padded positions count in the divisor */
    int64_t divisor;        /* average: divisor_override, or 0 for none */
} cnni_pool_geom;

static inline int64_t cnni_pool_in_plane(const cnni_pool_geom *g)
{
    return g->in[0] * g->in[1] * g->in[2];
}
static inline int64_t cnni_pool_out_plane(const cnni_pool_geom *g)
{
    return g->out[0] * g->out[1] * g->out[2];
}

#define CNNI_POOL_REF_DECLARE(REAL, SFX)                                                           \
    /* max pooling: y (NC, out); idx (NC, out) receives the argmax, or may be NULL. The first     \
     * maximum wins a tie and the last NaN wins over everything, as in PyTorch; a window holding \
     * no input element gives -inf and the index of where its first tap would start. */          \
    void cnni_ref_maxpool_forward_##SFX(const cnni_pool_geom *g, const REAL *x, REAL *y,           \
                                        int64_t *idx);                                             \
    /* average pooling with PyTorch's divisor rules (count_include_pad, ceil-mode windows cut    \
     * at the right padding, divisor_override); y (NC, out) */                                    \
    void cnni_ref_avgpool_forward_##SFX(const cnni_pool_geom *g, const REAL *x, REAL *y);        \
    /* dy (NC, out) -> dx (NC, in), overwritten */                                                 \
    void cnni_ref_avgpool_backward_##SFX(const cnni_pool_geom *g, const REAL *dy, REAL *dx);     \
    /* adaptive pooling (only g->NC, g->in, g->out are used): window i of a dim of input size n  \
     * and output size m is [floor(i*n/m), ceil((i+1)*n/m)) */                                     \
    void cnni_ref_adaptive_avg_forward_##SFX(const cnni_pool_geom *g, const REAL *x, REAL *y);   \
    void cnni_ref_adaptive_avg_backward_##SFX(const cnni_pool_geom *g, const REAL *dy, REAL *dx); \
    void cnni_ref_adaptive_max_forward_##SFX(const cnni_pool_geom *g, const REAL *x, REAL *y,    \
                                             int64_t *idx);                                        \
    /* gradient of any argmax pooling: dx[c, i] = sum of dy[c, j] over the j with              \
     * idx[c, j] == i (overwritten); indices outside the plane are skipped. acc is scratch of    \
     * in_plane doubles, where each plane's sums are taken. */                                   \
    void cnni_ref_argmax_backward_##SFX(int64_t NC, int64_t in_plane, int64_t out_plane,          \
                                        const REAL *dy, const int64_t *idx, double *acc,          \
                                        REAL *dx);                                                 \
    /* max unpooling: y (NC, out_plane) is zeroed, then y[c, idx[c, j]] = x[c, j] in order (the  \
     * last of equal indices wins). Returns -1, or the position in idx of the first index        \
     * outside [0, out_plane), in which case y is left partly written. */                        \
    int64_t cnni_ref_unpool_forward_##SFX(int64_t NC, int64_t in_plane, int64_t out_plane,        \
                                          const REAL *x, const int64_t *idx, REAL *y);            \
    /* dx[c, j] = dy[c, idx[c, j]] (overwritten); returns -1 or the first bad position */          \
    int64_t cnni_ref_unpool_backward_##SFX(int64_t NC, int64_t in_plane, int64_t out_plane,       \
                                           const REAL *dy, const int64_t *idx, REAL *dx);

CNNI_POOL_REF_DECLARE(float, f32)
CNNI_POOL_REF_DECLARE(double, f64)

#endif
