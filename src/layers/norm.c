/* The normalisation family: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d,
 * GroupNorm and LayerNorm, with every argument PyTorch accepts.
 *
 * All of them are one kernel (norm_ref.h) over a different view of the
 * input; what differs is which statistics are used and when the running
 * ones change:
 *   - BatchNorm uses batch statistics in training, or always without
 *     track_running_stats; training with tracking increments
 *     num_batches_tracked and blends the mean and the UNBIASED variance into
 *     the running buffers (momentum=None: cumulative average, 1/count).
 *   - InstanceNorm is the same per (sample, channel); PyTorch blends each
 *     sample's statistics separately and stores their average over the
 *     batch, and never touches num_batches_tracked.
 *   - GroupNorm and LayerNorm always use the input's statistics.
 * The statistics used by forward (batch or running) are saved with a flag,
 * because backward may follow an eval-mode forward and must then treat them
 * as constants.
 *
 * PyTorch's checks are reproduced where they happen in PyTorch, including
 * its special path for empty inputs (no channel check, no running update,
 * but a weight[0] read that fails when the weight is empty). */
#include "layer.h"
#include "../kernels/norm_fast.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_BATCH, K_INSTANCE, K_GROUP, K_LAYER } norm_kind;

typedef struct norm_opts {
    norm_kind kind;
    int nsp;                      /* Batch/InstanceNorm: 1, 2, 3 */
    int64_t features;             /* num_features, or GroupNorm's num_channels */
    int64_t groups;               /* GroupNorm */
    int k;                        /* LayerNorm: normalised trailing dims */
    int64_t shape[CNN_MAX_DIMS];  /* LayerNorm: normalized_shape */
    double eps, momentum;
    int cma;                      /* momentum=None: cumulative moving average */
    int track;
    int iw, ib, irm, irv, inbt;   /* declaration indices, -1 when absent */
} norm_opts;

/* Saved (or, without backward, scratch) memory: a flag saying whether the
 * statistics came from the batch, then mean[nstat] and rstd[nstat]. */
#define HEADER_BYTES 64

enum { B_NF, B_EPS, B_MOM, B_AFFINE, B_TRACK, B_DEVICE, B_DTYPE };
static const char *const bn_args[] = {"num_features", "eps", "momentum", "affine",
                                      "track_running_stats", "device", "dtype", NULL};
enum { G_GROUPS, G_CH, G_EPS, G_AFFINE, G_DEVICE, G_DTYPE };
static const char *const gn_args[] = {"num_groups", "num_channels", "eps", "affine",
                                      "device", "dtype", NULL};
enum { L_SHAPE, L_EPS, L_AFFINE, L_BIAS, L_DEVICE, L_DTYPE };
static const char *const ln_args[] = {"normalized_shape", "eps", "elementwise_affine", "bias",
                                      "device", "dtype", NULL};
static const char *const one_input[] = {"input", NULL};

/* Python truthiness of a flag, as PyTorch's "if self.affine:" sees it; None
 * is False there. */
static cnn_status arg_flag(const cnni_args *a, int k, int def, int *out)
{
    if (cnni_arg_is_none(a, k)) {
        *out = 0;
        return CNN_OK;
    }
    return cnni_arg_bool(a, k, def, out);
}

/* device and dtype only reach the tensors a module creates: PyTorch
 * ignores them (any value) when there are none. */
static cnn_status device_dtype(const cnni_args *a, int k_device, int k_dtype, int tensors)
{
    return tensors ? cnni_arg_device_dtype(a, k_device, k_dtype) : CNN_OK;
}

static void no_params(norm_opts *o) { o->iw = o->ib = o->irm = o->irv = o->inbt = -1; }

static cnn_status negative_size(const cnni_args *a, int k, const char *what, int64_t v)
{
    return cnni_arg_fail(a, k,
                         "%s must not be negative, got %lld (PyTorch: trying to create tensor "
                         "with negative dimension)",
                         what, (long long)v);
}

/* BatchNorm and InstanceNorm share _NormBase's signature; only the defaults
 * of affine and track_running_stats differ. */
static cnn_status bn_configure(cnni_node *node, const cnni_args *a, norm_kind kind, int nsp)
{
    norm_opts *o = node->opts;
    cnn_status st;
    int affine, defaults = kind == K_BATCH;
    o->kind = kind;
    o->nsp = nsp;
    no_params(o);
    if ((st = cnni_arg_int(a, B_NF, 0, &o->features)) ||
        (st = cnni_arg_float(a, B_EPS, 1e-5, &o->eps)) ||
        (st = arg_flag(a, B_AFFINE, defaults, &affine)) ||
        (st = arg_flag(a, B_TRACK, defaults, &o->track)) ||
        (st = device_dtype(a, B_DEVICE, B_DTYPE, affine || o->track)))
        return st;
    if (cnni_arg_is_none(a, B_MOM)) {
        /* BatchNorm turns None into 1/num_batches_tracked; InstanceNorm
         * hands it to instance_norm(), which rejects it on every call. */
        if (kind == K_INSTANCE)
            return cnni_arg_fail(a, B_MOM, "momentum must be a number: instance_norm() rejects "
                                           "momentum=None");
        o->cma = 1;
    } else if ((st = cnni_arg_float(a, B_MOM, 0.1, &o->momentum))) {
        return st;
    }
    /* num_features only sizes the parameters and buffers: without them
     * PyTorch never looks at it. */
    if ((affine || o->track) && o->features < 0)
        return negative_size(a, B_NF, "num_features", o->features);
    if (affine) {
        o->iw = cnni_node_param(node, "weight", CNN_PARAM, CNN_F32, 1, &o->features);
        o->ib = cnni_node_param(node, "bias", CNN_PARAM, CNN_F32, 1, &o->features);
    }
    if (o->track) {
        o->irm = cnni_node_param(node, "running_mean", CNN_BUFFER, CNN_F32, 1, &o->features);
        o->irv = cnni_node_param(node, "running_var", CNN_BUFFER, CNN_F32, 1, &o->features);
        o->inbt = cnni_node_param(node, "num_batches_tracked", CNN_BUFFER, CNN_I64, 0, NULL);
    }
    node->n_out = 1;
    return CNN_OK;
}

#define CONFIGURE(fn, kind, n) \
    static cnn_status fn##n(cnni_node *node, const cnni_args *a) { return bn_configure(node, a, kind, n); }
CONFIGURE(bn_configure_, K_BATCH, 1)
CONFIGURE(bn_configure_, K_BATCH, 2)
CONFIGURE(bn_configure_, K_BATCH, 3)
CONFIGURE(in_configure_, K_INSTANCE, 1)
CONFIGURE(in_configure_, K_INSTANCE, 2)
CONFIGURE(in_configure_, K_INSTANCE, 3)

static cnn_status gn_configure(cnni_node *node, const cnni_args *a)
{
    norm_opts *o = node->opts;
    cnn_status st;
    int affine;
    o->kind = K_GROUP;
    no_params(o);
    if ((st = cnni_arg_int(a, G_GROUPS, 0, &o->groups)) ||
        (st = cnni_arg_int(a, G_CH, 0, &o->features)) ||
        (st = cnni_arg_float(a, G_EPS, 1e-5, &o->eps)) ||
        (st = arg_flag(a, G_AFFINE, 1, &affine)) ||
        (st = device_dtype(a, G_DEVICE, G_DTYPE, affine)))
        return st;
    if (o->groups == 0)
        return cnni_arg_fail(a, G_GROUPS, "num_groups must not be 0 (num_channels %% num_groups "
                                          "is a modulo by zero)");
    /* PyTorch constructs these (the modulo can be 0) but every forward
     * rejects them. */
    if (o->groups < 0)
        return cnni_arg_fail(a, G_GROUPS, "expected num_groups to be greater than 0, got %lld",
                             (long long)o->groups);
    if (o->features % o->groups != 0)
        return cnni_arg_fail(a, G_CH, "num_channels must be divisible by num_groups (%lld %% %lld "
                                      "!= 0)",
                             (long long)o->features, (long long)o->groups);
    if (affine && o->features < 0)
        return negative_size(a, G_CH, "num_channels", o->features);
    if (affine) {
        o->iw = cnni_node_param(node, "weight", CNN_PARAM, CNN_F32, 1, &o->features);
        o->ib = cnni_node_param(node, "bias", CNN_PARAM, CNN_F32, 1, &o->features);
    }
    node->n_out = 1;
    return CNN_OK;
}

static cnn_status parse_normalized_shape(const cnni_args *a, norm_opts *o)
{
    const cnni_value *v = a->slot[L_SHAPE];
    if (v->kind == CNNI_V_INT) {
        o->k = 1;
        o->shape[0] = v->i;
    } else if (v->kind == CNNI_V_TUPLE || v->kind == CNNI_V_LIST) {
        /* PyTorch builds () too, but layer_norm rejects it on every call. */
        if (v->n == 0)
            return cnni_arg_fail(a, L_SHAPE, "expected normalized_shape to be at least "
                                             "1-dimensional, i.e., containing at least one "
                                             "element, but got normalized_shape = []");
        if (v->n > CNN_MAX_DIMS)
            return cnni_arg_fail(a, L_SHAPE, "normalized_shape has %d dims; inputs have at most %d",
                                 v->n, CNN_MAX_DIMS);
        for (int i = 0; i < v->n; i++) {
            if (v->items[i]->kind != CNNI_V_INT)
                return cnni_arg_fail(a, L_SHAPE, "normalized_shape must hold ints, but item %d is %s",
                                     i, cnni_vkind_name(v->items[i]->kind));
            o->shape[i] = v->items[i]->i;
        }
        o->k = v->n;
    } else {
        char got[96];
        cnni_value_describe(v, got, sizeof got);
        return cnni_arg_fail(a, L_SHAPE, "normalized_shape must be an int or a list or tuple of "
                                         "ints, got %s (%s)",
                             cnni_vkind_name(v->kind), got);
    }
    for (int i = 0; i < o->k; i++)
        if (o->shape[i] < 0)
            /* Without affine PyTorch builds it, but no input size matches. */
            return negative_size(a, L_SHAPE, "normalized_shape", o->shape[i]);
    return CNN_OK;
}

static cnn_status ln_configure(cnni_node *node, const cnni_args *a)
{
    norm_opts *o = node->opts;
    cnn_status st;
    int affine, bias;
    o->kind = K_LAYER;
    no_params(o);
    if ((st = parse_normalized_shape(a, o)) || (st = cnni_arg_float(a, L_EPS, 1e-5, &o->eps)) ||
        (st = arg_flag(a, L_AFFINE, 1, &affine)) || (st = arg_flag(a, L_BIAS, 1, &bias)) ||
        (st = device_dtype(a, L_DEVICE, L_DTYPE, affine)))
        return st;
    if (affine) {
        o->iw = cnni_node_param(node, "weight", CNN_PARAM, CNN_F32, o->k, o->shape);
        if (bias)
            o->ib = cnni_node_param(node, "bias", CNN_PARAM, CNN_F32, o->k, o->shape);
    }
    node->n_out = 1;
    return CNN_OK;
}

static int64_t prod(const int64_t *d, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= d[i];
    return p;
}

static cnn_status one_value(const cnn_shape *x, cnn_err *e)
{
    char sb[128];
    return cnni_fail(e, CNN_ERR_SHAPE,
                     "expected more than 1 value per channel when training, got input size %s",
                     cnni_shape_str(x, sb, sizeof sb));
}

static cnn_status one_spatial(const cnn_shape *x, cnn_err *e)
{
    char sb[128];
    return cnni_fail(e, CNN_ERR_SHAPE,
                     "expected more than 1 spatial element when training, got input size %s",
                     cnni_shape_str(x, sb, sizeof sb));
}

static cnn_status channel_mismatch(const norm_opts *o, const cnn_shape *x, int64_t c, cnn_err *e)
{
    char sb[128];
    const char *uses = o->iw >= 0 ? (o->irm >= 0 ? "weight and running_mean" : "weight")
                                  : "running_mean";
    return cnni_fail(e, CNN_ERR_SHAPE,
                     "expected input with %lld channels (num_features, the size of its %s), got "
                     "%lld channels in input %s",
                     (long long)o->features, uses, (long long)c, cnni_shape_str(x, sb, sizeof sb));
}

static cnn_status bad_ndim(const norm_opts *o, const cnn_shape *x, cnn_err *e)
{
    char sb[128];
    int lo = o->nsp + (o->kind == K_INSTANCE ? 1 : 2), hi = o->nsp + 2;
    if (o->kind == K_BATCH && o->nsp == 1)
        lo = 2;
    if (lo == hi)
        return cnni_fail(e, CNN_ERR_SHAPE, "expected %dD input, got %dD input %s", hi, x->ndim,
                         cnni_shape_str(x, sb, sizeof sb));
    return cnni_fail(e, CNN_ERR_SHAPE, "expected %dD or %dD input, got %dD input %s", lo, hi,
                     x->ndim, cnni_shape_str(x, sb, sizeof sb));
}

/* The kernel's view of input x and every check PyTorch makes that does not
 * depend on train/eval mode. */
static cnn_status geometry(const norm_opts *o, const cnn_shape *x, cnni_norm_geom *g, cnn_err *e)
{
    char sa[128], sb[128];
    const int64_t *d = x->dims;
    const int64_t numel = prod(d, x->ndim);
    memset(g, 0, sizeof *g);
    switch (o->kind) {
    case K_BATCH: {
        int ok = o->nsp == 1 ? (x->ndim == 2 || x->ndim == 3) : x->ndim == o->nsp + 2;
        if (!ok)
            return bad_ndim(o, x, e);
        *g = (cnni_norm_geom){.N = d[0], .G = d[1], .Cg = 1, .S = prod(d + 2, x->ndim - 2),
                              .across_batch = 1};
        /* Without running statistics the batch's are used in eval mode too. */
        if (!o->track && g->N * g->S == 1)
            return one_value(x, e);
        if (numel == 0) {
            if (o->iw >= 0 && o->features == 0)
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "an empty input %s with num_features=0 and affine=True: "
                                 "PyTorch's empty-input path reads weight[0], which does not "
                                 "exist",
                                 cnni_shape_str(x, sb, sizeof sb));
        } else if ((o->iw >= 0 || o->irm >= 0) && d[1] != o->features) {
            return channel_mismatch(o, x, d[1], e);
        }
        return CNN_OK;
    }
    case K_INSTANCE: {
        if (x->ndim != o->nsp + 1 && x->ndim != o->nsp + 2)
            return bad_ndim(o, x, e);
        /* An unbatched (C, ...) input is a batch of one. */
        int b = x->ndim == o->nsp + 2;
        *g = (cnni_norm_geom){.N = b ? d[0] : 1, .G = d[b], .Cg = 1,
                              .S = prod(d + b + 1, x->ndim - b - 1)};
        if (!o->track && g->S == 1)
            return one_spatial(x, e);
        if (numel != 0) {
            if ((o->iw >= 0 || o->irm >= 0) && g->G != o->features)
                return channel_mismatch(o, x, g->G, e);
            return CNN_OK;
        }
        /* Empty inputs: instance_norm repeats weight and running stats over
         * the batch, then averages the latter back over it. */
        if (o->iw >= 0 && g->N * o->features == 0)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "an empty input %s with affine=True and an empty batch or "
                             "num_features=0: PyTorch's empty-input path reads weight[0], which "
                             "does not exist",
                             cnni_shape_str(x, sb, sizeof sb));
        if (o->irm >= 0 && g->G != o->features && (g->N != 0 || g->G != 1))
            return channel_mismatch(o, x, g->G, e);
        return CNN_OK;
    }
    case K_GROUP: {
        if (x->ndim < 2)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "expected at least 2 dimensions (N, C, ...) for input, got %dD "
                             "input %s",
                             x->ndim, cnni_shape_str(x, sb, sizeof sb));
        int64_t S = prod(d + 2, x->ndim - 2);
        /* F.group_norm's check, on the input seen as (N*C/G, G, ...). */
        if (d[0] * d[1] / o->groups * S == 1) {
            cnn_shape seen = *x;
            seen.dims[0] = d[0] * d[1] / o->groups;
            seen.dims[1] = o->groups;
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "expected more than 1 value per channel when training, got input "
                             "size %s (group_norm checks it as %s, (N*C/num_groups, num_groups, "
                             "*))",
                             cnni_shape_str(x, sb, sizeof sb), cnni_shape_str(&seen, sa, sizeof sa));
        }
        if (d[1] % o->groups != 0)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "expected the number of channels in input to be divisible by "
                             "num_groups, but got input of shape %s and num_groups=%lld",
                             cnni_shape_str(x, sb, sizeof sb), (long long)o->groups);
        if (o->iw >= 0 && d[1] != o->features)
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "expected input with %lld channels (num_channels, the size of "
                             "weight), got %lld channels in input %s",
                             (long long)o->features, (long long)d[1],
                             cnni_shape_str(x, sb, sizeof sb));
        *g = (cnni_norm_geom){.N = d[0], .G = o->groups, .Cg = d[1] / o->groups, .S = S};
        return CNN_OK;
    }
    case K_LAYER: {
        int lead = x->ndim - o->k;
        int ok = lead >= 0;
        for (int i = 0; ok && i < o->k; i++)
            ok = d[lead + i] == o->shape[i];
        if (!ok) {
            cnn_shape ns = cnni_shape_make(o->k, o->shape);
            cnni_shape_str(&ns, sa, sizeof sa);
            char star[140];
            snprintf(star, sizeof star, "[*, %s", sa + 1);
            return cnni_fail(e, CNN_ERR_SHAPE,
                             "given normalized_shape=%s, expected input with shape %s, but got "
                             "input of size %s",
                             sa, star, cnni_shape_str(x, sb, sizeof sb));
        }
        *g = (cnni_norm_geom){.N = prod(d, lead), .G = 1, .Cg = prod(o->shape, o->k), .S = 1};
        return CNN_OK;
    }
    }
    return CNN_OK;
}

/* Whether forward normalises with the input's own statistics. */
static int batch_stats(const norm_opts *o, int training)
{
    if (o->kind == K_BATCH || o->kind == K_INSTANCE)
        return training || o->irm < 0;
    return 1;
}

static cnn_status norm_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const norm_opts *o = n->opts;
    const cnni_tensor *in = &inf->in[0];
    if (in->dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_SHAPE, "expected a float32 input, got %s",
                         cnn_dtype_name(in->dtype));
    cnni_norm_geom g;
    cnn_status st = geometry(o, &in->shape, &g, e);
    if (st)
        return st;
    inf->out[0].shape = in->shape;
    inf->out[0].dtype = CNN_F32;
    /* header, mean and rstd per statistic, then the weight and bias the
     * forward used, per channel (materialize reads them) */
    int64_t bytes, wb;
    if (!cnni_mul_ok(cnni_norm_nstat(&g), 2 * (int64_t)sizeof(double), &bytes) ||
        !cnni_mul_ok(g.G * g.Cg, 2 * (int64_t)sizeof(float), &wb) || !cnni_add_ok(bytes, wb, &bytes) ||
        !cnni_add_ok(bytes, HEADER_BYTES, &bytes))
        return cnni_fail(e, CNN_ERR_OVERFLOW, "normalisation statistics are too large");
    /* Saved memory exists only when backward is planned; forward then keeps
     * its statistics there, otherwise in scratch. */
    inf->saved_bytes = (size_t)bytes;
    inf->work_bytes = inf->backward ? cnni_norm_fast_scratch(&g) : (size_t)bytes;
    inf->macs = 2 * prod(in->shape.dims, in->shape.ndim);
    return CNN_OK;
}

typedef struct stats_mem {
    int64_t *from_batch;
    double *mean, *rstd;
    float *w, *b; /* copies of the weight and bias (fused pooling) */
} stats_mem;

static stats_mem stats_at(void *mem, const cnni_norm_geom *g)
{
    stats_mem s;
    s.from_batch = mem;
    s.mean = (double *)((char *)mem + HEADER_BYTES);
    s.rstd = s.mean + cnni_norm_nstat(g);
    s.w = (float *)(s.rstd + cnni_norm_nstat(g));
    s.b = s.w + g->G * g->Cg;
    return s;
}

/* With a fused pooling: the pooling's geometry must match the spans (the
 * plan checks it; this guards the kernels). */
static cnn_status pool_matches(const cnni_exec *x, const cnni_norm_geom *g, cnni_norm_pool *pl)
{
    const cnni_pool_geom *pg = x->pool_geom;
    if (!x->saved || pg->NC != g->N * g->G * g->Cg || cnni_pool_in_plane(pg) != g->S ||
        g->S > CNNI_NORM_POOL_MAX_PLANE)
        return cnni_fail(x->e, CNN_ERR_STATE, "internal: the fused pooling does not match the normalisation");
    pl->g = pg;
    pl->y = x->pool_out;
    pl->idx = x->pool_idx;
    pl->dy = x->dout ? x->dout[0].data : NULL;
    return CNN_OK;
}

/* BatchNorm in training with tracking: var holds the batch's biased
 * variances; PyTorch stores the unbiased one. */
static cnn_status bn_update(const norm_opts *o, const cnni_exec *x, const cnni_norm_geom *g,
                            const double *mean, const double *var)
{
    int64_t *nbt = x->buffer[o->inbt];
    *nbt = (int64_t)((uint64_t)*nbt + 1);
    double f = o->momentum;
    if (o->cma) {
        if (*nbt == 0)
            return cnni_fail(x->e, CNN_ERR_NUMERIC,
                             "momentum=None averages over num_batches_tracked, which is 0 after "
                             "this batch (division by zero)");
        f = 1.0 / (double)*nbt;
    }
    const int64_t cnt = cnni_norm_count(g);
    if (cnt == 0)
        return CNN_OK; /* empty input: PyTorch leaves the running statistics alone */
    float *rm = x->param[o->irm], *rv = x->param[o->irv];
    const double unbias = (double)cnt / (double)(cnt - 1);
    for (int64_t c = 0; c < g->G; c++) {
        rm[c] = (float)(f * mean[c] + (1 - f) * (double)rm[c]);
        rv[c] = (float)(f * var[c] * unbias + (1 - f) * (double)rv[c]);
    }
    return CNN_OK;
}

/* InstanceNorm with tracking (training or eval): instance_norm blends every
 * sample's statistics into a copy of the running ones and stores their
 * mean over the batch, which is NaN for an empty batch. */
static void in_update(const norm_opts *o, const cnni_exec *x, const cnni_norm_geom *g,
                      const double *mean, const double *var, int from_batch)
{
    float *rm = x->param[o->irm], *rv = x->param[o->irv];
    if (g->N == 0) {
        for (int64_t c = 0; c < o->features; c++)
            rm[c] = rv[c] = NAN;
        return;
    }
    if (!from_batch || g->G * g->S == 0)
        return;
    const double f = o->momentum, unbias = (double)g->S / (double)(g->S - 1);
    for (int64_t c = 0; c < g->G; c++) {
        double sm = 0, sv = 0;
        for (int64_t n = 0; n < g->N; n++) {
            sm += f * mean[n * g->G + c] + (1 - f) * (double)rm[c];
            sv += f * var[n * g->G + c] * unbias + (1 - f) * (double)rv[c];
        }
        rm[c] = (float)(sm / (double)g->N);
        rv[c] = (float)(sv / (double)g->N);
    }
}

static cnn_status norm_forward(const cnni_exec *x)
{
    const norm_opts *o = x->opts;
    const cnn_shape *xs = &x->in[0].shape;
    cnni_norm_geom g;
    cnn_status st = geometry(o, xs, &g, x->e);
    if (st)
        return st;
    const int from_batch = batch_stats(o, x->training);
    if (x->training && o->irm >= 0) {
        if (o->kind == K_BATCH && g.N * g.S == 1)
            return one_value(xs, x->e);
        if (o->kind == K_INSTANCE && g.S == 1)
            return one_spatial(xs, x->e);
    }
    stats_mem s = stats_at(x->saved ? x->saved : x->work, &g);
    const int64_t nstat = cnni_norm_nstat(&g);
    const float *in = x->in[0].data;
    /* rstd holds the variance until the running statistics have seen it. */
    if (from_batch) {
        cnni_norm_fast_stats(x->isa, x->pool, &g, in, s.mean, s.rstd);
    } else {
        /* An empty input may have another channel count than the running
         * statistics (PyTorch does not check it), and needs no statistics. */
        const int empty = cnni_numel(xs) == 0;
        const float *rm = x->param[o->irm], *rv = x->param[o->irv];
        for (int64_t i = 0; i < nstat; i++) {
            s.mean[i] = empty ? 0.0 : rm[i % g.G];
            s.rstd[i] = empty ? 1.0 : rv[i % g.G];
        }
    }
    if (o->kind == K_BATCH && x->training && o->irm >= 0 &&
        (st = bn_update(o, x, &g, s.mean, s.rstd)))
        return st;
    if (o->kind == K_INSTANCE && o->irm >= 0)
        in_update(o, x, &g, s.mean, s.rstd, from_batch);
    for (int64_t i = 0; i < nstat; i++)
        s.rstd[i] = 1.0 / sqrt(s.rstd[i] + o->eps);
    *s.from_batch = from_batch;
    const float *w = o->iw >= 0 ? x->param[o->iw] : NULL, *b = o->ib >= 0 ? x->param[o->ib] : NULL;
    if (x->pool_geom) {
        cnni_norm_pool pl;
        if ((st = pool_matches(x, &g, &pl)))
            return st;
        const int64_t C = g.G * g.Cg;
        for (int64_t c = 0; c < C; c++) {
            s.w[c] = w ? w[c] : 1.0f;
            s.b[c] = b ? b[c] : 0.0f;
        }
        cnni_norm_fast_forward_pool(x->isa, x->pool, &g, in, s.mean, s.rstd, w, b, &pl);
        return CNN_OK;
    }
    cnni_norm_fast_forward(x->isa, x->pool, &g, in, s.mean, s.rstd, w, b, x->out[0].data, x->relu_out);
    return CNN_OK;
}

/* The output (and the fused ReLU's) of the last forward, which a fused
 * pooling skipped: the same spans on the saved statistics, weight and bias. */
static cnn_status norm_materialize(const cnni_exec *x)
{
    const norm_opts *o = x->opts;
    cnni_norm_geom g;
    cnn_status st = geometry(o, &x->in[0].shape, &g, x->e);
    if (st)
        return st;
    if (!x->saved)
        return cnni_fail(x->e, CNN_ERR_STATE, "internal: no saved statistics to rebuild the output from");
    stats_mem s = stats_at(x->saved, &g);
    cnni_norm_fast_forward(x->isa, x->pool, &g, x->in[0].data, s.mean, s.rstd, o->iw >= 0 ? s.w : NULL,
                           o->ib >= 0 ? s.b : NULL, x->out[0].data, x->relu_out);
    return CNN_OK;
}

static cnn_status norm_backward(const cnni_exec *x)
{
    const norm_opts *o = x->opts;
    cnni_norm_geom g;
    cnn_status st = geometry(o, &x->in[0].shape, &g, x->e);
    if (st)
        return st;
    stats_mem s = stats_at(x->saved, &g);
    /* the producing convolution's weight gradient, fused by the graph: the
     * input gradient is then not written; or its bias gradient alone, summed
     * from the input gradient as it is written */
    cnni_norm_wgrad wgm = {x->wgrad_geom, x->wgrad_x, x->wgrad_dw, x->wgrad_db};
    const cnni_norm_wgrad *wg = x->wgrad_geom || x->wgrad_db ? &wgm : NULL;
    float *dx = x->wgrad_geom ? NULL : x->din[0].data;
    void *scratch = x->work;
    if (x->pool_geom) {
        cnni_norm_pool pl;
        if ((st = pool_matches(x, &g, &pl)))
            return st;
        cnni_norm_fast_backward_pool(x->isa, x->pool, &g, x->in[0].data, &pl, s.mean, s.rstd,
                                     o->iw >= 0 ? x->param[o->iw] : NULL, o->ib >= 0 ? x->param[o->ib] : NULL,
                                     (int)*s.from_batch, dx, o->iw >= 0 ? x->grad[o->iw] : NULL,
                                     o->ib >= 0 ? x->grad[o->ib] : NULL, wg, scratch);
        return CNN_OK;
    }
    cnni_norm_fast_backward(x->isa, x->pool, &g, x->in[0].data, x->dout[0].data, s.mean, s.rstd,
                            o->iw >= 0 ? x->param[o->iw] : NULL, o->ib >= 0 ? x->param[o->ib] : NULL,
                            x->relu_grad, (int)*s.from_batch, dx, o->iw >= 0 ? x->grad[o->iw] : NULL,
                            o->ib >= 0 ? x->grad[o->ib] : NULL, wg, scratch);
    return CNN_OK;
}

/* PyTorch's reset_parameters: weight 1, bias 0, running_mean 0,
 * running_var 1, num_batches_tracked 0 (the graph zeroes everything first). */
static void norm_reset(const cnni_node *n, float *const *param, void *const *buffer, cnni_rng *rng)
{
    (void)buffer;
    (void)rng;
    const norm_opts *o = n->opts;
    if (o->iw >= 0) {
        int64_t cnt = cnni_numel(&n->params[o->iw].shape);
        for (int64_t i = 0; i < cnt; i++)
            param[o->iw][i] = 1.0f;
    }
    if (o->irv >= 0)
        for (int64_t i = 0; i < o->features; i++)
            param[o->irv][i] = 1.0f;
}

#define NORM_OP(NAME, cfg, sig, req)                                                               \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = sig,                                                   \
                                    .n_required = req,                                             \
                                    .inputs = one_input,                                           \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .opts_size = sizeof(norm_opts),                                \
                                    .configure = cfg,                                              \
                                    .infer = norm_infer,                                           \
                                    .reset = norm_reset,                                           \
                                    .forward = norm_forward,                                       \
                                    .backward = norm_backward,                                     \
                                    .materialize = norm_materialize};

NORM_OP(BatchNorm1d, bn_configure_1, bn_args, 1)
NORM_OP(BatchNorm2d, bn_configure_2, bn_args, 1)
NORM_OP(BatchNorm3d, bn_configure_3, bn_args, 1)
NORM_OP(InstanceNorm1d, in_configure_1, bn_args, 1)
NORM_OP(InstanceNorm2d, in_configure_2, bn_args, 1)
NORM_OP(InstanceNorm3d, in_configure_3, bn_args, 1)
NORM_OP(GroupNorm, gn_configure, gn_args, 2)
NORM_OP(LayerNorm, ln_configure, ln_args, 1)

int cnni_is_batchnorm2d(const cnni_node *n) { return n->op == &cnni_op_BatchNorm2d; }
int cnni_is_batchnorm(const cnni_node *n)
{
    return n->op == &cnni_op_BatchNorm1d || n->op == &cnni_op_BatchNorm2d || n->op == &cnni_op_BatchNorm3d;
}
