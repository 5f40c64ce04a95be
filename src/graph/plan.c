/* Planning: infer every shape from the input shapes, decide which values
 * need gradients, and lay out one arena for values, gradients, saved state
 * and scratch. Running afterwards allocates nothing. */
#include "graph_internal.h"
#include "../core/pool.h"
#include "../core/cpu.h"
#include "../kernels/norm_fast.h"
#include "../kernels/pool_fast.h"
#include "../kernels/ref/activation_ref.h"

#include <stdio.h>
#include <string.h>

void cnni_graph_drop_plan(cnn_graph *g)
{
    cnni_free(g->np);
    cnni_free(g->tensor_pool);
    cnni_free(g->written);
    cnni_afree(g->arena);
    g->np = NULL;
    g->tensor_pool = NULL;
    g->written = NULL;
    g->arena = NULL;
    g->arena_cap = 0;
    g->planned = 0;
    g->forward_done = 0;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Lists each input's name and shape after an infer error, so a mismatch
 * names both sides: "inputs: b1 [1, 64, 14, 14], b2 [1, 64, 15, 15]". */
static void append_inputs(cnn_graph *g, const cnni_node *n, const cnni_tensor *in)
{
    if (n->n_in < 2)
        return;
    char list[600];
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < n->n_in && used < sizeof list; i++) {
        char sb[128];
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s %s", i ? ", " : "",
                                 g->vals[n->in[i]].name, cnni_shape_str(&in[i].shape, sb, sizeof sb));
    }
    size_t len = strlen(g->err.msg);
    snprintf(g->err.msg + len, sizeof g->err.msg - len, " (inputs: %s)", list);
}

cnn_status cnni_infer_node(cnn_graph *g, int i, const cnni_tensor *in, cnni_infer *inf, int backward)
{
    cnni_node *n = &g->nodes[i];
    memset(inf, 0, sizeof *inf);
    inf->n_in = n->n_in;
    inf->in = in;
    inf->backward = backward;
    inf->threads = g->threads;
    inf->isa = g->isa;
    cnni_err_clear(&g->err);
    cnn_status st = n->op->infer(n, inf, &g->err);
    for (int k = 0; !st && k < n->n_out; k++) {
        int64_t numel;
        st = cnni_shape_numel(&inf->out[k].shape, &numel, &g->err, "output");
    }
    if (st) {
        char where[600];
        cnni_node_where(g, n, where, sizeof where);
        append_inputs(g, n, in);
        cnni_err_prefix(&g->err, "%s", where);
    }
    return st;
}

cnn_status cnn_graph_set_threads(cnn_graph *g, int n)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (n < 1 || n > 256)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "thread count must be 1 to 256, got %d", n);
    if (n == g->threads && (n == 1 || g->pool))
        return CNN_OK;
    cnni_graph_drop_plan(g);
    cnni_pool_destroy(g->pool);
    g->pool = NULL;
    g->threads = n;
    cnni_adapt_init(&g->adapt, n);
    g->step_start = 0;
    if (n > 1 && cnni_pool_create(&g->pool, n) != CNN_OK) {
        g->threads = 1;
        cnni_adapt_init(&g->adapt, 1);
        return cnni_oom(&g->err);
    }
    return CNN_OK;
}

cnn_status cnn_graph_set_adaptive_threads(cnn_graph *g, int on)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    g->adaptive = on != 0;
    cnni_adapt_init(&g->adapt, g->threads);
    g->step_start = 0;
    cnni_pool_set_width(g->pool, g->threads);
    return CNN_OK;
}

cnn_status cnn_graph_thread_steps(const cnn_graph *g, int64_t *wide, int64_t *single)
{
    if (!g || !wide || !single)
        return CNN_ERR_ARGUMENT;
    *wide = g->adapt.steps[0];
    *single = g->adapt.steps[1];
    return CNN_OK;
}

/* Which node alone reads value v (not a model output), or -1. */
static int sole_reader(const cnn_graph *g, int v)
{
    if (g->vals[v].n_consumers != 1)
        return -1;
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v)
            return -1;
    for (int n = 0; n < g->n_nodes; n++)
        for (int k = 0; k < g->nodes[n].n_in; k++)
            if (g->nodes[n].in[k] == v)
                return g->nodes[n].n_in == 1 ? n : -1;
    return -1;
}

/* BatchNorm i, fused with ReLU j, also runs the max pooling that alone
 * reads the ReLU's output when its planes are the BatchNorm's spans (one
 * (sample, channel) plane each) and small enough for the kernels' stack
 * buffers. Only with backward planned: the BatchNorm's saved statistics
 * are what cnni_graph_materialize rebuilds the skipped outputs from. */
static void fuse_pool(cnn_graph *g, int i, int j, int backward)
{
    const int zv = g->nodes[j].out[0], k = sole_reader(g, zv);
    if (!backward || k < 0 || g->vals[zv].t.dtype != CNN_F32)
        return;
    const cnn_shape *s = &g->vals[zv].t.shape;
    if (s->ndim < 3)
        return;
    int64_t plane = 1;
    for (int d = 2; d < s->ndim; d++)
        plane *= s->dims[d];
    cnni_pool_geom pg;
    if (!cnni_pool_fusable(&g->nodes[k], s, &pg) || cnni_pool_in_plane(&pg) != plane ||
        pg.NC != s->dims[0] * s->dims[1] || plane > CNNI_NORM_POOL_MAX_PLANE || !g->np[i].saved_bytes ||
        !g->np[k].saved_bytes)
        return;
    g->np[i].pool_node = k;
    g->np[k].fused_into = i;
    g->np[k].pool_geom = pg;
}

/* Whether value v holds float rows of `batch` samples. */
static int batch_rows(const cnni_val *v, int64_t batch)
{
    return v->t.dtype == CNN_F32 && v->t.shape.ndim >= 1 && v->t.shape.dims[0] == batch;
}

/* How many first nodes run in shards (see cnn_graph): a chain of single
 * input, single output nodes whose ops treat samples on their own, each
 * reading a value nothing else reads, keeping nothing for the backward
 * (saved state would need its own layout per part) and fused with nothing
 * outside the chain, on batches of CNNI_SHARD_MIN_BATCH or more. Sets
 * g->shard_work_bytes: the chain's largest scratch for one part on one
 * thread. */
static void plan_shards(cnn_graph *g, int backward)
{
    g->shard_end = 0;
    g->shard_work_bytes = 0;
    const int64_t batch = cnni_graph_batch(g);
    if (g->n_inputs < 1 || batch < CNNI_SHARD_MIN_BATCH)
        return;
    int end = 0;
    for (int i = 0; i < g->n_nodes; i++, end++) {
        const cnni_node *n = &g->nodes[i];
        const cnni_nodeplan *np = &g->np[i];
        if (n->n_in != 1 || n->n_out != 1 || !n->op->per_sample || sole_reader(g, n->in[0]) != i ||
            !batch_rows(&g->vals[n->in[0]], batch) || !batch_rows(&g->vals[n->out[0]], batch) ||
            !n->op->per_sample(n, &g->vals[n->in[0]].t.shape) || np->saved_bytes || np->relu_node >= 0 ||
            np->wgrad_node >= 0 || np->bgrad_node >= 0 || np->wgrad_into >= 0 || np->bgrad_into >= 0)
            break;
    }
    /* each node's scratch for the largest part on one thread */
    int64_t lo, hi;
    cnni_split(batch, CNNI_SHARDS, 0, &lo, &hi);
    const int threads = g->threads;
    g->threads = 1;
    size_t most = 0;
    for (int i = 0; i < end; i++) {
        cnni_tensor in = g->vals[g->nodes[i].in[0]].t;
        in.shape.dims[0] = hi - lo;
        cnni_infer inf;
        if (cnni_infer_node(g, i, &in, &inf, backward) || inf.out[0].shape.dims[0] != hi - lo ||
            (backward && inf.saved_bytes)) {
            cnni_err_clear(&g->err);
            end = i; /* not per sample after all: the chain stops before it */
            break;
        }
        if (inf.work_bytes > most)
            most = inf.work_bytes;
    }
    g->threads = threads;
    /* an activation pooling in its own passes keeps its pooling in the
     * chain; a chain of views alone is not worth it */
    int works = 0;
    for (int i = 0; i < end; i++) {
        if (g->np[i].pool_node >= end) {
            end = i;
            break;
        }
        works |= !g->nodes[i].op->view;
    }
    g->shard_end = works ? end : 0;
    g->shard_work_bytes = works ? most : 0;
}

cnn_status cnn_graph_plan(cnn_graph *g, int n_inputs, const cnn_shape *shapes,
                          const cnn_dtype *dtypes, unsigned flags)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &g->err;
    cnni_err_clear(e);
    if (g->n_nodes == 0)
        return cnni_fail(e, CNN_ERR_STATE, "the graph has no nodes");
    if (n_inputs != g->n_inputs)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "the model takes %d input%s, got %d", g->n_inputs,
                         g->n_inputs == 1 ? "" : "s", n_inputs);
    if (n_inputs && !shapes)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_graph_plan: NULL shapes");
    g->planned = 0;
    g->forward_done = 0;
    int backward = (flags & CNN_PLAN_BACKWARD) != 0;

    /* Host-side tables (these are the plan's only allocations besides the arena). */
    int total_io = 0;
    for (int i = 0; i < g->n_nodes; i++)
        total_io += 2 * (g->nodes[i].n_in + g->nodes[i].n_out);
    cnni_free(g->np);
    cnni_free(g->tensor_pool);
    cnni_free(g->written);
    g->np = cnni_calloc((size_t)g->n_nodes, sizeof(cnni_nodeplan));
    g->tensor_pool = cnni_calloc((size_t)total_io + 1, sizeof(cnni_tensor));
    g->written = cnni_calloc((size_t)g->n_vals + 1, sizeof(int));
    if (!g->np || !g->tensor_pool || !g->written) {
        cnni_free(g->np);
        cnni_free(g->tensor_pool);
        cnni_free(g->written);
        g->np = NULL;
        g->tensor_pool = NULL;
        g->written = NULL;
        return cnni_oom(e);
    }
    cnni_tensor *tp = g->tensor_pool;
    for (int i = 0; i < g->n_nodes; i++) {
        cnni_node *n = &g->nodes[i];
        g->np[i].in = tp;
        tp += n->n_in;
        g->np[i].din = tp;
        tp += n->n_in;
        g->np[i].out = tp;
        tp += n->n_out;
        g->np[i].dout = tp;
        tp += n->n_out;
    }

    /* Shapes. */
    for (int i = 0; i < n_inputs; i++) {
        cnni_val *v = &g->vals[g->inputs[i]];
        cnn_dtype dt = dtypes ? dtypes[i] : CNN_F32;
        if (dt != CNN_F32 && dt != CNN_I64)
            return cnni_fail(e, CNN_ERR_ARGUMENT, "model input '%s': dtype %s is not supported "
                             "(F32 or I64)",
                             v->name, cnn_dtype_name(dt));
        int64_t numel;
        cnn_status st = cnni_shape_numel(&shapes[i], &numel, e, v->name);
        if (st)
            return st;
        v->t.shape = shapes[i];
        v->t.dtype = dt;
        v->t.data = NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        cnni_node *n = &g->nodes[i];
        cnni_nodeplan *np = &g->np[i];
        for (int k = 0; k < n->n_in; k++) {
            np->in[k] = g->vals[n->in[k]].t;
            np->in[k].data = NULL;
        }
        cnni_infer inf;
        cnn_status st = cnni_infer_node(g, i, np->in, &inf, backward);
        if (st)
            return st;
        for (int k = 0; k < n->n_out; k++) {
            cnni_val *v = &g->vals[n->out[k]];
            v->t = inf.out[k];
            v->t.data = NULL;
            np->out[k] = inf.out[k];
        }
        np->saved_bytes = backward ? inf.saved_bytes : 0;
        np->work_bytes = inf.work_bytes;
        np->macs = inf.macs;
    }

    /* Fusions: a BatchNorm followed by a ReLU that alone reads its output
     * (not a model output) computes the ReLU in its own passes, forward
     * and backward. Every value is still written as if they ran apart. */
    for (int i = 0; i < g->n_nodes; i++) {
        g->np[i].relu_node = g->np[i].fused_into = g->np[i].pool_node = -1;
        g->np[i].wgrad_node = g->np[i].wgrad_into = -1;
        g->np[i].bgrad_node = g->np[i].bgrad_into = -1;
        g->np[i].agrad_node = g->np[i].agrad_into = -1;
        g->np[i].unwritten = 0;
    }
    for (int j = 0; j < g->n_nodes; j++) {
        const cnni_node *r = &g->nodes[j];
        if (strcmp(r->op->name, "ReLU") || r->n_in != 1)
            continue;
        const cnni_val *v = &g->vals[r->in[0]];
        const int i = v->producer;
        if (i < 0 || strncmp(g->nodes[i].op->name, "BatchNorm", 9) || v->producer_out != 0 || v->n_consumers != 1 ||
            v->t.dtype != CNN_F32)
            continue;
        int is_output = 0;
        for (int k = 0; k < g->n_outputs; k++)
            is_output |= g->outputs[k] == r->in[0];
        if (is_output)
            continue;
        g->np[i].relu_node = j;
        g->np[j].fused_into = i;
        fuse_pool(g, i, j, backward);
    }

    /* An elementwise activation whose output only a planewise average
     * pooling reads (not a model output) runs the pooling in its own
     * passes; it still writes its output, which its backward reads. */
    for (int j = 0; j < g->n_nodes; j++) {
        if (g->np[j].fused_into >= 0 || g->nodes[j].n_in != 1 || !cnni_act_pool_fusable(&g->nodes[j]))
            continue;
        const int yv = g->nodes[j].out[0], k = sole_reader(g, yv);
        cnni_pool_geom pg;
        if (k < 0 || g->np[k].fused_into >= 0 || g->vals[yv].t.dtype != CNN_F32 || g->vals[g->nodes[j].in[0]].t.dtype != CNN_F32 ||
            !cnni_avgpool_fusable(&g->nodes[k], &g->vals[yv].t.shape, &pg) || g->np[k].saved_bytes)
            continue;
        g->np[j].pool_node = k;
        g->np[k].fused_into = j;
        g->np[k].pool_geom = pg;
    }

    /* Which values need gradients. */
    for (int i = 0; i < g->n_vals; i++)
        g->vals[i].requires_grad = 0;
    if (backward) {
        for (int i = 0; i < n_inputs; i++) {
            cnni_val *v = &g->vals[g->inputs[i]];
            v->requires_grad = (flags & CNN_PLAN_INPUT_GRAD) && v->t.dtype == CNN_F32;
        }
        for (int i = 0; i < g->n_nodes; i++) {
            cnni_node *n = &g->nodes[i];
            int rg = 0;
            for (int k = 0; k < n->n_in; k++)
                rg |= g->vals[n->in[k]].requires_grad;
            for (int d = 0; d < n->n_params; d++)
                rg |= n->params[d].kind == CNN_PARAM;
            g->np[i].run_backward = rg && n->op->backward != NULL;
            for (int k = 0; k < n->n_out; k++) {
                cnni_val *v = &g->vals[n->out[k]];
                v->requires_grad = rg && v->t.dtype == CNN_F32;
            }
        }
    }

    /* A Conv2d whose output only a BatchNorm2d reads (not a model output)
     * and whose input needs no gradient (a first layer) has its weight
     * gradient taken plane by plane in the BatchNorm's backward: the
     * gradient of its output is then never written to memory and read
     * back. Where the planes fit the kernels' stack buffers and the vector
     * kernels serve the convolution. */
    for (int i = 0; backward && i < g->n_nodes; i++) {
        if (!cnni_is_batchnorm2d(&g->nodes[i]) || g->nodes[i].n_in != 1 || !g->np[i].run_backward)
            continue;
        const int v = g->nodes[i].in[0], c = g->vals[v].producer;
        if (c < 0 || sole_reader(g, v) != i || g->vals[v].producer_out != 0 || g->vals[v].t.dtype != CNN_F32 ||
            g->nodes[c].n_in != 1 || g->nodes[c].n_out != 1 || !g->np[c].run_backward)
            continue;
        const cnni_val *xin = &g->vals[g->nodes[c].in[0]];
        cnni_wgrad_plane_geom wg;
        if (xin->requires_grad || xin->t.dtype != CNN_F32 ||
            !cnni_conv_wgrad_fusable(&g->nodes[c], &xin->t.shape, g->isa, &wg) ||
            wg.OH * wg.OW > CNNI_NORM_POOL_MAX_PLANE)
            continue;
        g->np[i].wgrad_node = c;
        g->np[i].wgrad_geom = wg;
        g->np[c].wgrad_into = i;
        cnni_norm_geom ng = {.N = g->vals[v].t.shape.dims[0], .G = g->vals[v].t.shape.dims[1], .Cg = 1,
                             .S = wg.OH * wg.OW, .across_batch = 1};
        g->np[i].work_bytes += cnni_norm_fast_wgrad_scratch(&ng, &wg);
    }

    /* Otherwise a convolution's bias gradient, the sum of its output's
     * gradient per channel, is taken by the BatchNorm that alone reads that
     * output, from each plane of the gradient as it writes it: the
     * convolution's backward then does not read the whole gradient once
     * more for it. */
    for (int i = 0; backward && i < g->n_nodes; i++) {
        if (!cnni_is_batchnorm(&g->nodes[i]) || g->nodes[i].n_in != 1 || !g->np[i].run_backward ||
            g->np[i].wgrad_node >= 0)
            continue;
        const int v = g->nodes[i].in[0], c = g->vals[v].producer;
        if (c < 0 || sole_reader(g, v) != i || g->vals[v].producer_out != 0 || g->vals[v].t.dtype != CNN_F32 ||
            !g->vals[v].requires_grad || g->nodes[c].n_out != 1 || !g->np[c].run_backward ||
            g->np[c].wgrad_into >= 0 || !cnni_conv_bias_from_channels(&g->nodes[c], &g->vals[v].t.shape))
            continue;
        g->np[i].bgrad_node = c;
        g->np[c].bgrad_into = i;
        const cnn_shape *s = &g->vals[v].t.shape;
        int64_t S = 1;
        for (int d = 2; d < s->ndim; d++)
            S *= s->dims[d];
        cnni_norm_geom ng = {.N = s->dims[0], .G = s->dims[1], .Cg = 1, .S = S, .across_batch = 1};
        g->np[i].work_bytes += cnni_norm_fast_wgrad_scratch(&ng, NULL);
    }

    /* A sigmoid or tanh run with its 2x2 average pooling, whose input only
     * it reads, made by a convolution whose backward kernels can make
     * that input's gradient as they read it (cnni_conv_act_fusable): the
     * convolution takes the activation's backward, and the gradient
     * between them is not written to memory and read back. */
    for (int j = 0; backward && j < g->n_nodes; j++) {
        const cnni_act *act;
        const int k = g->np[j].pool_node;
        if (k < 0 || g->np[j].relu_node >= 0 || !g->np[j].run_backward || g->nodes[j].n_in != 1 ||
            !cnni_act_grad_from_output(&g->nodes[j], &act) || !cnni_pool_fast_two_by_two(&g->np[k].pool_geom))
            continue;
        const int v = g->nodes[j].in[0], c = g->vals[v].producer;
        int is_output = 0;
        for (int q = 0; q < g->n_outputs; q++)
            is_output |= g->outputs[q] == v;
        if (c < 0 || is_output || sole_reader(g, v) != j || g->vals[v].producer_out != 0 ||
            g->vals[v].t.dtype != CNN_F32 || !g->vals[v].requires_grad || g->nodes[c].n_in != 1 ||
            g->nodes[c].n_out != 1 || !g->np[c].run_backward || g->np[c].fused_into >= 0 ||
            g->np[c].wgrad_into >= 0 || g->np[c].bgrad_into >= 0)
            continue;
        const cnni_val *xin = &g->vals[g->nodes[c].in[0]];
        if (xin->t.dtype != CNN_F32 || !cnni_conv_act_fusable(&g->nodes[c], &xin->t.shape, g->isa, xin->requires_grad))
            continue;
        g->np[c].agrad_node = j;
        g->np[j].agrad_into = c;
    }

    plan_shards(g, backward);

    /* Arena layout. */
    size_t total = 0, work = 0, scratch = 0;
    size_t *val_off = cnni_calloc((size_t)g->n_vals * 2 + 1, sizeof(size_t));
    size_t *saved_off = cnni_calloc((size_t)g->n_nodes + 1, sizeof(size_t));
    if (!val_off || !saved_off) {
        cnni_free(val_off);
        cnni_free(saved_off);
        return cnni_oom(e);
    }
    int overflow = 0;
#define ADD(bytes, off_out)                                                                        \
    do {                                                                                           \
        size_t a_ = align64(bytes);                                                                \
        if (a_ < (bytes) || !cnni_zadd_ok(total, a_, &total))                                      \
            overflow = 1;                                                                          \
        (off_out) = total - a_;                                                                    \
    } while (0)
    /* A view's output (Flatten's) shares its input's buffers when nothing
     * else reads the input and it is no model output: no copy forward or
     * backward (the gradient the view receives is its input's). */
    int *alias = cnni_calloc((size_t)g->n_vals + 1, sizeof(int));
    if (!alias) {
        cnni_free(val_off);
        cnni_free(saved_off);
        return cnni_oom(e);
    }
    for (int i = 0; i < g->n_vals; i++)
        alias[i] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const cnni_node *n = &g->nodes[i];
        if (!n->op->view || n->n_in != 1 || n->n_out != 1)
            continue;
        const int vi = n->in[0], vo = n->out[0];
        if (sole_reader(g, vi) == i && g->vals[vi].t.dtype == g->vals[vo].t.dtype &&
            g->vals[vi].requires_grad == g->vals[vo].requires_grad)
            alias[vo] = vi;
    }
    for (int i = 0; i < g->n_vals; i++) {
        cnni_val *v = &g->vals[i];
        if (alias[i] >= 0)
            continue;
        size_t bytes = (size_t)cnni_numel(&v->t.shape) * cnni_dtype_size(v->t.dtype);
        ADD(bytes, val_off[2 * i]);
        if (v->requires_grad)
            ADD(bytes, val_off[2 * i + 1]);
    }
    for (int i = 0; i < g->n_vals; i++) {
        int r = i;
        while (alias[r] >= 0) /* a view of a view: the first one's input */
            r = alias[r];
        val_off[2 * i] = val_off[2 * r];
        val_off[2 * i + 1] = val_off[2 * r + 1];
    }
    cnni_free(alias);
    for (int i = 0; i < g->n_nodes; i++) {
        cnni_nodeplan *np = &g->np[i];
        if (np->saved_bytes)
            ADD(np->saved_bytes, saved_off[i]);
        if (np->work_bytes > work)
            work = np->work_bytes;
        if (np->run_backward) {
            size_t s = 0;
            for (int k = 0; k < g->nodes[i].n_in; k++) {
                cnni_val *v = &g->vals[g->nodes[i].in[k]];
                if (v->requires_grad)
                    s += align64((size_t)cnni_numel(&v->t.shape) * sizeof(float));
            }
            if (s > scratch)
                scratch = s;
        }
    }
    size_t work_off, scratch_off, swork_off = 0, sgrad_off = 0, sgrad_bytes = 0;
    ADD(work, work_off);
    ADD(scratch, scratch_off);
    if (g->shard_end) {
        if (g->shard_work_bytes)
            g->shard_work_bytes = align64(g->shard_work_bytes);
        ADD(g->shard_work_bytes * CNNI_SHARDS, swork_off);
        if (backward) {
            sgrad_bytes = g->p_cap * sizeof(float) * (CNNI_SHARDS - 1);
            ADD(sgrad_bytes, sgrad_off);
        }
    }
#undef ADD
    if (overflow) {
        cnni_free(val_off);
        cnni_free(saved_off);
        return cnni_fail(e, CNN_ERR_OVERFLOW, "the plan needs more memory than can be addressed");
    }
    /* Never a NULL arena: empty tensors still get valid (unused) pointers. */
    if (total == 0)
        total = 64;
    if (total > g->arena_cap) {
        cnni_afree(g->arena);
        g->arena = cnni_amalloc(total);
        g->arena_cap = g->arena ? total : 0;
        if (!g->arena) {
            cnni_free(val_off);
            cnni_free(saved_off);
            return cnni_fail(e, CNN_ERR_NOMEM, "out of memory: the plan needs %zu bytes", total);
        }
    }
    char *base = g->arena;
    for (int i = 0; i < g->n_vals; i++) {
        cnni_val *v = &g->vals[i];
        v->t.data = base + val_off[2 * i];
        v->grad = v->requires_grad ? (float *)(base + val_off[2 * i + 1]) : NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        cnni_node *n = &g->nodes[i];
        cnni_nodeplan *np = &g->np[i];
        np->saved = np->saved_bytes ? base + saved_off[i] : NULL;
        for (int k = 0; k < n->n_in; k++)
            np->in[k] = g->vals[n->in[k]].t;
        for (int k = 0; k < n->n_out; k++)
            np->out[k] = g->vals[n->out[k]].t;
    }
    g->work = work ? base + work_off : NULL;
    g->work_bytes = work;
    g->scratch = scratch ? (float *)(base + scratch_off) : NULL;
    g->scratch_bytes = scratch;
    g->shard_work = g->shard_end && g->shard_work_bytes ? base + swork_off : NULL;
    g->shard_grad = sgrad_bytes ? (float *)(base + sgrad_off) : NULL;
    g->shard_glo = g->shard_ghi = 0;
    if (g->shard_grad) {
        memset(g->shard_grad, 0, sgrad_bytes);
        /* the chain's parameter gradients: one range of pgrad */
        size_t lo = g->p_cap, hi = 0;
        for (int i = 0; i < g->n_params; i++) {
            const cnni_pentry *pe = &g->params[i];
            if (pe->node >= g->shard_end || pe->kind != CNN_PARAM)
                continue;
            lo = pe->off < lo ? pe->off : lo;
            hi = pe->off + (size_t)pe->numel > hi ? pe->off + (size_t)pe->numel : hi;
        }
        if (hi > lo) {
            g->shard_glo = lo;
            g->shard_ghi = hi;
        }
    }
    g->plan_flags = flags;
    g->planned = 1;
    cnni_free(val_off);
    cnni_free(saved_off);
    return CNN_OK;
}

cnn_status cnn_graph_set_isa(cnn_graph *g, const char *isa)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    cnni_isa best = cnni_cpu_best_isa(), want;
    if (!isa || !strcmp(isa, "auto"))
        want = best;
    else if (!strcmp(isa, "generic"))
        want = CNNI_ISA_GENERIC;
    else if (!strcmp(isa, "avx2"))
        want = CNNI_ISA_AVX2;
    else if (!strcmp(isa, "avx512"))
        want = CNNI_ISA_AVX512;
    else
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT,
                         "unknown instruction set '%s' (auto, generic, avx2, avx512)", isa);
    if (want > best)
        return cnni_fail(&g->err, CNN_ERR_UNSUPPORTED, "this CPU does not support %s (it has %s)",
                         cnni_isa_name(want), cnni_isa_name(best));
    if ((int)want != g->isa)
        cnni_graph_drop_plan(g);
    g->isa = (int)want;
    return CNN_OK;
}

const char *cnn_graph_isa(const cnn_graph *g) { return g ? cnni_isa_name((cnni_isa)g->isa) : "?"; }

void *cnn_graph_input_data(cnn_graph *g, int i)
{
    if (!g || !g->planned || i < 0 || i >= g->n_inputs)
        return NULL;
    return g->vals[g->inputs[i]].t.data;
}

cnn_status cnn_graph_output(cnn_graph *g, int i, void **data, cnn_shape *shape, cnn_dtype *dtype)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    if (!g->planned)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_output: the graph is not planned");
    if (i < 0 || i >= g->n_outputs)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "output %d does not exist (the model has %d)", i,
                         g->n_outputs);
    const cnni_val *v = &g->vals[g->outputs[i]];
    if (data)
        *data = v->t.data;
    if (shape)
        *shape = v->t.shape;
    if (dtype)
        *dtype = v->t.dtype;
    return CNN_OK;
}
