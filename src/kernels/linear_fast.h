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

/* The forward of a few rows (a batch of up to LINEAR_WT_MAX_M) reads W in
 * place, its rows broadcast against x's rows packed transposed, rather
 * than packing all of W transposed for each call (the packing took a third
 * of LeNet-5's Linear(400, 120) forward at 32 rows). One tile: y[j][r] (row
 * stride ldy) for r < rows and j < cols from W's rows w (row stride ldw)
 * and x's rows packed as xt; each sum over k runs in blocks of kb, each
 * block's sum added to those before, then bias[r] (may be NULL): the packed
 * GEMM's bits.
 *   AVX-512: rows <= 12, cols <= 32, xt[k][j] = x[j][k] (32 floats a k);
 *   AVX2:    rows <= 6, cols <= 16, xt two panels of 8 of x's rows, K x 8
 *            floats each (xt[p][k][j] = x[8p + j][k]). */
#define LINEAR_WT_MAX_M 64
/* Whether cnni_linear_fast_forward takes that path for M rows on k's
 * instruction set: AVX-512 or AVX2, at most LINEAR_WT_MAX_M rows filling
 * at least 3/4 of the vectors they take. */
int cnni_linear_fast_w_in_place(const cnni_gemm_kernel *k, int64_t M);
void cnni_linear_wt_avx512(int64_t K, int64_t kb, const float *w, int64_t ldw, int rows, const float *xt, int cols,
                           const float *bias, float *y, int64_t ldy);
void cnni_linear_wt_avx2(int64_t K, int64_t kb, const float *w, int64_t ldw, int rows, const float *xt, int cols,
                         const float *bias, float *y, int64_t ldy);

#endif
