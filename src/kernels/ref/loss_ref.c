/* Reference losses: the formulas of PyTorch 1.13's CPU kernels and
 * autograd formulas, evaluated in double (ACC) in both builds. */
#include "real.h"
#include "loss_ref.h"

#include <math.h>
#include <stddef.h>

static int64_t bcast_numel(const cnni_loss_bcast *b)
{
    int64_t n = 1;
    for (int d = 0; d < b->ndim; d++)
        n *= b->dims[d];
    return n;
}

/* Offset, along `stride`, of the weight element that scales input element i. */
static int64_t bcast_at(const cnni_loss_bcast *b, const int64_t *stride, int64_t i)
{
    int64_t off = 0;
    for (int d = b->ndim - 1; d >= 0 && i > 0; d--) {
        off += (i % b->dims[d]) * stride[d];
        i /= b->dims[d];
    }
    return off;
}

/* The factor that turns dy into d loss / d l of one element: dy itself for
 * NONE (per element), dy[0] for SUM, dy[0] / count for MEAN. */
static ACC red_scale(int reduction, const REAL *dy, int64_t i, ACC count)
{
    if (reduction == CNNI_RED_NONE)
        return dy[i];
    if (reduction == CNNI_RED_SUM)
        return dy[0];
    return (ACC)dy[0] / count;
}

static void red_store(int reduction, ACC sum, ACC count, REAL *y)
{
    if (reduction != CNNI_RED_NONE)
        y[0] = (REAL)(reduction == CNNI_RED_MEAN ? sum / count : sum);
}

/* ---- MSELoss, L1Loss, SmoothL1Loss ------------------------------------- */

static ACC pointwise_value(int kind, double beta, ACC d)
{
    if (kind == CNNI_LOSS_MSE)
        return d * d;
    ACC z = fabs(d);
    if (kind == CNNI_LOSS_L1)
        return z;
    return z < beta ? 0.5 * z * z / beta : z - 0.5 * beta;
}

/* d loss / d x at x - t = d. PyTorch differentiates L1Loss through abs()
 * (sign, 0 at 0 and for NaN) but SmoothL1Loss through its own kernel, whose
 * branches give -1 at d = 0 when beta is 0. */
static ACC pointwise_grad(int kind, double beta, ACC d)
{
    if (kind == CNNI_LOSS_MSE)
        return 2 * d;
    if (kind == CNNI_LOSS_L1)
        return (ACC)((d > 0) - (d < 0));
    if (d <= -beta)
        return -1;
    if (d >= beta)
        return 1;
    return d / beta;
}

static ACC target_at(const REAL *t, const int64_t *ti, int64_t i)
{
    return t ? (ACC)t[i] : (ACC)ti[i];
}

void REFN(cnni_ref_pointwise_loss_forward)(int kind, int reduction, double beta, int64_t n,
                                           const REAL *x, const REAL *t, const int64_t *ti, REAL *y)
{
    ACC sum = 0;
    for (int64_t i = 0; i < n; i++) {
        ACC l = pointwise_value(kind, beta, (ACC)x[i] - target_at(t, ti, i));
        if (reduction == CNNI_RED_NONE)
            y[i] = (REAL)l;
        else
            sum += l;
    }
    red_store(reduction, sum, (ACC)n, y);
}

void REFN(cnni_ref_pointwise_loss_backward)(int kind, int reduction, double beta, int64_t n,
                                            const REAL *x, const REAL *t, const int64_t *ti,
                                            const REAL *dy, REAL *dx, REAL *dt)
{
    for (int64_t i = 0; i < n; i++) {
        ACC g = red_scale(reduction, dy, i, (ACC)n);
        ACC xi = x[i], ti_ = target_at(t, ti, i);
        if (dx)
            dx[i] = (REAL)(pointwise_grad(kind, beta, xi - ti_) * g);
        /* PyTorch's target gradient evaluates the same formula with the
         * arguments swapped, which is not quite its negation at d = 0. */
        if (dt)
            dt[i] = (REAL)(pointwise_grad(kind, beta, ti_ - xi) * g);
    }
}

/* ---- BCELoss ------------------------------------------------------------ */

int64_t REFN(cnni_ref_bce_forward)(int reduction, const cnni_loss_bcast *b, const REAL *x,
                                   const REAL *t, const REAL *w, REAL *y)
{
    int64_t n = bcast_numel(b);
    for (int64_t i = 0; i < n; i++)
        if (!(x[i] >= 0 && x[i] <= 1))
            return i;
    ACC sum = 0;
    for (int64_t i = 0; i < n; i++) {
        ACC xi = x[i], ti = t[i];
        /* PyTorch clamps both logs at -100 so that x = 0 or 1 stays finite. */
        ACC l = (ti - 1) * fmax(log1p(-xi), -100.0) - ti * fmax(log(xi), -100.0);
        if (w)
            l *= w[bcast_at(b, b->wstride, i)];
        if (reduction == CNNI_RED_NONE)
            y[i] = (REAL)l;
        else
            sum += l;
    }
    red_store(reduction, sum, (ACC)n, y);
    return -1;
}

void REFN(cnni_ref_bce_backward)(int reduction, const cnni_loss_bcast *b, const REAL *x,
                                 const REAL *t, const REAL *w, const REAL *dy, REAL *dx, REAL *dt)
{
    int64_t n = bcast_numel(b);
    for (int64_t i = 0; i < n; i++) {
        ACC g = red_scale(reduction, dy, i, (ACC)n);
        if (w)
            g *= w[bcast_at(b, b->wstride, i)];
        ACC xi = x[i], ti = t[i];
        /* The input gradient divides by x (1 - x) kept above 1e-12 (PyTorch's
         * EPSILON); the target gradient is -logit(x), unclamped. */
        if (dx)
            dx[i] = (REAL)(g * (xi - ti) / fmax((1 - xi) * xi, 1e-12));
        if (dt)
            dt[i] = (REAL)(-g * log(xi / (1 - xi)));
    }
}

/* ---- BCEWithLogitsLoss --------------------------------------------------- */

/* log(sigmoid(z)) without overflow. */
static ACC log_sigmoid(ACC z)
{
    return fmin(z, 0.0) - log1p(exp(-fabs(z)));
}

static ACC sigmoid(ACC z)
{
    if (z >= 0)
        return 1 / (1 + exp(-z));
    ACC e = exp(z);
    return e / (1 + e);
}

void REFN(cnni_ref_bce_logits_forward)(int reduction, const cnni_loss_bcast *b, const REAL *x,
                                       const REAL *t, const REAL *w, const REAL *pw, REAL *y)
{
    int64_t n = bcast_numel(b);
    ACC sum = 0;
    for (int64_t i = 0; i < n; i++) {
        ACC xi = x[i], ti = t[i];
        /* softplus(-x) = log(1 + exp(-x)), written as PyTorch does so that
         * neither exponential overflows. */
        ACC m = fmax(-xi, 0.0);
        ACC sp = log(exp(-m) + exp(-xi - m)) + m;
        ACC lw = pw ? ((ACC)pw[bcast_at(b, b->pstride, i)] - 1) * ti + 1 : 1;
        ACC l = (1 - ti) * xi + lw * sp;
        if (w)
            l *= w[bcast_at(b, b->wstride, i)];
        if (reduction == CNNI_RED_NONE)
            y[i] = (REAL)l;
        else
            sum += l;
    }
    red_store(reduction, sum, (ACC)n, y);
}

void REFN(cnni_ref_bce_logits_backward)(int reduction, const cnni_loss_bcast *b, const REAL *x,
                                        const REAL *t, const REAL *w, const REAL *pw,
                                        const REAL *dy, REAL *dx, REAL *dt)
{
    int64_t n = bcast_numel(b);
    for (int64_t i = 0; i < n; i++) {
        ACC g = red_scale(reduction, dy, i, (ACC)n);
        if (w)
            g *= w[bcast_at(b, b->wstride, i)];
        ACC xi = x[i], ti = t[i];
        ACC p = pw ? (ACC)pw[bcast_at(b, b->pstride, i)] : 1;
        /* as PyTorch: sigmoid(x) - t without pos_weight (a target of +-inf
         * then gives -+inf, where the weighted form's inf - inf is NaN) */
        if (dx)
            dx[i] = (REAL)(g * (pw ? (p * ti + 1 - ti) * sigmoid(xi) - p * ti : sigmoid(xi) - ti));
        if (dt)
            dt[i] = (REAL)(g * (pw ? log_sigmoid(-xi) - p * log_sigmoid(xi) : -xi));
    }
}

/* ---- CrossEntropyLoss, NLLLoss ------------------------------------------- */

/* The log-sum-exp of one position's C classes in two parts, the largest
 * input m and log sum_c exp(x_c - m) (shifted so that nothing overflows):
 * log-softmax of class c is (x_c - m) - log sum. Adding m + log(sum) first
 * would lose the log where m dwarfs it (logits of 1e20: every tied class
 * would get log-probability 0 instead of -log C). */
typedef struct {
    ACC m, log_sum; /* both 0 where the input is taken as log-probabilities already */
} lse_parts;

static lse_parts log_sum_exp(const REAL *x, int64_t C, int64_t S)
{
    ACC m = -INFINITY;
    for (int64_t c = 0; c < C; c++)
        if (x[c * S] > m)
            m = x[c * S];
    ACC s = 0;
    for (int64_t c = 0; c < C; c++)
        s += exp((ACC)x[c * S] - m);
    return (lse_parts){m, log(s)};
}

static inline ACC log_prob(REAL x, lse_parts l) { return ((ACC)x - l.m) - l.log_sum; }

static int is_ignored(const cnni_class_geom *g, const cnni_class_opts *o, int64_t t)
{
    return t == o->ignore_index || t < 0 || t >= g->C;
}

/* The denominator of the 'mean' reduction: the summed weights of the
 * non-ignored index targets, or the number of positions for probability
 * targets (NaN when the input is empty, as PyTorch gives). */
static ACC class_count(const cnni_class_geom *g, const cnni_class_opts *o, const int64_t *ti,
                       const REAL *w)
{
    int64_t P = g->N * g->S;
    if (!ti)
        return g->C == 0 ? 0.0 : (ACC)P;
    ACC d = 0;
    for (int64_t p = 0; p < P; p++)
        if (!is_ignored(g, o, ti[p]))
            d += w ? (ACC)w[ti[p]] : 1;
    return d;
}

int64_t REFN(cnni_ref_class_loss_forward)(const cnni_class_geom *g, const cnni_class_opts *o,
                                          const REAL *x, const int64_t *ti, const REAL *tp,
                                          const REAL *w, REAL *y)
{
    const int64_t C = g->C, S = g->S, P = g->N * g->S;
    if (ti)
        for (int64_t p = 0; p < P; p++)
            if (ti[p] != o->ignore_index && (ti[p] < 0 || ti[p] >= C))
                return p;
    const ACC eps = o->label_smoothing;
    if (C == 0) {
        /* Without classes every loss is an empty sum (index targets were all
         * ignore_index, as checked above), except that PyTorch scales the
         * smoothing term by label_smoothing / C = inf, making it 0 * inf. */
        ACC l = ti && eps > 0 ? (ACC)NAN : 0;
        if (o->reduction == CNNI_RED_NONE)
            for (int64_t p = 0; p < P; p++)
                y[p] = (REAL)l;
        else
            red_store(o->reduction, l, class_count(g, o, ti, w), y);
        return -1;
    }
    ACC sum = 0;
    for (int64_t p = 0; p < P; p++) {
        const int64_t n = p / S, s = p % S;
        ACC l = 0;
        const REAL *xr = x + n * C * S + s;
        const lse_parts lse = o->log_softmax ? log_sum_exp(xr, C, S) : (lse_parts){0, 0};
        if (ti) {
            int64_t t = ti[p];
            if (t != o->ignore_index) {
                l = -(1 - eps) * (w ? (ACC)w[t] : 1) * log_prob(xr[t * S], lse);
                /* Only with smoothing does PyTorch touch the other classes
                 * (a -inf log-probability there must not turn into NaN). */
                if (eps > 0) {
                    ACC all = 0;
                    for (int64_t c = 0; c < C; c++)
                        all += (w ? (ACC)w[c] : 1) * log_prob(xr[c * S], lse);
                    l -= eps / (ACC)C * all;
                }
            }
        } else {
            const REAL *pr = tp + n * C * S + s;
            for (int64_t c = 0; c < C; c++) {
                ACC q = eps > 0 ? (ACC)pr[c * S] * (1 - eps) + eps / (ACC)C : (ACC)pr[c * S];
                if (w)
                    q *= w[c];
                l -= q * log_prob(xr[c * S], lse);
            }
        }
        if (o->reduction == CNNI_RED_NONE)
            y[p] = (REAL)l;
        else
            sum += l;
    }
    if (o->reduction != CNNI_RED_NONE)
        red_store(o->reduction, sum, class_count(g, o, ti, w), y);
    return -1;
}

/* With q the weights the loss puts on the log-probabilities of one position
 * (loss = -sum_c q[c] logp[c]), d loss / d x[c] is softmax[c] * sum(q) - q[c]
 * for logits and -q[c] for log-probabilities. */
void REFN(cnni_ref_class_loss_backward)(const cnni_class_geom *g, const cnni_class_opts *o,
                                        const REAL *x, const int64_t *ti, const REAL *tp,
                                        const REAL *w, const REAL *dy, REAL *dx, REAL *dt)
{
    const int64_t C = g->C, S = g->S, P = g->N * g->S;
    if (C == 0)
        return; /* dx and dt are empty */
    const ACC eps = o->label_smoothing;
    const ACC count = o->reduction == CNNI_RED_MEAN ? class_count(g, o, ti, w) : 1;
    ACC wsum = 0;
    for (int64_t c = 0; c < C; c++)
        wsum += w ? (ACC)w[c] : 1;
    for (int64_t p = 0; p < P; p++) {
        const int64_t n = p / S, s = p % S;
        const REAL *xr = x + n * C * S + s;
        REAL *dxr = dx ? dx + n * C * S + s : NULL;
        REAL *dtr = dt ? dt + n * C * S + s : NULL;
        if (ti && is_ignored(g, o, ti[p])) {
            /* PyTorch's masks give ignored positions exact zeros, even where
             * the scale is infinite (every target ignored under 'mean'). */
            for (int64_t c = 0; dxr && c < C; c++)
                dxr[c * S] = 0;
            continue;
        }
        ACC gs = red_scale(o->reduction, dy, p, count);
        const lse_parts lse = o->log_softmax ? log_sum_exp(xr, C, S) : (lse_parts){0, 0};
        if (ti) {
            int64_t t = ti[p];
            ACC wt = (1 - eps) * (w ? (ACC)w[t] : 1);
            if (!o->log_softmax) {
                for (int64_t c = 0; dxr && c < C; c++)
                    dxr[c * S] = 0;
                if (dxr)
                    dxr[t * S] = (REAL)(-gs * wt);
                continue;
            }
            ACC qsum = wt + (eps > 0 ? eps / (ACC)C * wsum : 0);
            for (int64_t c = 0; dxr && c < C; c++) {
                ACC q = (c == t ? wt : 0) + (eps > 0 ? eps / (ACC)C * (w ? (ACC)w[c] : 1) : 0);
                ACC sm = exp(log_prob(xr[c * S], lse));
                dxr[c * S] = (REAL)(gs * (sm * qsum - q));
            }
        } else {
            const REAL *pr = tp + n * C * S + s;
            ACC qsum = 0;
            for (int64_t c = 0; c < C; c++) {
                ACC q = eps > 0 ? (ACC)pr[c * S] * (1 - eps) + eps / (ACC)C : (ACC)pr[c * S];
                qsum += w ? q * (ACC)w[c] : q;
            }
            for (int64_t c = 0; c < C; c++) {
                ACC wc = w ? (ACC)w[c] : 1;
                ACC q = (eps > 0 ? (ACC)pr[c * S] * (1 - eps) + eps / (ACC)C : (ACC)pr[c * S]) * wc;
                ACC lp = log_prob(xr[c * S], lse);
                if (dxr)
                    dxr[c * S] = (REAL)(o->log_softmax ? gs * (exp(lp) * qsum - q) : -gs * q);
                if (dtr)
                    dtr[c * S] = (REAL)(-gs * wc * (1 - eps) * lp);
            }
        }
    }
}
