/* Direct convolution driver; see conv_direct.h. */
#include "conv_direct.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <string.h>

cnni_direct_tile_fn cnni_direct_tile_avx512(int mr);

#define NR CNNI_DIRECT_NR

static int64_t vol3(const int64_t *v) { return v[0] * v[1] * v[2]; }

int cnni_direct_max_mr(int isa) { return isa == CNNI_ISA_AVX512 ? CNNI_DIRECT_MAX_MR : 0; }

cnni_direct_tile_fn cnni_direct_tile_for(int isa, int mr)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_tile_avx512(mr) : NULL;
}

int cnni_conv_direct_applies(int isa, const cnni_conv_geom *g)
{
    /* Worth it once a block of 32 output channels is mostly full. */
    return cnni_direct_max_mr(isa) > 0 && g->O / g->G >= 24 && g->N > 0;
}

/* The backward data pass as a stride-1 forward: needs stride 1 and left
 * padding within the dilated kernel (so the flipped problem pads, not crops). */
static void bwd_geom(const cnni_conv_geom *g, cnni_conv_geom *b)
{
    *b = *g;
    b->C = g->O;
    b->O = g->C;
    for (int i = 0; i < 3; i++) {
        b->in[i] = g->out[i];
        b->out[i] = g->in[i];
        b->p[i] = g->d[i] * (g->k[i] - 1) - g->p[i];
    }
}

int cnni_conv_direct_applies_bwd(int isa, const cnni_conv_geom *g)
{
    for (int i = 0; i < 3; i++)
        if (g->s[i] != 1 || g->p[i] > g->d[i] * (g->k[i] - 1))
            return 0;
    cnni_conv_geom b;
    bwd_geom(g, &b);
    return cnni_conv_direct_applies(isa, &b);
}

/* Extent of the zero-padded input the outputs read, per dim. */
static void padded_dims(const cnni_conv_geom *g, int64_t *pd)
{
    for (int i = 0; i < 3; i++)
        pd[i] = (g->out[i] - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1;
}

static size_t per_thread(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    return ((size_t)((g->C / g->G) * vol3(pd)) * sizeof(float) + 63) & ~(size_t)63;
}

static size_t shared_bytes(const cnni_conv_geom *g)
{
    int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k);
    int64_t nob = (Og + NR - 1) / NR;
    size_t w = (size_t)(g->G * nob * K * NR) * sizeof(float);
    size_t off = (size_t)K * sizeof(int64_t);
    return ((w + 63) & ~(size_t)63) + ((off + 63) & ~(size_t)63);
}

size_t cnni_conv_direct_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    (void)isa;
    cnni_conv_geom b;
    bwd_geom(g, &b);
    size_t f = per_thread(g) * (size_t)(threads > 0 ? threads : 1) + shared_bytes(g);
    size_t r = per_thread(&b) * (size_t)(threads > 0 ? threads : 1) + shared_bytes(&b);
    return (f > r ? f : r) + 128;
}

typedef struct {
    int isa;
    const cnni_conv_geom *g;
    const float *x, *b;
    float *y;
    const float *wp;     /* [G][nob][K][32] */
    const int64_t *off;  /* [K] */
    char *threads_base;  /* per-thread padded images */
    size_t thread_bytes;
    int nthreads;
    int64_t rows_per_task, row_tasks;
} job;

/* Zero-padded copy of one image group: the input shifted by the left
 * padding inside the extent the outputs read. */
static void pad_copy(const cnni_conv_geom *g, const float *x, float *xp)
{
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t Cg = g->C / g->G, pv = vol3(pd), iv = vol3(g->in);
    memset(xp, 0, sizeof(float) * (size_t)(Cg * pv));
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t a = 0; a < g->in[0]; a++) {
            int64_t pa = a + g->p[0];
            if (pa < 0 || pa >= pd[0])
                continue;
            for (int64_t b = 0; b < g->in[1]; b++) {
                int64_t pb = b + g->p[1];
                if (pb < 0 || pb >= pd[1])
                    continue;
                int64_t lo = 0, hi = g->in[2];
                if (g->p[2] < 0)
                    lo = -g->p[2];
                if (hi + g->p[2] > pd[2])
                    hi = pd[2] - g->p[2];
                if (lo >= hi)
                    continue;
                memcpy(xp + c * pv + (pa * pd[1] + pb) * pd[2] + lo + g->p[2],
                       x + c * iv + (a * g->in[1] + b) * g->in[2] + lo, sizeof(float) * (size_t)(hi - lo));
            }
        }
}

static void task(void *ctx, int64_t t)
{
    const job *j = ctx;
    const cnni_conv_geom *g = j->g;
    const int64_t rt = t % j->row_tasks, ng = t / j->row_tasks;
    const int64_t grp = ng % g->G, n = ng / g->G;
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), nob = (Og + NR - 1) / NR;
    int64_t pd[3];
    padded_dims(g, pd);
    float *xp = (float *)(j->threads_base + (size_t)(t % j->nthreads) * j->thread_bytes);
    pad_copy(g, j->x + (n * g->C + grp * Cg) * vol3(g->in), xp);
    const int64_t ov = vol3(g->out), rows = g->out[0] * g->out[1];
    const int64_t r0 = rt * j->rows_per_task, r1 = r0 + j->rows_per_task < rows ? r0 + j->rows_per_task : rows;
    const int maxmr = cnni_direct_max_mr(j->isa);
    for (int64_t ob = 0; ob < nob; ob++) {
        const float *w = j->wp + (grp * nob + ob) * K * NR;
        const int nvalid = (int)(Og - ob * NR < NR ? Og - ob * NR : NR);
        const float *bias = j->b ? j->b + grp * Og + ob * NR : NULL;
        float *ybase = j->y + (n * g->O + grp * Og + ob * NR) * ov;
        for (int64_t row = r0; row < r1; row++) {
            const int64_t z0 = row / g->out[1], z1 = row % g->out[1];
            const float *xrow = xp + (z0 * g->s[0] * pd[1] + z1 * g->s[1]) * pd[2];
            float *yrow = ybase + row * g->out[2];
            for (int64_t z2 = 0; z2 < g->out[2];) {
                int mr = (int)(g->out[2] - z2 < maxmr ? g->out[2] - z2 : maxmr);
                cnni_direct_tile_for(j->isa, mr)(K, j->off, xrow + z2 * g->s[2], g->s[2], w, yrow + z2, ov, nvalid,
                                                 bias, 0);
                z2 += mr;
            }
        }
    }
}

/* Packs w (O, C/G, k) as [G][nob][K][32] (transposed: channels last, zero
 * padded) and builds the offset table. flip: the backward data pass's
 * weights, w'[c][o][t] = w[o][c][last - t] read from the forward's w. */
static void pack(const cnni_conv_geom *g, const float *w, int flip, const cnni_conv_geom *fw, float *wp,
                 int64_t *off)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, kv = vol3(g->k), K = Cg * kv;
    const int64_t nob = (Og + NR - 1) / NR;
    memset(wp, 0, sizeof(float) * (size_t)(g->G * nob * K * NR));
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t t = 0; t < kv; t++) {
                    float v;
                    if (!flip)
                        v = w[((grp * Og + o) * Cg + c) * kv + t];
                    else /* forward weight is (fw->O, fw->C/G, k) = (Cg here, Og here) */
                        v = w[((grp * Cg + c) * Og + o) * kv + (kv - 1 - t)];
                    wp[((grp * nob + o / NR) * K + c * kv + t) * NR + o % NR] = v;
                }
    (void)fw;
    int64_t pd[3];
    padded_dims(g, pd);
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t t0 = 0; t0 < g->k[0]; t0++)
            for (int64_t t1 = 0; t1 < g->k[1]; t1++)
                for (int64_t t2 = 0; t2 < g->k[2]; t2++)
                    off[(c * g->k[0] + t0) * g->k[1] * g->k[2] + t1 * g->k[2] + t2] =
                        c * vol3(pd) + (t0 * g->d[0] * pd[1] + t1 * g->d[1]) * pd[2] + t2 * g->d[2];
}

static void run(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x, const float *wsrc,
                int flip, const float *b, float *y, void *scratch)
{
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), nob = (Og + NR - 1) / NR;
    float *wp = (float *)base;
    int64_t *off = (int64_t *)(base + (((size_t)(g->G * nob * K * NR) * sizeof(float) + 63) & ~(size_t)63));
    pack(g, wsrc, flip, NULL, wp, off);
    const int nthreads = cnni_pool_threads(pool);
    /* Whole images per task when there are enough; otherwise rows too. */
    const int64_t rows = g->out[0] * g->out[1];
    int64_t row_tasks = g->N * g->G >= 2 * nthreads ? 1 : (rows < 4 ? rows : 4);
    if (row_tasks < 1)
        row_tasks = 1;
    job j = {isa, g, x, b, y, wp, off, base + shared_bytes(g), per_thread(g), nthreads,
             (rows + row_tasks - 1) / row_tasks, row_tasks};
    cnni_pool_run(pool, task, &j, g->N * g->G * row_tasks);
}

void cnni_conv_direct_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                              const float *w, const float *b, float *y, void *scratch)
{
    run(isa, pool, g, x, w, 0, b, y, scratch);
}

void cnni_conv_direct_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                    const float *w, float *dx, void *scratch)
{
    cnni_conv_geom b;
    bwd_geom(g, &b);
    run(isa, pool, &b, dy, w, 1, NULL, dx, scratch);
}
