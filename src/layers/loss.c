/* The losses: MSELoss, L1Loss, SmoothL1Loss, CrossEntropyLoss, NLLLoss,
 * BCELoss and BCEWithLogitsLoss, each a node with inputs (input, target)
 * giving a float32 scalar ('mean', 'sum') or the unreduced losses ('none').
 *
 * Every constructor argument of PyTorch 1.13 is accepted, the deprecated
 * size_average and reduce with their legacy meaning (when either is given
 * it decides the reduction and `reduction` is ignored, as in PyTorch).
 *
 * weight and pos_weight are written as a tuple or list of numbers, nested
 * for more dimensions ("weight=(1.0, 2.0, 0.5)"), or as PyTorch spells a
 * tensor ("weight=torch.tensor([1.0, 2.0, 0.5])"). As in PyTorch they are
 * buffers of the module, in the state_dict as "loss.weight" (the graph
 * hides those of a loss attached with cnn_graph_set_loss, a criterion
 * outside the model); the values from the model file are kept in the
 * options (up to LOSS_MAX_WEIGHTS numbers) to reset the buffers. */
#include "layer.h"
#include "../kernels/ref/loss_ref.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Enough for a class weight per class of any common dataset (ImageNet-1k,
 * COCO); the options of a loss node are allocated with this room. */
#define LOSS_MAX_WEIGHTS 4096

enum { K_MSE, K_L1, K_SMOOTH_L1, K_CE, K_NLL, K_BCE, K_BCE_LOGITS };

typedef struct loss_tensor {
    int given;
    cnn_dtype dtype;  /* the tensor PyTorch would build: F32, F64 or I64 */
    cnn_shape shape;
    int decl;         /* its buffer's declaration index */
    float v[LOSS_MAX_WEIGHTS];
} loss_tensor;

typedef struct loss_opts {
    int kind;
    int reduction;
    double beta;
    int64_t ignore_index;
    double label_smoothing;
    loss_tensor weight, pos_weight;
} loss_opts;

static const char *const pointwise_args[] = {"size_average", "reduce", "reduction", NULL};
static const char *const smooth_l1_args[] = {"size_average", "reduce", "reduction", "beta", NULL};
static const char *const ce_args[] = {"weight", "size_average", "ignore_index", "reduce",
                                      "reduction", "label_smoothing", NULL};
static const char *const nll_args[] = {"weight", "size_average", "ignore_index", "reduce",
                                       "reduction", NULL};
static const char *const bce_args[] = {"weight", "size_average", "reduce", "reduction", NULL};
static const char *const bce_logits_args[] = {"weight", "size_average", "reduce", "reduction",
                                              "pos_weight", NULL};
static const char *const loss_inputs[] = {"input", "target", NULL};

static const struct {
    const char *name;
    int kind;
} kinds[] = {{"MSELoss", K_MSE}, {"L1Loss", K_L1}, {"SmoothL1Loss", K_SMOOTH_L1},
             {"CrossEntropyLoss", K_CE}, {"NLLLoss", K_NLL}, {"BCELoss", K_BCE},
             {"BCEWithLogitsLoss", K_BCE_LOGITS}};

/* Position of argument `name` in the op's signature, or -1. */
static int slot_of(const cnni_args *a, const char *name)
{
    for (int k = 0; a->op->args[k]; k++)
        if (strcmp(a->op->args[k], name) == 0)
            return k;
    return -1;
}

static int given(const cnni_args *a, int k)
{
    return k >= 0 && a->slot[k] && a->slot[k]->kind != CNNI_V_NONE;
}

/* ---- configuration ------------------------------------------------------ */

static cnn_status read_reduction(const cnni_args *a, int *out)
{
    int kr = slot_of(a, "reduction"), ksa = slot_of(a, "size_average"), kre = slot_of(a, "reduce");
    cnn_status st;
    if (given(a, ksa) || given(a, kre)) {
        /* _Reduction.legacy_get_string: an absent one counts as True. */
        int size_average = 1, reduce = 1;
        if ((given(a, ksa) && (st = cnni_arg_bool(a, ksa, 1, &size_average))) ||
            (given(a, kre) && (st = cnni_arg_bool(a, kre, 1, &reduce))))
            return st;
        *out = !reduce ? CNNI_RED_NONE : size_average ? CNNI_RED_MEAN : CNNI_RED_SUM;
        return CNN_OK;
    }
    const char *r;
    if ((st = cnni_arg_str(a, kr, "mean", &r)))
        return st;
    if (strcmp(r, "none") == 0)
        *out = CNNI_RED_NONE;
    else if (strcmp(r, "mean") == 0)
        *out = CNNI_RED_MEAN;
    else if (strcmp(r, "sum") == 0)
        *out = CNNI_RED_SUM;
    else
        return cnni_arg_fail(a, kr, "'%s' is not a valid value for reduction (use 'none', 'mean' "
                             "or 'sum')", r);
    return CNN_OK;
}

typedef struct tensor_reader {
    const cnni_args *a;
    int k;
    loss_tensor *t;
    int64_t count;
    int any_float;
} tensor_reader;

/* The shape of a nested tuple/list literal, following its first items. */
static cnn_status literal_shape(tensor_reader *r, const cnni_value *v)
{
    cnn_shape *s = &r->t->shape;
    s->ndim = 0;
    while (v->kind == CNNI_V_TUPLE || v->kind == CNNI_V_LIST) {
        if (s->ndim == CNN_MAX_DIMS)
            return cnni_arg_fail(r->a, r->k, "argument '%s' has more than %d nested levels",
                                 r->a->op->args[r->k], CNN_MAX_DIMS);
        s->dims[s->ndim++] = v->n;
        if (v->n == 0)
            break;
        v = v->items[0];
    }
    return CNN_OK;
}

/* Checks that v is rectangular with the shape found, and stores its numbers. */
static cnn_status literal_values(tensor_reader *r, const cnni_value *v, int depth)
{
    const cnn_shape *s = &r->t->shape;
    const char *name = r->a->op->args[r->k];
    if (depth < s->ndim) {
        if (v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST)
            return cnni_arg_fail(r->a, r->k, "argument '%s' must be a rectangular nest of numbers: "
                                 "found %s where a sequence of %lld was expected",
                                 name, cnni_vkind_name(v->kind), (long long)s->dims[depth]);
        if (v->n != s->dims[depth])
            return cnni_arg_fail(r->a, r->k, "argument '%s' must be a rectangular nest of numbers: "
                                 "a sequence at depth %d has %d items, expected %lld",
                                 name, depth, v->n, (long long)s->dims[depth]);
        for (int i = 0; i < v->n; i++) {
            cnn_status st = literal_values(r, v->items[i], depth + 1);
            if (st)
                return st;
        }
        return CNN_OK;
    }
    if (v->kind != CNNI_V_INT && v->kind != CNNI_V_FLOAT)
        return cnni_arg_fail(r->a, r->k, "argument '%s' must hold numbers, found %s", name,
                             cnni_vkind_name(v->kind));
    if (r->count == LOSS_MAX_WEIGHTS)
        return cnni_arg_fail(r->a, r->k, "argument '%s' has more than %d values, the most cnn "
                             "keeps for a loss weight", name, LOSS_MAX_WEIGHTS);
    r->any_float |= v->kind == CNNI_V_FLOAT;
    r->t->v[r->count++] = (float)(v->kind == CNNI_V_FLOAT ? v->f : (double)v->i);
    return CNN_OK;
}

static cnn_status read_literal(tensor_reader *r, const cnni_value *v)
{
    cnn_status st = literal_shape(r, v);
    if (!st)
        st = literal_values(r, v, 0);
    return st;
}

/* torch.tensor(data, dtype=...), torch.Tensor(data), torch.FloatTensor(data). */
static cnn_status read_tensor_call(tensor_reader *r, const cnni_value *v)
{
    const char *name = r->a->op->args[r->k];
    int is_tensor = strcmp(v->s, "torch.tensor") == 0;
    int is_float_ctor = strcmp(v->s, "torch.Tensor") == 0 || strcmp(v->s, "torch.FloatTensor") == 0;
    if (!is_tensor && !is_float_ctor)
        return cnni_arg_fail(r->a, r->k, "argument '%s' must be a tuple of numbers or "
                             "torch.tensor([...]), got a call to %s()", name, v->s);
    const cnni_value *data = NULL, *dtype = NULL;
    for (int i = 0; i < v->nargs; i++) {
        const cnni_arg *arg = &v->args[i];
        if (!arg->key && !data)
            data = arg->val;
        else if (arg->key && is_tensor && strcmp(arg->key, "dtype") == 0 && !dtype)
            dtype = arg->val;
        else
            return cnni_arg_fail(r->a, r->k, "argument '%s': %s() takes the data%s here, not '%s'",
                                 name, v->s, is_tensor ? " and dtype" : "",
                                 arg->key ? arg->key : "a second positional argument");
    }
    if (!data)
        return cnni_arg_fail(r->a, r->k, "argument '%s': %s() needs its data", name, v->s);
    if (is_float_ctor && data->kind != CNNI_V_TUPLE && data->kind != CNNI_V_LIST)
        return cnni_arg_fail(r->a, r->k, "argument '%s': %s(n) makes an uninitialised tensor of "
                             "size n; give the values as a list", name, v->s);
    cnn_status st = read_literal(r, data);
    if (st)
        return st;
    /* The dtype PyTorch would give the tensor; the values are kept in float32
     * either way, but some losses refuse non-float32 weights. */
    r->t->dtype = is_float_ctor || r->any_float || r->count == 0 ? CNN_F32 : CNN_I64;
    if (dtype) {
        const char *d = dtype->kind == CNNI_V_NAME ? dtype->s : "";
        if (strcmp(d, "torch.float32") == 0 || strcmp(d, "torch.float") == 0)
            r->t->dtype = CNN_F32;
        else if (strcmp(d, "torch.float64") == 0 || strcmp(d, "torch.double") == 0)
            r->t->dtype = CNN_F64;
        else if (strcmp(d, "torch.int64") == 0 || strcmp(d, "torch.long") == 0)
            r->t->dtype = CNN_I64;
        else if (dtype->kind != CNNI_V_NONE)
            return cnni_arg_fail(r->a, r->k, "argument '%s': dtype must be torch.float32, "
                                 "torch.float64 or torch.int64", name);
    }
    if (r->t->dtype == CNN_I64)
        for (int64_t i = 0; i < r->count; i++)
            r->t->v[i] = truncf(r->t->v[i]);
    return CNN_OK;
}

/* A weight argument: None, a (nested) tuple or list, or a tensor call. */
static cnn_status read_tensor_arg(const cnni_args *a, int k, loss_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->decl = -1;
    if (!given(a, k))
        return CNN_OK;
    tensor_reader r = {a, k, t, 0, 0};
    const cnni_value *v = a->slot[k];
    cnn_status st;
    if (v->kind == CNNI_V_TUPLE || v->kind == CNNI_V_LIST) {
        st = read_literal(&r, v);
        t->dtype = CNN_F32;
    } else if (v->kind == CNNI_V_CALL) {
        st = read_tensor_call(&r, v);
    } else {
        char got[96];
        cnni_value_describe(v, got, sizeof got);
        return cnni_arg_fail(a, k, "argument '%s' must be a tensor: a tuple of numbers such as "
                             "(1.0, 2.0) or torch.tensor([1.0, 2.0]), got %s (%s)",
                             a->op->args[k], cnni_vkind_name(v->kind), got);
    }
    if (st)
        return st;
    t->given = 1;
    return CNN_OK;
}

static cnn_status loss_configure(cnni_node *n, const cnni_args *a)
{
    loss_opts *o = n->opts;
    cnn_status st;
    o->kind = -1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, a->op->name) == 0)
            o->kind = kinds[i].kind;
    int kb = slot_of(a, "beta"), kls = slot_of(a, "label_smoothing"), ki = slot_of(a, "ignore_index");
    if ((st = read_reduction(a, &o->reduction)) ||
        (kb >= 0 && (st = cnni_arg_float(a, kb, 1.0, &o->beta))) ||
        (kls >= 0 && (st = cnni_arg_float(a, kls, 0.0, &o->label_smoothing))) ||
        (ki >= 0 && (st = cnni_arg_int(a, ki, -100, &o->ignore_index))) ||
        (st = read_tensor_arg(a, slot_of(a, "weight"), &o->weight)) ||
        (st = read_tensor_arg(a, slot_of(a, "pos_weight"), &o->pos_weight)))
        return st;
    if (!(o->beta >= 0))
        return cnni_arg_fail(a, kb, "beta must be non-negative (smooth_l1_loss does not support "
                             "negative values for beta), got %g", o->beta);
    /* PyTorch 1.13 refuses only values above 1; zero, negative and NaN
     * values all mean no smoothing (its kernels test label_smoothing > 0). */
    if (o->label_smoothing > 1)
        return cnni_arg_fail(a, kls, "label_smoothing must be between 0.0 and 1.0, got %g",
                             o->label_smoothing);
    if (!(o->label_smoothing > 0))
        o->label_smoothing = 0;
    if (o->weight.given)
        o->weight.decl = cnni_node_param(n, "weight", CNN_BUFFER, CNN_F32, o->weight.shape.ndim,
                                         o->weight.shape.dims);
    if (o->pos_weight.given)
        o->pos_weight.decl = cnni_node_param(n, "pos_weight", CNN_BUFFER, CNN_F32,
                                             o->pos_weight.shape.ndim, o->pos_weight.shape.dims);
    n->n_out = 1;
    return CNN_OK;
}

static void loss_reset(const cnni_node *n, float *const *param, void *const *buffer, cnni_rng *rng)
{
    (void)param;
    (void)rng;
    const loss_opts *o = n->opts;
    const loss_tensor *ts[2] = {&o->weight, &o->pos_weight};
    for (int k = 0; k < 2; k++) {
        int64_t count = cnni_numel(&ts[k]->shape);
        if (ts[k]->given && count > 0)
            memcpy(buffer[ts[k]->decl], ts[k]->v, sizeof(float) * (size_t)count);
    }
}

/* ---- shapes ------------------------------------------------------------- */

/* The class-loss view (N, C, S) of an input; class dimension 1, or 0 for an
 * unbatched (C) input. */
static cnni_class_geom class_geom(const cnn_shape *x)
{
    cnni_class_geom g;
    int cd = x->ndim == 1 ? 0 : 1;
    g.N = cd ? x->dims[0] : 1;
    g.C = x->dims[cd];
    g.S = 1;
    for (int d = cd + 1; d < x->ndim; d++)
        g.S *= x->dims[d];
    return g;
}

/* The input's shape without its class dimension. */
static cnn_shape drop_class_dim(const cnn_shape *x)
{
    cnn_shape s;
    int cd = x->ndim == 1 ? 0 : 1;
    s.ndim = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != cd)
            s.dims[s.ndim++] = x->dims[d];
    return s;
}

static cnn_status check_broadcast(const loss_tensor *w, const char *what, const cnn_shape *x,
                                  cnn_err *e)
{
    char sw[128], sx[128];
    const cnn_shape *ws = &w->shape;
    int ok = ws->ndim <= x->ndim;
    for (int d = 0; ok && d < ws->ndim; d++) {
        int64_t wd = ws->dims[d], xd = x->dims[x->ndim - ws->ndim + d];
        ok = wd == xd || wd == 1;
    }
    if (!ok)
        return cnni_fail(e, CNN_ERR_SHAPE, "%s of shape %s does not broadcast to the input's shape "
                         "%s (PyTorch keeps the unreduced loss in the input's shape: each of its "
                         "dimensions, aligned at the right, must equal the input's or be 1)",
                         what, cnni_shape_str(ws, sw, sizeof sw), cnni_shape_str(x, sx, sizeof sx));
    return CNN_OK;
}

static const char *dtype_word(cnn_dtype t)
{
    return t == CNN_I64 ? "int64" : t == CNN_F64 ? "float64" : "float32";
}

static cnn_status class_infer(const loss_opts *o, const char *op, const cnni_tensor *x,
                              const cnni_tensor *t, cnn_shape *out, cnn_err *e)
{
    char sx[128], st_[128], sw[128], want[128];
    const cnn_shape *xs = &x->shape, *ts = &t->shape;
    if (xs->ndim < 1)
        return cnni_fail(e, CNN_ERR_SHAPE, "%s needs an input of shape (C), (N, C) or (N, C, d1, "
                         "...), got a scalar", op);
    cnni_class_geom g = class_geom(xs);
    cnn_shape idx_shape = drop_class_dim(xs);
    int probs = cnni_shape_eq(xs, ts);
    if (probs && o->kind == K_CE) {
        /* Same shape as the input: class probabilities (PyTorch's test). */
        if (t->dtype != CNN_F32)
            return cnni_fail(e, CNN_ERR_SHAPE, "a target of the input's shape %s holds class "
                             "probabilities and must be float32, got %s",
                             cnni_shape_str(xs, sx, sizeof sx), dtype_word(t->dtype));
        if (o->ignore_index >= 0)
            return cnni_fail(e, CNN_ERR_CONFIG, "ignore_index is not supported for floating point "
                             "(class probability) targets: ignore_index=%lld must be negative",
                             (long long)o->ignore_index);
    } else {
        cnni_shape_str(&idx_shape, want, sizeof want);
        /* PyTorch 1.13 accepts a (C) target here too, and then silently uses
         * only its first element. */
        if (xs->ndim == 1 && ts->ndim == 1 && ts->dims[0] == xs->dims[0] && t->dtype == CNN_I64)
            return cnni_fail(e, CNN_ERR_SHAPE, "an unbatched input of shape %s takes one class index "
                             "as a 0-d target, got a target of shape %s (PyTorch would silently "
                             "use only its first element)",
                             cnni_shape_str(xs, sx, sizeof sx), cnni_shape_str(ts, st_, sizeof st_));
        if (t->dtype != CNN_I64)
            return cnni_fail(e, CNN_ERR_SHAPE, "target must be int64 class indices of shape %s%s%s, "
                             "got %s %s",
                             want, o->kind == K_CE ? " or float32 class probabilities of shape " : "",
                             o->kind == K_CE ? cnni_shape_str(xs, sx, sizeof sx) : "",
                             dtype_word(t->dtype), cnni_shape_str(ts, st_, sizeof st_));
        if (!cnni_shape_eq(ts, &idx_shape))
            return cnni_fail(e, CNN_ERR_SHAPE, "target of shape %s does not fit input of shape %s: "
                             "class indices must have shape %s (the input's shape without its "
                             "class dimension %d)",
                             cnni_shape_str(ts, st_, sizeof st_), cnni_shape_str(xs, sx, sizeof sx),
                             want, xs->ndim == 1 ? 0 : 1);
        /* nll_loss_nd views a 3-d or 5-d+ input as (N, C, 1, -1), or as
         * (N, C, 0, 0) when it is empty, which then no longer fits a
         * non-empty target. */
        if (xs->ndim >= 3 && xs->ndim != 4 && cnni_numel(xs) == 0 && cnni_numel(ts) > 0)
            return cnni_fail(e, CNN_ERR_SHAPE, "an input of shape %s has no classes but its target "
                             "%s is not empty: PyTorch's nll_loss cannot match them",
                             cnni_shape_str(xs, sx, sizeof sx), cnni_shape_str(ts, st_, sizeof st_));
        probs = 0;
    }
    if (o->weight.given) {
        /* PyTorch wants a 1-d weight of C values, except that nll_loss2d (index
         * targets of an input with spatial dimensions) only counts its
         * elements. Smoothing then views it as weight.size(0) values along
         * the class dimension, and its 'mean' gathers from it as 1-d. */
        const cnn_shape *ws = &o->weight.shape;
        int any_shape = !probs && xs->ndim >= 3;
        int ok = any_shape ? cnni_numel(ws) == g.C : ws->ndim == 1 && ws->dims[0] == g.C;
        if (any_shape && o->label_smoothing > 0)
            ok = ok && ws->ndim >= 1 && ws->dims[0] == g.C &&
                 (ws->ndim == 1 || o->reduction != CNNI_RED_MEAN);
        if (!ok && any_shape && cnni_numel(ws) == g.C)
            return cnni_fail(e, CNN_ERR_SHAPE, "with label_smoothing, weight of shape %s must hold "
                             "its %lld values along its first dimension%s",
                             cnni_shape_str(ws, sw, sizeof sw), (long long)g.C,
                             o->reduction == CNNI_RED_MEAN ? " and be 1-d (reduction 'mean' "
                             "gathers from it)" : "");
        if (!ok)
            return cnni_fail(e, CNN_ERR_SHAPE, "weight should be defined either for all %lld "
                             "classes or no classes, but has shape %s%s",
                             (long long)g.C, cnni_shape_str(ws, sw, sizeof sw),
                             any_shape ? "" : " (a 1-d weight of one value per class is needed)");
        if (!probs && o->weight.dtype != CNN_F32)
            return cnni_fail(e, CNN_ERR_CONFIG, "weight holds %s values, but with class-index "
                             "targets PyTorch needs float32 class weights (write floats such as "
                             "1.0, with no other dtype)",
                             dtype_word(o->weight.dtype));
    }
    *out = probs ? idx_shape : *ts;
    return CNN_OK;
}

static cnn_status loss_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const loss_opts *o = n->opts;
    const char *op = n->op->name;
    const cnni_tensor *x = &inf->in[0], *t = &inf->in[1];
    char sx[128], st_[128];
    if (x->dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_SHAPE, "%s expects a float32 input, got %s", op,
                         dtype_word(x->dtype));
    cnn_shape out = x->shape;
    cnn_status st = CNN_OK;
    switch (o->kind) {
    case K_MSE:
    case K_L1:
    case K_SMOOTH_L1:
        if (t->dtype != CNN_F32 && t->dtype != CNN_I64)
            return cnni_fail(e, CNN_ERR_SHAPE, "%s expects a float32 target, got %s", op,
                             cnn_dtype_name(t->dtype));
        /* PyTorch computes MSELoss of an int64 target forward, but its
         * backward fails ("Found dtype Long but expected Float"). */
        if (t->dtype == CNN_I64 && o->kind == K_MSE && inf->backward)
            return cnni_fail(e, CNN_ERR_SHAPE, "MSELoss cannot be differentiated with an int64 "
                             "target (PyTorch's mse_loss_backward needs a float target); give a "
                             "float32 target");
        if (!cnni_shape_eq(&x->shape, &t->shape))
            return cnni_fail(e, CNN_ERR_SHAPE, "target of shape %s differs from the input's shape "
                             "%s; PyTorch would broadcast them with a warning that this is likely "
                             "a mistake, cnn requires the same shape",
                             cnni_shape_str(&t->shape, st_, sizeof st_),
                             cnni_shape_str(&x->shape, sx, sizeof sx));
        break;
    case K_BCE:
    case K_BCE_LOGITS:
        if (t->dtype != CNN_F32)
            return cnni_fail(e, CNN_ERR_SHAPE, "%s expects a float32 target (of 0s and 1s or "
                             "probabilities), got %s",
                             op, dtype_word(t->dtype));
        if (!cnni_shape_eq(&x->shape, &t->shape))
            return cnni_fail(e, CNN_ERR_SHAPE, "target size %s must be the same as input size %s",
                             cnni_shape_str(&t->shape, st_, sizeof st_),
                             cnni_shape_str(&x->shape, sx, sizeof sx));
        if (o->weight.given && (st = check_broadcast(&o->weight, "weight", &x->shape, e)))
            return st;
        if (o->pos_weight.given &&
            (st = check_broadcast(&o->pos_weight, "pos_weight", &x->shape, e)))
            return st;
        break;
    default:
        if ((st = class_infer(o, op, x, t, &out, e)))
            return st;
        break;
    }
    if (o->reduction != CNNI_RED_NONE)
        out.ndim = 0;
    inf->out[0].shape = out;
    inf->out[0].dtype = CNN_F32;
    return CNN_OK;
}

/* ---- forward and backward ----------------------------------------------- */

static const float *buffer_or_null(const cnni_exec *x, const loss_tensor *t)
{
    return t->given ? (const float *)x->buffer[t->decl] : NULL;
}

static cnni_loss_bcast make_bcast(const cnn_shape *xs, const loss_opts *o)
{
    cnni_loss_bcast b;
    memset(&b, 0, sizeof b);
    b.ndim = xs->ndim;
    for (int d = 0; d < xs->ndim; d++)
        b.dims[d] = xs->dims[d];
    const loss_tensor *ws[2] = {&o->weight, &o->pos_weight};
    int64_t *strides[2] = {b.wstride, b.pstride};
    for (int k = 0; k < 2; k++) {
        if (!ws[k]->given)
            continue;
        const cnn_shape *s = &ws[k]->shape;
        int64_t step = 1;
        for (int d = s->ndim - 1; d >= 0; d--) {
            strides[k][xs->ndim - s->ndim + d] = s->dims[d] == 1 ? 0 : step;
            step *= s->dims[d];
        }
    }
    return b;
}

/* "[1, 2]": the coordinates of element `flat` of shape s ("" for a 0-d s). */
static char *coords(const cnn_shape *s, int64_t flat, char *buf, size_t n)
{
    int64_t c[CNN_MAX_DIMS];
    buf[0] = 0;
    if (s->ndim == 0)
        return buf;
    for (int d = s->ndim - 1; d >= 0; d--) {
        c[d] = s->dims[d] ? flat % s->dims[d] : 0;
        flat = s->dims[d] ? flat / s->dims[d] : 0;
    }
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < s->ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "", (long long)c[d]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

static cnni_class_opts class_opts(const loss_opts *o)
{
    cnni_class_opts c;
    c.log_softmax = o->kind == K_CE;
    c.reduction = o->reduction;
    c.ignore_index = o->ignore_index;
    c.label_smoothing = o->kind == K_CE ? o->label_smoothing : 0.0;
    return c;
}

static int pointwise_kind(int kind)
{
    return kind == K_MSE ? CNNI_LOSS_MSE : kind == K_L1 ? CNNI_LOSS_L1 : CNNI_LOSS_SMOOTH_L1;
}

static cnn_status loss_forward(const cnni_exec *x)
{
    const loss_opts *o = x->opts;
    const cnni_tensor *in = &x->in[0], *tg = &x->in[1];
    const float *xv = in->data;
    float *y = x->out[0].data;
    const float *w = buffer_or_null(x, &o->weight);
    int64_t n = cnni_numel(&in->shape);
    char at[160];
    switch (o->kind) {
    case K_MSE:
    case K_L1:
    case K_SMOOTH_L1: {
        int ti = tg->dtype == CNN_I64;
        cnni_ref_pointwise_loss_forward_f32(pointwise_kind(o->kind), o->reduction, o->beta, n, xv,
                                            ti ? NULL : tg->data, ti ? tg->data : NULL, y);
        return CNN_OK;
    }
    case K_BCE: {
        cnni_loss_bcast b = make_bcast(&in->shape, o);
        int64_t bad = cnni_ref_bce_forward_f32(o->reduction, &b, xv, tg->data, w, y);
        if (bad >= 0)
            return cnni_fail(x->e, CNN_ERR_ARGUMENT, "all elements of input should be between 0 "
                             "and 1, but input%s is %g",
                             coords(&in->shape, bad, at, sizeof at), (double)xv[bad]);
        return CNN_OK;
    }
    case K_BCE_LOGITS: {
        cnni_loss_bcast b = make_bcast(&in->shape, o);
        cnni_ref_bce_logits_forward_f32(o->reduction, &b, xv, tg->data, w,
                                        buffer_or_null(x, &o->pos_weight), y);
        return CNN_OK;
    }
    default: {
        cnni_class_geom g = class_geom(&in->shape);
        cnni_class_opts c = class_opts(o);
        int probs = tg->dtype == CNN_F32;
        int64_t bad = cnni_ref_class_loss_forward_f32(&g, &c, xv, probs ? NULL : tg->data,
                                                      probs ? tg->data : NULL, w, y);
        if (bad >= 0) {
            long long v = (long long)((const int64_t *)tg->data)[bad];
            if (g.C == 0)
                return cnni_fail(x->e, CNN_ERR_ARGUMENT, "target%s is %lld, out of range: the "
                                 "input has 0 classes, so every target must be ignore_index "
                                 "(%lld)",
                                 coords(&tg->shape, bad, at, sizeof at), v,
                                 (long long)o->ignore_index);
            return cnni_fail(x->e, CNN_ERR_ARGUMENT, "target%s is %lld, out of range: class "
                             "indices must be in [0, %lld] (%lld classes), or ignore_index (%lld)",
                             coords(&tg->shape, bad, at, sizeof at), v, (long long)(g.C - 1),
                             (long long)g.C, (long long)o->ignore_index);
        }
        return CNN_OK;
    }
    }
}

static cnn_status loss_backward(const cnni_exec *x)
{
    const loss_opts *o = x->opts;
    const cnni_tensor *in = &x->in[0], *tg = &x->in[1];
    const float *xv = in->data, *dy = x->dout[0].data;
    float *dx = x->din[0].data;
    float *dt = tg->dtype == CNN_F32 ? x->din[1].data : NULL;
    const float *w = buffer_or_null(x, &o->weight);
    int64_t n = cnni_numel(&in->shape);
    if (!dx && !dt)
        return CNN_OK;
    switch (o->kind) {
    case K_MSE:
    case K_L1:
    case K_SMOOTH_L1: {
        int ti = tg->dtype == CNN_I64;
        cnni_ref_pointwise_loss_backward_f32(pointwise_kind(o->kind), o->reduction, o->beta, n, xv,
                                             ti ? NULL : tg->data, ti ? tg->data : NULL, dy, dx, dt);
        break;
    }
    case K_BCE: {
        cnni_loss_bcast b = make_bcast(&in->shape, o);
        cnni_ref_bce_backward_f32(o->reduction, &b, xv, tg->data, w, dy, dx, dt);
        break;
    }
    case K_BCE_LOGITS: {
        cnni_loss_bcast b = make_bcast(&in->shape, o);
        cnni_ref_bce_logits_backward_f32(o->reduction, &b, xv, tg->data, w,
                                         buffer_or_null(x, &o->pos_weight), dy, dx, dt);
        break;
    }
    default: {
        cnni_class_geom g = class_geom(&in->shape);
        cnni_class_opts c = class_opts(o);
        int probs = tg->dtype == CNN_F32;
        cnni_ref_class_loss_backward_f32(&g, &c, xv, probs ? NULL : tg->data,
                                         probs ? tg->data : NULL, w, dy, dx, dt);
        break;
    }
    }
    return CNN_OK;
}

#define LOSS_OP(NAME, ARGS)                                                                        \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = ARGS,                                                  \
                                    .inputs = loss_inputs,                                         \
                                    .min_inputs = 2,                                               \
                                    .max_inputs = 2,                                               \
                                    .opts_size = sizeof(loss_opts),                                \
                                    .configure = loss_configure,                                   \
                                    .infer = loss_infer,                                           \
                                    .reset = loss_reset,                                           \
                                    .forward = loss_forward,                                       \
                                    .backward = loss_backward};

LOSS_OP(MSELoss, pointwise_args)
LOSS_OP(L1Loss, pointwise_args)
LOSS_OP(SmoothL1Loss, smooth_l1_args)
LOSS_OP(CrossEntropyLoss, ce_args)
LOSS_OP(NLLLoss, nll_args)
LOSS_OP(BCELoss, bce_args)
LOSS_OP(BCEWithLogitsLoss, bce_logits_args)
