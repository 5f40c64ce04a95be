/* Learning-rate schedules with torch.optim.lr_scheduler's semantics: each
 * step applies the scheduler's chainable rule to the current learning rate
 * (PyTorch's get_lr), and SequentialLR restarts the next scheduler with its
 * closed form at each milestone, exactly as PyTorch 1.13 does. */
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const step_args[] = {"step_size", "gamma", "last_epoch", "verbose", NULL};
static const char *const multistep_args[] = {"milestones", "gamma", "last_epoch", "verbose", NULL};
static const char *const exp_args[] = {"gamma", "last_epoch", "verbose", NULL};
static const char *const cos_args[] = {"T_max", "eta_min", "last_epoch", "verbose", NULL};
static const char *const linear_args[] = {"start_factor", "end_factor", "total_iters", "last_epoch",
                                          "verbose", NULL};
static const char *const seq_args[] = {"schedulers", "milestones", "last_epoch", "verbose", NULL};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* last_epoch other than -1 means "resume", which checkpoints do instead. */
static cnn_status check_common(const cnni_args *a, int k_last, int k_verbose)
{
    int64_t last;
    int verbose;
    cnn_status st;
    if ((st = cnni_arg_int(a, k_last, -1, &last)) || (st = cnni_arg_bool(a, k_verbose, 0, &verbose)))
        return st;
    if (last != -1)
        return cnni_arg_fail(a, k_last, "last_epoch must be -1 (resume a run from a checkpoint instead)");
    return CNN_OK;
}

static cnn_status parse_milestones(const cnni_args *a, int k, cnni_sched *s)
{
    const cnni_value *v = a->slot[k];
    if (!v || (v->kind != CNNI_V_LIST && v->kind != CNNI_V_TUPLE))
        return cnni_arg_fail(a, k, "milestones must be a list of ints, e.g. milestones=[30, 80]");
    if (v->n > CNNI_MAX_MILESTONES)
        return cnni_arg_fail(a, k, "at most %d milestones", CNNI_MAX_MILESTONES);
    for (int i = 0; i < v->n; i++) {
        if (v->items[i]->kind != CNNI_V_INT)
            return cnni_arg_fail(a, k, "milestone %d is not an int", i);
        s->milestones[i] = v->items[i]->i;
    }
    s->n_milestones = v->n;
    return CNN_OK;
}

static cnn_status parse_one(cnn_optimizer *o, const cnni_value *call, cnni_sched *s, int nested)
{
    cnni_args a;
    cnni_op fake;
    cnn_status st;
    cnn_err *e = &o->err;
    const char *name = call->s;
    if (strncmp(name, "torch.optim.lr_scheduler.", 25) == 0)
        name += 25;
    else if (strncmp(name, "lr_scheduler.", 13) == 0)
        name += 13;
    memset(s, 0, sizeof *s);
    s->last_epoch = -1;
    if (strcmp(name, "StepLR") == 0) {
        s->kind = SCHED_STEP;
        if ((st = cnni_bind_spec(call, step_args, 1, "schedule", &a, &fake, e)) ||
            (st = cnni_arg_int(&a, 0, 0, &s->step_size)) || (st = cnni_arg_float(&a, 1, 0.1, &s->gamma)) ||
            (st = check_common(&a, 2, 3)))
            return st;
        if (s->step_size <= 0)
            return cnni_arg_fail(&a, 0, "step_size must be positive, got %lld", (long long)s->step_size);
    } else if (strcmp(name, "MultiStepLR") == 0) {
        s->kind = SCHED_MULTISTEP;
        if ((st = cnni_bind_spec(call, multistep_args, 1, "schedule", &a, &fake, e)) ||
            (st = parse_milestones(&a, 0, s)) || (st = cnni_arg_float(&a, 1, 0.1, &s->gamma)) ||
            (st = check_common(&a, 2, 3)))
            return st;
        qsort(s->milestones, (size_t)s->n_milestones, sizeof(int64_t), cmp_i64);
    } else if (strcmp(name, "ExponentialLR") == 0) {
        s->kind = SCHED_EXPONENTIAL;
        if ((st = cnni_bind_spec(call, exp_args, 1, "schedule", &a, &fake, e)) ||
            (st = cnni_arg_float(&a, 0, 0, &s->gamma)) || (st = check_common(&a, 1, 2)))
            return st;
    } else if (strcmp(name, "CosineAnnealingLR") == 0) {
        s->kind = SCHED_COSINE;
        if ((st = cnni_bind_spec(call, cos_args, 1, "schedule", &a, &fake, e)) ||
            (st = cnni_arg_float(&a, 0, 0, &s->t_max)) || (st = cnni_arg_float(&a, 1, 0, &s->eta_min)) ||
            (st = check_common(&a, 2, 3)))
            return st;
        if (!(s->t_max > 0))
            return cnni_arg_fail(&a, 0, "T_max must be positive, got %g", s->t_max);
    } else if (strcmp(name, "LinearLR") == 0) {
        s->kind = SCHED_LINEAR;
        if ((st = cnni_bind_spec(call, linear_args, 0, "schedule", &a, &fake, e)) ||
            (st = cnni_arg_float(&a, 0, 1.0 / 3, &s->start_factor)) ||
            (st = cnni_arg_float(&a, 1, 1.0, &s->end_factor)) ||
            (st = cnni_arg_int(&a, 2, 5, &s->total_iters)) || (st = check_common(&a, 3, 4)))
            return st;
        if (s->start_factor > 1.0 || s->start_factor <= 0)
            return cnni_arg_fail(&a, 0, "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
        if (s->end_factor > 1.0 || s->end_factor < 0)
            return cnni_arg_fail(&a, 1, "Ending multiplicative factor expected to be between 0 and 1.");
        if (s->total_iters <= 0)
            return cnni_arg_fail(&a, 2, "total_iters must be positive");
    } else if (strcmp(name, "SequentialLR") == 0 && !nested) {
        s->kind = SCHED_SEQUENTIAL;
        if ((st = cnni_bind_spec(call, seq_args, 2, "schedule", &a, &fake, e)) ||
            (st = parse_milestones(&a, 1, s)) || (st = check_common(&a, 2, 3)))
            return st;
        const cnni_value *list = a.slot[0];
        if (list->kind != CNNI_V_LIST && list->kind != CNNI_V_TUPLE)
            return cnni_arg_fail(&a, 0, "schedulers must be a list of schedulers");
        if (list->n < 1 || list->n > CNNI_MAX_SCHED)
            return cnni_arg_fail(&a, 0, "SequentialLR takes 1 to %d schedulers", CNNI_MAX_SCHED);
        if (s->n_milestones != list->n - 1)
            return cnni_arg_fail(&a, 1,
                                 "Sequential Schedulers expects number of schedulers provided to be "
                                 "one more than the number of milestone points, but got number of "
                                 "schedulers %d and the number of milestones to be equal to %d",
                                 list->n, s->n_milestones);
        for (int i = 0; i < list->n; i++)
            if (list->items[i]->kind != CNNI_V_CALL)
                return cnni_arg_fail(&a, 0, "item %d of schedulers is not a scheduler", i);
        s->n_children = list->n;
    } else {
        return cnni_fail(e, CNN_ERR_CONFIG,
                         "schedule: unknown scheduler '%s' (StepLR, MultiStepLR, ExponentialLR, "
                         "CosineAnnealingLR, LinearLR%s)",
                         name, nested ? "" : ", SequentialLR");
    }
    return CNN_OK;
}


/* Python's float a % m (CPython's float_rem): T_max is a float in PyTorch,
 * so CosineAnnealingLR's period test runs in doubles (T_max = 0.001 must not
 * become an integer 0, nor 1e30 overflow one). */
static double py_fmod(double a, double m)
{
    double r = fmod(a, m);
    if (r != 0) {
        if ((m < 0) != (r < 0))
            r += m;
    } else {
        r = copysign(0.0, m);
    }
    return r;
}

static int count_eq(const cnni_sched *s, int64_t e)
{
    int c = 0;
    for (int i = 0; i < s->n_milestones; i++)
        c += s->milestones[i] == e;
    return c;
}

/* PyTorch's get_lr(): the next learning rate from the current one. */
static double chain_lr(const cnni_sched *s, double lr, double base)
{
    int64_t e = s->last_epoch;
    switch (s->kind) {
    case SCHED_STEP:
        if (e == 0 || e % s->step_size != 0)
            return lr;
        return lr * s->gamma;
    case SCHED_MULTISTEP: {
        int c = count_eq(s, e);
        return c ? lr * pow(s->gamma, c) : lr;
    }
    case SCHED_EXPONENTIAL: return e == 0 ? lr : lr * s->gamma;
    case SCHED_COSINE: {
        const double pi = 3.141592653589793;
        if (e == 0)
            return lr;
        if (py_fmod((double)(e - 1) - s->t_max, 2 * s->t_max) == 0)
            return lr + (base - s->eta_min) * (1 - cos(pi / s->t_max)) / 2;
        return (1 + cos(pi * (double)e / s->t_max)) / (1 + cos(pi * (double)(e - 1) / s->t_max)) *
                   (lr - s->eta_min) +
               s->eta_min;
    }
    case SCHED_LINEAR:
        if (e == 0)
            return lr * s->start_factor;
        if (e > s->total_iters)
            return lr;
        return lr * (1. + (s->end_factor - s->start_factor) /
                              ((double)s->total_iters * s->start_factor +
                               (double)(e - 1) * (s->end_factor - s->start_factor)));
    default: return lr;
    }
}

/* PyTorch's _get_closed_form_lr(), used when a scheduler is stepped with an
 * explicit epoch (SequentialLR at a milestone). */
static double closed_lr(const cnni_sched *s, double base)
{
    int64_t e = s->last_epoch;
    switch (s->kind) {
    case SCHED_STEP: return base * pow(s->gamma, (double)(e / s->step_size));
    case SCHED_MULTISTEP: {
        int c = 0;
        for (int i = 0; i < s->n_milestones; i++)
            c += s->milestones[i] <= e;
        return base * pow(s->gamma, c);
    }
    case SCHED_EXPONENTIAL: return base * pow(s->gamma, (double)e);
    case SCHED_COSINE:
        return s->eta_min + (base - s->eta_min) * (1 + cos(3.141592653589793 * (double)e / s->t_max)) / 2;
    case SCHED_LINEAR: {
        int64_t m = s->total_iters < e ? s->total_iters : e;
        return base * (s->start_factor + (s->end_factor - s->start_factor) * (double)m / (double)s->total_iters);
    }
    default: return base;
    }
}

static void sched_step(cnn_optimizer *o, cnni_sched *s)
{
    s->last_epoch++;
    o->lr = chain_lr(s, o->lr, o->initial_lr);
}

cnn_status cnn_optimizer_set_schedule(cnn_optimizer *o, const char *spec)
{
    if (!o)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!o->g)
        return cnni_fail(&o->err, CNN_ERR_STATE, "set up the optimizer before its schedule");
    if (!spec)
        return cnni_fail(&o->err, CNN_ERR_ARGUMENT, "cnn_optimizer_set_schedule: NULL spec");
    cnni_model_ast ast;
    cnn_status st = cnni_model_parse_call(spec, "schedule", &ast, &o->err);
    if (st)
        return st;
    const cnni_value *call = ast.stmts[0].call;
    cnni_sched sched[CNNI_MAX_SCHED + 1];
    int n = 1;
    if (!call || ast.stmts[0].ntargets || ast.stmts[0].has_fwd)
        st = cnni_fail(&o->err, CNN_ERR_PARSE, "schedule: give one call, e.g. \"StepLR(step_size=30)\"");
    if (!st)
        st = parse_one(o, call, &sched[0], 0);
    if (!st && sched[0].kind == SCHED_SEQUENTIAL) {
        const cnni_value *list = NULL;
        for (int i = 0; i < call->nargs; i++)
            if ((!call->args[i].key && i == 0) || (call->args[i].key && strcmp(call->args[i].key, "schedulers") == 0))
                list = call->args[i].val;
        for (int i = 0; !st && i < sched[0].n_children; i++)
            st = parse_one(o, list->items[i], &sched[1 + i], 1);
        n = 1 + sched[0].n_children;
    }
    char *sp = st ? NULL : cnni_strdup(spec);
    if (!st && !sp)
        st = cnni_oom(&o->err);
    cnni_model_ast_free(&ast);
    if (st)
        return st;
    /* What constructing the scheduler(s) does in PyTorch: the learning rate
     * starts again from the initial one, then the initial step. */
    o->lr = o->initial_lr;
    if (sched[0].kind == SCHED_SEQUENTIAL) {
        /* Each child's constructor steps it once; SequentialLR then resets
         * the rate, rewinds the children and re-steps only the first. */
        for (int i = 1; i < n; i++)
            sched_step(o, &sched[i]);
        o->lr = o->initial_lr;
        for (int i = 1; i < n; i++)
            sched[i].last_epoch--;
        sched_step(o, &sched[1]);
        sched[0].last_epoch = 0;
    } else {
        sched_step(o, &sched[0]);
    }
    memcpy(o->sched, sched, sizeof(cnni_sched) * (size_t)n);
    o->n_sched = n;
    cnni_free(o->sched_spec);
    o->sched_spec = sp;
    return CNN_OK;
}

cnn_status cnn_optimizer_schedule_step(cnn_optimizer *o)
{
    if (!o)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&o->err);
    if (!o->n_sched)
        return cnni_fail(&o->err, CNN_ERR_STATE, "the optimizer has no schedule");
    cnni_sched *s = &o->sched[0];
    if (s->kind != SCHED_SEQUENTIAL) {
        sched_step(o, s);
        return CNN_OK;
    }
    s->last_epoch++;
    int idx = 0;
    while (idx < s->n_milestones && s->milestones[idx] <= s->last_epoch)
        idx++;
    cnni_sched *child = &o->sched[1 + idx];
    if (idx > 0 && s->milestones[idx - 1] == s->last_epoch) {
        child->last_epoch = 0;
        o->lr = closed_lr(child, o->initial_lr);
    } else {
        sched_step(o, child);
    }
    return CNN_OK;
}
