/* The specs a command line passes to the library as text: the loss
 * ("CrossEntropyLoss(label_smoothing=0.1)"), the optimiser ("SGD(lr=0.1,
 * momentum=0.9)") and the schedule ("SequentialLR([...], milestones=[5])").
 * The input is three NUL-separated strings, applied to a small model that
 * then trains a few steps and schedule steps, and saves and reloads the
 * optimiser's state. */
#include "fuzz_common.h"

#include <math.h>

static const char *MODEL = "Conv2d(1, 2, 3)\nReLU()\nFlatten()\nLinear(8, 3)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 3);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = text[size + 2] = 0;
    const char *loss = text;
    const char *optim = loss + strlen(loss) + 1;
    const char *sched = optim + strlen(optim) + 1;
    if (optim > text + size)
        optim = "";
    if (sched > text + size)
        sched = "";
    cnn_graph *g = NULL;
    cnn_optimizer *opt = NULL;
    cnn_tensors *ts = NULL;
    if (cnn_graph_create(&g) || cnn_optimizer_create(&opt) || cnn_tensors_create(&ts) ||
        cnn_graph_parse(g, MODEL, "m.txt"))
        goto done;
    cnn_status st = cnn_graph_set_loss(g, loss);
    fuzz_need_message(st, cnn_graph_errmsg(g), "cnn_graph_set_loss");
    if (st)
        goto done;
    /* The target's shape and dtype follow the loss: class indices or floats. */
    cnn_shape shapes[2] = {{4, {2, 1, 4, 4}}, {1, {2}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    st = cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD);
    if (st) {
        shapes[1] = (cnn_shape){2, {2, 3}};
        dtypes[1] = CNN_F32;
        st = cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD);
    }
    fuzz_need_message(st, cnn_graph_errmsg(g), "cnn_graph_plan");
    if (st)
        goto done;
    float *x = cnn_graph_input_data(g, 0);
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i % 5) / 5.0f;
    if (dtypes[1] == CNN_I64) {
        int64_t *y = cnn_graph_input_data(g, 1);
        y[0] = 2;
        y[1] = 0;
    } else {
        float *y = cnn_graph_input_data(g, 1);
        for (int i = 0; i < 6; i++)
            y[i] = (float)(i % 2);
    }
    st = cnn_optimizer_init(opt, g, optim);
    fuzz_need_message(st, cnn_optimizer_errmsg(opt), "cnn_optimizer_init");
    if (st)
        goto done;
    if (sched[0]) {
        st = cnn_optimizer_set_schedule(opt, sched);
        fuzz_need_message(st, cnn_optimizer_errmsg(opt), "cnn_optimizer_set_schedule");
    }
    for (int s = 0; s < 3; s++) {
        double l;
        cnn_graph_zero_grad(g);
        st = cnn_graph_forward(g, 1);
        if (!st)
            st = cnn_graph_loss(g, &l);
        if (!st)
            st = cnn_graph_backward(g);
        if (!st)
            st = cnn_graph_clip_grad_norm(g, 1.0, 2.0, NULL);
        fuzz_need_message(st, cnn_graph_errmsg(g), "training step");
        if (st)
            break;
        st = cnn_optimizer_step(opt);
        fuzz_need_message(st, cnn_optimizer_errmsg(opt), "cnn_optimizer_step");
        if (!st)
            st = cnn_optimizer_schedule_step(opt);
        fuzz_need_message(st, cnn_optimizer_errmsg(opt), "cnn_optimizer_schedule_step");
        (void)cnn_optimizer_lr(opt);
        if (st)
            break;
    }
    /* The state saved is the state read back. */
    if (cnn_optimizer_save_state(opt, ts) == CNN_OK) {
        double lr = cnn_optimizer_lr(opt);
        st = cnn_optimizer_load_state(opt, ts);
        fuzz_need_message(st, cnn_optimizer_errmsg(opt), "cnn_optimizer_load_state");
        if (st || !(cnn_optimizer_lr(opt) == lr || (isnan(lr) && isnan(cnn_optimizer_lr(opt))))) {
            fprintf(stderr, "the optimiser's saved state does not load back: %s\n",
                    cnn_optimizer_errmsg(opt));
            abort();
        }
    }
done:
    cnn_tensors_destroy(ts);
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    free(text);
    return 0;
}
