/* Pointwise convolution driver; see conv_pointwise.h. */
#include "conv_pointwise.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <string.h>

cnni_pw_tile_fn cnni_pw_tile_avx2(int m);

/* A task's copied block: at most this many bytes (it stays in L2 while the
 * tiles run over its stripes), and 16 to 512 pixels. */
#define BLOCK_BYTES (256 * 1024)
#define BLOCK_MAX 512
/* Products longer than this would push a stripe (K x 16 floats) out of L1. */
#define K_MAX 512

static int64_t vol3(const int64_t *v) { return v[0] * v[1] * v[2]; }

static int is_pointwise(const cnni_conv_geom *g)
{
    for (int i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->p[i] != 0 || g->out[i] != g->in[i])
            return 0;
    return 1;
}

/* M x K products of at least 16 rows: fewer would leave each stripe to a
 * tile or two and the copy would cost about as much as the arithmetic. */
static int fits(int isa, const cnni_conv_geom *g, int64_t M, int64_t K)
{
    return isa == CNNI_ISA_AVX2 && is_pointwise(g) && M >= 16 && K >= 16 && K <= K_MAX;
}

int cnni_conv_pointwise_applies(int isa, const cnni_conv_geom *g)
{
    return fits(isa, g, g->O / g->G, g->C / g->G);
}

int cnni_conv_pointwise_applies_bwd(int isa, const cnni_conv_geom *g)
{
    return fits(isa, g, g->C / g->G, g->O / g->G);
}

static int64_t block_pixels(int64_t K)
{
    int64_t pb = BLOCK_BYTES / (int64_t)sizeof(float) / K / CNNI_PW_NR * CNNI_PW_NR;
    return pb < CNNI_PW_NR ? CNNI_PW_NR : pb > BLOCK_MAX ? BLOCK_MAX : pb;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* [weights packed as G x ceil(M/MR) blocks of K x MR][per thread: a block
 * of K x block_pixels(K) floats], each part 64-byte aligned. */
static size_t scratch_for(const cnni_conv_geom *g, int64_t M, int64_t K, int threads)
{
    const int64_t mb = (M + CNNI_PW_MR - 1) / CNNI_PW_MR;
    return 64 + align64((size_t)(g->G * mb * K * CNNI_PW_MR) * sizeof(float)) +
           (size_t)(threads < 1 ? 1 : threads) * align64((size_t)(K * block_pixels(K)) * sizeof(float));
}

size_t cnni_conv_pointwise_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    size_t s = 0, t;
    if (cnni_conv_pointwise_applies(isa, g))
        s = scratch_for(g, g->O / g->G, g->C / g->G, threads);
    if (cnni_conv_pointwise_applies_bwd(isa, g) && (t = scratch_for(g, g->C / g->G, g->O / g->G, threads)) > s)
        s = t;
    return s;
}

typedef struct {
    int64_t G, M, K, P;          /* rows, reduction, pixels per image and group */
    int64_t src_ch, dst_ch;      /* channels of the source and destination images */
    const float *src, *wp, *bias;
    float *dst;
    char *blocks;                /* per-thread block buffers */
    size_t block_bytes;
    int64_t pb, nblocks, ntasks;
} pw_job;

/* Task (image, group, pixel block): the block's pixels of each of the K
 * source channels copied in stripes of 16 (zeros past the last pixel),
 * then every stripe through every block of MR rows. */
static void pw_task(void *ctx, int64_t t, int thread)
{
    const pw_job *j = ctx;
    const int64_t blk = t % j->nblocks, ng = t / j->nblocks, grp = ng % j->G, n = ng / j->G;
    const int64_t K = j->K, M = j->M, P = j->P, mb = (M + CNNI_PW_MR - 1) / CNNI_PW_MR;
    const int64_t p0 = blk * j->pb, pn = P - p0 < j->pb ? P - p0 : j->pb;
    const int64_t ns = (pn + CNNI_PW_NR - 1) / CNNI_PW_NR;
    const float *src = j->src + (n * j->src_ch + grp * K) * P + p0;
    float *dst = j->dst + (n * j->dst_ch + grp * M) * P + p0;
    float *xs = (float *)(j->blocks + (size_t)thread * j->block_bytes);
    for (int64_t k = 0; k < K; k++) {
        const float *row = src + k * P;
        for (int64_t s = 0; s < ns; s++) {
            float *d = xs + (s * K + k) * CNNI_PW_NR;
            const int64_t c = pn - s * CNNI_PW_NR < CNNI_PW_NR ? pn - s * CNNI_PW_NR : CNNI_PW_NR;
            if (c == CNNI_PW_NR) { /* a constant size: copied inline */
                memcpy(d, row + s * CNNI_PW_NR, sizeof(float) * CNNI_PW_NR);
                continue;
            }
            memcpy(d, row + s * CNNI_PW_NR, sizeof(float) * (size_t)c);
            memset(d + c, 0, sizeof(float) * (size_t)(CNNI_PW_NR - c));
        }
    }
    /* The next task's block, a few lines a tile, into L2: its channel rows
     * too lie far apart for the hardware prefetchers to follow. */
    const float *next = NULL;
    int64_t next_pn = 0, line = 0, per = 0;
    if (t + 1 < j->ntasks) {
        const int64_t nb = (t + 1) % j->nblocks, nng = (t + 1) / j->nblocks;
        next = j->src + ((nng / j->G) * j->src_ch + (nng % j->G) * K) * P + nb * j->pb;
        next_pn = P - nb * j->pb < j->pb ? P - nb * j->pb : j->pb;
        per = (K * ((next_pn + 15) / 16) + ns * mb - 1) / (ns * mb);
    }
    const int64_t row_lines = (next_pn + 15) / 16, lines = K * row_lines;
    for (int64_t s = 0; s < ns; s++) {
        const int cols = (int)(pn - s * CNNI_PW_NR < CNNI_PW_NR ? pn - s * CNNI_PW_NR : CNNI_PW_NR);
        for (int64_t b = 0; b < mb; b++) {
            const int rows = (int)(M - b * CNNI_PW_MR < CNNI_PW_MR ? M - b * CNNI_PW_MR : CNNI_PW_MR);
            for (int64_t q = 0; q < per && line < lines; q++, line++)
                __builtin_prefetch(next + (line / row_lines) * P + (line % row_lines) * 16, 0, 2);
            cnni_pw_tile_avx2(rows)(K, j->wp + (grp * mb + b) * K * CNNI_PW_MR, xs + s * K * CNNI_PW_NR,
                                    dst + b * CNNI_PW_MR * P + s * CNNI_PW_NR, P, rows, cols,
                                    j->bias ? j->bias + grp * M + b * CNNI_PW_MR : NULL);
        }
    }
}

/* transposed: the backward data pass, rows = input channels (W^T). */
static void run(struct cnni_pool *pool, const cnni_conv_geom *g, int transposed, const float *src,
                const float *w, const float *b, float *dst, void *scratch)
{
    const int64_t Og = g->O / g->G, Cg = g->C / g->G;
    const int64_t M = transposed ? Cg : Og, K = transposed ? Og : Cg, mb = (M + CNNI_PW_MR - 1) / CNNI_PW_MR;
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *wp = (float *)base;
    /* wp[grp][b][k][r] = W^(T)[grp*M + b*MR + r][k], zero past the last row */
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t bl = 0; bl < mb; bl++)
            for (int64_t k = 0; k < K; k++)
                for (int64_t r = 0; r < CNNI_PW_MR; r++) {
                    const int64_t row = bl * CNNI_PW_MR + r;
                    float v = 0.0f;
                    if (row < M)
                        v = transposed ? w[(grp * Og + k) * Cg + row] : w[(grp * Og + row) * Cg + k];
                    wp[((grp * mb + bl) * K + k) * CNNI_PW_MR + r] = v;
                }
    const int64_t P = vol3(g->in), pb = block_pixels(K);
    pw_job j = {g->G,
                M,
                K,
                P,
                transposed ? g->O : g->C,
                transposed ? g->C : g->O,
                src,
                wp,
                b,
                dst,
                base + align64((size_t)(g->G * mb * K * CNNI_PW_MR) * sizeof(float)),
                align64((size_t)(K * pb) * sizeof(float)),
                pb,
                (P + pb - 1) / pb,
                g->N * g->G * ((P + pb - 1) / pb)};
    /* contiguous ranges of tasks per thread, so the block a task
     * prefetches is the one its thread takes next */
    cnni_pool_run_blocked(pool, pw_task, &j, j.ntasks);
}

void cnni_conv_pointwise_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                 const float *w, const float *b, float *y, void *scratch)
{
    (void)isa;
    run(pool, g, 0, x, w, b, y, scratch);
}

void cnni_conv_pointwise_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                       const float *w, float *dx, void *scratch)
{
    (void)isa;
    run(pool, g, 1, dy, w, NULL, dx, scratch);
}
