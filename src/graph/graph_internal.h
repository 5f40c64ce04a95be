/* The model: nodes, the values they pass, parameters in contiguous blocks,
 * and the plan (every shape and one arena) made for an input shape. */
#ifndef CNN_GRAPH_INTERNAL_H
#define CNN_GRAPH_INTERNAL_H

#include "../core/adapt.h"
#include "../core/internal.h"
#include "../layers/layer.h"
#include "../kernels/conv_wgrad_plane.h"
#include "../kernels/ref/pool_ref.h"

typedef struct cnni_val {
    char *name;          /* how messages name it: "input", "conv1", "p" */
    int producer;        /* node index, or -1 for a model input */
    int producer_out;
    int n_consumers;
    int known;           /* shape known while building (C builder with input shapes) */
    cnni_tensor t;       /* planned shape and dtype; data in the arena */
    float *grad;         /* planned gradient buffer (F32 values that need one) */
    int requires_grad;
} cnni_val;

typedef struct cnni_pentry {
    char *name;          /* state_dict key */
    int node, decl;
    cnn_param_kind kind;
    cnn_dtype dtype;
    cnn_shape shape;
    int64_t numel;
    size_t off;          /* element offset in its block */
} cnni_pentry;

typedef struct cnni_nodeplan {
    cnni_tensor *in, *out;   /* n_in / n_out tensors */
    cnni_tensor *din, *dout;
    void *saved;
    size_t saved_bytes, work_bytes;
    int64_t macs;
    int run_backward;
    /* A BatchNorm whose output only a ReLU reads runs that ReLU inside its
     * own passes (plan.c): relu_node is the ReLU's index on the BatchNorm,
     * fused_into the BatchNorm's on the ReLU; -1 otherwise. */
    int relu_node, fused_into;
    /* When a max pooling alone reads that ReLU's output, the BatchNorm runs
     * it too: pool_node is the pooling's index on the BatchNorm (fused_into
     * is the BatchNorm's on the pooling), pool_geom its geometry (on the
     * pooling). The fused forward skips the BatchNorm's and the ReLU's
     * outputs; unwritten is then set on the BatchNorm until
     * cnni_graph_materialize writes them. An elementwise activation
     * (relu_node -1) likewise runs the average pooling that alone reads its
     * output, and writes both. */
    int pool_node;
    cnni_pool_geom pool_geom;
    int unwritten;
    /* A BatchNorm2d whose input only it reads, made by a Conv2d whose input
     * needs no gradient, takes that convolution's weight gradient in its
     * backward (plan.c): wgrad_node is the convolution's index on the
     * BatchNorm, wgrad_into the BatchNorm's on the convolution (whose
     * backward is skipped), wgrad_geom the geometry (on the BatchNorm). */
    int wgrad_node, wgrad_into;
    cnni_wgrad_plane_geom wgrad_geom;
    /* Otherwise a BatchNorm whose input only it reads, made by a
     * convolution with a bias, takes that bias's gradient (the sum of the
     * input gradient it writes, per channel): bgrad_node is the
     * convolution's index on the BatchNorm, bgrad_into the BatchNorm's on
     * the convolution (whose backward then skips its bias). */
    int bgrad_node, bgrad_into;
    /* A convolution whose output only a sigmoid or tanh reads, whose output
     * only a 2x2 average pooling run with it reads, takes that
     * activation's backward (plan.c, cnni_exec's agrad_act): agrad_node is
     * the activation's index on the convolution, agrad_into the
     * convolution's on the activation (whose backward is skipped). */
    int agrad_node, agrad_into;
} cnni_nodeplan;

struct cnni_pool;

struct cnn_graph {
    cnn_err err;
    char *file;              /* model file name, for messages */
    int form;                /* 0 empty, 1 Sequential, 2 graph */
    int loss_node;           /* node computing the attached loss, or -1 */
    int outputs_set;         /* outputs declared explicitly (C builder) */

    cnni_node *nodes;
    int n_nodes, cap_nodes;
    cnni_val *vals;
    int n_vals, cap_vals;
    int *inputs;
    int n_inputs, cap_inputs;
    int *outputs;
    char **output_names;
    int n_outputs;

    cnni_pentry *params;     /* state_dict order */
    int n_params, cap_params;
    float *pdata, *pgrad;    /* learnable parameters and their gradients */
    size_t p_len, p_cap;
    float *bdata;            /* F32 buffers */
    size_t b_len, b_cap;
    int64_t *idata;          /* I64 buffers */
    size_t i_len, i_cap;

    cnni_rng init_rng;       /* parameter initialisation */
    cnni_rng run_rng;        /* dropout, RReLU */
    int threads;
    int isa;                 /* cnni_isa used by the kernels */
    struct cnni_pool *pool;
    /* Adaptive thread use (cnn_graph_set_adaptive_threads): each training
     * step, from the forward to the end of the backward, is timed and
     * reported; the next runs on the threads adapt chooses. */
    int adaptive;
    cnni_adapt adapt;
    double step_start;       /* the training forward's start, 0 when none is open */
    int64_t step_rows;

    /* plan */
    int planned;
    unsigned plan_flags;
    cnni_nodeplan *np;
    cnni_tensor *tensor_pool;  /* backing store for np[].in/out/din/dout */
    int *written;            /* per value, during backward */
    void *arena;
    size_t arena_cap;
    void *work;
    size_t work_bytes;
    float *scratch;
    size_t scratch_bytes;
    int forward_done;
    char *summary;           /* last cnn_graph_summary text */
    int profiling;
    double *prof;            /* per node: forward seconds, backward seconds, calls */
    int detect_anomaly;      /* check every output and gradient for NaN/Inf (anomaly.c) */
    int fused_run;           /* the last forward ran fused pairs fused (not with detect_anomaly,
                              * which checks each layer's own output and gradient) */
    /* Shards (plan.c decides, run.c runs): when the first nodes form a
     * chain of layers that treat each sample on its own (cnni_op's
     * per_sample), nodes [0, shard_end) run on CNNI_SHARDS parts of the
     * batch, each part through the whole chain on one thread, with no
     * barrier between layers; 0 when not. Shard s > 0 adds its parameter
     * gradients into its own copy (shard_grad, p_cap floats each, zero
     * between steps; floats [shard_glo, shard_ghi) the chain's), which
     * the backward then adds to pgrad in shard order. The parts depend on
     * the batch alone, so results do not depend on the thread count. */
    int shard_end;
    void *shard_work;        /* CNNI_SHARDS regions of shard_work_bytes: the chain's scratch */
    size_t shard_work_bytes;
    float *shard_grad;
    size_t shard_glo, shard_ghi;
};

/* The batch parts of a sharded run, and the smallest batch split.
 * LeNet-5's training step (64 images, two threads): 0.96-1.00 ms in two
 * parts against 1.02-1.20 ms with each layer split between the threads
 * (a barrier after each of its 24 passes). Four parts of 16 would cost
 * more: one thread's step at 16 images took 0.51-0.56 ms, at 32
 * 0.98-1.05 ms. More parts would serve more threads, but they are fixed
 * by the batch alone, so the chain uses two threads at most. */
#define CNNI_SHARDS 2
#define CNNI_SHARD_MIN_BATCH 32

/* Adds a node for op with bound constructor arguments (and bound constant
 * forward arguments, or NULL); out receives its output values. */
cnn_status cnni_graph_add_node(cnn_graph *g, const cnni_op *op, const cnni_args *args,
                               const cnni_args *fwd, const char *name, int n_in, const int *in,
                               int *n_out, int *out);
int cnni_graph_new_input(cnn_graph *g, const char *name);
/* A module call from the AST (stmt gives forward keyword arguments, or NULL). */
cnn_status cnni_graph_add_call(cnn_graph *g, const cnni_value *call, const cnni_stmt *stmt,
                               const char *name, int n_in, const int *in, int *n_out, int *out);
/* The modules of a Sequential, chained, as nodes "prefix.0", "prefix.1"...;
 * n_prev < 0 means they start the model (their inputs become model inputs). */
cnn_status cnni_graph_add_sequence(cnn_graph *g, const char *prefix, int ncalls,
                                   const cnni_value *const *calls, int n_prev, int *prev,
                                   int *n_res, int *res);
cnn_status cnni_graph_set_outputs(cnn_graph *g, int n, const int *vals, const char *const *names);
int cnni_is_sequential_call(const cnni_value *v);
/* "model.txt:3: node '2' (Conv2d)" */
void cnni_node_where(const cnn_graph *g, const cnni_node *n, char *buf, size_t len);
void cnni_graph_drop_plan(cnn_graph *g);
/* The planned batch: the first input's dim 0 (1 without inputs or dims). */
static inline int64_t cnni_graph_batch(const cnn_graph *g)
{
    return g->n_inputs && g->vals[g->inputs[0]].t.shape.ndim ? g->vals[g->inputs[0]].t.shape.dims[0] : 1;
}
/* Writes node i's outputs if the last forward skipped them (a fused
 * BatchNorm -> ReLU -> MaxPool); nothing otherwise. */
cnn_status cnni_graph_materialize(cnn_graph *g, int i);
/* Infers node i's output shapes from input tensors `in`; on failure the
 * message names the node, its file and line, and its inputs' shapes. */
cnn_status cnni_infer_node(cnn_graph *g, int i, const cnni_tensor *in, cnni_infer *inf, int backward);
/* Removes the most recently added node (and its values and parameters). */
void cnni_graph_pop_node(cnn_graph *g);
/* Pointers to a node's parameter data (F32 or I64) and gradients. */
void cnni_node_param_ptrs(cnn_graph *g, const cnni_node *n, float **param, float **grad,
                          void **buffer);
/* With g->detect_anomaly set, run.c calls these after node i's forward and
 * backward: they fail with CNN_ERR_NUMERIC, naming the node, when its
 * outputs (forward) or the gradients it wrote (backward) hold NaN or Inf. */
cnn_status cnni_anomaly_forward(cnn_graph *g, int i);
cnn_status cnni_anomaly_backward(cnn_graph *g, int i);

/* Whether ts fits the graph's parameters and buffers (every key present
 * with the right shape and a convertible dtype, no unexpected key), as
 * cnn_graph_load_state checks before it copies anything; the error is set
 * on g. */
cnn_status cnni_graph_check_state(cnn_graph *g, const cnn_tensors *ts);

#endif
