/* Linear: y = x W^T + b over the last dimension; any number of leading
 * dimensions (PyTorch's (*, in_features) -> (*, out_features)). */
#include "layer.h"
#include "../kernels/linear_fast.h"

#include <math.h>
#include <string.h>

typedef struct linear_opts {
    int64_t in, out;
    int bias;
} linear_opts;

enum { A_IN, A_OUT, A_BIAS, A_DEVICE, A_DTYPE };
static const char *const linear_args[] = {"in_features", "out_features", "bias", "device", "dtype", NULL};
static const char *const one_input[] = {"input", NULL};

static cnn_status linear_configure(cnni_node *n, const cnni_args *a)
{
    linear_opts *o = n->opts;
    cnn_status st;
    if ((st = cnni_arg_int(a, A_IN, 0, &o->in)) || (st = cnni_arg_int(a, A_OUT, 0, &o->out)) ||
        (st = cnni_arg_bool(a, A_BIAS, 1, &o->bias)) ||
        (st = cnni_arg_device_dtype(a, A_DEVICE, A_DTYPE)))
        return st;
    if (o->in < 0)
        return cnni_arg_fail(a, A_IN, "in_features must be non-negative, got %lld", (long long)o->in);
    if (o->out < 0)
        return cnni_arg_fail(a, A_OUT, "out_features must be non-negative, got %lld", (long long)o->out);
    int64_t dims[2] = {o->out, o->in}, w;
    if (!cnni_mul_ok(o->in, o->out, &w) || w > CNNI_MAX_NUMEL)
        return cnni_arg_fail(a, A_IN, "weight of %lld x %lld is too large", (long long)o->out,
                             (long long)o->in);
    cnni_node_param(n, "weight", CNN_PARAM, CNN_F32, 2, dims);
    if (o->bias)
        cnni_node_param(n, "bias", CNN_PARAM, CNN_F32, 1, &o->out);
    n->n_out = 1;
    return CNN_OK;
}

/* A 1-dim input is one sample. */
static int linear_per_sample(const cnni_node *n, const cnn_shape *in)
{
    (void)n;
    return in->ndim >= 2;
}

static cnn_status linear_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const linear_opts *o = n->opts;
    const cnn_shape *x = &inf->in[0].shape;
    char sb[128];
    if (x->ndim < 1)
        return cnni_fail(e, CNN_ERR_SHAPE, "Linear needs an input with at least 1 dimension, got a scalar");
    if (x->dims[x->ndim - 1] != o->in)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "input %s has %lld features in its last dimension, but in_features is "
                         "%lld (shapes cannot be multiplied: %lld x %lld and %lld x %lld)",
                         cnni_shape_str(x, sb, sizeof sb), (long long)x->dims[x->ndim - 1],
                         (long long)o->in, (long long)(cnni_numel(x) / (x->dims[x->ndim - 1] ? x->dims[x->ndim - 1] : 1)),
                         (long long)x->dims[x->ndim - 1], (long long)o->in, (long long)o->out);
    inf->out[0].shape = *x;
    inf->out[0].shape.dims[x->ndim - 1] = o->out;
    inf->out[0].dtype = CNN_F32;
    inf->macs = (cnni_numel(x) / (o->in ? o->in : 1)) * o->in * o->out;
    inf->work_bytes = cnni_linear_fast_scratch(cnni_gemm_kernel_for((cnni_isa)inf->isa),
                                               cnni_numel(x) / (o->in ? o->in : 1), o->in, inf->threads);
    return CNN_OK;
}

/* Rows of the (M, in_features) matrix the input is viewed as. */
static int64_t rows(const cnni_tensor *x)
{
    int64_t m = 1;
    for (int i = 0; i < x->shape.ndim - 1; i++)
        m *= x->shape.dims[i];
    return m;
}

static cnn_status linear_forward(const cnni_exec *x)
{
    const linear_opts *o = x->opts;
    cnni_linear_fast_forward(cnni_gemm_kernel_for((cnni_isa)x->isa), x->pool, rows(&x->in[0]), o->out,
                             o->in, x->in[0].data, x->param[0], o->bias ? x->param[1] : NULL,
                             x->out[0].data, x->work);
    return CNN_OK;
}

static cnn_status linear_backward(const cnni_exec *x)
{
    const linear_opts *o = x->opts;
    int64_t m = rows(&x->in[0]);
    const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)x->isa);
    if (x->din[0].data)
        cnni_linear_fast_backward_data(k, x->pool, m, o->out, o->in, x->dout[0].data, x->param[0],
                                       x->din[0].data, x->work);
    cnni_linear_fast_backward_weight(k, x->pool, m, o->out, o->in, x->in[0].data, x->dout[0].data,
                                     x->grad[0], o->bias ? x->grad[1] : NULL, x->work);
    return CNN_OK;
}

/* PyTorch: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) for the
 * weight, the same bound for the bias. */
static void linear_reset(const cnni_node *n, float *const *param, void *const *buffer, cnni_rng *rng)
{
    (void)buffer;
    const linear_opts *o = n->opts;
    double bound = o->in > 0 ? 1.0 / sqrt((double)o->in) : 0.0;
    for (int64_t i = 0; i < o->in * o->out; i++)
        param[0][i] = (float)cnni_rng_uniform_range(rng, -bound, bound);
    if (o->bias)
        for (int64_t i = 0; i < o->out; i++)
            param[1][i] = (float)cnni_rng_uniform_range(rng, -bound, bound);
}

const cnni_op cnni_op_Linear = {.name = "Linear",
                                .args = linear_args,
                                .n_required = 2,
                                .inputs = one_input,
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .opts_size = sizeof(linear_opts),
                                .configure = linear_configure,
                                .infer = linear_infer,
                                .reset = linear_reset,
                                .forward = linear_forward,
                                .backward = linear_backward,
                                .per_sample = linear_per_sample};
