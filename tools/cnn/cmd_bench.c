/* cnn bench: per-layer forward and backward times of a model, like
 * `caffe time`: where the time of a step goes, images per second, GFLOP/s. */
#include "tool.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void cmd_bench_help(FILE *out)
{
    fprintf(out, "usage: cnn bench MODEL --input-shape C,H,W [--batch N] [--train] [--threads T]\n"
                 "                 [--iterations K] [--warmup W] [--isa auto|avx512|avx2|generic] [--json]\n\n"
                 "Times K passes (default 20, after W = 3 unmeasured ones) of MODEL on random\n"
                 "input at batch N (default 64): forward only, or forward and backward with\n"
                 "--train. Prints each layer's mean time, its share, and GFLOP/s (2 x its\n"
                 "multiply-adds; backward counted as twice the forward's work), then the\n"
                 "totals and images per second. --threads defaults to all cores.\n\n"
                 "Fused layers show their time on the layer that runs them: a ReLU and a\n"
                 "max pooling after a BatchNorm, an average pooling after an activation\n"
                 "on that activation; with --train, the weight gradient of a first\n"
                 "convolution whose output only a BatchNorm2d reads on that BatchNorm's\n"
                 "backward, as does the bias gradient of any other convolution whose\n"
                 "output only a BatchNorm reads.\n");
}

/* s as a JSON string literal on stdout. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int cmd_bench(int argc, char **argv)
{
    const char *S = "bench";
    const char *model = NULL, *shape_s = NULL, *isa = NULL;
    long long batch = 64, threads = tool_default_threads(), iters = 20, warm = 3;
    int train = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long *iv = NULL, lo = 1, hi = 1 << 20;
        if (!strcmp(a, "--input-shape")) {
            if (!(shape_s = tool_optarg(S, argc, argv, &i)))
                return EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--isa")) {
            if (!(isa = tool_optarg(S, argc, argv, &i)))
                return EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--train")) {
            train = 1;
            continue;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        } else if (!strcmp(a, "--batch")) iv = &batch;
        else if (!strcmp(a, "--threads")) { iv = &threads; hi = 256; }
        else if (!strcmp(a, "--iterations")) iv = &iters;
        else if (!strcmp(a, "--warmup")) { iv = &warm; lo = 0; }
        else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn bench --help)", a);
            return EXIT_USAGE;
        } else if (!model) {
            model = a;
            continue;
        } else {
            tool_error(S, "unexpected argument '%s'", a);
            return EXIT_USAGE;
        }
        const char *v = tool_optarg(S, argc, argv, &i);
        if (!v || !tool_parse_i64(S, a, v, lo, hi, iv))
            return EXIT_USAGE;
    }
    if (!model || !shape_s) {
        tool_error(S, "MODEL and --input-shape are required (see cnn bench --help)");
        return EXIT_USAGE;
    }
    if (isa && strcmp(isa, "auto") && strcmp(isa, "avx512") && strcmp(isa, "avx2") && strcmp(isa, "generic")) {
        tool_error(S, "--isa is auto, avx512, avx2 or generic, got '%s'", isa);
        return EXIT_USAGE;
    }
    long long dims[CNN_MAX_DIMS];
    int nd = tool_parse_dims(shape_s, dims, CNN_MAX_DIMS - 1);
    if (nd < 0) {
        tool_error(S, "--input-shape '%s' is not a list of positive sizes such as 3,224,224", shape_s);
        return EXIT_USAGE;
    }
    cnn_graph *g;
    if (!tool_load_model(S, model, NULL, &g))
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    cnn_shape xs = {nd + 1, {0}};
    xs.dims[0] = batch;
    for (int d = 0; d < nd; d++)
        xs.dims[d + 1] = dims[d];
    if (cnn_graph_input_count(g) != 1) {
        tool_error(S, "%s: bench takes models with one input", model);
        goto done;
    }
    if ((isa && cnn_graph_set_isa(g, isa)) || cnn_graph_set_threads(g, (int)threads) ||
        cnn_graph_plan(g, 1, &xs, NULL, train ? CNN_PLAN_BACKWARD : 0)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    float *x = cnn_graph_input_data(g, 0);
    int64_t numel = 1;
    for (int d = 0; d < xs.ndim; d++)
        numel *= xs.dims[d];
    for (int64_t i = 0; i < numel; i++)
        x[i] = (float)(cnn_rng_uniform(&rng) * 2 - 1);
    cnn_shape os;
    cnn_graph_output(g, 0, NULL, &os, NULL);
    int64_t onum = 1;
    for (int d = 0; d < os.ndim; d++)
        onum *= os.dims[d];
    /* The step is timed without the per-layer clocks, which make the layers
     * of a sharded chain (see cnn_graph_plan) run one at a time; the
     * layers' split comes from as many iterations timed with them. */
    double total = 0;
    for (long long it = 0; it < warm + 2 * iters; it++) {
        if (it == warm + iters)
            cnn_graph_set_profiling(g, 1);
        double t0 = now();
        if (cnn_graph_forward(g, train)) {
            tool_error(S, "%s", cnn_graph_errmsg(g));
            goto done;
        }
        if (train) {
            float *gy = cnn_graph_output_grad(g, 0);
            if (gy)
                for (int64_t i = 0; i < onum; i++)
                    gy[i] = 1.0f / (float)onum;
            if (cnn_graph_backward(g)) {
                tool_error(S, "%s", cnn_graph_errmsg(g));
                goto done;
            }
        }
        if (it >= warm && it < warm + iters)
            total += now() - t0;
    }
    double per = total / (double)iters;
    double fwd_sum = 0, bwd_sum = 0, flops = 0;
    int nl = cnn_graph_layer_count(g);
    if (json) {
        printf("{\"model\": ");
        json_string(model);
        printf(", \"batch\": %lld, \"threads\": %lld, \"isa\": \"%s\", \"train\": %s, \"layers\": [", batch,
               threads, cnn_graph_isa(g), train ? "true" : "false");
    } else
        printf("%s, batch %lld, %s, %lld thread%s, %s, mean of %lld iterations\n\n%-24s %12s %12s %7s %10s\n",
               model, batch, train ? "forward + backward" : "forward", threads, threads == 1 ? "" : "s",
               cnn_graph_isa(g), iters, "layer", "forward ms", "backward ms", "share", "GFLOP/s");
    for (int i = 0; i < nl; i++) {
        cnn_layer_info li;
        cnn_graph_layer(g, i, &li);
        fwd_sum += li.forward_seconds;
        bwd_sum += li.backward_seconds;
    }
    for (int i = 0; i < nl; i++) {
        cnn_layer_info li;
        cnn_graph_layer(g, i, &li);
        double f = li.forward_seconds / (double)iters, b = li.backward_seconds / (double)iters;
        double work = 2.0 * (double)li.macs * (train ? 3 : 1);
        flops += work;
        double gf = (f + b) > 0 ? work / (f + b) / 1e9 : 0;
        double share = (fwd_sum + bwd_sum) > 0 ? (li.forward_seconds + li.backward_seconds) / (fwd_sum + bwd_sum) : 0;
        if (json) {
            printf("%s{\"name\": ", i ? ", " : "");
            json_string(li.name);
            printf(", \"type\": \"%s\", \"forward_ms\": %.4f, \"backward_ms\": %.4f, \"gflops\": %.3f}", li.type,
                   f * 1e3, b * 1e3, gf);
        } else {
            char label[64];
            snprintf(label, sizeof label, "%s (%s)", li.name, li.type);
            printf("%-24.24s %12.3f %12.3f %6.1f%% %10.2f\n", label, f * 1e3, b * 1e3, 100 * share, gf);
        }
    }
    double ips = per > 0 ? (double)batch / per : 0;
    if (json)
        printf("], \"step_ms\": %.4f, \"images_per_sec\": %.1f, \"gflops\": %.3f}\n", per * 1e3, ips,
               per > 0 ? flops / per / 1e9 : 0);
    else
        printf("\n%-24s %12.3f %12.3f\nstep %.3f ms, %.0f images/s, %.2f GFLOP/s\n", "total",
               fwd_sum / (double)iters * 1e3, bwd_sum / (double)iters * 1e3, per * 1e3, ips,
               per > 0 ? flops / per / 1e9 : 0);
    rc = EXIT_OK;
done:
    cnn_graph_destroy(g);
    return rc;
}
