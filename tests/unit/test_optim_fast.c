/* The vectorised optimizer updates (kernels/optim_fast.h) against the
 * portable loop: every instruction set gives the same bits for the
 * parameters and the optimizer's state, over several steps with gradients
 * of all magnitudes (and signs, zeros, -0), on a parameter count that
 * leaves a tail for each vector width. And on a model large enough for the
 * update to be shared out in chunks, SGD with momentum and Adam against a
 * plain loop over every parameter here, for 1 and 2 threads, and the
 * gradients all zero after cnn_graph_zero_grad. */
#include "test.h"
#include "core/cpu.h"

#include <math.h>

static const char *const specs[] = {
    "Adam(lr=0.001)",
    "Adam(lr=0.01, betas=(0.8, 0.95), eps=1e-6)",
    "AdamW(lr=0.003, weight_decay=0.05)",
    "Adam(lr=0.002, weight_decay=0.1)",   /* L2 decay: the portable loop on every set */
    "Adam(lr=0.002, amsgrad=True)",       /* likewise */
    "AdamW(lr=0.001, maximize=True)",     /* likewise */
    "SGD(lr=0.05, momentum=0.9)",
    "SGD(lr=0.1, momentum=0.5, dampening=0.3)",
    "SGD(lr=0.1, momentum=0.9, nesterov=True)", /* the portable loop on every set */
};

/* Runs 5 steps from the same parameters and gradients; p receives the
 * parameters, then the state (exp_avg, exp_avg_sq) after them. */
static int run(const char *isa, const char *spec, float *out, size_t *len)
{
    cnn_graph *g;
    cnn_optimizer *opt;
    cnn_tensors *st;
    cnn_graph_create(&g);
    cnn_optimizer_create(&opt);
    cnn_tensors_create(&st);
    cnn_shape xs = {2, {3, 37}};
    int ok = !cnn_graph_parse(g, "Linear(37, 29)\nLinear(29, 3)\n", "optim.txt") && !cnn_graph_reset_parameters(g, 5) &&
             !cnn_graph_set_isa(g, isa) && !cnn_graph_plan(g, 1, &xs, NULL, CNN_PLAN_BACKWARD) &&
             !cnn_optimizer_init(opt, g, spec);
    CHECKF(ok, "%s on %s: %s %s", spec, isa, cnn_graph_errmsg(g), cnn_optimizer_errmsg(opt));
    *len = 0;
    for (int step = 0; ok && step < 5; step++) {
        for (int i = 0; i < cnn_graph_param_count(g); i++) {
            cnn_param_info pi;
            cnn_graph_param(g, i, &pi);
            if (pi.kind != CNN_PARAM)
                continue;
            int64_t n = 1;
            for (int d = 0; d < pi.shape.ndim; d++)
                n *= pi.shape.dims[d];
            for (int64_t j = 0; j < n; j++) {
                const int64_t h = (j * 2654435761u + (uint64_t)step * 97 + (uint64_t)i * 13) % 1000;
                pi.grad[j] = h == 0 ? -0.0f : h == 1 ? 0.0f : (float)((h - 500) * pow(10.0, (double)(h % 9) - 6));
            }
        }
        ok = !cnn_optimizer_step(opt);
        CHECKF(ok, "%s: %s", spec, cnn_optimizer_errmsg(opt));
    }
    for (int i = 0; ok && i < cnn_graph_param_count(g); i++) {
        cnn_param_info pi;
        cnn_graph_param(g, i, &pi);
        int64_t n = 1;
        for (int d = 0; d < pi.shape.ndim; d++)
            n *= pi.shape.dims[d];
        memcpy(out + *len, pi.data, sizeof(float) * (size_t)n);
        *len += (size_t)n;
    }
    if (ok && !cnn_optimizer_save_state(opt, st))
        for (int i = 0; i < cnn_tensors_count(st); i++) {
            cnn_tensor_info ti;
            cnn_tensors_get(st, i, &ti);
            if (ti.dtype != CNN_F32)
                continue;
            int64_t n = 1;
            for (int d = 0; d < ti.shape.ndim; d++)
                n *= ti.shape.dims[d];
            memcpy(out + *len, ti.data, sizeof(float) * (size_t)n);
            *len += (size_t)n;
        }
    cnn_tensors_destroy(st);
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    return ok;
}

/* The gradient of element j of parameter i at a step: all magnitudes. */
static float grad_value(int64_t j, int step, int i)
{
    const int64_t h = (j * 2654435761u + (uint64_t)step * 97 + (uint64_t)i * 13) % 1000;
    return h == 0 ? -0.0f : h == 1 ? 0.0f : (float)((h - 500) * pow(10.0, (double)(h % 9) - 6));
}

/* 4 steps of SGD(lr=0.05, momentum=0.9) (adam 0) or Adam(lr=0.001) on a
 * model of 45,753 parameters (chunks of 16,384: the last one partial), with
 * `threads` threads, against the update written out here; the number of
 * values that differ, or -1 if a call failed. */
static long large_model(int adam, int threads)
{
    cnn_graph *g;
    cnn_optimizer *opt;
    cnn_graph_create(&g);
    cnn_optimizer_create(&opt);
    cnn_shape xs = {2, {2, 301}};
    long bad = -1;
    if (cnn_graph_parse(g, "Linear(301, 150)\nLinear(150, 3)\n", "big.txt") || cnn_graph_reset_parameters(g, 3) ||
        cnn_graph_set_threads(g, threads) || cnn_graph_plan(g, 1, &xs, NULL, CNN_PLAN_BACKWARD) ||
        cnn_optimizer_init(opt, g, adam ? "Adam(lr=0.001)" : "SGD(lr=0.05, momentum=0.9)"))
        goto done;
    const int np = cnn_graph_param_count(g);
    float *want[8], *m[8], *v[8];
    int64_t len[8];
    for (int i = 0; i < np && i < 8; i++) {
        cnn_param_info pi;
        cnn_graph_param(g, i, &pi);
        len[i] = 1;
        for (int d = 0; d < pi.shape.ndim; d++)
            len[i] *= pi.shape.dims[d];
        want[i] = malloc(sizeof(float) * (size_t)len[i]);
        m[i] = calloc((size_t)len[i], sizeof(float));
        v[i] = calloc((size_t)len[i], sizeof(float));
        memcpy(want[i], pi.data, sizeof(float) * (size_t)len[i]);
    }
    bad = 0;
    for (int step = 0; step < 4; step++) {
        const double b1 = 0.9, b2 = 0.999, bc1 = 1 - pow(b1, step + 1), bc2 = 1 - pow(b2, step + 1);
        const float neg_step = (float)-(0.001 / bc1), bc2s = (float)sqrt(bc2);
        for (int i = 0; i < np && i < 8; i++) {
            cnn_param_info pi;
            cnn_graph_param(g, i, &pi);
            for (int64_t j = 0; j < len[i]; j++) {
                const float d = pi.grad[j] = grad_value(j, step, i);
                if (adam) {
                    m[i][j] = m[i][j] * (float)b1 + (float)(1 - b1) * d;
                    v[i][j] = v[i][j] * (float)b2 + (float)(1 - b2) * d * d;
                    want[i][j] = want[i][j] + (neg_step * m[i][j]) / (sqrtf(v[i][j]) / bc2s + 1e-8f);
                } else {
                    m[i][j] = step == 0 ? d : m[i][j] * 0.9f + 1.0f * d;
                    want[i][j] = want[i][j] + -0.05f * m[i][j];
                }
            }
        }
        if (cnn_optimizer_step(opt)) {
            bad = -1;
            break;
        }
    }
    /* and cnn_graph_zero_grad (in blocks shared out to the threads) clears
     * every gradient: the parameters' bits then count as wrong if not */
    cnn_graph_zero_grad(g);
    for (int i = 0; i < np && i < 8; i++) {
        cnn_param_info pi;
        cnn_graph_param(g, i, &pi);
        for (int64_t j = 0; bad >= 0 && j < len[i]; j++)
            bad += memcmp((const float *)pi.data + j, &want[i][j], sizeof(float)) != 0 || pi.grad[j] != 0.0f;
        free(want[i]);
        free(m[i]);
        free(v[i]);
    }
done:
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    return bad;
}

int main(void)
{
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    const size_t cap = 20000;
    float *ref = malloc(cap * sizeof(float)), *got = malloc(cap * sizeof(float));
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        size_t nref = 0, ngot = 0;
        if (!run("generic", specs[s], ref, &nref))
            continue;
        for (int k = 1; k <= (int)cnni_cpu_best_isa(); k++) {
            char name[160];
            snprintf(name, sizeof name, "%s: %s gives the portable loop's bits", specs[s], isas[k]);
            TEST(name)
            {
                if (run(isas[k], specs[s], got, &ngot)) {
                    CHECKF(ngot == nref && nref > 1200, "%zu values vs %zu", ngot, nref);
                    size_t bad = 0;
                    for (size_t i = 0; i < nref && i < ngot; i++)
                        bad += memcmp(&ref[i], &got[i], sizeof(float)) != 0;
                    CHECKF(bad == 0, "%zu of %zu values differ", bad, nref);
                }
            }
        }
    }
    for (int adam = 0; adam < 2; adam++)
        for (int threads = 1; threads <= 2; threads++) {
            char name[160];
            snprintf(name, sizeof name, "%s on 45,753 parameters, %d thread%s: the plain loop's bits",
                     adam ? "Adam(lr=0.001)" : "SGD(lr=0.05, momentum=0.9)", threads, threads > 1 ? "s" : "");
            TEST(name)
            {
                const long bad = large_model(adam, threads);
                CHECKF(bad == 0, "%ld values differ (-1: a call failed)", bad);
            }
        }
    free(ref);
    free(got);
    return test_finish();
}
