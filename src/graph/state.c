/* Parameters and buffers by state_dict name: listing, loading, saving. */
#include "graph_internal.h"
#include "../core/tensors.h"

#include <stdio.h>
#include <string.h>

/* An attached loss is not part of the model's state (in PyTorch the
 * criterion is a separate module); its entries come last and are hidden. */
static int visible_params(const cnn_graph *g)
{
    int n = g->n_params;
    while (g->loss_node >= 0 && n > 0 && g->params[n - 1].node == g->loss_node)
        n--;
    return n;
}

int cnn_graph_param_count(const cnn_graph *g) { return g ? visible_params(g) : 0; }

static void *param_data(const cnn_graph *g, const cnni_pentry *p)
{
    if (p->dtype == CNN_I64)
        return g->idata + p->off;
    return p->kind == CNN_PARAM ? g->pdata + p->off : g->bdata + p->off;
}

cnn_status cnn_graph_param(const cnn_graph *g, int i, cnn_param_info *info)
{
    if (!g || !info || i < 0 || i >= visible_params(g))
        return CNN_ERR_ARGUMENT;
    const cnni_pentry *p = &g->params[i];
    info->name = p->name;
    info->kind = p->kind;
    info->dtype = p->dtype;
    info->shape = p->shape;
    info->data = param_data(g, p);
    info->grad = p->kind == CNN_PARAM ? g->pgrad + p->off : NULL;
    return CNN_OK;
}

cnn_status cnni_graph_check_state(cnn_graph *g, const cnn_tensors *ts)
{
    cnn_err *e = &g->err;
    char sa[128], sb[128];
    int np = visible_params(g);
    for (int i = 0; i < np; i++) {
        const cnni_pentry *p = &g->params[i];
        int k = cnn_tensors_find(ts, p->name);
        if (k < 0)
            return cnni_fail(e, CNN_ERR_NOT_FOUND, "missing key '%s' (%s %s) in the weights", p->name,
                             cnn_dtype_name(p->dtype), cnni_shape_str(&p->shape, sa, sizeof sa));
        const cnni_named *t = &ts->t[k];
        if (!cnni_shape_eq(&t->shape, &p->shape))
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "size mismatch for '%s': the weights have shape %s, the model "
                             "expects %s",
                             p->name, cnni_shape_str(&t->shape, sa, sizeof sa),
                             cnni_shape_str(&p->shape, sb, sizeof sb));
        int float_ok = p->dtype == CNN_F32 &&
                       (t->dtype == CNN_F32 || t->dtype == CNN_F64 || t->dtype == CNN_F16 ||
                        t->dtype == CNN_BF16);
        int int_ok = p->dtype == CNN_I64 &&
                     (t->dtype == CNN_I64 || t->dtype == CNN_I32 || t->dtype == CNN_U8);
        if (!float_ok && !int_ok)
            return cnni_fail(e, CNN_ERR_FORMAT, "'%s' has dtype %s, the model expects %s", p->name,
                             cnn_dtype_name(t->dtype), cnn_dtype_name(p->dtype));
    }
    for (int k = 0; k < ts->n; k++) {
        int found = 0;
        for (int i = 0; i < np && !found; i++)
            found = strcmp(g->params[i].name, ts->t[k].name) == 0;
        if (!found)
            return cnni_fail(e, CNN_ERR_NOT_FOUND,
                             "unexpected key '%s' (%s) in the weights: the model has no such "
                             "parameter or buffer",
                             ts->t[k].name, cnni_shape_str(&ts->t[k].shape, sa, sizeof sa));
    }
    return CNN_OK;
}

cnn_status cnn_graph_load_state(cnn_graph *g, const cnn_tensors *ts)
{
    if (!g || !ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    /* Validate everything before changing anything. */
    cnn_status st = cnni_graph_check_state(g, ts);
    if (st)
        return st;
    int np = visible_params(g);
    for (int i = 0; i < np; i++) {
        const cnni_pentry *p = &g->params[i];
        const cnni_named *t = &ts->t[cnn_tensors_find(ts, p->name)];
        void *dst = param_data(g, p);
        for (int64_t j = 0; j < p->numel; j++) {
            if (p->dtype == CNN_F32) {
                float v;
                switch (t->dtype) {
                case CNN_F32: v = ((const float *)t->data)[j]; break;
                case CNN_F64: v = (float)((const double *)t->data)[j]; break;
                case CNN_BF16: v = cnni_bf16_to_f32(((const uint16_t *)t->data)[j]); break;
                default: v = cnni_f16_to_f32(((const uint16_t *)t->data)[j]); break;
                }
                ((float *)dst)[j] = v;
            } else {
                int64_t v;
                switch (t->dtype) {
                case CNN_I64: v = ((const int64_t *)t->data)[j]; break;
                case CNN_I32: v = ((const int32_t *)t->data)[j]; break;
                default: v = ((const uint8_t *)t->data)[j]; break;
                }
                ((int64_t *)dst)[j] = v;
            }
        }
    }
    return CNN_OK;
}

cnn_status cnn_graph_save_state(cnn_graph *g, cnn_tensors *ts)
{
    if (!g || !ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    for (int i = 0; i < visible_params(g); i++) {
        const cnni_pentry *p = &g->params[i];
        cnn_status st = cnn_tensors_add(ts, p->name, p->dtype, &p->shape, param_data(g, p), NULL);
        if (st)
            return cnni_fail(&g->err, st, "%s", cnn_tensors_errmsg(ts));
    }
    return CNN_OK;
}

cnn_status cnn_graph_save_grads(cnn_graph *g, cnn_tensors *ts)
{
    if (!g || !ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    for (int i = 0; i < visible_params(g); i++) {
        const cnni_pentry *p = &g->params[i];
        if (p->kind != CNN_PARAM)
            continue;
        cnn_status st = cnn_tensors_add(ts, p->name, CNN_F32, &p->shape, g->pgrad + p->off, NULL);
        if (st)
            return cnni_fail(&g->err, st, "%s", cnn_tensors_errmsg(ts));
    }
    return CNN_OK;
}
