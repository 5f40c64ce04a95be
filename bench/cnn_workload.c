/* Times one workload with the cnn library and prints the median seconds as
 * JSON, for bench/run.py to set beside PyTorch's:
 *   cnn_workload layer MODEL C,H,W BATCH THREADS[,THREADS...] REPS [train]
 *   cnn_workload gemm N THREADS REPS [openblas]
 *   cnn_workload fma ROUNDS
 * "layer" runs forward (and backward with "train") of a one-layer model.
 * "fma" times a fixed count of independent FMAs (the widest vectors the
 * CPU has) on one thread and split over two, the rounds alternating: how
 * much a second thread adds to FMA-bound work at the moment, which on a
 * shared virtual machine is not always 2x. "layer" with several thread
 * counts runs that check before each round of steps and after the last,
 * and prints them beside the first two counts' speedup round by round. */
#include "cnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef CNN_BENCH_OPENBLAS
#include <cblas.h>
#endif

#include "kernels/gemm.h"
#include "core/cpu.h"
#include "core/pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0, n), which is left in its order: the per-step figures
 * are paired by index after it. */
static double median(const double *v, int n)
{
    double *c = malloc(sizeof(double) * (size_t)n);
    if (!c)
        return NAN;
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof *c, cmp);
    const double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* One planned one-layer graph and its output's element count. */
typedef struct {
    cnn_graph *g;
    int64_t on;
} bench_graph;

static int layer_setup(bench_graph *bg, const char *model, const cnn_shape *xs, int threads, int train)
{
    cnn_graph *g;
    cnn_graph_create(&g);
    bg->g = g;
    /* CNN_BENCH_ISA (generic, avx2, avx512) measures a narrower instruction set's kernels. */
    const char *isa = getenv("CNN_BENCH_ISA");
    if (cnn_graph_parse(g, model, "bench") || cnn_graph_set_threads(g, threads) ||
        (isa && cnn_graph_set_isa(g, isa)) ||
        cnn_graph_plan(g, 1, xs, NULL, train ? CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD : 0)) {
        fprintf(stderr, "%s\n", cnn_graph_errmsg(g));
        return 1;
    }
    int64_t n = 1;
    for (int d = 0; d < xs->ndim; d++)
        n *= xs->dims[d];
    float *x = cnn_graph_input_data(g, 0);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    cnn_shape os;
    cnn_graph_output(g, 0, NULL, &os, NULL);
    bg->on = 1;
    for (int d = 0; d < os.ndim; d++)
        bg->on *= os.dims[d];
    return 0;
}

/* The seconds of one step: forward, and backward with train; -1 on error. */
static double layer_step(bench_graph *bg, int train)
{
    cnn_graph *g = bg->g;
    double t0 = now();
    cnn_graph_forward(g, train);
    double el = now() - t0;
    if (train) {
        /* The output's gradient is given, as PyTorch's side passes a
         * ready tensor to backward: filling it is not timed. */
        float *gy = cnn_graph_output_grad(g, 0);
        for (int64_t i = 0; i < bg->on; i++)
            gy[i] = 1e-3f;
        t0 = now();
        cnn_graph_zero_grad(g);
        if (cnn_graph_backward(g)) {
            fprintf(stderr, "%s\n", cnn_graph_errmsg(g));
            return -1;
        }
        el += now() - t0;
    }
    return el;
}

/* One task of the FMA probe: 8 independent chains of FMAs. */
#define FMA_STEPS 200000
static float fma_sink[64 * 16];


#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void fma_avx512(float *out)
{
    __m512 a[8];
    const __m512 m = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
    for (int j = 0; j < 8; j++)
        a[j] = _mm512_set1_ps((float)j);
    for (int i = 0; i < FMA_STEPS; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            a[j] = _mm512_fmadd_ps(a[j], m, b);
    }
    for (int j = 1; j < 8; j++)
        a[0] = _mm512_add_ps(a[0], a[j]);
    _mm512_storeu_ps(out, a[0]);
}

__attribute__((target("avx2,fma"))) static void fma_avx2(float *out)
{
    __m256 a[8];
    const __m256 m = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
    for (int j = 0; j < 8; j++)
        a[j] = _mm256_set1_ps((float)j);
    for (int i = 0; i < FMA_STEPS; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            a[j] = _mm256_fmadd_ps(a[j], m, b);
    }
    for (int j = 1; j < 8; j++)
        a[0] = _mm256_add_ps(a[0], a[j]);
    _mm256_storeu_ps(out, a[0]);
}
#endif

static void fma_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const cnni_isa isa = *(const cnni_isa *)ctx;
    float *out = fma_sink + 16 * (t % 64);
#if defined(__x86_64__)
    if (isa == CNNI_ISA_AVX512) {
        fma_avx512(out);
        return;
    }
    if (isa == CNNI_ISA_AVX2) {
        fma_avx2(out);
        return;
    }
#endif
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int i = 0; i < FMA_STEPS; i++)
        for (int j = 0; j < 8; j++)
            a[j] = a[j] * 0.999f + 0.001f;
    for (int j = 0; j < 8; j++)
        out[j] = a[j];
}

/* The ISA the FMA probe uses: the best one, or AVX2 under CNN_BENCH_ISA=avx2. */
static cnni_isa probe_isa(void)
{
    cnni_isa isa = cnni_cpu_best_isa();
    const char *isa_s = getenv("CNN_BENCH_ISA");
    if (isa_s && !strcmp(isa_s, "avx2") && isa > CNNI_ISA_AVX2)
        isa = CNNI_ISA_AVX2;
    return isa;
}

/* One round of the FMA probe: the seconds of the 8 tasks on the calling
 * thread alone (t1) and on pool's two threads (t2). */
static void fma_round(cnni_pool *pool, cnni_isa isa, double *t1, double *t2)
{
    double a = now();
    cnni_pool_run(NULL, fma_task, &isa, 8);
    double b = now();
    cnni_pool_run(pool, fma_task, &isa, 8);
    *t1 = b - a;
    *t2 = now() - b;
}

/* How much a second thread adds to FMAs right now, after a pause that
 * lets the workers of the graph timed last stop spinning. */
static double fma_scaling_now(cnni_pool *pool, cnni_isa isa)
{
    struct timespec pause = {0, 4000000};
    nanosleep(&pause, NULL);
    double t1, t2;
    fma_round(pool, isa, &t1, &t2);
    return t1 / t2;
}

/* THREADS is one count, or several separated by commas: one graph each, and
 * their steps taken in turn, so that a slow phase of the machine falls on
 * all of them alike (for thread scaling). "seconds" is the first count's. */
static int layer(int argc, char **argv)
{
    if (argc < 7)
        return 2;
    const char *model = argv[2];
    long long dims[8];
    int nd = 0;
    for (char *p = argv[3]; *p && nd < 7;) {
        dims[nd++] = strtoll(p, &p, 10);
        if (*p == ',')
            p++;
    }
    int counts[8], ng = 0;
    for (char *p = argv[5]; *p && ng < 8;) {
        counts[ng++] = (int)strtol(p, &p, 10);
        if (*p == ',')
            p++;
    }
    int batch = atoi(argv[4]), reps = atoi(argv[6]);
    int train = argc > 7 && !strcmp(argv[7], "train");
    if (ng < 1 || reps < 1)
        return 2;
    cnn_shape xs = {nd + 1, {0}};
    xs.dims[0] = batch;
    for (int d = 0; d < nd; d++)
        xs.dims[d + 1] = dims[d];
    bench_graph bg[8];
    double *t = malloc(sizeof(double) * (size_t)reps * (size_t)ng);
    int rc = t ? 0 : 1;
    int made = 0;
    for (; made < ng && !rc; made++)
        rc = layer_setup(&bg[made], model, &xs, counts[made], train);
    /* With several thread counts, an FMA check before each round of steps
     * and after the last tells the rounds in which the machine had two
     * free cores (see the file comment). */
    cnni_pool *probe = NULL;
    const cnni_isa isa = probe_isa();
    double *fma = ng > 1 && !rc ? malloc(sizeof(double) * (size_t)(reps + 1)) : NULL;
    if (fma && cnni_pool_create(&probe, 2))
        rc = 1;
    for (int r = -2; r < reps && !rc; r++) {
        if (fma && r >= 0)
            fma[r] = fma_scaling_now(probe, isa);
        for (int i = 0; i < ng && !rc; i++) {
            double el = layer_step(&bg[i], train);
            if (el < 0)
                rc = 1;
            else if (r >= 0)
                t[i * reps + r] = el;
        }
    }
    if (fma && !rc)
        fma[reps] = fma_scaling_now(probe, isa);
    if (!rc) {
        cnn_graph *g = bg[0].g;
        int64_t macs = 0;
        for (int i = 0; i < cnn_graph_layer_count(g); i++) {
            cnn_layer_info li;
            cnn_graph_layer(g, i, &li);
            macs += li.macs;
        }
        printf("{\"seconds\": %.6e, \"macs\": %lld, \"isa\": \"%s\"", median(t, reps), (long long)macs,
               cnn_graph_isa(g));
        if (ng > 1) {
            printf(", \"threads\": [");
            for (int i = 0; i < ng; i++)
                printf("%s%d", i ? ", " : "", counts[i]);
            printf("], \"seconds_by_threads\": [");
            for (int i = 0; i < ng; i++)
                printf("%s%.6e", i ? ", " : "", median(t + i * reps, reps));
            printf("]");
            /* the FMA check before each round of steps and after the last,
             * and the first two counts' ratio round by round (bench/run.py
             * keeps the rounds it calls two-core) */
            if (fma) {
                printf(", \"fma_scaling_by_step\": [");
                for (int r = 0; r <= reps; r++)
                    printf("%s%.3f", r ? ", " : "", fma[r]);
                printf("], \"speedup_by_step\": [");
                for (int r = 0; r < reps; r++)
                    printf("%s%.4f", r ? ", " : "", t[r] / t[reps + r]);
                printf("], \"seconds_by_step\": [");
                for (int i = 0; i < ng; i++) {
                    printf("%s[", i ? ", " : "");
                    for (int r = 0; r < reps; r++)
                        printf("%s%.6e", r ? ", " : "", t[i * reps + r]);
                    printf("]");
                }
                printf("]");
            }
        }
        printf("}\n");
    }
    for (int i = 0; i < made; i++)
        cnn_graph_destroy(bg[i].g);
    if (probe)
        cnni_pool_destroy(probe);
    free(fma);
    free(t);
    return rc;
}

static int gemm(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    int n = atoi(argv[2]), reps = atoi(argv[4]);
    int blas = argc > 5 && !strcmp(argv[5], "openblas");
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n);
    float *c = malloc(sizeof(float) * (size_t)n * n);
    for (int64_t i = 0; i < (int64_t)n * n; i++) {
        a[i] = (float)(i % 7) / 7;
        b[i] = (float)(i % 5) / 5;
    }
    /* CNN_BENCH_ISA narrows the instruction set as for the layers */
    const char *isa_s = getenv("CNN_BENCH_ISA");
    cnni_isa isa = cnni_cpu_best_isa();
    if (isa_s && !strcmp(isa_s, "avx2") && isa > CNNI_ISA_AVX2)
        isa = CNNI_ISA_AVX2;
    else if (isa_s && !strcmp(isa_s, "generic"))
        isa = CNNI_ISA_GENERIC;
    const cnni_gemm_kernel *k = cnni_gemm_kernel_for(isa);
    void *s = malloc(cnni_gemm_scratch_bytes(k));
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = op.N = op.K = n;
    op.a = a;
    op.lda = n;
    op.b = b;
    op.ldb = n;
    op.c = c;
    op.ldc = n;
#ifdef CNN_BENCH_OPENBLAS
    openblas_set_num_threads(1);
#endif
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        if (blas) {
#ifdef CNN_BENCH_OPENBLAS
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
#else
            fprintf(stderr, "built without OpenBLAS\n");
            return 1;
#endif
        } else {
            cnni_gemm(k, &op, 0, n, s);
        }
        if (r >= 0)
            t[r] = now() - t0;
    }
    printf("{\"seconds\": %.6e, \"macs\": %lld, \"isa\": \"%s\"}\n", median(t, reps), (long long)n * n * n,
           cnni_isa_name(isa));
    return 0;
}

static int fma_probe(int argc, char **argv)
{
    const int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (rounds < 1 || rounds > 1000)
        return 2;
    const cnni_isa isa = probe_isa();
    cnni_pool *pool;
    if (cnni_pool_create(&pool, 2))
        return 1;
    double *t1 = malloc(sizeof(double) * (size_t)rounds), *t2 = malloc(sizeof(double) * (size_t)rounds);
    int rc = t1 && t2 ? 0 : 1;
    for (int r = 0; r < rounds && !rc; r++)
        fma_round(pool, isa, &t1[r], &t2[r]);
    if (!rc)
        printf("{\"one_thread\": %.6e, \"two_threads\": %.6e, \"isa\": \"%s\"}\n", median(t1, rounds),
               median(t2, rounds), cnni_isa_name(isa));
    cnni_pool_destroy(pool);
    free(t1);
    free(t2);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "layer"))
        return layer(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "gemm"))
        return gemm(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "fma"))
        return fma_probe(argc, argv);
    fprintf(stderr, "usage: cnn_workload layer MODEL C,H,W BATCH THREADS[,THREADS...] REPS [train]\n"
                    "       cnn_workload gemm N THREADS REPS [openblas]\n"
                    "       cnn_workload fma ROUNDS\n");
    return 2;
}
