/* Dropout and Dropout2d. In training each element (Dropout) or each
 * (dim 0, dim 1) slice (Dropout2d) is kept with probability 1 - p and then
 * scaled by 1/(1 - p), or zeroed; the factors are drawn from the graph's
 * generator and kept in `saved` for the backward. In eval mode both are the
 * identity.
 *
 * The factors come in chunks of DROP_CHUNK blocks, chunk t drawn from
 * stream t split off the graph's generator, which then moves on by one
 * draw. So the chunks run on the thread pool, and a factor depends only on
 * the generator's state and its index, never on the thread count. (One
 * stream for the whole tensor, drawn on one thread, took 5% of the main
 * job's 2-thread step.)
 *
 * Dropout2d follows PyTorch 1.13's feature dropout for every rank: the mask
 * always covers dims 0 and 1, so a 3-d input (N, C, L) loses whole channels
 * of length L and a 2-d input single elements; fewer than 2 dims is an error
 * in training unless p is 0 or 1. */
#include "layer.h"
#include "../core/pool.h"
#include "../kernels/drop_fast.h"
#include "../kernels/ref/activation_ref.h"

#include <math.h>
#include <string.h>

static const char *const one_input[] = {"input", NULL};
static const char *const dropout_args[] = {"p", "inplace", NULL};

/* Bytes in front of the saved factors: how the forward ran, which the
 * backward needs because it is always called in training mode. */
#define SAVED_HEADER 64

typedef struct dropout_opts {
    double p;
    int feature; /* Dropout2d */
} dropout_opts;

/* What the last forward did, as PyTorch's _dropout_impl decides it. */
enum { DROP_IDENTITY = 0, DROP_ZERO = 1, DROP_MASK = 2 };

static cnn_status dropout_configure_(cnni_node *n, const cnni_args *a, int feature)
{
    dropout_opts *o = n->opts;
    o->feature = feature;
    cnn_status st = cnni_arg_float(a, 0, 0.5, &o->p);
    if (st)
        return st;
    if (!(o->p >= 0 && o->p <= 1))
        return cnni_arg_fail(a, 0, "dropout probability has to be between 0 and 1, but got %g", o->p);
    /* PyTorch only tests inplace for truth, so any plain value is accepted;
     * cnn keeps every value in its own buffer, so it changes nothing. */
    const cnni_value *v = a->slot[1];
    if (v && (v->kind == CNNI_V_NAME || v->kind == CNNI_V_CALL))
        return cnni_arg_fail(a, 1, "argument 'inplace' must be True or False, got %s",
                             cnni_vkind_name(v->kind));
    n->n_out = 1;
    return CNN_OK;
}

static cnn_status dropout_configure(cnni_node *n, const cnni_args *a)
{
    return dropout_configure_(n, a, 0);
}

static cnn_status dropout2d_configure(cnni_node *n, const cnni_args *a)
{
    return dropout_configure_(n, a, 1);
}

/* The input as blocks of `inner` elements sharing one factor; blocks is 0
 * for a feature dropout of fewer than 2 dims (which cannot draw a mask). */
static void dropout_blocks(const dropout_opts *o, const cnn_shape *s, int64_t *blocks,
                           int64_t *inner)
{
    int64_t n = cnni_numel(s);
    if (!o->feature) {
        *blocks = n;
        *inner = 1;
    } else if (s->ndim < 2) {
        *blocks = 0;
        *inner = n;
    } else {
        *blocks = s->dims[0] * s->dims[1];
        *inner = 1;
        for (int i = 2; i < s->ndim; i++)
            *inner *= s->dims[i];
    }
}

static cnn_status dropout_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    if (inf->in[0].dtype != CNN_F32)
        return cnni_fail(e, CNN_ERR_SHAPE, "%s expects a float32 input, got %s", n->op->name,
                         cnn_dtype_name(inf->in[0].dtype));
    inf->out[0].shape = inf->in[0].shape;
    inf->out[0].dtype = CNN_F32;
    if (inf->backward) {
        int64_t blocks, inner, bytes;
        dropout_blocks(n->opts, &inf->in[0].shape, &blocks, &inner);
        if (!cnni_mul_ok(blocks, (int64_t)sizeof(float), &bytes) ||
            !cnni_add_ok(bytes, SAVED_HEADER, &bytes))
            return cnni_fail(e, CNN_ERR_OVERFLOW, "%s's saved mask is too large", n->op->name);
        inf->saved_bytes = (size_t)bytes;
    }
    return CNN_OK;
}

#define DROP_CHUNK 4096

typedef struct {
    cnni_rng base;         /* the generator before this forward */
    int64_t blocks, inner;
    double p;
    float scale;
    float *f;              /* the factors kept for the backward, or NULL */
    const float *in;
    float *out;
    int isa;
} drop_job;

static void drop_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    drop_job *j = ctx;
    const int64_t b0 = t * DROP_CHUNK, nb = j->blocks - b0 < DROP_CHUNK ? j->blocks - b0 : DROP_CHUNK;
    cnni_rng r;
    cnni_rng_split(&j->base, (uint64_t)t, &r);
    float local[DROP_CHUNK]; /* without a backward the factors are used once */
    float *f = j->f ? j->f + b0 : local;
    if (j->inner == 1) {
        cnni_drop_fast_factors(j->isa, &r, nb, j->p, j->scale, f, j->in + b0, j->out + b0);
    } else {
        cnni_drop_fast_factors(j->isa, &r, nb, j->p, j->scale, f, NULL, NULL);
        cnni_ref_block_scale_f32(nb, j->inner, j->in + b0 * j->inner, f, j->out + b0 * j->inner);
    }
}

typedef struct {
    int64_t blocks, inner;
    const float *dy, *f;
    float *dx;
} drop_back_job;

static void drop_back_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const drop_back_job *j = ctx;
    const int64_t b0 = t * DROP_CHUNK, nb = j->blocks - b0 < DROP_CHUNK ? j->blocks - b0 : DROP_CHUNK;
    if (j->inner == 1) {
        /* a factor per element: one product each, in a loop compilers vectorise
         * (the block loop's inner loop of one element was not) */
        const float *dy = j->dy + b0, *f = j->f + b0;
        float *dx = j->dx + b0;
        for (int64_t i = 0; i < nb; i++)
            dx[i] = dy[i] * f[i];
        return;
    }
    cnni_ref_block_scale_f32(nb, j->inner, j->dy + b0 * j->inner, j->f + b0, j->dx + b0 * j->inner);
}

static cnn_status dropout_forward(const cnni_exec *x)
{
    const dropout_opts *o = x->opts;
    const cnn_shape *s = &x->in[0].shape;
    int64_t n = cnni_numel(s), blocks, inner;
    const float *in = x->in[0].data;
    float *out = x->out[0].data;
    int32_t *mode = x->saved;
    int m = (!x->training || o->p == 0 || n == 0) ? DROP_IDENTITY : o->p == 1 ? DROP_ZERO : DROP_MASK;
    dropout_blocks(o, s, &blocks, &inner);
    if (m == DROP_MASK && o->feature && s->ndim < 2) {
        char sb[128];
        return cnni_fail(x->e, CNN_ERR_SHAPE,
                         "feature dropout in training mode requires at least 2 dimensions in the "
                         "input (N, C, ...), got the %d-d input %s",
                         s->ndim, cnni_shape_str(s, sb, sizeof sb));
    }
    if (mode)
        *mode = m;
    if (m == DROP_IDENTITY) {
        if (n > 0) /* an empty tensor may have no buffer at all */
            memcpy(out, in, (size_t)n * sizeof(float));
        return CNN_OK;
    }
    if (m == DROP_ZERO) {
        /* PyTorch multiplies by zero, so NaN and infinity give NaN. */
        const float zero = 0.0f;
        cnni_ref_block_scale_f32(1, n, in, &zero, out);
        return CNN_OK;
    }
    drop_job j = {*x->rng, blocks, inner, o->p, (float)(1.0 / (1.0 - o->p)),
                  mode ? (float *)((char *)x->saved + SAVED_HEADER) : NULL, in, out, x->isa};
    cnni_rng_u64(x->rng);
    const int64_t chunks = (blocks + DROP_CHUNK - 1) / DROP_CHUNK;
    cnni_pool_run(x->pool, drop_task, &j, chunks); /* one chunk runs inline */
    return CNN_OK;
}

static cnn_status dropout_backward(const cnni_exec *x)
{
    const dropout_opts *o = x->opts;
    const cnn_shape *s = &x->in[0].shape;
    int64_t n = cnni_numel(s), blocks, inner;
    const float *dy = x->dout[0].data;
    float *dx = x->din[0].data;
    const int32_t *mode = x->saved;
    if (!dx)
        return CNN_OK;
    if (*mode == DROP_IDENTITY) {
        if (n > 0)
            memcpy(dx, dy, (size_t)n * sizeof(float));
    } else if (*mode == DROP_ZERO) {
        const float zero = 0.0f;
        cnni_ref_block_scale_f32(1, n, dy, &zero, dx);
    } else {
        dropout_blocks(o, s, &blocks, &inner);
        drop_back_job j = {blocks, inner, dy, (const float *)((const char *)x->saved + SAVED_HEADER), dx};
        cnni_pool_run_blocked(x->pool, drop_back_task, &j, (blocks + DROP_CHUNK - 1) / DROP_CHUNK);
    }
    return CNN_OK;
}

#define DROPOUT_OP(NAME, cfg)                                                                      \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = dropout_args,                                          \
                                    .n_required = 0,                                               \
                                    .inputs = one_input,                                           \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .opts_size = sizeof(dropout_opts),                             \
                                    .configure = cfg,                                              \
                                    .infer = dropout_infer,                                        \
                                    .forward = dropout_forward,                                    \
                                    .backward = dropout_backward};

DROPOUT_OP(Dropout, dropout_configure)
DROPOUT_OP(Dropout2d, dropout2d_configure)
