/* Plane convolution (depthwise and few-channel groups): the driver and the
 * portable loops; see conv_depthwise.h. */
#include "conv_depthwise.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <string.h>

#define MAX_SLICES 8 /* batch slices of the weight gradient's reduction */

static int64_t vol3(const int64_t *v) { return v[0] * v[1] * v[2]; }
static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

void cnni_dw_fill_rows(cnni_dw_plane *p, int64_t need)
{
    const cnni_conv_geom *g = p->g;
    need = need < p->pd[1] ? need : p->pd[1];
    const int64_t lo = g->p[2] > 0 ? g->p[2] : 0;
    int64_t hi = g->p[2] + g->in[2] < p->pd[2] ? g->p[2] + g->in[2] : p->pd[2];
    hi = hi > lo ? hi : lo;
    const int64_t iv = vol3(g->in), pv = vol3(p->pd);
    for (int64_t c = 0; c < p->nch; c++)
        for (int64_t a = 0; a < p->pd[0]; a++) {
            const int64_t ia = a - g->p[0];
            for (int64_t b = p->filled; b < need; b++) {
                const int64_t ib = b - g->p[1];
                float *d = p->buf + c * pv + (a * p->pd[1] + b) * p->pd[2];
                const int outside = ia < 0 || ia >= g->in[0] || ib < 0 || ib >= g->in[1];
                if (p->zeroed) { /* the padding is still zero: the input's part alone */
                    if (!outside && hi > lo)
                        p->copy(d + lo, hi - lo, p->src + c * iv + (ia * g->in[1] + ib) * g->in[2] + (lo - g->p[2]),
                                0, hi - lo);
                } else if (outside)
                    p->copy(d, p->pd[2], NULL, 0, 0);
                else
                    p->copy(d, p->pd[2], p->src + c * iv + (ia * g->in[1] + ib) * g->in[2] + (lo - g->p[2]), lo,
                            hi - lo);
            }
        }
    p->filled = need;
}

/* ---- portable plane loops ---- */
static void g_forward(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], kv = p->ntaps;
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
                    const float wt = w[t];
                    if (s == 1) /* the contiguous case, which compilers vectorise */
                        for (int64_t z2 = 0; z2 < n; z2++)
                            yr[z2] += xt[z2] * wt;
                    else
                        for (int64_t z2 = 0; z2 < n; z2++)
                            yr[z2] += xt[z2 * s] * wt;
                }
            }
        }
}

static void g_weight(cnni_dw_plane *p, int64_t m, const float *dy, int64_t dystride, double *acc, int64_t accstride,
                     int want_db)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], kv = p->ntaps;
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            cnni_dw_fill(p, z1);
            const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
            for (int64_t q = 0; q < m; q++) {
                const float *dr = dy + q * dystride + (z0 * g->out[1] + z1) * n;
                double *aq = acc + q * accstride;
                for (int64_t t = 0; t < kv; t++) {
                    const float *xt = xr + p->off[t];
                    float sum = 0;
                    for (int64_t z2 = 0; z2 < n; z2++)
                        sum += xt[z2 * s] * dr[z2];
                    aq[t] += sum;
                }
                if (want_db) {
                    double sum = 0; /* as the SIMD loops' dy sums, near double */
                    for (int64_t z2 = 0; z2 < n; z2++)
                        sum += dr[z2];
                    aq[kv] += sum;
                }
            }
        }
}

static void g_scatter(cnni_dw_plane *p, float *xp, const float *dy)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], n = g->out[2], kv = p->ntaps;
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

static void g_cols(int64_t T, int64_t K, int64_t P, const float *a, const float *b, int64_t ldb, float *c,
                   int64_t ldc)
{
    for (int64_t t = 0; t < T; t++) {
        float *ct = c + t * ldc;
        for (int64_t p = 0; p < P; p++)
            ct[p] = 0;
        for (int64_t k = 0; k < K; k++) {
            const float at = a[t * K + k], *bk = b + k * ldb;
            for (int64_t p = 0; p < P; p++)
                ct[p] += at * bk[p];
        }
    }
}

static void g_gather(float *d, int64_t rows, int64_t n, int64_t m, const float *const *src, const int64_t *first,
                     int64_t k2, int64_t ld, int64_t sh0, int64_t dil)
{
    for (int64_t r = 0; r < rows; r++) {
        float *dr = d + r * n;
        for (int64_t i = 0; i < n; i++)
            dr[i] = 0;
        for (int64_t t = 0; t < k2; t++) {
            const int64_t sh = sh0 + t * dil, lo = sh > 0 ? sh : 0, hi = sh + m < n ? sh + m : n;
            for (int64_t e = first[r]; e < first[r + 1]; e++)
                for (int64_t i = lo; i < hi; i++)
                    dr[i] += src[e][t * ld + i - sh];
        }
    }
}

static int g_pads(const cnni_conv_geom *g, int64_t nch, int64_t m, int weight)
{
    (void)g;
    (void)nch;
    (void)m;
    (void)weight;
    return 0;
}

const cnni_dw_kernels cnni_dw_kernels_generic = {g_forward, g_weight, g_scatter, g_copy, g_cols, g_gather, g_pads};

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

/* ---- scratch ----
 * Each pass lays out its own regions from the start of the scratch:
 * [tap offsets][flipped weights or partial sums][per-thread padded planes]. */
static int64_t cg_of(const cnni_conv_geom *g) { return g->C / g->G; }
static int64_t og_of(const cnni_conv_geom *g) { return g->O / g->G; }

/* Batch slices of the weight gradient: enough tasks for any thread count,
 * chosen from the shape alone (their partial sums are added in a fixed
 * order). */
#define WGT_BLOCK 6 /* output channels per weight-gradient task: they share each load of the input */

static int64_t wgt_blocks(const cnni_conv_geom *g) { return (og_of(g) + WGT_BLOCK - 1) / WGT_BLOCK; }

static int64_t wgt_slices(const cnni_conv_geom *g)
{
    int64_t slices = 1;
    while (slices < MAX_SLICES && slices * 2 <= g->N && g->G * wgt_blocks(g) * slices < 16)
        slices *= 2;
    return slices;
}

/* The backward data pass as products and a scatter: per image, group and
 * input channel c, columns col[t][z] = sum_o w[o][c][t] dy[o](z) over the
 * group's output channels (pixels along the lanes, the whole output plane
 * flattened, so no lane idles on narrow rows and no tap reads padding),
 * then dx[c](z*s - p + t*d) += col[t][z]. Worth it where the flipped
 * convolution would spend much on padding or on narrow rows, and the
 * scatter is small beside the products: several output channels per group
 * and small planes. */
static int data_by_columns(const cnni_conv_geom *g) { return og_of(g) >= 4 && vol3(g->out) <= 256; }

/* Columns' row stride: the plane rounded up to a whole cache line. */
static int64_t cols_ld(const cnni_conv_geom *g) { return (vol3(g->out) + 15) / 16 * 16; }

typedef struct {
    size_t off, extra, plane; /* bytes of each region (plane: per buffer) */
    int buffers;              /* plane buffers per thread (see plane_prefill) */
} layout_bytes;

/* Small padded planes are filled one ahead, in two buffers. */
#define PREFILL_FLOATS 2048

/* The regions pass `pass` needs, with nch input channels per group read
 * from geometry pg (for backward data at stride 1, the flipped one). */
static layout_bytes pass_bytes(const cnni_conv_geom *g, unsigned pass)
{
    layout_bytes b = {0, 0, 0, 1};
    const int64_t kv = vol3(g->k);
    cnni_conv_geom pg = *g;
    int64_t nch = cg_of(g), pd[3];
    int padded = !reads_in_place(g);
    if (pass == CNNI_DW_DATA && data_by_columns(g)) {
        /* packed weights, and per thread: the group's dy and one input
         * channel's columns (rows of cols_ld floats), and the scatter's
         * lists (see cols_task) */
        const int64_t rows = g->in[0] * g->in[1];
        b.extra = align64((size_t)(g->O * cg_of(g) * kv) * sizeof(float));
        b.plane = align64((size_t)((og_of(g) + kv) * cols_ld(g)) * sizeof(float)) +
                  align64((size_t)(rows * g->k[0] * g->k[1]) * sizeof(float *) + (size_t)(rows + 1) * sizeof(int64_t));
        return b;
    }
    if (pass == CNNI_DW_DATA && stride_one(g)) {
        flipped_geom(g, &pg);
        nch = og_of(g);
        padded = !reads_in_place(&pg);
        b.extra = align64((size_t)(g->O * cg_of(g) * kv) * sizeof(float));
    } else if (pass == CNNI_DW_DATA) {
        padded = 1;
    } else if (pass == CNNI_DW_WEIGHT) {
        b.extra = align64((size_t)(wgt_slices(g) * g->O * (cg_of(g) * kv + 1)) * sizeof(double));
    }
    padded_dims(&pg, pd);
    b.off = align64((size_t)(nch * kv) * sizeof(int64_t));
    b.plane = padded ? align64((size_t)(nch * vol3(pd)) * sizeof(float)) : 0;
    b.buffers = padded && nch * vol3(pd) <= PREFILL_FLOATS ? 2 : 1;
    return b;
}

size_t cnni_conv_dw_scratch(const cnni_conv_geom *g, int threads, unsigned passes)
{
    size_t most = 0;
    for (unsigned pass = CNNI_DW_FORWARD; pass <= CNNI_DW_WEIGHT; pass <<= 1) {
        if (!(passes & pass))
            continue;
        layout_bytes b = pass_bytes(g, pass);
        size_t total = b.off + b.extra + (size_t)b.buffers * b.plane * (size_t)(threads > 0 ? threads : 1);
        most = total > most ? total : most;
    }
    return most + 64;
}

typedef struct {
    int64_t *off;
    void *extra; /* flipped weights, or partial sums */
    char *planes;
    size_t plane;
    int buffers;
    int nthreads;
} regions;

static void carve(const cnni_conv_geom *g, unsigned pass, struct cnni_pool *pool, void *scratch, regions *r)
{
    layout_bytes b = pass_bytes(g, pass);
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    r->off = (int64_t *)base;
    r->extra = base + b.off;
    r->planes = base + b.off + b.extra;
    r->plane = b.plane;
    r->buffers = b.buffers;
    r->nthreads = cnni_pool_threads(pool);
}

/* The plane description of a call for geometry pg with nch input channels
 * per group, and its (channel, tap) offsets; in_place: read the input
 * itself (otherwise the padded copy). */
static void plane_init(cnni_dw_plane *p, int isa, const cnni_conv_geom *pg, int64_t nch, int in_place,
                       const regions *r)
{
    memset(p, 0, sizeof *p);
    p->g = pg;
    p->z1a = 0;
    p->z1b = pg->out[1];
    p->nch = nch;
    padded_dims(pg, p->pd);
    const int64_t *dims = in_place ? pg->in : p->pd;
    const int64_t L2 = dims[2], L1 = dims[1] * dims[2], L0 = dims[0] * L1;
    p->step0 = pg->s[0] * L1;
    p->step1 = pg->s[1] * L2;
    int64_t t = 0;
    for (int64_t c = 0; c < nch; c++)
        for (int64_t t0 = 0; t0 < pg->k[0]; t0++)
            for (int64_t t1 = 0; t1 < pg->k[1]; t1++)
                for (int64_t t2 = 0; t2 < pg->k[2]; t2++)
                    r->off[t++] = c * L0 + t0 * pg->d[0] * L1 + t1 * pg->d[1] * L2 + t2 * pg->d[2];
    p->ntaps = t;
    p->off = r->off;
    p->copy = kernels_for(isa)->copy;
    p->padded = !in_place;
}

/* Points the plane at the input channels from x: read in place, or as the
 * padded copy in buffer b % buffers of the running thread's scratch, to be
 * filled from row z1a*s1 on, as the loops need it; b is the plane's rank
 * among those the task reads (0 for a task of one plane). */
static void plane_source(cnni_dw_plane *p, const regions *r, int thread, int64_t b, const float *x)
{
    if (!p->padded) {
        p->x = x;
        return;
    }
    const size_t slot = (size_t)thread * (size_t)r->buffers + (size_t)(b % r->buffers);
    p->buf = (float *)(r->planes + slot * r->plane);
    p->x = p->buf;
    p->src = x;
    p->filled = p->z1a * p->g->s[1];
    /* b counts the planes a task has read: from the buffers-th on, its
     * buffer holds a whole earlier plane, whose padding is still zero */
    p->zeroed = b >= r->buffers;
}

/* The same, filled at once when small. A task working through several
 * planes fills the next one before it convolves the current one: reading a
 * copy just written stalls on the stores, which small planes cannot hide.
 * Large planes are filled as the loops go, so loads from memory overlap
 * arithmetic. */
static void plane_prefill(cnni_dw_plane *p, const regions *r, int thread, int64_t b, const float *x)
{
    plane_source(p, r, thread, b, x);
    if (p->padded && p->nch * vol3(p->pd) <= PREFILL_FLOATS)
        cnni_dw_fill_rows(p, p->pd[1]);
}

/* ---- forward, and backward data at stride 1 ----
 * Task (n, group, row chunk): the group's dst_g output channels from its
 * src_g input channels. */
typedef struct {
    const cnni_dw_kernels *kn;
    cnni_dw_plane proto;
    const float *src, *w, *b;
    float *dst;
    int64_t groups, src_g, dst_g; /* channels per group on each side */
    int64_t chunks;      /* row chunks per plane (then one plane per task) */
    int64_t planes, tasks; /* otherwise: planes split into runs, one per task */
    const regions *r;
} fwd_job;

/* Output channels of plane i = (image, group) from the planes read in p. */
static void fwd_plane(const fwd_job *j, cnni_dw_plane *p, int64_t i)
{
    const int64_t ov = vol3(j->proto.g->out), grp = i % j->groups;
    p->w = j->w + grp * j->dst_g * p->ntaps;
    j->kn->forward(p, j->dst_g, j->dst + i * j->dst_g * ov, ov, j->b ? j->b + grp * j->dst_g : NULL, 0);
}

static void fwd_task(void *ctx, int64_t t, int thread)
{
    const fwd_job *j = ctx;
    const cnni_conv_geom *g = j->proto.g;
    const int64_t iv = vol3(g->in);
    cnni_dw_plane p = j->proto;
    if (j->chunks > 1) {
        /* in whole blocks of 4 rows (see fwd_rows in x86/conv_depthwise_simd.h) */
        const int64_t chunk = t % j->chunks, i = t / j->chunks;
        cnni_split((g->out[1] + 3) / 4, j->chunks, chunk, &p.z1a, &p.z1b);
        p.z1a *= 4;
        p.z1b = p.z1b * 4 < g->out[1] ? p.z1b * 4 : g->out[1];
        if (p.z1a < p.z1b) {
            plane_source(&p, j->r, thread, 0, j->src + i * j->src_g * iv);
            fwd_plane(j, &p, i);
        }
        return;
    }
    int64_t i0, i1;
    cnni_split(j->planes, j->tasks, t, &i0, &i1);
    cnni_dw_plane next = p;
    if (i0 < i1)
        plane_prefill(&next, j->r, thread, 0, j->src + i0 * j->src_g * iv);
    for (int64_t i = i0; i < i1; i++) {
        p = next;
        if (i + 1 < i1)
            plane_prefill(&next, j->r, thread, i + 1 - i0, j->src + (i + 1) * j->src_g * iv);
        fwd_plane(j, &p, i);
    }
}

/* Convolves each group's src_g channels of src (geometry pg) into its dst_g
 * channels of dst, with weights (dst_g, src_g, k) per group. */
static void run_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *pg, int64_t groups, int64_t src_g,
                        int64_t dst_g, const float *src, const float *w, const float *b, float *dst, const regions *r)
{
    fwd_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, pg, src_g, reads_in_place(pg) || j.kn->pads(pg, src_g, dst_g, 0), r);
    j.src = src;
    j.w = w;
    j.b = b;
    j.dst = dst;
    j.groups = groups;
    j.src_g = src_g;
    j.dst_g = dst_g;
    j.r = r;
    /* Each output is summed by one task in a fixed order, so the split may
     * follow the thread count: row chunks only when planes are few. */
    const int64_t planes = pg->N * groups, want = 4 * (int64_t)r->nthreads;
    j.chunks = planes >= want ? 1 : (want + planes - 1) / planes;
    if (j.chunks > (pg->out[1] + 3) / 4)
        j.chunks = (pg->out[1] + 3) / 4;
    j.planes = planes;
    j.tasks = planes < 2 * want ? planes : 2 * want;
    cnni_pool_run(pool, fwd_task, &j, j.chunks > 1 ? planes * j.chunks : j.tasks);
}

void cnni_conv_dw_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                          const float *w, const float *b, float *y, void *scratch)
{
    regions r;
    carve(g, CNNI_DW_FORWARD, pool, scratch, &r);
    run_forward(isa, pool, g, g->G, cg_of(g), og_of(g), x, w, b, y, &r);
}

/* ---- backward data at stride > 1: scatter into padded planes, then crop ---- */
typedef struct {
    const cnni_dw_kernels *kn;
    cnni_dw_plane proto;
    const float *dy, *w;
    float *dx;
    const regions *r;
} scatter_job;

static void scatter_task(void *ctx, int64_t t, int thread)
{
    const scatter_job *j = ctx;
    const cnni_conv_geom *g = j->proto.g;
    const int64_t grp = t % g->G, n = t / g->G, Cg = cg_of(g), Og = og_of(g);
    const int64_t iv = vol3(g->in), ov = vol3(g->out);
    const int64_t *pd = j->proto.pd, pv = vol3(pd);
    float *buf = (float *)(j->r->planes + (size_t)thread * (size_t)j->r->buffers * j->r->plane);
    memset(buf, 0, sizeof(float) * (size_t)(Cg * pv));
    cnni_dw_plane p = j->proto;
    for (int64_t q = 0; q < Og; q++) {
        const int64_t o = grp * Og + q;
        p.w = j->w + o * p.ntaps;
        j->kn->scatter(&p, buf, j->dy + (n * g->O + o) * ov);
    }
    /* dx(i) = buf(i + p); inputs no output reaches get 0. */
    for (int64_t c = 0; c < Cg; c++) {
        float *dx = j->dx + (n * g->C + grp * Cg + c) * iv;
        const float *bc = buf + c * pv;
        for (int64_t a = 0; a < g->in[0]; a++)
            for (int64_t b = 0; b < g->in[1]; b++) {
                float *d = dx + (a * g->in[1] + b) * g->in[2];
                int64_t pa = a + g->p[0], pb = b + g->p[1];
                if (pa < 0 || pa >= pd[0] || pb < 0 || pb >= pd[1]) {
                    memset(d, 0, sizeof(float) * (size_t)g->in[2]);
                    continue;
                }
                const float *s = bc + (pa * pd[1] + pb) * pd[2];
                for (int64_t i = 0; i < g->in[2]; i++) {
                    int64_t pc = i + g->p[2];
                    d[i] = pc >= 0 && pc < pd[2] ? s[pc] : 0.0f;
                }
            }
    }
}

typedef struct {
    const cnni_dw_kernels *kn;
    const cnni_conv_geom *g;
    const float *dy, *wp; /* wp: [G][Cg][kv][Og] */
    float *dx;
    const regions *r;
} cols_job;

/* Task (image, group): the group's dy copied to aligned rows, then per
 * input channel its columns and each row of its dx summed from them. The
 * sources of each dx row (the column rows of taps (t0, t1, 0), the taps
 * along dim 2 following at steps of ld) depend on neither the channel nor
 * the image: listed first. */
static void cols_task(void *ctx, int64_t t, int thread)
{
    const cols_job *j = ctx;
    const cnni_conv_geom *g = j->g;
    const int64_t grp = t % g->G, n = t / g->G, Cg = cg_of(g), Og = og_of(g), kv = vol3(g->k);
    const int64_t iv = vol3(g->in), ov = vol3(g->out), ld = cols_ld(g), rows = g->in[0] * g->in[1];
    char *base = j->r->planes + (size_t)thread * j->r->plane;
    float *dyp = (float *)base, *col = dyp + Og * ld;
    const float **src = (const float **)(base + align64((size_t)((Og + kv) * ld) * sizeof(float)));
    int64_t *first = (int64_t *)(src + rows * g->k[0] * g->k[1]);
    int64_t cnt = 0;
    for (int64_t i0 = 0, row = 0; i0 < g->in[0]; i0++)
        for (int64_t i1 = 0; i1 < g->in[1]; i1++, row++) {
            first[row] = cnt;
            for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
                const int64_t a0 = i0 + g->p[0] - t0 * g->d[0], z0 = a0 / g->s[0];
                if (a0 < 0 || a0 % g->s[0] != 0 || z0 >= g->out[0])
                    continue;
                for (int64_t t1 = 0; t1 < g->k[1]; t1++) {
                    const int64_t a1 = i1 + g->p[1] - t1 * g->d[1], z1 = a1 / g->s[1];
                    if (a1 >= 0 && a1 % g->s[1] == 0 && z1 < g->out[1])
                        src[cnt++] = col + (t0 * g->k[1] + t1) * g->k[2] * ld + (z0 * g->out[1] + z1) * g->out[2];
                }
            }
        }
    first[rows] = cnt;
    const float *dyg = j->dy + (n * g->O + grp * Og) * ov;
    for (int64_t o = 0; o < Og; o++)
        memcpy(dyp + o * ld, dyg + o * ov, sizeof(float) * (size_t)ov);
    for (int64_t c = 0; c < Cg; c++) {
        j->kn->cols(kv, Og, ov, j->wp + (grp * Cg + c) * kv * Og, dyp, ld, col, ld);
        float *dxc = j->dx + (n * g->C + grp * Cg + c) * iv;
        if (g->s[2] == 1) {
            j->kn->gather(dxc, rows, g->in[2], g->out[2], src, first, g->k[2], ld, -g->p[2], g->d[2]);
            continue;
        }
        for (int64_t row = 0; row < rows; row++) {
            float *d = dxc + row * g->in[2];
            const int64_t e0 = first[row], e1 = first[row + 1];
            memset(d, 0, sizeof(float) * (size_t)g->in[2]);
            for (int64_t t2 = 0; t2 < g->k[2]; t2++)
                for (int64_t e = e0; e < e1; e++)
                    for (int64_t z2 = 0; z2 < g->out[2]; z2++) {
                        const int64_t i2 = z2 * g->s[2] - g->p[2] + t2 * g->d[2];
                        if (i2 >= 0 && i2 < g->in[2])
                            d[i2] += src[e][t2 * ld + z2];
                    }
        }
    }
}

void cnni_conv_dw_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                const float *w, float *dx, void *scratch)
{
    regions r;
    carve(g, CNNI_DW_DATA, pool, scratch, &r);
    const int64_t kv = vol3(g->k), Cg = cg_of(g), Og = og_of(g);
    if (data_by_columns(g)) {
        float *wp = r.extra;
        for (int64_t grp = 0; grp < g->G; grp++)
            for (int64_t o = 0; o < Og; o++)
                for (int64_t c = 0; c < Cg; c++)
                    for (int64_t t = 0; t < kv; t++)
                        wp[((grp * Cg + c) * kv + t) * Og + o] = w[((grp * Og + o) * Cg + c) * kv + t];
        cols_job j = {kernels_for(isa), g, dy, wp, dx, &r};
        cnni_pool_run(pool, cols_task, &j, g->N * g->G);
        return;
    }
    if (stride_one(g)) {
        /* dx = conv(dy, w') with w'[grp][c][o][t] = w[grp*Og + o][c][last - t] */
        cnni_conv_geom f;
        flipped_geom(g, &f);
        float *wflip = r.extra;
        for (int64_t grp = 0; grp < g->G; grp++)
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t o = 0; o < Og; o++)
                    for (int64_t t = 0; t < kv; t++)
                        wflip[((grp * Cg + c) * Og + o) * kv + t] = w[((grp * Og + o) * Cg + c) * kv + kv - 1 - t];
        run_forward(isa, pool, &f, g->G, Og, Cg, dy, wflip, NULL, dx, &r);
        return;
    }
    scatter_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, g, Cg, 0, &r);
    j.dy = dy;
    j.w = w;
    j.dx = dx;
    j.r = &r;
    cnni_pool_run(pool, scatter_task, &j, g->N * g->G);
}

/* ---- backward weight: task (a block of a group's output channels, batch slice) ---- */
typedef struct {
    const cnni_dw_kernels *kn;
    cnni_dw_plane proto;
    const float *x, *dy;
    int want_db;
    double *partial; /* [slice][O][ntaps + 1]: taps, then the bias */
    int64_t slices, blocks;
    const regions *r;
} wgt_job;

static void wgt_task(void *ctx, int64_t t, int thread)
{
    const wgt_job *j = ctx;
    const cnni_conv_geom *g = j->proto.g;
    const int64_t Og = og_of(g), Cg = cg_of(g), nt = j->proto.ntaps;
    const int64_t blk = t % j->blocks, grp = (t / j->blocks) % g->G, slice = t / (j->blocks * g->G);
    const int64_t q0 = blk * WGT_BLOCK, mo = Og - q0 < WGT_BLOCK ? Og - q0 : WGT_BLOCK, o0 = grp * Og + q0;
    const int64_t iv = vol3(g->in), ov = vol3(g->out);
    double *acc = j->partial + (slice * g->O + o0) * (nt + 1);
    for (int64_t i = 0; i < mo * (nt + 1); i++)
        acc[i] = 0;
    int64_t n0, n1;
    cnni_split(g->N, j->slices, slice, &n0, &n1);
    cnni_dw_plane p = j->proto, next = p;
    if (n0 < n1)
        plane_prefill(&next, j->r, thread, 0, j->x + (n0 * g->C + grp * Cg) * iv);
    for (int64_t n = n0; n < n1; n++) {
        p = next;
        if (n + 1 < n1)
            plane_prefill(&next, j->r, thread, n + 1 - n0, j->x + ((n + 1) * g->C + grp * Cg) * iv);
        j->kn->weight(&p, mo, j->dy + (n * g->O + o0) * ov, ov, acc, nt + 1, j->want_db);
    }
}

void cnni_conv_dw_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                  const float *dy, float *dw, float *db, void *scratch)
{
    regions r;
    carve(g, CNNI_DW_WEIGHT, pool, scratch, &r);
    wgt_job j;
    memset(&j, 0, sizeof j);
    j.kn = kernels_for(isa);
    plane_init(&j.proto, isa, g, cg_of(g), reads_in_place(g) || j.kn->pads(g, cg_of(g), og_of(g), 1), &r);
    j.x = x;
    j.dy = dy;
    j.want_db = db != NULL;
    j.partial = r.extra;
    j.r = &r;
    j.blocks = wgt_blocks(g);
    j.slices = wgt_slices(g);
    cnni_pool_run(pool, wgt_task, &j, g->G * j.blocks * j.slices);
    const int64_t nt = j.proto.ntaps;
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t i = 0; i <= nt; i++) {
            double s = 0;
            for (int64_t sl = 0; sl < j.slices; sl++)
                s += j.partial[(sl * g->O + o) * (nt + 1) + i];
            if (i < nt)
                dw[o * nt + i] += (float)s;
            else if (db)
                db[o] += (float)s;
        }
}
