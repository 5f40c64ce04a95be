/* cnn.h: convolutional neural networks in C, with PyTorch's semantics.
 *
 * ==== Overview ============================================================
 *
 * cnn defines, trains, checks and runs convolutional networks. Layers are
 * written exactly as PyTorch's constructor calls ("Conv2d(1, 6, 5, padding=2)")
 * and follow torch.nn: same parameters, defaults, output shapes, values and
 * gradients. Parameters are named as in a PyTorch state_dict, and weights are
 * exchanged as safetensors files, so a model moves between cnn and PyTorch
 * without conversion.
 *
 * Conventions, stated once:
 *   - Tensors are float32, row-major (C order), laid out NCHW at this API:
 *     batch, channels, then 1 to 3 spatial dims (L / H,W / D,H,W). Indices
 *     (max-pooling's return_indices) are int64, as in PyTorch.
 *   - Every function that can fail returns a cnn_status. CNN_OK is 0. The
 *     human-readable message (naming the file, line, layer and the expected
 *     versus actual value) is kept on the handle the function was called on,
 *     read with cnn_*_errmsg(). The library never prints, exits or aborts.
 *   - Handles are opaque. cnn_X_create() makes one, cnn_X_destroy() frees it;
 *     destroy(NULL) does nothing. A create fails only for lack of memory;
 *     work that can fail for other reasons (loading, parsing) happens on an
 *     existing handle, so its message can be read afterwards.
 *   - Pointers returned by the library are owned by the handle they came
 *     from and stay valid until that handle is destroyed or the call that
 *     documents otherwise (for example a new plan). Pointers passed in are
 *     borrowed for the duration of the call unless stated.
 *   - Random numbers come from generators seeded by the caller; nothing
 *     depends on hidden global state, and one handle may be used by one thread
 *     at a time while different handles run in different threads.
 *
 * ==== A complete example ====================================================
 *
 * Builds a small CNN from a model file's text, trains it to tell horizontal
 * from vertical bars, and saves its weights in a file PyTorch loads with
 * load_state_dict(). The tests compile and run exactly this program.
 *
 * ---- begin example: train_small.c
 * // cc train_small.c $(pkg-config --cflags --libs --static cnn)
 * #include <cnn.h>
 * #include <stdio.h>
 * #include <string.h>
 *
 * static const char *MODEL =
 *     "Conv2d(1, 4, kernel_size=3, padding=1)\n"
 *     "ReLU()\n"
 *     "MaxPool2d(2)\n"
 *     "Flatten()\n"
 *     "Linear(64, 2)\n";
 *
 * // n 1x8x8 images with one bright bar each: label 0 horizontal, 1 vertical.
 * static void make_batch(cnn_rng *rng, int n, float *x, int64_t *y)
 * {
 *     memset(x, 0, sizeof(float) * 64 * n);
 *     for (int i = 0; i < n; i++) {
 *         int vertical = (int)cnn_rng_below(rng, 2), at = (int)cnn_rng_below(rng, 8);
 *         for (int k = 0; k < 8; k++)
 *             x[i * 64 + (vertical ? k * 8 + at : at * 8 + k)] = 1.0f;
 *         y[i] = vertical;
 *     }
 * }
 *
 * static int fail(const char *msg)
 * {
 *     fprintf(stderr, "error: %s\n", msg);
 *     return 1;
 * }
 *
 * int main(void)
 * {
 *     cnn_graph *g;
 *     cnn_optimizer *opt;
 *     cnn_tensors *weights;
 *     if (cnn_graph_create(&g) || cnn_optimizer_create(&opt) || cnn_tensors_create(&weights))
 *         return fail("out of memory");
 *
 *     // The model, its loss, and PyTorch's default initialisation from seed 1.
 *     if (cnn_graph_parse(g, MODEL, "small_cnn") || cnn_graph_set_loss(g, "CrossEntropyLoss()") ||
 *         cnn_graph_reset_parameters(g, 1))
 *         return fail(cnn_graph_errmsg(g));
 *     if (cnn_optimizer_init(opt, g, "Adam(lr=0.01)"))
 *         return fail(cnn_optimizer_errmsg(opt));
 *
 *     // Plan once for batches of 32: inputs are the images and the targets.
 *     cnn_shape shapes[2] = {{4, {32, 1, 8, 8}}, {1, {32}}};
 *     cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
 *     if (cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD))
 *         return fail(cnn_graph_errmsg(g));
 *     float *x = cnn_graph_input_data(g, 0);
 *     int64_t *y = cnn_graph_input_data(g, 1);
 *
 *     cnn_rng rng;
 *     cnn_rng_seed(&rng, 42);
 *     double loss = 0;
 *     for (int step = 1; step <= 100; step++) {
 *         make_batch(&rng, 32, x, y);
 *         cnn_graph_zero_grad(g);
 *         if (cnn_graph_forward(g, 1) || cnn_graph_loss(g, &loss) || cnn_graph_backward(g))
 *             return fail(cnn_graph_errmsg(g));
 *         if (cnn_optimizer_step(opt))
 *             return fail(cnn_optimizer_errmsg(opt));
 *         if (step % 25 == 0)
 *             printf("step %d: loss %.4f\n", step, loss);
 *     }
 *
 *     // Accuracy on a fresh batch, in eval mode.
 *     make_batch(&rng, 32, x, y);
 *     if (cnn_graph_forward(g, 0))
 *         return fail(cnn_graph_errmsg(g));
 *     float *logits;
 *     cnn_graph_output(g, 0, (void **)&logits, NULL, NULL);
 *     int correct = 0;
 *     for (int i = 0; i < 32; i++)
 *         correct += (logits[2 * i + 1] > logits[2 * i]) == (y[i] == 1);
 *     printf("accuracy on new images: %d/32\n", correct);
 *
 *     // Weights under PyTorch's state_dict names ("0.weight", "4.bias", ...).
 *     if (cnn_graph_save_state(g, weights) || cnn_tensors_save(weights, "small_cnn.safetensors"))
 *         return fail(cnn_tensors_errmsg(weights));
 *     printf("saved small_cnn.safetensors\n");
 *
 *     cnn_tensors_destroy(weights);
 *     cnn_optimizer_destroy(opt);
 *     cnn_graph_destroy(g);
 *     return correct >= 28 ? 0 : 1;
 * }
 * ---- end example
 */
#ifndef CNN_H
#define CNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(CNN_BUILDING_LIBRARY)
#define CNN_API __attribute__((visibility("default")))
#else
#define CNN_API
#endif

#define CNN_VERSION_MAJOR 0
#define CNN_VERSION_MINOR 1
#define CNN_VERSION_PATCH 0
#define CNN_VERSION_STRING "0.1.0"

/* The library's version string, to compare with CNN_VERSION_STRING. */
CNN_API const char *cnn_version(void);

/* ==== Status codes ======================================================= */
typedef enum cnn_status {
    CNN_OK = 0,
    CNN_ERR_ARGUMENT = 1,     /* a function was called with an invalid argument */
    CNN_ERR_NOMEM = 2,        /* an allocation failed */
    CNN_ERR_IO = 3,           /* a file could not be opened, read or written */
    CNN_ERR_FORMAT = 4,       /* a file's content is malformed */
    CNN_ERR_PARSE = 5,        /* a model file has a syntax error */
    CNN_ERR_CONFIG = 6,       /* a module's arguments are invalid */
    CNN_ERR_SHAPE = 7,        /* shapes do not fit together */
    CNN_ERR_NOT_FOUND = 8,    /* a name (tensor, node, module) does not exist */
    CNN_ERR_OVERFLOW = 9,     /* a size is too large or its arithmetic overflows */
    CNN_ERR_NUMERIC = 10,     /* a value is not finite */
    CNN_ERR_STATE = 11,       /* a call is out of order (e.g. run before plan) */
    CNN_ERR_UNSUPPORTED = 12, /* valid, but not supported by cnn */
    CNN_ERR_INTERRUPTED = 13  /* stopped on request */
} cnn_status;

/* A short fixed description of a status ("shape mismatch"); never NULL. */
CNN_API const char *cnn_status_string(cnn_status s);

/* ==== Shapes and element types =========================================== */
#define CNN_MAX_DIMS 8

typedef enum cnn_dtype {
    CNN_F32 = 0, /* float */
    CNN_I64 = 1, /* int64_t */
    CNN_F64 = 2, /* double: read from files and converted, never computed in */
    CNN_I32 = 3,
    CNN_U8 = 4,
    CNN_F16 = 5, /* IEEE half: read from files only */
    CNN_BF16 = 6 /* bfloat16: read from files only */
} cnn_dtype;

/* A shape: ndim sizes, outermost first. A scalar has ndim 0. */
typedef struct cnn_shape {
    int ndim;
    int64_t dims[CNN_MAX_DIMS];
} cnn_shape;

/* Writes "[2, 3, 4]" into buf (n bytes) and returns buf. */
CNN_API char *cnn_shape_format(const cnn_shape *s, char *buf, size_t n);
/* Size in bytes of one element; 0 for an unknown type. */
CNN_API size_t cnn_dtype_size(cnn_dtype t);
/* The safetensors name of a type ("F32", "I64", ...). */
CNN_API const char *cnn_dtype_name(cnn_dtype t);

/* ==== Named tensor collections and safetensors =========================== *
 *
 * A cnn_tensors holds named tensors in insertion order, plus string metadata.
 * It is what safetensors files are read into and written from: model inputs
 * and outputs, weights (under PyTorch state_dict names) and gradients.
 */
typedef struct cnn_tensors cnn_tensors;

/* A view of one tensor in a collection. name and data are owned by the
 * collection. */
typedef struct cnn_tensor_info {
    const char *name;
    cnn_dtype dtype;
    cnn_shape shape;
    void *data;   /* dtype elements, row-major */
    size_t nbytes;
} cnn_tensor_info;

CNN_API cnn_status cnn_tensors_create(cnn_tensors **out);
CNN_API void cnn_tensors_destroy(cnn_tensors *ts);
/* The message of the last failed call on ts ("" if none). */
CNN_API const char *cnn_tensors_errmsg(const cnn_tensors *ts);
/* Removes every tensor and metadata entry. */
CNN_API void cnn_tensors_clear(cnn_tensors *ts);

/* Adds a tensor named `name` (copied). With data non-NULL its contents are
 * copied in, otherwise the tensor is zero-filled. *data_out, if given,
 * receives the collection's own buffer for the tensor. A duplicate name is
 * CNN_ERR_ARGUMENT. */
CNN_API cnn_status cnn_tensors_add(cnn_tensors *ts, const char *name, cnn_dtype dtype,
                                   const cnn_shape *shape, const void *data, void **data_out);
CNN_API int cnn_tensors_count(const cnn_tensors *ts);
/* Index of the tensor called `name`, or -1. */
CNN_API int cnn_tensors_find(const cnn_tensors *ts, const char *name);
/* Fills *info for the tensor at `index` (0 <= index < count). */
CNN_API cnn_status cnn_tensors_get(const cnn_tensors *ts, int index, cnn_tensor_info *info);
/* Converts the tensor at `index` to `dtype` in place (F64/F16/BF16/I32/U8 to
 * F32, I32/U8 to I64, ...). Fails for a conversion that would lose meaning. */
CNN_API cnn_status cnn_tensors_convert(cnn_tensors *ts, int index, cnn_dtype dtype);

/* String metadata (safetensors "__metadata__"). get returns NULL if absent. */
CNN_API cnn_status cnn_tensors_set_meta(cnn_tensors *ts, const char *key, const char *value);
CNN_API const char *cnn_tensors_get_meta(const cnn_tensors *ts, const char *key);

/* Replaces the contents of ts with the safetensors file at `path`. Every
 * length, offset, dtype and shape in the file is validated before use. */
CNN_API cnn_status cnn_tensors_load(cnn_tensors *ts, const char *path);
/* Same, from a buffer in memory (`name` is used in messages). */
CNN_API cnn_status cnn_tensors_load_buffer(cnn_tensors *ts, const void *buf, size_t len,
                                           const char *name);
/* Writes ts as a safetensors file. The file is written under a temporary
 * name in the same folder, flushed, and renamed over `path` only when
 * complete: on failure `path` is untouched. */
CNN_API cnn_status cnn_tensors_save(cnn_tensors *ts, const char *path);

/* ==== Models (graphs) ==================================================== *
 *
 * A cnn_graph is a model: modules (nodes) joined by the values they pass.
 * It is built from a model file or from C, then planned for an input shape
 * (which fixes every shape and allocates all memory once), then run.
 *
 * The model file is PyTorch's constructor syntax, one module per line:
 *
 *     # LeNet-5
 *     Conv2d(1, 6, kernel_size=5, padding=2)
 *     ReLU()
 *     MaxPool2d(2)
 *
 * Such lines form a Sequential model: parameters are named by the module's
 * index among the lines and PyTorch's attribute ("0.weight", "0.bias").
 */
typedef struct cnn_graph cnn_graph;

CNN_API cnn_status cnn_graph_create(cnn_graph **out);
CNN_API void cnn_graph_destroy(cnn_graph *g);
CNN_API const char *cnn_graph_errmsg(const cnn_graph *g);

/* Parses model-file text and adds its modules to g (which must be empty).
 * `filename` is only used in messages ("model.txt:3:14: ..."). */
CNN_API cnn_status cnn_graph_parse(cnn_graph *g, const char *text, const char *filename);
/* Reads and parses the model file at `path`. */
CNN_API cnn_status cnn_graph_load(cnn_graph *g, const char *path);

/* Re-draws every parameter with its module's PyTorch default initialisation
 * from a generator seeded with `seed`, and resets buffers (running
 * statistics) to their initial values. Graphs start as if seeded with 0. */
CNN_API cnn_status cnn_graph_reset_parameters(cnn_graph *g, uint64_t seed);
/* Seeds the generator used by random layers in training (Dropout, RReLU). */
CNN_API void cnn_graph_set_seed(cnn_graph *g, uint64_t seed);

/* Number of model inputs and their names ("input", ...). */
CNN_API int cnn_graph_input_count(const cnn_graph *g);
CNN_API const char *cnn_graph_input_name(const cnn_graph *g, int i);
CNN_API int cnn_graph_output_count(const cnn_graph *g);
CNN_API const char *cnn_graph_output_name(const cnn_graph *g, int i);

/* ---- plan and run -------------------------------------------------------- */
enum {
    CNN_PLAN_BACKWARD = 1,  /* keep what backward needs and allocate gradients */
    CNN_PLAN_INPUT_GRAD = 2 /* with BACKWARD: also compute the inputs' gradients */
};

/* Fixes the input shapes (batch included) and dtypes, infers every shape and
 * allocates all memory the run needs. dtypes may be NULL (all F32). Shape
 * errors are reported here, naming the node and both shapes. Running
 * allocates nothing. Planning again (e.g. for a smaller last batch) reuses
 * memory when it fits. When the model starts with layers that treat each
 * sample on its own (convolutions, Linear, activations, pooling without
 * saved indices, Flatten: no BatchNorm, Dropout or RReLU) and the batch
 * has 32 or more samples, those layers run on two halves of the batch side
 * by side, each half through all of them on one thread, and the halves'
 * parameter gradients are added in order. The halves depend on the batch
 * alone: results are the same on any number of threads. */
CNN_API cnn_status cnn_graph_plan(cnn_graph *g, int n_inputs, const cnn_shape *shapes,
                                  const cnn_dtype *dtypes, unsigned flags);
/* The buffer of model input i (shape and dtype as planned), to fill before
 * cnn_graph_forward. */
CNN_API void *cnn_graph_input_data(cnn_graph *g, int i);
/* Model output i after forward: *data is owned by g and valid until the next
 * plan. Any of the out-pointers may be NULL. */
CNN_API cnn_status cnn_graph_output(cnn_graph *g, int i, void **data, cnn_shape *shape,
                                    cnn_dtype *dtype);

/* Runs the model forward. training selects training-mode behaviour (batch
 * statistics, dropout) as module.train() does in PyTorch. */
CNN_API cnn_status cnn_graph_forward(cnn_graph *g, int training);

/* The buffer for the gradient of output i (F32 outputs only; NULL for an
 * int64 output), to fill before cnn_graph_backward. Requires a plan with
 * CNN_PLAN_BACKWARD. */
CNN_API float *cnn_graph_output_grad(cnn_graph *g, int i);
/* Back-propagates from the output gradients. Parameter gradients are
 * ADDED to what they hold (as PyTorch's .grad), so call
 * cnn_graph_zero_grad() between steps unless accumulating. */
CNN_API cnn_status cnn_graph_backward(cnn_graph *g);
/* Gradient of model input i after backward (F32 inputs only). */
CNN_API const float *cnn_graph_input_grad(cnn_graph *g, int i);
CNN_API void cnn_graph_zero_grad(cnn_graph *g);

/* Anomaly detection, as torch.autograd.set_detect_anomaly: with on = 1,
 * forward checks every node's outputs and backward every gradient a node
 * writes (of its inputs and parameters) for NaN and Inf, and fails with
 * CNN_ERR_NUMERIC at the first node that produced one: "model.txt:
 * non-finite value in the output of node '3' (Linear), line 4: element 7
 * of [64, 10] is nan (forward)". A NaN in a model input is reported as the
 * input's. Off by default: it reads every activation and gradient once. */
CNN_API cnn_status cnn_graph_set_detect_anomaly(cnn_graph *g, int on);

/* ---- parameters and buffers ------------------------------------------------ */
typedef enum cnn_param_kind {
    CNN_PARAM = 0, /* learnable (has a gradient) */
    CNN_BUFFER = 1 /* state such as running statistics */
} cnn_param_kind;

typedef struct cnn_param_info {
    const char *name; /* state_dict name, e.g. "0.weight" */
    cnn_param_kind kind;
    cnn_dtype dtype;  /* F32, or I64 for num_batches_tracked */
    cnn_shape shape;
    void *data;       /* owned by the graph */
    float *grad;      /* CNN_PARAM only; owned by the graph */
} cnn_param_info;

/* Parameters and buffers in state_dict order: module by module, each
 * module's parameters before its buffers. */
CNN_API int cnn_graph_param_count(const cnn_graph *g);
CNN_API cnn_status cnn_graph_param(const cnn_graph *g, int i, cnn_param_info *info);

/* Copies tensors from ts into the parameters and buffers of the same name.
 * Every name must match, both ways, with the same shape: a missing or extra
 * name or a wrong shape is an error naming the key (and both shapes), and
 * nothing is changed. F64/F16/BF16 tensors are converted to F32. */
CNN_API cnn_status cnn_graph_load_state(cnn_graph *g, const cnn_tensors *ts);
/* Adds every parameter and buffer to ts under its state_dict name. */
CNN_API cnn_status cnn_graph_save_state(cnn_graph *g, cnn_tensors *ts);
/* Adds every parameter gradient to ts under its state_dict name. */
CNN_API cnn_status cnn_graph_save_grads(cnn_graph *g, cnn_tensors *ts);

/* Threads used by run and train (default 1). Results are bitwise the same
 * whatever the number. */
CNN_API cnn_status cnn_graph_set_threads(cnn_graph *g, int n);
/* Adaptive thread use (off by default). When on, each training step (a
 * cnn_graph_forward with training set, to the end of its
 * cnn_graph_backward) is timed, and the next runs on all the threads of
 * cnn_graph_set_threads or on one, whichever the recent steps measured
 * faster: now and then a step or two runs the other way to check. This
 * pays on a shared machine whose virtual cores at times share one physical
 * core, where two threads run slower than one. Results do not change
 * (see above). Turning it on or off, or setting the threads, starts the
 * measurements afresh. */
CNN_API cnn_status cnn_graph_set_adaptive_threads(cnn_graph *g, int on);
/* Under adaptive thread use: the training steps run so far on all the
 * threads (*wide) and on one (*single). */
CNN_API cnn_status cnn_graph_thread_steps(const cnn_graph *g, int64_t *wide, int64_t *single);
/* The instruction set of the kernels: "auto" (the default: the best this
 * CPU supports), "avx512", "avx2" or "generic" (portable C). For testing and
 * comparing; a set the CPU lacks is CNN_ERR_UNSUPPORTED. */
CNN_API cnn_status cnn_graph_set_isa(cnn_graph *g, const char *isa);
CNN_API const char *cnn_graph_isa(const cnn_graph *g);


/* ---- building a graph from C ----------------------------------------------- *
 *
 * The same graph a model file describes can be built from C. Modules are
 * given in the model file's syntax; values are small integers.
 *
 *     int x, a, b, out;
 *     cnn_shape img = {3, {3, 224, 224}};           // without the batch dimension
 *     cnn_graph_add_input(g, "input", &img, &x);
 *     cnn_graph_add(g, "b1", "Conv2d(3, 64, 1)", 1, &x, &a, NULL);
 *     cnn_graph_add(g, "b2", "Conv2d(3, 64, 3, padding=1)", 1, &x, &b, NULL);
 *     int ab[2] = {a, b};
 *     cnn_graph_add(g, "output", "Concat(dim=1)", 2, ab, &out, NULL);
 *
 * When the inputs' shapes are given, every node's shape is inferred as it
 * is added, and a mismatch fails at once, naming both nodes and shapes.
 */

/* Adds a model input called `name`. shape (without the batch dimension) may
 * be NULL when unknown until planning. *value receives its value. */
CNN_API cnn_status cnn_graph_add_input(cnn_graph *g, const char *name, const cnn_shape *shape,
                                       int *value);
/* Adds a node `name` (parameters are named "name.weight"; NULL picks its
 * index) computing `module` ("Conv2d(3, 64, 3, padding=1)") of the values
 * inputs[0..n_inputs). out (room for 2) receives its output values and
 * *n_out (may be NULL) how many there are. */
CNN_API cnn_status cnn_graph_add(cnn_graph *g, const char *name, const char *module, int n_inputs,
                                 const int *inputs, int *out, int *n_out);
/* Declares the model's outputs (by default: the last node's). */
CNN_API cnn_status cnn_graph_set_outputs(cnn_graph *g, int n, const int *values);

/* ---- layers and profiling -------------------------------------------------- */
typedef struct cnn_layer_info {
    const char *name;        /* node name ("0", "conv1") */
    const char *type;        /* module ("Conv2d") */
    cnn_shape output_shape;  /* of the first output, as planned */
    int64_t params;          /* parameters and buffers (elements) */
    int64_t macs;            /* multiply-adds of one forward pass at the planned batch */
    double forward_seconds;  /* total time in forward, while profiling */
    double backward_seconds; /* total time in backward, while profiling */
    int64_t calls;           /* forward calls counted */
} cnn_layer_info;

CNN_API int cnn_graph_layer_count(const cnn_graph *g);
/* Layer i (0 <= i < count) in execution order; shapes and MACs need a plan. */
CNN_API cnn_status cnn_graph_layer(cnn_graph *g, int i, cnn_layer_info *info);
/* Output k of layer i after a forward pass (intermediate activations), owned
 * by g and valid until the next plan. */
CNN_API cnn_status cnn_graph_layer_output(cnn_graph *g, int i, int k, void **data, cnn_shape *shape,
                                          cnn_dtype *dtype);
/* Times every layer's forward and backward (on = 1) until turned off;
 * turning it on resets the totals. */
CNN_API void cnn_graph_set_profiling(cnn_graph *g, int on);

/* ---- summary -------------------------------------------------------------- */
enum {
    CNN_SUMMARY_TEXT = 0, /* a table like Keras's model.summary() */
    CNN_SUMMARY_JSON = 1
};
/* Describes the planned graph: each layer's name, type, output shape,
 * parameter count, multiply-adds and inputs; the totals of trainable and
 * non-trainable parameters; the memory of a forward pass and of a training
 * step for the planned batch. *text is owned by g, valid until the next call. */
CNN_API cnn_status cnn_graph_summary(cnn_graph *g, int format, const char **text);

/* ==== Training ============================================================= */

/* A random generator the caller owns (xoshiro256**): used for data order,
 * initialisation and augmentation. Copy the struct to save its state. */
typedef struct cnn_rng {
    uint64_t s[4];
} cnn_rng;
CNN_API void cnn_rng_seed(cnn_rng *r, uint64_t seed);
CNN_API uint64_t cnn_rng_next(cnn_rng *r);
/* Uniform in [0, n). */
CNN_API uint64_t cnn_rng_below(cnn_rng *r, uint64_t n);
/* Uniform in [0, 1). */
CNN_API double cnn_rng_uniform(cnn_rng *r);

/* ---- initialisation (torch.nn.init) ---------------------------------------- *
 * Re-initialises the parameter called `name` by a torch.nn.init call written
 * without its tensor argument:
 *     "xavier_uniform_(gain=1.0)", "xavier_normal_()",
 *     "kaiming_uniform_(a=0, mode='fan_in', nonlinearity='leaky_relu')",
 *     "kaiming_normal_(mode='fan_out', nonlinearity='relu')",
 *     "constant_(0.1)", "zeros_()", "ones_()", "uniform_(a=0, b=1)", "normal_(mean=0, std=1)"
 * Fans are computed as PyTorch does (dim 1 x receptive field, dim 0 x ...). */
CNN_API cnn_status cnn_graph_init_param(cnn_graph *g, const char *name, const char *init,
                                        cnn_rng *rng);

/* ---- loss ------------------------------------------------------------------ *
 * Attaches a loss to the model's first output: "CrossEntropyLoss()",
 * "MSELoss(reduction='sum')", "BCEWithLogitsLoss(pos_weight=(2.0,))", ...
 * (every torch.nn loss argument). The model gains an input "target"
 * (int64 class indices or float32, as the loss takes), planned like any
 * input. After cnn_graph_forward the loss value is read with
 * cnn_graph_loss, and cnn_graph_backward starts from it. */
CNN_API cnn_status cnn_graph_set_loss(cnn_graph *g, const char *loss);
/* The loss of the last forward pass (mean/sum reductions; for 'none', the
 * sum of the elements). */
CNN_API cnn_status cnn_graph_loss(cnn_graph *g, double *value);

/* Scales all parameter gradients so that their total p-norm (norm_type: any
 * p > 0, or INFINITY for the largest magnitude) is at most max_norm, as
 * torch.nn.utils.clip_grad_norm_ does; *total_norm (may be NULL) receives
 * the norm before clipping. */
CNN_API cnn_status cnn_graph_clip_grad_norm(cnn_graph *g, double max_norm, double norm_type,
                                            double *total_norm);

/* ---- optimisers and schedules (torch.optim) --------------------------------- */
typedef struct cnn_optimizer cnn_optimizer;

CNN_API cnn_status cnn_optimizer_create(cnn_optimizer **out);
CNN_API void cnn_optimizer_destroy(cnn_optimizer *opt);
CNN_API const char *cnn_optimizer_errmsg(const cnn_optimizer *opt);
/* Sets opt up to train every parameter of g with torch.optim's rule, given
 * in its constructor syntax without the params argument:
 *     "SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=5e-4, nesterov=True)"
 *     "Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)"
 *     "AdamW(lr=1e-3, weight_decay=0.01)", "RMSprop(lr=0.01, alpha=0.99, momentum=0, centered=False)"
 * g must outlive opt and keep its parameters (no nodes added afterwards). */
CNN_API cnn_status cnn_optimizer_init(cnn_optimizer *opt, cnn_graph *g, const char *spec);
/* One update of the parameters from their gradients (optimizer.step()). */
CNN_API cnn_status cnn_optimizer_step(cnn_optimizer *opt);
CNN_API double cnn_optimizer_lr(const cnn_optimizer *opt);
CNN_API cnn_status cnn_optimizer_set_lr(cnn_optimizer *opt, double lr);
/* A learning-rate schedule, in torch.optim.lr_scheduler's syntax without
 * the optimizer argument: "StepLR(step_size=30, gamma=0.1)",
 * "MultiStepLR(milestones=[30, 80], gamma=0.1)", "ExponentialLR(gamma=0.9)",
 * "CosineAnnealingLR(T_max=10, eta_min=0)", "LinearLR(start_factor=0.1, total_iters=5)"
 * (linear warm-up), and "SequentialLR([LinearLR(...), CosineAnnealingLR(...)], milestones=[5])".
 * Setting it applies its initial step, as constructing one does in PyTorch. */
CNN_API cnn_status cnn_optimizer_set_schedule(cnn_optimizer *opt, const char *spec);
/* scheduler.step(): usually once per epoch. */
CNN_API cnn_status cnn_optimizer_schedule_step(cnn_optimizer *opt);
/* Adds the optimiser's state (momentum buffers, Adam moments, step count,
 * learning rate and schedule position) to ts, and restores it. */
CNN_API cnn_status cnn_optimizer_save_state(cnn_optimizer *opt, cnn_tensors *ts);
CNN_API cnn_status cnn_optimizer_load_state(cnn_optimizer *opt, const cnn_tensors *ts);

/* ---- checkpoints -------------------------------------------------------------- *
 * A checkpoint holds the weights and buffers, the optimiser's state and
 * schedule position, the graph's random generators, and the caller's
 * progress; resuming from it continues a run exactly as if it had not
 * stopped. It is written to a temporary file, flushed and renamed, so a crash
 * while saving leaves the previous checkpoint intact. */
typedef struct cnn_progress {
    int64_t epoch;   /* completed epochs */
    int64_t step;    /* completed optimiser steps */
    cnn_rng data_rng; /* the caller's generator (data order, augmentation) */
} cnn_progress;

/* opt and p may be NULL. Errors are reported on g. */
CNN_API cnn_status cnn_checkpoint_save(cnn_graph *g, cnn_optimizer *opt, const cnn_progress *p,
                                       const char *path);
CNN_API cnn_status cnn_checkpoint_load(cnn_graph *g, cnn_optimizer *opt, cnn_progress *p,
                                       const char *path);

/* ==== Data sets ============================================================ *
 *
 * A cnn_dataset holds samples x (stored compactly: bytes for images) and
 * targets y (int64 class indices, or float32 for regression), and copies
 * batches out as float32 NCHW with ToTensor's scaling (bytes / 255) and
 * optional normalisation and augmentation.
 */
typedef struct cnn_dataset cnn_dataset;

enum {
    CNN_SPLIT_TRAIN = 0, /* train-* files / data_batch_* / the whole file */
    CNN_SPLIT_TEST = 1   /* t10k-* files / test_batch */
};

CNN_API cnn_status cnn_dataset_create(cnn_dataset **out);
CNN_API void cnn_dataset_destroy(cnn_dataset *ds);
CNN_API const char *cnn_dataset_errmsg(const cnn_dataset *ds);

/* Loads a data set, replacing what ds held. path is one of:
 *   - a folder of MNIST-style IDX files: train-images-idx3-ubyte[.gz] and
 *     train-labels-idx1-ubyte[.gz] (split TRAIN), t10k-* (split TEST);
 *   - a CIFAR-10 binary folder: data_batch_1..5.bin (TRAIN), test_batch.bin (TEST);
 *   - a safetensors file with "x" (float32 or uint8, N x ...) and "y" (int64
 *     class indices, or float32 targets), split ignored;
 *   - a folder of class sub-folders of PNG/JPEG images (class names sorted
 *     as torchvision's ImageFolder does); with "train" and "test"
 *     sub-folders, the split picks one;
 *   - the name "fashion-mnist": the folder named by the environment
 *     variable CNN_FASHION_MNIST_DIR if set, else Debian's
 *     dataset-fashion-mnist files when installed
 *     (/usr/share/datasets/fashion-mnist), else the small subset shipped
 *     with cnn (2000 training and 500 test images: data/fashion-mnist-subset
 *     in a checkout, share/cnn/fashion-mnist-subset when installed).
 * Images keep one channel when grayscale (with or without alpha) and three
 * (RGB) otherwise; alpha is dropped. Everything read is validated: magic
 * numbers, counts, sizes, label ranges; messages name the file and what was
 * expected. After a failed load ds is empty. */
CNN_API cnn_status cnn_dataset_load(cnn_dataset *ds, const char *path, int split);
/* Whether the split exists for path (e.g. a test set next to a training set). */
CNN_API int cnn_dataset_has_split(const char *path, int split);

CNN_API int64_t cnn_dataset_size(const cnn_dataset *ds);
/* Shape of one sample (C, H, W for images) and of one target (ndim 0 for
 * class indices), and the target's dtype. */
CNN_API cnn_status cnn_dataset_shapes(const cnn_dataset *ds, cnn_shape *x, cnn_shape *y,
                                      cnn_dtype *y_dtype);
/* Number of classes for int64 targets (largest label + 1, or the class
 * folders / known names), 0 for float targets. */
CNN_API int64_t cnn_dataset_classes(const cnn_dataset *ds);
/* Class name k ("T-shirt/top" for Fashion-MNIST, the folder name for image
 * folders, "airplane" for CIFAR-10), or NULL when unknown. */
CNN_API const char *cnn_dataset_class_name(const cnn_dataset *ds, int64_t k);
/* Where the data came from (the resolved folder or file). */
CNN_API const char *cnn_dataset_source(const cnn_dataset *ds);

/* Per-sample transforms applied by cnn_dataset_batch, in this order:
 * random crop of size H x W after zero padding by crop_pad (crop_pad > 0),
 * random horizontal flip (flip), then (x - mean[c]) / std[c]. */
typedef struct cnn_transform {
    int crop_pad;
    int flip;
    int n_norm;       /* 0: no normalisation; 1: one mean/std for all channels; C: per channel */
    float mean[8];
    float std[8];
} cnn_transform;

/* Copies the samples indices[0..n) into x (n x sample shape, float32) and
 * their targets into y (n x target shape, of the target dtype; y may be
 * NULL to skip them). t may be NULL; rng is needed only for random
 * transforms. Every index is checked before anything is written. */
CNN_API cnn_status cnn_dataset_batch(cnn_dataset *ds, const int64_t *indices, int64_t n,
                                     const cnn_transform *t, cnn_rng *rng, float *x, void *y);

/* Reads one image file (PNG or JPEG) as float32 C x H x W in [0, 1]
 * (grayscale: C = 1, else RGB C = 3). *data is allocated with malloc and
 * owned by the caller (free()). Errors go to ds. */
CNN_API cnn_status cnn_image_load(cnn_dataset *ds, const char *path, float **data, cnn_shape *shape);
/* Writes a 2-d float array (H x W), scaled from [lo, hi] to 0..255, as an
 * 8-bit grayscale PNG (or C x H x W with C = 3 as RGB). Atomic write. */
CNN_API cnn_status cnn_image_save_png(cnn_dataset *ds, const char *path, const float *data,
                                      const cnn_shape *shape, float lo, float hi);

#ifdef __cplusplus
}
#endif
#endif
