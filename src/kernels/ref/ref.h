/* Naive reference kernels: the oracle every fast kernel is tested against.
 * Each is written once over a REAL type and compiled twice: *_f32 (used by
 * the layers) and *_f64 (used by the finite-difference gradient checks).
 * Kernels never allocate, print or touch global state. */
#ifndef CNN_REF_H
#define CNN_REF_H

#include <stdint.h>

/* Geometry of a convolution with up to 3 spatial dims. Unused leading
 * spatial dims have size 1, kernel 1, stride 1, padding 0, dilation 1, so
 * every kernel is written once, for 3 dims. */
typedef struct cnni_conv_geom {
    int64_t N;       /* batch */
    int64_t C;       /* input channels */
    int64_t O;       /* output channels */
    int64_t G;       /* groups */
    int64_t in[3];   /* input size (D, H, W), already padded for non-zero modes */
    int64_t out[3];  /* output size */
    int64_t k[3];    /* kernel size */
    int64_t s[3];    /* stride */
    int64_t p[3];    /* zero padding before the first element (left/top/front) */
    int64_t d[3];    /* dilation */
} cnni_conv_geom;

/* Padding of a tensor (N, C, D, H, W) by lo[i] before and hi[i] after each
 * spatial dim; a negative amount crops, as in PyTorch's F.pad. */
typedef enum { CNNI_PAD_ZEROS, CNNI_PAD_REFLECT, CNNI_PAD_REPLICATE, CNNI_PAD_CIRCULAR } cnni_pad_mode;

typedef struct cnni_pad_geom {
    int64_t NC;      /* batch x channels */
    int64_t in[3];
    int64_t lo[3], hi[3];
    cnni_pad_mode mode;
} cnni_pad_geom;

#define CNNI_REF_DECLARE(REAL, SFX)                                                                \
    /* conv: x (N, C, in), w (O, C/G, k), b (O) or NULL -> y (N, O, out) */                     \
    void cnni_ref_conv_forward_##SFX(const cnni_conv_geom *g, const REAL *x, const REAL *w,        \
                                     const REAL *b, REAL *y);                                      \
    /* dy (N, O, out) -> dx (N, C, in), overwritten */                                             \
    void cnni_ref_conv_backward_data_##SFX(const cnni_conv_geom *g, const REAL *dy, const REAL *w, \
                                           REAL *dx);                                              \
    /* dw (O, C/G, k) += x * dy; db (O) += sum dy (db may be NULL) */                              \
    void cnni_ref_conv_backward_weight_##SFX(const cnni_conv_geom *g, const REAL *x,               \
                                             const REAL *dy, REAL *dw, REAL *db);                  \
    /* transposed conv, geometry as the conv it reverses: g->C are the transposed conv's outputs, \
     * g->O its inputs. x (N, O, out), w (O, C/G, k), b (C) -> y (N, C, in), overwritten */        \
    void cnni_ref_convt_forward_##SFX(const cnni_conv_geom *g, const REAL *x, const REAL *w,       \
                                      const REAL *b, REAL *y);                                     \
    /* dy (N, C, in) -> dx (N, O, out) overwritten: a plain convolution */                        \
    void cnni_ref_convt_backward_data_##SFX(const cnni_conv_geom *g, const REAL *dy, const REAL *w, \
                                            REAL *dx);                                             \
    /* dw (O, C/G, k) += ...; db (C) += sum dy */                                                  \
    void cnni_ref_convt_backward_weight_##SFX(const cnni_conv_geom *g, const REAL *x,              \
                                              const REAL *dy, REAL *dw, REAL *db);                 \
    /* pad: x (NC, in) -> y (NC, in + lo + hi) */                                                  \
    void cnni_ref_pad_forward_##SFX(const cnni_pad_geom *g, const REAL *x, REAL *y);               \
    /* dy (NC, padded) -> dx (NC, in), overwritten */                                              \
    void cnni_ref_pad_backward_##SFX(const cnni_pad_geom *g, const REAL *dy, REAL *dx);

CNNI_REF_DECLARE(float, f32)
CNNI_REF_DECLARE(double, f64)

#endif
