/* Reference kernels of Linear (y = x W^T + b), over float and double. */
#ifndef CNN_LINEAR_REF_H
#define CNN_LINEAR_REF_H

#include <stdint.h>

#define CNNI_LINEAR_REF_DECLARE(REAL, SFX)                                                         \
    /* x (M, K), w (N, K), b (N) or NULL -> y (M, N) */                                            \
    void cnni_ref_linear_forward_##SFX(int64_t M, int64_t N, int64_t K, const REAL *x,             \
                                       const REAL *w, const REAL *b, REAL *y);                     \
    /* dy (M, N) -> dx (M, K) = dy w, overwritten */                                               \
    void cnni_ref_linear_backward_data_##SFX(int64_t M, int64_t N, int64_t K, const REAL *dy,      \
                                             const REAL *w, REAL *dx);                             \
    /* dw (N, K) += dy^T x; db (N) += column sums of dy (db may be NULL) */                        \
    void cnni_ref_linear_backward_weight_##SFX(int64_t M, int64_t N, int64_t K, const REAL *x,     \
                                               const REAL *dy, REAL *dw, REAL *db);

CNNI_LINEAR_REF_DECLARE(float, f32)
CNNI_LINEAR_REF_DECLARE(double, f64)

#endif
