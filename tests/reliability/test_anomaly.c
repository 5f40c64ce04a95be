/* Numerical faults: with anomaly detection on, forward and backward fail
 * with CNN_ERR_NUMERIC at the first node whose output or gradient is not
 * finite, naming it; cnn train --detect-anomaly stops naming the step and
 * that node; and cnn train never saves weights holding NaN or Inf.
 * Prints "RESULT passed failed" (tests/run.sh). */
#include <cnn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Declared in cnn.h once the anomaly hooks are in (src/graph/anomaly.c). */
CNN_API cnn_status cnn_graph_set_detect_anomaly(cnn_graph *g, int on);

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    if (ok) {
        passed++;
        printf("PASS %s\n", what);
    } else {
        failed++;
        printf("FAIL %s\n   %s\n", what, detail ? detail : "");
    }
}

static int has(const char *msg, const char *frag) { return msg && strstr(msg, frag) != NULL; }

static void set_param(cnn_graph *g, const char *name, float v)
{
    for (int i = 0; i < cnn_graph_param_count(g); i++) {
        cnn_param_info p;
        cnn_graph_param(g, i, &p);
        if (strcmp(p.name, name) != 0)
            continue;
        int64_t n = 1;
        for (int d = 0; d < p.shape.ndim; d++)
            n *= p.shape.dims[d];
        for (int64_t k = 0; k < n; k++)
            ((float *)p.data)[k] = v;
    }
}

static cnn_graph *model(const char *text, int64_t batch)
{
    cnn_graph *g;
    cnn_shape s = {2, {batch, 4}};
    if (cnn_graph_create(&g) || cnn_graph_parse(g, text, "anomaly.txt") ||
        cnn_graph_plan(g, 1, &s, NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD)) {
        printf("cannot set up the model: %s\n", cnn_graph_errmsg(g));
        exit(1);
    }
    float *x = cnn_graph_input_data(g, 0);
    for (int i = 0; i < batch * 4; i++)
        x[i] = 1.0f;
    return g;
}

static char out[8192];
static int tool(const char *args)
{
    char cmd[2048];
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(cmd, sizeof cmd, "%s/cnn %s 2>&1", build, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int main(void)
{
    const char *TEXT = "Linear(4, 4)\nTanh()\nLinear(4, 2)\n";
    char detail[2048];

    /* Forward: 4 x 1e38 overflows float in the first Linear. */
    cnn_graph *g = model(TEXT, 2);
    set_param(g, "0.weight", 1e38f);
    cnn_status st = cnn_graph_forward(g, 1);
    check(st == CNN_OK, "without detection a non-finite activation passes (as in PyTorch)", cnn_graph_errmsg(g));
    check(cnn_graph_set_detect_anomaly(g, 1) == CNN_OK, "cnn_graph_set_detect_anomaly(g, 1)", cnn_graph_errmsg(g));
    st = cnn_graph_forward(g, 1);
    const char *m = cnn_graph_errmsg(g);
    snprintf(detail, sizeof detail, "status %d: %s", st, m);
    check(st == CNN_ERR_NUMERIC && has(m, "non-finite value in the output of node '0' (Linear), line 1") &&
              has(m, "anomaly.txt") && has(m, "(forward)"),
          "forward fails at the first node with a non-finite output, naming it", detail);
    cnn_graph_destroy(g);

    /* A NaN fed in is the input's fault, not the first layer's. */
    g = model(TEXT, 2);
    cnn_graph_set_detect_anomaly(g, 1);
    ((float *)cnn_graph_input_data(g, 0))[5] = NAN;
    st = cnn_graph_forward(g, 1);
    m = cnn_graph_errmsg(g);
    snprintf(detail, sizeof detail, "status %d: %s", st, m);
    check(st == CNN_ERR_NUMERIC && has(m, "model input 'input'") && has(m, "element 5"),
          "a NaN in the model's input is reported as the input's", detail);
    cnn_graph_destroy(g);

    /* Backward: finite forward, but 1e20 * 1e20 overflows in the input
     * gradient of the last Linear. */
    g = model(TEXT, 2);
    cnn_graph_set_detect_anomaly(g, 1);
    set_param(g, "2.weight", 1e20f);
    st = cnn_graph_forward(g, 1);
    check(st == CNN_OK, "a finite forward passes the check", cnn_graph_errmsg(g));
    float *gy = cnn_graph_output_grad(g, 0);
    for (int i = 0; i < 4; i++)
        gy[i] = 1e20f;
    st = cnn_graph_backward(g);
    m = cnn_graph_errmsg(g);
    snprintf(detail, sizeof detail, "status %d: %s", st, m);
    check(st == CNN_ERR_NUMERIC && has(m, "non-finite value in the gradient of input 0") &&
              has(m, "node '2' (Linear), line 3") && has(m, "(backward)"),
          "backward fails at the first node writing a non-finite gradient, naming it", detail);
    /* Off again: the same work passes (the check is the only difference). */
    cnn_graph_set_detect_anomaly(g, 0);
    st = cnn_graph_forward(g, 1);
    gy = cnn_graph_output_grad(g, 0);
    for (int i = 0; i < 4; i++)
        gy[i] = 1e20f;
    if (!st)
        st = cnn_graph_backward(g);
    check(st == CNN_OK, "with detection off again, backward runs", cnn_graph_errmsg(g));
    cnn_graph_destroy(g);

    /* A graph built from C has no line to name. */
    cnn_graph_create(&g);
    int x, y;
    cnn_shape four = {1, {4}};
    cnn_graph_add_input(g, "input", &four, &x);
    cnn_graph_add(g, "fc", "Linear(4, 2)", 1, &x, &y, NULL);
    cnn_shape s = {2, {1, 4}};
    cnn_graph_plan(g, 1, &s, NULL, 0);
    set_param(g, "fc.weight", INFINITY);
    cnn_graph_set_detect_anomaly(g, 1);
    float *in = cnn_graph_input_data(g, 0);
    for (int i = 0; i < 4; i++)
        in[i] = 1;
    st = cnn_graph_forward(g, 0);
    m = cnn_graph_errmsg(g);
    snprintf(detail, sizeof detail, "status %d: %s", st, m);
    check(st == CNN_ERR_NUMERIC && has(m, "node 'fc' (Linear): element") && !has(m, "line"),
          "a node built from C is named without a line", detail);
    cnn_graph_destroy(g);

    /* The tool: --detect-anomaly names the step and the layer, and weights
     * holding NaN are never saved. */
    char dir[64], path[200], args[1200];
    snprintf(dir, sizeof dir, "/tmp/cnn_test_anomaly_%d", (int)getpid());
    mkdir(dir, 0700);
    const char *data = "tests/data/malformed/data_good.safetensors";
    const char *mdl = "tests/data/malformed/model.txt";
    snprintf(args, sizeof args, "train %s --data %s --epochs 3 --lr 1e35 --detect-anomaly --save %s/w.st", mdl,
             data, dir);
    int rc = tool(args);
    snprintf(detail, sizeof detail, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/w.st", dir);
    check(rc == 1 && has(out, "epoch ") && has(out, "step ") && has(out, "non-finite value in the") &&
              has(out, "node '") && !exists(path),
          "cnn train --detect-anomaly stops naming the epoch, the step and the node", detail);

    /* NaN weights given with --weights and no training (--epochs 0): saving
     * them must be refused, with the parameter named. */
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    cnn_tensors_load(ts, "tests/data/malformed/weights_missing_key.safetensors");
    float nan3[3] = {0, NAN, 0};
    cnn_shape s3 = {1, {3}};
    cnn_tensors_add(ts, "3.bias", CNN_F32, &s3, nan3, NULL);
    snprintf(path, sizeof path, "%s/nan.st", dir);
    cnn_tensors_save(ts, path);
    cnn_tensors_destroy(ts);
    snprintf(args, sizeof args, "train %s --data %s --epochs 0 --weights %s --save %s/w.st", mdl, data, path, dir);
    rc = tool(args);
    snprintf(detail, sizeof detail, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/w.st", dir);
    check(rc == 1 && has(out, "'3.bias'") && has(out, "non-finite") && !exists(path),
          "cnn train refuses to save weights holding NaN, naming the parameter", detail);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    printf("RESULT %d %d\n", passed, failed);
    return failed ? 1 : 0;
}
