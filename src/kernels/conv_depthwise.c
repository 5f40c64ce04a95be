/* Depthwise convolution driver and the portable plane loops; see
 * conv_depthwise.h. */
#include "conv_depthwise.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <string.h>

#define MAX_SLICES 8 /* batch slices of the weight gradient's reduction */

static int64_t vol3(const int64_t *v) { return v[0] * v[1] * v[2]; }
static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

/* ---- portable plane loops ---- */
static void g_forward(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], kv = vol3(g->k);
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            cnni_dw_fill(p, z1);
            const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
            for (int64_t q = 0; q < m; q++) {
                float *yr = y + q * ystride + (z0 * g->out[1] + z1) * n;
                const float *w = p->w + q * kv;
                if (!accumulate)
                    for (int64_t z2 = 0; z2 < n; z2++)
                        yr[z2] = bias ? bias[q] : 0.0f;
                for (int64_t t = 0; t < kv; t++) {
                    const float *xt = xr + p->off[t];
                    for (int64_t z2 = 0; z2 < n; z2++)
                        yr[z2] += xt[z2 * s] * w[t];
                }
            }
        }
}

static void g_weight(cnni_dw_plane *p, const float *dy, double *dw, double *db)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], kv = vol3(g->k);
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            cnni_dw_fill(p, z1);
            const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
            const float *dr = dy + (z0 * g->out[1] + z1) * n;
            for (int64_t t = 0; t < kv; t++) {
                const float *xt = xr + p->off[t];
                float acc = 0;
                for (int64_t z2 = 0; z2 < n; z2++)
                    acc += xt[z2 * s] * dr[z2];
                dw[t] += acc;
            }
            if (db) {
                float acc = 0;
                for (int64_t z2 = 0; z2 < n; z2++)
                    acc += dr[z2];
                *db += acc;
            }
        }
}

static void g_scatter(cnni_dw_plane *p, float *xp, const float *dy)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], kv = vol3(g->k);
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            float *xr = xp + z0 * p->step0 + z1 * p->step1;
            const float *dr = dy + (z0 * g->out[1] + z1) * n;
            for (int64_t t = 0; t < kv; t++) {
                float *xt = xr + p->off[t];
                for (int64_t z2 = 0; z2 < n; z2++)
                    xt[z2 * s] += dr[z2] * p->w[t];
            }
        }
}

static void g_copy(float *d, int64_t width, const float *s, int64_t lo, int64_t len)
{
    memset(d, 0, sizeof(float) * (size_t)lo);
    if (len)
        memcpy(d + lo, s, sizeof(float) * (size_t)len);
    memset(d + lo + len, 0, sizeof(float) * (size_t)(width - lo - len));
}

const cnni_dw_kernels cnni_dw_kernels_generic = {g_forward, g_weight, g_scatter, g_copy};

static const cnni_dw_kernels *kernels_for(int isa)
{
    return isa == CNNI_ISA_AVX512 ? &cnni_dw_kernels_avx512
           : isa == CNNI_ISA_AVX2 ? &cnni_dw_kernels_avx2
                                  : &cnni_dw_kernels_generic;
}

int cnni_conv_dw_applies(const cnni_conv_geom *g) { return g->C == g->G && g->N > 0; }

static int stride_one(const cnni_conv_geom *g) { return g->s[0] == 1 && g->s[1] == 1 && g->s[2] == 1; }

/* The stride-1 backward data pass as a forward conv of dy: the roles of in
 * and out swap and the padding becomes d*(k-1) - p (negative: a crop). */
static void flipped_geom(const cnni_conv_geom *g, cnni_conv_geom *f)
{
    *f = *g;
    for (int i = 0; i < 3; i++) {
        f->in[i] = g->out[i];
        f->out[i] = g->in[i];
        f->p[i] = g->d[i] * (g->k[i] - 1) - g->p[i];
    }
}

/* The extent of the input the outputs read, per dim: the padded plane. */
static void padded_dims(const cnni_conv_geom *g, int64_t *pd)
{
    for (int i = 0; i < 3; i++)
        pd[i] = (g->out[i] - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1;
}

/* Whether the outputs read only the input (no padding reached). */
static int reads_in_place(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    for (int i = 0; i < 3; i++)
        if (g->p[i] != 0 || pd[i] > g->in[i])
            return 0;
    return 1;
}

/* ---- scratch: [tap offsets][flipped weights][partial sums][per-thread plane] ---- */
static size_t plane_bytes(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    size_t b = (size_t)vol3(pd);
    if (stride_one(g)) {
        cnni_conv_geom f;
        flipped_geom(g, &f);
        padded_dims(&f, pd);
        b = (size_t)vol3(pd) > b ? (size_t)vol3(pd) : b;
    }
    return align64(b * sizeof(float));
}

static size_t off_bytes(const cnni_conv_geom *g) { return align64((size_t)vol3(g->k) * sizeof(int64_t)); }
static size_t wflip_bytes(const cnni_conv_geom *g) { return align64((size_t)(g->O * vol3(g->k)) * sizeof(float)); }
static size_t partial_bytes(const cnni_conv_geom *g)
{
    return align64((size_t)MAX_SLICES * (size_t)g->O * (size_t)(vol3(g->k) + 1) * sizeof(double));
}

size_t cnni_conv_dw_scratch(const cnni_conv_geom *g, int threads)
{
    return 64 + off_bytes(g) + wflip_bytes(g) + partial_bytes(g) + plane_bytes(g) * (size_t)(threads > 0 ? threads : 1);
}

typedef struct {
    int64_t *off;
    float *wflip;
    double *partial;
    char *planes;
    size_t plane;
    int nthreads;
} regions;

static void carve(const cnni_conv_geom *g, struct cnni_pool *pool, void *scratch, regions *r)
{
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    r->off = (int64_t *)base;
    base += off_bytes(g);
    r->wflip = (float *)base;
    base += wflip_bytes(g);
    r->partial = (double *)base;
    base += partial_bytes(g);
    r->planes = base;
    r->plane = plane_bytes(g);
    r->nthreads = cnni_pool_threads(pool);
}

/* The plane description of a call for geometry pg, and its tap offsets;
 * in_place: read the input itself (otherwise the padded copy). */
static void plane_init(cnni_dw_plane *p, int isa, const cnni_conv_geom *pg, int in_place, const regions *r)
{
    memset(p, 0, sizeof *p);
    p->g = pg;
    p->z1a = 0;
    p->z1b = pg->out[1];
    padded_dims(pg, p->pd);
    const int64_t *dims = in_place ? pg->in : p->pd;
    const int64_t L2 = dims[2], L1 = dims[1] * dims[2];
    p->step0 = pg->s[0] * L1;
    p->step1 = pg->s[1] * L2;
    int64_t t = 0;
    for (int64_t t0 = 0; t0 < pg->k[0]; t0++)
        for (int64_t t1 = 0; t1 < pg->k[1]; t1++)
            for (int64_t t2 = 0; t2 < pg->k[2]; t2++)
                r->off[t++] = t0 * pg->d[0] * L1 + t1 * pg->d[1] * L2 + t2 * pg->d[2];
    p->off = r->off;
    p->copy = kernels_for(isa)->copy;
    p->padded = !in_place;
}

/* Points the plane at input plane x: read in place, or as the padded copy
 * in task t's thread scratch, filled from row z1a*s1 on. */
static void plane_source(cnni_dw_plane *p, const regions *r, int64_t t, const float *x)
{
    if (!p->padded) {
        p->x = x;
        return;
    }
    p->buf = (float *)(r->planes + (size_t)(t % r->nthreads) * r->plane);
    p->x = p->buf;
    p->src = x;
    p->filled = p->z1a * p->g->s[1];
}

/* ---- forward, and backward data at stride 1 ----
 * Task (n, c, row chunk): for the forward, the m output channels c*m + j of
 * one input plane; for backward data, one dx plane summed over the m dy
 * planes c*m + j. */
typedef struct {
    const cnni_dw_kernels *kn;
    cnni_dw_plane proto;
    const float *src, *w, *b;
    float *dst;
    int64_t m, src_ch, dst_ch; /* multiplier; channels per image on each side */
    int sum_over_m;            /* backward data: m sources into one output */
    int64_t chunks;
    const regions *r;
} fwd_job;

static void fwd_task(void *ctx, int64_t t)
{
    const fwd_job *j = ctx;
    const cnni_conv_geom *g = j->proto.g;
    const int64_t chunk = t % j->chunks, nc = t / j->chunks;
    const int64_t C = j->sum_over_m ? j->dst_ch : j->src_ch, c = nc % C, n = nc / C;
    const int64_t iv = vol3(g->in), ov = vol3(g->out), kv = vol3(g->k);
    cnni_dw_plane p = j->proto;
    cnni_split(g->out[1], j->chunks, chunk, &p.z1a, &p.z1b);
    if (p.z1a >= p.z1b)
        return;
    if (!j->sum_over_m) {
        plane_source(&p, j->r, t, j->src + (n * j->src_ch + c) * iv);
        p.w = j->w + c * j->m * kv;
        j->kn->forward(&p, j->m, j->dst + (n * j->dst_ch + c * j->m) * ov, ov, j->b ? j->b + c * j->m : NULL, 0);
        return;
    }
    for (int64_t q = 0; q < j->m; q++) {
        const int64_t o = c * j->m + q;
        plane_source(&p, j->r, t, j->src + (n * j->src_ch + o) * iv);
        p.w = j->w + o * kv;
        j->kn->forward(&p, 1, j->dst + (n * j->dst_ch + c) * ov, ov, NULL, q > 0);
    }
}

static void run_planes(int isa, struct cnni_pool *pool, const cnni_conv_geom *pg, int sum_over_m, int64_t m,
                       int64_t src_ch, int64_t dst_ch, const float *src, const float *w, const float *b, float *dst,
                       const regions *r)
{
    fwd_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, pg, reads_in_place(pg), r);
    j.src = src;
    j.w = w;
    j.b = b;
    j.dst = dst;
    j.m = m;
    j.src_ch = src_ch;
    j.dst_ch = dst_ch;
    j.sum_over_m = sum_over_m;
    j.r = r;
    /* Each output is summed by one task in a fixed order, so the split may
     * follow the thread count: row chunks only when planes are few. */
    const int64_t planes = pg->N * (sum_over_m ? dst_ch : src_ch), want = 4 * (int64_t)r->nthreads;
    j.chunks = planes >= want ? 1 : (want + planes - 1) / planes;
    if (j.chunks > pg->out[1])
        j.chunks = pg->out[1];
    cnni_pool_run(pool, fwd_task, &j, planes * j.chunks);
}

void cnni_conv_dw_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                          const float *w, const float *b, float *y, void *scratch)
{
    regions r;
    carve(g, pool, scratch, &r);
    run_planes(isa, pool, g, 0, g->O / g->G, g->C, g->O, x, w, b, y, &r);
}

/* ---- backward data at stride > 1: scatter into a padded plane, then crop ---- */
typedef struct {
    const cnni_dw_kernels *kn;
    cnni_dw_plane proto;
    const float *dy, *w;
    float *dx;
    const regions *r;
} scatter_job;

static void scatter_task(void *ctx, int64_t t)
{
    const scatter_job *j = ctx;
    const cnni_conv_geom *g = j->proto.g;
    const int64_t c = t % g->C, n = t / g->C, m = g->O / g->G;
    const int64_t iv = vol3(g->in), ov = vol3(g->out), kv = vol3(g->k);
    const int64_t *pd = j->proto.pd;
    float *buf = (float *)(j->r->planes + (size_t)(t % j->r->nthreads) * j->r->plane);
    memset(buf, 0, sizeof(float) * (size_t)vol3(pd));
    cnni_dw_plane p = j->proto;
    for (int64_t q = 0; q < m; q++) {
        const int64_t o = c * m + q;
        p.w = j->w + o * kv;
        j->kn->scatter(&p, buf, j->dy + (n * g->O + o) * ov);
    }
    /* dx(i) = buf(i + p); inputs no output reaches get 0. */
    float *dx = j->dx + (n * g->C + c) * iv;
    for (int64_t a = 0; a < g->in[0]; a++)
        for (int64_t b = 0; b < g->in[1]; b++) {
            float *d = dx + (a * g->in[1] + b) * g->in[2];
            int64_t pa = a + g->p[0], pb = b + g->p[1];
            if (pa < 0 || pa >= pd[0] || pb < 0 || pb >= pd[1]) {
                memset(d, 0, sizeof(float) * (size_t)g->in[2]);
                continue;
            }
            const float *s = buf + (pa * pd[1] + pb) * pd[2];
            for (int64_t i = 0; i < g->in[2]; i++) {
                int64_t pc = i + g->p[2];
                d[i] = pc >= 0 && pc < pd[2] ? s[pc] : 0.0f;
            }
        }
}

void cnni_conv_dw_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                const float *w, float *dx, void *scratch)
{
    regions r;
    carve(g, pool, scratch, &r);
    const int64_t kv = vol3(g->k), m = g->O / g->G;
    if (stride_one(g)) {
        cnni_conv_geom f;
        flipped_geom(g, &f);
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t t = 0; t < kv; t++)
                r.wflip[o * kv + t] = w[o * kv + kv - 1 - t];
        run_planes(isa, pool, &f, 1, m, g->O, g->C, dy, r.wflip, NULL, dx, &r);
        return;
    }
    scatter_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, g, 0, &r);
    j.dy = dy;
    j.w = w;
    j.dx = dx;
    j.r = &r;
    cnni_pool_run(pool, scatter_task, &j, g->N * g->C);
}

/* ---- backward weight: task (channel, batch slice) ---- */
typedef struct {
    const cnni_dw_kernels *kn;
    cnni_dw_plane proto;
    const float *x, *dy;
    int want_db;
    double *partial; /* [slice][O][kv + 1]: taps, then the bias */
    int64_t slices;
    const regions *r;
} wgt_job;

static void wgt_task(void *ctx, int64_t t)
{
    const wgt_job *j = ctx;
    const cnni_conv_geom *g = j->proto.g;
    const int64_t o = t % g->O, slice = t / g->O, m = g->O / g->G, c = o / m;
    const int64_t iv = vol3(g->in), ov = vol3(g->out), kv = vol3(g->k);
    double *acc = j->partial + (slice * g->O + o) * (kv + 1);
    for (int64_t i = 0; i <= kv; i++)
        acc[i] = 0;
    int64_t n0, n1;
    cnni_split(g->N, j->slices, slice, &n0, &n1);
    cnni_dw_plane p = j->proto;
    for (int64_t n = n0; n < n1; n++) {
        plane_source(&p, j->r, t, j->x + (n * g->C + c) * iv);
        j->kn->weight(&p, j->dy + (n * g->O + o) * ov, acc, j->want_db ? acc + kv : NULL);
    }
}

void cnni_conv_dw_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                  const float *dy, float *dw, float *db, void *scratch)
{
    regions r;
    carve(g, pool, scratch, &r);
    wgt_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, g, reads_in_place(g), &r);
    j.x = x;
    j.dy = dy;
    j.want_db = db != NULL;
    j.partial = r.partial;
    j.r = &r;
    /* Enough tasks for any thread count, chosen from the shape alone: the
     * slices' partial sums are added in a fixed order below. */
    j.slices = 1;
    while (j.slices < MAX_SLICES && j.slices * 2 <= g->N && g->O * j.slices < 16)
        j.slices *= 2;
    cnni_pool_run(pool, wgt_task, &j, g->O * j.slices);
    const int64_t kv = vol3(g->k);
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t i = 0; i <= kv; i++) {
            double s = 0;
            for (int64_t sl = 0; sl < j.slices; sl++)
                s += r.partial[(sl * g->O + o) * (kv + 1) + i];
            if (i < kv)
                dw[o * kv + i] += (float)s;
            else if (db)
                db[o] += (float)s;
        }
}
