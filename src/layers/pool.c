/* The pooling family: MaxPool1d/2d/3d, AvgPool1d/2d/3d and their adaptive
 * forms, with every argument PyTorch accepts and every check it makes.
 *
 * PyTorch's modules check nothing when constructed; the functional calls
 * check at forward time. Checks that do not depend on the input are made
 * here when the module is configured (PyTorch rejects them for every
 * input), the others when the graph is planned. Inputs may be batched
 * (N, C, spatial) or unbatched (C, spatial), as in PyTorch; the kernels see
 * N*C planes either way. */
#include "layer.h"
#include "../kernels/pool_fast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { P_MAX, P_AVG, P_ADAPTIVE_MAX, P_ADAPTIVE_AVG } pool_kind;

typedef struct pool_opts {
    pool_kind kind;
    int nsp;                 /* spatial dims: 1, 2, 3 */
    int64_t k[3], s[3], p[3], d[3];
    int ceil_mode, count_include_pad, return_indices;
    int64_t divisor;         /* divisor_override, 0 when None */
    int64_t osz[3];          /* adaptive output size; -1 for None (the input's size) */
    int osz_int;             /* output_size was one int (not a tuple) */
} pool_opts;

enum { M_K, M_S, M_P, M_D, M_RI, M_CEIL };
static const char *const max_args[] = {"kernel_size", "stride", "padding", "dilation",
                                       "return_indices", "ceil_mode", NULL};
enum { A_K, A_S, A_P, A_CEIL, A_CIP, A_DIV };
static const char *const avg1_args[] = {"kernel_size", "stride", "padding", "ceil_mode",
                                        "count_include_pad", NULL};
static const char *const avg_args[] = {"kernel_size", "stride", "padding", "ceil_mode",
                                       "count_include_pad", "divisor_override", NULL};
enum { AD_SIZE, AD_RI };
static const char *const amax_args[] = {"output_size", "return_indices", NULL};
static const char *const aavg_args[] = {"output_size", NULL};
static const char *const one_input[] = {"input", NULL};

static const char *const n_ints[] = {"", "one int", "two ints", "three ints"};

/* ---- arguments ---- */

/* "None", "a float (2.0)", "a tuple (2, 2)": what a value is, for messages. */
static void describe(const cnni_value *v, char *buf, size_t n)
{
    char val[112];
    if (v->kind == CNNI_V_NONE) {
        snprintf(buf, n, "None");
        return;
    }
    if (v->kind == CNNI_V_FLOAT) {
        /* As Python prints it: the shortest form that reads back, with ".0". */
        snprintf(val, sizeof val, "%.15g", v->f);
        if (strtod(val, NULL) != v->f)
            snprintf(val, sizeof val, "%.17g", v->f);
        if (!strpbrk(val, ".eEni"))
            strcat(val, ".0");
    } else {
        cnni_value_describe(v, val, sizeof val);
    }
    snprintf(buf, n, "%s (%s)", cnni_vkind_name(v->kind), val);
}

static cnn_status type_fail(const cnni_args *a, int k, const char *expected)
{
    char got[160];
    describe(a->slot[k], got, sizeof got);
    return cnni_arg_fail(a, k, "argument '%s' must be %s, got %s", a->op->args[k], expected, got);
}

static cnn_status item_fail(const cnni_args *a, int k, int i, const char *expected)
{
    char got[160];
    describe(a->slot[k]->items[i], got, sizeof got);
    return cnni_arg_fail(a, k, "argument '%s' must be %s, but item %d is %s", a->op->args[k],
                         expected, i, got);
}

/* An int or a tuple/list of ints into vals (up to 8), its length into *n.
 * PyTorch's parser reads True and False as ints inside a tuple, except
 * alone or first (it judges a sequence by its first item). */
static cnn_status int_items(const cnni_args *a, int k, const char *expected, int64_t *vals, int *n)
{
    const cnni_value *v = a->slot[k];
    if (v->kind == CNNI_V_INT) {
        vals[0] = v->i;
        *n = 1;
        return CNN_OK;
    }
    if ((v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST) || v->n > 8)
        return type_fail(a, k, expected);
    for (int i = 0; i < v->n; i++) {
        if (v->items[i]->kind != CNNI_V_INT && (v->items[i]->kind != CNNI_V_BOOL || i == 0))
            return item_fail(a, k, i, expected);
        vals[i] = v->items[i]->i;
    }
    *n = v->n;
    return CNN_OK;
}

/* kernel_size, stride, padding or dilation of max/avg pooling: an int, or a
 * tuple of 1 or nsp ints (1-d: exactly one); stride may also be None or
 * empty, meaning kernel_size. *given is 0 when the default applies. */
static cnn_status window_arg(const cnni_args *a, int k, int nsp, int is_stride, int64_t def,
                             int64_t *out, int *given)
{
    const cnni_value *v = a->slot[k];
    *given = 0;
    for (int i = 0; i < nsp; i++)
        out[i] = def;
    if (!v || (is_stride && v->kind == CNNI_V_NONE))
        return CNN_OK;
    char expected[96];
    snprintf(expected, sizeof expected, "%sa single int%s%s", is_stride ? "omitted, " : "",
             nsp > 1 ? " or a tuple of " : "", nsp > 1 ? n_ints[nsp] : "");
    int64_t vals[8];
    int n = 0;
    cnn_status st = int_items(a, k, expected, vals, &n);
    if (st)
        return st;
    if (n == 0 && is_stride)
        return CNN_OK;
    if (n != 1 && n != nsp) {
        if (nsp == 1)
            return cnni_arg_fail(a, k, "argument '%s' should contain one int (got %d)",
                                 a->op->args[k], n);
        return cnni_arg_fail(a, k, "%s must be %s, got %d values", a->op->args[k], expected, n);
    }
    for (int i = 0; i < nsp; i++)
        out[i] = vals[n == 1 ? 0 : i];
    *given = 1;
    return CNN_OK;
}

/* ceil_mode and count_include_pad reach PyTorch's C++ parser, which takes
 * only a real bool. */
static cnn_status strict_bool(const cnni_args *a, int k, int def, int *out)
{
    const cnni_value *v = a->slot[k];
    if (!v) {
        *out = def;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_BOOL)
        return type_fail(a, k, "True or False");
    *out = v->i != 0;
    return CNN_OK;
}

/* return_indices is only tested with Python's "if", so any value works
 * by its truth value. */
static int truthy(const cnni_value *v)
{
    switch (v->kind) {
    case CNNI_V_INT:
    case CNNI_V_BOOL: return v->i != 0;
    case CNNI_V_FLOAT: return v->f != 0;
    case CNNI_V_NONE: return 0;
    case CNNI_V_STR: return v->s[0] != 0;
    case CNNI_V_TUPLE:
    case CNNI_V_LIST: return v->n > 0;
    case CNNI_V_NAME:
    case CNNI_V_CALL: return 1;
    }
    return 1;
}

/* PyTorch narrows kernel_size, stride, padding and dilation to int32
 * ("integer out of range"), except on the path MaxPool1d takes without
 * indices or gradient, which keeps int64: there the check waits for the
 * plan, and only sizes beyond 2^40 (where PyTorch's own arithmetic would
 * overflow) are refused. */
static int64_t window_limit(const pool_opts *o, int planned_backward)
{
    if (o->kind == P_MAX && o->nsp == 1 && !o->return_indices && !planned_backward)
        return INT64_C(1) << 40;
    return INT32_MAX;
}

static cnn_status window_values(const cnni_args *a, pool_opts *o, int kk, int ks, int kp, int kd)
{
    const int karg[4] = {kk, ks, kp, kd};
    const int64_t *vals[4] = {o->k, o->s, o->p, o->d};
    const int64_t lim = window_limit(o, 0);
    for (int j = 0; j < 4; j++)
        for (int i = 0; karg[j] >= 0 && i < o->nsp; i++)
            if (vals[j][i] > lim || vals[j][i] < -lim)
                return cnni_arg_fail(a, karg[j], "%s %lld is out of range (PyTorch takes %s)",
                                     a->op->args[karg[j]], (long long)vals[j][i],
                                     lim == INT32_MAX ? "32-bit integers" : "sizes below 2^40");
    /* In PyTorch's order, so the message names the same problem. */
    for (int i = 0; i < o->nsp; i++)
        if (o->s[i] == 0)
            return cnni_arg_fail(a, ks, "stride should not be zero%s",
                                 a->slot[ks] ? "" : " (it defaults to kernel_size, which is 0)");
    for (int i = 0; i < o->nsp; i++)
        if (o->k[i] <= 0)
            return cnni_arg_fail(a, kk, "kernel size should be greater than zero, but got %lld",
                                 (long long)o->k[i]);
    for (int i = 0; i < o->nsp; i++)
        if (o->s[i] < 0)
            return cnni_arg_fail(a, ks, "stride should be greater than zero, but got %lld",
                                 (long long)o->s[i]);
    for (int i = 0; i < o->nsp; i++)
        if (kd >= 0 && o->d[i] <= 0)
            return cnni_arg_fail(a, kd, "dilation should be greater than zero, but got %lld",
                                 (long long)o->d[i]);
    for (int i = 0; i < o->nsp; i++)
        if (o->p[i] < 0)
            return cnni_arg_fail(a, kp, "pad must be non-negative, but got pad: %lld",
                                 (long long)o->p[i]);
    for (int i = 0; i < o->nsp; i++)
        if (o->p[i] > o->k[i] / 2)
            return cnni_arg_fail(a, kp,
                                 "pad should be at most half of kernel size, but got pad=%lld and "
                                 "kernel_size=%lld",
                                 (long long)o->p[i], (long long)o->k[i]);
    return CNN_OK;
}

static cnn_status max_configure(cnni_node *n, const cnni_args *a, int nsp)
{
    pool_opts *o = n->opts;
    o->kind = P_MAX;
    o->nsp = nsp;
    int given;
    cnn_status st;
    if ((st = window_arg(a, M_K, nsp, 0, 0, o->k, &given)))
        return st;
    if ((st = window_arg(a, M_S, nsp, 1, 0, o->s, &given)))
        return st;
    if (!given)
        memcpy(o->s, o->k, sizeof o->s);
    if ((st = window_arg(a, M_P, nsp, 0, 0, o->p, &given)) ||
        (st = window_arg(a, M_D, nsp, 0, 1, o->d, &given)) ||
        (st = strict_bool(a, M_CEIL, 0, &o->ceil_mode)))
        return st;
    o->return_indices = a->slot[M_RI] ? truthy(a->slot[M_RI]) : 0;
    if ((st = window_values(a, o, M_K, M_S, M_P, M_D)))
        return st;
    n->n_out = o->return_indices ? 2 : 1;
    return CNN_OK;
}

static cnn_status avg_configure(cnni_node *n, const cnni_args *a, int nsp)
{
    pool_opts *o = n->opts;
    o->kind = P_AVG;
    o->nsp = nsp;
    int given;
    cnn_status st;
    if ((st = window_arg(a, A_K, nsp, 0, 0, o->k, &given)))
        return st;
    if ((st = window_arg(a, A_S, nsp, 1, 0, o->s, &given)))
        return st;
    if (!given)
        memcpy(o->s, o->k, sizeof o->s);
    if ((st = window_arg(a, A_P, nsp, 0, 0, o->p, &given)) ||
        (st = strict_bool(a, A_CEIL, 0, &o->ceil_mode)) ||
        (st = strict_bool(a, A_CIP, 1, &o->count_include_pad)))
        return st;
    for (int i = 0; i < 3; i++)
        o->d[i] = 1;
    if (nsp > 1 && a->slot[A_DIV] && a->slot[A_DIV]->kind != CNNI_V_NONE) {
        if (a->slot[A_DIV]->kind != CNNI_V_INT)
            return type_fail(a, A_DIV, "None or an int");
        o->divisor = a->slot[A_DIV]->i;
        if (o->divisor == 0)
            return cnni_arg_fail(a, A_DIV, "divisor must be not zero");
    }
    if ((st = window_values(a, o, A_K, A_S, A_P, -1)))
        return st;
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status adaptive_configure(cnni_node *n, const cnni_args *a, int nsp, pool_kind kind)
{
    pool_opts *o = n->opts;
    o->kind = kind;
    o->nsp = nsp;
    const cnni_value *v = a->slot[AD_SIZE];
    char expected[96];
    if (nsp == 1)
        snprintf(expected, sizeof expected, "an int or a tuple of one int");
    else
        snprintf(expected, sizeof expected, "an int or a tuple of %s (each an int or None)",
                 n_ints[nsp]);
    int64_t vals[3];
    int none[3] = {0, 0, 0};
    if (v->kind == CNNI_V_INT) {
        for (int i = 0; i < nsp; i++)
            vals[i] = v->i;
        o->osz_int = 1;
    } else if (v->kind == CNNI_V_TUPLE || v->kind == CNNI_V_LIST) {
        /* None becomes the input's size before PyTorch's parser sees the
         * sizes, so only a bool first is refused. */
        for (int i = 0; i < v->n; i++) {
            cnni_vkind ik = v->items[i]->kind;
            if (ik != CNNI_V_INT && (ik != CNNI_V_BOOL || i == 0) &&
                !(ik == CNNI_V_NONE && nsp > 1))
                return item_fail(a, AD_SIZE, i, expected);
        }
        if (v->n != nsp) {
            if (nsp == 1)
                return cnni_arg_fail(a, AD_SIZE, "argument 'output_size' should contain one int "
                                                 "(got %d)",
                                     v->n);
            return cnni_arg_fail(a, AD_SIZE, "output_size must have %d values, got %d", nsp, v->n);
        }
        for (int i = 0; i < nsp; i++) {
            none[i] = v->items[i]->kind == CNNI_V_NONE;
            vals[i] = none[i] ? 0 : v->items[i]->i;
        }
    } else {
        return type_fail(a, AD_SIZE, expected);
    }
    for (int i = 0; i < nsp; i++) {
        if (vals[i] < 0)
            return cnni_arg_fail(a, AD_SIZE,
                                 "elements of output_size must be greater than or equal to 0, got "
                                 "%lld",
                                 (long long)vals[i]);
        o->osz[i] = none[i] ? -1 : vals[i];
    }
    if (kind == P_ADAPTIVE_MAX && a->slot[AD_RI])
        o->return_indices = truthy(a->slot[AD_RI]);
    n->n_out = o->return_indices ? 2 : 1;
    return CNN_OK;
}

#define CONFIGURE(name, base, n) \
    static cnn_status name##n(cnni_node *node, const cnni_args *a) { return base(node, a, n); }
CONFIGURE(max_configure_, max_configure, 1)
CONFIGURE(max_configure_, max_configure, 2)
CONFIGURE(max_configure_, max_configure, 3)
CONFIGURE(avg_configure_, avg_configure, 1)
CONFIGURE(avg_configure_, avg_configure, 2)
CONFIGURE(avg_configure_, avg_configure, 3)
#define CONFIGURE_ADAPTIVE(name, n, kind) \
    static cnn_status name##n(cnni_node *node, const cnni_args *a) { return adaptive_configure(node, a, n, kind); }
CONFIGURE_ADAPTIVE(amax_configure_, 1, P_ADAPTIVE_MAX)
CONFIGURE_ADAPTIVE(amax_configure_, 2, P_ADAPTIVE_MAX)
CONFIGURE_ADAPTIVE(amax_configure_, 3, P_ADAPTIVE_MAX)
CONFIGURE_ADAPTIVE(aavg_configure_, 1, P_ADAPTIVE_AVG)
CONFIGURE_ADAPTIVE(aavg_configure_, 2, P_ADAPTIVE_AVG)
CONFIGURE_ADAPTIVE(aavg_configure_, 3, P_ADAPTIVE_AVG)

/* ---- shapes ---- */

static const char *dim_names(int nsp)
{
    return nsp == 1 ? "(C, L) or (N, C, L)" : nsp == 2 ? "(C, H, W) or (N, C, H, W)"
                                                       : "(C, D, H, W) or (N, C, D, H, W)";
}

/* PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil
 * mode the last window must start inside the input or the left padding. */
static int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil_mode)
{
    int64_t span;
    if (!cnni_mul_ok(d, k - 1, &span) || span > (INT64_C(1) << 62))
        return -1; /* a dilated window far larger than any input */
    int64_t num = in + 2 * p - span - 1 + (ceil_mode ? s - 1 : 0);
    int64_t q = num / s;
    if (num % s != 0 && num < 0)
        q--; /* round toward negative infinity */
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

/* Adaptive average pooling to size 1 everywhere is a mean over the spatial
 * dims in PyTorch, which skips the usual input checks: any number of
 * leading dims (2 or 3 dims in all for 1d), and empty dims (a mean of
 * nothing is NaN). */
static int global_mean(const pool_opts *o, const cnn_shape *x)
{
    if (o->kind != P_ADAPTIVE_AVG || x->ndim < o->nsp)
        return 0;
    if (o->nsp == 1 && (x->ndim < 2 || x->ndim > 3))
        return 0;
    for (int i = 0; i < o->nsp; i++) {
        int64_t m = o->osz[i] < 0 ? x->dims[x->ndim - o->nsp + i] : o->osz[i];
        if (m != 1)
            return 0;
    }
    return 1;
}

/* Which dims must not be empty differs by module in PyTorch: never the
 * batch; for the adaptive ones not dim 0 even of an unbatched input (they
 * take it as the batch); for adaptive average pooling 1d/2d not the
 * channels of a batched input either, unless a gradient is wanted. */
static cnn_status check_empty(const pool_opts *o, const cnn_shape *x, int backward, cnn_err *e)
{
    char sb[128];
    int adaptive = o->kind == P_ADAPTIVE_AVG || o->kind == P_ADAPTIVE_MAX;
    int batched = x->ndim == o->nsp + 2;
    int first = batched || adaptive ? 1 : 0;
    if (batched && o->kind == P_ADAPTIVE_AVG && o->nsp < 3 && !backward)
        first = 2;
    for (int i = first; i < x->ndim; i++)
        if (x->dims[i] == 0)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "expected input %s to have non-zero size for non-batch dimensions, "
                             "but dimension %d is empty%s",
                             cnni_shape_str(x, sb, sizeof sb), i,
                             i == 1 && o->kind == P_ADAPTIVE_AVG && o->nsp < 3
                                 ? " (PyTorch allows empty channels here only without a gradient)"
                                 : "");
    return CNN_OK;
}

/* Checks the input and fills the geometry and the output shape. */
static cnn_status make_geom(const pool_opts *o, const cnni_tensor *in, int backward,
                            cnni_pool_geom *g, cnn_shape *y, cnn_err *e)
{
    char sb[128];
    const cnn_shape *x = &in->shape;
    int nsp = o->nsp;
    int adaptive = o->kind == P_ADAPTIVE_AVG || o->kind == P_ADAPTIVE_MAX;
    if (in->dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_SHAPE, "expected a float32 input, got %s",
                         cnn_dtype_name(in->dtype));
    /* A tuple output_size is matched against the input's last dims first. */
    if (adaptive && nsp > 1 && !o->osz_int && x->ndim <= nsp)
        return cnni_fail(e, CNN_ERR_SHAPE, "input dimension should be at least %d, got %d-d %s",
                         nsp + 1, x->ndim, cnni_shape_str(x, sb, sizeof sb));
    int global = global_mean(o, x);
    if (!global) {
        if (x->ndim != nsp + 1 && x->ndim != nsp + 2)
            return cnni_fail(e, CNN_ERR_SHAPE, "expected a %d-d or %d-d input %s, got %d-d %s",
                             nsp + 1, nsp + 2, dim_names(nsp), x->ndim,
                             cnni_shape_str(x, sb, sizeof sb));
        cnn_status st = check_empty(o, x, backward, e);
        if (st)
            return st;
    }
    memset(g, 0, sizeof *g);
    g->NC = 1;
    for (int i = 0; i < x->ndim - nsp; i++)
        g->NC *= x->dims[i];
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
        g->p[i] = 0;
    }
    g->count_include_pad = o->count_include_pad;
    g->divisor = o->divisor;
    *y = *x;
    int off = 3 - nsp;
    const int64_t *sp = x->dims + x->ndim - nsp;
    if (adaptive) {
        for (int i = 0; i < nsp; i++) {
            int64_t m = o->osz[i] < 0 ? sp[i] : o->osz[i];
            int64_t t;
            /* The window bounds multiply sizes: keep (m + 1) * n in range. */
            if (!cnni_mul_ok(m + 1, sp[i], &t))
                return cnni_fail(e, CNN_ERR_OVERFLOW, "adaptive pooling of size %lld to %lld is too "
                                 "large",
                                 (long long)sp[i], (long long)m);
            g->in[off + i] = sp[i];
            g->out[off + i] = m;
            y->dims[x->ndim - nsp + i] = m;
        }
        return CNN_OK;
    }
    /* PyTorch's MaxPool1d without indices or gradient takes its own path,
     * which allows an empty output and 64-bit sizes. */
    int64_t lim = window_limit(o, backward);
    for (int i = 0; i < nsp; i++)
        if (o->k[i] > lim || o->s[i] > lim || o->p[i] > lim || o->d[i] > lim)
            return cnni_fail(e, CNN_ERR_CONFIG,
                             "kernel_size, stride, padding and dilation must fit in 32 bits "
                             "when a gradient is wanted (integer out of range)");
    /* That path still computes the output size from the window's extent
     * in 32-bit arithmetic: from 2^31 on it wraps around into a made-up
     * size (17 outputs of a 13-long input), so cnn refuses it. */
    for (int i = 0; lim != INT32_MAX && i < nsp; i++)
        if (o->d[i] * (o->k[i] - 1) + 1 > INT32_MAX)
            return cnni_fail(e, CNN_ERR_CONFIG,
                             "the window spans %lld elements (dilation * (kernel_size - 1) + 1): from 2^31 "
                             "on PyTorch's output size wraps around in 32 bits",
                             (long long)(o->d[i] * (o->k[i] - 1) + 1));
    int64_t least = lim == INT32_MAX ? 1 : 0;
    int64_t outsz[3];
    int small = 0;
    for (int i = 0; i < nsp; i++) {
        outsz[i] = pooled_size(sp[i], o->k[i], o->s[i], o->p[i], o->d[i], o->ceil_mode);
        if (outsz[i] < least)
            small = 1;
    }
    if (small) {
        char ob[128];
        cnn_shape os = *x;
        for (int i = 0; i < nsp; i++)
            os.dims[x->ndim - nsp + i] = outsz[i];
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "given input size %s, the calculated output size %s is too small%s",
                         cnni_shape_str(x, sb, sizeof sb), cnni_shape_str(&os, ob, sizeof ob),
                         least == 1 && o->kind == P_MAX && nsp == 1 && outsz[0] == 0
                             ? " (PyTorch allows an empty output here only without indices or "
                               "gradient)"
                             : "");
    }
    if (o->kind == P_AVG && nsp == 3)
        for (int i = 0; i < nsp; i++)
            if (sp[i] < o->k[i])
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "input image %s smaller than kernel size (%lld, %lld, %lld): "
                                 "AvgPool3d needs every spatial size of the unpadded input to be "
                                 "at least the kernel size",
                                 cnni_shape_str(x, sb, sizeof sb), (long long)o->k[0],
                                 (long long)o->k[1], (long long)o->k[2]);
    for (int i = 0; i < nsp; i++) {
        g->in[off + i] = sp[i];
        g->out[off + i] = outsz[i];
        g->k[off + i] = o->k[i];
        g->s[off + i] = o->s[i];
        g->p[off + i] = o->p[i];
        g->d[off + i] = o->d[i];
        y->dims[x->ndim - nsp + i] = outsz[i];
    }
    return CNN_OK;
}

static int has_argmax(const pool_opts *o) { return o->kind == P_MAX || o->kind == P_ADAPTIVE_MAX; }

/* Batched inputs only: unbatched, dim 0 is the channels. */
static int pool_per_sample(const cnni_node *n, const cnn_shape *in)
{
    const pool_opts *o = n->opts;
    return in->ndim == o->nsp + 2;
}

static cnn_status pool_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const pool_opts *o = n->opts;
    cnni_pool_geom g;
    cnn_status st = make_geom(o, &inf->in[0], inf->backward, &g, &inf->out[0].shape, e);
    if (st)
        return st;
    inf->out[0].dtype = CNN_F32;
    if (o->return_indices) {
        inf->out[1].shape = inf->out[0].shape;
        inf->out[1].dtype = CNN_I64;
    }
    int64_t numel;
    if ((st = cnni_shape_numel(&inf->out[0].shape, &numel, e, "output")))
        return st;
    /* A window pool reads a kernel volume per output; an adaptive one about
     * its input once. */
    if (o->kind == P_ADAPTIVE_AVG || o->kind == P_ADAPTIVE_MAX)
        inf->macs = cnni_numel(&inf->in[0].shape);
    else if (!cnni_mul_ok(numel, g.k[0] * g.k[1] * g.k[2], &inf->macs))
        inf->macs = INT64_MAX;
    /* Backward needs the argmax (the indices output holds it when returned)
     * and sums each input plane's gradient in double scratch. */
    if (inf->backward && has_argmax(o)) {
        if (!o->return_indices)
            inf->saved_bytes = (size_t)numel * sizeof(int64_t);
        inf->work_bytes = (size_t)cnni_pool_in_plane(&g) * sizeof(double);
    }
    return CNN_OK;
}

static cnn_status pool_forward(const cnni_exec *x)
{
    const pool_opts *o = x->opts;
    cnni_pool_geom g;
    cnn_shape y;
    cnn_status st = make_geom(o, &x->in[0], 0, &g, &y, x->e);
    if (st)
        return st;
    const float *in = x->in[0].data;
    float *out = x->out[0].data;
    int64_t *idx = o->return_indices ? (int64_t *)x->out[1].data : (int64_t *)x->saved;
    switch (o->kind) {
    case P_MAX: cnni_pool_fast_max_forward(x->isa, x->pool, &g, in, out, idx); break;
    case P_AVG: cnni_pool_fast_avg_forward(x->isa, x->pool, &g, in, out); break;
    case P_ADAPTIVE_MAX: cnni_ref_adaptive_max_forward_f32(&g, in, out, idx); break;
    case P_ADAPTIVE_AVG: cnni_ref_adaptive_avg_forward_f32(&g, in, out); break;
    }
    return CNN_OK;
}

static cnn_status pool_backward(const cnni_exec *x)
{
    const pool_opts *o = x->opts;
    float *dx = x->din[0].data;
    if (!dx)
        return CNN_OK;
    cnni_pool_geom g;
    cnn_shape y;
    cnn_status st = make_geom(o, &x->in[0], 1, &g, &y, x->e);
    if (st)
        return st;
    const float *dy = x->dout[0].data;
    switch (o->kind) {
    case P_MAX:
    case P_ADAPTIVE_MAX: {
        const int64_t *idx = o->return_indices ? (const int64_t *)x->out[1].data
                                               : (const int64_t *)x->saved;
        if (!idx)
            return cnni_fail(x->e, CNN_ERR_STATE, "backward without the forward pass's indices "
                             "(the graph was not planned for backward)");
        cnni_pool_fast_argmax_backward(x->pool, g.NC, cnni_pool_in_plane(&g), cnni_pool_out_plane(&g), dy,
                                       idx, dx);
        break;
    }
    case P_AVG: cnni_pool_fast_avg_backward(x->isa, x->pool, &g, dy, dx); break;
    case P_ADAPTIVE_AVG: cnni_ref_adaptive_avg_backward_f32(&g, dy, dx); break;
    }
    return CNN_OK;
}

#define POOL_OP(NAME, cfg, sig, req)                                                               \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = sig,                                                   \
                                    .n_required = req,                                             \
                                    .inputs = one_input,                                           \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .opts_size = sizeof(pool_opts),                                \
                                    .configure = cfg,                                              \
                                    .infer = pool_infer,                                           \
                                    .forward = pool_forward,                                       \
                                    .backward = pool_backward,                                     \
                                    .per_sample = pool_per_sample};

POOL_OP(MaxPool1d, max_configure_1, max_args, 1)
POOL_OP(MaxPool2d, max_configure_2, max_args, 1)
POOL_OP(MaxPool3d, max_configure_3, max_args, 1)
POOL_OP(AvgPool1d, avg_configure_1, avg1_args, 1)
POOL_OP(AvgPool2d, avg_configure_2, avg_args, 1)
POOL_OP(AvgPool3d, avg_configure_3, avg_args, 1)
POOL_OP(AdaptiveMaxPool1d, amax_configure_1, amax_args, 1)
POOL_OP(AdaptiveMaxPool2d, amax_configure_2, amax_args, 1)
POOL_OP(AdaptiveMaxPool3d, amax_configure_3, amax_args, 1)
POOL_OP(AdaptiveAvgPool1d, aavg_configure_1, aavg_args, 1)
POOL_OP(AdaptiveAvgPool2d, aavg_configure_2, aavg_args, 1)
POOL_OP(AdaptiveAvgPool3d, aavg_configure_3, aavg_args, 1)

/* Whether node n's windows on an input of shape in are planewise
 * (pool_fast.h); g receives the geometry. */
static int planewise_geom(const cnni_node *n, const cnn_shape *in, cnni_pool_geom *g)
{
    cnni_tensor t = {NULL, *in, CNN_F32};
    cnn_shape y;
    cnn_err e;
    memset(&e, 0, sizeof e);
    return make_geom(n->opts, &t, 1, g, &y, &e) == CNN_OK && cnni_pool_fast_planewise(g);
}

int cnni_pool_fusable(const cnni_node *n, const cnn_shape *in, cnni_pool_geom *g)
{
    if (n->op != &cnni_op_MaxPool1d && n->op != &cnni_op_MaxPool2d && n->op != &cnni_op_MaxPool3d)
        return 0;
    const pool_opts *o = n->opts;
    return !o->return_indices && planewise_geom(n, in, g);
}

int cnni_avgpool_fusable(const cnni_node *n, const cnn_shape *in, cnni_pool_geom *g)
{
    if (n->op != &cnni_op_AvgPool1d && n->op != &cnni_op_AvgPool2d && n->op != &cnni_op_AvgPool3d)
        return 0;
    return planewise_geom(n, in, g);
}
