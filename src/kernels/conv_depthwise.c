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
static void g_forward(const cnni_dw_plane *p, float *y, float bias, int accumulate)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], k1 = g->k[1], k2 = g->k[2];
    for (int64_t i = 0; !p->in_place && i < g->k[0] * p->ring_rows; i++)
        p->tags[i] = -1;
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            float *yr = y + (z0 * g->out[1] + z1) * n;
            if (!accumulate)
                for (int64_t z2 = 0; z2 < n; z2++)
                    yr[z2] = bias;
            for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
                const int64_t i0 = z0 * g->s[0] - g->p[0] + t0 * g->d[0];
                if (i0 < 0 || i0 >= g->in[0])
                    continue;
                for (int64_t t1 = 0; t1 < k1; t1++) {
                    const int64_t i1 = z1 * g->s[1] - g->p[1] + t1 * g->d[1];
                    if (i1 < 0 || i1 >= g->in[1])
                        continue;
                    const float *xr = cnni_dw_row(p, t0, i0, i1);
                    for (int64_t t2 = 0; t2 < k2; t2++) {
                        const float *xt = xr + t2 * g->d[2];
                        const float wt = p->w[(t0 * k1 + t1) * k2 + t2];
                        for (int64_t z2 = 0; z2 < n; z2++)
                            yr[z2] += xt[z2 * s] * wt;
                    }
                }
            }
        }
}

static void g_weight(const cnni_dw_plane *p, const float *dy, double *dw, double *db)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], k1 = g->k[1], k2 = g->k[2];
    for (int64_t i = 0; !p->in_place && i < g->k[0] * p->ring_rows; i++)
        p->tags[i] = -1;
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            const float *dr = dy + (z0 * g->out[1] + z1) * n;
            for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
                const int64_t i0 = z0 * g->s[0] - g->p[0] + t0 * g->d[0];
                if (i0 < 0 || i0 >= g->in[0])
                    continue;
                for (int64_t t1 = 0; t1 < k1; t1++) {
                    const int64_t i1 = z1 * g->s[1] - g->p[1] + t1 * g->d[1];
                    if (i1 < 0 || i1 >= g->in[1])
                        continue;
                    const float *xr = cnni_dw_row(p, t0, i0, i1);
                    for (int64_t t2 = 0; t2 < k2; t2++) {
                        const float *xt = xr + t2 * g->d[2];
                        float acc = 0;
                        for (int64_t z2 = 0; z2 < n; z2++)
                            acc += xt[z2 * s] * dr[z2];
                        dw[(t0 * k1 + t1) * k2 + t2] += acc;
                    }
                }
            }
            if (db) {
                float acc = 0;
                for (int64_t z2 = 0; z2 < n; z2++)
                    acc += dr[z2];
                *db += acc;
            }
        }
}

static void g_scatter(const cnni_dw_plane *p, float *xp, const float *dy)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], ntaps = vol3(g->k);
    const int64_t step0 = g->s[0] * p->pd[1] * p->pd[2], step1 = g->s[1] * p->pd[2];
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            float *xr = xp + z0 * step0 + z1 * step1;
            const float *dr = dy + (z0 * g->out[1] + z1) * n;
            for (int64_t t = 0; t < ntaps; t++) {
                float *xt = xr + p->off[t];
                const float wt = p->w[t];
                for (int64_t z2 = 0; z2 < n; z2++)
                    xt[z2 * s] += dr[z2] * wt;
            }
        }
}

static void g_copy(float *d, int64_t width, const float *s, int64_t lo, int64_t len)
{
    memset(d, 0, sizeof(float) * (size_t)lo);
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

/* The extent of the input the outputs read, per dim. */
static void padded_dims(const cnni_conv_geom *g, int64_t *pd)
{
    for (int i = 0; i < 3; i++)
        pd[i] = (g->out[i] - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1;
}

/* ---- scratch ----
 * shared: [tap offsets][flipped weights][partial sums][zero row]
 * per thread: [ring rows][ring tags][row list][scatter plane] */
static int64_t ring_width(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    return (pd[2] + 15) / 16 * 16;
}

/* Enough rows for one output row's window and the next one's new rows; a
 * power of two, so a row's slot is a mask away. */
static int64_t ring_rows(const cnni_conv_geom *g)
{
    int64_t need = (g->k[1] - 1) * g->d[1] + 1 + g->s[1], r = 1;
    while (r < need)
        r *= 2;
    return r;
}

static size_t rows_bytes(const cnni_conv_geom *g)
{
    const size_t slots = (size_t)(g->k[0] * ring_rows(g));
    return align64(slots * (size_t)ring_width(g) * sizeof(float)) + align64(slots * sizeof(int64_t)) +
           align64((size_t)(g->k[0] * g->k[1]) * (sizeof(float *) + sizeof(int64_t)));
}

static size_t thread_bytes(const cnni_conv_geom *g)
{
    size_t b = rows_bytes(g);
    if (stride_one(g)) {
        cnni_conv_geom f;
        flipped_geom(g, &f);
        size_t r = rows_bytes(&f);
        b = r > b ? r : b;
    } else {
        int64_t pd[3];
        padded_dims(g, pd);
        size_t sc = align64((size_t)vol3(pd) * sizeof(float));
        b = sc > b ? sc : b;
    }
    return b;
}

static size_t zero_bytes(const cnni_conv_geom *g)
{
    int64_t w = ring_width(g);
    if (stride_one(g)) {
        cnni_conv_geom f;
        flipped_geom(g, &f);
        w = ring_width(&f) > w ? ring_width(&f) : w;
    }
    return align64((size_t)w * sizeof(float));
}

static size_t off_bytes(const cnni_conv_geom *g) { return align64((size_t)vol3(g->k) * sizeof(int64_t)); }
static size_t wflip_bytes(const cnni_conv_geom *g) { return align64((size_t)(g->O * vol3(g->k)) * sizeof(float)); }
static size_t partial_bytes(const cnni_conv_geom *g)
{
    return align64((size_t)MAX_SLICES * (size_t)g->O * (size_t)(vol3(g->k) + 1) * sizeof(double));
}

size_t cnni_conv_dw_scratch(const cnni_conv_geom *g, int threads)
{
    return 64 + off_bytes(g) + wflip_bytes(g) + partial_bytes(g) + zero_bytes(g) +
           thread_bytes(g) * (size_t)(threads > 0 ? threads : 1);
}

typedef struct {
    int64_t *off;
    float *wflip;
    double *partial;
    float *zero;
    char *threads;
    size_t thread;
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
    r->zero = (float *)base;
    memset(r->zero, 0, zero_bytes(g));
    base += zero_bytes(g);
    r->threads = base;
    r->thread = thread_bytes(g);
    r->nthreads = cnni_pool_threads(pool);
}

/* The plane description of a call, for geometry pg (x, w, rows and the
 * thread's ring are set per task). */
static void plane_init(cnni_dw_plane *p, int isa, const cnni_conv_geom *pg, const regions *r)
{
    memset(p, 0, sizeof *p);
    p->g = pg;
    p->z1a = 0;
    p->z1b = pg->out[1];
    int64_t pd[3];
    padded_dims(pg, pd);
    p->in_place = pg->p[2] == 0 && pd[2] <= pg->in[2];
    p->width = ring_width(pg);
    p->ring_rows = ring_rows(pg);
    p->zero = r->zero;
    p->copy = kernels_for(isa)->copy;
}

/* Points the plane's ring and row list at thread t's scratch. */
static void plane_thread(cnni_dw_plane *p, const regions *r, int64_t task)
{
    char *base = r->threads + (size_t)(task % r->nthreads) * r->thread;
    const size_t slots = (size_t)(p->g->k[0] * p->ring_rows);
    p->ring = (float *)base;
    base += align64(slots * (size_t)p->width * sizeof(float));
    p->tags = (int64_t *)base;
    base += align64(slots * sizeof(int64_t));
    p->rows = (const float **)base;
    p->wrow = (int64_t *)(base + (size_t)(p->g->k[0] * p->g->k[1]) * sizeof(float *));
}

/* ---- forward, and backward data at stride 1 ----
 * Task (n, c, row chunk) makes m planes: for the forward, output channels
 * c*m + j from one input plane; for backward data, one dx plane summed over
 * the m dy planes c*m + j. */
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
    plane_thread(&p, j->r, t);
    cnni_split(g->out[1], j->chunks, chunk, &p.z1a, &p.z1b);
    if (p.z1a >= p.z1b)
        return;
    for (int64_t q = 0; q < j->m; q++) {
        const int64_t o = c * j->m + q;
        float *y;
        if (j->sum_over_m) {
            p.x = j->src + (n * j->src_ch + o) * iv;
            y = j->dst + (n * j->dst_ch + c) * ov;
        } else {
            p.x = j->src + (n * j->src_ch + c) * iv;
            y = j->dst + (n * j->dst_ch + o) * ov;
        }
        p.w = j->w + o * kv;
        j->kn->forward(&p, y, j->b ? j->b[o] : 0.0f, j->sum_over_m && q > 0);
    }
}

static void run_planes(int isa, struct cnni_pool *pool, const cnni_conv_geom *pg, int sum_over_m, int64_t m,
                       int64_t src_ch, int64_t dst_ch, const float *src, const float *w, const float *b, float *dst,
                       const regions *r)
{
    fwd_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, pg, r);
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
    const int64_t planes = pg->N * (sum_over_m ? dst_ch : src_ch), want = 4 * (int64_t)cnni_pool_threads(pool);
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
    float *buf = (float *)(j->r->threads + (size_t)(t % j->r->nthreads) * j->r->thread);
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
    plane_init(&j.proto, CNNI_ISA_GENERIC, g, &r);
    padded_dims(g, j.proto.pd);
    int64_t t = 0;
    for (int64_t t0 = 0; t0 < g->k[0]; t0++)
        for (int64_t t1 = 0; t1 < g->k[1]; t1++)
            for (int64_t t2 = 0; t2 < g->k[2]; t2++)
                r.off[t++] = (t0 * g->d[0] * j.proto.pd[1] + t1 * g->d[1]) * j.proto.pd[2] + t2 * g->d[2];
    j.proto.off = r.off;
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
    plane_thread(&p, j->r, t);
    for (int64_t n = n0; n < n1; n++) {
        p.x = j->x + (n * g->C + c) * iv;
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
    plane_init(&j.proto, isa, g, &r);
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
