/* Anomaly detection (torch.autograd.set_detect_anomaly's counterpart): with
 * it on, every node's outputs are checked for NaN and Inf after its forward,
 * and the gradients it wrote (of its inputs and parameters) after its
 * backward, so that a run fails at the first node that produced a
 * non-finite value instead of at the loss many layers later. It costs one
 * pass over every activation and gradient, so it is off by default. */
#include "graph_internal.h"

#include <math.h>
#include <stdio.h>

cnn_status cnn_graph_set_detect_anomaly(cnn_graph *g, int on)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    g->detect_anomaly = on != 0;
    return CNN_OK;
}

/* Index of the first non-finite element of n floats, or -1. */
static int64_t first_bad(const float *v, int64_t n)
{
    if (!v)
        return -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return -1;
}

/* "node 'fc' (Linear), line 3" (no line for nodes built from C). */
static void describe(const cnni_node *n, char *buf, size_t len)
{
    if (n->line > 0)
        snprintf(buf, len, "node '%s' (%s), line %d", n->name, n->op->name, n->line);
    else
        snprintf(buf, len, "node '%s' (%s)", n->name, n->op->name);
}

static cnn_status report(cnn_graph *g, const cnni_node *n, const char *what, const cnn_shape *s,
                         int64_t at, float v, const char *pass)
{
    char where[600], shape[128];
    describe(n, where, sizeof where);
    cnni_shape_str(s, shape, sizeof shape);
    return cnni_fail(&g->err, CNN_ERR_NUMERIC,
                     "%s%snon-finite value in the %s of %s: element %lld of %s is %g (%s)",
                     n->file ? n->file : "", n->file ? ": " : "", what, where, (long long)at, shape,
                     (double)v, pass);
}

cnn_status cnni_anomaly_forward(cnn_graph *g, int i)
{
    const cnni_node *n = &g->nodes[i];
    const cnni_nodeplan *np = &g->np[i];
    /* A model input is checked by its first reader, so a NaN fed in is not
     * blamed on the first layer. */
    for (int k = 0; k < n->n_in; k++) {
        const cnni_val *v = &g->vals[n->in[k]];
        if (v->producer >= 0 || np->in[k].dtype != CNN_F32)
            continue;
        int64_t at = first_bad(np->in[k].data, cnni_numel(&np->in[k].shape));
        if (at >= 0) {
            char where[600], shape[128];
            describe(n, where, sizeof where);
            cnni_shape_str(&np->in[k].shape, shape, sizeof shape);
            return cnni_fail(&g->err, CNN_ERR_NUMERIC,
                             "non-finite value in model input '%s' (read by %s): element %lld of "
                             "%s is %g (forward)",
                             v->name, where, (long long)at, shape,
                             (double)((const float *)np->in[k].data)[at]);
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        const cnni_tensor *t = &np->out[k];
        if (t->dtype != CNN_F32)
            continue;
        int64_t at = first_bad(t->data, cnni_numel(&t->shape));
        if (at >= 0)
            return report(g, n, n->n_out > 1 ? "outputs" : "output", &t->shape, at,
                          ((const float *)t->data)[at], "forward");
    }
    return CNN_OK;
}

cnn_status cnni_anomaly_backward(cnn_graph *g, int i)
{
    const cnni_node *n = &g->nodes[i];
    const cnni_nodeplan *np = &g->np[i];
    for (int k = 0; k < n->n_in; k++) {
        const cnni_tensor *t = &np->din[k];
        if (!t->data)
            continue;
        int64_t at = first_bad(t->data, cnni_numel(&t->shape));
        if (at >= 0) {
            char what[300];
            snprintf(what, sizeof what, "gradient of input %d ('%s')", k, g->vals[n->in[k]].name);
            return report(g, n, what, &t->shape, at, ((const float *)t->data)[at], "backward");
        }
    }
    float *grad[CNNI_MAX_PARAMS];
    cnni_node_param_ptrs(g, n, NULL, grad, NULL);
    for (int d = 0; d < n->n_params; d++) {
        const cnni_pentry *p = &g->params[n->params[d].index];
        if (p->kind != CNN_PARAM || !grad[d])
            continue;
        int64_t at = first_bad(grad[d], p->numel);
        if (at >= 0) {
            char what[300];
            snprintf(what, sizeof what, "gradient of parameter '%s'", p->name);
            return report(g, n, what, &p->shape, at, grad[d][at], "backward");
        }
    }
    return CNN_OK;
}
