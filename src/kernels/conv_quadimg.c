/* Driver of the F(4,5) input gradient with images along the lanes; see
 * conv_quadimg.h. */
#include "conv_quadimg.h"
#include "conv_direct.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <stdint.h>
#include <string.h>

#define LANES 16

/* 2-d or 1-d (the leading dim unused), stride and dilation 1, kernels 5
 * wide, at most 64 padded rows, and 12 or more images (the lanes mostly
 * full); the weight gradient on outputs 4 to 28 wide (a padded row in two
 * vectors) whose transforms take at most about a megabyte per thread, the
 * input gradient on outputs 4 to 12 wide (a padded row in one). */
static int served(int isa, const cnni_conv_geom *g, int64_t widest)
{
    for (int i = 0; i < 3; i++)
        if (g->s[i] != 1 || g->d[i] != 1)
            return 0;
    return isa == CNNI_ISA_AVX512 && g->k[0] == 1 && g->in[0] == 1 && g->p[0] == 0 && g->k[2] == 5 &&
           g->out[2] >= 4 && g->out[2] <= widest && g->out[1] + g->k[1] - 1 <= 64 && g->N >= 12 && g->G >= 1 &&
           g->C % g->G == 0 && g->O % g->G == 0 && g->p[1] < g->k[1] && g->p[2] < 5;
}

int cnni_conv_quadimg_applies(int isa, const cnni_conv_geom *g) { return served(isa, g, 12); }

int cnni_conv_quadimg_applies_weight(int isa, const cnni_conv_geom *g)
{
    const int64_t nq = (g->out[2] + 3) / 4, HP = g->out[1] + g->k[1] - 1;
    return served(isa, g, 28) && (g->O / g->G * g->out[1] + g->C / g->G * HP) * nq <= 2048;
}

int cnni_conv_quadimg_applies_forward(int isa, const cnni_conv_geom *g)
{
    const int64_t nq = (g->out[2] + 3) / 4, HP = g->out[1] + g->k[1] - 1;
    return served(isa, g, 28) && g->C / g->G <= 2 && g->C / g->G * HP * nq <= 2048;
}

/* F(4,5)'s weight transform (conv_direct.h) */
#define G5 cnni_f45_weight

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

typedef struct {
    size_t u, ady, m, cols;    /* input gradient, bytes: shared weights; per thread the three buffers */
    size_t part, bx, tmp;      /* weight gradient: per task its sums; per thread x's transform and the
                                * reference's sums (with ady) */
} sizes;

static sizes sizes_of(const cnni_conv_geom *g)
{
    const int64_t Og = g->O / g->G, Cg = g->C / g->G, nq = (g->out[2] + 3) / 4, HP = g->out[1] + g->k[1] - 1;
    const int64_t KR = g->k[1];
    sizes s;
    s.u = align64((size_t)(g->G * Og * KR * 8 * Cg) * sizeof(float));
    s.ady = align64((size_t)(Og * g->out[1] * nq * 8 * LANES) * sizeof(float));
    s.m = align64((size_t)(Cg * HP * 8 * LANES) * sizeof(float));
    s.cols = align64((size_t)(Cg * HP * 16 * LANES) * sizeof(float));
    s.part = align64((size_t)(Og * Cg * KR * 5 + Og) * sizeof(double));
    s.bx = align64((size_t)(Cg * HP * nq * 8 * LANES) * sizeof(float));
    s.tmp = align64((size_t)(Og * Cg * KR * 8 + Og) * sizeof(double) + (size_t)(Og * Cg * KR * 5 + Og) * sizeof(float));
    return s;
}

static int64_t blocks_of(const cnni_conv_geom *g) { return (g->N + LANES - 1) / LANES; }

/* A task's block of images from n0: the geometry's fields (the caller
 * adds the pointers). */
static cnni_quadimg_block block_of(const cnni_conv_geom *g, int64_t n0)
{
    return (cnni_quadimg_block){.nb = (int)(g->N - n0 < LANES ? g->N - n0 : LANES),
                                .Og = g->O / g->G,
                                .Cg = g->C / g->G,
                                .OH = g->out[1],
                                .OW = g->out[2],
                                .KR = g->k[1],
                                .H = g->in[1],
                                .W = g->in[2],
                                .p1 = g->p[1],
                                .p2 = g->p[2]};
}

/* One image's group as a convolution of its own, for the reference
 * kernels that take a block whose sums are not finite. */
static cnni_conv_geom one_group(const cnni_conv_geom *g)
{
    cnni_conv_geom one = *g;
    one.N = 1;
    one.G = 1;
    one.C = g->C / g->G;
    one.O = g->O / g->G;
    return one;
}

/* Per thread: dy's transform, then for the weight gradient x's transform
 * and the sums (or the reference's), for the input gradient M and the
 * columns. */
static size_t thread_bytes(const sizes *s, int data, int weight)
{
    return s->ady + (weight ? s->bx + s->tmp : 0) + (data ? s->m + s->cols : 0);
}

/* Shared: the transformed weights (input gradient), each task's sums
 * (weight gradient); then the threads' areas. */
static size_t scratch_bytes(const cnni_conv_geom *g, int threads, int data, int weight)
{
    const sizes s = sizes_of(g);
    return 64 + (data ? s.u : 0) + (weight ? (size_t)(g->G * blocks_of(g)) * s.part : 0) +
           (size_t)(threads > 0 ? threads : 1) * thread_bytes(&s, data, weight);
}

size_t cnni_conv_quadimg_scratch(int isa, const cnni_conv_geom *g, int threads, int data, int weight)
{
    if ((data && !cnni_conv_quadimg_applies(isa, g)) || (weight && !cnni_conv_quadimg_applies_weight(isa, g)))
        return 0;
    return scratch_bytes(g, threads, data, weight);
}

/* u[grp][o][kr][j][c] = sum_t G5[j][t] w[grp*Og + o][c][kr][t]: the
 * forward's weights, not flipped (the transpose reverses the taps). */
static void pack(const cnni_conv_geom *g, const float *w, float *u)
{
    const int64_t Og = g->O / g->G, Cg = g->C / g->G, KR = g->k[1];
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t c = 0; c < Cg; c++) {
                float gw[64 * 8]; /* KR <= 64 (served) */
                cnni_quadimg_g_rows_avx512(KR, w + ((grp * Og + o) * Cg + c) * KR * 5, gw);
                for (int64_t kr = 0; kr < KR; kr++) {
                    float *uk = u + (((grp * Og + o) * KR + kr) * 8) * Cg + c;
                    for (int j = 0; j < 8; j++)
                        uk[j * Cg] = gw[kr * 8 + j];
                }
            }
}

typedef struct {
    const cnni_conv_geom *g;
    const float *x, *dy, *w, *u;
    const cnni_quadimg_act *act; /* dy made as read; then dy is written only for the reference */
    float *dx;          /* NULL: no input gradient */
    double *parts;      /* NULL: no weight gradient; else per task dw's sums [Og][Cg][KR][5], db's [Og] */
    char *threads_base;
    size_t thread_bytes;
    sizes s;
    int64_t blocks;
} job;

/* Where dy is made as it is read, the block's dy written for the
 * reference kernels (once). */
static void write_dy(const job *j, cnni_quadimg_block *b)
{
    if (!b->ay)
        return;
    cnni_quadimg_dy_rows_avx512(b, (float *)(uintptr_t)b->dy); /* the caller's writable dy */
    b->ay = NULL;
}

/* Task (group, block of 16 images): dy transformed once, then the weight
 * gradient's sums (in the order of dw) and the input gradient. */
static void task(void *ctx, int64_t t, int thread)
{
    const job *j = ctx;
    const cnni_conv_geom *g = j->g;
    const int64_t grp = t / j->blocks, n0 = (t % j->blocks) * LANES;
    const int64_t Og = g->O / g->G, Cg = g->C / g->G, KR = g->k[1], iv = g->in[1] * g->in[2];
    const int64_t ov = g->out[1] * g->out[2], nk = Og * Cg * KR;
    char *mine = j->threads_base + (size_t)thread * j->thread_bytes, *next = mine + j->s.ady;
    cnni_quadimg_block b = block_of(g, n0);
    b.dy = j->dy + (n0 * g->O + grp * Og) * ov;
    b.dy_img = g->O * ov;
    b.ady = (float *)mine;
    if (j->act) {
        b.ay = j->act->y + (n0 * g->O + grp * Og) * ov;
        b.dp = j->act->dp + (n0 * g->O + grp * Og) * (ov / 4);
        b.dp_img = g->O * (ov / 4);
        b.act_tanh = j->act->tanh_;
    }
    const cnni_conv_geom one = one_group(g);
    if (j->parts) {
        double *m = (double *)(next + j->s.bx), *out = j->parts + (size_t)t * (j->s.part / sizeof(double));
        b.x = j->x + (n0 * g->C + grp * Cg) * iv;
        b.x_img = g->C * iv;
        b.bx = (float *)next;
        b.part = m;
        b.dbpart = m + nk * 8;
        next += j->s.bx + j->s.tmp;
        if (!cnni_quadimg_weight_block_avx512(&b)) {
            cnni_quadimg_g_transpose_avx512(nk, m, out);
            for (int64_t o = 0; o < Og; o++)
                out[nk * 5 + o] = b.dbpart[o];
        } else {
            /* a NaN or an infinity: these images again, directly */
            write_dy(j, &b);
            float *dw = (float *)(m + nk * 8 + Og), *db = dw + nk * 5;
            memset(dw, 0, sizeof(float) * (size_t)(nk * 5 + Og));
            for (int l = 0; l < b.nb; l++)
                cnni_ref_conv_backward_weight_f32(&one, b.x + l * b.x_img, b.dy + l * b.dy_img, dw, db);
            for (int64_t k = 0; k < nk * 5 + Og; k++)
                out[k] = dw[k];
        }
        b.ady_ready = 1;
    }
    if (!j->dx)
        return;
    b.u = j->u + grp * Og * KR * 8 * Cg;
    b.dx = j->dx + (n0 * g->C + grp * Cg) * iv;
    b.dx_img = g->C * iv;
    b.m = (float *)next;
    b.cols = (float *)(next + j->s.m);
    if (!cnni_quadimg_data_block_avx512(&b))
        return;
    /* a NaN or an infinity: these images' group again, directly */
    write_dy(j, &b);
    for (int l = 0; l < b.nb; l++)
        cnni_ref_conv_backward_data_f32(&one, b.dy + l * b.dy_img, j->w + grp * Og * Cg * KR * 5, b.dx + l * b.dx_img);
}

static void backward(struct cnni_pool *pool, const cnni_conv_geom *g, const float *x, const float *dy,
                     const cnni_quadimg_act *act, const float *w, float *dx, float *dw, float *db, void *scratch)
{
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    job j = {g, x, dy, w, NULL, act, dx, NULL, NULL, 0, sizes_of(g), blocks_of(g)};
    const int64_t tasks = g->G * j.blocks, per = (int64_t)(j.s.part / sizeof(double));
    if (dx) {
        pack(g, w, (float *)base);
        j.u = (const float *)base;
        base += j.s.u;
    }
    if (dw) {
        j.parts = (double *)base;
        base += (size_t)tasks * j.s.part;
    }
    j.threads_base = base;
    j.thread_bytes = thread_bytes(&j.s, dx != NULL, dw != NULL);
    cnni_pool_run(pool, task, &j, tasks);
    if (!dw)
        return;
    /* each group's blocks added in order */
    const int64_t Og = g->O / g->G, nk5 = Og * (g->C / g->G) * g->k[1] * 5;
    for (int64_t grp = 0; grp < g->G; grp++) {
        const double *p0 = j.parts + grp * j.blocks * per;
        for (int64_t k = 0; k < nk5; k++) {
            double v = 0;
            for (int64_t blk = 0; blk < j.blocks; blk++)
                v += p0[blk * per + k];
            dw[grp * nk5 + k] += (float)v;
        }
        if (db)
            for (int64_t o = 0; o < Og; o++) {
                double v = 0;
                for (int64_t blk = 0; blk < j.blocks; blk++)
                    v += p0[blk * per + nk5 + o];
                db[grp * Og + o] += (float)v;
            }
    }
}

void cnni_conv_quadimg_backward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                const float *dy, const float *w, float *dx, float *dw, float *db, void *scratch)
{
    (void)isa;
    backward(pool, g, x, dy, NULL, w, dx, dw, db, scratch);
}

int cnni_conv_quadimg_act_applies(int isa, const cnni_conv_geom *g, int data)
{
    return cnni_conv_quadimg_applies_weight(isa, g) && (!data || cnni_conv_quadimg_applies(isa, g)) &&
           g->out[1] % 2 == 0 && g->out[2] % 2 == 0;
}

void cnni_conv_quadimg_backward_act(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                    const cnni_quadimg_act *act, float *dy, const float *w, float *dx, float *dw,
                                    float *db, void *scratch)
{
    (void)isa;
    backward(pool, g, x, dy, act, w, dx, dw, db, scratch);
}

/* ---- forward ---- */

/* The forward's weights: uf[grp][c][kr][jh][o][jj] = (G w[grp*Og + o][c][kr])[jh*4 + jj]. */
static void pack_forward(const cnni_conv_geom *g, const float *w, float *uf)
{
    const int64_t Og = g->O / g->G, Cg = g->C / g->G, KR = g->k[1];
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t c = 0; c < Cg; c++) {
                float gw[64 * 8]; /* KR <= 64 (served) */
                cnni_quadimg_g_rows_avx512(KR, w + ((grp * Og + o) * Cg + c) * KR * 5, gw);
                for (int64_t kr = 0; kr < KR; kr++) {
                    float *uk = uf + ((grp * Cg + c) * KR + kr) * 2 * Og * 4 + o * 4;
                    for (int j = 0; j < 8; j++)
                        uk[(j / 4) * Og * 4 + j % 4] = gw[kr * 8 + j];
                }
            }
}

typedef struct {
    const cnni_conv_geom *g;
    const float *x, *w, *b, *u;
    float *y;
    char *threads_base;
    size_t thread_bytes;
    int64_t blocks;
} fjob;

size_t cnni_conv_quadimg_forward_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    if (!cnni_conv_quadimg_applies_forward(isa, g))
        return 0;
    const sizes s = sizes_of(g);
    return 64 + s.u + (size_t)(threads > 0 ? threads : 1) * s.bx;
}

static void ftask(void *ctx, int64_t t, int thread)
{
    const fjob *j = ctx;
    const cnni_conv_geom *g = j->g;
    const int64_t grp = t / j->blocks, n0 = (t % j->blocks) * LANES;
    const int64_t Og = g->O / g->G, Cg = g->C / g->G, KR = g->k[1], iv = g->in[1] * g->in[2];
    const int64_t ov = g->out[1] * g->out[2];
    cnni_quadimg_block b = block_of(g, n0);
    b.u = j->u + grp * Cg * KR * 8 * Og;
    b.x = j->x + (n0 * g->C + grp * Cg) * iv;
    b.x_img = g->C * iv;
    b.bx = (float *)(j->threads_base + (size_t)thread * j->thread_bytes);
    b.y = j->y + (n0 * g->O + grp * Og) * ov;
    b.y_img = g->O * ov;
    b.bias = j->b ? j->b + grp * Og : NULL;
    if (!cnni_quadimg_forward_block_avx512(&b))
        return;
    /* a NaN or an infinity: these images' group again, directly */
    const cnni_conv_geom one = one_group(g);
    for (int l = 0; l < b.nb; l++)
        cnni_ref_conv_forward_f32(&one, b.x + l * b.x_img, j->w + grp * Og * Cg * KR * 5, b.bias, b.y + l * b.y_img);
}

void cnni_conv_quadimg_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                               const float *w, const float *b, float *y, void *scratch)
{
    (void)isa;
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const sizes s = sizes_of(g);
    fjob j = {g, x, w, b, (const float *)base, y, base + s.u, s.bx, blocks_of(g)};
    pack_forward(g, w, (float *)base);
    cnni_pool_run(pool, ftask, &j, g->G * j.blocks);
}
