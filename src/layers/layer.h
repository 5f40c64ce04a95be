/* What a layer is: one table entry (cnni_op) with its constructor signature,
 * shape rule, parameter declarations, default initialisation, forward and
 * backward. The graph is a loop over these entries; adding a layer touches
 * its own file and one line of registry.c. */
#ifndef CNN_LAYER_H
#define CNN_LAYER_H

#include "../core/internal.h"
#include "../io/model_parse.h"

#define CNNI_MAX_ARGS 16   /* constructor arguments of one module */
#define CNNI_MAX_PARAMS 6  /* parameters + buffers of one module */
#define CNNI_MAX_OUT 2     /* outputs of one module (values, indices) */

struct cnni_pool;

/* A tensor as a kernel sees it. data is NULL where not needed (for example a
 * din whose input requires no gradient). */
typedef struct cnni_tensor {
    void *data;
    cnn_shape shape;
    cnn_dtype dtype;
} cnni_tensor;

typedef struct cnni_param_decl {
    const char *attr;     /* PyTorch attribute: "weight", "running_mean", ... */
    cnn_param_kind kind;
    cnn_dtype dtype;      /* F32, or I64 for num_batches_tracked */
    cnn_shape shape;
    int index;            /* into the graph's parameter table */
} cnni_param_decl;

typedef struct cnni_op cnni_op;

/* A module instance in a graph. */
typedef struct cnni_node {
    const cnni_op *op;
    char *name;           /* state_dict prefix: "0", "conv1", "b.0" */
    void *opts;           /* op-specific options, op->opts_size bytes */
    const char *file;     /* where it was defined, for messages */
    int line, col;
    int n_in;             /* values consumed */
    int *in;
    int n_out;            /* values produced (set by configure) */
    int out[CNNI_MAX_OUT];
    int n_params;
    cnni_param_decl params[CNNI_MAX_PARAMS];
} cnni_node;

/* Bound constructor arguments: slot[k] is the value given for the k-th name
 * of the op's signature, or NULL when defaulted. */
typedef struct cnni_args {
    const cnni_op *op;
    const cnni_value *slot[CNNI_MAX_ARGS];
    const char *file;
    int line, col;
    cnn_err *e;
} cnni_args;

/* Shape inference: the op reads in[] and fills out[] and the byte counts. */
typedef struct cnni_infer {
    int n_in;
    const cnni_tensor *in;   /* data NULL */
    cnni_tensor out[CNNI_MAX_OUT];
    int backward;            /* backward may run (after a forward in either mode) */
    size_t saved_bytes;      /* kept from forward to backward, per node */
    size_t work_bytes;       /* scratch during one forward or backward call */
    int64_t macs;            /* multiply-adds of one forward pass (summary) */
    int threads;             /* threads the graph runs with (scratch is per thread) */
    int isa;                 /* cnni_isa the graph's kernels use */
} cnni_infer;

/* Everything a forward or backward call needs. */
typedef struct cnni_exec {
    const cnni_node *node;
    const void *opts;
    int n_in;
    const cnni_tensor *in;
    int n_out;
    const cnni_tensor *out;
    const cnni_tensor *dout;  /* backward: gradients of the outputs */
    const cnni_tensor *din;   /* backward: gradients of the inputs, to OVERWRITE; data NULL if not needed */
    float *const *param;      /* per declaration index; F32 data */
    float *const *grad;       /* parameter gradients, to ACCUMULATE into; NULL for buffers */
    void *const *buffer;      /* same indices as param: buffers' data (param[] also points there) */
    void *saved;
    void *work;
    int training;             /* forward: the mode; backward: always 1, so a layer whose
                               * gradient depends on the forward's mode records it in saved */
    cnni_rng *rng;            /* the graph's generator for random layers */
    struct cnni_pool *pool;
    cnn_err *e;
    int isa;                  /* cnni_isa: which fast kernels to use */
    /* A BatchNorm whose only consumer is a ReLU runs the ReLU too (graph
     * plan): forward, relu_out receives the ReLU's output besides out[0];
     * backward, dout[0] is the ReLU's output gradient (relu_grad set). */
    float *relu_out;
    int relu_grad;
    /* When a max pooling alone reads that ReLU's output, the BatchNorm runs
     * it too (pool_geom set, its windows planewise): forward writes
     * pool_out and pool_idx (the pooling's output and argmax) instead of
     * out[0] and relu_out, which materialize fills on request; backward,
     * dout[0] is the pooling output's gradient. An elementwise activation
     * whose output only an average pooling reads runs it the same way, but
     * writes out[0] too (its backward reads it). */
    const struct cnni_pool_geom *pool_geom;
    float *pool_out;
    int64_t *pool_idx;
    /* Backward of a BatchNorm2d whose input only it reads, made by a
     * convolution whose own input needs no gradient: the BatchNorm takes
     * that convolution's weight gradient too, plane by plane
     * (norm_fast.h), and writes no input gradient. wgrad_geom (set) is its
     * geometry, wgrad_x its input, wgrad_dw and wgrad_db (NULL without a
     * bias) its parameter gradients, to accumulate into. The graph skips the
     * convolution's backward.
     * With wgrad_geom NULL and wgrad_db set (any BatchNorm whose input only
     * it reads, made by a convolution with a bias): the input gradient is
     * written, and its sum per channel added to wgrad_db, the convolution's
     * bias gradient; that convolution's backward then has bias_grad_taken
     * set and leaves its bias gradient alone. */
    const struct cnni_wgrad_plane_geom *wgrad_geom;
    const float *wgrad_x;
    float *wgrad_dw, *wgrad_db;
    int bias_grad_taken;
    /* Backward of a convolution whose output alone feeds a sigmoid or tanh
     * (agrad_act) whose output alone feeds a 2x2 average pooling run with
     * it (agrad_geom, for this call's batch): the convolution takes that
     * activation's backward (and the pooling's), from the activation's
     * output agrad_y and the pooling output's gradient agrad_dp; dout[0],
     * its own output's gradient, is then not written by them and serves
     * the convolution as a place to write it where it must. The graph
     * skips the activation's backward. */
    const struct cnni_act *agrad_act;
    const struct cnni_pool_geom *agrad_geom;
    const float *agrad_y, *agrad_dp;
} cnni_exec;

struct cnni_op {
    const char *name;              /* PyTorch class name: "Conv2d" */
    const char *const *args;       /* constructor signature in PyTorch's order, NULL-terminated */
    int n_required;                /* leading args without default */
    int any_args;                  /* accepts and ignores any arguments (nn.Identity) */
    const char *const *inputs;     /* forward signature: {"input"} or {"input", "indices"} */
    int min_inputs, max_inputs;    /* max_inputs < 0: any number (Concat) */
    size_t opts_size;
    /* Reads arguments into n->opts, sets n->n_out, declares parameters. */
    cnn_status (*configure)(cnni_node *n, const cnni_args *a);
    /* Constant keyword arguments of the forward call, e.g. MaxUnpool2d's
     * output_size in "MaxUnpool2d(2)(p, idx, output_size=(5, 5))": their
     * names (NULL-terminated; NULL when none) and a function that stores
     * them in n->opts. It runs after configure, and always (with every slot
     * empty when the call gives none). */
    const char *const *fwd_args;
    cnn_status (*configure_forward)(cnni_node *n, const cnni_args *a);
    /* Output shapes from input shapes; PyTorch's forward-time checks. */
    cnn_status (*infer)(const cnni_node *n, cnni_infer *inf, cnn_err *e);
    /* PyTorch's default initialisation of parameters and buffers (NULL: none). */
    void (*reset)(const cnni_node *n, float *const *param, void *const *buffer, cnni_rng *rng);
    cnn_status (*forward)(const cnni_exec *x);
    cnn_status (*backward)(const cnni_exec *x); /* NULL: not differentiable */
    /* Writes out[0] (and relu_out) as the last forward would have, after a
     * fused forward that skipped them (NULL: the op never skips them). */
    cnn_status (*materialize)(const cnni_exec *x);
    /* Its output is its input's values in another shape (Flatten): the plan
     * may give the output the input's buffers, and forward and backward
     * then find them equal and do nothing. */
    int view;
    /* Whether the node, on an input of shape in, treats each sample (dim
     * 0) on its own: forward and backward of any rows [r0, r1) alone give
     * those rows' outputs and input gradients and those rows' share of the
     * parameter gradients, read no random numbers, and no kernel's work
     * couples samples. The graph may then run a batch in parts (run.c's
     * shards). NULL: never. */
    int (*per_sample)(const cnni_node *n, const cnn_shape *in);
};

/* For the graph's BatchNorm -> ReLU -> MaxPool fusion (pool.c): whether
 * node n is a max pooling without returned indices whose windows are
 * planewise (pool_fast.h) on an input of shape in; g receives its geometry. */
struct cnni_pool_geom;
int cnni_pool_fusable(const cnni_node *n, const cnn_shape *in, struct cnni_pool_geom *g);
/* For the graph's activation -> AvgPool fusion: whether node n is an
 * average pooling whose windows are planewise (pool_fast.h) on an input of
 * shape in (pool.c), and whether node n is an elementwise activation that
 * can pool its own output (activation.c: a kind the fast kernels cover,
 * not in place). */
int cnni_avgpool_fusable(const cnni_node *n, const cnn_shape *in, struct cnni_pool_geom *g);
int cnni_act_pool_fusable(const cnni_node *n);
/* For the graph's convolution -> BatchNorm2d weight-gradient fusion
 * (conv.c): whether node n is a Conv2d the plane weight gradient serves
 * with vector kernels on instruction set isa (stride 1, no dilation, one
 * group, zero padding, at most 4 input channels, a 3x3 or 5x5 kernel) on
 * an input of shape in; g receives its geometry. */
/* Whether node n is a sigmoid or tanh whose gradient comes from its output
 * alone (*act: its kind), and whether convolution n (input shape in) takes
 * such an activation's backward on isa (data: its input gradient wanted);
 * see cnni_exec's agrad_act. */
struct cnni_act;
int cnni_act_grad_from_output(const cnni_node *n, const struct cnni_act **act);
int cnni_conv_act_fusable(const cnni_node *n, const cnn_shape *in, int isa, int data);
struct cnni_wgrad_plane_geom;
int cnni_conv_wgrad_fusable(const cnni_node *n, const cnn_shape *in, int isa, struct cnni_wgrad_plane_geom *g);
/* Whether n is a convolution (any kind) with a bias whose output, of shape
 * out, is batched: its bias gradient is then the sum of its output's
 * gradient over every axis but 1, which a BatchNorm reading that output
 * can take (cnni_exec's bias_grad_taken). */
int cnni_conv_bias_from_channels(const cnni_node *n, const cnn_shape *out);
int cnni_is_batchnorm2d(const cnni_node *n);
int cnni_is_batchnorm(const cnni_node *n); /* 1d, 2d or 3d */

/* ---- registry ---- */
const cnni_op *cnni_op_find(const char *name);
/* Closest known module name to `name` (for "did you mean"), or NULL. */
const char *cnni_op_suggest(const char *name);
int cnni_op_count(void);
const cnni_op *cnni_op_at(int i);

/* Binds a call's arguments to op's signature as Python would (positional,
 * then keywords; unknown, duplicate and missing arguments are errors). */
cnn_status cnni_bind_args(const cnni_op *op, const cnni_value *call, const char *file,
                          cnni_args *out, cnn_err *e);

/* ---- used by configure functions ---- */
/* Declares a parameter or buffer; returns its declaration index. */
int cnni_node_param(cnni_node *n, const char *attr, cnn_param_kind kind, cnn_dtype dtype,
                    int ndim, const int64_t *dims);

/* Argument getters. Each returns CNN_OK and the default when the slot is
 * empty, or fails with a message naming the file, line, column, module and
 * argument. */
cnn_status cnni_arg_int(const cnni_args *a, int k, int64_t def, int64_t *out);
cnn_status cnni_arg_float(const cnni_args *a, int k, double def, double *out);
cnn_status cnni_arg_bool(const cnni_args *a, int k, int def, int *out);
/* A string; *out is NULL when absent or None (if allow_none). */
cnn_status cnni_arg_str(const cnni_args *a, int k, const char *def, const char **out);
/* An int or a tuple/list of exactly n ints (an int is repeated n times). */
cnn_status cnni_arg_ints(const cnni_args *a, int k, int n, int64_t def, int64_t *out);
/* A tuple/list of 1..max ints or one int; *count receives the length. */
cnn_status cnni_arg_int_list(const cnni_args *a, int k, int max, int64_t *out, int *count);
int cnni_arg_given(const cnni_args *a, int k);
int cnni_arg_is_none(const cnni_args *a, int k);
/* Checks device (None/'cpu') and dtype (None/torch.float32) arguments. */
cnn_status cnni_arg_device_dtype(const cnni_args *a, int k_device, int k_dtype);
/* A configuration error at the module call: "file:line:col: Module: msg". */
cnn_status cnni_arg_fail(const cnni_args *a, int k, const char *fmt, ...) CNNI_PRINTF(3, 4);

/* ---- helpers for ops ---- */
/* "node '3' (Conv2d)" style names are added by the graph; ops just describe. */
static inline float *cnni_f32(const cnni_tensor *t) { return (float *)t->data; }

#endif
