/* Joining branches of a graph: Concat(dim) as torch.cat / Keras
 * Concatenate, and Add() as the residual sum (with PyTorch's broadcasting). */
#include "layer.h"

#include <stdio.h>
#include <string.h>

static const char *const many_inputs[] = {"tensors", NULL};

typedef struct concat_opts {
    int64_t dim;
} concat_opts;

static const char *const concat_args[] = {"dim", NULL};

static cnn_status concat_configure(cnni_node *n, const cnni_args *a)
{
    concat_opts *o = n->opts;
    cnn_status st = cnni_arg_int(a, 0, 1, &o->dim);
    if (st)
        return st;
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status concat_dim(const concat_opts *o, int ndim, int64_t *d, cnn_err *e)
{
    if (ndim == 0)
        return cnni_fail(e, CNN_ERR_SHAPE, "zero-dimensional tensors cannot be concatenated");
    if (o->dim < -ndim || o->dim >= ndim)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "dimension out of range (expected to be in range of [%d, %d], but got %lld)",
                         -ndim, ndim - 1, (long long)o->dim);
    *d = o->dim < 0 ? o->dim + ndim : o->dim;
    return CNN_OK;
}

static cnn_status concat_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const concat_opts *o = n->opts;
    const cnn_shape *first = &inf->in[0].shape;
    int64_t d = 0;
    cnn_status st = concat_dim(o, first->ndim, &d, e);
    if (st)
        return st;
    cnn_shape y = *first;
    char sa[128], sb[128];
    for (int k = 1; k < inf->n_in; k++) {
        const cnn_shape *s = &inf->in[k].shape;
        if (inf->in[k].dtype != inf->in[0].dtype)
            return cnni_fail(e, CNN_ERR_SHAPE, "input %d is %s but input 0 is %s", k,
                             cnn_dtype_name(inf->in[k].dtype), cnn_dtype_name(inf->in[0].dtype));
        int same = s->ndim == first->ndim;
        for (int i = 0; same && i < s->ndim; i++)
            if (i != d && s->dims[i] != first->dims[i])
                same = 0;
        if (!same)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "sizes of tensors must match except in dimension %lld: input 0 has "
                             "shape %s, input %d has %s",
                             (long long)d, cnni_shape_str(first, sa, sizeof sa), k,
                             cnni_shape_str(s, sb, sizeof sb));
        y.dims[d] += s->dims[d];
    }
    inf->out[0].shape = y;
    inf->out[0].dtype = inf->in[0].dtype;
    return CNN_OK;
}

/* The tensor is viewed as (outer, dims[d] * inner) blocks. */
static void concat_split(const cnn_shape *s, int64_t d, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < d; i++)
        *outer *= s->dims[i];
    for (int i = (int)d + 1; i < s->ndim; i++)
        *inner *= s->dims[i];
}

static cnn_status concat_forward(const cnni_exec *x)
{
    const concat_opts *o = x->opts;
    int64_t d = 0, outer, inner;
    concat_dim(o, x->out[0].shape.ndim, &d, x->e);
    concat_split(&x->out[0].shape, d, &outer, &inner);
    size_t es = cnni_dtype_size(x->out[0].dtype);
    size_t out_row = (size_t)(x->out[0].shape.dims[d] * inner) * es;
    size_t off = 0;
    for (int k = 0; k < x->n_in; k++) {
        size_t row = (size_t)(x->in[k].shape.dims[d] * inner) * es;
        const char *src = x->in[k].data;
        char *dst = (char *)x->out[0].data + off;
        for (int64_t r = 0; r < outer; r++)
            memcpy(dst + (size_t)r * out_row, src + (size_t)r * row, row);
        off += row;
    }
    return CNN_OK;
}

static cnn_status concat_backward(const cnni_exec *x)
{
    const concat_opts *o = x->opts;
    int64_t d = 0, outer, inner;
    concat_dim(o, x->out[0].shape.ndim, &d, x->e);
    concat_split(&x->out[0].shape, d, &outer, &inner);
    size_t out_row = (size_t)(x->out[0].shape.dims[d] * inner) * sizeof(float);
    size_t off = 0;
    for (int k = 0; k < x->n_in; k++) {
        size_t row = (size_t)(x->in[k].shape.dims[d] * inner) * sizeof(float);
        if (x->din[k].data) {
            const char *src = (const char *)x->dout[0].data + off;
            char *dst = x->din[k].data;
            for (int64_t r = 0; r < outer; r++)
                memcpy(dst + (size_t)r * row, src + (size_t)r * out_row, row);
        }
        off += row;
    }
    return CNN_OK;
}

const cnni_op cnni_op_Concat = {.name = "Concat",
                                .args = concat_args,
                                .inputs = many_inputs,
                                .min_inputs = 1,
                                .max_inputs = -1,
                                .opts_size = sizeof(concat_opts),
                                .configure = concat_configure,
                                .infer = concat_infer,
                                .forward = concat_forward,
                                .backward = concat_backward};

static const char *const no_args[] = {NULL};

/* Add broadcasts like PyTorch's "+": shapes are aligned at the right, and
 * a size-1 (or missing) dimension stretches to the other's size. */
static cnn_status add_configure(cnni_node *n, const cnni_args *a)
{
    (void)a;
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status add_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    (void)n;
    char sa[128], sb[128];
    cnn_shape y = inf->in[0].shape;
    for (int k = 0; k < inf->n_in; k++) {
        const cnn_shape *s = &inf->in[k].shape;
        if (inf->in[k].dtype != CNN_F32)
            return cnni_fail(e, CNN_ERR_SHAPE, "input %d is %s; Add sums float32 tensors", k,
                             cnn_dtype_name(inf->in[k].dtype));
        if (k == 0)
            continue;
        cnn_shape r;
        r.ndim = s->ndim > y.ndim ? s->ndim : y.ndim;
        for (int i = 0; i < r.ndim; i++) {
            int64_t a = i - (r.ndim - y.ndim) >= 0 ? y.dims[i - (r.ndim - y.ndim)] : 1;
            int64_t b = i - (r.ndim - s->ndim) >= 0 ? s->dims[i - (r.ndim - s->ndim)] : 1;
            if (a != b && a != 1 && b != 1)
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "the size of input %d (shape %s) must match the size of the "
                                 "inputs before it (shape %s) at dimension %d, or be 1",
                                 k, cnni_shape_str(s, sa, sizeof sa), cnni_shape_str(&y, sb, sizeof sb), i);
            r.dims[i] = a == 1 ? b : a;
        }
        y = r;
    }
    inf->out[0].shape = y;
    inf->out[0].dtype = CNN_F32;
    return CNN_OK;
}

/* Strides of input s inside output shape y (0 where s is broadcast). */
static void bcast_strides(const cnn_shape *s, const cnn_shape *y, int64_t *st)
{
    int64_t acc = 1;
    for (int i = y->ndim - 1; i >= 0; i--) {
        int j = i - (y->ndim - s->ndim);
        if (j >= 0 && s->dims[j] != 1) {
            st[i] = acc;
            acc *= s->dims[j];
        } else {
            st[i] = 0;
            if (j >= 0)
                acc *= s->dims[j];
        }
    }
}

/* Walks every output element together with the matching offset in a
 * broadcast input: adds the input into the output (forward), or the output
 * into the input (backward, summing over the stretched dimensions). */
static void for_each_bcast(const cnn_shape *y, const int64_t *st, float *out, float *in, int into_out)
{
    int64_t idx[CNN_MAX_DIMS] = {0};
    int64_t n = cnni_numel(y);
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        if (into_out)
            out[i] += in[off];
        else
            in[off] += out[i];
        for (int d = y->ndim - 1; d >= 0; d--) {
            idx[d]++;
            off += st[d];
            if (idx[d] < y->dims[d])
                break;
            off -= st[d] * idx[d];
            idx[d] = 0;
        }
    }
}

static cnn_status add_forward(const cnni_exec *x)
{
    const cnn_shape *ys = &x->out[0].shape;
    int64_t n = cnni_numel(ys);
    float *y = x->out[0].data;
    memset(y, 0, (size_t)n * sizeof(float));
    for (int k = 0; k < x->n_in; k++) {
        float *a = x->in[k].data;
        if (cnni_shape_eq(&x->in[k].shape, ys)) {
            for (int64_t i = 0; i < n; i++)
                y[i] += a[i];
        } else {
            int64_t st[CNN_MAX_DIMS];
            bcast_strides(&x->in[k].shape, ys, st);
            for_each_bcast(ys, st, y, a, 1);
        }
    }
    return CNN_OK;
}

static cnn_status add_backward(const cnni_exec *x)
{
    const cnn_shape *ys = &x->out[0].shape;
    int64_t n = cnni_numel(ys);
    for (int k = 0; k < x->n_in; k++) {
        float *dx = x->din[k].data;
        if (!dx)
            continue;
        if (cnni_shape_eq(&x->in[k].shape, ys)) {
            memcpy(dx, x->dout[0].data, (size_t)n * sizeof(float));
        } else {
            /* A broadcast input's gradient sums over the stretched dims. */
            int64_t st[CNN_MAX_DIMS];
            bcast_strides(&x->in[k].shape, ys, st);
            memset(dx, 0, (size_t)cnni_numel(&x->in[k].shape) * sizeof(float));
            for_each_bcast(ys, st, x->dout[0].data, dx, 0);
        }
    }
    return CNN_OK;
}

const cnni_op cnni_op_Add = {.name = "Add",
                             .args = no_args,
                             .inputs = many_inputs,
                             .min_inputs = 2,
                             .max_inputs = -1,
                             .configure = add_configure,
                             .infer = add_infer,
                             .forward = add_forward,
                             .backward = add_backward};
