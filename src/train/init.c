/* Parameter initialisation as torch.nn.init, called by name on a graph's
 * parameter: "kaiming_normal_(mode='fan_out', nonlinearity='relu')". */
#include "train_internal.h"

#include <math.h>
#include <string.h>

static const char *const xavier_args[] = {"gain", NULL};
static const char *const kaiming_args[] = {"a", "mode", "nonlinearity", NULL};
static const char *const constant_args[] = {"val", NULL};
static const char *const uniform_args[] = {"a", "b", NULL};
static const char *const normal_args[] = {"mean", "std", NULL};
static const char *const no_args[] = {NULL};

/* torch.nn.init.calculate_gain */
static cnn_status gain_of(const cnni_args *a, int k, const char *nl, double param, int param_given,
                          double *gain)
{
    static const char *linear[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                   "conv_transpose2d", "conv_transpose3d", "sigmoid"};
    for (size_t i = 0; i < sizeof linear / sizeof linear[0]; i++)
        if (strcmp(nl, linear[i]) == 0) {
            *gain = 1;
            return CNN_OK;
        }
    if (strcmp(nl, "tanh") == 0)
        *gain = 5.0 / 3;
    else if (strcmp(nl, "relu") == 0)
        *gain = sqrt(2.0);
    else if (strcmp(nl, "leaky_relu") == 0) {
        double slope = param_given ? param : 0.01;
        *gain = sqrt(2.0 / (1 + slope * slope));
    } else if (strcmp(nl, "selu") == 0)
        *gain = 3.0 / 4;
    else
        return cnni_arg_fail(a, k, "Unsupported nonlinearity %s", nl);
    return CNN_OK;
}

cnn_status cnn_graph_init_param(cnn_graph *g, const char *name, const char *init, cnn_rng *rng)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &g->err;
    cnni_err_clear(e);
    if (!name || !init || !rng)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_graph_init_param: name, init and rng are required");
    int idx = -1;
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i].name, name) == 0)
            idx = i;
    if (idx < 0)
        return cnni_fail(e, CNN_ERR_NOT_FOUND, "the model has no parameter or buffer '%s'", name);
    const cnni_pentry *p = &g->params[idx];
    if (p->dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "'%s' is not a float tensor", name);
    cnn_param_info info;
    cnn_graph_param(g, idx, &info);
    float *w = info.data;
    cnni_model_ast ast;
    cnn_status st = cnni_model_parse_call(init, "init", &ast, e);
    if (st)
        return st;
    const cnni_value *call = ast.stmts[0].call;
    const char *fn = call ? call->s : "";
    if (strncmp(fn, "torch.nn.init.", 14) == 0)
        fn += 14;
    else if (strncmp(fn, "nn.init.", 8) == 0)
        fn += 8;
    else if (strncmp(fn, "init.", 5) == 0)
        fn += 5;
    /* Fans as torch.nn.init._calculate_fan_in_and_fan_out. */
    const cnn_shape *s = &p->shape;
    int64_t rf = 1;
    for (int i = 2; i < s->ndim; i++)
        rf *= s->dims[i];
    double fan_in = s->ndim >= 2 ? (double)(s->dims[1] * rf) : 0;
    double fan_out = s->ndim >= 2 ? (double)(s->dims[0] * rf) : 0;
    int needs_fans = strncmp(fn, "xavier", 6) == 0 || strncmp(fn, "kaiming", 7) == 0;
    cnni_args a;
    cnni_op fake;
    int64_t n = p->numel;
    if (!call || ast.stmts[0].ntargets || ast.stmts[0].has_fwd) {
        st = cnni_fail(e, CNN_ERR_PARSE, "init: give one call, e.g. \"xavier_uniform_()\"");
    } else if (needs_fans && s->ndim < 2) {
        st = cnni_fail(e, CNN_ERR_SHAPE,
                       "%s: Fan in and fan out can not be computed for tensor with fewer than 2 "
                       "dimensions ('%s' has %d)",
                       fn, name, s->ndim);
    } else if (strcmp(fn, "xavier_uniform_") == 0 || strcmp(fn, "xavier_normal_") == 0) {
        double gain;
        if (!(st = cnni_bind_spec(call, xavier_args, 0, "init", &a, &fake, e)) &&
            !(st = cnni_arg_float(&a, 0, 1.0, &gain))) {
            double std = gain * sqrt(2.0 / (fan_in + fan_out));
            if (fn[7] == 'u') {
                double bound = sqrt(3.0) * std;
                for (int64_t i = 0; i < n; i++)
                    w[i] = (float)cnni_rng_uniform_range(rng, -bound, bound);
            } else {
                for (int64_t i = 0; i < n; i++)
                    w[i] = (float)(std * cnni_rng_normal(rng));
            }
        }
    } else if (strcmp(fn, "kaiming_uniform_") == 0 || strcmp(fn, "kaiming_normal_") == 0) {
        double slope, gain = 1;
        const char *mode, *nl;
        if (!(st = cnni_bind_spec(call, kaiming_args, 0, "init", &a, &fake, e)) &&
            !(st = cnni_arg_float(&a, 0, 0, &slope)) && !(st = cnni_arg_str(&a, 1, "fan_in", &mode)) &&
            !(st = cnni_arg_str(&a, 2, "leaky_relu", &nl))) {
            if (strcmp(mode, "fan_in") != 0 && strcmp(mode, "fan_out") != 0)
                st = cnni_arg_fail(&a, 1, "Mode %s not supported, please use one of fan_in, fan_out", mode);
            else
                st = gain_of(&a, 2, nl, slope, 1, &gain);
        }
        if (!st) {
            double fan = mode[4] == 'i' ? fan_in : fan_out;
            double std = fan > 0 ? gain / sqrt(fan) : 0;
            if (fn[8] == 'u') {
                double bound = sqrt(3.0) * std;
                for (int64_t i = 0; i < n; i++)
                    w[i] = (float)cnni_rng_uniform_range(rng, -bound, bound);
            } else {
                for (int64_t i = 0; i < n; i++)
                    w[i] = (float)(std * cnni_rng_normal(rng));
            }
        }
    } else if (strcmp(fn, "constant_") == 0) {
        double v;
        if (!(st = cnni_bind_spec(call, constant_args, 1, "init", &a, &fake, e)) &&
            !(st = cnni_arg_float(&a, 0, 0, &v)))
            for (int64_t i = 0; i < n; i++)
                w[i] = (float)v;
    } else if (strcmp(fn, "zeros_") == 0 || strcmp(fn, "ones_") == 0) {
        if (!(st = cnni_bind_spec(call, no_args, 0, "init", &a, &fake, e)))
            for (int64_t i = 0; i < n; i++)
                w[i] = fn[0] == 'o' ? 1.0f : 0.0f;
    } else if (strcmp(fn, "uniform_") == 0) {
        double lo, hi;
        if (!(st = cnni_bind_spec(call, uniform_args, 0, "init", &a, &fake, e)) &&
            !(st = cnni_arg_float(&a, 0, 0, &lo)) && !(st = cnni_arg_float(&a, 1, 1, &hi)))
            for (int64_t i = 0; i < n; i++)
                w[i] = (float)cnni_rng_uniform_range(rng, lo, hi);
    } else if (strcmp(fn, "normal_") == 0) {
        double mean, std;
        if (!(st = cnni_bind_spec(call, normal_args, 0, "init", &a, &fake, e)) &&
            !(st = cnni_arg_float(&a, 0, 0, &mean)) && !(st = cnni_arg_float(&a, 1, 1, &std)))
            for (int64_t i = 0; i < n; i++)
                w[i] = (float)(mean + std * cnni_rng_normal(rng));
    } else {
        st = cnni_fail(e, CNN_ERR_CONFIG,
                       "init: unknown initialiser '%s' (xavier_uniform_, xavier_normal_, "
                       "kaiming_uniform_, kaiming_normal_, constant_, zeros_, ones_, uniform_, normal_)",
                       fn);
    }
    cnni_model_ast_free(&ast);
    return st;
}
