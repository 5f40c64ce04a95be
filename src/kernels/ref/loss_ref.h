/* Reference kernels of the losses, over float and double.
 *
 * Every loss reduces a per-element (or per-position) value l as PyTorch's
 * `reduction` says: NONE keeps l, SUM adds it up, MEAN divides the sum by a
 * count (the element count, or for class losses with index targets the sum
 * of the weights of the non-ignored targets). Sums are taken in double in
 * both builds. Backward kernels read the gradient of the output dy (one
 * value for MEAN and SUM, one per element for NONE) and OVERWRITE dx and dt;
 * either may be NULL when that gradient is not wanted. */
#ifndef CNN_LOSS_REF_H
#define CNN_LOSS_REF_H

#include <stdint.h>

/* PyTorch's reduction enum values. */
enum { CNNI_RED_NONE = 0, CNNI_RED_MEAN = 1, CNNI_RED_SUM = 2 };

/* Losses of an elementwise difference d = x - t. */
enum { CNNI_LOSS_MSE = 0, CNNI_LOSS_L1 = 1, CNNI_LOSS_SMOOTH_L1 = 2 };

#define CNNI_LOSS_MAX_DIMS 8

/* The input's shape, and where the weight tensors broadcast over it
 * (right-aligned, numpy rules) keep the element that scales each input
 * element: the element with coordinates c[0..ndim) uses weight element
 * sum_d c[d] * wstride[d] (pos_weight: pstride). A stride is 0 along the
 * dimensions a weight lacks or has size 1. */
typedef struct cnni_loss_bcast {
    int ndim;
    int64_t dims[CNNI_LOSS_MAX_DIMS];
    int64_t wstride[CNNI_LOSS_MAX_DIMS]; /* weight */
    int64_t pstride[CNNI_LOSS_MAX_DIMS]; /* pos_weight (BCEWithLogitsLoss) */
} cnni_loss_bcast;

/* Class losses view the input as (N, C, S): batch, classes, and the
 * positions of the dimensions after the class dimension (S = 1 for an
 * (N, C) input; N = 1 for an unbatched (C) input). Index targets are
 * (N, S); probability targets have the input's layout. */
typedef struct cnni_class_geom {
    int64_t N, C, S;
} cnni_class_geom;

typedef struct cnni_class_opts {
    int log_softmax;        /* 1: x are logits (CrossEntropyLoss); 0: log-probabilities (NLLLoss) */
    int reduction;
    int64_t ignore_index;   /* index targets only */
    double label_smoothing; /* CrossEntropyLoss only: 0 (none) or in (0, 1] */
} cnni_class_opts;

#define CNNI_LOSS_REF_DECLARE(REAL, SFX)                                                           \
    /* MSE, L1 or SmoothL1 (beta; with beta 0 the values of L1, but slope -1 at x = t) of x and  \
     * a target t, or ti when t is NULL (an int64 target, as PyTorch allows for L1Loss and        \
     * SmoothL1Loss); n elements -> y */                                                           \
    void cnni_ref_pointwise_loss_forward_##SFX(int kind, int reduction, double beta, int64_t n,   \
                                               const REAL *x, const REAL *t, const int64_t *ti,    \
                                               REAL *y);                                           \
    void cnni_ref_pointwise_loss_backward_##SFX(int kind, int reduction, double beta, int64_t n,  \
                                                const REAL *x, const REAL *t, const int64_t *ti,   \
                                                const REAL *dy, REAL *dx, REAL *dt);               \
    /* BCELoss of probabilities x and targets t (shape b->dims), weight w broadcast by b (w NULL: \
     * none). Returns -1, or the index of the first x outside [0, 1] (NaN included), in which     \
     * case y is not written. */                                                                   \
    int64_t cnni_ref_bce_forward_##SFX(int reduction, const cnni_loss_bcast *b, const REAL *x,    \
                                       const REAL *t, const REAL *w, REAL *y);                     \
    void cnni_ref_bce_backward_##SFX(int reduction, const cnni_loss_bcast *b, const REAL *x,      \
                                     const REAL *t, const REAL *w, const REAL *dy, REAL *dx,       \
                                     REAL *dt);                                                    \
    /* BCEWithLogitsLoss of logits x and targets t (shape b->dims); weight w and pos_weight pw   \
     * broadcast by b (either NULL: none). */                                                      \
    void cnni_ref_bce_logits_forward_##SFX(int reduction, const cnni_loss_bcast *b, const REAL *x,\
                                           const REAL *t, const REAL *w, const REAL *pw, REAL *y); \
    void cnni_ref_bce_logits_backward_##SFX(int reduction, const cnni_loss_bcast *b,              \
                                            const REAL *x, const REAL *t, const REAL *w,           \
                                            const REAL *pw, const REAL *dy, REAL *dx, REAL *dt);   \
    /* CrossEntropyLoss / NLLLoss of x (N, C, S) with index targets ti (N, S) or probability     \
     * targets tp (N, C, S) (exactly one non-NULL), class weights w (C) or NULL. y: (N, S) for    \
     * NONE, else one value. Returns -1, or the flat index of the first index target outside     \
     * [0, C) that is not ignore_index, in which case y is not written. */                         \
    int64_t cnni_ref_class_loss_forward_##SFX(const cnni_class_geom *g, const cnni_class_opts *o, \
                                              const REAL *x, const int64_t *ti, const REAL *tp,    \
                                              const REAL *w, REAL *y);                             \
    /* dx (N, C, S); dt (N, C, S) for probability targets. Targets outside [0, C) count as        \
     * ignored. */                                                                                 \
    void cnni_ref_class_loss_backward_##SFX(const cnni_class_geom *g, const cnni_class_opts *o,   \
                                            const REAL *x, const int64_t *ti, const REAL *tp,      \
                                            const REAL *w, const REAL *dy, REAL *dx, REAL *dt);

CNNI_LOSS_REF_DECLARE(float, f32)
CNNI_LOSS_REF_DECLARE(double, f64)

#endif
