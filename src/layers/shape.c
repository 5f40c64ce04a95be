/* Modules that only change a tensor's shape: Flatten, Unflatten, Identity.
 * The data is copied unchanged (row-major order is preserved). */
#include "layer.h"

#include <stdio.h>
#include <string.h>

static const char *const one_input[] = {"input", NULL};

typedef struct flatten_opts {
    int64_t start, end;
} flatten_opts;

static const char *const flatten_args[] = {"start_dim", "end_dim", NULL};

static cnn_status flatten_configure(cnni_node *n, const cnni_args *a)
{
    flatten_opts *o = n->opts;
    cnn_status st;
    if ((st = cnni_arg_int(a, 0, 1, &o->start)) || (st = cnni_arg_int(a, 1, -1, &o->end)))
        return st;
    n->n_out = 1;
    return CNN_OK;
}

/* PyTorch's dimension wrapping: d in [-ndim, ndim-1] (a scalar counts as 1-d). */
static cnn_status wrap_dim(int64_t d, int ndim, int64_t *out, cnn_err *e)
{
    int64_t n = ndim > 0 ? ndim : 1;
    if (d < -n || d >= n)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "dimension out of range (expected to be in range of [%lld, %lld], but got %lld)",
                         (long long)-n, (long long)(n - 1), (long long)d);
    *out = d < 0 ? d + n : d;
    return CNN_OK;
}

static cnn_status flatten_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const flatten_opts *o = n->opts;
    const cnn_shape *x = &inf->in[0].shape;
    int64_t s = 0, t = 0;
    cnn_status st;
    if ((st = wrap_dim(o->start, x->ndim, &s, e)) || (st = wrap_dim(o->end, x->ndim, &t, e)))
        return st;
    if (s > t)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "flatten() has invalid args: start_dim (%lld) cannot come after end_dim (%lld)",
                         (long long)o->start, (long long)o->end);
    cnn_shape y = {0, {0}};
    if (x->ndim == 0) {
        y.ndim = 1;
        y.dims[0] = 1;
    } else {
        for (int i = 0; i < s; i++)
            y.dims[y.ndim++] = x->dims[i];
        int64_t m = 1;
        for (int64_t i = s; i <= t; i++)
            m *= x->dims[i];
        y.dims[y.ndim++] = m;
        for (int i = (int)t + 1; i < x->ndim; i++)
            y.dims[y.ndim++] = x->dims[i];
    }
    inf->out[0].shape = y;
    inf->out[0].dtype = inf->in[0].dtype;
    return CNN_OK;
}

/* Views: nothing to do when the plan gave the output the input's buffers. */
/* The same bytes in another shape: rows [r0, r1) of the input are those of
 * the output whenever both keep dim 0 (the graph checks that). */
static int view_per_sample(const cnni_node *n, const cnn_shape *in)
{
    (void)n;
    (void)in;
    return 1;
}

static cnn_status copy_forward(const cnni_exec *x)
{
    if (x->out[0].data != x->in[0].data)
        memcpy(x->out[0].data, x->in[0].data,
               (size_t)cnni_numel(&x->in[0].shape) * cnni_dtype_size(x->in[0].dtype));
    return CNN_OK;
}

static cnn_status copy_backward(const cnni_exec *x)
{
    if (x->din[0].data && x->din[0].data != x->dout[0].data)
        memcpy(x->din[0].data, x->dout[0].data, (size_t)cnni_numel(&x->in[0].shape) * sizeof(float));
    return CNN_OK;
}

const cnni_op cnni_op_Flatten = {.name = "Flatten",
                                 .args = flatten_args,
                                 .inputs = one_input,
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .opts_size = sizeof(flatten_opts),
                                 .configure = flatten_configure,
                                 .infer = flatten_infer,
                                 .forward = copy_forward,
                                 .backward = copy_backward,
                                 .view = 1,
                                 .per_sample = view_per_sample};

typedef struct unflatten_opts {
    int64_t dim;
    int n;
    int64_t sizes[CNN_MAX_DIMS];
} unflatten_opts;

static const char *const unflatten_args[] = {"dim", "unflattened_size", NULL};

static cnn_status unflatten_configure(cnni_node *n, const cnni_args *a)
{
    unflatten_opts *o = n->opts;
    cnn_status st;
    if ((st = cnni_arg_int(a, 0, 0, &o->dim)) ||
        (st = cnni_arg_int_list(a, 1, CNN_MAX_DIMS, o->sizes, &o->n)))
        return st;
    if (a->slot[1] && a->slot[1]->kind == CNNI_V_INT)
        return cnni_arg_fail(a, 1, "unflattened_size must be a tuple of ints, got an int");
    int minus = 0;
    for (int i = 0; i < o->n; i++) {
        if (o->sizes[i] == -1)
            minus++;
        else if (o->sizes[i] < 0)
            return cnni_arg_fail(a, 1, "invalid size %lld in unflattened_size", (long long)o->sizes[i]);
    }
    if (minus > 1)
        return cnni_arg_fail(a, 1, "only one dimension of unflattened_size can be inferred (-1)");
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status unflatten_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const unflatten_opts *o = n->opts;
    const cnn_shape *x = &inf->in[0].shape;
    int64_t d = 0;
    cnn_status st = wrap_dim(o->dim, x->ndim, &d, e);
    if (st)
        return st;
    if (x->ndim == 0 || x->ndim - 1 + o->n > CNN_MAX_DIMS)
        return cnni_fail(e, CNN_ERR_SHAPE, "cannot unflatten a %d-d input into %d dims", x->ndim, o->n);
    int64_t known = 1, infer_at = -1;
    for (int i = 0; i < o->n; i++) {
        if (o->sizes[i] == -1)
            infer_at = i;
        else
            known *= o->sizes[i];
    }
    int64_t sizes[CNN_MAX_DIMS];
    memcpy(sizes, o->sizes, sizeof sizes);
    if (infer_at >= 0) {
        if (known == 0 || x->dims[d] % known)
            return cnni_fail(e, CNN_ERR_SHAPE, "unflattened_size cannot split dimension %lld of size %lld",
                             (long long)d, (long long)x->dims[d]);
        sizes[infer_at] = x->dims[d] / known;
        known *= sizes[infer_at];
    }
    if (known != x->dims[d])
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "unflattened_size multiplies to %lld but dimension %lld has size %lld",
                         (long long)known, (long long)d, (long long)x->dims[d]);
    cnn_shape y = {0, {0}};
    for (int i = 0; i < d; i++)
        y.dims[y.ndim++] = x->dims[i];
    for (int i = 0; i < o->n; i++)
        y.dims[y.ndim++] = sizes[i];
    for (int i = (int)d + 1; i < x->ndim; i++)
        y.dims[y.ndim++] = x->dims[i];
    inf->out[0].shape = y;
    inf->out[0].dtype = inf->in[0].dtype;
    return CNN_OK;
}

const cnni_op cnni_op_Unflatten = {.name = "Unflatten",
                                   .args = unflatten_args,
                                   .n_required = 2,
                                   .inputs = one_input,
                                   .min_inputs = 1,
                                   .max_inputs = 1,
                                   .opts_size = sizeof(unflatten_opts),
                                   .configure = unflatten_configure,
                                   .infer = unflatten_infer,
                                   .forward = copy_forward,
                                   .backward = copy_backward,
                                   .view = 1,
                                   .per_sample = view_per_sample};

static cnn_status identity_configure(cnni_node *n, const cnni_args *a)
{
    (void)a;
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status identity_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    (void)n;
    (void)e;
    inf->out[0] = inf->in[0];
    return CNN_OK;
}

/* nn.Identity(*args, **kwargs) ignores its arguments. */
const cnni_op cnni_op_Identity = {.name = "Identity",
                                  .any_args = 1,
                                  .inputs = one_input,
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .configure = identity_configure,
                                  .infer = identity_infer,
                                  .forward = copy_forward,
                                  .backward = copy_backward,
                                  .view = 1,
                                  .per_sample = view_per_sample};
