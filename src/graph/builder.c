/* Building a graph from C (the functional builder), attaching a loss. */
#include "graph_internal.h"

#include <stdio.h>
#include <string.h>

static int name_taken(const cnn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_vals; i++)
        if (strcmp(g->vals[i].name, name) == 0)
            return 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return 1;
    return 0;
}

cnn_status cnn_graph_add_input(cnn_graph *g, const char *name, const cnn_shape *shape, int *value)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!name || !value)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_add_input: name and value are required");
    if (name_taken(g, name))
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_add_input: '%s' is already defined", name);
    if (shape && (shape->ndim < 0 || shape->ndim >= CNN_MAX_DIMS))
        return cnni_fail(&g->err, CNN_ERR_SHAPE, "input '%s': %d dimensions (at most %d besides the batch)",
                         name, shape->ndim, CNN_MAX_DIMS - 1);
    cnn_shape full = {0, {0}};
    if (shape) {
        full.ndim = shape->ndim + 1;
        full.dims[0] = 1;
        for (int i = 0; i < shape->ndim; i++)
            full.dims[i + 1] = shape->dims[i];
        int64_t numel;
        cnn_status st = cnni_shape_numel(&full, &numel, &g->err, name);
        if (st)
            return st;
    }
    cnni_graph_drop_plan(g);
    int v = cnni_graph_new_input(g, name);
    if (v < 0)
        return cnni_oom(&g->err);
    if (shape) {
        g->vals[v].known = 1;
        g->vals[v].t.shape = full;
        g->vals[v].t.dtype = CNN_F32;
    }
    if (!g->form)
        g->form = 3;
    *value = v;
    return CNN_OK;
}

/* With every input's shape known, infer the new node's at once (batch 1). */
static cnn_status infer_now(cnn_graph *g, int idx)
{
    cnni_node *n = &g->nodes[idx];
    cnni_tensor in[64];
    if (n->n_in > 64)
        return CNN_OK;
    for (int k = 0; k < n->n_in; k++) {
        if (!g->vals[n->in[k]].known)
            return CNN_OK;
        in[k] = g->vals[n->in[k]].t;
        in[k].data = NULL;
    }
    cnni_infer inf;
    cnn_status st = cnni_infer_node(g, idx, in, &inf, 0);
    if (st)
        return st;
    for (int k = 0; k < n->n_out; k++) {
        cnni_val *v = &g->vals[n->out[k]];
        v->known = 1;
        v->t = inf.out[k];
        v->t.data = NULL;
    }
    return CNN_OK;
}

cnn_status cnn_graph_add(cnn_graph *g, const char *name, const char *module, int n_inputs,
                         const int *inputs, int *out, int *n_out)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &g->err;
    cnni_err_clear(e);
    if (!module || !out || n_inputs < 0 || (n_inputs && !inputs))
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_graph_add: module, inputs and out are required");
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] < 0 || inputs[i] >= g->n_vals)
            return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_graph_add: input %d is %d, not a value of this graph",
                             i, inputs[i]);
    char auto_name[32];
    if (!name) {
        snprintf(auto_name, sizeof auto_name, "%d", g->n_nodes);
        name = auto_name;
    }
    if (name_taken(g, name))
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_graph_add: '%s' is already defined", name);
    if (!g->file && !(g->file = cnni_strdup("<cnn_graph_add>")))
        return cnni_oom(e);
    cnni_model_ast ast;
    char what[300];
    snprintf(what, sizeof what, "node '%s'", name);
    cnn_status st = cnni_model_parse_call(module, what, &ast, e);
    if (st)
        return st;
    const cnni_stmt *stmt = &ast.stmts[0];
    int before = g->n_nodes;
    int res[CNNI_MAX_OUT], nres = 0;
    if (stmt->ntargets || stmt->has_fwd || !stmt->call) {
        st = cnni_fail(e, CNN_ERR_PARSE, "%s: give just the module, e.g. \"Conv2d(3, 64, 3)\"", what);
    } else if (cnni_is_sequential_call(stmt->call)) {
        const cnni_value *calls[256];
        int nc = stmt->call->nargs;
        for (int i = 0; i < nc && !st; i++) {
            if (i == 256 || stmt->call->args[i].key || stmt->call->args[i].val->kind != CNNI_V_CALL)
                st = cnni_fail(e, CNN_ERR_PARSE, "%s: Sequential takes up to 256 modules as positional arguments", what);
            else
                calls[i] = stmt->call->args[i].val;
        }
        int prev[CNNI_MAX_OUT];
        for (int i = 0; i < n_inputs && i < CNNI_MAX_OUT; i++)
            prev[i] = inputs[i];
        if (!st && n_inputs > CNNI_MAX_OUT)
            st = cnni_fail(e, CNN_ERR_ARGUMENT, "%s: a Sequential takes at most %d inputs", what, CNNI_MAX_OUT);
        if (!st)
            st = cnni_graph_add_sequence(g, name, nc, calls, n_inputs, prev, &nres, res);
    } else {
        st = cnni_graph_add_call(g, stmt->call, NULL, name, n_inputs, inputs, &nres, res);
    }
    cnni_model_ast_free(&ast);
    for (int i = before; i < g->n_nodes; i++)
        g->nodes[i].line = 0;
    for (int i = before; !st && i < g->n_nodes; i++)
        st = infer_now(g, i);
    if (st) {
        cnn_err saved = *e;
        while (g->n_nodes > before)
            cnni_graph_pop_node(g);
        *e = saved;
        return st;
    }
    /* Nodes made from C have no file position to quote in messages. */
    for (int i = before; i < g->n_nodes; i++) {
        g->nodes[i].file = NULL;
        g->nodes[i].line = 0;
    }
    if (!g->form)
        g->form = 3;
    for (int k = 0; k < nres; k++)
        out[k] = res[k];
    if (n_out)
        *n_out = nres;
    if (!g->outputs_set) {
        /* By default the model's output is the last node's. */
        st = cnni_graph_set_outputs(g, nres, res, NULL);
        if (st)
            return st;
    }
    return CNN_OK;
}

cnn_status cnn_graph_set_outputs(cnn_graph *g, int n, const int *values)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (n < 1 || !values)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_set_outputs: at least one value is required");
    const char *names[64];
    if (n > 64)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_set_outputs: at most 64 outputs");
    for (int i = 0; i < n; i++) {
        if (values[i] < 0 || values[i] >= g->n_vals)
            return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_set_outputs: %d is not a value", values[i]);
        names[i] = g->vals[values[i]].name;
    }
    cnni_graph_drop_plan(g);
    cnn_status st = cnni_graph_set_outputs(g, n, values, n == 1 ? NULL : names);
    if (!st)
        g->outputs_set = 1;
    return st;
}

cnn_status cnn_graph_set_loss(cnn_graph *g, const char *loss)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &g->err;
    cnni_err_clear(e);
    if (!loss)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_graph_set_loss: NULL loss");
    if (g->loss_node >= 0)
        return cnni_fail(e, CNN_ERR_STATE, "a loss is already attached to this model");
    if (g->n_outputs < 1)
        return cnni_fail(e, CNN_ERR_STATE, "the model has no output to attach a loss to");
    for (int i = 0; i < g->n_inputs; i++)
        if (strcmp(g->vals[g->inputs[i]].name, "target") == 0)
            return cnni_fail(e, CNN_ERR_STATE, "the model already has an input named 'target'");
    cnni_model_ast ast;
    cnn_status st = cnni_model_parse_call(loss, "loss", &ast, e);
    if (st)
        return st;
    const cnni_value *call = ast.stmts[0].call;
    const cnni_op *op = call ? cnni_op_find(call->s) : NULL;
    if (!call || ast.stmts[0].ntargets || ast.stmts[0].has_fwd) {
        st = cnni_fail(e, CNN_ERR_PARSE, "loss: give just the loss, e.g. \"CrossEntropyLoss()\"");
    } else if (!op || !op->inputs || !op->inputs[0] || !op->inputs[1] ||
               strcmp(op->inputs[1], "target") != 0) {
        st = cnni_fail(e, CNN_ERR_CONFIG, "loss: '%s' is not a loss function (e.g. CrossEntropyLoss, "
                       "MSELoss, BCEWithLogitsLoss)", call->s);
    }
    if (!st) {
        int before_vals = g->n_vals, before_inputs = g->n_inputs;
        int target = cnni_graph_new_input(g, "target");
        if (target < 0) {
            st = cnni_oom(e);
        } else {
            int in[2] = {g->outputs[0], target};
            int nres, res[CNNI_MAX_OUT];
            const char *nm = name_taken(g, "loss") ? "loss_" : "loss";
            if (!g->file)
                g->file = cnni_strdup("<cnn_graph_set_loss>");
            st = g->file ? cnni_graph_add_call(g, call, NULL, nm, 2, in, &nres, res) : cnni_oom(e);
            if (!st) {
                g->loss_node = g->n_nodes - 1;
            } else {
                /* Undo the target input. */
                while (g->n_vals > before_vals) {
                    cnni_free(g->vals[g->n_vals - 1].name);
                    g->n_vals--;
                }
                g->n_inputs = before_inputs;
            }
        }
    }
    cnni_model_ast_free(&ast);
    return st;
}

cnn_status cnn_graph_loss(cnn_graph *g, double *value)
{
    if (!g || !value)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (g->loss_node < 0)
        return cnni_fail(&g->err, CNN_ERR_STATE, "no loss is attached (cnn_graph_set_loss)");
    if (!g->planned || !g->forward_done)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_loss: run cnn_graph_forward first");
    const cnni_val *v = &g->vals[g->nodes[g->loss_node].out[0]];
    const float *d = v->t.data;
    double s = 0;
    for (int64_t i = 0; i < cnni_numel(&v->t.shape); i++)
        s += d[i];
    *value = s;
    return CNN_OK;
}
