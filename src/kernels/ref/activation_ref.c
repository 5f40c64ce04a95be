/* Reference activations, PReLU, softmax and block scaling. Forms and kinks
 * follow PyTorch's CPU kernels (e.g. ReLU's gradient at 0 is 0, Hardtanh's
 * is 0 on both bounds, Hardswish's is x/3 + 1/2 on [-3, 3]); exponentials
 * are arranged never to overflow where PyTorch's value is finite. */
#include "real.h"
#include "activation_ref.h"

#include <math.h>

#define SQRT1_2 0.70710678118654752440      /* 1/sqrt(2) */
#define SQRT_2_PI 0.79788456080286535588    /* sqrt(2/pi) */
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */
#define GELU_KAPPA 0.044715

static inline double sigmoid(double v)
{
    if (v >= 0)
        return 1.0 / (1.0 + exp(-v));
    double e = exp(v);
    return e / (1.0 + e);
}

/* log(1 + exp(z)) without overflow for large z. */
static inline double log1p_exp(double z) { return fmax(z, 0.0) + log1p(exp(-fabs(z))); }

static inline double act_value(const cnni_act *a, double v)
{
    switch (a->kind) {
    case CNNI_ACT_SIGMOID: return sigmoid(v);
    case CNNI_ACT_TANH: return tanh(v);
    case CNNI_ACT_RELU: return v <= 0 ? 0.0 : v; /* NaN passes through, as clamp_min */
    case CNNI_ACT_LEAKY_RELU: return v > 0 ? v : v * a->a;
    case CNNI_ACT_ELU: return v > 0 ? v : a->a * expm1(v);
    case CNNI_ACT_GELU: return 0.5 * v * (1.0 + erf(v * SQRT1_2));
    case CNNI_ACT_GELU_TANH:
        return 0.5 * v * (1.0 + tanh(SQRT_2_PI * (v + GELU_KAPPA * v * v * v)));
    case CNNI_ACT_SILU: return v * sigmoid(v);
    case CNNI_ACT_HARDTANH: return v < a->a ? a->a : v > a->b ? a->b : v;
    case CNNI_ACT_HARDSIGMOID: return fmin(fmax(v + 3.0, 0.0), 6.0) / 6.0;
    case CNNI_ACT_HARDSWISH: return v * fmin(fmax(v + 3.0, 0.0), 6.0) / 6.0;
    case CNNI_ACT_SOFTPLUS: {
        double z = v * a->a;
        return z > a->b ? v : log1p_exp(z) / a->a;
    }
    }
    return v;
}

/* f'(v) for input v and output out. */
static inline double act_slope(const cnni_act *a, double v, double out)
{
    switch (a->kind) {
    case CNNI_ACT_SIGMOID: return out * (1.0 - out);
    case CNNI_ACT_TANH: return 1.0 - out * out;
    case CNNI_ACT_RELU: return v <= 0 ? 0.0 : 1.0; /* NaN: 1, as threshold_backward passes it */
    case CNNI_ACT_LEAKY_RELU: return v > 0 ? 1.0 : a->a;
    case CNNI_ACT_ELU: return v <= 0 ? a->a * exp(v) : 1.0;
    case CNNI_ACT_GELU:
        return 0.5 * (1.0 + erf(v * SQRT1_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
    case CNNI_ACT_GELU_TANH: {
        double t = tanh(SQRT_2_PI * (v + GELU_KAPPA * v * v * v));
        return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_PI * (1.0 + 3.0 * GELU_KAPPA * v * v);
    }
    case CNNI_ACT_SILU: {
        double s = sigmoid(v);
        return s * (1.0 + v * (1.0 - s));
    }
    case CNNI_ACT_HARDTANH: return (v <= a->a || v >= a->b) ? 0.0 : 1.0;
    case CNNI_ACT_HARDSIGMOID: return (v > -3.0 && v < 3.0) ? 1.0 / 6.0 : 0.0;
    case CNNI_ACT_HARDSWISH: return v < -3.0 ? 0.0 : v <= 3.0 ? v / 3.0 + 0.5 : 1.0;
    case CNNI_ACT_SOFTPLUS: {
        double z = v * a->a;
        return z > a->b ? 1.0 : sigmoid(z);
    }
    }
    return 1.0;
}

void REFN(cnni_ref_act_forward)(const cnni_act *a, int64_t n, const REAL *x, REAL *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (REAL)act_value(a, (double)x[i]);
}

void REFN(cnni_ref_act_backward)(const cnni_act *a, int64_t n, const REAL *x, const REAL *y,
                                 const REAL *dy, REAL *dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = (REAL)((double)dy[i] * act_slope(a, (double)x[i], (double)y[i]));
}

void REFN(cnni_ref_prelu_forward)(const cnni_axis_geom *g, const REAL *x, const REAL *w, REAL *y)
{
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t c = 0; c < g->C; c++) {
            int64_t base = (o * g->C + c) * g->inner;
            double wc = (double)w[c];
            for (int64_t i = 0; i < g->inner; i++) {
                double v = (double)x[base + i];
                y[base + i] = (REAL)(v > 0 ? v : v * wc);
            }
        }
}

void REFN(cnni_ref_prelu_backward)(const cnni_axis_geom *g, const REAL *x, const REAL *w,
                                   const REAL *dy, REAL *dx, REAL *dw)
{
    for (int64_t c = 0; c < g->C; c++) {
        ACC s = 0;
        double wc = (double)w[c];
        for (int64_t o = 0; o < g->outer; o++) {
            int64_t base = (o * g->C + c) * g->inner;
            for (int64_t i = 0; i < g->inner; i++) {
                double v = (double)x[base + i], d = (double)dy[base + i];
                if (dx)
                    dx[base + i] = (REAL)(v > 0 ? d : d * wc);
                if (!(v > 0))
                    s += v * d;
            }
        }
        dw[c] = (REAL)((ACC)dw[c] + s);
    }
}

void REFN(cnni_ref_softmax_forward)(const cnni_axis_geom *g, int take_log, const REAL *x, REAL *y)
{
    int64_t D = g->C, in = g->inner;
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t i = 0; i < in; i++) {
            const REAL *xr = x + o * D * in + i;
            REAL *yr = y + o * D * in + i;
            if (D == 0)
                continue;
            /* Subtracting the maximum keeps every exponential in (0, 1]. */
            double m = (double)xr[0];
            for (int64_t d = 1; d < D; d++)
                if ((double)xr[d * in] > m || isnan((double)xr[d * in]))
                    m = (double)xr[d * in];
            ACC s = 0;
            for (int64_t d = 0; d < D; d++)
                s += exp((double)xr[d * in] - m);
            if (take_log) {
                double ls = log(s);
                for (int64_t d = 0; d < D; d++)
                    yr[d * in] = (REAL)((double)xr[d * in] - m - ls);
            } else {
                for (int64_t d = 0; d < D; d++)
                    yr[d * in] = (REAL)(exp((double)xr[d * in] - m) / s);
            }
        }
}

void REFN(cnni_ref_softmax_backward)(const cnni_axis_geom *g, int take_log, const REAL *y,
                                     const REAL *dy, REAL *dx)
{
    int64_t D = g->C, in = g->inner;
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t i = 0; i < in; i++) {
            int64_t base = o * D * in + i;
            ACC s = 0;
            if (take_log) {
                for (int64_t d = 0; d < D; d++)
                    s += (double)dy[base + d * in];
                for (int64_t d = 0; d < D; d++)
                    dx[base + d * in] = (REAL)((double)dy[base + d * in] -
                                               exp((double)y[base + d * in]) * s);
            } else {
                for (int64_t d = 0; d < D; d++)
                    s += (double)dy[base + d * in] * (double)y[base + d * in];
                for (int64_t d = 0; d < D; d++)
                    dx[base + d * in] =
                        (REAL)((double)y[base + d * in] * ((double)dy[base + d * in] - s));
            }
        }
}

void REFN(cnni_ref_block_scale)(int64_t blocks, int64_t inner, const REAL *x, const REAL *f, REAL *y)
{
    for (int64_t b = 0; b < blocks; b++) {
        REAL fb = f[b];
        for (int64_t i = 0; i < inner; i++)
            y[b * inner + i] = x[b * inner + i] * fb;
    }
}
