/* Views: a Flatten, Unflatten or Identity whose input nothing else reads
 * (and which is no model output) shares its input's buffers, so neither
 * pass copies (src/graph/plan.c). Each model here runs twice from the same
 * parameters and data: once as written, and once with the view's input
 * also returned as a model output (so it keeps its own buffers) whose
 * gradient is zero. The model output, the input gradient and every
 * parameter gradient must be identical, and the plan must share exactly
 * the buffers it may. */
#include "test.h"

typedef struct {
    const char *name, *text, *extra; /* extra: the value returned too in the second run */
    int ndim;
    int64_t dims[4];
    int layer, source; /* the view's layer and the layer whose output it shares, or -1 */
} view_case;

static const view_case cases[] = {
    {"Flatten between a convolution and a linear layer: shared",
     "c = Conv2d(2, 3, 3)(input)\nf = Flatten()(c)\noutput = Linear(3 * 4 * 4, 5)(f)\n", "c", 4, {3, 2, 6, 6}, 1,
     0},
    {"the flattened values read by two layers: shared, gradients summed in the input's buffer",
     "c = Conv2d(2, 3, 3)(input)\nf = Flatten()(c)\na = Linear(48, 4)(f)\nb = Linear(48, 4)(f)\n"
     "output = Add()(a, b)\n",
     "c", 4, {2, 2, 6, 6}, 1, 0},
    {"a chain of views (Flatten, Unflatten, Identity, Flatten): all one buffer",
     "c = Conv2d(2, 3, 3)(input)\nf = Flatten()(c)\nu = Unflatten(1, (3, 16))(f)\ni = Identity()(u)\n"
     "g = Flatten()(i)\noutput = Linear(48, 2)(g)\n",
     "c", 4, {2, 2, 6, 6}, 4, 0},
    {"the input read by a second layer: not shared",
     "c = Conv2d(2, 3, 3)(input)\nf = Flatten()(c)\nr = ReLU()(c)\ng = Flatten()(r)\n"
     "a = Linear(48, 3)(f)\nb = Linear(48, 3)(g)\noutput = Add()(a, b)\n",
     NULL, 4, {2, 2, 6, 6}, 1, -1},
    {"the input is a model output: not shared",
     "c = Conv2d(2, 3, 3)(input)\nf = Flatten()(c)\no = Linear(48, 3)(f)\noutputs = (o, c)\n", NULL, 4,
     {2, 2, 6, 6}, 1, -1},
};

static int64_t numel(const cnn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

/* The model, with `extra` also returned (its gradient zero) when given. */
static cnn_graph *run(const view_case *vc, const char *extra, const float *x)
{
    char text[1200];
    if (extra) {
        /* "output = E" becomes "o_ = E" and "outputs = (o_, extra)" */
        const char *o = strstr(vc->text, "output = ");
        snprintf(text, sizeof text, "%.*so_ = %soutputs = (o_, %s)\n", (int)(o - vc->text), vc->text,
                 o + strlen("output = "), extra);
    } else {
        snprintf(text, sizeof text, "%s", vc->text);
    }
    cnn_graph *g;
    cnn_graph_create(&g);
    cnn_shape xs = {vc->ndim, {0}};
    for (int i = 0; i < vc->ndim; i++)
        xs.dims[i] = vc->dims[i];
    if (cnn_graph_parse(g, text, "views.txt") || cnn_graph_reset_parameters(g, 3) ||
        cnn_graph_plan(g, 1, &xs, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        CHECKF(0, "%s: %s", vc->name, cnn_graph_errmsg(g));
        cnn_graph_destroy(g);
        return NULL;
    }
    memcpy(cnn_graph_input_data(g, 0), x, sizeof(float) * (size_t)numel(&xs));
    CHECKF(cnn_graph_forward(g, 1) == CNN_OK, "%s: %s", vc->name, cnn_graph_errmsg(g));
    for (int k = 0; k < cnn_graph_output_count(g); k++) {
        cnn_shape ys;
        cnn_graph_output(g, k, NULL, &ys, NULL);
        float *gy = cnn_graph_output_grad(g, k);
        for (int64_t i = 0; i < numel(&ys); i++)
            gy[i] = k ? 0.0f : (float)sin(0.7 * (double)i) + 0.25f;
    }
    CHECKF(cnn_graph_backward(g) == CNN_OK, "%s: %s", vc->name, cnn_graph_errmsg(g));
    return g;
}

static void *layer_data(cnn_graph *g, int l)
{
    void *d = NULL;
    return cnn_graph_layer_output(g, l, 0, &d, NULL, NULL) == CNN_OK ? d : NULL;
}

int main(void)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const view_case *vc = &cases[c];
        TEST(vc->name)
        {
            int64_t n = numel(&(cnn_shape){vc->ndim, {vc->dims[0], vc->dims[1], vc->dims[2], vc->dims[3]}});
            float *x = malloc(sizeof(float) * (size_t)n);
            for (int64_t i = 0; i < n; i++)
                x[i] = (float)cos(1.3 * (double)i);
            cnn_graph *a = run(vc, NULL, x), *b = vc->extra ? run(vc, vc->extra, x) : NULL;
            if (a) {
                /* sharing: the view's output is its source's buffer, or no other layer's */
                void *view = layer_data(a, vc->layer);
                if (vc->source >= 0) {
                    CHECKF(view && view == layer_data(a, vc->source), "layer %d does not share layer %d's buffer",
                           vc->layer, vc->source);
                } else {
                    for (int l = 0; l < cnn_graph_layer_count(a); l++)
                        CHECKF(l == vc->layer || layer_data(a, l) != view, "layer %d shares layer %d's buffer",
                               vc->layer, l);
                }
            }
            if (a && b) {
                cnn_shape ys;
                void *ya, *yb;
                cnn_graph_output(a, 0, &ya, &ys, NULL);
                cnn_graph_output(b, 0, &yb, NULL, NULL);
                CHECKF(!memcmp(ya, yb, sizeof(float) * (size_t)numel(&ys)), "the output differs");
                CHECKF(!memcmp(cnn_graph_input_grad(a, 0), cnn_graph_input_grad(b, 0), sizeof(float) * (size_t)n),
                       "the input gradient differs");
                for (int p = 0; p < cnn_graph_param_count(a); p++) {
                    cnn_param_info pa, pb;
                    cnn_graph_param(a, p, &pa);
                    cnn_graph_param(b, p, &pb);
                    if (pa.kind == CNN_PARAM)
                        CHECKF(!memcmp(pa.grad, pb.grad, sizeof(float) * (size_t)numel(&pa.shape)),
                               "the gradient of %s differs", pa.name);
                }
                /* and the unshared run really kept its own buffer */
                CHECK(layer_data(b, vc->layer) != layer_data(b, vc->source));
            }
            cnn_graph_destroy(a);
            cnn_graph_destroy(b);
            free(x);
        }
    }
    return test_finish();
}
