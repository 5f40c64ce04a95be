/* Normalisation on spans: the driver (statistics, forward, backward) and the
 * portable span loops. See norm_fast.h. */
#include "norm_fast.h"
#include "pool_fast.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <math.h>
#include <string.h>

/* ---- portable spans: float arithmetic, partial sums flushed to double ---- */
#define FLUSH 1024
#define SMALL_STAT 64 /* statistics over at most this many elements use double in backward */

static double g_sum(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        float a[8] = {0};
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        for (; j + 8 <= e; j += 8)
            for (int k = 0; k < 8; k++)
                a[k] += x[j + k];
        for (; j < e; j++)
            a[0] += x[j];
        for (int k = 0; k < 8; k++)
            s += a[k];
    }
    return s;
}

static void g_dev2(const float *x, int64_t n, float hi, float lo, double *sd, double *sd2)
{
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        float a[8] = {0}, b[8] = {0};
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        for (; j + 8 <= e; j += 8)
            for (int k = 0; k < 8; k++) {
                float d = (x[j + k] - hi) - lo;
                a[k] += d;
                b[k] += d * d;
            }
        for (; j < e; j++) {
            float d = (x[j] - hi) - lo;
            a[0] += d;
            b[0] += d * d;
        }
        for (int k = 0; k < 8; k++) {
            s1 += a[k];
            s2 += b[k];
        }
    }
    *sd = s1;
    *sd2 = s2;
}

/* One element of the affine map; the ReLU-fused spans recompute the
 * forward's output with it, bit for bit. */
static inline float g_aff1(float x, float hi, float lo, float a, float b) { return ((x - hi) - lo) * a + b; }

static void g_affine(const float *x, int64_t n, float hi, float lo, float a, float b, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g_aff1(x[i], hi, lo, a, b);
}

static void g_affine_relu(const float *x, int64_t n, float hi, float lo, float a, float b, float *y, float *z)
{
    for (int64_t i = 0; i < n; i++) {
        const float t = g_aff1(x[i], hi, lo, a, b);
        y[i] = t;
        z[i] = t > 0 ? t : (t != t ? t : 0.0f);
    }
}

#define G_ONE(i) (g_aff1(x[i], hi, lo, a, b) <= 0 ? 0.0f : dz[i])

static void g_relu_grad(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b, float *g)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = G_ONE(i);
}

static void g_sums_relu(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b,
                        double *sdy, double *sdyx)
{
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        double sa[8] = {0}, sb[8] = {0};
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        for (; j + 8 <= e; j += 8)
            for (int k = 0; k < 8; k++) {
                const float g = G_ONE(j + k);
                sa[k] += g;
                sb[k] += g * ((x[j + k] - hi) - lo);
            }
        for (; j < e; j++) {
            const float g = G_ONE(j);
            sa[0] += g;
            sb[0] += g * ((x[j] - hi) - lo);
        }
        for (int k = 0; k < 8; k++) {
            s1 += sa[k];
            s2 += sb[k];
        }
    }
    *sdy = s1;
    *sdyx = s2;
}

static void g_grad_relu(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b, float r,
                        float w, float c, float k, float *dx, double *sdx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = r * (w * G_ONE(i) - c) + k * ((x[i] - hi) - lo);
    if (sdx)
        *sdx = g_sum(dx, n);
}

/* The portable sums keep their lanes in double: a sum of gradients often
 * nearly cancels (db of BatchNorm over 25,000 values of either sign), where
 * float lanes of 128 terms each lost 1e-5 of the result. */
static void g_sums(const float *x, const float *dy, int64_t n, float hi, float lo, double *sdy, double *sdyx)
{
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        double a[8] = {0}, b[8] = {0};
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        for (; j + 8 <= e; j += 8)
            for (int k = 0; k < 8; k++) {
                a[k] += dy[j + k];
                b[k] += dy[j + k] * ((x[j + k] - hi) - lo);
            }
        for (; j < e; j++) {
            a[0] += dy[j];
            b[0] += dy[j] * ((x[j] - hi) - lo);
        }
        for (int k = 0; k < 8; k++) {
            s1 += a[k];
            s2 += b[k];
        }
    }
    *sdy = s1;
    *sdyx = s2;
}

static void g_grad(const float *x, const float *dy, int64_t n, float hi, float lo, float r, float w, float c,
                   float k, float *dx, double *sdx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = r * (w * dy[i] - c) + k * ((x[i] - hi) - lo);
    if (sdx)
        *sdx = g_sum(dx, n);
}

/* A double as hi + lo floats. */
static inline void split(double v, float *hi, float *lo)
{
    *hi = (float)v;
    *lo = (float)(v - (double)*hi);
}

const cnni_norm_spans cnni_norm_spans_generic = {g_sum, g_dev2, g_affine, g_sums, g_grad, g_affine_relu,
                                                  g_relu_grad, g_sums_relu, g_grad_relu};

static const cnni_norm_spans *spans_for(int isa)
{
    return isa == CNNI_ISA_AVX512 ? &cnni_norm_spans_avx512
           : isa == CNNI_ISA_AVX2 ? &cnni_norm_spans_avx2
                                  : &cnni_norm_spans_generic;
}

/* Offset of channel j of group grp in outer block n. */
static inline int64_t span_at(const cnni_norm_geom *g, int64_t n, int64_t grp, int64_t j)
{
    return ((n * g->G + grp) * g->Cg + j) * g->S;
}

/* ---- statistics: one task per statistic ---- */
typedef struct {
    const cnni_norm_spans *sp;
    const cnni_norm_geom *g;
    const float *x, *dy;
    const double *mean_in, *rstd;
    double *mean, *var;
    const float *w, *b;
    float *y, *z, *dx; /* z: the fused ReLU's output (forward) */
    int relu;          /* backward: dy is the fused ReLU's output gradient */
    double *part; /* backward: per (statistic, channel) sums */
    double *ab;   /* backward: per statistic, sum_j w_j sum dy and sum_j w_j sum dy (x - m) */
    int batch_stats;
    int isa;
    const cnni_norm_pool *pl; /* the fused pooling, or NULL */
    int pool2;                /* its windows are 2x2: the argmax is kept as bytes */
    const cnni_norm_wgrad *wg; /* the fused weight gradient, or NULL */
    float *wpart;              /* its sums per span */
    double *bpart;             /* the bias gradient alone (wg->g NULL): the sum of dx per span */
} job;

/* A span's ReLU output or its gradient, when a pooling is fused. */
typedef struct {
    _Alignas(64) float v[CNNI_NORM_POOL_MAX_PLANE];
} plane_buf;

/* Statistic st covers (n, grp) = (st / G, st % G), or channel group st over
 * every n when across_batch. */
static void stat_range(const cnni_norm_geom *g, int64_t st, int64_t *n0, int64_t *n1, int64_t *grp)
{
    if (g->across_batch) {
        *n0 = 0;
        *n1 = g->N;
        *grp = st;
    } else {
        *n0 = st / g->G;
        *n1 = *n0 + 1;
        *grp = st % g->G;
    }
}

/* The deviations pass from the mean *mean (split in two floats): the mean
 * corrected by their average, and the variance. The correction is left in
 * *shift for the caller. */
static void deviations_pass(const job *jb, int64_t n0, int64_t n1, int64_t grp, int64_t cnt, double *mean,
                            double *var, double *shift)
{
    const cnni_norm_geom *g = jb->g;
    float hi, lo;
    split(*mean, &hi, &lo);
    double sd = 0, sd2 = 0;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t j = 0; j < g->Cg; j++) {
            double a, b;
            jb->sp->dev2(jb->x + span_at(g, n, grp, j), g->S, hi, lo, &a, &b);
            sd += a;
            sd2 += b;
        }
    *shift = sd / (double)cnt;
    *mean = (double)hi + (double)lo + *shift;
    *var = sd2 / (double)cnt - *shift * *shift;
}

/* Where the float passes overflowed (a sum of values near 3e38, a squared
 * deviation above 1.8e19) or met inf or NaN: the statistic in double from
 * the inputs, two passes. An infinite mean (an inf among the inputs) gives
 * a NaN variance, as PyTorch's. */
static void stats_double(const job *jb, int64_t n0, int64_t n1, int64_t grp, int64_t cnt, double *mean,
                         double *var)
{
    const cnni_norm_geom *g = jb->g;
    double s = 0;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t j = 0; j < g->Cg; j++) {
            const float *x = jb->x + span_at(g, n, grp, j);
            for (int64_t i = 0; i < g->S; i++)
                s += x[i];
        }
    const double m = s / (double)cnt;
    double ss = 0;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t j = 0; j < g->Cg; j++) {
            const float *x = jb->x + span_at(g, n, grp, j);
            for (int64_t i = 0; i < g->S; i++)
                ss += ((double)x[i] - m) * ((double)x[i] - m);
        }
    *mean = m;
    *var = ss / (double)cnt;
}

static void stats_task(void *ctx, int64_t st, int thread)
{
    (void)thread;
    const job *jb = ctx;
    const cnni_norm_geom *g = jb->g;
    int64_t n0, n1, grp;
    stat_range(g, st, &n0, &n1, &grp);
    const int64_t cnt = (n1 - n0) * g->Cg * g->S;
    if (cnt == 0) {
        jb->mean[st] = 0;
        jb->var[st] = 0;
        return;
    }
    double s = 0;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t j = 0; j < g->Cg; j++)
            s += jb->sp->sum(jb->x + span_at(g, n, grp, j), g->S);
    /* A first mean from float partial sums, then a second pass over the
     * deviations from it: their mean corrects the first one's rounding. */
    double mean = s / (double)cnt, var, shift;
    deviations_pass(jb, n0, n1, grp, cnt, &mean, &var, &shift);
    /* Inputs far from 0 with a small spread (a constant channel of 1e18):
     * the first mean may sit a float ulp of the inputs away, and var is
     * then a difference of two large numbers. Another pass from the
     * corrected mean (which hi + lo now hold to about 2^-48) fixes it; it
     * runs only where the correction was not negligible beside the spread. */
    if (shift * shift > 1e-6 * var)
        deviations_pass(jb, n0, n1, grp, cnt, &mean, &var, &shift);
    if (!isfinite(mean) || !isfinite(var))
        stats_double(jb, n0, n1, grp, cnt, &mean, &var);
    jb->mean[st] = mean;
    jb->var[st] = var < 0 ? 0 : var; /* rounding below 0 clamped; NaN kept */
}

/* Tiny problems are not worth waking threads for. */
static struct cnni_pool *pool_if(struct cnni_pool *pool, const cnni_norm_geom *g)
{
    return g->N * g->G * g->Cg * g->S >= 65536 ? pool : NULL;
}

void cnni_norm_fast_stats(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                          double *mean, double *var)
{
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.sp = spans_for(isa);
    jb.g = g;
    jb.x = x;
    jb.mean = mean;
    jb.var = var;
    cnni_pool_run_blocked(pool_if(pool, g), stats_task, &jb, cnni_norm_nstat(g));
}

/* ---- forward: one task per (n, group) block ---- */
static void fwd_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const job *jb = ctx;
    const cnni_norm_geom *g = jb->g;
    const int64_t n = t / g->G, grp = t % g->G;
    const int64_t st = g->across_batch ? grp : t;
    const double r = jb->rstd[st];
    float hi, lo;
    split(jb->mean_in[st], &hi, &lo);
    for (int64_t j = 0; j < g->Cg; j++) {
        const int64_t c = grp * g->Cg + j, off = span_at(g, n, grp, j);
        const double w = jb->w ? jb->w[c] : 1.0, b = jb->b ? jb->b[c] : 0.0;
        if (jb->pl) {
            /* y and z in one buffer: the span writes y, then z over it */
            plane_buf z;
            const int64_t q = off / g->S, op = cnni_pool_out_plane(jb->pl->g);
            jb->sp->affine_relu(jb->x + off, g->S, hi, lo, (float)(r * w), (float)b, z.v, z.v);
            if (jb->pool2)
                cnni_pool_fast_max2_plane(jb->isa, jb->pl->g, z.v, jb->pl->y + q * op,
                                          (uint8_t *)jb->pl->idx + q * op);
            else
                cnni_pool_fast_max_plane(jb->isa, jb->pl->g, z.v, jb->pl->y + q * op, jb->pl->idx + q * op);
        } else if (jb->z)
            jb->sp->affine_relu(jb->x + off, g->S, hi, lo, (float)(r * w), (float)b, jb->y + off, jb->z + off);
        else
            jb->sp->affine(jb->x + off, g->S, hi, lo, (float)(r * w), (float)b, jb->y + off);
    }
}

/* The forward's affine coefficients of channel c under statistic st, as
 * fwd_task computes them (the fused backward recomputes the output). */
static inline void coeffs(const job *jb, int64_t st, int64_t c, float *a, float *b)
{
    const double w = jb->w ? jb->w[c] : 1.0, bb = jb->b ? jb->b[c] : 0.0;
    *a = (float)(jb->rstd[st] * w);
    *b = (float)bb;
}

/* The forward's blocks: into y and z, or with pl set into the pooling. */
static void forward(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x, const double *mean,
                    const double *rstd, const float *w, const float *b, float *y, float *z,
                    const cnni_norm_pool *pl)
{
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.sp = spans_for(isa);
    jb.isa = isa;
    jb.g = g;
    jb.x = x;
    jb.mean_in = mean;
    jb.rstd = rstd;
    jb.w = w;
    jb.b = b;
    jb.y = y;
    jb.z = z;
    jb.pl = pl;
    jb.pool2 = pl && cnni_pool_fast_two_by_two(pl->g);
    cnni_pool_run_blocked(pool_if(pool, g), fwd_task, &jb, g->N * g->G);
}

void cnni_norm_fast_forward(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                            const double *mean, const double *rstd, const float *w, const float *b, float *y,
                            float *z)
{
    forward(isa, pool, g, x, mean, rstd, w, b, y, z, NULL);
}

void cnni_norm_fast_forward_pool(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                                 const double *mean, const double *rstd, const float *w, const float *b,
                                 const cnni_norm_pool *pl)
{
    forward(isa, pool, g, x, mean, rstd, w, b, NULL, NULL, pl);
}

/* dy of the span at off: the pooling's gradient spread over its plane
 * (into buf) when a pooling is fused. */
static const float *span_dy(const job *jb, int64_t off, plane_buf *buf)
{
    if (!jb->pl)
        return jb->dy + off;
    const int64_t q = off / jb->g->S, op = cnni_pool_out_plane(jb->pl->g);
    if (jb->pool2)
        cnni_pool_fast_max2_plane_backward(jb->isa, jb->pl->g, jb->pl->dy + q * op,
                                           (const uint8_t *)jb->pl->idx + q * op, buf->v);
    else
        cnni_pool_fast_argmax_plane_backward(jb->g->S, op, jb->pl->dy + q * op, jb->pl->idx + q * op, buf->v);
    return buf->v;
}

/* ---- backward ----
 * Pass 1 (per (n, group) block): for each channel, sum dy and dy (x - m).
 * Pass 2 (per block): with the statistic's totals, dx = r w dy - r A / M -
 * r^3 B / M (x - m), where A = sum_j w_j sum dy and B = sum_j w_j sum dy (x - m)
 * over the statistic; with running statistics dx = r w dy.
 * dw and db add the per-channel sums over n in a fixed order. */
size_t cnni_norm_fast_scratch(const cnni_norm_geom *g)
{
    return (size_t)(g->N * g->G * g->Cg + cnni_norm_nstat(g)) * 2 * sizeof(double) + 64;
}

/* The plane weight gradient's values per span: C KH KW taps and the bias's. */
static int64_t wgrad_values(const cnni_wgrad_plane_geom *wg) { return wg->C * wg->KH * wg->KW + 1; }

size_t cnni_norm_fast_wgrad_scratch(const cnni_norm_geom *g, const cnni_wgrad_plane_geom *wg)
{
    if (!wg)
        return (size_t)(g->N * g->G * g->Cg) * sizeof(double) + 64;
    return (size_t)(g->N * g->G * g->Cg * wgrad_values(wg)) * sizeof(float) + 64;
}

/* A and B of each statistic, once: for BatchNorm every block of the batch
 * needs its channel's totals, which summing per block would redo N times. */
static void ab_task(void *ctx, int64_t st, int thread)
{
    (void)thread;
    const job *jb = ctx;
    const cnni_norm_geom *g = jb->g;
    const int64_t grp = g->across_batch ? st : st % g->G;
    const int64_t n0 = g->across_batch ? 0 : st / g->G, n1 = g->across_batch ? g->N : n0 + 1;
    double A = 0, B = 0;
    for (int64_t nn = n0; nn < n1; nn++)
        for (int64_t j = 0; j < g->Cg; j++) {
            const double wj = jb->w ? jb->w[grp * g->Cg + j] : 1.0;
            const double *p = jb->part + 2 * ((nn * g->G + grp) * g->Cg + j);
            A += wj * p[0];
            B += wj * p[1];
        }
    jb->ab[2 * st] = A;
    jb->ab[2 * st + 1] = B;
}

static void sums_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const job *jb = ctx;
    const cnni_norm_geom *g = jb->g;
    const int64_t n = t / g->G, grp = t % g->G;
    const int64_t st = g->across_batch ? grp : t;
    float hi, lo;
    split(jb->mean_in[st], &hi, &lo);
    for (int64_t j = 0; j < g->Cg; j++) {
        const int64_t off = span_at(g, n, grp, j);
        double *p = jb->part + 2 * (t * g->Cg + j);
        if (jb->relu) {
            float a, b;
            plane_buf buf;
            coeffs(jb, st, grp * g->Cg + j, &a, &b);
            jb->sp->sums_relu(jb->x + off, span_dy(jb, off, &buf), g->S, hi, lo, a, b, &p[0], &p[1]);
        } else {
            jb->sp->sums(jb->x + off, jb->dy + off, g->S, hi, lo, &p[0], &p[1]);
        }
    }
}

static void grad_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const job *jb = ctx;
    const cnni_norm_geom *g = jb->g;
    const int64_t n = t / g->G, grp = t % g->G;
    const int64_t st = g->across_batch ? grp : t;
    const double r = jb->rstd[st];
    float hi, lo;
    split(jb->mean_in[st], &hi, &lo);
    const double A = jb->batch_stats ? jb->ab[2 * st] : 0, B = jb->batch_stats ? jb->ab[2 * st + 1] : 0;
    const double M = (double)cnni_norm_count(g);
    for (int64_t j = 0; j < g->Cg; j++) {
        const int64_t c = grp * g->Cg + j, off = span_at(g, n, grp, j);
        const float wj = jb->w ? jb->w[c] : 1.0f;
        double k = 0, cc = 0;
        if (jb->batch_stats && M > 0) {
            k = -r * r * r * B / M;
            cc = A / M;
        }
        float a = 0, b = 0;
        plane_buf buf, wbuf;
        const float *dy = span_dy(jb, off, &buf);
        /* with the weight gradient fused, this span's input gradient only
         * passes through a stack buffer */
        float *dxs = jb->wpart ? wbuf.v : jb->dx + off;
        if (jb->relu)
            coeffs(jb, st, c, &a, &b);
        if (!jb->batch_stats || M <= SMALL_STAT) {
            /* Two cases run chunk by chunk, the ReLU's mask in chunks of
             * FLUSH (a multiple of every vector width, so the same
             * vector/tail split as the forward's):
             * - running statistics: dx = r w dy, x read only for the mask,
             *   so that a NaN or inf in x stays out of dx, as in PyTorch
             *   (the terms below would add 0 times it); the value is the
             *   one they give otherwise;
             * - a statistic over a few elements (LayerNorm over a short
             *   row, GroupNorm with tiny groups): the two terms nearly
             *   cancel and r may be large, so float would lose the result;
             *   double is cheap here. */
            const double m = jb->mean_in[st];
            const float rf = (float)r;
            float gb[FLUSH];
            for (int64_t i0 = 0; i0 < g->S; i0 += FLUSH) {
                const int64_t ni = g->S - i0 < FLUSH ? g->S - i0 : FLUSH;
                const float *gy = dy + i0, *xs = jb->x + off + i0;
                float *d = dxs + i0;
                if (jb->relu) {
                    jb->sp->relu_grad(xs, gy, ni, hi, lo, a, b, gb);
                    gy = gb;
                }
                if (!jb->batch_stats)
                    for (int64_t i = 0; i < ni; i++)
                        d[i] = rf * (wj * gy[i]);
                else
                    for (int64_t i = 0; i < ni; i++)
                        d[i] = (float)(r * ((double)wj * gy[i] - cc) + k * ((double)xs[i] - m));
            }
            if (jb->bpart)
                jb->bpart[t * g->Cg + j] = jb->sp->sum(dxs, g->S);
        } else if (jb->relu) {
            jb->sp->grad_relu(jb->x + off, dy, g->S, hi, lo, a, b, (float)r, wj, (float)cc, (float)k, dxs,
                              jb->bpart ? jb->bpart + t * g->Cg + j : NULL);
        } else {
            jb->sp->grad(jb->x + off, dy, g->S, hi, lo, (float)r, wj, (float)cc, (float)k, dxs,
                         jb->bpart ? jb->bpart + t * g->Cg + j : NULL);
        }
        if (jb->wpart) {
            const cnni_wgrad_plane_geom *wg = jb->wg->g;
            cnni_wgrad_plane(jb->isa, wg, dxs, jb->wg->x + n * wg->C * wg->H * wg->W,
                             jb->wpart + (t * g->Cg + j) * wgrad_values(wg));
        }
    }
}

static void backward(job *jbp, int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                     const float *dy, const double *mean, const double *rstd, const float *w, const float *b,
                     int relu, int batch_stats, float *dx, float *dw, float *db, const cnni_norm_wgrad *wg,
                     void *scratch);

void cnni_norm_fast_backward(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                             const float *dy, const double *mean, const double *rstd, const float *w,
                             const float *b, int relu, int batch_stats, float *dx, float *dw, float *db,
                             const cnni_norm_wgrad *wg, void *scratch)
{
    job jb;
    memset(&jb, 0, sizeof jb);
    backward(&jb, isa, pool, g, x, dy, mean, rstd, w, b, relu, batch_stats, dx, dw, db, wg, scratch);
}

void cnni_norm_fast_backward_pool(int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                                  const cnni_norm_pool *pl, const double *mean, const double *rstd,
                                  const float *w, const float *b, int batch_stats, float *dx, float *dw,
                                  float *db, const cnni_norm_wgrad *wg, void *scratch)
{
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.pl = pl;
    jb.pool2 = cnni_pool_fast_two_by_two(pl->g);
    backward(&jb, isa, pool, g, x, NULL, mean, rstd, w, b, 1, batch_stats, dx, dw, db, wg, scratch);
}

static void backward(job *jbp, int isa, struct cnni_pool *pool, const cnni_norm_geom *g, const float *x,
                     const float *dy, const double *mean, const double *rstd, const float *w, const float *b,
                     int relu, int batch_stats, float *dx, float *dw, float *db, const cnni_norm_wgrad *wg,
                     void *scratch)
{
    job jb = *jbp;
    jb.isa = isa;
    jb.sp = spans_for(isa);
    jb.g = g;
    jb.x = x;
    jb.dy = dy;
    jb.mean_in = mean;
    jb.rstd = rstd;
    jb.w = w;
    jb.b = b;
    jb.relu = relu;
    jb.dx = dx;
    jb.batch_stats = batch_stats;
    jb.part = (double *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    jb.ab = jb.part + 2 * g->N * g->G * g->Cg;
    jb.wg = wg;
    void *extra = (void *)(((uintptr_t)(jb.ab + 2 * cnni_norm_nstat(g)) + 63) & ~(uintptr_t)63);
    if (wg && wg->g) {
        jb.dx = NULL;
        jb.wpart = extra;
    } else if (wg && wg->db && dx) {
        jb.bpart = extra;
    }
    struct cnni_pool *p = pool_if(pool, g);
    const int64_t blocks = g->N * g->G;
    cnni_pool_run_blocked(p, sums_task, &jb, blocks);
    if (jb.dx || jb.wpart) {
        if (batch_stats)
            cnni_pool_run_blocked(cnni_norm_nstat(g) >= 64 ? p : NULL, ab_task, &jb, cnni_norm_nstat(g));
        cnni_pool_run_blocked(p, grad_task, &jb, blocks);
    }
    if (jb.bpart) {
        /* the convolution's bias gradient: per channel, over the samples in order */
        const int64_t C = g->G * g->Cg;
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t n = 0; n < g->N; n++)
                s += jb.bpart[n * C + c];
            wg->db[c] += (float)s;
        }
    }
    if (jb.wpart) {
        /* the spans' weight gradients, per channel over the samples in order */
        const int64_t nv = wgrad_values(wg->g), kk = nv - 1, C = g->G * g->Cg;
        for (int64_t c = 0; c < C; c++)
            for (int64_t v = 0; v < nv; v++) {
                double s = 0;
                for (int64_t n = 0; n < g->N; n++)
                    s += jb.wpart[(n * C + c) * nv + v];
                if (v < kk)
                    wg->dw[c * kk + v] += (float)s;
                else if (wg->db)
                    wg->db[c] += (float)s;
            }
    }
    if (!dw && !db)
        return;
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t j = 0; j < g->Cg; j++) {
            double aw = 0, ab = 0;
            for (int64_t n = 0; n < g->N; n++) {
                const int64_t st = g->across_batch ? grp : n * g->G + grp;
                const double *pp = jb.part + 2 * ((n * g->G + grp) * g->Cg + j);
                ab += pp[0];
                aw += pp[1] * rstd[st];
            }
            const int64_t c = grp * g->Cg + j;
            if (dw)
                dw[c] += (float)aw;
            if (db)
                db[c] += (float)ab;
        }
}
