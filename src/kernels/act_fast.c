/* Elementwise activations: the portable kernel, and the dispatch that picks
 * an instruction set and splits the work. */
#include "act_fast.h"
#include "../core/cpu.h"
#include "../core/pool.h"
#include "pool_fast.h"

#include <math.h>

#define CHUNK 16384 /* elements per task; fixed, so results never depend on threads */

int cnni_act_fast_supported(const cnni_act *a)
{
    switch (a->kind) {
    case CNNI_ACT_RELU:
    case CNNI_ACT_LEAKY_RELU:
    case CNNI_ACT_HARDTANH:
    case CNNI_ACT_HARDSIGMOID:
    case CNNI_ACT_HARDSWISH:
    case CNNI_ACT_SIGMOID:
    case CNNI_ACT_TANH:
    case CNNI_ACT_SILU:
    case CNNI_ACT_ELU:
        return 1;
    default:
        return 0;
    }
}

/* The scalar definitions; the SIMD kernels use them for tails. */
static inline float sigmoidf(float v)
{
    float e = expf(-fabsf(v)), s = 1.0f / (1.0f + e);
    return v >= 0 ? s : e * s;
}

void cnni_act_forward_generic(const cnni_act *a, int64_t n, const float *x, float *y)
{
    const float pa = (float)a->a, pb = (float)a->b;
    switch (a->kind) {
    case CNNI_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
        break;
    case CNNI_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : x[i] * pa;
        break;
    case CNNI_ACT_HARDTANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < pa ? pa : (x[i] > pb ? pb : x[i]);
        break;
    case CNNI_ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) { /* as PyTorch: x + 3 is exact near -3 */
            const float t = x[i] + 3;
            y[i] = (t <= 0 ? 0.0f : (t >= 6 ? 6.0f : t)) / 6;
        }
        break;
    case CNNI_ACT_HARDSWISH:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] <= -3 ? 0.0f : (x[i] >= 3 ? x[i] : x[i] * (x[i] + 3) / 6);
        break;
    case CNNI_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = sigmoidf(x[i]);
        break;
    case CNNI_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case CNNI_ACT_SILU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * sigmoidf(x[i]);
        break;
    case CNNI_ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : pa * expm1f(x[i]);
        break;
    default:
        break;
    }
}

void cnni_act_backward_generic(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                               float *dx)
{
    const float pa = (float)a->a, pb = (float)a->b;
    switch (a->kind) {
    case CNNI_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] = x[i] <= 0 ? 0.0f : dy[i]; /* NaN passes dy, as PyTorch */
        break;
    case CNNI_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] = x[i] > 0 ? dy[i] : dy[i] * pa;
        break;
    case CNNI_ACT_HARDTANH: {
        const float lo = cnni_floor_f(a->a), hi = cnni_ceil_f(a->b);
        for (int64_t i = 0; i < n; i++)
            dx[i] = (x[i] <= lo || x[i] >= hi) ? 0.0f : dy[i];
        break;
    }
    case CNNI_ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++)
            dx[i] = (x[i] > -3 && x[i] < 3) ? dy[i] / 6 : 0.0f;
        break;
    case CNNI_ACT_HARDSWISH:
        for (int64_t i = 0; i < n; i++)
            dx[i] = x[i] < -3 ? 0.0f : (x[i] <= 3 ? dy[i] * ((x[i] / 3) + 0.5f) : dy[i]);
        break;
    case CNNI_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1 - y[i]) * y[i];
        break;
    case CNNI_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1 - y[i] * y[i]);
        break;
    case CNNI_ACT_SILU:
        for (int64_t i = 0; i < n; i++) {
            float s = sigmoidf(x[i]);
            dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
        }
        break;
    case CNNI_ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] = x[i] <= 0 ? dy[i] * (pa * expf(x[i])) : dy[i]; /* from x, as PyTorch */
        break;
    default:
        break;
    }
    (void)pb;
}

/* The instruction set's span functions. */
static cnni_act_fwd_fn forward_for(int isa)
{
    return isa == CNNI_ISA_AVX512 ? cnni_act_forward_avx512
           : isa == CNNI_ISA_AVX2 ? cnni_act_forward_avx2
                                  : cnni_act_forward_generic;
}

static cnni_act_bwd_fn backward_for(int isa)
{
    return isa == CNNI_ISA_AVX512 ? cnni_act_backward_avx512
           : isa == CNNI_ISA_AVX2 ? cnni_act_backward_avx2
                                  : cnni_act_backward_generic;
}

typedef struct {
    const cnni_act *a;
    int64_t n;
    const float *x, *y, *dy;
    float *out;
    cnni_act_fwd_fn fwd;
    cnni_act_bwd_fn bwd;
} job;

static void task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const job *j = ctx;
    int64_t s = t * CHUNK, e = s + CHUNK < j->n ? s + CHUNK : j->n;
    if (j->fwd)
        j->fwd(j->a, e - s, j->x + s, j->out + s);
    else
        j->bwd(j->a, e - s, j->x + s, j->y + s, j->dy + s, j->out + s);
}

void cnni_act_fast_forward(int isa, struct cnni_pool *pool, const cnni_act *a, int64_t n, const float *x,
                           float *y)
{
    job j = {a, n, x, NULL, NULL, y, forward_for(isa), NULL};
    cnni_pool_run_blocked(n >= 4 * CHUNK ? pool : NULL, task, &j, (n + CHUNK - 1) / CHUNK);
}

void cnni_act_fast_backward(int isa, struct cnni_pool *pool, const cnni_act *a, int64_t n, const float *x,
                            const float *y, const float *dy, float *dx)
{
    job j = {a, n, x, y, dy, dx, NULL, backward_for(isa)};
    cnni_pool_run_blocked(n >= 4 * CHUNK ? pool : NULL, task, &j, (n + CHUNK - 1) / CHUNK);
}

/* ---- fused with an average pooling ---- */

/* The activation's job (its dy is the pooled gradient) and the pooling. */
typedef struct {
    job act;
    const cnni_pool_geom *g;
    int isa;
    int64_t planes; /* per task */
    float *p;       /* forward: the pooled output */
} pooled_job;

/* Task t: planes [c0, c1), one at a time so each stays in the first-level
 * cache between the two layers' work on it. f runs over spans that start on
 * multiples of 16 elements, the last one ending at the task's end; a task's
 * planes hold a multiple of 16 elements except the last task's, so every
 * span but the array's last has whole vectors, as in the unfused chunks.
 * Forward, f's span reaches past each plane's end (rounded up) before the
 * plane is pooled; backward, it stops short of it (rounded down), as the
 * next plane's gradient is spread only after. */
static void pooled_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const pooled_job *pj = ctx;
    const job *j = &pj->act;
    const int64_t ip = cnni_pool_in_plane(pj->g), op = cnni_pool_out_plane(pj->g);
    const int64_t c0 = t * pj->planes, c1 = c0 + pj->planes < pj->g->NC ? c0 + pj->planes : pj->g->NC;
    const int64_t start = c0 * ip, end = c1 * ip, round = j->fwd ? 15 : 0;
    int64_t done = start;
    for (int64_t c = c0; c < c1; c++) {
        int64_t to = c + 1 == c1 ? end : start + (((c + 1) * ip - start + round) & ~(int64_t)15);
        if (to > end)
            to = end;
        if (j->fwd) {
            if (to > done)
                j->fwd(j->a, to - done, j->x + done, j->out + done);
            cnni_pool_fast_avg_plane(pj->isa, pj->g, j->out + c * ip, pj->p + c * op);
        } else {
            cnni_pool_fast_avg_plane_backward(pj->isa, pj->g, j->dy + c * op, j->out + c * ip);
            if (to > done) /* in place: dx holds the spread gradient */
                j->bwd(j->a, to - done, j->x + done, j->y + done, j->out + done, j->out + done);
        }
        if (to > done)
            done = to;
    }
}

/* Planes per task: about CHUNK elements, a multiple of 16 in all. */
static void run_pooled(pooled_job *j, struct cnni_pool *pool)
{
    const int64_t ip = cnni_pool_in_plane(j->g), n = j->g->NC * ip;
    int64_t gcd = 16, b = ip % 16;
    while (b) {
        const int64_t r = gcd % b;
        gcd = b;
        b = r;
    }
    const int64_t step = 16 / gcd; /* planes whose elements make a multiple of 16 */
    int64_t planes = ip > 0 ? CHUNK / ip : 1;
    planes = planes < 1 ? step : (planes + step - 1) / step * step;
    j->planes = planes;
    const int64_t tasks = (j->g->NC + planes - 1) / planes;
    cnni_pool_run(n >= 4 * CHUNK ? pool : NULL, pooled_task, j, tasks);
}

void cnni_act_fast_forward_avgpool(int isa, struct cnni_pool *pool, const cnni_act *a, const cnni_pool_geom *g,
                                   const float *x, float *y, float *p)
{
    pooled_job j = {{a, 0, x, NULL, NULL, y, forward_for(isa), NULL}, g, isa, 0, p};
    run_pooled(&j, pool);
}

void cnni_act_fast_backward_avgpool(int isa, struct cnni_pool *pool, const cnni_act *a, const cnni_pool_geom *g,
                                    const float *x, const float *y, const float *dp, float *dx)
{
    pooled_job j = {{a, 0, x, y, dp, dx, NULL, backward_for(isa)}, g, isa, 0, NULL};
    run_pooled(&j, pool);
}
