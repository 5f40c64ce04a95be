/* A Keras-style model summary, as a text table or JSON, from a planned
 * graph: each layer's output shape, parameters, multiply-adds and inputs;
 * parameter totals; and the memory a forward pass and a training step need. */
#include "graph_internal.h"
#include "../io/json.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    int64_t params, trainable, macs;
    size_t fwd_bytes, train_bytes, param_bytes;
} totals;

static void fmt_int(int64_t v, char *buf, size_t n)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
    size_t len = strlen(tmp), o = 0;
    if (v < 0 && o + 1 < n)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        if (i && (len - i) % 3 == 0 && o + 1 < n)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

static void fmt_shape(const cnn_shape *s, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "(N");
    for (int i = 1; i < s->ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, ", %lld", (long long)s->dims[i]);
    if (o < n)
        snprintf(buf + o, n - o, ")");
}

static void fmt_bytes(double b, char *buf, size_t n)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.2f GB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, n, "%.2f MB", b / (1024.0 * 1024));
    else
        snprintf(buf, n, "%.2f KB", b / 1024.0);
}

static int64_t node_params(const cnn_graph *g, const cnni_node *n, int64_t *trainable)
{
    int64_t total = 0;
    *trainable = 0;
    for (int d = 0; d < n->n_params; d++) {
        const cnni_pentry *p = &g->params[n->params[d].index];
        total += p->numel;
        if (p->kind == CNN_PARAM)
            *trainable += p->numel;
    }
    return total;
}

static size_t val_bytes(const cnni_val *v)
{
    return (size_t)cnni_numel(&v->t.shape) * cnni_dtype_size(v->t.dtype);
}

/* Memory of a forward pass and of a training step at the planned batch:
 * every value (kept for backward), gradients of float values, what each
 * layer saves for backward, and the largest scratch; plus parameters,
 * buffers and parameter gradients. */
static cnn_status measure(cnn_graph *g, totals *t, int64_t *node_macs)
{
    size_t work = 0, saved = 0, values = 0, grads = 0;
    for (int i = 0; i < g->n_vals; i++) {
        values += val_bytes(&g->vals[i]);
        if (g->vals[i].t.dtype == CNN_F32 && g->vals[i].producer >= 0)
            grads += val_bytes(&g->vals[i]);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const cnni_node *n = &g->nodes[i];
        cnni_infer inf;
        cnn_status st = cnni_infer_node(g, i, g->np[i].in, &inf, 1);
        if (st)
            return st;
        saved += inf.saved_bytes;
        if (inf.work_bytes > work)
            work = inf.work_bytes;
        node_macs[i] = inf.macs;
        int64_t tr;
        t->params += node_params(g, n, &tr);
        t->trainable += tr;
        t->macs += inf.macs;
    }
    t->param_bytes = (g->p_len * 2 + g->b_len) * sizeof(float) + g->i_len * sizeof(int64_t);
    t->fwd_bytes = values + work + (g->p_len + g->b_len) * sizeof(float);
    t->train_bytes = values + grads + saved + work + t->param_bytes;
    return CNN_OK;
}

static void connected(const cnn_graph *g, const cnni_node *n, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int k = 0; k < n->n_in && o < len; k++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", k ? ", " : "", g->vals[n->in[k]].name);
}

static void text_summary(cnn_graph *g, const totals *t, const int64_t *macs, cnni_buf *b)
{
    /* Column widths from the content. */
    int wname = 14, wshape = 14;
    char tmp[512], shape[256];
    for (int i = 0; i < g->n_nodes; i++) {
        snprintf(tmp, sizeof tmp, "%s (%s)", g->nodes[i].name, g->nodes[i].op->name);
        if ((int)strlen(tmp) > wname)
            wname = (int)strlen(tmp);
        fmt_shape(&g->vals[g->nodes[i].out[0]].t.shape, shape, sizeof shape);
        if ((int)strlen(shape) > wshape)
            wshape = (int)strlen(shape);
    }
    for (int i = 0; i < g->n_inputs; i++) {
        snprintf(tmp, sizeof tmp, "%s (Input)", g->vals[g->inputs[i]].name);
        if ((int)strlen(tmp) > wname)
            wname = (int)strlen(tmp);
    }
    if (wname > 40)
        wname = 40;
    int total_w = wname + wshape + 14 + 16 + 16;
    char line[400];
    memset(line, '_', sizeof line);
    line[total_w < 399 ? total_w : 399] = 0;
    cnni_buf_printf(b, "Model: \"%s\"\n%s\n", g->form != 3 && g->file ? g->file : "model", line);
    cnni_buf_printf(b, " %-*s %-*s %-13s %-15s %s\n", wname, "Layer (type)", wshape, "Output Shape",
                    "Param #", "MACs", "Connected to");
    memset(line, '=', sizeof line);
    line[total_w < 399 ? total_w : 399] = 0;
    cnni_buf_printf(b, "%s\n", line);
    for (int i = 0; i < g->n_inputs; i++) {
        const cnni_val *v = &g->vals[g->inputs[i]];
        snprintf(tmp, sizeof tmp, "%s (Input)", v->name);
        fmt_shape(&v->t.shape, shape, sizeof shape);
        cnni_buf_printf(b, " %-*s %-*s %-13s %-15s\n", wname, tmp, wshape, shape, "0", "0");
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const cnni_node *n = &g->nodes[i];
        char params[32], m[32], conn[512];
        int64_t tr;
        snprintf(tmp, sizeof tmp, "%s (%s)", n->name, n->op->name);
        fmt_shape(&g->vals[n->out[0]].t.shape, shape, sizeof shape);
        for (int k = 1; k < n->n_out; k++) {
            char s2[128];
            fmt_shape(&g->vals[n->out[k]].t.shape, s2, sizeof s2);
            size_t l = strlen(shape);
            snprintf(shape + l, sizeof shape - l, ", %s", s2);
        }
        fmt_int(node_params(g, n, &tr), params, sizeof params);
        fmt_int(macs[i] / cnni_graph_batch(g), m, sizeof m);
        connected(g, n, conn, sizeof conn);
        cnni_buf_printf(b, " %-*s %-*s %-13s %-15s %s\n", wname, tmp, wshape, shape, params, m, conn);
    }
    cnni_buf_printf(b, "%s\n", line);
    char a[32], c[32], d[32], mb[32], fb[32], tb[32];
    fmt_int(t->params, a, sizeof a);
    fmt_int(t->trainable, c, sizeof c);
    fmt_int(t->params - t->trainable, d, sizeof d);
    fmt_bytes((double)t->params * 4, mb, sizeof mb);
    cnni_buf_printf(b, "Total params: %s (%s)\nTrainable params: %s\nNon-trainable params: %s\n", a, mb, c, d);
    fmt_int(t->macs / cnni_graph_batch(g), a, sizeof a);
    cnni_buf_printf(b, "Multiply-adds per sample: %s\n", a);
    fmt_bytes((double)t->fwd_bytes, fb, sizeof fb);
    fmt_bytes((double)t->train_bytes, tb, sizeof tb);
    cnni_buf_printf(b, "Memory at batch %lld: forward pass %s, training step %s (plus optimizer state: "
                    "SGD with momentum 1x, Adam 2x the trainable parameters)\n",
                    (long long)cnni_graph_batch(g), fb, tb);
}

static void json_shape(cnni_buf *b, const cnn_shape *s)
{
    cnni_buf_puts(b, "[");
    for (int i = 0; i < s->ndim; i++)
        cnni_buf_printf(b, i ? ", %lld" : "%lld", (long long)s->dims[i]);
    cnni_buf_puts(b, "]");
}

static void json_summary(cnn_graph *g, const totals *t, const int64_t *macs, cnni_buf *b)
{
    cnni_buf_puts(b, "{\n  \"model\": ");
    cnni_buf_json_string(b, g->form != 3 && g->file ? g->file : "model");
    cnni_buf_printf(b, ",\n  \"batch\": %lld,\n  \"inputs\": [", (long long)cnni_graph_batch(g));
    for (int i = 0; i < g->n_inputs; i++) {
        const cnni_val *v = &g->vals[g->inputs[i]];
        cnni_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
        cnni_buf_json_string(b, v->name);
        cnni_buf_puts(b, ", \"shape\": ");
        json_shape(b, &v->t.shape);
        cnni_buf_printf(b, ", \"dtype\": \"%s\"}", cnn_dtype_name(v->t.dtype));
    }
    cnni_buf_puts(b, "],\n  \"layers\": [\n");
    for (int i = 0; i < g->n_nodes; i++) {
        const cnni_node *n = &g->nodes[i];
        int64_t tr, np = node_params(g, n, &tr);
        cnni_buf_puts(b, "    {\"name\": ");
        cnni_buf_json_string(b, n->name);
        cnni_buf_puts(b, ", \"type\": ");
        cnni_buf_json_string(b, n->op->name);
        cnni_buf_puts(b, ", \"output_shapes\": [");
        for (int k = 0; k < n->n_out; k++) {
            if (k)
                cnni_buf_puts(b, ", ");
            json_shape(b, &g->vals[n->out[k]].t.shape);
        }
        cnni_buf_printf(b, "], \"params\": %lld, \"trainable_params\": %lld, \"macs\": %lld, \"inputs\": [",
                        (long long)np, (long long)tr, (long long)macs[i]);
        for (int k = 0; k < n->n_in; k++) {
            if (k)
                cnni_buf_puts(b, ", ");
            cnni_buf_json_string(b, g->vals[n->in[k]].name);
        }
        cnni_buf_puts(b, i + 1 < g->n_nodes ? "]},\n" : "]}\n");
    }
    cnni_buf_printf(b, "  ],\n  \"total_params\": %lld,\n  \"trainable_params\": %lld,\n"
                    "  \"non_trainable_params\": %lld,\n  \"macs\": %lld,\n"
                    "  \"memory_bytes\": {\"forward\": %zu, \"training_step\": %zu, \"parameters\": %zu}\n}\n",
                    (long long)t->params, (long long)t->trainable, (long long)(t->params - t->trainable),
                    (long long)t->macs, t->fwd_bytes, t->train_bytes, t->param_bytes);
}

cnn_status cnn_graph_summary(cnn_graph *g, int format, const char **text)
{
    if (!g || !text)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    *text = NULL;
    if (!g->planned)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_summary: plan the graph for an input shape first");
    int64_t *macs = cnni_calloc((size_t)g->n_nodes + 1, sizeof(int64_t));
    if (!macs)
        return cnni_oom(&g->err);
    totals t;
    memset(&t, 0, sizeof t);
    cnn_status st = measure(g, &t, macs);
    if (st) {
        cnni_free(macs);
        return st;
    }
    cnni_buf b = {0};
    if (format == CNN_SUMMARY_JSON)
        json_summary(g, &t, macs, &b);
    else
        text_summary(g, &t, macs, &b);
    cnni_free(macs);
    if (b.failed) {
        cnni_buf_free(&b);
        return cnni_oom(&g->err);
    }
    cnni_free(g->summary);
    g->summary = b.data;
    *text = g->summary;
    return CNN_OK;
}

int cnn_graph_layer_count(const cnn_graph *g) { return g ? g->n_nodes : 0; }

cnn_status cnn_graph_layer(cnn_graph *g, int i, cnn_layer_info *info)
{
    if (!g || !info || i < 0 || i >= g->n_nodes)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    const cnni_node *n = &g->nodes[i];
    memset(info, 0, sizeof *info);
    info->name = n->name;
    info->type = n->op->name;
    int64_t tr;
    info->params = node_params(g, n, &tr);
    if (g->planned) {
        info->output_shape = g->vals[n->out[0]].t.shape;
        info->macs = g->np[i].macs;
    }
    if (g->prof) {
        info->forward_seconds = g->prof[3 * i];
        info->backward_seconds = g->prof[3 * i + 1];
        info->calls = (int64_t)g->prof[3 * i + 2];
    }
    return CNN_OK;
}

cnn_status cnn_graph_layer_output(cnn_graph *g, int i, int k, void **data, cnn_shape *shape, cnn_dtype *dtype)
{
    if (!g || i < 0 || i >= g->n_nodes || k < 0 || k >= g->nodes[i].n_out)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!g->planned)
        return cnni_fail(&g->err, CNN_ERR_STATE, "cnn_graph_layer_output: the graph is not planned");
    cnn_status st = cnni_graph_materialize(g, i);
    if (st)
        return st;
    const cnni_val *v = &g->vals[g->nodes[i].out[k]];
    if (data)
        *data = v->t.data;
    if (shape)
        *shape = v->t.shape;
    if (dtype)
        *dtype = v->t.dtype;
    return CNN_OK;
}
