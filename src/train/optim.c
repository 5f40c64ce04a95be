/* Optimisers with torch.optim's update rules (PyTorch's single-tensor
 * implementations, the CPU default), in the same order of float operations
 * so that runs agree with PyTorch to float32 accuracy. State lives in
 * arrays parallel to the graph's contiguous parameter block, so each
 * optimiser is one loop. */
#include "train_internal.h"
#include "../core/cpu.h"
#include "../core/pool.h"
#include "../kernels/optim_fast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cnn_status cnni_bind_spec(const cnni_value *call, const char *const *names, int n_required,
                          const char *file, cnni_args *args, cnni_op *fake, cnn_err *e)
{
    memset(fake, 0, sizeof *fake);
    fake->name = call->s;
    fake->args = names;
    fake->n_required = n_required;
    return cnni_bind_args(fake, call, file, args, e);
}

cnn_status cnn_optimizer_create(cnn_optimizer **out)
{
    if (!out)
        return CNN_ERR_ARGUMENT;
    *out = cnni_calloc(1, sizeof(cnn_optimizer));
    return *out ? CNN_OK : CNN_ERR_NOMEM;
}

static void free_state(cnn_optimizer *o)
{
    cnni_afree(o->s1);
    cnni_afree(o->s2);
    cnni_afree(o->s3);
    o->s1 = o->s2 = o->s3 = NULL;
}

void cnn_optimizer_destroy(cnn_optimizer *o)
{
    if (!o)
        return;
    free_state(o);
    cnni_free(o->spec);
    cnni_free(o->sched_spec);
    cnni_free(o);
}

const char *cnn_optimizer_errmsg(const cnn_optimizer *o)
{
    return o ? o->err.msg : "no optimizer (NULL handle)";
}

static const char *const sgd_args[] = {"lr", "momentum", "dampening", "weight_decay", "nesterov",
                                       "maximize", "foreach", "differentiable", NULL};
static const char *const adam_args[] = {"lr", "betas", "eps", "weight_decay", "amsgrad", "foreach",
                                        "maximize", "capturable", "differentiable", "fused", NULL};
static const char *const rms_args[] = {"lr", "alpha", "eps", "weight_decay", "momentum", "centered",
                                       "foreach", "maximize", "differentiable", NULL};

/* foreach/fused/capturable/differentiable select PyTorch implementations,
 * not the maths; accept their harmless values. */
static cnn_status check_impl_flags(const cnni_args *a, int k)
{
    const cnni_value *v = a->slot[k];
    if (!v || v->kind == CNNI_V_NONE)
        return CNN_OK;
    if (v->kind == CNNI_V_BOOL) {
        const char *n = a->op->args[k];
        if (v->i && (strcmp(n, "differentiable") == 0 || strcmp(n, "capturable") == 0 ||
                     strcmp(n, "fused") == 0))
            return cnni_arg_fail(a, k, "%s=True is not supported (it needs autograd or a GPU)", n);
        return CNN_OK;
    }
    return cnni_arg_fail(a, k, "'%s' must be None, True or False", a->op->args[k]);
}

static cnn_status parse_sgd(cnn_optimizer *o, const cnni_args *a)
{
    cnn_status st;
    if (!a->slot[0])
        return cnni_arg_fail(a, -1, "SGD needs a learning rate: SGD(lr=0.01)");
    if ((st = cnni_arg_float(a, 0, 0, &o->lr)) || (st = cnni_arg_float(a, 1, 0, &o->momentum)) ||
        (st = cnni_arg_float(a, 2, 0, &o->dampening)) ||
        (st = cnni_arg_float(a, 3, 0, &o->weight_decay)) ||
        (st = cnni_arg_bool(a, 4, 0, &o->nesterov)) || (st = cnni_arg_bool(a, 5, 0, &o->maximize)) ||
        (st = check_impl_flags(a, 6)) || (st = check_impl_flags(a, 7)))
        return st;
    if (o->lr < 0)
        return cnni_arg_fail(a, 0, "Invalid learning rate: %g", o->lr);
    if (o->momentum < 0)
        return cnni_arg_fail(a, 1, "Invalid momentum value: %g", o->momentum);
    if (o->weight_decay < 0)
        return cnni_arg_fail(a, 3, "Invalid weight_decay value: %g", o->weight_decay);
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return cnni_arg_fail(a, 4, "Nesterov momentum requires a momentum and zero dampening");
    return CNN_OK;
}

static cnn_status parse_adam(cnn_optimizer *o, const cnni_args *a, int adamw)
{
    cnn_status st;
    double betas[2] = {0.9, 0.999};
    if (a->slot[1]) {
        const cnni_value *v = a->slot[1];
        if ((v->kind != CNNI_V_TUPLE && v->kind != CNNI_V_LIST) || v->n != 2 ||
            (v->items[0]->kind != CNNI_V_INT && v->items[0]->kind != CNNI_V_FLOAT) ||
            (v->items[1]->kind != CNNI_V_INT && v->items[1]->kind != CNNI_V_FLOAT))
            return cnni_arg_fail(a, 1, "betas must be a tuple of two numbers, e.g. betas=(0.9, 0.999)");
        betas[0] = v->items[0]->f;
        betas[1] = v->items[1]->f;
    }
    if ((st = cnni_arg_float(a, 0, 1e-3, &o->lr)) || (st = cnni_arg_float(a, 2, 1e-8, &o->eps)) ||
        (st = cnni_arg_float(a, 3, adamw ? 1e-2 : 0, &o->weight_decay)) ||
        (st = cnni_arg_bool(a, 4, 0, &o->amsgrad)) || (st = check_impl_flags(a, 5)) ||
        (st = cnni_arg_bool(a, 6, 0, &o->maximize)) || (st = check_impl_flags(a, 7)) ||
        (st = check_impl_flags(a, 8)) || (st = check_impl_flags(a, 9)))
        return st;
    o->beta1 = betas[0];
    o->beta2 = betas[1];
    if (o->lr < 0)
        return cnni_arg_fail(a, 0, "Invalid learning rate: %g", o->lr);
    if (o->eps < 0)
        return cnni_arg_fail(a, 2, "Invalid epsilon value: %g", o->eps);
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return cnni_arg_fail(a, 1, "Invalid beta parameter at index 0: %g", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return cnni_arg_fail(a, 1, "Invalid beta parameter at index 1: %g", o->beta2);
    if (o->weight_decay < 0)
        return cnni_arg_fail(a, 3, "Invalid weight_decay value: %g", o->weight_decay);
    return CNN_OK;
}

static cnn_status parse_rmsprop(cnn_optimizer *o, const cnni_args *a)
{
    cnn_status st;
    if ((st = cnni_arg_float(a, 0, 1e-2, &o->lr)) || (st = cnni_arg_float(a, 1, 0.99, &o->alpha)) ||
        (st = cnni_arg_float(a, 2, 1e-8, &o->eps)) ||
        (st = cnni_arg_float(a, 3, 0, &o->weight_decay)) ||
        (st = cnni_arg_float(a, 4, 0, &o->momentum)) || (st = cnni_arg_bool(a, 5, 0, &o->centered)) ||
        (st = check_impl_flags(a, 6)) || (st = cnni_arg_bool(a, 7, 0, &o->maximize)) ||
        (st = check_impl_flags(a, 8)))
        return st;
    if (o->lr < 0)
        return cnni_arg_fail(a, 0, "Invalid learning rate: %g", o->lr);
    if (o->eps < 0)
        return cnni_arg_fail(a, 2, "Invalid epsilon value: %g", o->eps);
    if (o->momentum < 0)
        return cnni_arg_fail(a, 4, "Invalid momentum value: %g", o->momentum);
    if (o->weight_decay < 0)
        return cnni_arg_fail(a, 3, "Invalid weight_decay value: %g", o->weight_decay);
    if (o->alpha < 0)
        return cnni_arg_fail(a, 1, "Invalid alpha value: %g", o->alpha);
    return CNN_OK;
}

cnn_status cnn_optimizer_init(cnn_optimizer *o, cnn_graph *g, const char *spec)
{
    if (!o)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!g || !spec)
        return cnni_fail(&o->err, CNN_ERR_ARGUMENT, "cnn_optimizer_init: graph and spec are required");
    cnni_model_ast ast;
    cnn_status st = cnni_model_parse_call(spec, "optimizer", &ast, &o->err);
    if (st)
        return st;
    const cnni_value *call = ast.stmts[0].call;
    cnn_optimizer fresh;
    memset(&fresh, 0, sizeof fresh);
    cnni_args args;
    cnni_op fake;
    const char *name = call ? call->s : "";
    if (strncmp(name, "torch.optim.", 12) == 0)
        name += 12;
    else if (strncmp(name, "optim.", 6) == 0)
        name += 6;
    if (!call || ast.stmts[0].ntargets || ast.stmts[0].has_fwd) {
        st = cnni_fail(&o->err, CNN_ERR_PARSE, "optimizer: give one call, e.g. \"SGD(lr=0.01)\"");
    } else if (strcmp(name, "SGD") == 0) {
        fresh.kind = OPT_SGD;
        st = cnni_bind_spec(call, sgd_args, 0, "optimizer", &args, &fake, &o->err);
        if (!st)
            st = parse_sgd(&fresh, &args);
    } else if (strcmp(name, "Adam") == 0 || strcmp(name, "AdamW") == 0) {
        fresh.kind = name[4] == 'W' ? OPT_ADAMW : OPT_ADAM;
        st = cnni_bind_spec(call, adam_args, 0, "optimizer", &args, &fake, &o->err);
        if (!st)
            st = parse_adam(&fresh, &args, fresh.kind == OPT_ADAMW);
    } else if (strcmp(name, "RMSprop") == 0) {
        fresh.kind = OPT_RMSPROP;
        st = cnni_bind_spec(call, rms_args, 0, "optimizer", &args, &fake, &o->err);
        if (!st)
            st = parse_rmsprop(&fresh, &args);
    } else {
        st = cnni_fail(&o->err, CNN_ERR_CONFIG,
                       "optimizer: unknown optimizer '%s' (SGD, Adam, AdamW, RMSprop)", name);
    }
    if (st && fresh.err.code == CNN_OK && o->err.code == CNN_OK)
        cnni_fail(&o->err, st, "optimizer: invalid arguments");
    cnni_model_ast_free(&ast);
    if (st)
        return st;
    size_t n = g->p_len;
    size_t bytes = (n ? n : 1) * sizeof(float);
    float *s1 = cnni_amalloc(bytes), *s2 = cnni_amalloc(bytes), *s3 = cnni_amalloc(bytes);
    char *sp = cnni_strdup(spec);
    if (!s1 || !s2 || !s3 || !sp) {
        cnni_afree(s1);
        cnni_afree(s2);
        cnni_afree(s3);
        cnni_free(sp);
        return cnni_oom(&o->err);
    }
    memset(s1, 0, bytes);
    memset(s2, 0, bytes);
    memset(s3, 0, bytes);
    free_state(o);
    cnni_free(o->spec);
    cnni_free(o->sched_spec);
    cnn_err keep = o->err;
    *o = fresh;
    o->err = keep;
    o->g = g;
    o->spec = sp;
    o->n = n;
    o->s1 = s1;
    o->s2 = s2;
    o->s3 = s3;
    o->initial_lr = o->lr;
    return CNN_OK;
}

/* s1: momentum buffer (SGD), exp_avg (Adam), square_avg (RMSprop)
 * s2: exp_avg_sq (Adam), momentum buffer (RMSprop)
 * s3: max_exp_avg_sq (Adam, amsgrad), grad_avg (RMSprop, centered) */

/* The update loops take the options as arguments and are inlined into
 * calls with constant options for the usual settings, so those loops have
 * no per-element branch and no reload through the optimizer. gcc vectorises
 * the SGD loops; the Adam loop stays scalar there (gcc reports control flow
 * in it), so the usual Adam settings run the AVX2 / AVX-512 kernels of
 * kernels/optim_fast.h first. The arithmetic, and so every bit, is the
 * same in every copy (test_optim_fast). */
#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* gcc's -O2 vectorises only loops that need no run-time checks, and keeps
 * sqrtf scalar for errno (never set here: its argument is a sum of squares);
 * clang vectorises these at -O2 already. */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORISE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "no-math-errno")))
#else
#define VECTORISE
#endif

VECTORISE ALWAYS_INLINE void sgd_loop(float *restrict p, const float *restrict gr, float *restrict buf, size_t n, int maximize,
                            int decay, int momentum, int nesterov, int first, float wd, float mom, float damp1,
                            float neg_lr)
{
    for (size_t i = 0; i < n; i++) {
        float d = maximize ? -gr[i] : gr[i];
        if (decay)
            d = d + wd * p[i];
        if (momentum) {
            float b = first ? d : buf[i] * mom + damp1 * d;
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        p[i] = p[i] + neg_lr * d;
    }
}

VECTORISE static void sgd_step(cnn_optimizer *o, float *p, const float *gr, size_t n)
{
    const float wd = (float)o->weight_decay, mom = (float)o->momentum;
    const float damp1 = (float)(1 - o->dampening), neg_lr = (float)-o->lr;
    const int first = o->step == 0, decay = o->weight_decay != 0, momentum = o->momentum != 0;
    if (!o->maximize && !decay && momentum && !o->nesterov && !first) {
        const int isa = o->g->isa;
        size_t done = isa == CNNI_ISA_AVX512 ? cnni_sgd_momentum_avx512(p, gr, o->s1, n, mom, damp1, neg_lr)
                      : isa == CNNI_ISA_AVX2 ? cnni_sgd_momentum_avx2(p, gr, o->s1, n, mom, damp1, neg_lr)
                                             : 0;
        sgd_loop(p + done, gr + done, o->s1 + done, n - done, 0, 0, 1, 0, 0, wd, mom, damp1, neg_lr);
    }
    else if (!o->maximize && !decay && !momentum)
        sgd_loop(p, gr, o->s1, n, 0, 0, 0, 0, 0, wd, mom, damp1, neg_lr);
    else
        sgd_loop(p, gr, o->s1, n, o->maximize, decay, momentum, o->nesterov, first, wd, mom, damp1, neg_lr);
}

VECTORISE ALWAYS_INLINE void adam_loop(float *restrict p, const float *restrict gr, float *restrict s1, float *restrict s2,
                             float *restrict s3, size_t n, int maximize, int adamw, int decay, int amsgrad,
                             float neg_step, float bc2s, float eps, float b1, float b2, float ob1, float ob2,
                             float wd, float wdecay)
{
    for (size_t i = 0; i < n; i++) {
        float d = maximize ? -gr[i] : gr[i];
        float w = p[i];
        if (adamw)
            w = w * wdecay;
        else if (decay)
            d = d + wd * w;
        float m = s1[i] * b1 + ob1 * d;
        float v = s2[i] * b2 + ob2 * d * d;
        s1[i] = m;
        s2[i] = v;
        float den;
        if (amsgrad) {
            float vm = s3[i] > v ? s3[i] : v;
            s3[i] = vm;
            den = sqrtf(vm) / bc2s + eps;
        } else {
            den = sqrtf(v) / bc2s + eps;
        }
        p[i] = w + (neg_step * m) / den;
    }
}

VECTORISE static void adam_step(cnn_optimizer *o, float *p, const float *gr, size_t n)
{
    double step = (double)(o->step + 1);
    double bc1 = 1 - pow(o->beta1, step), bc2 = 1 - pow(o->beta2, step);
    const float neg_step = (float)-(o->lr / bc1);
    const float bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float ob1 = (float)(1 - o->beta1), ob2 = (float)(1 - o->beta2);
    const float wd = (float)o->weight_decay;
    const float decay = (float)(1 - o->lr * o->weight_decay);
    const int adamw = o->kind == OPT_ADAMW, l2 = o->weight_decay != 0;
    if (!o->maximize && !o->amsgrad && (adamw || !l2)) {
        /* the vector kernels first, the scalar loop for the tail */
        const cnni_adam_consts k = {neg_step, bc2s, eps, b1, b2, ob1, ob2, decay, adamw};
        const int isa = o->g->isa;
        size_t done = isa == CNNI_ISA_AVX512 ? cnni_adam_avx512(p, gr, o->s1, o->s2, n, &k)
                      : isa == CNNI_ISA_AVX2 ? cnni_adam_avx2(p, gr, o->s1, o->s2, n, &k)
                                             : 0;
        p += done, gr += done, n -= done;
        if (adamw)
            adam_loop(p, gr, o->s1 + done, o->s2 + done, NULL, n, 0, 1, 0, 0, neg_step, bc2s, eps, b1, b2, ob1, ob2,
                      wd, decay);
        else
            adam_loop(p, gr, o->s1 + done, o->s2 + done, NULL, n, 0, 0, 0, 0, neg_step, bc2s, eps, b1, b2, ob1, ob2,
                      wd, decay);
    } else
        adam_loop(p, gr, o->s1, o->s2, o->s3, n, o->maximize, adamw, l2, o->amsgrad, neg_step, bc2s, eps, b1, b2,
                  ob1, ob2, wd, decay);
}

static void rmsprop_step(cnn_optimizer *o, float *p, const float *gr, size_t n)
{
    const float alpha = (float)o->alpha, oa = (float)(1 - o->alpha), eps = (float)o->eps;
    const float wd = (float)o->weight_decay, mom = (float)o->momentum, neg_lr = (float)-o->lr;
    for (size_t i = 0; i < n; i++) {
        float d = o->maximize ? -gr[i] : gr[i];
        if (o->weight_decay != 0)
            d = d + wd * p[i];
        float sa = o->s1[i] * alpha + oa * d * d;
        o->s1[i] = sa;
        float avg;
        if (o->centered) {
            float ga = o->s3[i] * alpha + oa * d;
            o->s3[i] = ga;
            avg = sqrtf(sa + -1.0f * ga * ga);
        } else {
            avg = sqrtf(sa);
        }
        avg = avg + eps;
        if (o->momentum > 0) {
            float b = o->s2[i] * mom + d / avg;
            o->s2[i] = b;
            p[i] = p[i] + neg_lr * b;
        } else {
            p[i] = p[i] + (neg_lr * d) / avg;
        }
    }
}

/* The update is elementwise: the parameters are cut into chunks of
 * STEP_CHUNK values (a multiple of every vector width, so each element
 * takes the same vector or scalar path as in one pass) shared out to the
 * graph's threads, which together bring more of them in from memory. The
 * state arrays of chunk c start at the same offset. */
#define STEP_CHUNK 16384


static void step_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    cnn_optimizer *o = ctx;
    const size_t a = (size_t)t * STEP_CHUNK, n = o->n - a < STEP_CHUNK ? o->n - a : STEP_CHUNK;
    float *p = o->g->pdata + a;
    const float *gr = o->g->pgrad + a;
    /* the chunk's views of the state (s1..s3 are NULL where unused) */
    cnn_optimizer view = *o;
    view.s1 = o->s1 ? o->s1 + a : NULL;
    view.s2 = o->s2 ? o->s2 + a : NULL;
    view.s3 = o->s3 ? o->s3 + a : NULL;
    switch (o->kind) {
    case OPT_SGD: sgd_step(&view, p, gr, n); break;
    case OPT_ADAM:
    case OPT_ADAMW: adam_step(&view, p, gr, n); break;
    case OPT_RMSPROP: rmsprop_step(&view, p, gr, n); break;
    }
}

cnn_status cnn_optimizer_step(cnn_optimizer *o)
{
    if (!o)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!o->g)
        return cnni_fail(&o->err, CNN_ERR_STATE, "cnn_optimizer_step: call cnn_optimizer_init first");
    cnn_graph *g = o->g;
    if (g->p_len != o->n)
        return cnni_fail(&o->err, CNN_ERR_STATE,
                         "the model's parameters changed after the optimizer was set up (%zu vs %zu "
                         "values); set it up again",
                         g->p_len, o->n);
    cnni_pool_run_blocked(o->n >= 2 * STEP_CHUNK ? g->pool : NULL, step_task, o,
                          (int64_t)((o->n + STEP_CHUNK - 1) / STEP_CHUNK));
    o->step++;
    return CNN_OK;
}

double cnn_optimizer_lr(const cnn_optimizer *o) { return o ? o->lr : 0; }

cnn_status cnn_optimizer_set_lr(cnn_optimizer *o, double lr)
{
    if (!o)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!(lr >= 0))
        return cnni_fail(&o->err, CNN_ERR_ARGUMENT, "Invalid learning rate: %g", lr);
    o->lr = lr;
    return CNN_OK;
}

/* State tensors, sliced per parameter: "optim.<param>.<state>". */
static const char *state_name(const cnn_optimizer *o, int k)
{
    static const char *sgd[] = {"momentum_buffer", NULL, NULL};
    static const char *adam[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    static const char *rms[] = {"square_avg", "momentum_buffer", "grad_avg"};
    switch (o->kind) {
    case OPT_SGD: return sgd[k];
    case OPT_ADAM:
    case OPT_ADAMW: return adam[k];
    case OPT_RMSPROP: return rms[k];
    }
    return NULL;
}

cnn_status cnn_optimizer_save_state(cnn_optimizer *o, cnn_tensors *ts)
{
    if (!o || !ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!o->g)
        return cnni_fail(&o->err, CNN_ERR_STATE, "the optimizer is not set up");
    cnn_graph *g = o->g;
    float *bufs[3] = {o->s1, o->s2, o->s3};
    cnn_status st = CNN_OK;
    for (int i = 0; i < g->n_params && !st; i++) {
        const cnni_pentry *p = &g->params[i];
        if (p->kind != CNN_PARAM)
            continue;
        for (int k = 0; k < 3 && !st; k++) {
            const char *sn = state_name(o, k);
            if (!sn)
                continue;
            char name[600];
            snprintf(name, sizeof name, "optim.%s.%s", p->name, sn);
            st = cnn_tensors_add(ts, name, CNN_F32, &p->shape, bufs[k] + p->off, NULL);
        }
    }
    char buf[64];
    cnn_shape scalar = {0, {0}};
    if (!st)
        st = cnn_tensors_add(ts, "optim.step", CNN_I64, &scalar, &o->step, NULL);
    if (!st)
        st = cnn_tensors_set_meta(ts, "optim.spec", o->spec);
    snprintf(buf, sizeof buf, "%.17g", o->lr);
    if (!st)
        st = cnn_tensors_set_meta(ts, "optim.lr", buf);
    snprintf(buf, sizeof buf, "%.17g", o->initial_lr);
    if (!st)
        st = cnn_tensors_set_meta(ts, "optim.initial_lr", buf);
    if (!st && o->sched_spec) {
        st = cnn_tensors_set_meta(ts, "optim.schedule", o->sched_spec);
        for (int i = 0; i < o->n_sched && !st; i++) {
            char key[64];
            snprintf(key, sizeof key, "optim.schedule.last_epoch.%d", i);
            snprintf(buf, sizeof buf, "%lld", (long long)o->sched[i].last_epoch);
            st = cnn_tensors_set_meta(ts, key, buf);
        }
    }
    if (st)
        return cnni_fail(&o->err, st, "%s", cnn_tensors_errmsg(ts));
    return CNN_OK;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    if (!s)
        return 0;
    *out = strtod(s, &end);
    return end != s && *end == 0;
}

cnn_status cnn_optimizer_load_state(cnn_optimizer *o, const cnn_tensors *ts)
{
    return cnni_optimizer_read_state(o, ts, 1);
}

cnn_status cnni_optimizer_read_state(cnn_optimizer *o, const cnn_tensors *ts, int apply)
{
    if (!o || !ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!o->g)
        return cnni_fail(&o->err, CNN_ERR_STATE, "the optimizer is not set up");
    cnn_graph *g = o->g;
    const char *spec = cnn_tensors_get_meta(ts, "optim.spec");
    if (!spec)
        return cnni_fail(&o->err, CNN_ERR_NOT_FOUND, "the saved state has no optimizer");
    if (strcmp(spec, o->spec) != 0)
        return cnni_fail(&o->err, CNN_ERR_ARGUMENT,
                         "the saved optimizer is \"%s\" but this one is \"%s\"", spec, o->spec);
    const char *ss = cnn_tensors_get_meta(ts, "optim.schedule");
    if ((ss == NULL) != (o->sched_spec == NULL) || (ss && strcmp(ss, o->sched_spec) != 0))
        return cnni_fail(&o->err, CNN_ERR_ARGUMENT,
                         "the saved schedule is \"%s\" but this one is \"%s\"", ss ? ss : "none",
                         o->sched_spec ? o->sched_spec : "none");
    double lr, initial_lr;
    if (!parse_double(cnn_tensors_get_meta(ts, "optim.lr"), &lr) ||
        !parse_double(cnn_tensors_get_meta(ts, "optim.initial_lr"), &initial_lr))
        return cnni_fail(&o->err, CNN_ERR_FORMAT, "the saved optimizer state has no valid learning rate");
    int64_t last[CNNI_MAX_SCHED + 1];
    for (int i = 0; i < o->n_sched; i++) {
        char key[64];
        double v;
        snprintf(key, sizeof key, "optim.schedule.last_epoch.%d", i);
        if (!parse_double(cnn_tensors_get_meta(ts, key), &v))
            return cnni_fail(&o->err, CNN_ERR_FORMAT, "the saved schedule has no valid '%s'", key);
        last[i] = (int64_t)v;
    }
    int ks = cnn_tensors_find(ts, "optim.step");
    cnn_tensor_info info;
    if (ks < 0 || cnn_tensors_get(ts, ks, &info) || info.dtype != CNN_I64 || info.shape.ndim != 0)
        return cnni_fail(&o->err, CNN_ERR_FORMAT, "the saved optimizer state has no int64 'optim.step'");
    int64_t step = *(int64_t *)info.data;
    float *bufs[3] = {o->s1, o->s2, o->s3};
    /* Validate every tensor before changing anything. */
    for (int pass = 0; pass < 1 + apply; pass++) {
        for (int i = 0; i < g->n_params; i++) {
            const cnni_pentry *p = &g->params[i];
            if (p->kind != CNN_PARAM)
                continue;
            for (int k = 0; k < 3; k++) {
                const char *sn = state_name(o, k);
                if (!sn)
                    continue;
                char name[600], sa[128];
                snprintf(name, sizeof name, "optim.%s.%s", p->name, sn);
                int idx = cnn_tensors_find(ts, name);
                if (idx < 0)
                    return cnni_fail(&o->err, CNN_ERR_NOT_FOUND, "missing optimizer state '%s'", name);
                cnn_tensors_get(ts, idx, &info);
                if (info.dtype != CNN_F32 || !cnni_shape_eq(&info.shape, &p->shape))
                    return cnni_fail(&o->err, CNN_ERR_SHAPE, "optimizer state '%s' should be F32 %s",
                                     name, cnni_shape_str(&p->shape, sa, sizeof sa));
                if (pass == 1)
                    memcpy(bufs[k] + p->off, info.data, info.nbytes);
            }
        }
    }
    if (!apply)
        return CNN_OK;
    o->step = step;
    o->lr = lr;
    o->initial_lr = initial_lr;
    for (int i = 0; i < o->n_sched; i++)
        o->sched[i].last_epoch = last[i];
    return CNN_OK;
}
