/* Fast convolution on the packed GEMM, for the same geometry and with the
 * same results (to float rounding) as the reference kernels in ref/ref.h:
 *   forward:          Y_n,g (O/G x P) = W_g (O/G x K) im2col(X_n,g) (K x P) + b
 *   backward data:    dX_n,g = col2im(W_g^T dY_n,g), in pixel chunks
 *   backward weight:  dW_g += dY_g (O/G x NP) im2col(X_g)^T (NP x K), over
 *                     the whole batch as one long reduction
 * where K = C/G x kernel volume and P = output pixels. im2col is never
 * stored: the GEMM's B packer gathers it straight from the image.
 * Work is split into tasks that depend only on the shapes, so results are
 * bitwise identical whatever the number of threads. */
#ifndef CNN_CONV_FAST_H
#define CNN_CONV_FAST_H

#include "gemm.h"
#include "ref/ref.h"

struct cnni_pool;

/* Scratch bytes for one call with `threads` threads. */
size_t cnni_conv_fast_scratch(const cnni_gemm_kernel *k, const cnni_conv_geom *g, int threads);

void cnni_conv_fast_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, const cnni_conv_geom *g,
                            const float *x, const float *w, const float *b, float *y, void *scratch);
/* dx is overwritten. */
void cnni_conv_fast_backward_data(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                  const cnni_conv_geom *g, const float *dy, const float *w, float *dx,
                                  void *scratch);
/* dw += ...; db += sum of dy per channel (db may be NULL). */
void cnni_conv_fast_backward_weight(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                    const cnni_conv_geom *g, const float *x, const float *dy, float *dw,
                                    float *db, void *scratch);

/* Transposed convolution (geometry of the conv it reverses, as in ref.h). */
void cnni_convt_fast_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, const cnni_conv_geom *g,
                             const float *x, const float *w, const float *b, float *y, void *scratch);
void cnni_convt_fast_backward_data(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                   const cnni_conv_geom *g, const float *dy, const float *w, float *dx,
                                   void *scratch);
void cnni_convt_fast_backward_weight(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                     const cnni_conv_geom *g, const float *x, const float *dy, float *dw,
                                     float *db, void *scratch);

#endif
