/* Internal pieces of training: the optimiser and its schedule. */
#ifndef CNN_TRAIN_INTERNAL_H
#define CNN_TRAIN_INTERNAL_H

#include "../graph/graph_internal.h"

#define CNNI_MAX_SCHED 8
#define CNNI_MAX_MILESTONES 64

typedef enum { SCHED_NONE, SCHED_STEP, SCHED_MULTISTEP, SCHED_EXPONENTIAL, SCHED_COSINE, SCHED_LINEAR, SCHED_SEQUENTIAL } cnni_sched_kind;

typedef struct cnni_sched {
    cnni_sched_kind kind;
    int64_t last_epoch;
    double gamma;              /* StepLR, MultiStepLR, ExponentialLR */
    int64_t step_size;         /* StepLR */
    int64_t milestones[CNNI_MAX_MILESTONES]; /* MultiStepLR (sorted), SequentialLR */
    int n_milestones;
    double t_max, eta_min;     /* CosineAnnealingLR */
    double start_factor, end_factor;
    int64_t total_iters;       /* LinearLR */
    int n_children;            /* SequentialLR: children are sched[1..n] */
} cnni_sched;

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP } cnni_opt_kind;

struct cnn_optimizer {
    cnn_err err;
    cnn_graph *g;
    cnni_opt_kind kind;
    char *spec;
    char *sched_spec;
    double lr, initial_lr;
    double momentum, dampening, weight_decay;
    double beta1, beta2, eps, alpha;
    int nesterov, amsgrad, maximize, centered;
    size_t n;          /* elements of the parameter block it was set up for */
    float *s1, *s2, *s3; /* per-element state, by kind (see optim.c) */
    int64_t step;      /* optimiser steps taken */
    int n_sched;       /* 0: none; 1: one schedule; >1: SequentialLR and its children */
    cnni_sched sched[CNNI_MAX_SCHED + 1];
};

/* Validates saved optimiser state in ts against o, and with apply restores it. */
cnn_status cnni_optimizer_read_state(cnn_optimizer *o, const cnn_tensors *ts, int apply);

/* Binds a call's arguments to a signature of names (messages use `kind`). */
cnn_status cnni_bind_spec(const cnni_value *call, const char *const *names, int n_required,
                          const char *file, cnni_args *args, cnni_op *fake, cnn_err *e);

#endif
