/* Gradient-norm clipping as torch.nn.utils.clip_grad_norm_: the norm of the
 * per-parameter norms, then every gradient scaled by
 * min(1, max_norm / (total + 1e-6)). */
#include "train_internal.h"

#include <math.h>

cnn_status cnn_graph_clip_grad_norm(cnn_graph *g, double max_norm, double norm_type, double *total_norm)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!(norm_type > 0))
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "norm_type must be positive (or INFINITY), got %g", norm_type);
    if (!(max_norm >= 0))
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "max_norm must be non-negative, got %g", max_norm);
    int inf = isinf(norm_type);
    double total = 0;
    for (int i = 0; i < g->n_params; i++) {
        const cnni_pentry *p = &g->params[i];
        if (p->kind != CNN_PARAM)
            continue;
        const float *gr = g->pgrad + p->off;
        double pn = 0;
        if (inf) {
            for (int64_t j = 0; j < p->numel; j++)
                pn = fmax(pn, fabs(gr[j]));
            total = fmax(total, (double)(float)pn);
        } else {
            for (int64_t j = 0; j < p->numel; j++)
                pn += pow(fabs(gr[j]), norm_type);
            /* PyTorch rounds each per-tensor norm to float32 before combining. */
            pn = (double)(float)pow(pn, 1.0 / norm_type);
            total += pow(pn, norm_type);
        }
    }
    if (!inf)
        total = pow(total, 1.0 / norm_type);
    total = (double)(float)total;
    if (total_norm)
        *total_norm = total;
    float coef = (float)(max_norm / (total + 1e-6));
    if (coef > 1.0f)
        coef = 1.0f;
    for (size_t j = 0; j < g->p_len; j++)
        g->pgrad[j] *= coef;
    return CNN_OK;
}
