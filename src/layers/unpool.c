/* MaxUnpool1d/2d/3d: the partial inverse of max pooling. Each input value
 * goes to the place its index names within its output plane; every other
 * output element is zero. The gradient of an input value is the output
 * gradient at its index.
 *
 * As in PyTorch, kernel_size, stride and padding only decide the default
 * output size (in - 1) * stride + kernel_size - 2 * padding; the forward
 * call's output_size may pick any size strictly within one stride of it.
 * Indices outside the output plane are an error at forward time. */
#include "layer.h"
#include "../kernels/ref/pool_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct unpool_opts {
    int nsp;
    int64_t k[3], s[3], p[3];
    int has_size;       /* output_size given to the forward call */
    int64_t size[3];
    int size_bool;      /* its first size is a bool, which PyTorch's parser refuses */
} unpool_opts;

enum { U_K, U_S, U_P };
static const char *const unpool_args[] = {"kernel_size", "stride", "padding", NULL};
static const char *const unpool_inputs[] = {"input", "indices", NULL};
static const char *const unpool_fwd_args[] = {"output_size", NULL};

static const char *const n_ints[] = {"", "one int", "two ints", "three ints"};

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

static cnn_status type_fail(const cnni_args *a, int k, const char *name, const char *expected)
{
    char got[160];
    describe(a->slot[k], got, sizeof got);
    return cnni_arg_fail(a, k, "argument '%s' must be %s, got %s", name, expected, got);
}

/* Every item of a tuple or list must be an int (or a bool, which Python
 * arithmetic and PyTorch's parser take as one). */
static cnn_status check_items(const cnni_args *a, int k, const char *name, const char *expected)
{
    const cnni_value *v = a->slot[k];
    for (int i = 0; i < v->n; i++)
        if (v->items[i]->kind != CNNI_V_INT && v->items[i]->kind != CNNI_V_BOOL) {
            char got[160];
            describe(v->items[i], got, sizeof got);
            return cnni_arg_fail(a, k, "argument '%s' must be %s, but item %d is %s", name,
                                 expected, i, got);
        }
    return CNN_OK;
}

/* An int or a tuple/list of ints (PyTorch's _single/_pair/_triple keep a
 * tuple as given and repeat anything else, so True counts as 1). The
 * tuple's length must be exactly nsp when `exact`, else at least nsp: the
 * extra entries of stride and padding are never read by 1-d and 2-d.
 * *bool_first says whether the sequence PyTorch builds starts with a bool,
 * which its C++ parser refuses as a list of ints. */
static cnn_status read_sizes(const cnni_args *a, int k, int nsp, int exact, int64_t *out,
                             int *bool_first)
{
    const cnni_value *v = a->slot[k];
    const char *name = a->op->args[k];
    char expected[80];
    snprintf(expected, sizeof expected, "an int or a tuple of %s", n_ints[nsp]);
    if (v->kind == CNNI_V_INT || v->kind == CNNI_V_BOOL) {
        for (int i = 0; i < nsp; i++)
            out[i] = v->i;
        *bool_first = v->kind == CNNI_V_BOOL;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST)
        return type_fail(a, k, name, expected);
    cnn_status st = check_items(a, k, name, expected);
    if (st)
        return st;
    if (v->n < nsp || (exact && v->n != nsp))
        return cnni_arg_fail(a, k, "%s must be %s, got %d value%s", name, expected, v->n,
                             v->n == 1 ? "" : "s");
    for (int i = 0; i < nsp; i++)
        out[i] = v->items[i]->i;
    *bool_first = v->items[0]->kind == CNNI_V_BOOL;
    return CNN_OK;
}

static cnn_status unpool_configure(cnni_node *n, const cnni_args *a, int nsp)
{
    unpool_opts *o = n->opts;
    o->nsp = nsp;
    int k_bool, s_bool, p_bool = 0;
    cnn_status st = read_sizes(a, U_K, nsp, 1, o->k, &k_bool);
    if (st)
        return st;
    /* MaxUnpool3d passes stride and padding on to C++, which wants three
     * ints; 1-d and 2-d only compute with them in Python. */
    int ks = a->slot[U_S] && a->slot[U_S]->kind != CNNI_V_NONE ? U_S : U_K;
    if (ks == U_S) {
        if ((st = read_sizes(a, U_S, nsp, nsp == 3, o->s, &s_bool)))
            return st;
    } else {
        memcpy(o->s, o->k, sizeof o->s);
        s_bool = k_bool;
    }
    if (a->slot[U_P]) {
        if ((st = read_sizes(a, U_P, nsp, nsp == 3, o->p, &p_bool)))
            return st;
    }
    if (nsp == 3 && (s_bool || p_bool))
        return cnni_arg_fail(a, s_bool ? ks : U_P,
                             "%s must be a tuple of ints (PyTorch's parser refuses one that starts "
                             "with a bool)",
                             s_bool ? "stride" : "padding");
    if (nsp == 3)
        for (int i = 0; i < 3; i++)
            if (o->s[i] <= 0)
                return cnni_arg_fail(a, ks,
                                     "strides should be greater than zero, but got stride: "
                                     "[%lld, %lld, %lld]",
                                     (long long)o->s[0], (long long)o->s[1], (long long)o->s[2]);
    n->n_out = 1;
    return CNN_OK;
}

/* output_size of the forward call: None, or a sequence of nsp sizes or of
 * nsp + 2 (a full shape, whose first two entries PyTorch ignores). */
static cnn_status unpool_configure_forward(cnni_node *n, const cnni_args *a)
{
    unpool_opts *o = n->opts;
    const cnni_value *v = a->slot[0];
    o->has_size = 0;
    if (!v || v->kind == CNNI_V_NONE)
        return CNN_OK;
    if (v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST)
        return type_fail(a, 0, "output_size", "None or a tuple of ints");
    cnn_status st = check_items(a, 0, "output_size", "None or a tuple of ints");
    if (st)
        return st;
    if (v->n != o->nsp && v->n != o->nsp + 2)
        return cnni_arg_fail(a, 0,
                             "output_size should be a sequence containing %d or %d elements, but "
                             "it has a length of %d",
                             o->nsp, o->nsp + 2, v->n);
    for (int i = 0; i < o->nsp; i++)
        o->size[i] = v->items[v->n - o->nsp + i]->i;
    o->size_bool = v->items[v->n - o->nsp]->kind == CNNI_V_BOOL;
    o->has_size = 1;
    return CNN_OK;
}

#define CONFIGURE(n) \
    static cnn_status unpool_configure_##n(cnni_node *node, const cnni_args *a) { return unpool_configure(node, a, n); }
CONFIGURE(1)
CONFIGURE(2)
CONFIGURE(3)

static const char *dim_names(int nsp)
{
    return nsp == 1 ? "(C, L) or (N, C, L)" : nsp == 2 ? "(C, H, W) or (N, C, H, W)"
                                                       : "(C, D, H, W) or (N, C, D, H, W)";
}

/* Checks input and indices; fills the output shape and the plane sizes. */
static cnn_status make_shape(const unpool_opts *o, const cnni_tensor *in, cnn_shape *y, int64_t *NC,
                             int64_t *in_plane, int64_t *out_plane, cnn_err *e)
{
    char sa[128], sb[128];
    const cnn_shape *x = &in[0].shape;
    int nsp = o->nsp;
    if (in[0].dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_SHAPE, "expected a float32 input, got %s",
                         cnn_dtype_name(in[0].dtype));
    if (in[1].dtype != CNN_I64)
        return cnni_fail(e, CNN_ERR_SHAPE, "elements in indices should be type int64 but got %s",
                         cnn_dtype_name(in[1].dtype));
    if (x->ndim != nsp + 1 && x->ndim != nsp + 2)
        return cnni_fail(e, CNN_ERR_SHAPE, "expected a %d-d or %d-d input %s, got %d-d %s",
                         nsp + 1, nsp + 2, dim_names(nsp), x->ndim, cnni_shape_str(x, sa, sizeof sa));
    if (!cnni_shape_eq(x, &in[1].shape))
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "expected shape of indices to be same as that of the input tensor (%s) but "
                         "got indices tensor with shape %s",
                         cnni_shape_str(x, sa, sizeof sa), cnni_shape_str(&in[1].shape, sb, sizeof sb));
    /* Dim 0 is the batch for PyTorch even when the input is unbatched. */
    for (int i = 1; i < x->ndim; i++)
        if (x->dims[i] == 0)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "expected input to have non-zero size for non-batch dimensions, but "
                             "got %s with dimension %d being empty",
                             cnni_shape_str(x, sa, sizeof sa), i);
    *y = *x;
    *NC = 1;
    for (int i = 0; i < x->ndim - nsp; i++)
        *NC *= x->dims[i];
    *in_plane = *out_plane = 1;
    for (int i = 0; i < nsp; i++) {
        int64_t n = x->dims[x->ndim - nsp + i], def, lo, hi;
        if (!cnni_mul_ok(n - 1, o->s[i], &def) || !cnni_add_ok(def, o->k[i], &def) ||
            !cnni_mul_ok(o->p[i], -2, &lo) || !cnni_add_ok(def, lo, &def))
            return cnni_fail(e, CNN_ERR_OVERFLOW, "the output size of dim %d overflows", i);
        int64_t size = def;
        if (o->has_size) {
            if (!cnni_add_ok(def, -o->s[i], &lo) || !cnni_add_ok(def, o->s[i], &hi))
                return cnni_fail(e, CNN_ERR_OVERFLOW, "the output size of dim %d overflows", i);
            if (!(lo < o->size[i] && o->size[i] < hi))
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "invalid output_size: dim %d is %lld but must be between %lld and "
                                 "%lld (exclusive) for input %s",
                                 i, (long long)o->size[i], (long long)lo, (long long)hi,
                                 cnni_shape_str(x, sa, sizeof sa));
            size = o->size[i];
        }
        if (o->has_size && o->size_bool && i == nsp - 1)
            return cnni_fail(e, CNN_ERR_SHAPE, "output_size must be a sequence of ints (PyTorch's "
                             "parser refuses one that starts with a bool)");
        if (size < 0 && o->has_size)
            return cnni_fail(e, CNN_ERR_SHAPE, "output_size gives dim %d a negative size (%lld)",
                             i, (long long)size);
        if (size < 0)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "the output size of dim %d is negative (%lld) for input %s: "
                             "(%lld - 1) * stride %lld + kernel_size %lld - 2 * padding %lld",
                             i, (long long)size, cnni_shape_str(x, sa, sizeof sa), (long long)n,
                             (long long)o->s[i], (long long)o->k[i], (long long)o->p[i]);
        y->dims[x->ndim - nsp + i] = size;
        *in_plane *= n;
        if (!cnni_mul_ok(*out_plane, size, out_plane) || *out_plane > CNNI_MAX_NUMEL)
            return cnni_fail(e, CNN_ERR_OVERFLOW, "the output of input %s is too large",
                             cnni_shape_str(x, sa, sizeof sa));
    }
    return CNN_OK;
}

static cnn_status unpool_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    int64_t NC, ip, op;
    cnn_status st = make_shape(n->opts, inf->in, &inf->out[0].shape, &NC, &ip, &op, e);
    if (st)
        return st;
    inf->out[0].dtype = CNN_F32;
    inf->macs = NC * ip;
    return CNN_OK;
}

/* "[0, 1, 2, 3]": where the flat position pos lies in shape s. */
static char *position(const cnn_shape *s, int64_t pos, char *buf, size_t len)
{
    cnn_shape at = *s;
    for (int i = s->ndim - 1; i >= 0; i--) {
        at.dims[i] = s->dims[i] ? pos % s->dims[i] : 0;
        pos = s->dims[i] ? pos / s->dims[i] : 0;
    }
    return cnni_shape_str(&at, buf, len);
}

static void plane_str(const unpool_opts *o, const cnn_shape *y, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < o->nsp && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? "x%lld" : "%lld",
                                 (long long)y->dims[y->ndim - o->nsp + i]);
}

static cnn_status unpool_forward(const cnni_exec *x)
{
    const unpool_opts *o = x->opts;
    int64_t NC, ip, op;
    cnn_shape y;
    cnn_status st = make_shape(o, x->in, &y, &NC, &ip, &op, x->e);
    if (st)
        return st;
    const int64_t *idx = x->in[1].data;
    int64_t bad = cnni_ref_unpool_forward_f32(NC, ip, op, x->in[0].data, idx, x->out[0].data);
    if (bad >= 0) {
        char at[128], plane[96];
        plane_str(o, &y, plane, sizeof plane);
        return cnni_fail(x->e, CNN_ERR_ARGUMENT,
                         "found an invalid max index: indices%s is %lld, outside the output "
                         "plane of size %s (valid: 0 to %lld)",
                         position(&x->in[1].shape, bad, at, sizeof at), (long long)idx[bad], plane,
                         (long long)(op - 1));
    }
    return CNN_OK;
}

static cnn_status unpool_backward(const cnni_exec *x)
{
    const unpool_opts *o = x->opts;
    float *dx = x->din[0].data;
    if (!dx)
        return CNN_OK;
    int64_t NC, ip, op;
    cnn_shape y;
    cnn_status st = make_shape(o, x->in, &y, &NC, &ip, &op, x->e);
    if (st)
        return st;
    const int64_t *idx = x->in[1].data;
    int64_t bad = cnni_ref_unpool_backward_f32(NC, ip, op, x->dout[0].data, idx, dx);
    if (bad >= 0) {
        /* Forward accepted every index unless the output plane is empty;
         * PyTorch's gather then fails in the same way. */
        char at[128], plane[96];
        plane_str(o, &y, plane, sizeof plane);
        return cnni_fail(x->e, CNN_ERR_ARGUMENT,
                         "index %lld (indices%s) is out of bounds for the output plane of size %s",
                         (long long)idx[bad], position(&x->in[1].shape, bad, at, sizeof at), plane);
    }
    return CNN_OK;
}

#define UNPOOL_OP(NAME, n)                                                                         \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = unpool_args,                                           \
                                    .n_required = 1,                                               \
                                    .inputs = unpool_inputs,                                       \
                                    .min_inputs = 2,                                               \
                                    .max_inputs = 2,                                               \
                                    .opts_size = sizeof(unpool_opts),                              \
                                    .configure = unpool_configure_##n,                             \
                                    .fwd_args = unpool_fwd_args,                                   \
                                    .configure_forward = unpool_configure_forward,                 \
                                    .infer = unpool_infer,                                         \
                                    .forward = unpool_forward,                                     \
                                    .backward = unpool_backward};

UNPOOL_OP(MaxUnpool1d, 1)
UNPOOL_OP(MaxUnpool2d, 2)
UNPOOL_OP(MaxUnpool3d, 3)
