/* Reference kernels of the activation and dropout family: elementwise
 * activations, PReLU, softmax / log-softmax along one axis, and scaling by
 * per-block factors (the random layers' masks and slopes). Written once over
 * REAL and compiled twice (*_f32 for the layers, *_f64 for the gradient
 * checks); they never allocate. Values are computed in double in both builds
 * and rounded once, so the float build is as close to the exact result as its
 * type allows. */
#ifndef CNN_ACTIVATION_REF_H
#define CNN_ACTIVATION_REF_H

#include <stdint.h>

typedef enum cnni_act_kind {
    CNNI_ACT_SIGMOID,
    CNNI_ACT_TANH,
    CNNI_ACT_RELU,
    CNNI_ACT_LEAKY_RELU,  /* a: negative slope (also RReLU in eval mode) */
    CNNI_ACT_ELU,         /* a: alpha */
    CNNI_ACT_GELU,        /* exact erf form */
    CNNI_ACT_GELU_TANH,   /* approximate='tanh' */
    CNNI_ACT_SILU,
    CNNI_ACT_HARDTANH,    /* a: min_val, b: max_val (ReLU6 is 0, 6) */
    CNNI_ACT_HARDSIGMOID,
    CNNI_ACT_HARDSWISH,
    CNNI_ACT_SOFTPLUS     /* a: beta, b: threshold */
} cnni_act_kind;

typedef struct cnni_act {
    cnni_act_kind kind;
    double a, b;
} cnni_act;

/* A tensor viewed as (outer, C, inner): C is the channel axis of PReLU or
 * the reduced axis of softmax. */
typedef struct cnni_axis_geom {
    int64_t outer, C, inner;
} cnni_axis_geom;

#define CNNI_ACT_REF_DECLARE(REAL, SFX)                                                            \
    /* y = f(x) elementwise over n values */                                                      \
    void cnni_ref_act_forward_##SFX(const cnni_act *a, int64_t n, const REAL *x, REAL *y);        \
    /* dx = f'(x) * dy, overwritten; y is f(x) (sigmoid and tanh use it, as PyTorch does) */      \
    void cnni_ref_act_backward_##SFX(const cnni_act *a, int64_t n, const REAL *x, const REAL *y,  \
                                     const REAL *dy, REAL *dx);                                   \
    /* PReLU: x (outer, C, inner), w (C) -> y */                                                  \
    void cnni_ref_prelu_forward_##SFX(const cnni_axis_geom *g, const REAL *x, const REAL *w,      \
                                      REAL *y);                                                   \
    /* dx overwritten (skipped when NULL); dw (C) += sum of x * dy where x <= 0 */                \
    void cnni_ref_prelu_backward_##SFX(const cnni_axis_geom *g, const REAL *x, const REAL *w,     \
                                       const REAL *dy, REAL *dx, REAL *dw);                       \
    /* softmax (log_softmax if take_log) of x (outer, C, inner) along C */                        \
    void cnni_ref_softmax_forward_##SFX(const cnni_axis_geom *g, int take_log, const REAL *x,     \
                                        REAL *y);                                                 \
    /* from the forward's output y and dy: dx overwritten */                                      \
    void cnni_ref_softmax_backward_##SFX(const cnni_axis_geom *g, int take_log, const REAL *y,    \
                                         const REAL *dy, REAL *dx);                               \
    /* y[b * inner + i] = x[b * inner + i] * f[b] for b < blocks; the gradient is the same map    \
     * applied to dy. y may alias x, and f too when inner is 1. */                                \
    void cnni_ref_block_scale_##SFX(int64_t blocks, int64_t inner, const REAL *x, const REAL *f,  \
                                    REAL *y);

CNNI_ACT_REF_DECLARE(float, f32)
CNNI_ACT_REF_DECLARE(double, f64)

#endif
