/* Adaptive thread use (src/core/adapt.c): the controller fed with
 * synthetic step times, a machine whose second core comes and goes, and a
 * graph trained with it on: the same weights, bit for bit, as with fixed
 * threads, whatever mix of widths the steps ran on. */
#include "test.h"
#include "core/adapt.h"

#include <stdint.h>

/* Synthetic step times (us per sample): wide and single, with +-3% noise
 * from a fixed generator, so every run of the test sees the same times. */
static uint64_t noise_state;
static double noisy(double us)
{
    noise_state = noise_state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = (double)(noise_state >> 11) / 9007199254740992.0; /* [0, 1) */
    return us * (0.97 + 0.06 * u) * 1e-6;
}

typedef struct {
    int64_t steps, single_steps, first_single, last_wide;
} run_stats;

/* Runs steps [from, to) of a machine where a wide step takes wide_us and a
 * single one single_us. */
static void run_phase(cnni_adapt *a, int64_t from, int64_t to, double wide_us, double single_us, run_stats *s)
{
    for (int64_t i = from; i < to; i++) {
        const int th = cnni_adapt_threads(a);
        if (th == 1) {
            s->single_steps++;
            if (s->first_single < 0)
                s->first_single = i;
        } else {
            s->last_wide = i;
        }
        s->steps++;
        cnni_adapt_record(a, noisy(th == 1 ? single_us : wide_us));
    }
}

static void controller_tests(void)
{
    TEST("one thread: nothing to choose, every step on one thread")
    {
        cnni_adapt a;
        cnni_adapt_init(&a, 1);
        for (int i = 0; i < 100; i++) {
            CHECK(cnni_adapt_threads(&a) == 1);
            cnni_adapt_record(&a, noisy(i % 2 ? 10 : 30));
        }
        CHECK(a.switches == 0);
    }
    TEST("two free cores (wide 17 us, single 30 us): stays wide; after the first probe, one every "
         "1024 steps (the jump would call one sooner)")
    {
        noise_state = 1;
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        run_stats s = {0, 0, -1, -1};
        run_phase(&a, 0, 1000, 17, 30, &s);
        CHECKF(a.switches == 0, "%lld switches", (long long)a.switches);
        /* probes at steps 19 and then 1045 (1024 + the probe's 2 apart), 2071 */
        CHECKF(s.single_steps == 1 * CNNI_ADAPT_PROBE, "%lld single steps", (long long)s.single_steps);
        CHECK(a.interval == CNNI_ADAPT_BACKSTOP);
        run_phase(&a, 1000, 2070, 17, 30, &s);
        CHECKF(s.single_steps == 2 * CNNI_ADAPT_PROBE && a.switches == 0, "%lld single steps by step 2070",
               (long long)s.single_steps);
        CHECK(a.steps[0] + a.steps[1] == 2070 && a.steps[1] == s.single_steps);
        /* the first probe: after the warm-up and one interval */
        CHECKF(s.first_single == CNNI_ADAPT_WARMUP + CNNI_ADAPT_MIN_INTERVAL, "first single step %lld",
               (long long)s.first_single);
    }
    TEST("one thread only 20% slower (wide 17 us, single 20.4 us): the interval doubles from 16, "
         "probes at steps 19, 53, 119, 249, 507 and 765")
    {
        noise_state = 6;
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        run_stats s = {0, 0, -1, -1};
        run_phase(&a, 0, 1000, 17, 20.4, &s);
        CHECK(a.switches == 0);
        CHECKF(s.single_steps == 6 * CNNI_ADAPT_PROBE, "%lld single steps", (long long)s.single_steps);
    }
    TEST("one shared core from the start (wide 25 us, single 20 us): one thread after the first probe, "
         "wide probes under 6%")
    {
        noise_state = 2;
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        run_stats s = {0, 0, -1, -1};
        run_phase(&a, 0, 1000, 25, 20, &s);
        CHECK(a.switches == 1);
        CHECK(s.first_single == CNNI_ADAPT_WARMUP + CNNI_ADAPT_MIN_INTERVAL);
        CHECKF(1000 - s.single_steps <= 60, "%lld wide steps", (long long)(1000 - s.single_steps));
        CHECK(cnni_adapt_threads(&a) == 1 || a.probing);
    }
    TEST("a one-core phase comes and goes: one thread within 6 steps of its start, wide again within "
         "70 steps of its end")
    {
        noise_state = 3;
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        run_stats s1 = {0, 0, -1, -1}, s2 = {0, 0, -1, -1};
        run_phase(&a, 0, 600, 17, 30, &s1);
        CHECK(a.switches == 0);
        /* the wide steps double: the rise calls a probe at once */
        run_phase(&a, 600, 1200, 34, 28, &s2);
        CHECKF(s2.first_single >= 0 && s2.first_single <= 606, "first single step %lld",
               (long long)s2.first_single);
        CHECKF(s2.single_steps >= 540, "%lld of 600 single", (long long)s2.single_steps);
        CHECK(a.switches == 1);
        /* back to two cores: the next probe of the wide mode finds it */
        int64_t back = -1;
        for (int64_t i = 1200; i < 1500; i++) {
            const int th = cnni_adapt_threads(&a);
            if (th == 2 && !a.probing && back < 0)
                back = i;
            cnni_adapt_record(&a, noisy(th == 1 ? 30 : 17));
        }
        CHECKF(back >= 1200 && back <= 1270, "settled wide again at step %lld", (long long)back);
        CHECK(a.switches == 2);
    }
    TEST("a lone slow step (a page fault, an interrupt) neither probes nor swaps")
    {
        noise_state = 4;
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        for (int i = 0; i < CNNI_ADAPT_WARMUP + 10; i++)
            cnni_adapt_record(&a, noisy(17));
        const int64_t single = a.steps[1];
        cnni_adapt_record(&a, noisy(170));
        CHECK(!a.probing);
        cnni_adapt_record(&a, noisy(17));
        CHECK(!a.probing && a.steps[1] == single && a.switches == 0);
    }
    TEST("a mode that is not faster (one thread 2% slower) is never taken, through noise of +-3%")
    {
        noise_state = 5;
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        run_stats s = {0, 0, -1, -1};
        run_phase(&a, 0, 2000, 19, 19.4, &s);
        CHECK(a.switches == 0);
    }
    TEST("NaN and negative times are ignored")
    {
        cnni_adapt a;
        cnni_adapt_init(&a, 2);
        for (int i = 0; i < 200; i++)
            cnni_adapt_record(&a, i % 2 ? NAN : -1.0);
        CHECK(a.nrecent == 0 && a.switches == 0 && cnni_adapt_threads(&a) == 2);
    }
}

/* LeNet-like model trained `steps` steps on fixed pseudo-random data with
 * `threads` threads, adaptive or not; the parameters are copied to out
 * (n floats at most). Returns the number of floats, or -1. */
static const char *MODEL = "Conv2d(1, 6, 5, padding=2)\nSigmoid()\nAvgPool2d(2)\nConv2d(6, 16, 5)\nSigmoid()\n"
                           "AvgPool2d(2)\nFlatten()\nLinear(400, 120)\nSigmoid()\nLinear(120, 10)\n";
static long train(int threads, int adaptive, int steps, float *out, long n, int64_t *wide, int64_t *single)
{
    cnn_graph *g;
    cnn_optimizer *opt;
    cnn_graph_create(&g);
    cnn_optimizer_create(&opt);
    cnn_shape shapes[2] = {{4, {16, 1, 28, 28}}, {1, {16}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    long got = -1;
    if (cnn_graph_parse(g, MODEL, "lenet.txt") || cnn_graph_set_loss(g, "CrossEntropyLoss()") ||
        cnn_graph_reset_parameters(g, 5) || cnn_graph_set_threads(g, threads) ||
        cnn_graph_set_adaptive_threads(g, adaptive) || cnn_optimizer_init(opt, g, "SGD(lr=0.1, momentum=0.9)") ||
        cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD))
        goto done;
    float *x = cnn_graph_input_data(g, 0);
    int64_t *y = cnn_graph_input_data(g, 1);
    uint64_t st = 99;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 16 * 28 * 28; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = (float)((st >> 40) & 0xffff) / 65536.0f - 0.5f;
        }
        for (int i = 0; i < 16; i++)
            y[i] = (i * 7 + s) % 10;
        cnn_graph_zero_grad(g);
        if (cnn_graph_forward(g, 1) || cnn_graph_backward(g) || cnn_optimizer_step(opt))
            goto done;
    }
    got = 0;
    for (int i = 0; i < cnn_graph_param_count(g); i++) {
        cnn_param_info pi;
        cnn_graph_param(g, i, &pi);
        int64_t len = 1;
        for (int d = 0; d < pi.shape.ndim; d++)
            len *= pi.shape.dims[d];
        for (int64_t j = 0; j < len && got < n; j++)
            out[got++] = ((const float *)pi.data)[j];
    }
    cnn_graph_thread_steps(g, wide, single);
done:
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    return got;
}

static void graph_tests(void)
{
    enum { STEPS = 40, MAXP = 70000 };
    float *a = malloc(sizeof(float) * MAXP), *b = malloc(sizeof(float) * MAXP), *c = malloc(sizeof(float) * MAXP);
    int64_t w1, s1, w2, s2, w3, s3;
    const long na = train(1, 0, STEPS, a, MAXP, &w1, &s1);
    const long nb = train(2, 0, STEPS, b, MAXP, &w2, &s2);
    const long nc = train(2, 1, STEPS, c, MAXP, &w3, &s3);
    TEST("graph: adaptive thread use trains to the same weights, bit for bit, as 1 and 2 fixed threads")
    {
        CHECK(na > 0 && na == nb && na == nc);
        if (na > 0 && na == nb && na == nc) {
            CHECK(!memcmp(a, b, sizeof(float) * (size_t)na));
            CHECK(!memcmp(a, c, sizeof(float) * (size_t)na));
        }
    }
    TEST("graph: every training step is counted; a probe ran steps on one thread; fixed threads count none")
    {
        CHECKF(w3 + s3 == STEPS, "wide %lld + single %lld", (long long)w3, (long long)s3);
        CHECKF(s3 >= CNNI_ADAPT_PROBE, "%lld single steps", (long long)s3);
        CHECK(w2 == 0 && s2 == 0 && w1 == 0 && s1 == 0);
    }
    TEST("graph: cnn_graph_set_adaptive_threads and cnn_graph_thread_steps reject NULL")
    {
        int64_t w, s;
        CHECK(cnn_graph_set_adaptive_threads(NULL, 1) == CNN_ERR_ARGUMENT);
        CHECK(cnn_graph_thread_steps(NULL, &w, &s) == CNN_ERR_ARGUMENT);
    }
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    controller_tests();
    graph_tests();
    return test_finish();
}
