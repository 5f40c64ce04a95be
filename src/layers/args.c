/* Binding a module call's arguments to the module's signature (as Python
 * does), and typed getters that report mistakes at the argument's position. */
#include "layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int n_sig(const cnni_op *op)
{
    int n = 0;
    while (op->args && op->args[n])
        n++;
    return n;
}

cnn_status cnni_bind_args(const cnni_op *op, const cnni_value *call, const char *file,
                          cnni_args *out, cnn_err *e)
{
    memset(out, 0, sizeof *out);
    out->op = op;
    out->file = file;
    out->line = call->line;
    out->col = call->col;
    out->e = e;
    int nsig = n_sig(op);
    int pos = 0;
    if (op->any_args)
        return CNN_OK;
    for (int i = 0; i < call->nargs; i++) {
        const cnni_arg *a = &call->args[i];
        int k = -1;
        if (!a->key) {
            if (pos >= nsig)
                return cnni_fail(e, CNN_ERR_CONFIG,
                                 "%s:%d:%d: %s() takes at most %d positional argument%s (%d given)",
                                 file, a->line, a->col, op->name, nsig, nsig == 1 ? "" : "s",
                                 call->nargs);
            k = pos++;
        } else {
            for (int j = 0; j < nsig; j++)
                if (strcmp(op->args[j], a->key) == 0)
                    k = j;
            if (k < 0) {
                char known[512];
                size_t used = 0;
                known[0] = 0;
                for (int j = 0; j < nsig && used < sizeof known; j++)
                    used += (size_t)snprintf(known + used, sizeof known - used, "%s%s",
                                             j ? ", " : "", op->args[j]);
                return cnni_fail(e, CNN_ERR_CONFIG,
                                 "%s:%d:%d: %s() got an unexpected keyword argument '%s' (it takes: "
                                 "%s)",
                                 file, a->line, a->col, op->name, a->key,
                                 nsig ? known : "no arguments");
            }
        }
        if (out->slot[k])
            return cnni_fail(e, CNN_ERR_CONFIG, "%s:%d:%d: %s() got multiple values for argument '%s'",
                             file, a->line, a->col, op->name, op->args[k]);
        out->slot[k] = a->val;
    }
    for (int k = 0; k < op->n_required; k++)
        if (!out->slot[k])
            return cnni_fail(e, CNN_ERR_CONFIG, "%s:%d:%d: %s() missing required argument '%s'", file,
                             call->line, call->col, op->name, op->args[k]);
    return CNN_OK;
}

cnn_status cnni_arg_fail(const cnni_args *a, int k, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = a->line, col = a->col;
    if (k >= 0 && a->slot[k]) {
        line = a->slot[k]->line;
        col = a->slot[k]->col;
    }
    return cnni_fail(a->e, CNN_ERR_CONFIG, "%s:%d:%d: %s: %s", a->file, line, col, a->op->name, msg);
}

static cnn_status type_error(const cnni_args *a, int k, const char *expected)
{
    char got[96];
    cnni_value_describe(a->slot[k], got, sizeof got);
    return cnni_arg_fail(a, k, "argument '%s' must be %s, got %s (%s)", a->op->args[k], expected,
                         cnni_vkind_name(a->slot[k]->kind), got);
}

int cnni_arg_given(const cnni_args *a, int k) { return a->slot[k] != NULL; }

int cnni_arg_is_none(const cnni_args *a, int k)
{
    return a->slot[k] && a->slot[k]->kind == CNNI_V_NONE;
}

cnn_status cnni_arg_int(const cnni_args *a, int k, int64_t def, int64_t *out)
{
    const cnni_value *v = a->slot[k];
    if (!v) {
        *out = def;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_INT)
        return type_error(a, k, "an int");
    *out = v->i;
    return CNN_OK;
}

cnn_status cnni_arg_float(const cnni_args *a, int k, double def, double *out)
{
    const cnni_value *v = a->slot[k];
    if (!v) {
        *out = def;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_INT && v->kind != CNNI_V_FLOAT && v->kind != CNNI_V_BOOL)
        return type_error(a, k, "a number");
    *out = v->kind == CNNI_V_FLOAT ? v->f : (double)v->i;
    return CNN_OK;
}

cnn_status cnni_arg_bool(const cnni_args *a, int k, int def, int *out)
{
    const cnni_value *v = a->slot[k];
    if (!v) {
        *out = def;
        return CNN_OK;
    }
    /* Python truthiness, as PyTorch's "if bias:" sees it, for ints too. */
    if (v->kind == CNNI_V_BOOL || v->kind == CNNI_V_INT) {
        *out = v->i != 0;
        return CNN_OK;
    }
    return type_error(a, k, "True or False");
}

cnn_status cnni_arg_str(const cnni_args *a, int k, const char *def, const char **out)
{
    const cnni_value *v = a->slot[k];
    if (!v) {
        *out = def;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_STR)
        return type_error(a, k, "a string");
    *out = v->s;
    return CNN_OK;
}

cnn_status cnni_arg_ints(const cnni_args *a, int k, int n, int64_t def, int64_t *out)
{
    const cnni_value *v = a->slot[k];
    if (!v) {
        for (int i = 0; i < n; i++)
            out[i] = def;
        return CNN_OK;
    }
    char expected[64];
    if (n == 1)
        snprintf(expected, sizeof expected, "an int or a tuple of 1 int");
    else
        snprintf(expected, sizeof expected, "an int or a tuple of %d ints", n);
    if (v->kind == CNNI_V_INT) {
        for (int i = 0; i < n; i++)
            out[i] = v->i;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST)
        return type_error(a, k, expected);
    if (v->n != n)
        return cnni_arg_fail(a, k, "argument '%s' must be %s, got %d value%s", a->op->args[k],
                             expected, v->n, v->n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        if (v->items[i]->kind != CNNI_V_INT)
            return cnni_arg_fail(a, k, "argument '%s' must be %s, but item %d is %s", a->op->args[k],
                                 expected, i, cnni_vkind_name(v->items[i]->kind));
        out[i] = v->items[i]->i;
    }
    return CNN_OK;
}

cnn_status cnni_arg_int_list(const cnni_args *a, int k, int max, int64_t *out, int *count)
{
    const cnni_value *v = a->slot[k];
    *count = 0;
    if (!v)
        return CNN_OK;
    if (v->kind == CNNI_V_INT) {
        out[0] = v->i;
        *count = 1;
        return CNN_OK;
    }
    if (v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST)
        return type_error(a, k, "an int or a tuple of ints");
    if (v->n < 1 || v->n > max)
        return cnni_arg_fail(a, k, "argument '%s' must have 1 to %d values, got %d", a->op->args[k],
                             max, v->n);
    for (int i = 0; i < v->n; i++) {
        if (v->items[i]->kind != CNNI_V_INT)
            return cnni_arg_fail(a, k, "argument '%s': item %d is %s, expected an int",
                                 a->op->args[k], i, cnni_vkind_name(v->items[i]->kind));
        out[i] = v->items[i]->i;
    }
    *count = v->n;
    return CNN_OK;
}

cnn_status cnni_arg_device_dtype(const cnni_args *a, int k_device, int k_dtype)
{
    if (k_device >= 0 && a->slot[k_device]) {
        const cnni_value *v = a->slot[k_device];
        int ok = v->kind == CNNI_V_NONE || (v->kind == CNNI_V_STR && strcmp(v->s, "cpu") == 0);
        if (!ok)
            return cnni_arg_fail(a, k_device, "device must be None or 'cpu' (cnn runs on the CPU)");
    }
    if (k_dtype >= 0 && a->slot[k_dtype]) {
        const cnni_value *v = a->slot[k_dtype];
        int ok = v->kind == CNNI_V_NONE ||
                 (v->kind == CNNI_V_NAME &&
                  (strcmp(v->s, "torch.float32") == 0 || strcmp(v->s, "torch.float") == 0));
        if (!ok)
            return cnni_arg_fail(a, k_dtype, "dtype must be None or torch.float32 (cnn computes in float32)");
    }
    return CNN_OK;
}

int cnni_node_param(cnni_node *n, const char *attr, cnn_param_kind kind, cnn_dtype dtype, int ndim,
                    const int64_t *dims)
{
    int i = n->n_params++;
    cnni_param_decl *p = &n->params[i];
    p->attr = attr;
    p->kind = kind;
    p->dtype = dtype;
    p->shape = cnni_shape_make(ndim, dims);
    p->index = -1;
    return i;
}
