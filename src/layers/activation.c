/* Activations: Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, RReLU, Softmax,
 * LogSoftmax, ELU, GELU, SiLU, ReLU6, Hardtanh, Hardsigmoid, Hardswish and
 * Softplus, on inputs of any rank.
 *
 * `inplace` is accepted with PyTorch's meaning of a truth value; cnn keeps
 * every value in its own buffer, so it changes no result. It matters in one
 * place: PyTorch's in-place LeakyReLU, ELU and eval-mode RReLU compute their
 * gradient from the output, which it refuses to do for a negative slope, so
 * their backward fails here too (forward-only use is fine, as in PyTorch). */
#include "layer.h"
#include "../kernels/act_fast.h"
#include "../kernels/ref/activation_ref.h"

#include <math.h>
#include <string.h>

static const char *const one_input[] = {"input", NULL};
static const char *const no_args[] = {NULL};
static const char *const inplace_args[] = {"inplace", NULL};

/* Bytes in front of the saved per-element data: how the forward ran, which
 * the backward needs because it is always called in training mode. */
#define SAVED_HEADER 64

/* PyTorch tests inplace only for truth ("if self.inplace"), so any plain
 * value is accepted with Python's truthiness. */
static cnn_status arg_truth(const cnni_args *a, int k, int *out)
{
    const cnni_value *v = a->slot[k];
    *out = 0;
    if (!v)
        return CNN_OK;
    switch (v->kind) {
    case CNNI_V_NONE: *out = 0; return CNN_OK;
    case CNNI_V_BOOL:
    case CNNI_V_INT: *out = v->i != 0; return CNN_OK;
    case CNNI_V_FLOAT: *out = v->f != 0; return CNN_OK;
    case CNNI_V_STR: *out = v->s[0] != 0; return CNN_OK;
    case CNNI_V_TUPLE:
    case CNNI_V_LIST: *out = v->n != 0; return CNN_OK;
    default: break;
    }
    char got[96];
    cnni_value_describe(v, got, sizeof got);
    return cnni_arg_fail(a, k, "argument '%s' must be True or False, got %s (%s)", a->op->args[k],
                         cnni_vkind_name(v->kind), got);
}

static cnn_status check_input(const cnni_infer *inf, const char *op, cnn_err *e)
{
    if (inf->in[0].dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_SHAPE, "%s expects a float32 input, got %s", op,
                         cnn_dtype_name(inf->in[0].dtype));
    return CNN_OK;
}

/* ==== elementwise activations ============================================ */

typedef struct elem_opts {
    cnni_act act;
    int inplace;
} elem_opts;

/* Elementwise: any rows on their own. */
static int elem_per_sample(const cnni_node *n, const cnn_shape *in)
{
    (void)n;
    (void)in;
    return 1;
}

/* The channels are dim 1 from 2 dims on. */
static int batched_per_sample(const cnni_node *n, const cnn_shape *in)
{
    (void)n;
    return in->ndim >= 2;
}

static cnn_status elem_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    cnn_status st = check_input(inf, n->op->name, e);
    if (st)
        return st;
    inf->out[0].shape = inf->in[0].shape;
    inf->out[0].dtype = CNN_F32;
    return CNN_OK;
}

static cnn_status elem_forward(const cnni_exec *x)
{
    const elem_opts *o = x->opts;
    if (x->pool_geom) /* fused with the average pooling that reads it (graph plan) */
        cnni_act_fast_forward_avgpool(x->isa, x->pool, &o->act, x->pool_geom, x->in[0].data, x->out[0].data,
                                      x->pool_out);
    else if (cnni_act_fast_supported(&o->act))
        cnni_act_fast_forward(x->isa, x->pool, &o->act, cnni_numel(&x->in[0].shape), x->in[0].data,
                              x->out[0].data);
    else
        cnni_ref_act_forward_f32(&o->act, cnni_numel(&x->in[0].shape), x->in[0].data, x->out[0].data);
    return CNN_OK;
}

static cnn_status elem_backward(const cnni_exec *x)
{
    const elem_opts *o = x->opts;
    if (o->inplace && o->act.kind == CNNI_ACT_LEAKY_RELU && o->act.a < 0)
        return cnni_fail(x->e, CNN_ERR_CONFIG,
                         "in-place LeakyReLU (inplace=True) with a negative negative_slope (%g) "
                         "has no backward in PyTorch; use inplace=False",
                         o->act.a);
    if (o->inplace && o->act.kind == CNNI_ACT_ELU && o->act.a < 0)
        return cnni_fail(x->e, CNN_ERR_CONFIG,
                         "in-place ELU (inplace=True) with a negative alpha (%g) has no backward "
                         "in PyTorch; use inplace=False",
                         o->act.a);
    if (!x->din[0].data)
        return CNN_OK;
    if (x->pool_geom) /* dout[0] is the fused pooling's output gradient */
        cnni_act_fast_backward_avgpool(x->isa, x->pool, &o->act, x->pool_geom, x->in[0].data, x->out[0].data,
                                       x->dout[0].data, x->din[0].data);
    else if (cnni_act_fast_supported(&o->act))
        cnni_act_fast_backward(x->isa, x->pool, &o->act, cnni_numel(&x->in[0].shape), x->in[0].data,
                               x->out[0].data, x->dout[0].data, x->din[0].data);
    else
        cnni_ref_act_backward_f32(&o->act, cnni_numel(&x->in[0].shape), x->in[0].data, x->out[0].data,
                                  x->dout[0].data, x->din[0].data);
    return CNN_OK;
}

int cnni_act_pool_fusable(const cnni_node *n)
{
    if (n->op->forward != elem_forward)
        return 0;
    const elem_opts *o = n->opts;
    return !o->inplace && cnni_act_fast_supported(&o->act);
}

int cnni_act_grad_from_output(const cnni_node *n, const cnni_act **act)
{
    if (n->op->forward != elem_forward)
        return 0;
    const elem_opts *o = n->opts;
    if (o->inplace || (o->act.kind != CNNI_ACT_SIGMOID && o->act.kind != CNNI_ACT_TANH))
        return 0;
    *act = &o->act;
    return 1;
}

static cnn_status simple_configure(cnni_node *n, cnni_act_kind kind, double a, double b)
{
    elem_opts *o = n->opts;
    o->act.kind = kind;
    o->act.a = a;
    o->act.b = b;
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status sigmoid_configure(cnni_node *n, const cnni_args *a)
{
    (void)a;
    return simple_configure(n, CNNI_ACT_SIGMOID, 0, 0);
}

static cnn_status tanh_configure(cnni_node *n, const cnni_args *a)
{
    (void)a;
    return simple_configure(n, CNNI_ACT_TANH, 0, 0);
}

/* Modules whose only argument is inplace. */
static cnn_status inplace_configure(cnni_node *n, const cnni_args *a, cnni_act_kind kind, double lo,
                                    double hi)
{
    elem_opts *o = n->opts;
    cnn_status st = arg_truth(a, 0, &o->inplace);
    if (st)
        return st;
    return simple_configure(n, kind, lo, hi);
}

static cnn_status relu_configure(cnni_node *n, const cnni_args *a)
{
    return inplace_configure(n, a, CNNI_ACT_RELU, 0, 0);
}

static cnn_status silu_configure(cnni_node *n, const cnni_args *a)
{
    return inplace_configure(n, a, CNNI_ACT_SILU, 0, 0);
}

static cnn_status relu6_configure(cnni_node *n, const cnni_args *a)
{
    return inplace_configure(n, a, CNNI_ACT_HARDTANH, 0.0, 6.0);
}

static cnn_status hardsigmoid_configure(cnni_node *n, const cnni_args *a)
{
    return inplace_configure(n, a, CNNI_ACT_HARDSIGMOID, 0, 0);
}

static cnn_status hardswish_configure(cnni_node *n, const cnni_args *a)
{
    return inplace_configure(n, a, CNNI_ACT_HARDSWISH, 0, 0);
}

static const char *const leaky_args[] = {"negative_slope", "inplace", NULL};

static cnn_status leaky_configure(cnni_node *n, const cnni_args *a)
{
    elem_opts *o = n->opts;
    double slope;
    cnn_status st;
    if ((st = cnni_arg_float(a, 0, 0.01, &slope)) || (st = arg_truth(a, 1, &o->inplace)))
        return st;
    return simple_configure(n, CNNI_ACT_LEAKY_RELU, slope, 0);
}

static const char *const elu_args[] = {"alpha", "inplace", NULL};

static cnn_status elu_configure(cnni_node *n, const cnni_args *a)
{
    elem_opts *o = n->opts;
    double alpha;
    cnn_status st;
    if ((st = cnni_arg_float(a, 0, 1.0, &alpha)) || (st = arg_truth(a, 1, &o->inplace)))
        return st;
    return simple_configure(n, CNNI_ACT_ELU, alpha, 0);
}

static const char *const gelu_args[] = {"approximate", NULL};

static cnn_status gelu_configure(cnni_node *n, const cnni_args *a)
{
    const char *s;
    cnn_status st = cnni_arg_str(a, 0, "none", &s);
    if (st)
        return st;
    if (strcmp(s, "none") == 0)
        return simple_configure(n, CNNI_ACT_GELU, 0, 0);
    if (strcmp(s, "tanh") == 0)
        return simple_configure(n, CNNI_ACT_GELU_TANH, 0, 0);
    return cnni_arg_fail(a, 0, "approximate argument must be either 'none' or 'tanh', got '%s'", s);
}

enum { H_MIN, H_MAX, H_INPLACE, H_MIN_VALUE, H_MAX_VALUE };
static const char *const hardtanh_args[] = {"min_val", "max_val", "inplace", "min_value",
                                            "max_value", NULL};

static cnn_status hardtanh_configure(cnni_node *n, const cnni_args *a)
{
    elem_opts *o = n->opts;
    double lo, hi;
    cnn_status st;
    if ((st = cnni_arg_float(a, H_MIN, -1.0, &lo)) || (st = cnni_arg_float(a, H_MAX, 1.0, &hi)) ||
        (st = arg_truth(a, H_INPLACE, &o->inplace)))
        return st;
    /* The deprecated aliases override min_val / max_val unless None. */
    if (cnni_arg_given(a, H_MIN_VALUE) && !cnni_arg_is_none(a, H_MIN_VALUE) &&
        (st = cnni_arg_float(a, H_MIN_VALUE, lo, &lo)))
        return st;
    if (cnni_arg_given(a, H_MAX_VALUE) && !cnni_arg_is_none(a, H_MAX_VALUE) &&
        (st = cnni_arg_float(a, H_MAX_VALUE, hi, &hi)))
        return st;
    if (!(hi > lo))
        return cnni_arg_fail(a, H_MAX, "max_val must be greater than min_val, got min_val=%g and "
                                       "max_val=%g",
                             lo, hi);
    return simple_configure(n, CNNI_ACT_HARDTANH, lo, hi);
}

static const char *const softplus_args[] = {"beta", "threshold", NULL};

static cnn_status softplus_configure(cnni_node *n, const cnni_args *a)
{
    double beta, threshold;
    cnn_status st;
    if ((st = cnni_arg_float(a, 0, 1.0, &beta)) || (st = cnni_arg_float(a, 1, 20.0, &threshold)))
        return st;
    return simple_configure(n, CNNI_ACT_SOFTPLUS, beta, threshold);
}

#define ELEM_OP(NAME, sig, cfg)                                                                    \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = sig,                                                   \
                                    .n_required = 0,                                               \
                                    .inputs = one_input,                                           \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .opts_size = sizeof(elem_opts),                                \
                                    .configure = cfg,                                              \
                                    .infer = elem_infer,                                           \
                                    .forward = elem_forward,                                       \
                                    .backward = elem_backward,                                     \
                                    .per_sample = elem_per_sample};

ELEM_OP(Sigmoid, no_args, sigmoid_configure)
ELEM_OP(Tanh, no_args, tanh_configure)
ELEM_OP(ReLU, inplace_args, relu_configure)
ELEM_OP(LeakyReLU, leaky_args, leaky_configure)
ELEM_OP(ELU, elu_args, elu_configure)
ELEM_OP(GELU, gelu_args, gelu_configure)
ELEM_OP(SiLU, inplace_args, silu_configure)
ELEM_OP(ReLU6, inplace_args, relu6_configure)
ELEM_OP(Hardtanh, hardtanh_args, hardtanh_configure)
ELEM_OP(Hardsigmoid, inplace_args, hardsigmoid_configure)
ELEM_OP(Hardswish, inplace_args, hardswish_configure)
ELEM_OP(Softplus, softplus_args, softplus_configure)

/* ==== PReLU ============================================================== */

typedef struct prelu_opts {
    int64_t num;
    double init;
} prelu_opts;

enum { P_NUM, P_INIT, P_DEVICE, P_DTYPE };
static const char *const prelu_args[] = {"num_parameters", "init", "device", "dtype", NULL};

static cnn_status prelu_configure(cnni_node *n, const cnni_args *a)
{
    prelu_opts *o = n->opts;
    cnn_status st;
    if ((st = cnni_arg_int(a, P_NUM, 1, &o->num)) || (st = cnni_arg_float(a, P_INIT, 0.25, &o->init)) ||
        (st = cnni_arg_device_dtype(a, P_DEVICE, P_DTYPE)))
        return st;
    if (o->num < 0)
        return cnni_arg_fail(a, P_NUM, "num_parameters must not be negative (a weight of shape "
                                       "[%lld] cannot exist), got %lld",
                             (long long)o->num, (long long)o->num);
    if (o->num > CNNI_MAX_NUMEL)
        return cnni_arg_fail(a, P_NUM, "num_parameters %lld is too large", (long long)o->num);
    cnni_node_param(n, "weight", CNN_PARAM, CNN_F32, 1, &o->num);
    n->n_out = 1;
    return CNN_OK;
}

/* PyTorch's rule: one weight is shared by every element; otherwise there is
 * one per channel (dim 1, or 1 channel for a 1-d input). */
static cnn_status prelu_geom(const prelu_opts *o, const cnn_shape *s, cnni_axis_geom *g, cnn_err *e)
{
    char sb[128];
    if (o->num == 1) {
        g->outer = 1;
        g->C = 1;
        g->inner = cnni_numel(s);
        return CNN_OK;
    }
    if (s->ndim == 0)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "a zero-dim input is not allowed with num_parameters=%lld (more than one "
                         "weight needs a channel dimension)",
                         (long long)o->num);
    int64_t channels = s->ndim > 1 ? s->dims[1] : 1;
    if (channels != o->num)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "mismatch of parameter numbers and input channel size: num_parameters=%lld "
                         "but input %s has %lld channel%s (dim 1%s)",
                         (long long)o->num, cnni_shape_str(s, sb, sizeof sb), (long long)channels,
                         channels == 1 ? "" : "s", s->ndim > 1 ? "" : "; a 1-d input has one");
    g->outer = s->ndim > 1 ? s->dims[0] : 1;
    g->C = channels;
    g->inner = 1;
    for (int i = 2; i < s->ndim; i++)
        g->inner *= s->dims[i];
    return CNN_OK;
}

static cnn_status prelu_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    cnni_axis_geom g;
    cnn_status st = check_input(inf, "PReLU", e);
    if (st || (st = prelu_geom(n->opts, &inf->in[0].shape, &g, e)))
        return st;
    inf->out[0].shape = inf->in[0].shape;
    inf->out[0].dtype = CNN_F32;
    return CNN_OK;
}

static cnn_status prelu_forward(const cnni_exec *x)
{
    cnni_axis_geom g;
    cnn_status st = prelu_geom(x->opts, &x->in[0].shape, &g, x->e);
    if (st)
        return st;
    cnni_ref_prelu_forward_f32(&g, x->in[0].data, x->param[0], x->out[0].data);
    return CNN_OK;
}

static cnn_status prelu_backward(const cnni_exec *x)
{
    cnni_axis_geom g;
    cnn_status st = prelu_geom(x->opts, &x->in[0].shape, &g, x->e);
    if (st)
        return st;
    cnni_ref_prelu_backward_f32(&g, x->in[0].data, x->param[0], x->dout[0].data, x->din[0].data,
                                x->grad[0]);
    return CNN_OK;
}

static void prelu_reset(const cnni_node *n, float *const *param, void *const *buffer, cnni_rng *rng)
{
    (void)buffer;
    (void)rng;
    const prelu_opts *o = n->opts;
    for (int64_t i = 0; i < o->num; i++)
        param[0][i] = (float)o->init;
}

const cnni_op cnni_op_PReLU = {.name = "PReLU",
                               .args = prelu_args,
                               .n_required = 0,
                               .inputs = one_input,
                               .min_inputs = 1,
                               .max_inputs = 1,
                               .opts_size = sizeof(prelu_opts),
                               .configure = prelu_configure,
                               .infer = prelu_infer,
                               .reset = prelu_reset,
                               .forward = prelu_forward,
                               .backward = prelu_backward,
                               .per_sample = batched_per_sample};

/* ==== RReLU ============================================================== *
 * Training: a slope per element drawn uniformly from [lower, upper] for the
 * elements <= 0 (1 for the others), kept in `saved` for the backward, which
 * multiplies by the same slopes. Eval: LeakyReLU with (lower + upper) / 2. */

typedef struct rrelu_opts {
    double lower, upper;
    int inplace;
} rrelu_opts;

enum { RR_EVAL = 0, RR_TRAIN = 1 };

static const char *const rrelu_args[] = {"lower", "upper", "inplace", NULL};

static cnn_status rrelu_configure(cnni_node *n, const cnni_args *a)
{
    rrelu_opts *o = n->opts;
    cnn_status st;
    if ((st = cnni_arg_float(a, 0, 1.0 / 8, &o->lower)) ||
        (st = cnni_arg_float(a, 1, 1.0 / 3, &o->upper)) || (st = arg_truth(a, 2, &o->inplace)))
        return st;
    if (!(o->lower <= o->upper))
        return cnni_arg_fail(a, 0, "lower bound should be less than or equal to the upper bound, "
                                   "got lower=%g and upper=%g",
                             o->lower, o->upper);
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status rrelu_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    cnn_status st = check_input(inf, "RReLU", e);
    if (st)
        return st;
    inf->out[0].shape = inf->in[0].shape;
    inf->out[0].dtype = CNN_F32;
    if (inf->backward) {
        int64_t bytes;
        if (!cnni_mul_ok(cnni_numel(&inf->in[0].shape), (int64_t)sizeof(float), &bytes) ||
            !cnni_add_ok(bytes, SAVED_HEADER, &bytes))
            return cnni_fail(e, CNN_ERR_OVERFLOW, "RReLU's saved slopes are too large");
        inf->saved_bytes = (size_t)bytes;
    }
    return CNN_OK;
}

static cnni_act rrelu_eval_act(const rrelu_opts *o)
{
    cnni_act act = {CNNI_ACT_LEAKY_RELU, (o->lower + o->upper) / 2, 0};
    return act;
}

static cnn_status rrelu_forward(const cnni_exec *x)
{
    const rrelu_opts *o = x->opts;
    int64_t n = cnni_numel(&x->in[0].shape);
    const float *in = x->in[0].data;
    float *out = x->out[0].data;
    int32_t *mode = x->saved;
    if (mode)
        *mode = x->training ? RR_TRAIN : RR_EVAL;
    if (!x->training) {
        cnni_act act = rrelu_eval_act(o);
        cnni_ref_act_forward_f32(&act, n, in, out);
        return CNN_OK;
    }
    /* Without a backward the slopes are drawn straight into the output. */
    float *slope = mode ? (float *)((char *)x->saved + SAVED_HEADER) : out;
    for (int64_t i = 0; i < n; i++)
        slope[i] = in[i] <= 0 ? (float)cnni_rng_uniform_range(x->rng, o->lower, o->upper) : 1.0f;
    cnni_ref_block_scale_f32(n, 1, in, slope, out);
    return CNN_OK;
}

static cnn_status rrelu_backward(const cnni_exec *x)
{
    const rrelu_opts *o = x->opts;
    int64_t n = cnni_numel(&x->in[0].shape);
    const int32_t *mode = x->saved;
    if (*mode == RR_TRAIN) {
        if (x->din[0].data)
            cnni_ref_block_scale_f32(n, 1, x->dout[0].data,
                                     (const float *)((const char *)x->saved + SAVED_HEADER),
                                     x->din[0].data);
        return CNN_OK;
    }
    cnni_act act = rrelu_eval_act(o);
    if (o->inplace && act.a < 0)
        return cnni_fail(x->e, CNN_ERR_CONFIG,
                         "in-place RReLU (inplace=True) in eval mode with a negative slope "
                         "(lower + upper) / 2 = %g has no backward in PyTorch; use inplace=False",
                         act.a);
    if (x->din[0].data)
        cnni_ref_act_backward_f32(&act, n, x->in[0].data, x->out[0].data, x->dout[0].data,
                                  x->din[0].data);
    return CNN_OK;
}

const cnni_op cnni_op_RReLU = {.name = "RReLU",
                               .args = rrelu_args,
                               .n_required = 0,
                               .inputs = one_input,
                               .min_inputs = 1,
                               .max_inputs = 1,
                               .opts_size = sizeof(rrelu_opts),
                               .configure = rrelu_configure,
                               .infer = rrelu_infer,
                               .forward = rrelu_forward,
                               .backward = rrelu_backward};

/* ==== Softmax, LogSoftmax ================================================ */

typedef struct softmax_opts {
    int64_t dim;
    int dim_none;
    int take_log;
} softmax_opts;

static const char *const softmax_args[] = {"dim", NULL};

static cnn_status softmax_configure_(cnni_node *n, const cnni_args *a, int take_log)
{
    softmax_opts *o = n->opts;
    o->take_log = take_log;
    o->dim_none = !cnni_arg_given(a, 0) || cnni_arg_is_none(a, 0);
    if (!o->dim_none) {
        cnn_status st = cnni_arg_int(a, 0, 0, &o->dim);
        if (st)
            return st;
    }
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status softmax_configure(cnni_node *n, const cnni_args *a)
{
    return softmax_configure_(n, a, 0);
}

static cnn_status log_softmax_configure(cnni_node *n, const cnni_args *a)
{
    return softmax_configure_(n, a, 1);
}

/* dim=None is PyTorch's deprecated implicit choice: dim 0 for 0-, 1- and
 * 3-d inputs, else 1. A 0-d input behaves as one of size 1. */
static cnn_status softmax_geom(const softmax_opts *o, const cnn_shape *s, cnni_axis_geom *g,
                               cnn_err *e)
{
    char sb[128];
    int64_t dim;
    if (o->dim_none) {
        dim = (s->ndim == 0 || s->ndim == 1 || s->ndim == 3) ? 0 : 1;
    } else {
        int64_t range = s->ndim > 0 ? s->ndim : 1;
        if (o->dim < -range || o->dim >= range)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "dimension out of range (expected to be in range of [%lld, %lld], but "
                             "got %lld) for input %s",
                             (long long)-range, (long long)(range - 1), (long long)o->dim,
                             cnni_shape_str(s, sb, sizeof sb));
        dim = o->dim < 0 ? o->dim + range : o->dim;
    }
    g->outer = 1;
    g->C = s->ndim > 0 ? s->dims[dim] : 1;
    g->inner = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (i < dim)
            g->outer *= s->dims[i];
        else if (i > dim)
            g->inner *= s->dims[i];
    }
    return CNN_OK;
}

static cnn_status softmax_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    cnni_axis_geom g;
    cnn_status st = check_input(inf, n->op->name, e);
    if (st || (st = softmax_geom(n->opts, &inf->in[0].shape, &g, e)))
        return st;
    inf->out[0].shape = inf->in[0].shape;
    inf->out[0].dtype = CNN_F32;
    return CNN_OK;
}

static cnn_status softmax_forward(const cnni_exec *x)
{
    const softmax_opts *o = x->opts;
    cnni_axis_geom g;
    cnn_status st = softmax_geom(o, &x->in[0].shape, &g, x->e);
    if (st)
        return st;
    cnni_ref_softmax_forward_f32(&g, o->take_log, x->in[0].data, x->out[0].data);
    return CNN_OK;
}

static cnn_status softmax_backward(const cnni_exec *x)
{
    const softmax_opts *o = x->opts;
    cnni_axis_geom g;
    cnn_status st = softmax_geom(o, &x->in[0].shape, &g, x->e);
    if (st || !x->din[0].data)
        return st;
    cnni_ref_softmax_backward_f32(&g, o->take_log, x->out[0].data, x->dout[0].data, x->din[0].data);
    return CNN_OK;
}

#define SOFTMAX_OP(NAME, cfg)                                                                      \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = softmax_args,                                          \
                                    .n_required = 0,                                               \
                                    .inputs = one_input,                                           \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .opts_size = sizeof(softmax_opts),                             \
                                    .configure = cfg,                                              \
                                    .infer = softmax_infer,                                        \
                                    .forward = softmax_forward,                                    \
                                    .backward = softmax_backward};

SOFTMAX_OP(Softmax, softmax_configure)
SOFTMAX_OP(LogSoftmax, log_softmax_configure)
