/* Reference kernels of the normalisation family (BatchNorm, InstanceNorm,
 * GroupNorm, LayerNorm), over float and double.
 *
 * All four normalise x viewed as (N, G, Cg, S): a statistic (mean and
 * variance) is taken per (n, g) over Cg * S elements, or per g over all
 * N * Cg * S elements when across_batch is set; the affine weight and bias
 * are indexed by channel g * Cg + j.
 *   BatchNorm     (N, C, S)  ->  G = C, Cg = 1, across_batch
 *   InstanceNorm  (N, C, S)  ->  G = C, Cg = 1
 *   GroupNorm     (N, C, S)  ->  G = groups, Cg = C / groups
 *   LayerNorm     (M, K)     ->  N = M, G = 1, Cg = K, S = 1
 * Statistics are kept in double in both builds. */
#ifndef CNN_NORM_REF_H
#define CNN_NORM_REF_H

#include <stdint.h>

typedef struct cnni_norm_geom {
    int64_t N;        /* outer count: batch, or LayerNorm's leading rows */
    int64_t G;        /* statistic groups per outer index */
    int64_t Cg;       /* affine channels per group */
    int64_t S;        /* elements per channel */
    int across_batch; /* one statistic per group, taken over all N (BatchNorm) */
} cnni_norm_geom;

/* How many statistics there are, and over how many elements each is taken. */
static inline int64_t cnni_norm_nstat(const cnni_norm_geom *g)
{
    return g->across_batch ? g->G : g->N * g->G;
}
static inline int64_t cnni_norm_count(const cnni_norm_geom *g)
{
    return (g->across_batch ? g->N : 1) * g->Cg * g->S;
}

#define CNNI_NORM_REF_DECLARE(REAL, SFX)                                                           \
    /* mean and biased variance of every statistic, two-pass in double (0 and 0 for an empty      \
     * one) */                                                                                     \
    void cnni_ref_norm_stats_##SFX(const cnni_norm_geom *g, const REAL *x, double *mean,          \
                                   double *var);                                                   \
    /* y = (x - mean) * rstd * w + b; w and b may be NULL (1 and 0) */                             \
    void cnni_ref_norm_forward_##SFX(const cnni_norm_geom *g, const REAL *x, const double *mean,  \
                                     const double *rstd, const REAL *w, const REAL *b, REAL *y);   \
    /* Gradients of the forward above. batch_stats: mean and rstd were computed from x (their     \
     * dependence on x is differentiated); otherwise they are constants (running statistics).     \
     * dx overwritten, dw and db accumulated; any of the three may be NULL. */                     \
    void cnni_ref_norm_backward_##SFX(const cnni_norm_geom *g, const REAL *x, const REAL *dy,     \
                                      const double *mean, const double *rstd, const REAL *w,      \
                                      int batch_stats, REAL *dx, REAL *dw, REAL *db);

CNNI_NORM_REF_DECLARE(float, f32)
CNNI_NORM_REF_DECLARE(double, f64)

#endif
