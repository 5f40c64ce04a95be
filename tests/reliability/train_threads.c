/* Two models trained at once from two threads of one program must each end
 * with the weights they get when trained alone: handles share nothing
 * (cnn.h: different handles may run in different threads). One of them also
 * uses a thread pool of its own. Prints "RESULT passed failed". */
#include <cnn.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *optimizer;
    uint64_t seed;
    int threads;
    cnn_dataset *ds;
    cnn_tensors *weights; /* the result */
    char error[1100];
} job;

static const char *MODEL_A = "Conv2d(1, 8, 3, padding=1)\nBatchNorm2d(8)\nReLU()\nMaxPool2d(2)\n"
                             "Flatten()\nDropout(0.2)\nLinear(8 * 14 * 14, 10)\n";
static const char *MODEL_B = "Conv2d(1, 4, 5)\nTanh()\nAvgPool2d(2)\nFlatten()\nLinear(4 * 12 * 12, 32)\n"
                             "RReLU()\nLinear(32, 10)\n";

#define BATCH 32
#define STEPS 24

static void *train(void *arg)
{
    job *j = arg;
    cnn_graph *g = NULL;
    cnn_optimizer *opt = NULL;
    float *x = NULL;
    int64_t *y = NULL;
    if (cnn_graph_create(&g) || cnn_optimizer_create(&opt) || cnn_tensors_create(&j->weights)) {
        snprintf(j->error, sizeof j->error, "out of memory");
        goto done;
    }
    cnn_shape shapes[2] = {{4, {BATCH, 1, 28, 28}}, {1, {BATCH}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    if (cnn_graph_parse(g, j->model, "model") || cnn_graph_set_loss(g, "CrossEntropyLoss()") ||
        cnn_graph_reset_parameters(g, j->seed) || cnn_graph_set_threads(g, j->threads) ||
        cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD)) {
        snprintf(j->error, sizeof j->error, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    cnn_graph_set_seed(g, j->seed + 1);
    if (cnn_optimizer_init(opt, g, j->optimizer)) {
        snprintf(j->error, sizeof j->error, "%s", cnn_optimizer_errmsg(opt));
        goto done;
    }
    x = cnn_graph_input_data(g, 0);
    y = cnn_graph_input_data(g, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, j->seed + 2);
    cnn_transform t = {2, 1, 1, {0.5f}, {0.5f}};
    int64_t n = cnn_dataset_size(j->ds);
    for (int s = 0; s < STEPS; s++) {
        int64_t idx[BATCH];
        for (int i = 0; i < BATCH; i++)
            idx[i] = (int64_t)cnn_rng_below(&rng, (uint64_t)n);
        double loss;
        cnn_graph_zero_grad(g);
        if (cnn_dataset_batch(j->ds, idx, BATCH, &t, &rng, x, y)) {
            snprintf(j->error, sizeof j->error, "%s", cnn_dataset_errmsg(j->ds));
            goto done;
        }
        if (cnn_graph_forward(g, 1) || cnn_graph_loss(g, &loss) || cnn_graph_backward(g) ||
            cnn_graph_clip_grad_norm(g, 5.0, 2.0, NULL)) {
            snprintf(j->error, sizeof j->error, "%s", cnn_graph_errmsg(g));
            goto done;
        }
        if (cnn_optimizer_step(opt)) {
            snprintf(j->error, sizeof j->error, "%s", cnn_optimizer_errmsg(opt));
            goto done;
        }
    }
    if (cnn_graph_save_state(g, j->weights))
        snprintf(j->error, sizeof j->error, "%s", cnn_graph_errmsg(g));
done:
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    return NULL;
}

static int same(const cnn_tensors *a, const cnn_tensors *b)
{
    if (!a || !b || cnn_tensors_count(a) != cnn_tensors_count(b) || cnn_tensors_count(a) == 0)
        return 0;
    for (int i = 0; i < cnn_tensors_count(a); i++) {
        cnn_tensor_info x, y;
        cnn_tensors_get(a, i, &x);
        cnn_tensors_get(b, i, &y);
        if (x.nbytes != y.nbytes || memcmp(x.data, y.data, x.nbytes) != 0) {
            printf("  '%s' differs\n", x.name);
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    int passed = 0, failed = 0;
    /* A handle is used by one thread at a time (cnn.h): each job reads its
     * own copy of the data. */
    cnn_dataset *ds[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        if (cnn_dataset_create(&ds[i]) || cnn_dataset_load(ds[i], "data/fashion-mnist-subset", CNN_SPLIT_TRAIN)) {
            printf("cannot load data/fashion-mnist-subset: %s\nRESULT 0 1\n",
                   ds[i] ? cnn_dataset_errmsg(ds[i]) : "out of memory");
            return 1;
        }
    job alone[2] = {{MODEL_A, "SGD(lr=0.05, momentum=0.9)", 11, 1, ds[0], NULL, ""},
                    {MODEL_B, "Adam(lr=0.002)", 12, 2, ds[1], NULL, ""}};
    job together[2];
    memcpy(together, alone, sizeof together);
    for (int i = 0; i < 2; i++)
        train(&alone[i]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, train, &together[i]) != 0) {
            printf("pthread_create failed\nRESULT 0 1\n");
            return 1;
        }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "model B (Adam, 2 threads of its own)" : "model A (SGD, BatchNorm, Dropout)";
        if (alone[i].error[0] || together[i].error[0]) {
            printf("FAIL %s: %s%s\n", name, alone[i].error, together[i].error);
            failed++;
        } else if (!same(alone[i].weights, together[i].weights)) {
            printf("FAIL %s: weights trained beside another model differ from those trained alone\n", name);
            failed++;
        } else {
            printf("PASS %s: the same weights trained alone and beside another model\n", name);
            passed++;
        }
        cnn_tensors_destroy(alone[i].weights);
        cnn_tensors_destroy(together[i].weights);
    }
    cnn_dataset_destroy(ds[0]);
    cnn_dataset_destroy(ds[1]);
    printf("RESULT %d %d\n", passed, failed);
    return failed ? 1 : 0;
}
