/* Checkpoints: cnn_checkpoint_load of any bytes into a small model with an
 * optimiser and a schedule. A checkpoint that loads must leave a model that
 * trains a step; one that does not must leave the model as it was.
 *
 * CNN_FUZZ_WRITE_SEEDS=DIR fuzz_checkpoint writes valid checkpoints of this
 * model into DIR (the seed corpus; see fuzz/make_corpus.py) and exits. */
#include "fuzz_common.h"

static const char *MODEL = "Conv2d(1, 2, 3)\nBatchNorm2d(2)\nReLU()\nFlatten()\nLinear(8, 3)\n";
static const char *OPT = "Adam(lr=0.01, weight_decay=0.001, amsgrad=True)";
static const char *SCHED = "StepLR(step_size=2, gamma=0.5)";

typedef struct {
    cnn_graph *g;
    cnn_optimizer *opt;
} model;

static int setup(model *m)
{
    m->g = NULL;
    m->opt = NULL;
    cnn_shape shapes[2] = {{4, {2, 1, 4, 4}}, {1, {2}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    if (cnn_graph_create(&m->g) || cnn_optimizer_create(&m->opt) ||
        cnn_graph_parse(m->g, MODEL, "fuzz_model.txt") || cnn_graph_set_loss(m->g, "CrossEntropyLoss()") ||
        cnn_graph_reset_parameters(m->g, 1) || cnn_optimizer_init(m->opt, m->g, OPT) ||
        cnn_optimizer_set_schedule(m->opt, SCHED) ||
        cnn_graph_plan(m->g, 2, shapes, dtypes, CNN_PLAN_BACKWARD))
        return 0;
    float *x = cnn_graph_input_data(m->g, 0);
    int64_t *y = cnn_graph_input_data(m->g, 1);
    for (int i = 0; i < 32; i++)
        x[i] = (float)((i * 7) % 11) / 11.0f;
    y[0] = 1;
    y[1] = 2;
    return 1;
}

static void teardown(model *m)
{
    cnn_optimizer_destroy(m->opt);
    cnn_graph_destroy(m->g);
}

static cnn_status train_step(model *m)
{
    double loss;
    cnn_graph_zero_grad(m->g);
    cnn_status st = cnn_graph_forward(m->g, 1);
    if (!st)
        st = cnn_graph_loss(m->g, &loss);
    if (!st)
        st = cnn_graph_backward(m->g);
    if (st) {
        fuzz_need_message(st, cnn_graph_errmsg(m->g), "training step");
        return st;
    }
    st = cnn_optimizer_step(m->opt);
    fuzz_need_message(st, cnn_optimizer_errmsg(m->opt), "cnn_optimizer_step");
    return st;
}

static void write_seeds(const char *dir)
{
    model m;
    if (!setup(&m))
        abort();
    cnn_progress p;
    memset(&p, 0, sizeof p);
    cnn_rng_seed(&p.data_rng, 3);
    char path[512];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/ck%d.safetensors", dir, k);
        if (cnn_checkpoint_save(m.g, m.opt, k == 2 ? NULL : &p, path)) {
            fprintf(stderr, "%s\n", cnn_graph_errmsg(m.g));
            abort();
        }
        for (int s = 0; s < 3; s++) {
            if (train_step(&m))
                abort();
            p.step++;
        }
        cnn_optimizer_schedule_step(m.opt);
        p.epoch++;
    }
    teardown(&m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("CNN_FUZZ_WRITE_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model m;
    if (!setup(&m)) {
        teardown(&m);
        return 0;
    }
    fuzz_write("ck.safetensors", data, size);
    cnn_tensors *before;
    if (cnn_tensors_create(&before) || cnn_graph_save_state(m.g, before)) {
        cnn_tensors_destroy(before);
        teardown(&m);
        return 0;
    }
    cnn_progress p;
    memset(&p, 0, sizeof p);
    cnn_status st = cnn_checkpoint_load(m.g, m.opt, &p, fuzz_path("ck.safetensors"));
    fuzz_need_message(st, cnn_graph_errmsg(m.g), "cnn_checkpoint_load");
    if (st == CNN_OK) {
        if (p.epoch < 0 || p.step < 0)
            abort(); /* progress a caller would loop on must be sane */
        for (int s = 0; s < 2; s++)
            if (train_step(&m) == CNN_OK)
                p.step++;
        cnn_optimizer_schedule_step(m.opt);
        st = cnn_checkpoint_save(m.g, m.opt, &p, fuzz_path("out.safetensors"));
        fuzz_need_message(st, cnn_graph_errmsg(m.g), "cnn_checkpoint_save");
        fuzz_remove("out.safetensors");
    } else {
        /* A rejected checkpoint changed nothing in the model. */
        cnn_tensors *after;
        if (cnn_tensors_create(&after) == CNN_OK && cnn_graph_save_state(m.g, after) == CNN_OK) {
            for (int i = 0; i < cnn_tensors_count(before); i++) {
                cnn_tensor_info a, b;
                cnn_tensors_get(before, i, &a);
                cnn_tensors_get(after, i, &b);
                if (a.nbytes != b.nbytes || memcmp(a.data, b.data, a.nbytes)) {
                    fprintf(stderr, "a failed checkpoint load changed '%s': %s\n", a.name,
                            cnn_graph_errmsg(m.g));
                    abort();
                }
            }
        }
        cnn_tensors_destroy(after);
    }
    cnn_tensors_destroy(before);
    teardown(&m);
    return 0;
}
