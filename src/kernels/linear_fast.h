/* Linear on the packed GEMM: y = x W^T + b, dx = dy W, dW += dy^T x,
 * db += column sums of dy; x is M x K, W is N x K. Column blocks of fixed
 * width are the parallel tasks, so results do not depend on threads. */
#ifndef CNN_LINEAR_FAST_H
#define CNN_LINEAR_FAST_H

#include "gemm.h"

struct cnni_pool;

/* Scratch for M rows of K inputs with up to `threads` threads. */
size_t cnni_linear_fast_scratch(const cnni_gemm_kernel *k, int64_t M, int64_t K, int threads);
void cnni_linear_fast_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M, int64_t N,
                              int64_t K, const float *x, const float *w, const float *b, float *y,
                              void *scratch);
void cnni_linear_fast_backward_data(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M,
                                    int64_t N, int64_t K, const float *dy, const float *w, float *dx,
                                    void *scratch);
void cnni_linear_fast_backward_weight(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M,
                                      int64_t N, int64_t K, const float *x, const float *dy, float *dw,
                                      float *db, void *scratch);

#endif
