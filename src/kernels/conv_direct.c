/* Direct convolution driver; see conv_direct.h. */
#include "conv_direct.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <string.h>

cnni_direct_tile_fn cnni_direct_tile_avx512(int nr, int mr);
cnni_direct_wino_fn cnni_direct_wino_avx512(int np);
void cnni_direct_wino_input_avx512(const float *x, int64_t width, int64_t rows, float *d);
cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_avx512(int mk);
void cnni_direct_wino_dy_avx512(int64_t npairs, const float *dyt, float *a);
cnni_direct_quad_fn cnni_direct_quad_avx512(int nq);
void cnni_direct_quad_input_avx512(const float *x, int64_t width, int64_t rows, int64_t channels, int nq,
                                   float *d);
void cnni_direct_quad_weights_avx512(const double v[5][16], float *uk);
cnni_direct_wtile_fn cnni_direct_wtile_avx512(int nr, int mk);
int cnni_direct_max_mr_avx2(void);
cnni_direct_tile_fn cnni_direct_tile_avx2(int nr, int mr);
cnni_direct_wtile_fn cnni_direct_wtile_avx2(int nr, int mk);
cnni_direct_wino_fn cnni_direct_wino_avx2(int np);
void cnni_direct_wino_input_avx2(const float *x, int64_t width, int64_t rows, float *d);
cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_avx2(int mk);
void cnni_direct_wino_dy_avx2(int64_t npairs, const float *dyt, float *a);
void cnni_direct_transpose_avx2(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst, float *sum);

static int64_t vol3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* Channels per block: 16 when a group has no more (a block of 32 would be
 * half empty). */
static int64_t nr_of(const cnni_conv_geom *g) { return g->O / g->G <= 16 ? 16 : CNNI_DIRECT_NR; }

int cnni_direct_max_mr(int isa)
{
    return isa == CNNI_ISA_AVX512 ? CNNI_DIRECT_MAX_MR : isa == CNNI_ISA_AVX2 ? cnni_direct_max_mr_avx2() : 0;
}

cnni_direct_tile_fn cnni_direct_tile_for(int isa, int nr, int mr)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_tile_avx512(nr, mr)
           : isa == CNNI_ISA_AVX2 ? cnni_direct_tile_avx2(nr, mr)
                                  : NULL;
}

cnni_direct_wino_fn cnni_direct_wino_for(int isa, int np)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_wino_avx512(np)
           : isa == CNNI_ISA_AVX2 ? cnni_direct_wino_avx2(np)
                                  : NULL;
}

void cnni_direct_wino_input(int isa, const float *x, int64_t width, int64_t rows, float *d)
{
    if (isa == CNNI_ISA_AVX512)
        cnni_direct_wino_input_avx512(x, width, rows, d);
    else if (isa == CNNI_ISA_AVX2)
        cnni_direct_wino_input_avx2(x, width, rows, d);
}

cnni_direct_quad_fn cnni_direct_quad_for(int isa, int nq)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_quad_avx512(nq) : NULL;
}

void cnni_direct_quad_input(int isa, const float *x, int64_t width, int64_t rows, int64_t channels, int nq,
                            float *d)
{
    if (isa == CNNI_ISA_AVX512)
        cnni_direct_quad_input_avx512(x, width, rows, channels, nq, d);
}

cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_for(int isa, int mk)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_wino_wtile_avx512(mk)
           : isa == CNNI_ISA_AVX2 ? cnni_direct_wino_wtile_avx2(mk)
                                  : NULL;
}

void cnni_direct_wino_dy(int isa, int64_t npairs, const float *dyt, float *a)
{
    if (isa == CNNI_ISA_AVX512)
        cnni_direct_wino_dy_avx512(npairs, dyt, a);
    else if (isa == CNNI_ISA_AVX2)
        cnni_direct_wino_dy_avx2(npairs, dyt, a);
}

/* Whether the pass runs as Winograd F(2,5) along the rows (conv_direct.h). */
static int wino(int isa, const cnni_conv_geom *g)
{
    /* AVX2 from 8 outputs a row: below, transforming every input row costs
     * more than the products save. 5x5 kernels to 16 channels, 64 images,
     * one thread, forward / weight gradient in us, F(2,5) vs the direct
     * tiles: from 6 channels, 4 x 4 outputs 66 / 97 vs 50 / 66, 6 x 6 99 / 140
     * vs 104 / 120, 8 x 8 153 / 198 vs 223 / 198, 10 x 10 (LeNet's conv2)
     * 216 / 265 vs 291 / 299; from 16 channels, 6 x 6 308 / 360 vs 269 / 312. */
    const int isa_ok = isa == CNNI_ISA_AVX512 || (isa == CNNI_ISA_AVX2 && g->out[2] >= 8);
    /* 1 and 2 dims: on 3D kernels of 5x5x5 and more the error grew to
     * within 2x of PyTorch's tolerance in the unit tests */
    return isa_ok && nr_of(g) == 16 && g->k[0] == 1 && g->k[2] == 5 && g->s[2] == 1 &&
           g->d[2] == 1 && g->out[2] % 2 == 0 && g->out[2] <= 16;
}

/* A row's transform: 6 vectors of 16 lanes. */
#define WROW 96

/* Whether the forward (or backward data) pass of such a layer runs as
 * F(4,5) instead (AVX-512; conv_direct.h): 20% fewer products than F(2,5)
 * on rows of 10 (3 quads, 24 a (channel, kernel row), vs 5 pairs, 30).
 * LeNet's conv2 (6 to 16 channels, 14 x 14, 64 images), one thread,
 * forward, fastest of 11 runs: 200 us F(2,5), 168 us F(4,5). */
static int quad(int isa, const cnni_conv_geom *g)
{
    /* rows of 2: half a quad would be wasted, one F(2,5) pair is not
     * (6 -> 16 channels, 6 x 6, 64 images: 41 vs 27 us) */
    return isa == CNNI_ISA_AVX512 && wino(isa, g) && g->out[2] >= 4;
}
static int64_t quads_of(const cnni_conv_geom *g) { return (g->out[2] + 3) / 4; }
static void padded_dims(const cnni_conv_geom *g, int64_t *pd);
/* The rows of a channel in the F(4,5) transform: the padded input's,
 * rounded up to 16. */
static int64_t quad_ld(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    return (pd[0] * pd[1] + 15) & ~(int64_t)15;
}

int cnni_conv_direct_applies(int isa, const cnni_conv_geom *g)
{
    /* Worth it once a block of channels is mostly full. */
    const int64_t og = g->O / g->G;
    return cnni_direct_max_mr(isa) > 0 && (og >= 24 || (og >= 12 && og <= 16)) && g->N > 0;
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

int cnni_conv_direct_wino(int isa, const cnni_conv_geom *g)
{
    return cnni_conv_direct_applies(isa, g) && wino(isa, g);
}

int cnni_conv_direct_wino_bwd(int isa, const cnni_conv_geom *g)
{
    cnni_conv_geom b;
    bwd_geom(g, &b);
    return cnni_conv_direct_applies_bwd(isa, g) && wino(isa, &b);
}

/* Extent of the zero-padded input the outputs read, per dim. */
static void padded_dims(const cnni_conv_geom *g, int64_t *pd)
{
    for (int i = 0; i < 3; i++)
        pd[i] = (g->out[i] - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1;
}

/* Per thread: the padded copy, and with Winograd the rows' transform. */
static size_t per_thread(int isa, const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    size_t b = ((size_t)((g->C / g->G) * vol3(pd)) * sizeof(float) + 63) & ~(size_t)63;
    if (quad(isa, g))
        b += (size_t)((g->C / g->G) * 8 * quads_of(g) * quad_ld(g)) * sizeof(float);
    else if (wino(isa, g))
        b += (size_t)((g->C / g->G) * pd[0] * pd[1] * WROW) * sizeof(float);
    return b;
}

/* The packed weights' bytes, a whole number of cache lines. */
static size_t weight_bytes(int isa, const cnni_conv_geom *g)
{
    int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), nr = nr_of(g);
    int64_t nob = (Og + nr - 1) / nr;
    size_t w = (size_t)(g->G * nob * K * nr) * sizeof(float);
    if (quad(isa, g)) /* K / 5 kernel rows x 8 vectors */
        w = (size_t)(g->G * (K / 5) * 8 * 16) * sizeof(float);
    else if (wino(isa, g)) /* K / 5 kernel rows x 6 vectors */
        w = (size_t)(g->G * (K / 5) * 6 * 16) * sizeof(float);
    return (w + 63) & ~(size_t)63;
}

static size_t shared_bytes(int isa, const cnni_conv_geom *g)
{
    size_t off = (size_t)((g->C / g->G) * vol3(g->k)) * sizeof(int64_t);
    return weight_bytes(isa, g) + ((off + 63) & ~(size_t)63);
}

size_t cnni_conv_direct_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    cnni_conv_geom b;
    bwd_geom(g, &b);
    size_t f = per_thread(isa, g) * (size_t)(threads > 0 ? threads : 1) + shared_bytes(isa, g);
    size_t r = per_thread(isa, &b) * (size_t)(threads > 0 ? threads : 1) + shared_bytes(isa, &b);
    return (f > r ? f : r) + 128;
}

typedef struct {
    int isa;
    const cnni_conv_geom *g;
    const float *x, *b;
    float *y;
    const float *wp;     /* [G][nob][K][nr] */
    const int64_t *off;  /* [K] */
    char *threads_base;  /* per-thread padded images */
    size_t thread_bytes;
    int64_t rows_per_task, row_tasks;
    const float *w;      /* the weights as given (see pack), for direct_pairs */
    int flip;
} job;

/* Zero-padded copy of channels [c0, c1) of one image group: the input
 * shifted by the left padding inside the extent the outputs read. */
static void pad_channels(const cnni_conv_geom *g, const float *x, float *xp, int64_t c0, int64_t c1)
{
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t pv = vol3(pd), iv = vol3(g->in);
    memset(xp + c0 * pv, 0, sizeof(float) * (size_t)((c1 - c0) * pv));
    for (int64_t c = c0; c < c1; c++)
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

/* Whether the outputs read exactly the input, unpadded: then it is read in
 * place. */
static int same_extent(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    for (int i = 0; i < 3; i++)
        if (g->p[i] != 0 || pd[i] != g->in[i])
            return 0;
    return 1;
}

/* The Winograd rows of task t: every input row transformed into d, then
 * each output row in tiles of up to 5 pairs. */
/* Outputs [z2a, z2b) of output row `row` of every output channel of group
 * grp, summed directly in double from the padded input xp and the weights
 * as given. The F(2,5) transforms spread a NaN or an infinity over every
 * pair whose inputs hold it (and inputs near the float range overflow in
 * them), where the direct sum leaves the outputs that never read such a
 * value finite: pairs that came out NaN or infinite are summed again, so
 * they hold what PyTorch's direct convolution gives. */
static void direct_pairs(const job *j, int64_t grp, const float *xp, int64_t row, int64_t z2a, int64_t z2b,
                         float *ybase)
{
    const cnni_conv_geom *g = j->g;
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, kv = vol3(g->k), ov = vol3(g->out);
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t z0 = row / g->out[1], z1 = row % g->out[1];
    for (int64_t o = 0; o < Og; o++)
        for (int64_t z2 = z2a; z2 < z2b; z2++) {
            double s = j->b ? j->b[grp * Og + o] : 0.0;
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t t0 = 0; t0 < g->k[0]; t0++)
                    for (int64_t t1 = 0; t1 < g->k[1]; t1++)
                        for (int64_t t2 = 0; t2 < g->k[2]; t2++) {
                            const int64_t t = (t0 * g->k[1] + t1) * g->k[2] + t2;
                            const float wv = j->flip ? j->w[((grp * Cg + c) * Og + o) * kv + (kv - 1 - t)]
                                                     : j->w[((grp * Og + o) * Cg + c) * kv + t];
                            const float xv = xp[((c * pd[0] + z0 * g->s[0] + t0 * g->d[0]) * pd[1] + z1 * g->s[1] +
                                                 t1 * g->d[1]) * pd[2] + z2 * g->s[2] + t2 * g->d[2]];
                            s += (double)xv * (double)wv;
                        }
            ybase[o * ov + row * g->out[2] + z2] = (float)s;
        }
}

static void wino_rows(const job *j, int64_t t, const float *xp, float *d)
{
    const cnni_conv_geom *g = j->g;
    const int64_t rt = t % j->row_tasks, ng = t / j->row_tasks, grp = ng % g->G, n = ng / g->G;
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * g->k[0] * g->k[1];
    int64_t pd[3];
    padded_dims(g, pd);
    cnni_direct_wino_input(j->isa, xp, pd[2], Cg * pd[0] * pd[1], d);
    const int64_t ov = vol3(g->out), rows = g->out[0] * g->out[1], np = g->out[2] / 2;
    const int64_t r0 = rt * j->rows_per_task, r1 = r0 + j->rows_per_task < rows ? r0 + j->rows_per_task : rows;
    const int64_t tiles = (np + 4) / 5;
    const float *u = j->wp + grp * K * 6 * 16, *bias = j->b ? j->b + grp * Og : NULL;
    float *ybase = j->y + (n * g->O + grp * Og) * ov;
    for (int64_t row = r0; row < r1; row++) {
        const int64_t z0 = row / g->out[1], z1 = row % g->out[1];
        const float *drow = d + (z0 * g->s[0] * pd[1] + z1 * g->s[1]) * WROW;
        for (int64_t ti = 0; ti < tiles; ti++) {
            int64_t p0, p1;
            cnni_split(np, tiles, ti, &p0, &p1);
            if (cnni_direct_wino_for(j->isa, (int)(p1 - p0))(K, j->off, drow + 2 * p0, u,
                                                             ybase + row * g->out[2] + 2 * p0, ov, (int)Og, bias))
                direct_pairs(j, grp, xp, row, 2 * p0, 2 * p1, ybase);
        }
    }
}

/* The F(4,5) rows of task t: every input row transformed into d, then
 * each output row in tiles of up to 3 quads. */
static void quad_rows(const job *j, int64_t t, const float *xp, float *d)
{
    const cnni_conv_geom *g = j->g;
    const int64_t rt = t % j->row_tasks, ng = t / j->row_tasks, grp = ng % g->G, n = ng / g->G;
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * g->k[0] * g->k[1], nq = quads_of(g);
    int64_t pd[3];
    padded_dims(g, pd);
    cnni_direct_quad_input(j->isa, xp, pd[2], pd[0] * pd[1], Cg, (int)nq, d);
    const int64_t ov = vol3(g->out), rows = g->out[0] * g->out[1], width = g->out[2];
    const int64_t r0 = rt * j->rows_per_task, r1 = r0 + j->rows_per_task < rows ? r0 + j->rows_per_task : rows;
    const int64_t tiles = nq == 4 ? 2 : 1, ld = quad_ld(g);
    const float *u = j->wp + grp * K * 8 * 16, *bias = j->b ? j->b + grp * Og : NULL;
    float *ybase = j->y + (n * g->O + grp * Og) * ov;
    for (int64_t row = r0; row < r1; row++) {
        const int64_t z0 = row / g->out[1], z1 = row % g->out[1];
        const float *drow = d + z0 * g->s[0] * pd[1] + z1 * g->s[1];
        for (int64_t ti = 0; ti < tiles; ti++) {
            int64_t q0, q1;
            cnni_split(nq, tiles, ti, &q0, &q1);
            const int64_t z2a = 4 * q0, z2b = 4 * q1 < width ? 4 * q1 : width;
            const cnni_direct_quad_fn f = cnni_direct_quad_for(j->isa, (int)nq);
            if (f(K, j->off, drow + q0 * ld, ld, u, ybase + row * width + z2a, ov, (int)(z2b - z2a), (int)Og, bias))
                direct_pairs(j, grp, xp, row, z2a, z2b, ybase);
        }
    }
}

static void task(void *ctx, int64_t t, int thread)
{
    const job *j = ctx;
    const cnni_conv_geom *g = j->g;
    const int64_t rt = t % j->row_tasks, ng = t / j->row_tasks;
    const int64_t grp = ng % g->G, n = ng / g->G;
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), nr = nr_of(g), nob = (Og + nr - 1) / nr;
    int64_t pd[3];
    padded_dims(g, pd);
    const float *xg = j->x + (n * g->C + grp * Cg) * vol3(g->in), *xp = xg;
    char *mine = j->threads_base + (size_t)thread * j->thread_bytes;
    if (!same_extent(g)) {
        float *buf = (float *)mine;
        pad_channels(g, xg, buf, 0, Cg);
        xp = buf;
    }
    /* the rows' Winograd transform, after the padded copy */
    float *d = (float *)(mine + (((size_t)(Cg * vol3(pd)) * sizeof(float) + 63) & ~(size_t)63));
    if (quad(j->isa, g)) {
        quad_rows(j, t, xp, d);
        return;
    }
    if (wino(j->isa, g)) {
        wino_rows(j, t, xp, d);
        return;
    }
    const int64_t ov = vol3(g->out), rows = g->out[0] * g->out[1];
    const int64_t r0 = rt * j->rows_per_task, r1 = r0 + j->rows_per_task < rows ? r0 + j->rows_per_task : rows;
    const int maxmr = cnni_direct_max_mr(j->isa);
    /* Every channel block of a pixel tile in turn, while the tile's input
     * (K values per pixel) is in L1. */
    for (int64_t row = r0; row < r1; row++) {
        const int64_t z0 = row / g->out[1], z1 = row % g->out[1];
        const float *xrow = xp + (z0 * g->s[0] * pd[1] + z1 * g->s[1]) * pd[2];
        for (int64_t z2 = 0; z2 < g->out[2];) {
            const int mr = (int)(g->out[2] - z2 < maxmr ? g->out[2] - z2 : maxmr);
            for (int64_t ob = 0; ob < nob; ob++) {
                const float *w = j->wp + (grp * nob + ob) * K * nr;
                const int nvalid = (int)(Og - ob * nr < nr ? Og - ob * nr : nr);
                const float *bias = j->b ? j->b + grp * Og + ob * nr : NULL;
                float *yrow = j->y + (n * g->O + grp * Og + ob * nr) * ov + row * g->out[2];
                cnni_direct_tile_for(j->isa, (int)nr, mr)(K, j->off, xrow + z2 * g->s[2], g->s[2], w, yrow + z2, ov,
                                                          nvalid, bias, 0);
            }
            z2 += mr;
        }
    }
}

/* Packs w (O, C/G, k) as [G][nob][K][nr] (transposed: channels last, zero
 * padded) and builds the offset table. flip: the backward data pass's
 * weights, w'[c][o][t] = w[o][c][last - t] read from the forward's w. */
static void pack(const cnni_conv_geom *g, const float *w, int flip, const cnni_conv_geom *fw, float *wp,
                 int64_t *off)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, kv = vol3(g->k), K = Cg * kv, nr = nr_of(g);
    const int64_t nob = (Og + nr - 1) / nr;
    memset(wp, 0, sizeof(float) * (size_t)(g->G * nob * K * nr));
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t t = 0; t < kv; t++) {
                    float v;
                    if (!flip)
                        v = w[((grp * Og + o) * Cg + c) * kv + t];
                    else /* forward weight is (fw->O, fw->C/G, k) = (Cg here, Og here) */
                        v = w[((grp * Cg + c) * Og + o) * kv + (kv - 1 - t)];
                    wp[((grp * nob + o / nr) * K + c * kv + t) * nr + o % nr] = v;
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

/* The Winograd weights: u[grp][c, t0, t1][j][o] = s_j sum_t2 G[j][t2] w'[o][c][t0][t1][t2]
 * (w' as in pack, flipped or not; s = 1/8 for j = 3, 4, else 1), and the
 * offsets of the (channel, kernel row) pairs in the rows' transform. */
static void pack_wino(const cnni_conv_geom *g, const float *w, int flip, float *u, int64_t *off)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, kv = vol3(g->k), K = Cg * g->k[0] * g->k[1];
    memset(u, 0, sizeof(float) * (size_t)(g->G * K * 6 * 16));
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t kr = 0; kr < g->k[0] * g->k[1]; kr++) {
                    double v[5];
                    for (int64_t t2 = 0; t2 < 5; t2++) {
                        const int64_t t = kr * 5 + t2;
                        v[t2] = !flip ? w[((grp * Og + o) * Cg + c) * kv + t] : w[((grp * Cg + c) * Og + o) * kv + (kv - 1 - t)];
                    }
                    const double uj[6] = {v[0],
                                          v[0] + v[1] + v[2] + v[3] + v[4],
                                          v[0] - v[1] + v[2] - v[3] + v[4],
                                          (v[0] + 2 * v[1] + 4 * v[2] + 8 * v[3] + 16 * v[4]) / 8,
                                          (v[0] - 2 * v[1] + 4 * v[2] - 8 * v[3] + 16 * v[4]) / 8,
                                          v[4]};
                    const int64_t k = c * g->k[0] * g->k[1] + kr;
                    for (int jj = 0; jj < 6; jj++)
                        u[((grp * K + k) * 6 + jj) * 16 + o] = (float)uj[jj];
                }
    int64_t pd[3];
    padded_dims(g, pd);
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t t0 = 0; t0 < g->k[0]; t0++)
            for (int64_t t1 = 0; t1 < g->k[1]; t1++)
                off[(c * g->k[0] + t0) * g->k[1] + t1] = ((c * pd[0] + t0 * g->d[0]) * pd[1] + t1 * g->d[1]) * WROW;
}

const double cnni_f45_weight[8][5] = {{1, 0, 0, 0, 0},
                                      {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
                                      {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
                                      {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45},
                                      {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45},
                                      {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45},
                                      {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45},
                                      {0, 0, 0, 0, 1}};

/* The F(4,5) weights: u[grp][c, t0, t1][j][o] = sum_t2 G[j][t2] w'[o][c][t0][t1][t2]
 * (w' as in pack), and the offsets of the (channel, kernel row) pairs in
 * the rows' transform. */
static void pack_quad(const cnni_conv_geom *g, const float *w, int flip, float *u, int64_t *off)
{
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, kv = vol3(g->k), K = Cg * g->k[0] * g->k[1];
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t kr = 0; kr < g->k[0] * g->k[1]; kr++) {
                double v[5][16] = {{0}};
                for (int64_t o = 0; o < Og; o++)
                    for (int64_t t2 = 0; t2 < 5; t2++) {
                        const int64_t t = kr * 5 + t2;
                        v[t2][o] = !flip ? w[((grp * Og + o) * Cg + c) * kv + t]
                                         : w[((grp * Cg + c) * Og + o) * kv + (kv - 1 - t)];
                    }
                /* the 16 channels on the lanes (this path is AVX-512's; the
                 * baseline loop, two doubles an instruction, took 0.8% of
                 * LeNet-5's training step) */
                cnni_direct_quad_weights_avx512((const double(*)[16])v,
                                                u + (grp * K + c * g->k[0] * g->k[1] + kr) * 8 * 16);
            }
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t cstride = 8 * quads_of(g) * quad_ld(g); /* a channel's transform */
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t t0 = 0; t0 < g->k[0]; t0++)
            for (int64_t t1 = 0; t1 < g->k[1]; t1++)
                off[(c * g->k[0] + t0) * g->k[1] + t1] = c * cstride + t0 * g->d[0] * pd[1] + t1 * g->d[1];
}

static void run(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x, const float *wsrc,
                int flip, const float *b, float *y, void *scratch)
{
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *wp = (float *)base;
    int64_t *off = (int64_t *)(base + weight_bytes(isa, g));
    if (quad(isa, g))
        pack_quad(g, wsrc, flip, wp, off);
    else if (wino(isa, g))
        pack_wino(g, wsrc, flip, wp, off);
    else
        pack(g, wsrc, flip, NULL, wp, off);
    const int nthreads = cnni_pool_threads(pool);
    /* Whole images per task when there are enough; otherwise rows too. */
    const int64_t rows = g->out[0] * g->out[1];
    int64_t row_tasks = g->N * g->G >= 2 * nthreads ? 1 : (rows < 4 ? rows : 4);
    if (row_tasks < 1)
        row_tasks = 1;
    job j = {isa, g, x, b, y, wp, off, base + shared_bytes(isa, g), per_thread(isa, g),
             (rows + row_tasks - 1) / row_tasks, row_tasks, wsrc, flip};
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

/* ---- weight gradient ---- */
#define MK 10
#define W_MAX_SLICES 8

void cnni_direct_transpose_avx512(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst,
                                  float *sum);

cnni_direct_transpose_fn cnni_direct_transpose_for(int isa)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_transpose_avx512
           : isa == CNNI_ISA_AVX2 ? cnni_direct_transpose_avx2
                                  : NULL;
}

cnni_direct_wtile_fn cnni_direct_wtile_for(int isa, int nr, int mk)
{
    return isa == CNNI_ISA_AVX512 ? cnni_direct_wtile_avx512(nr, mk)
           : isa == CNNI_ISA_AVX2 ? cnni_direct_wtile_avx2(nr, mk)
                                  : NULL;
}

/* Whether the input is read in place: the outputs reach no padding. */
static int in_place(const cnni_conv_geom *g)
{
    int64_t pd[3];
    padded_dims(g, pd);
    for (int i = 0; i < 3; i++)
        if (g->p[i] != 0 || pd[i] > g->in[i])
            return 0;
    return 1;
}

typedef struct {
    int64_t K, nr, nob, P, kblocks, slices;
    int wino; /* as Winograd F(2,5) along the rows */
} wgeom;

static void wgeom_of(int isa, const cnni_conv_geom *g, wgeom *w)
{
    w->wino = wino(isa, g);
    w->K = (g->C / g->G) * vol3(g->k);
    w->nr = nr_of(g);
    w->nob = (g->O / g->G + w->nr - 1) / w->nr;
    w->P = vol3(g->out);
    w->kblocks = w->wino ? (w->K / 5 + 4) / 5 : (w->K + MK - 1) / MK;
    w->slices = 1;
    while (w->slices < W_MAX_SLICES && w->slices * 2 <= g->N && g->G * w->nob * w->slices < 16)
        w->slices *= 2;
}

/* shared: [pixel offsets][tap offsets][partial sums][partial bias sums]
 * per thread: [padded group][dy transposed][accumulators] */
static size_t w_shared(const cnni_conv_geom *g, const wgeom *w, size_t *parts)
{
    parts[0] = ((size_t)w->P * sizeof(int64_t) + 63) & ~(size_t)63;
    parts[1] = ((size_t)w->K * sizeof(int64_t) + 63) & ~(size_t)63;
    parts[2] = ((size_t)(w->slices * g->O * w->K) * sizeof(float) + 63) & ~(size_t)63;
    parts[3] = ((size_t)(w->slices * g->O) * sizeof(double) + 63) & ~(size_t)63;
    return parts[0] + parts[1] + parts[2] + parts[3];
}

/* Per thread: [padded group][dy transposed][accumulators][Winograd: the
 * input rows' and dy's transforms] */
static size_t w_thread(const cnni_conv_geom *g, const wgeom *w, size_t *parts)
{
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t *dims = in_place(g) ? g->in : pd, Cg = g->C / g->G;
    parts[0] = in_place(g) ? 0 : ((size_t)(Cg * vol3(pd)) * sizeof(float) + 63) & ~(size_t)63;
    parts[1] = ((size_t)(w->P * w->nr) * sizeof(float) + 63) & ~(size_t)63;
    parts[2] = ((size_t)(w->K * w->nr) * sizeof(float) + 63) & ~(size_t)63;
    parts[3] = 0;
    if (w->wino) {
        parts[2] = ((size_t)(w->K / 5 * WROW) * sizeof(double) + 63) & ~(size_t)63;
        parts[3] = (size_t)((Cg * dims[0] * dims[1] + w->P / 2) * WROW) * sizeof(float);
    }
    return parts[0] + parts[1] + parts[2] + parts[3];
}

size_t cnni_conv_direct_weight_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    wgeom w;
    size_t parts[4];
    wgeom_of(isa, g, &w);
    size_t shared = w_shared(g, &w, parts);
    return shared + w_thread(g, &w, parts) * (size_t)(threads > 0 ? threads : 1) + 128;
}

typedef struct {
    int isa;
    const cnni_conv_geom *g;
    wgeom w;
    const float *x, *dy;
    float *partial, *db;
    double *dbpart; /* [slice][O]: sums of dy */
    const int64_t *pix, *toff;
    char *threads_base;
    size_t thread_bytes;
} wjob;

/* Task (group, channel block, batch slice): per image, the group's input
 * (padded when needed) and the block's dy as [pixel][nr] (zero past the
 * group's channels), then every tap block's tile over all pixels. */
static void wtask(void *ctx, int64_t t, int thread)
{
    const wjob *j = ctx;
    const cnni_conv_geom *g = j->g;
    const wgeom *w = &j->w;
    const int64_t ob = t % w->nob, grp = (t / w->nob) % g->G, slice = t / (w->nob * g->G);
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, iv = vol3(g->in);
    const int64_t nvalid = Og - ob * w->nr < w->nr ? Og - ob * w->nr : w->nr;
    size_t parts[4];
    char *base = j->threads_base + (size_t)thread * w_thread(g, w, parts);
    float *xp = (float *)base, *dyt = (float *)(base + parts[0]), *acc = (float *)(base + parts[0] + parts[1]);
    const int padded = !in_place(g);
    memset(acc, 0, parts[2]);
    double dbacc[CNNI_DIRECT_NR] = {0};
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t *dims = padded ? pd : g->in;
    float *xt = w->wino ? (float *)(base + parts[0] + parts[1] + parts[2]) : NULL;
    float *ady = xt ? xt + Cg * dims[0] * dims[1] * WROW : NULL;
    int64_t n0, n1;
    cnni_split(g->N, w->slices, slice, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        const float *xg = j->x + (n * g->C + grp * Cg) * iv;
        if (padded)
            pad_channels(g, xg, xp, 0, Cg);
        /* dy transposed, and summed for the bias */
        float sum[CNNI_DIRECT_NR];
        cnni_direct_transpose_for(j->isa)((int)w->nr, w->P, j->dy + (n * g->O + grp * Og + ob * w->nr) * w->P, w->P,
                                          (int)nvalid, dyt, sum);
        for (int64_t c = 0; c < nvalid; c++)
            dbacc[c] += sum[c];
        if (xt) {
            /* Winograd: both transforms, then the kernel rows in blocks */
            const float *xs = padded ? xp : xg;
            cnni_direct_wino_input(j->isa, xs, dims[2], Cg * dims[0] * dims[1], xt);
            cnni_direct_wino_dy(j->isa, w->P / 2, dyt, ady);
            for (int64_t kb = 0; kb < w->kblocks; kb++) {
                int64_t k0, k1;
                cnni_split(w->K / 5, w->kblocks, kb, &k0, &k1);
                cnni_direct_wino_wtile_for(j->isa, (int)(k1 - k0))(g->out[0] * g->out[1], j->pix, g->out[2] / 2, xt,
                                                                   j->toff + k0, ady, (double *)acc + k0 * WROW);
            }
            continue;
        }
        for (int64_t kb = 0; kb < w->kblocks; kb++) {
            int64_t k0, k1;
            cnni_split(w->K, w->kblocks, kb, &k0, &k1);
            cnni_direct_wtile_for(j->isa, (int)w->nr, (int)(k1 - k0))(w->P, j->pix, padded ? xp : xg, j->toff + k0,
                                                                      dyt, acc + k0 * w->nr);
        }
    }
    float *part = j->partial + (slice * g->O + grp * Og + ob * w->nr) * w->K;
    if (xt) /* dw = G^T m per kernel row, G's rows 3 and 4 scaled by 1/8 */
        for (int64_t c = 0; c < nvalid; c++)
            for (int64_t k = 0; k < w->K / 5; k++) {
                double m[6];
                for (int jj = 0; jj < 6; jj++)
                    m[jj] = ((const double *)acc)[(k * 6 + jj) * 16 + c];
                float *pk = part + c * w->K + k * 5;
                pk[0] = (float)(m[0] + m[1] + m[2] + (m[3] + m[4]) / 8);
                pk[1] = (float)(m[1] - m[2] + (m[3] - m[4]) / 4);
                pk[2] = (float)(m[1] + m[2] + (m[3] + m[4]) / 2);
                pk[3] = (float)(m[1] - m[2] + m[3] - m[4]);
                pk[4] = (float)(m[1] + m[2] + 2 * (m[3] + m[4]) + m[5]);
            }
    else
        for (int64_t c = 0; c < nvalid; c++)
            for (int64_t k = 0; k < w->K; k++)
                part[c * w->K + k] = acc[k * w->nr + c];
    for (int64_t c = 0; c < nvalid; c++)
        j->dbpart[slice * g->O + grp * Og + ob * w->nr + c] = dbacc[c];
}

void cnni_conv_direct_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                      const float *dy, float *dw, float *db, void *scratch)
{
    wjob j;
    memset(&j, 0, sizeof j);
    j.isa = isa;
    j.g = g;
    wgeom_of(isa, g, &j.w);
    size_t parts[4];
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    size_t shared = w_shared(g, &j.w, parts);
    int64_t *pix = (int64_t *)base, *toff = (int64_t *)(base + parts[0]);
    j.partial = (float *)(base + parts[0] + parts[1]);
    j.dbpart = (double *)(base + parts[0] + parts[1] + parts[2]);
    j.threads_base = base + shared;
    j.x = x;
    j.dy = dy;
    j.db = db;
    /* Offsets in the plane read: the input itself, or its padded copy. */
    int64_t pd[3];
    padded_dims(g, pd);
    const int64_t *dims = in_place(g) ? g->in : pd;
    const int64_t L2 = dims[2], L1 = dims[1] * dims[2], L0 = dims[0] * L1, kv = vol3(g->k);
    if (j.w.wino) {
        /* the rows' transform: each output row's start, each (channel,
         * kernel row)'s offset */
        for (int64_t z0 = 0, r = 0; z0 < g->out[0]; z0++)
            for (int64_t z1 = 0; z1 < g->out[1]; z1++)
                pix[r++] = (z0 * g->s[0] * dims[1] + z1 * g->s[1]) * WROW;
        for (int64_t c = 0, k = 0; c < g->C / g->G; c++)
            for (int64_t t0 = 0; t0 < g->k[0]; t0++)
                for (int64_t t1 = 0; t1 < g->k[1]; t1++)
                    toff[k++] = ((c * dims[0] + t0 * g->d[0]) * dims[1] + t1 * g->d[1]) * WROW;
    } else {
        for (int64_t z0 = 0, z = 0; z0 < g->out[0]; z0++)
            for (int64_t z1 = 0; z1 < g->out[1]; z1++)
                for (int64_t z2 = 0; z2 < g->out[2]; z2++)
                    pix[z++] = z0 * g->s[0] * L1 + z1 * g->s[1] * L2 + z2 * g->s[2];
    }
    for (int64_t k = 0; k < j.w.K && !j.w.wino; k++) {
        const int64_t c = k / kv, t = k % kv;
        const int64_t t2 = t % g->k[2], t1 = t / g->k[2] % g->k[1], t0 = t / (g->k[2] * g->k[1]);
        toff[k] = c * L0 + t0 * g->d[0] * L1 + t1 * g->d[1] * L2 + t2 * g->d[2];
    }
    j.pix = pix;
    j.toff = toff;
    cnni_pool_run(pool, wtask, &j, g->G * j.w.nob * j.w.slices);
    const int64_t total = g->O * j.w.K;
    for (int64_t i = 0; i < total; i++) {
        double s = 0;
        for (int64_t sl = 0; sl < j.w.slices; sl++)
            s += j.partial[sl * total + i];
        dw[i] += (float)s;
    }
    if (db)
        for (int64_t o = 0; o < g->O; o++) {
            double sb = 0;
            for (int64_t sl = 0; sl < j.w.slices; sl++)
                sb += j.dbpart[sl * g->O + o];
            db[o] += (float)sb;
        }
}
