/* Running a planned graph: forward in node order, backward in reverse,
 * with gradients of values used more than once summed. */
#include "graph_internal.h"
#include "../core/pool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void fill_exec(cnn_graph *g, int i, cnni_exec *x, float **param, float **grad, void **buffer,
                      int training)
{
    cnni_node *n = &g->nodes[i];
    cnni_nodeplan *np = &g->np[i];
    cnni_node_param_ptrs(g, n, param, grad, buffer);
    memset(x, 0, sizeof *x);
    x->node = n;
    x->opts = n->opts;
    x->n_in = n->n_in;
    x->in = np->in;
    x->n_out = n->n_out;
    x->out = np->out;
    x->dout = np->dout;
    x->din = np->din;
    x->param = param;
    x->grad = grad;
    x->buffer = buffer;
    x->saved = np->saved;
    x->work = g->work;
    x->training = training;
    x->rng = &g->run_rng;
    x->pool = g->pool;
    x->e = &g->err;
    x->isa = g->isa;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Profiling records per node; allocated when turned on (outside a step). */
void cnn_graph_set_profiling(cnn_graph *g, int on)
{
    if (!g)
        return;
    cnni_free(g->prof);
    g->prof = NULL;
    g->profiling = 0;
    if (on && g->n_nodes) {
        g->prof = cnni_calloc((size_t)g->n_nodes * 3, sizeof(double));
        g->profiling = g->prof != NULL;
    }
}

static cnn_status node_failed(cnn_graph *g, int i, cnn_status st)
{
    char where[600];
    cnni_node_where(g, &g->nodes[i], where, sizeof where);
    cnni_err_prefix(&g->err, "%s", where);
    return st;
}

/* ---- Shards (see cnn_graph): nodes [0, shard_end) on parts of the batch ---- */

static cnni_tensor rows_of(const cnni_tensor *t, int64_t batch, int64_t r0, int64_t r1);

/* A convolution's exec taking activation a's backward (cnni_exec's
 * agrad_act): the whole batch (batch 0), or rows [r0, r1) of it; *pg
 * receives the pooling's geometry for them. */
static void agrad_of(cnn_graph *g, int a, cnni_exec *x, cnni_pool_geom *pg, int64_t batch, int64_t r0, int64_t r1)
{
    const int k = g->np[a].pool_node;
    const cnni_val *pv = &g->vals[g->nodes[k].out[0]];
    cnni_tensor y = g->np[a].out[0], dp = pv->t;
    dp.data = pv->grad;
    *pg = g->np[k].pool_geom;
    if (batch > 0) {
        y = rows_of(&y, batch, r0, r1);
        dp = rows_of(&dp, batch, r0, r1);
        pg->NC = pg->NC / batch * (r1 - r0);
    }
    cnni_act_grad_from_output(&g->nodes[a], &x->agrad_act);
    x->agrad_geom = pg;
    x->agrad_y = y.data;
    x->agrad_dp = dp.data;
}

/* Rows [r0, r1) of batch-major tensor t (of `batch` rows). */
static cnni_tensor rows_of(const cnni_tensor *t, int64_t batch, int64_t r0, int64_t r1)
{
    cnni_tensor u = *t;
    const size_t row = (size_t)(cnni_numel(&t->shape) / batch) * cnni_dtype_size(t->dtype);
    u.shape.dims[0] = r1 - r0;
    if (u.data)
        u.data = (char *)u.data + (size_t)r0 * row;
    return u;
}

typedef struct {
    cnn_graph *g;
    int lo, hi;          /* nodes: forward from lo up, backward from hi - 1 down */
    int training, backward;
    cnn_status st[CNNI_SHARDS];
    int node[CNNI_SHARDS]; /* where shard s failed */
    cnn_err err[CNNI_SHARDS];
} shard_job;

/* Node i on shard s, forward or backward (np->din / np->dout set by the
 * caller for the whole batch), on one thread, with the shard's own
 * scratch and, for s > 0, parameter gradients. */
static cnn_status shard_node(shard_job *j, int i, int s)
{
    cnn_graph *g = j->g;
    cnni_nodeplan *np = &g->np[i];
    const int64_t batch = cnni_graph_batch(g);
    int64_t r0, r1;
    cnni_split(batch, CNNI_SHARDS, s, &r0, &r1);
    float *param[CNNI_MAX_PARAMS], *grad[CNNI_MAX_PARAMS];
    void *buffer[CNNI_MAX_PARAMS];
    cnni_exec x;
    fill_exec(g, i, &x, param, grad, buffer, j->backward ? 1 : j->training);
    if (s > 0)
        for (int d = 0; d < g->nodes[i].n_params; d++)
            if (grad[d])
                grad[d] = g->shard_grad + (size_t)(s - 1) * g->p_cap + (grad[d] - g->pgrad);
    cnni_tensor in = rows_of(&np->in[0], batch, r0, r1), out = rows_of(&np->out[0], batch, r0, r1);
    cnni_tensor din = {0}, dout = {0};
    x.in = &in;
    x.out = &out;
    x.work = g->shard_work ? (char *)g->shard_work + (size_t)s * g->shard_work_bytes : NULL;
    x.pool = NULL;
    x.e = &j->err[s];
    const int pk = g->fused_run ? np->pool_node : -1;
    cnni_pool_geom pg;
    if (pk >= 0) {
        pg = g->np[pk].pool_geom;
        pg.NC = pg.NC / batch * (r1 - r0);
        x.pool_geom = &pg;
        if (!j->backward) {
            cnni_tensor po = rows_of(&g->np[pk].out[0], batch, r0, r1);
            x.pool_out = po.data;
        }
    }
    if (!j->backward)
        return g->nodes[i].op->forward(&x);
    const int ak = g->fused_run ? np->agrad_node : -1;
    cnni_pool_geom ag;
    if (ak >= 0)
        agrad_of(g, ak, &x, &ag, batch, r0, r1);
    din = rows_of(&np->din[0], batch, r0, r1);
    dout = rows_of(&np->dout[0], batch, r0, r1);
    x.din = &din;
    x.dout = &dout;
    return g->nodes[i].op->backward(&x);
}

/* Whether node i runs in this pass: a fused pooling runs in its
 * activation; backward, only nodes that have one. */
static int shard_runs(const cnn_graph *g, int i, int backward)
{
    if (g->fused_run && g->np[i].fused_into >= 0)
        return 0;
    if (backward && g->fused_run && g->np[i].agrad_into >= 0)
        return 0; /* taken by its convolution */
    return !backward || g->np[i].run_backward;
}

/* Task s: shard s through nodes [lo, hi), forward up or backward down. */
static void shard_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    shard_job *j = ctx;
    const int s = (int)t;
    for (int k = 0; k < j->hi - j->lo; k++) {
        const int i = j->backward ? j->hi - 1 - k : j->lo + k;
        if (!shard_runs(j->g, i, j->backward))
            continue;
        cnn_status st = shard_node(j, i, s);
        if (st) {
            j->st[s] = st;
            j->node[s] = i;
            return;
        }
    }
}

/* Runs the chain in shards: all of it per task, or with profiling or
 * anomaly checks node by node (each node's shards a job), which computes
 * the same. */
static cnn_status run_shards(cnn_graph *g, int training, int backward)
{
    shard_job j;
    memset(&j, 0, sizeof j);
    j.g = g;
    j.training = training;
    j.backward = backward;
    const int end = g->shard_end;
    if (!g->profiling && !g->detect_anomaly) {
        j.lo = 0;
        j.hi = end;
        cnni_pool_run(g->pool, shard_task, &j, CNNI_SHARDS);
    } else {
        for (int k = 0; k < end; k++) {
            const int i = backward ? end - 1 - k : k;
            if (!shard_runs(g, i, backward)) {
                if (!backward && g->profiling)
                    g->prof[3 * i + 2] += 1;
                continue;
            }
            j.lo = i;
            j.hi = i + 1;
            double t0 = g->profiling ? seconds() : 0;
            cnni_pool_run(g->pool, shard_task, &j, CNNI_SHARDS);
            if (g->profiling) {
                g->prof[3 * i + (backward ? 1 : 0)] += seconds() - t0;
                if (!backward)
                    g->prof[3 * i + 2] += 1;
            }
            int failed = 0;
            for (int s = 0; s < CNNI_SHARDS; s++)
                failed |= j.st[s] != CNN_OK;
            if (failed)
                break;
            cnn_status st = g->detect_anomaly ? (backward ? cnni_anomaly_backward(g, i) : cnni_anomaly_forward(g, i))
                                              : CNN_OK;
            if (st)
                return st;
        }
    }
    for (int s = 0; s < CNNI_SHARDS; s++)
        if (j.st[s]) {
            g->err = j.err[s];
            return node_failed(g, j.node[s], j.st[s]);
        }
    return CNN_OK;
}

/* Adds each shard's parameter gradients to pgrad, in shard order, and
 * zeroes them for the next step: tasks over blocks of the range. */
#define SHARD_SUM_BLOCK 8192
/* gcc's -O2 vectorises only loops that need no run-time checks */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
static void shard_sum_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    cnn_graph *g = ctx;
    const size_t lo = g->shard_glo + (size_t)t * SHARD_SUM_BLOCK;
    const size_t hi = lo + SHARD_SUM_BLOCK < g->shard_ghi ? lo + SHARD_SUM_BLOCK : g->shard_ghi;
    float *restrict pg = g->pgrad;
    for (int s = 1; s < CNNI_SHARDS; s++) {
        float *restrict sg = g->shard_grad + (size_t)(s - 1) * g->p_cap;
        for (size_t k = lo; k < hi; k++) {
            pg[k] += sg[k];
            sg[k] = 0.0f;
        }
    }
}

static void shard_sum(cnn_graph *g)
{
    if (!g->shard_grad || g->shard_ghi <= g->shard_glo)
        return;
    const int64_t blocks = (int64_t)((g->shard_ghi - g->shard_glo + SHARD_SUM_BLOCK - 1) / SHARD_SUM_BLOCK);
    cnni_pool_run(g->pool, shard_sum_task, g, blocks);
}

/* Backward of the chain: each node's gradients as the whole-batch loop
 * would set them (a chain node's input gradient is its input's own, the
 * value read by it alone), then the shards, then their parameter
 * gradients summed. */
static int in_chain_reader(const cnn_graph *g, int i, int vi);

/* The gradient of node k's output zeroed where nothing wrote it (nor will
 * a reader in the chain): what the skipped backward of an activation taken
 * by its convolution would have done with the gradient reaching it. */
static void zero_unwritten(cnn_graph *g, int k)
{
    cnni_val *v = &g->vals[g->nodes[k].out[0]];
    const int vi = (int)(v - g->vals);
    if (v->grad && !g->written[vi] && !in_chain_reader(g, k, vi)) {
        memset(v->grad, 0, (size_t)cnni_numel(&v->t.shape) * sizeof(float));
        g->written[vi] = 1;
    }
}

/* Whether a node of the chain after node i reads value vi and runs its backward there. */
static int in_chain_reader(const cnn_graph *g, int i, int vi)
{
    int in_chain = 0;
    for (int c = i + 1; c < g->shard_end; c++)
        in_chain |= g->nodes[c].in[0] == vi && shard_runs(g, c, 1);
    return in_chain;
}

static cnn_status backward_shards(cnn_graph *g)
{
    const int end = g->shard_end;
    for (int i = end - 1; i >= 0; i--) {
        cnni_node *n = &g->nodes[i];
        cnni_nodeplan *np = &g->np[i];
        if (g->fused_run && np->agrad_into >= 0 && np->run_backward) {
            zero_unwritten(g, np->pool_node);
            continue;
        }
        if (!shard_runs(g, i, 1))
            continue;
        const int pk = g->fused_run ? np->pool_node : -1;
        cnni_val *v = &g->vals[pk >= 0 ? g->nodes[pk].out[0] : n->out[0]];
        np->dout[0] = v->t;
        np->dout[0].data = v->grad;
        const int vi = (int)(v - g->vals);
        /* a gradient that neither a node after the chain wrote nor its
         * reader in the chain will write is zero */
        const int in_chain = in_chain_reader(g, i, vi);
        /* (nor the gradient its activation's backward, taken by the
         * convolution, would have written) */
        if (v->grad && !g->written[vi] && !in_chain && !(g->fused_run && np->agrad_node >= 0)) {
            memset(v->grad, 0, (size_t)cnni_numel(&v->t.shape) * sizeof(float));
            g->written[vi] = 1;
        }
        cnni_val *u = &g->vals[n->in[0]];
        np->din[0] = u->t;
        np->din[0].data = u->requires_grad ? u->grad : NULL;
    }
    cnn_status st = run_shards(g, 1, 1);
    if (st) {
        /* the shards' gradients start from zero next time */
        if (g->shard_grad)
            memset(g->shard_grad, 0, g->p_cap * sizeof(float) * (CNNI_SHARDS - 1));
        return st;
    }
    for (int i = 0; i < end; i++) {
        const cnni_val *u = &g->vals[g->nodes[i].in[0]];
        if (shard_runs(g, i, 1) && u->requires_grad && u->grad)
            g->written[g->nodes[i].in[0]] = 1;
    }
    shard_sum(g);
    return CNN_OK;
}

cnn_status cnn_graph_forward(cnn_graph *g, int training)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!g->planned)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_forward: call cnn_graph_plan first");
    g->fused_run = !g->detect_anomaly;
    g->step_start = 0;
    if (training && g->adaptive && g->pool) {
        /* a training step starts: on the threads adapt chooses, timed to
         * the end of its backward */
        cnni_pool_set_width(g->pool, cnni_adapt_threads(&g->adapt));
        g->step_rows = cnni_graph_batch(g);
        g->step_start = seconds();
    }
    if (g->shard_end) {
        cnn_status st = run_shards(g, training, 0);
        if (st)
            return st;
        for (int i = 0; i < g->shard_end; i++)
            g->np[i].unwritten = 0;
    }
    for (int i = g->shard_end; i < g->n_nodes; i++) {
        float *param[CNNI_MAX_PARAMS], *grad[CNNI_MAX_PARAMS];
        void *buffer[CNNI_MAX_PARAMS];
        cnni_exec x;
        if (g->fused_run && g->np[i].fused_into >= 0) {
            /* its BatchNorm wrote its output (and the time is counted there) */
            if (g->profiling)
                g->prof[3 * i + 2] += 1;
            continue;
        }
        fill_exec(g, i, &x, param, grad, buffer, training);
        if (g->fused_run && g->np[i].relu_node >= 0)
            x.relu_out = g->np[g->np[i].relu_node].out[0].data;
        const int pk = g->fused_run ? g->np[i].pool_node : -1;
        if (pk >= 0) {
            x.pool_geom = &g->np[pk].pool_geom;
            x.pool_out = g->np[pk].out[0].data;
            x.pool_idx = g->np[pk].saved;
        }
        g->np[i].unwritten = 0;
        double t0 = g->profiling ? seconds() : 0;
        cnn_status st = g->nodes[i].op->forward(&x);
        if (st)
            return node_failed(g, i, st);
        g->np[i].unwritten = pk >= 0 && g->nodes[i].op->materialize; /* an activation writes its own */
        if (g->detect_anomaly && (st = cnni_anomaly_forward(g, i)) != CNN_OK)
            return st;
        if (g->profiling) {
            g->prof[3 * i] += seconds() - t0;
            g->prof[3 * i + 2] += 1;
        }
    }
    g->forward_done = 1;
    for (int i = 0; i < g->n_vals; i++)
        g->written[i] = 0;
    return CNN_OK;
}

float *cnn_graph_output_grad(cnn_graph *g, int i)
{
    if (!g || !g->planned || i < 0 || i >= g->n_outputs)
        return NULL;
    cnni_val *v = &g->vals[g->outputs[i]];
    if (!v->grad)
        return NULL;
    /* The caller fills it: it now holds this output's gradient. */
    g->written[g->outputs[i]] = 1;
    return v->grad;
}

cnn_status cnn_graph_backward(cnn_graph *g)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!g->planned || !(g->plan_flags & CNN_PLAN_BACKWARD))
        return cnni_fail(&g->err, CNN_ERR_STATE,
                         "cnn_graph_backward: plan the graph with CNN_PLAN_BACKWARD first");
    if (!g->forward_done)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_backward: run cnn_graph_forward first");
    if (g->loss_node >= 0) {
        /* Backward starts from the loss: d loss / d loss = 1. */
        int lv = g->nodes[g->loss_node].out[0];
        cnni_val *v = &g->vals[lv];
        if (v->grad && !g->written[lv]) {
            int64_t n = cnni_numel(&v->t.shape);
            for (int64_t j = 0; j < n; j++)
                v->grad[j] = 1.0f;
            g->written[lv] = 1;
        }
    }
    for (int i = g->n_nodes - 1; i >= g->shard_end; i--) {
        cnni_node *n = &g->nodes[i];
        cnni_nodeplan *np = &g->np[i];
        if (np->run_backward && g->fused_run && np->agrad_into >= 0) {
            /* an activation's gradient is taken by its convolution, which
             * reads the one that arrives here: zero if nothing wrote it */
            zero_unwritten(g, np->pool_node);
            continue;
        }
        if (!np->run_backward || (g->fused_run && (np->fused_into >= 0 || np->wgrad_into >= 0)))
            continue; /* a fused ReLU's gradient, or a convolution's, is taken by its BatchNorm */
        const int relu = g->fused_run ? np->relu_node : -1, pk = g->fused_run ? np->pool_node : -1;
        for (int k = 0; k < n->n_out; k++) {
            /* fused: the gradient that arrives is the ReLU output's, or the pooling's */
            cnni_val *v = &g->vals[pk >= 0     ? g->nodes[pk].out[0]
                                   : relu >= 0 ? g->nodes[relu].out[0]
                                               : n->out[k]];
            np->dout[k] = v->t;
            np->dout[k].data = v->grad;
            const int vi = (int)(v - g->vals);
            if (v->grad && !g->written[vi] && !(g->fused_run && np->agrad_node >= 0)) {
                /* Nothing downstream used this output: its gradient is zero. */
                memset(v->grad, 0, (size_t)cnni_numel(&v->t.shape) * sizeof(float));
                g->written[vi] = 1;
            }
        }
        char *scratch = (char *)g->scratch;
        int direct[64];
        for (int k = 0; k < n->n_in; k++) {
            cnni_val *v = &g->vals[n->in[k]];
            np->din[k] = v->t;
            np->din[k].data = NULL;
            if (k < 64)
                direct[k] = 0;
            if (!v->requires_grad)
                continue;
            int repeated = 0;
            for (int j = 0; j < k; j++)
                if (n->in[j] == n->in[k])
                    repeated = 1;
            if (!g->written[n->in[k]] && !repeated && k < 64) {
                np->din[k].data = v->grad;
                direct[k] = 1;
            } else {
                np->din[k].data = scratch;
                scratch += ((size_t)cnni_numel(&v->t.shape) * sizeof(float) + 63) & ~(size_t)63;
            }
        }
        float *param[CNNI_MAX_PARAMS], *grad[CNNI_MAX_PARAMS];
        void *buffer[CNNI_MAX_PARAMS];
        cnni_exec x;
        fill_exec(g, i, &x, param, grad, buffer, 1);
        x.relu_grad = relu >= 0;
        if (pk >= 0) {
            x.pool_geom = &g->np[pk].pool_geom;
            x.pool_idx = g->np[pk].saved;
        }
        const int wc = g->fused_run ? np->wgrad_node : -1;
        float *cparam[CNNI_MAX_PARAMS], *cgrad[CNNI_MAX_PARAMS];
        void *cbuffer[CNNI_MAX_PARAMS];
        if (wc >= 0) {
            /* the convolution's weight gradient (and its bias's, when it
             * has one) accumulates here; its output's gradient is not
             * written */
            cnni_node_param_ptrs(g, &g->nodes[wc], cparam, cgrad, cbuffer);
            x.wgrad_geom = &np->wgrad_geom;
            x.wgrad_x = g->vals[g->nodes[wc].in[0]].t.data;
            x.wgrad_dw = cgrad[0];
            x.wgrad_db = g->nodes[wc].n_params > 1 ? cgrad[1] : NULL;
        }
        const int bc = g->fused_run ? np->bgrad_node : -1;
        if (bc >= 0) {
            /* the convolution's bias gradient, summed as the input gradient is written */
            cnni_node_param_ptrs(g, &g->nodes[bc], cparam, cgrad, cbuffer);
            x.wgrad_db = cgrad[1];
        }
        x.bias_grad_taken = g->fused_run && np->bgrad_into >= 0;
        cnni_pool_geom ag;
        if (g->fused_run && np->agrad_node >= 0)
            agrad_of(g, np->agrad_node, &x, &ag, 0, 0, 0);
        double t0 = g->profiling ? seconds() : 0;
        cnn_status st = n->op->backward(&x);
        if (st)
            return node_failed(g, i, st);
        if (g->detect_anomaly && (st = cnni_anomaly_backward(g, i)) != CNN_OK)
            return st;
        if (g->profiling)
            g->prof[3 * i + 1] += seconds() - t0;
        for (int k = 0; k < n->n_in; k++) {
            cnni_val *v = &g->vals[n->in[k]];
            if (!np->din[k].data)
                continue;
            if (k < 64 && direct[k]) {
                g->written[n->in[k]] = 1;
                continue;
            }
            /* A second use of this value: add its gradient to the first's. */
            float *dst = v->grad;
            const float *src = np->din[k].data;
            int64_t cnt = cnni_numel(&v->t.shape);
            if (!g->written[n->in[k]]) {
                memcpy(dst, src, (size_t)cnt * sizeof(float));
                g->written[n->in[k]] = 1;
            } else {
                for (int64_t j = 0; j < cnt; j++)
                    dst[j] += src[j];
            }
        }
    }
    if (g->shard_end) {
        cnn_status st = backward_shards(g);
        if (st)
            return st;
    }
    /* Inputs whose gradient nobody wrote (unused inputs) get zeros. */
    for (int i = 0; i < g->n_inputs; i++) {
        cnni_val *v = &g->vals[g->inputs[i]];
        if (v->grad && !g->written[g->inputs[i]])
            memset(v->grad, 0, (size_t)cnni_numel(&v->t.shape) * sizeof(float));
    }
    for (int i = 0; i < g->n_vals; i++)
        g->written[i] = 0;
    g->forward_done = 0;
    if (g->step_start > 0) {
        cnni_adapt_record(&g->adapt, (seconds() - g->step_start) / (double)(g->step_rows > 0 ? g->step_rows : 1));
        g->step_start = 0;
    }
    return CNN_OK;
}

const float *cnn_graph_input_grad(cnn_graph *g, int i)
{
    if (!g || !g->planned || i < 0 || i >= g->n_inputs)
        return NULL;
    return g->vals[g->inputs[i]].grad;
}

/* Zeroes a block of SHARD_SUM_BLOCK of the p_len gradients in use. They
 * were last written by both threads (the kernels and the shards' sum):
 * each clears its share rather than one thread fetching them all. */
static void zero_grad_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    cnn_graph *g = ctx;
    const size_t lo = (size_t)t * SHARD_SUM_BLOCK, hi = lo + SHARD_SUM_BLOCK < g->p_len ? lo + SHARD_SUM_BLOCK : g->p_len;
    memset(g->pgrad + lo, 0, (hi - lo) * sizeof(float));
}

void cnn_graph_zero_grad(cnn_graph *g)
{
    if (g && g->pgrad) {
        const int64_t blocks = (int64_t)((g->p_len + SHARD_SUM_BLOCK - 1) / SHARD_SUM_BLOCK);
        cnni_pool_run_blocked(blocks >= 4 ? g->pool : NULL, zero_grad_task, g, blocks);
    }
}

cnn_status cnni_graph_materialize(cnn_graph *g, int i)
{
    /* the ReLU of a fused pair is written by its BatchNorm */
    if (g->np[i].fused_into >= 0 && g->np[i].relu_node < 0 && g->np[g->np[i].fused_into].relu_node == i)
        i = g->np[i].fused_into;
    if (!g->np[i].unwritten || !g->nodes[i].op->materialize)
        return CNN_OK;
    float *param[CNNI_MAX_PARAMS], *grad[CNNI_MAX_PARAMS];
    void *buffer[CNNI_MAX_PARAMS];
    cnni_exec x;
    fill_exec(g, i, &x, param, grad, buffer, 0);
    x.relu_out = g->np[g->np[i].relu_node].out[0].data;
    cnn_status st = g->nodes[i].op->materialize(&x);
    if (st)
        return node_failed(g, i, st);
    g->np[i].unwritten = 0;
    return CNN_OK;
}
