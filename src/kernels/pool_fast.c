/* Pooling split over planes; see pool_fast.h. */
#include "pool_fast.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <math.h>
#include <string.h>

/* Planes per task: about 64K elements, at least one plane. */
static int64_t chunk_planes(int64_t plane)
{
    int64_t c = plane > 0 ? 65536 / plane : 65536;
    return c < 1 ? 1 : c;
}

/* A plain 2-d window with stride = kernel, no padding or dilation, windows
 * inside the input: the pooling CNNs use most (MaxPool2d(2), AvgPool2d(2)). */
static int simple_2d(const cnni_pool_geom *g)
{
    return g->in[0] == 1 && g->out[0] == 1 && g->k[0] == 1 && g->p[1] == 0 && g->p[2] == 0 &&
           g->d[1] == 1 && g->d[2] == 1 && g->s[1] == g->k[1] && g->s[2] == g->k[2] &&
           g->out[1] * g->k[1] <= g->in[1] && g->out[2] * g->k[2] <= g->in[2] && g->divisor == 0;
}

typedef struct {
    const cnni_pool_geom *g;
    const float *x;
    float *y;
    int64_t *idx;
    int64_t planes;   /* per task */
    int kind;         /* 0 max forward, 1 avg forward, 2 avg backward */
    int isa;
    int64_t NC, in_plane, out_plane;
    const int64_t *cidx;
} job;

/* Whether the windows are 2x2 with stride 2 (simple_2d holds). */
static int two_by_two(const cnni_pool_geom *g) { return g->k[1] == 2 && g->k[2] == 2; }

/* The instruction set's 2x2 rows (pool_fast.h); each returns the outputs done. */
static int64_t avg_row(int isa, int64_t OW, const float *r0, const float *r1, float *y)
{
    return isa == CNNI_ISA_AVX512 ? cnni_pool2_avg_row_avx512(OW, r0, r1, y)
           : isa == CNNI_ISA_AVX2 ? cnni_pool2_avg_row_avx2(OW, r0, r1, y)
                                  : 0;
}

static int64_t avg_row_backward(int isa, int64_t OW, const float *dy, float *d0, float *d1)
{
    return isa == CNNI_ISA_AVX512 ? cnni_pool2_avg_row_backward_avx512(OW, dy, d0, d1)
           : isa == CNNI_ISA_AVX2 ? cnni_pool2_avg_row_backward_avx2(OW, dy, d0, d1)
                                  : 0;
}

static int64_t max_row(int isa, int64_t OW, const float *r0, const float *r1, int64_t at0, int64_t W, float *y,
                       int64_t *idx)
{
    return isa == CNNI_ISA_AVX512 ? cnni_pool2_max_row_avx512(OW, r0, r1, at0, W, y, idx)
           : isa == CNNI_ISA_AVX2 ? cnni_pool2_max_row_avx2(OW, r0, r1, at0, W, y, idx)
                                  : 0;
}

static void max_plane_simple(int isa, const cnni_pool_geom *g, const float *xc, float *yc, int64_t *ic)
{
    const int64_t kh = g->k[1], kw = g->k[2], W = g->in[2], OW = g->out[2];
    const int vec = two_by_two(g);
    for (int64_t oy = 0; oy < g->out[1]; oy++)
        for (int64_t ox = vec ? max_row(isa, OW, xc + 2 * oy * W, xc + (2 * oy + 1) * W, 2 * oy * W, W, yc + oy * OW,
                                        ic ? ic + oy * OW : NULL)
                              : 0;
             ox < OW; ox++) {
            int64_t at = oy * kh * W + ox * kw, best = at;
            float m = -INFINITY;
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++) {
                    int64_t p = at + a * W + b;
                    float v = xc[p];
                    if (v > m || v != v) {
                        m = v;
                        best = p;
                    }
                }
            yc[oy * OW + ox] = m;
            if (ic)
                ic[oy * OW + ox] = best;
        }
}

static void avg_plane_simple(int isa, const cnni_pool_geom *g, const float *xc, float *yc)
{
    const int64_t kh = g->k[1], kw = g->k[2], W = g->in[2], OW = g->out[2];
    if (isa == CNNI_ISA_AVX512 && two_by_two(g)) {
        cnni_pool2_avg_plane_avx512(g->in[1], W, g->out[1], OW, xc, yc);
        return;
    }
    const float inv = 1.0f / (float)(kh * kw);
    const int vec = two_by_two(g);
    for (int64_t oy = 0; oy < g->out[1]; oy++)
        for (int64_t ox = vec ? avg_row(isa, OW, xc + 2 * oy * W, xc + (2 * oy + 1) * W, yc + oy * OW) : 0;
             ox < OW; ox++) {
            const float *p = xc + oy * kh * W + ox * kw;
            float s = 0;
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++)
                    s += p[a * W + b];
            yc[oy * OW + ox] = s * inv;
        }
}

static void avg_plane_simple_backward(int isa, const cnni_pool_geom *g, const float *dyc, float *dxc)
{
    const int64_t kh = g->k[1], kw = g->k[2], W = g->in[2], OW = g->out[2];
    if (isa == CNNI_ISA_AVX512 && two_by_two(g)) {
        cnni_pool2_avg_plane_backward_avx512(g->in[1], W, g->out[1], OW, dyc, dxc);
        return;
    }
    const float inv = 1.0f / (float)(kh * kw);
    const int vec = two_by_two(g);
    memset(dxc, 0, sizeof(float) * (size_t)cnni_pool_in_plane(g));
    for (int64_t oy = 0; oy < g->out[1]; oy++)
        for (int64_t ox = vec ? avg_row_backward(isa, OW, dyc + oy * OW, dxc + 2 * oy * W, dxc + (2 * oy + 1) * W)
                              : 0;
             ox < OW; ox++) {
            float v = dyc[oy * OW + ox] * inv;
            float *p = dxc + oy * kh * W + ox * kw;
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++)
                    p[a * W + b] = v;
        }
}

int cnni_pool_fast_planewise(const cnni_pool_geom *g) { return simple_2d(g); }

void cnni_pool_fast_avg_plane(int isa, const cnni_pool_geom *g, const float *x, float *y)
{
    avg_plane_simple(isa, g, x, y);
}

void cnni_pool_fast_avg_plane_backward(int isa, const cnni_pool_geom *g, const float *dy, float *dx)
{
    avg_plane_simple_backward(isa, g, dy, dx);
}

void cnni_pool_fast_max_plane(int isa, const cnni_pool_geom *g, const float *x, float *y, int64_t *idx)
{
    max_plane_simple(isa, g, x, y, idx);
}

void cnni_pool_fast_argmax_plane_backward(int64_t in_plane, int64_t out_plane, const float *dy,
                                          const int64_t *idx, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)in_plane);
    for (int64_t i = 0; i < out_plane; i++)
        if (idx[i] >= 0 && idx[i] < in_plane)
            dx[idx[i]] += dy[i];
}

int cnni_pool_fast_two_by_two(const cnni_pool_geom *g) { return simple_2d(g) && two_by_two(g); }

void cnni_pool_fast_max2_plane(int isa, const cnni_pool_geom *g, const float *x, float *y, uint8_t *code)
{
    const int64_t W = g->in[2], OW = g->out[2];
    if (isa == CNNI_ISA_AVX512) {
        cnni_pool2_max_plane_code_avx512(g->in[1], W, g->out[1], OW, x, y, code);
        return;
    }
    if (isa == CNNI_ISA_AVX2) {
        cnni_pool2_max_plane_code_avx2(g->in[1], W, g->out[1], OW, x, y, code);
        return;
    }
    for (int64_t oy = 0; oy < g->out[1]; oy++) {
        const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
        float *yr = y + oy * OW;
        uint8_t *cr = code + oy * OW;
        for (int64_t ox = 0; ox < OW; ox++) {
            const float c[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
            float m = -INFINITY;
            int best = 0;
            for (int k = 0; k < 4; k++)
                if (c[k] > m || c[k] != c[k]) {
                    m = c[k];
                    best = k;
                }
            yr[ox] = m;
            cr[ox] = (uint8_t)best;
        }
    }
}

void cnni_pool_fast_max2_plane_backward(int isa, const cnni_pool_geom *g, const float *dy, const uint8_t *code,
                                        float *dx)
{
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    if (isa == CNNI_ISA_AVX512) {
        cnni_pool2_max_plane_backward_avx512(H, W, OH, OW, dy, code, dx);
        return;
    }
    if (isa == CNNI_ISA_AVX2) {
        cnni_pool2_max_plane_backward_avx2(H, W, OH, OW, dy, code, dx);
        return;
    }
    for (int64_t oy = 0; oy < OH; oy++) {
        float *d0 = dx + 2 * oy * W, *d1 = d0 + W;
        const float *dr = dy + oy * OW;
        const uint8_t *cr = code + oy * OW;
        for (int64_t ox = 0; ox < OW; ox++) {
            const float v = 0.0f + dr[ox];
            d0[2 * ox] = cr[ox] == 0 ? v : 0.0f;
            d0[2 * ox + 1] = cr[ox] == 1 ? v : 0.0f;
            d1[2 * ox] = cr[ox] == 2 ? v : 0.0f;
            d1[2 * ox + 1] = cr[ox] == 3 ? v : 0.0f;
        }
        for (int64_t x = 2 * OW; x < W; x++)
            d0[x] = d1[x] = 0.0f; /* a column in no window */
    }
    if (2 * OH < H)
        memset(dx + 2 * OH * W, 0, sizeof(float) * (size_t)((H - 2 * OH) * W));
}

static void task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const job *j = ctx;
    const cnni_pool_geom *g = j->g;
    int64_t c0 = t * j->planes, c1 = c0 + j->planes < j->NC ? c0 + j->planes : j->NC;
    const int64_t ip = j->in_plane, op = j->out_plane;
    if (j->kind == 3) {
        for (int64_t c = c0; c < c1; c++)
            cnni_pool_fast_argmax_plane_backward(ip, op, j->x + c * op, j->cidx + c * op, j->y + c * ip);
        return;
    }
    if (simple_2d(g)) {
        for (int64_t c = c0; c < c1; c++) {
            if (j->kind == 0)
                max_plane_simple(j->isa, g, j->x + c * ip, j->y + c * op, j->idx ? j->idx + c * op : NULL);
            else if (j->kind == 1)
                avg_plane_simple(j->isa, g, j->x + c * ip, j->y + c * op);
            else
                avg_plane_simple_backward(j->isa, g, j->x + c * op, j->y + c * ip);
        }
        return;
    }
    /* Anything else: the reference kernel on this task's planes. */
    cnni_pool_geom sub = *g;
    sub.NC = c1 - c0;
    if (j->kind == 0)
        cnni_ref_maxpool_forward_f32(&sub, j->x + c0 * ip, j->y + c0 * op, j->idx ? j->idx + c0 * op : NULL);
    else if (j->kind == 1)
        cnni_ref_avgpool_forward_f32(&sub, j->x + c0 * ip, j->y + c0 * op);
    else
        cnni_ref_avgpool_backward_f32(&sub, j->x + c0 * op, j->y + c0 * ip);
}

static void run(struct cnni_pool *pool, job *j)
{
    j->planes = chunk_planes(j->in_plane > j->out_plane ? j->in_plane : j->out_plane);
    int64_t tasks = (j->NC + j->planes - 1) / j->planes;
    cnni_pool_run_blocked(tasks > 1 ? pool : NULL, task, j, tasks);
}

void cnni_pool_fast_max_forward(int isa, struct cnni_pool *pool, const cnni_pool_geom *g, const float *x,
                                float *y, int64_t *idx)
{
    job j = {g, x, y, idx, 0, 0, isa, g->NC, cnni_pool_in_plane(g), cnni_pool_out_plane(g), NULL};
    run(pool, &j);
}

void cnni_pool_fast_avg_forward(int isa, struct cnni_pool *pool, const cnni_pool_geom *g, const float *x,
                                float *y)
{
    job j = {g, x, y, NULL, 0, 1, isa, g->NC, cnni_pool_in_plane(g), cnni_pool_out_plane(g), NULL};
    run(pool, &j);
}

void cnni_pool_fast_avg_backward(int isa, struct cnni_pool *pool, const cnni_pool_geom *g, const float *dy,
                                 float *dx)
{
    job j = {g, dy, dx, NULL, 0, 2, isa, g->NC, cnni_pool_in_plane(g), cnni_pool_out_plane(g), NULL};
    run(pool, &j);
}

void cnni_pool_fast_argmax_backward(struct cnni_pool *pool, int64_t NC, int64_t in_plane, int64_t out_plane,
                                    const float *dy, const int64_t *idx, float *dx)
{
    job j = {NULL, dy, dx, NULL, 0, 3, CNNI_ISA_GENERIC, NC, in_plane, out_plane, idx};
    run(pool, &j);
}
