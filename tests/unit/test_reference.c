/* Replays the committed PyTorch reference data (tests/data/ref, written by
 * tests/torch/gen_reference.py) through the library: forward values, the
 * input gradient, every parameter gradient and, for training-mode cases,
 * the buffers afterwards. Needs no Python. */
#include "test.h"

#include <dirent.h>
#include <stdint.h>

static double max_rel_err(const float *got, const cnn_tensor_info *want)
{
    int64_t n = (int64_t)(want->nbytes / cnn_dtype_size(want->dtype));
    double scale = 1, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double w = want->dtype == CNN_F64 ? ((double *)want->data)[i] : ((float *)want->data)[i];
        if (fabs(w) > scale)
            scale = fabs(w);
    }
    for (int64_t i = 0; i < n; i++) {
        double w = want->dtype == CNN_F64 ? ((double *)want->data)[i] : ((float *)want->data)[i];
        double e = fabs(got[i] - w);
        if (!(e <= worst))
            worst = e; /* NaN propagates */
    }
    return worst / scale;
}

static int same_shape(const cnn_shape *a, const cnn_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

static void compare(const char *what, const float *got, const cnn_shape *gs, const cnn_tensor_info *want,
                    double tol)
{
    char a[128], b[128];
    if (!same_shape(gs, &want->shape)) {
        CHECKF(0, "%s: shape %s, PyTorch %s", what, cnn_shape_format(gs, a, sizeof a),
               cnn_shape_format(&want->shape, b, sizeof b));
        return;
    }
    double e = max_rel_err(got, want);
    CHECKF(e <= tol, "%s: relative error %.3g > %.3g", what, e, tol);
}

static void run_case(const char *path)
{
    cnn_tensors *ts, *params;
    cnn_graph *g;
    cnn_tensors_create(&ts);
    cnn_tensors_create(&params);
    cnn_graph_create(&g);
    if (cnn_tensors_load(ts, path)) {
        CHECKF(0, "%s", cnn_tensors_errmsg(ts));
        goto out;
    }
    const char *model = cnn_tensors_get_meta(ts, "model");
    const char *train = cnn_tensors_get_meta(ts, "train");
    const char *tols = cnn_tensors_get_meta(ts, "tol");
    double tol = tols ? atof(tols) : 1e-5;
    if (!model || cnn_graph_parse(g, model, path)) {
        CHECKF(0, "model: %s", cnn_graph_errmsg(g));
        goto out;
    }
    for (int i = 0; i < cnn_tensors_count(ts); i++) {
        cnn_tensor_info info;
        cnn_tensors_get(ts, i, &info);
        if (strncmp(info.name, "param.", 6) == 0)
            cnn_tensors_add(params, info.name + 6, info.dtype, &info.shape, info.data, NULL);
    }
    if (cnn_graph_load_state(g, params)) {
        CHECKF(0, "weights: %s", cnn_graph_errmsg(g));
        goto out;
    }
    int nin = cnn_graph_input_count(g);
    cnn_shape shapes[4];
    cnn_dtype dtypes[4];
    for (int i = 0; i < nin && i < 4; i++) {
        int k = cnn_tensors_find(ts, cnn_graph_input_name(g, i));
        cnn_tensor_info info;
        CHECK(k >= 0);
        if (k < 0)
            goto out;
        cnn_tensors_get(ts, k, &info);
        shapes[i] = info.shape;
        dtypes[i] = info.dtype;
    }
    if (cnn_graph_plan(g, nin, shapes, dtypes, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        CHECKF(0, "plan: %s", cnn_graph_errmsg(g));
        goto out;
    }
    for (int i = 0; i < nin; i++) {
        cnn_tensor_info info;
        cnn_tensors_get(ts, cnn_tensors_find(ts, cnn_graph_input_name(g, i)), &info);
        memcpy(cnn_graph_input_data(g, i), info.data, info.nbytes);
    }
    if (cnn_graph_forward(g, train && train[0] == '1')) {
        CHECKF(0, "forward: %s", cnn_graph_errmsg(g));
        goto out;
    }
    float *y;
    cnn_shape ys;
    cnn_graph_output(g, 0, (void **)&y, &ys, NULL);
    cnn_tensor_info want;
    int k = cnn_tensors_find(ts, "want.output");
    cnn_tensors_get(ts, k, &want);
    compare("output", y, &ys, &want, tol);
    if ((k = cnn_tensors_find(ts, "want.indices")) >= 0) {
        int64_t *idx;
        cnn_shape is;
        cnn_tensors_get(ts, k, &want);
        if (cnn_graph_output_count(g) < 2 || cnn_graph_output(g, 1, (void **)&idx, &is, NULL) ||
            !same_shape(&is, &want.shape)) {
            CHECKF(0, "indices: the model gives no indices of PyTorch's shape");
        } else {
            int64_t n = (int64_t)(want.nbytes / sizeof(int64_t)), bad = 0;
            for (int64_t i = 0; i < n; i++)
                bad += idx[i] != ((int64_t *)want.data)[i];
            CHECKF(bad == 0, "indices: %lld of %lld differ from PyTorch's", (long long)bad, (long long)n);
        }
    }
    k = cnn_tensors_find(ts, "grad_output");
    if (k >= 0) {
        cnn_tensor_info gy;
        cnn_tensors_get(ts, k, &gy);
        memcpy(cnn_graph_output_grad(g, 0), gy.data, gy.nbytes);
        if (cnn_graph_backward(g)) {
            CHECKF(0, "backward: %s", cnn_graph_errmsg(g));
            goto out;
        }
        for (int i = 0; i < nin; i++) {
            char name[256];
            snprintf(name, sizeof name, "want.grad.%s", cnn_graph_input_name(g, i));
            if ((k = cnn_tensors_find(ts, name)) < 0)
                continue;
            cnn_tensors_get(ts, k, &want);
            compare(name, cnn_graph_input_grad(g, i), &shapes[i], &want, tol);
        }
    }
    for (int i = 0; i < cnn_graph_param_count(g); i++) {
        cnn_param_info p;
        cnn_graph_param(g, i, &p);
        char name[300];
        snprintf(name, sizeof name, "want.grad.%s", p.name);
        if (p.grad && (k = cnn_tensors_find(ts, name)) >= 0) {
            cnn_tensors_get(ts, k, &want);
            compare(name, p.grad, &p.shape, &want, tol);
        }
        snprintf(name, sizeof name, "want.state.%s", p.name);
        if ((k = cnn_tensors_find(ts, name)) >= 0) {
            cnn_tensors_get(ts, k, &want);
            if (p.dtype == CNN_I64)
                CHECKF(*(int64_t *)p.data == *(int64_t *)want.data, "%s: %lld, PyTorch %lld", name,
                       (long long)*(int64_t *)p.data, (long long)*(int64_t *)want.data);
            else
                compare(name, p.data, &p.shape, &want, tol);
        }
    }
out:
    cnn_tensors_destroy(ts);
    cnn_tensors_destroy(params);
    cnn_graph_destroy(g);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void)
{
    const char *dir = getenv("CNN_TEST_DATA") ? getenv("CNN_TEST_DATA") : "tests/data/ref";
    DIR *d = opendir(dir);
    if (!d) {
        printf("cannot open %s (run from the repository root)\n", dir);
        test_failed++;
        return test_finish();
    }
    char *names[1024];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 1024) {
        size_t len = strlen(de->d_name);
        if (len > 12 && strcmp(de->d_name + len - 12, ".safetensors") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        TEST(names[i]) run_case(path);
        free(names[i]);
    }
    printf("%d reference cases from %s\n", n, dir);
    return test_finish();
}
