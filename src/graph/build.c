/* Building a graph: nodes and values, parameter storage, and the two
 * model-file forms (Sequential lines and named graph lines). */
#include "graph_internal.h"
#include "../core/pool.h"
#include "../core/cpu.h"

#include <stdio.h>
#include <string.h>

cnn_status cnn_graph_create(cnn_graph **out)
{
    if (!out)
        return CNN_ERR_ARGUMENT;
    cnn_graph *g = cnni_calloc(1, sizeof(cnn_graph));
    *out = g;
    if (!g)
        return CNN_ERR_NOMEM;
    cnni_rng_seed(&g->init_rng, 0);
    cnni_rng_seed(&g->run_rng, 0);
    g->threads = 1;
    cnni_adapt_init(&g->adapt, 1);
    g->isa = cnni_cpu_best_isa();
    g->loss_node = -1;
    return CNN_OK;
}

void cnn_graph_destroy(cnn_graph *g)
{
    if (!g)
        return;
    cnni_graph_drop_plan(g);
    for (int i = 0; i < g->n_nodes; i++) {
        cnni_free(g->nodes[i].name);
        cnni_free(g->nodes[i].opts);
        cnni_free(g->nodes[i].in);
    }
    for (int i = 0; i < g->n_vals; i++)
        cnni_free(g->vals[i].name);
    for (int i = 0; i < g->n_params; i++)
        cnni_free(g->params[i].name);
    for (int i = 0; i < g->n_outputs; i++)
        cnni_free(g->output_names[i]);
    cnni_free(g->nodes);
    cnni_free(g->vals);
    cnni_free(g->inputs);
    cnni_free(g->outputs);
    cnni_free(g->output_names);
    cnni_free(g->params);
    cnni_afree(g->pdata);
    cnni_afree(g->pgrad);
    cnni_afree(g->bdata);
    cnni_afree(g->idata);
    cnni_free(g->file);
    cnni_free(g->summary);
    cnni_free(g->prof);
    cnni_pool_destroy(g->pool);
    cnni_free(g);
}

const char *cnn_graph_errmsg(const cnn_graph *g)
{
    if (!g)
        return "no graph (NULL handle)";
    return g->err.msg;
}

void cnni_node_where(const cnn_graph *g, const cnni_node *n, char *buf, size_t len)
{
    (void)g;
    if (n->file && n->line > 0)
        snprintf(buf, len, "%s:%d: %s '%s' (%s)", n->file, n->line, "node", n->name, n->op->name);
    else
        snprintf(buf, len, "node '%s' (%s)", n->name, n->op->name);
}

static int new_value(cnn_graph *g, const char *name, int producer, int producer_out)
{
    if (!cnni_grow((void **)&g->vals, &g->cap_vals, g->n_vals + 1, sizeof(cnni_val)))
        return -1;
    cnni_val *v = &g->vals[g->n_vals];
    memset(v, 0, sizeof *v);
    v->name = cnni_strdup(name);
    if (!v->name)
        return -1;
    v->producer = producer;
    v->producer_out = producer_out;
    return g->n_vals++;
}

int cnni_graph_new_input(cnn_graph *g, const char *name)
{
    if (!cnni_grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof(int)))
        return -1;
    int v = new_value(g, name, -1, 0);
    if (v < 0)
        return -1;
    g->inputs[g->n_inputs++] = v;
    return v;
}

/* Grows a parameter block (64-byte aligned, zero-filled growth). */
static int grow_block(void **blk, size_t *cap, size_t need, size_t esize)
{
    /* A block exists once any tensor is declared, even an empty one
     * (LayerNorm([0, 8])): its pointer is offset and passed to kernels. */
    if (need <= *cap && *blk)
        return 1;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    size_t bytes;
    if (!cnni_zmul_ok(ncap, esize, &bytes))
        return 0;
    void *nb = cnni_amalloc(bytes);
    if (!nb)
        return 0;
    memset(nb, 0, bytes);
    if (*blk)
        memcpy(nb, *blk, *cap * esize);
    cnni_afree(*blk);
    *blk = nb;
    *cap = ncap;
    return 1;
}

static cnn_status add_params(cnn_graph *g, cnni_node *n, int node_index)
{
    for (int d = 0; d < n->n_params; d++) {
        cnni_param_decl *pd = &n->params[d];
        int64_t numel;
        cnn_status st = cnni_shape_numel(&pd->shape, &numel, &g->err, pd->attr);
        if (st)
            return st;
        if (!cnni_grow((void **)&g->params, &g->cap_params, g->n_params + 1, sizeof(cnni_pentry)))
            return cnni_oom(&g->err);
        cnni_pentry *p = &g->params[g->n_params];
        memset(p, 0, sizeof *p);
        size_t nlen = strlen(n->name) + strlen(pd->attr) + 2;
        p->name = cnni_malloc(nlen);
        if (!p->name)
            return cnni_oom(&g->err);
        snprintf(p->name, nlen, "%s.%s", n->name, pd->attr);
        p->node = node_index;
        p->decl = d;
        p->kind = pd->kind;
        p->dtype = pd->dtype;
        p->shape = pd->shape;
        p->numel = numel;
        /* Each tensor starts on a 64-byte boundary of its block. */
        size_t *len;
        int ok;
        size_t start;
        if (pd->dtype == CNN_I64) {
            len = &g->i_len;
            start = (*len + 7) & ~(size_t)7;
            ok = grow_block((void **)&g->idata, &g->i_cap, start + (size_t)numel, sizeof(int64_t));
        } else if (pd->kind == CNN_PARAM) {
            len = &g->p_len;
            start = (*len + 15) & ~(size_t)15;
            size_t gcap = g->p_cap;
            ok = grow_block((void **)&g->pdata, &g->p_cap, start + (size_t)numel, sizeof(float)) &&
                 grow_block((void **)&g->pgrad, &gcap, start + (size_t)numel, sizeof(float));
            if (ok && gcap != g->p_cap)
                ok = 0; /* both blocks always have the same capacity */
        } else {
            len = &g->b_len;
            start = (*len + 15) & ~(size_t)15;
            ok = grow_block((void **)&g->bdata, &g->b_cap, start + (size_t)numel, sizeof(float));
        }
        if (!ok) {
            cnni_free(p->name);
            return cnni_oom(&g->err);
        }
        p->off = start;
        *len = start + (size_t)numel;
        pd->index = g->n_params++;
    }
    return CNN_OK;
}

void cnni_node_param_ptrs(cnn_graph *g, const cnni_node *n, float **param, float **grad,
                          void **buffer)
{
    for (int d = 0; d < n->n_params; d++) {
        const cnni_pentry *p = &g->params[n->params[d].index];
        void *data;
        float *gr = NULL;
        if (p->dtype == CNN_I64) {
            data = g->idata + p->off;
        } else if (p->kind == CNN_PARAM) {
            data = g->pdata + p->off;
            gr = g->pgrad + p->off;
        } else {
            data = g->bdata + p->off;
        }
        if (param)
            param[d] = data;
        if (grad)
            grad[d] = gr;
        if (buffer)
            buffer[d] = data;
    }
}

static void reset_node(cnn_graph *g, const cnni_node *n, cnni_rng *rng)
{
    float *param[CNNI_MAX_PARAMS];
    void *buffer[CNNI_MAX_PARAMS];
    cnni_node_param_ptrs(g, n, param, NULL, buffer);
    for (int d = 0; d < n->n_params; d++) {
        const cnni_pentry *p = &g->params[n->params[d].index];
        if (p->numel)
            memset(buffer[d], 0, (size_t)p->numel * cnni_dtype_size(p->dtype));
    }
    if (n->op->reset)
        n->op->reset(n, param, buffer, rng);
}

cnn_status cnn_graph_reset_parameters(cnn_graph *g, uint64_t seed)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    cnni_rng_seed(&g->init_rng, seed);
    for (int i = 0; i < g->n_nodes; i++)
        reset_node(g, &g->nodes[i], &g->init_rng);
    return CNN_OK;
}

void cnn_graph_set_seed(cnn_graph *g, uint64_t seed)
{
    if (g)
        cnni_rng_seed(&g->run_rng, seed);
}

/* The most modules a model may have. */
#define MAX_NODES 10000

cnn_status cnni_graph_add_node(cnn_graph *g, const cnni_op *op, const cnni_args *args,
                               const cnni_args *fwd, const char *name, int n_in, const int *in,
                               int *n_out, int *out)
{
    cnn_err *e = &g->err;
    /* Far beyond any real network; the checks below (and the parser's name
     * lookups) are linear per node, so without a bound a hostile file of a
     * few megabytes would keep them busy for hours. */
    if (g->n_nodes >= MAX_NODES)
        return cnni_fail(e, CNN_ERR_CONFIG, "%s:%d:%d: the model has more than %d modules",
                         args->file, args->line, args->col, MAX_NODES);
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return cnni_fail(e, CNN_ERR_CONFIG, "%s:%d:%d: a node named '%s' already exists",
                             args->file, args->line, args->col, name);
    if (n_in < op->min_inputs || (op->max_inputs >= 0 && n_in > op->max_inputs))
        return cnni_fail(e, CNN_ERR_CONFIG, "%s:%d:%d: %s takes %d%s input%s, got %d", args->file,
                         args->line, args->col, op->name, op->min_inputs,
                         op->max_inputs < 0 ? " or more"
                         : op->max_inputs > op->min_inputs ? " or more" : "",
                         op->min_inputs == 1 && op->max_inputs == 1 ? "" : "s", n_in);
    cnni_graph_drop_plan(g);
    if (!cnni_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(cnni_node)))
        return cnni_oom(e);
    cnni_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->file = args->file;
    n->line = args->line;
    n->col = args->col;
    n->name = cnni_strdup(name);
    n->opts = cnni_calloc(1, op->opts_size ? op->opts_size : 1);
    n->in = cnni_malloc(sizeof(int) * (size_t)(n_in ? n_in : 1));
    cnn_status st = CNN_OK;
    if (!n->name || !n->opts || !n->in)
        st = cnni_oom(e);
    if (!st) {
        st = op->configure(n, args);
        if (st && args->e != e)
            *e = *args->e;
    }
    if (!st && op->configure_forward) {
        cnni_args none;
        if (!fwd) {
            memset(&none, 0, sizeof none);
            none.op = op;
            none.file = args->file;
            none.line = args->line;
            none.col = args->col;
            none.e = e;
            fwd = &none;
        }
        st = op->configure_forward(n, fwd);
    }
    int first_param = g->n_params;
    if (!st)
        st = add_params(g, n, g->n_nodes);
    if (!st) {
        for (int i = 0; i < n_in; i++)
            n->in[i] = in[i];
        n->n_in = n_in;
        for (int k = 0; k < n->n_out && !st; k++) {
            char vname[512];
            if (k == 0)
                snprintf(vname, sizeof vname, "%s", name);
            else
                snprintf(vname, sizeof vname, "%s[%d]", name, k);
            int v = new_value(g, vname, g->n_nodes, k);
            if (v < 0)
                st = cnni_oom(e);
            else
                n->out[k] = v;
        }
    }
    if (st) {
        /* Roll back: the graph is unchanged by a failed add. */
        for (int i = first_param; i < g->n_params; i++)
            cnni_free(g->params[i].name);
        g->n_params = first_param;
        while (g->n_vals > 0 && g->vals[g->n_vals - 1].producer == g->n_nodes) {
            cnni_free(g->vals[g->n_vals - 1].name);
            g->n_vals--;
        }
        cnni_free(n->name);
        cnni_free(n->opts);
        cnni_free(n->in);
        memset(n, 0, sizeof *n);
        return st;
    }
    for (int i = 0; i < n_in; i++)
        g->vals[in[i]].n_consumers++;
    g->n_nodes++;
    reset_node(g, n, &g->init_rng);
    *n_out = n->n_out;
    for (int k = 0; k < n->n_out; k++)
        out[k] = n->out[k];
    return CNN_OK;
}

void cnni_graph_pop_node(cnn_graph *g)
{
    if (g->n_nodes == 0)
        return;
    int idx = g->n_nodes - 1;
    cnni_node *n = &g->nodes[idx];
    cnni_graph_drop_plan(g);
    for (int i = 0; i < n->n_in; i++)
        g->vals[n->in[i]].n_consumers--;
    while (g->n_vals > 0 && g->vals[g->n_vals - 1].producer == idx) {
        cnni_free(g->vals[g->n_vals - 1].name);
        g->n_vals--;
    }
    while (g->n_params > 0 && g->params[g->n_params - 1].node == idx) {
        cnni_pentry *p = &g->params[--g->n_params];
        if (p->dtype == CNN_I64)
            g->i_len = p->off;
        else if (p->kind == CNN_PARAM)
            g->p_len = p->off;
        else
            g->b_len = p->off;
        cnni_free(p->name);
    }
    cnni_free(n->name);
    cnni_free(n->opts);
    cnni_free(n->in);
    memset(n, 0, sizeof *n);
    g->n_nodes--;
    if (g->loss_node == idx)
        g->loss_node = -1;
}

/* ---- the model file ---- */

/* The model's outputs; names NULL gives "output" (and "indices" for a
 * module's second output). */
cnn_status cnni_graph_set_outputs(cnn_graph *g, int n, const int *vals, const char *const *names)
{
    static const char *const defaults[] = {"output", "indices"};
    for (int i = 0; i < g->n_outputs; i++)
        cnni_free(g->output_names[i]);
    cnni_free(g->outputs);
    cnni_free(g->output_names);
    g->n_outputs = 0;
    g->outputs = cnni_malloc(sizeof(int) * (size_t)(n ? n : 1));
    g->output_names = cnni_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!g->outputs || !g->output_names)
        return cnni_oom(&g->err);
    for (int i = 0; i < n; i++) {
        char buf[32];
        if (names)
            g->output_names[i] = cnni_strdup(names[i]);
        else {
            if (i < 2)
                snprintf(buf, sizeof buf, "%s", defaults[i]);
            else
                snprintf(buf, sizeof buf, "output%d", i);
            g->output_names[i] = cnni_strdup(buf);
        }
        if (!g->output_names[i])
            return cnni_oom(&g->err);
        g->outputs[i] = vals[i];
        g->n_outputs++;
    }
    return CNN_OK;
}

cnn_status cnni_graph_add_call(cnn_graph *g, const cnni_value *call, const cnni_stmt *stmt,
                           const char *name, int n_in, const int *in, int *n_out, int *out)
{
    const cnni_op *op = cnni_op_find(call->s);
    if (!op) {
        const char *sug = cnni_op_suggest(call->s);
        return cnni_fail(&g->err, CNN_ERR_CONFIG, "%s:%d:%d: unknown module '%s'%s%s%s", g->file,
                         call->line, call->col, call->s, sug ? " (did you mean '" : "",
                         sug ? sug : "", sug ? "'?)" : "");
    }
    cnni_args args;
    cnn_status st = cnni_bind_args(op, call, g->file, &args, &g->err);
    if (st)
        return st;
    /* Keyword arguments of the forward call are constants for the op. */
    cnni_args fwd;
    const cnni_args *fwdp = NULL;
    if (stmt) {
        cnni_arg kw[CNNI_MAX_ARGS];
        int nkw = 0;
        for (int i = 0; i < stmt->nfwd; i++) {
            const cnni_arg *a = &stmt->fwd[i];
            if (!a->key)
                continue;
            if (!op->fwd_args || nkw == CNNI_MAX_ARGS)
                return cnni_fail(&g->err, CNN_ERR_CONFIG,
                                 "%s:%d:%d: %s's forward takes no keyword argument '%s'", g->file,
                                 a->line, a->col, op->name, a->key);
            kw[nkw++] = *a;
        }
        if (nkw) {
            cnni_op fop = *op;
            fop.args = op->fwd_args;
            fop.n_required = 0;
            cnni_value fcall = *call;
            fcall.args = kw;
            fcall.nargs = nkw;
            fcall.line = stmt->line;
            fcall.col = stmt->col;
            st = cnni_bind_args(&fop, &fcall, g->file, &fwd, &g->err);
            if (st)
                return st;
            fwd.op = op;
            fwdp = &fwd;
        }
    }
    return cnni_graph_add_node(g, op, &args, fwdp, name, n_in, in, n_out, out);
}

/* The modules of a Sequential, chained: prev_out feeds the next module. */
cnn_status cnni_graph_add_sequence(cnn_graph *g, const char *prefix, int ncalls,
                               const cnni_value *const *calls, int n_prev, int *prev,
                               int *n_res, int *res)
{
    int cur_n = n_prev;
    int cur[CNNI_MAX_OUT];
    for (int i = 0; i < n_prev; i++)
        cur[i] = prev[i];
    for (int i = 0; i < ncalls; i++) {
        const cnni_value *call = calls[i];
        char name[512];
        if (prefix[0])
            snprintf(name, sizeof name, "%s.%d", prefix, i);
        else
            snprintf(name, sizeof name, "%d", i);
        const cnni_op *op = cnni_op_find(call->s);
        int use[CNNI_MAX_OUT];
        int n_use = 0;
        if (op && cur_n < 0) {
            /* First module of the model: its forward arguments are the inputs. */
            for (int k = 0; k < op->min_inputs && op->inputs[k]; k++) {
                int v = cnni_graph_new_input(g, op->inputs[k]);
                if (v < 0)
                    return cnni_oom(&g->err);
                use[n_use++] = v;
            }
        } else if (op) {
            if (op->min_inputs <= 1 && cur_n == 2 && (op->max_inputs == 1))
                return cnni_fail(&g->err, CNN_ERR_SHAPE,
                                 "%s:%d:%d: %s receives two values (output and indices) from the "
                                 "module before it, which has return_indices=True; in a "
                                 "Sequential model only MaxUnpool can follow such a module",
                                 g->file, call->line, call->col, op->name);
            if (op->min_inputs > cur_n)
                return cnni_fail(&g->err, CNN_ERR_SHAPE,
                                 "%s:%d:%d: %s needs %d inputs but the module before it gives %d",
                                 g->file, call->line, call->col, op->name, op->min_inputs, cur_n);
            for (int k = 0; k < cur_n; k++)
                use[n_use++] = cur[k];
        }
        cnn_status st = cnni_graph_add_call(g, call, NULL, name, n_use, use, &cur_n, cur);
        if (st)
            return st;
    }
    *n_res = cur_n;
    for (int i = 0; i < cur_n; i++)
        res[i] = cur[i];
    return CNN_OK;
}

int cnni_is_sequential_call(const cnni_value *v)
{
    return v->kind == CNNI_V_CALL &&
           (strcmp(v->s, "Sequential") == 0 || strcmp(v->s, "nn.Sequential") == 0 ||
            strcmp(v->s, "torch.nn.Sequential") == 0);
}

static cnn_status build_sequential(cnn_graph *g, const cnni_model_ast *ast)
{
    const cnni_value **calls = cnni_malloc(sizeof(cnni_value *) * (size_t)(ast->n + 1));
    if (!calls)
        return cnni_oom(&g->err);
    int ncalls = 0;
    cnn_status st = CNN_OK;
    if (ast->n == 1 && cnni_is_sequential_call(ast->stmts[0].call)) {
        /* nn.Sequential(Conv2d(...), ReLU(), ...) pasted from Python. */
        const cnni_value *seq = ast->stmts[0].call;
        cnni_free(calls);
        calls = cnni_malloc(sizeof(cnni_value *) * (size_t)(seq->nargs + 1));
        if (!calls)
            return cnni_oom(&g->err);
        for (int i = 0; i < seq->nargs && !st; i++) {
            const cnni_arg *a = &seq->args[i];
            if (a->key || a->val->kind != CNNI_V_CALL)
                st = cnni_fail(&g->err, CNN_ERR_PARSE, "%s:%d:%d: Sequential takes modules as "
                               "positional arguments",
                               g->file, a->line, a->col);
            else
                calls[ncalls++] = a->val;
        }
    } else {
        for (int i = 0; i < ast->n; i++)
            calls[ncalls++] = ast->stmts[i].call;
    }
    if (!st && ncalls == 0)
        st = cnni_fail(&g->err, CNN_ERR_PARSE, "%s: the model file has no modules", g->file);
    int n_res = 0, res[CNNI_MAX_OUT];
    if (!st)
        st = cnni_graph_add_sequence(g, "", ncalls, calls, -1, NULL, &n_res, res);
    if (!st)
        st = cnni_graph_set_outputs(g, n_res, res, NULL);
    cnni_free(calls);
    return st;
}

typedef struct {
    char *name;
    int val;
} symbol;

static int lookup(const symbol *syms, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(syms[i].name, name) == 0)
            return syms[i].val;
    return -1;
}

static cnn_status build_graph(cnn_graph *g, const cnni_model_ast *ast)
{
    cnn_err *e = &g->err;
    symbol *syms = NULL;
    int nsyms = 0, cap = 0;
    cnn_status st = CNN_OK;
    int last_node = -1, output_node = -1;
    int last_stmt_vals[CNNI_MAX_OUT], last_n = 0;
    int out_vals[CNNI_MAX_OUT], out_n = 0;
    int explicit_n = -1;
    int explicit_vals[64];
    const char *explicit_names[64];
    for (int s = 0; s < ast->n && !st; s++) {
        const cnni_stmt *stmt = &ast->stmts[s];
        if (!stmt->call) {
            /* outputs = a, b */
            if (explicit_n >= 0) {
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: the outputs are named twice", g->file,
                               stmt->line, stmt->col);
                break;
            }
            explicit_n = 0;
            for (int a = 0; a < stmt->nfwd && !st; a++) {
                const cnni_arg *arg = &stmt->fwd[a];
                int v = lookup(syms, nsyms, arg->val->s);
                if (v < 0)
                    st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: output '%s' is not defined", g->file,
                                   arg->line, arg->col, arg->val->s);
                else if (explicit_n == 64)
                    st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: more than 64 outputs", g->file,
                                   arg->line, arg->col);
                else {
                    for (int k = 0; k < explicit_n; k++)
                        if (strcmp(explicit_names[k], arg->val->s) == 0)
                            st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: output '%s' is listed twice",
                                           g->file, arg->line, arg->col, arg->val->s);
                    explicit_vals[explicit_n] = v;
                    explicit_names[explicit_n++] = arg->val->s;
                }
            }
            continue;
        }
        if (stmt->ntargets >= 1 && strcmp(stmt->call->s, "Input") == 0) {
            /* name = Input(): a further model input. */
            if (stmt->ntargets != 1 || stmt->call->nargs || stmt->has_fwd) {
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: declare a model input as 'name = Input()'",
                               g->file, stmt->line, stmt->col);
                break;
            }
            const char *tn = stmt->targets[0];
            if (lookup(syms, nsyms, tn) >= 0 || strcmp(tn, "input") == 0) {
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: '%s' is already defined", g->file,
                               stmt->line, stmt->col, tn);
                break;
            }
            int v = cnni_graph_new_input(g, tn);
            if (v < 0 || !cnni_grow((void **)&syms, &cap, nsyms + 1, sizeof(symbol)) ||
                !(syms[nsyms].name = cnni_strdup(tn))) {
                st = cnni_oom(e);
                break;
            }
            syms[nsyms++].val = v;
            continue;
        }
        if (stmt->ntargets == 0) {
            st = cnni_fail(e, CNN_ERR_PARSE,
                           "%s:%d:%d: this file uses the graph form (for example line %d assigns "
                           "'%s'), so every line must name its node: name = Module(...)(inputs)",
                           g->file, stmt->line, stmt->col, ast->stmts[0].ntargets ? ast->stmts[0].line : stmt->line,
                           ast->stmts[0].ntargets ? ast->stmts[0].targets[0] : "x");
            break;
        }
        if (!stmt->has_fwd) {
            st = cnni_fail(e, CNN_ERR_PARSE,
                           "%s:%d:%d: '%s = %s(...)' must say what it is applied to, e.g. "
                           "%s = %s(...)(input)",
                           g->file, stmt->line, stmt->col, stmt->targets[0], stmt->call->s,
                           stmt->targets[0], stmt->call->s);
            break;
        }
        for (int t = 0; t < stmt->ntargets && !st; t++) {
            const char *tn = stmt->targets[t];
            if (strcmp(tn, "input") == 0)
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: 'input' is the model's input and "
                               "cannot be assigned",
                               g->file, stmt->line, stmt->target_cols[t]);
            else if (lookup(syms, nsyms, tn) >= 0)
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: '%s' is already defined; each node "
                               "needs its own name (parameters are named after it)",
                               g->file, stmt->line, stmt->target_cols[t], tn);
            for (int u = 0; u < t && !st; u++)
                if (strcmp(stmt->targets[u], tn) == 0)
                    st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: '%s' is assigned twice", g->file,
                                   stmt->line, stmt->target_cols[t], tn);
        }
        if (st)
            break;
        int in[64];
        int n_in = 0;
        for (int a = 0; a < stmt->nfwd && !st; a++) {
            const cnni_arg *arg = &stmt->fwd[a];
            if (arg->key)
                continue; /* a constant forward argument (output_size=...) */
            if (arg->val->kind != CNNI_V_NAME) {
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: the inputs of a node must be names of "
                               "earlier nodes or 'input' (give constants by keyword, e.g. "
                               "output_size=(4, 4))",
                               g->file, arg->line, arg->col);
                break;
            }
            if (n_in == 64) {
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: more than 64 inputs", g->file,
                               arg->line, arg->col);
                break;
            }
            int v = lookup(syms, nsyms, arg->val->s);
            if (v < 0 && strcmp(arg->val->s, "input") == 0) {
                v = cnni_graph_new_input(g, "input");
                if (v < 0) {
                    st = cnni_oom(e);
                    break;
                }
                if (!cnni_grow((void **)&syms, &cap, nsyms + 1, sizeof(symbol))) {
                    st = cnni_oom(e);
                    break;
                }
                syms[nsyms].name = cnni_strdup("input");
                syms[nsyms].val = v;
                if (!syms[nsyms].name) {
                    st = cnni_oom(e);
                    break;
                }
                nsyms++;
            }
            if (v < 0) {
                st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: name '%s' is not defined (it must be "
                               "'input' or a node assigned on an earlier line)",
                               g->file, arg->line, arg->col, arg->val->s);
                break;
            }
            in[n_in++] = v;
        }
        if (st)
            break;
        int n_out = 0, out[CNNI_MAX_OUT];
        const char *node_name = stmt->targets[0];
        if (cnni_is_sequential_call(stmt->call)) {
            const cnni_value **calls = cnni_malloc(sizeof(cnni_value *) * (size_t)(stmt->call->nargs + 1));
            if (!calls) {
                st = cnni_oom(e);
                break;
            }
            for (int i = 0; i < stmt->call->nargs && !st; i++) {
                const cnni_arg *a = &stmt->call->args[i];
                if (a->key || a->val->kind != CNNI_V_CALL)
                    st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: Sequential takes modules as "
                                   "positional arguments",
                                   g->file, a->line, a->col);
                else
                    calls[i] = a->val;
            }
            if (!st)
                st = cnni_graph_add_sequence(g, node_name, stmt->call->nargs, calls, n_in, in, &n_out, out);
            cnni_free(calls);
        } else {
            st = cnni_graph_add_call(g, stmt->call, stmt, node_name, n_in, in, &n_out, out);
        }
        if (st)
            break;
        if (n_out != stmt->ntargets) {
            st = cnni_fail(e, CNN_ERR_PARSE, "%s:%d:%d: %s gives %d output%s but %d name%s assigned",
                           g->file, stmt->line, stmt->col, stmt->call->s, n_out, n_out == 1 ? "" : "s",
                           stmt->ntargets, stmt->ntargets == 1 ? " is" : "s are");
            break;
        }
        for (int t = 0; t < stmt->ntargets && !st; t++) {
            if (!cnni_grow((void **)&syms, &cap, nsyms + 1, sizeof(symbol))) {
                st = cnni_oom(e);
                break;
            }
            syms[nsyms].name = cnni_strdup(stmt->targets[t]);
            syms[nsyms].val = out[t];
            if (!syms[nsyms].name) {
                st = cnni_oom(e);
                break;
            }
            nsyms++;
            cnni_free(g->vals[out[t]].name);
            g->vals[out[t]].name = cnni_strdup(stmt->targets[t]);
            if (!g->vals[out[t]].name)
                st = cnni_oom(e);
        }
        last_node = g->n_nodes - 1;
        last_n = n_out;
        for (int k = 0; k < n_out; k++)
            last_stmt_vals[k] = out[k];
        if (strcmp(node_name, "output") == 0) {
            output_node = last_node;
            out_n = n_out;
            for (int k = 0; k < n_out; k++)
                out_vals[k] = out[k];
        }
    }
    if (!st && last_node < 0)
        st = cnni_fail(e, CNN_ERR_PARSE, "%s: the model file has no modules", g->file);
    if (!st && g->n_inputs == 0)
        st = cnni_fail(e, CNN_ERR_PARSE, "%s: no node uses 'input', the model's input", g->file);
    if (!st && explicit_n == 0)
        st = cnni_fail(e, CNN_ERR_PARSE, "%s: 'outputs =' names no node", g->file);
    if (!st) {
        if (explicit_n >= 0)
            st = cnni_graph_set_outputs(g, explicit_n, explicit_vals, explicit_names);
        else if (output_node >= 0)
            st = cnni_graph_set_outputs(g, out_n, out_vals, NULL);
        else
            st = cnni_graph_set_outputs(g, last_n, last_stmt_vals, NULL);
    }
    for (int i = 0; i < nsyms; i++)
        cnni_free(syms[i].name);
    cnni_free(syms);
    return st;
}

cnn_status cnn_graph_parse(cnn_graph *g, const char *text, const char *filename)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!text)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_parse: NULL text");
    if (g->n_nodes || g->n_inputs)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_parse: the graph already has nodes");
    cnni_free(g->file);
    g->file = cnni_strdup(filename ? filename : "<model>");
    if (!g->file)
        return cnni_oom(&g->err);
    cnni_model_ast ast;
    cnn_status st = cnni_model_parse(text, strlen(text), g->file, &ast, &g->err);
    if (st)
        return st;
    int graph_form = 0;
    for (int i = 0; i < ast.n; i++)
        if (ast.stmts[i].ntargets)
            graph_form = 1;
    if (graph_form) {
        st = build_graph(g, &ast);
    } else {
        for (int i = 0; i < ast.n && !st; i++)
            if (ast.stmts[i].has_fwd)
                st = cnni_fail(&g->err, CNN_ERR_PARSE,
                               "%s:%d:%d: a module applied to inputs must be assigned to a name "
                               "(name = %s(...)(inputs))",
                               g->file, ast.stmts[i].line, ast.stmts[i].col, ast.stmts[i].call->s);
        if (!st)
            st = build_sequential(g, &ast);
    }
    g->form = graph_form ? 2 : 1;
    cnni_model_ast_free(&ast);
    if (st) {
        /* Leave an empty graph behind so the handle can be reused. */
        cnn_err saved = g->err;
        for (int i = 0; i < g->n_nodes; i++) {
            cnni_free(g->nodes[i].name);
            cnni_free(g->nodes[i].opts);
            cnni_free(g->nodes[i].in);
        }
        for (int i = 0; i < g->n_vals; i++)
            cnni_free(g->vals[i].name);
        for (int i = 0; i < g->n_params; i++)
            cnni_free(g->params[i].name);
        for (int i = 0; i < g->n_outputs; i++)
            cnni_free(g->output_names[i]);
        g->n_nodes = g->n_vals = g->n_params = g->n_inputs = g->n_outputs = 0;
        g->p_len = g->b_len = g->i_len = 0;
        g->form = 0;
        g->err = saved;
    }
    return st;
}

cnn_status cnn_graph_load(cnn_graph *g, const char *path)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!path)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_graph_load: NULL path");
    char *text;
    size_t len;
    cnn_status st = cnni_read_file(path, &text, &len, (size_t)64 << 20, &g->err);
    if (st)
        return st;
    if (strlen(text) != len) {
        cnni_free(text);
        return cnni_fail(&g->err, CNN_ERR_PARSE, "%s: the model file contains a NUL byte", path);
    }
    st = cnn_graph_parse(g, text, path);
    cnni_free(text);
    return st;
}

int cnn_graph_input_count(const cnn_graph *g) { return g ? g->n_inputs : 0; }
const char *cnn_graph_input_name(const cnn_graph *g, int i)
{
    return (g && i >= 0 && i < g->n_inputs) ? g->vals[g->inputs[i]].name : NULL;
}
int cnn_graph_output_count(const cnn_graph *g) { return g ? g->n_outputs : 0; }
const char *cnn_graph_output_name(const cnn_graph *g, int i)
{
    return (g && i >= 0 && i < g->n_outputs) ? g->output_names[i] : NULL;
}
