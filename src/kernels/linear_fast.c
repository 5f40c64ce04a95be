/* Linear layers as GEMMs; see linear_fast.h. */
#include "linear_fast.h"
#include "../core/pool.h"

#include <string.h>

typedef struct {
    const cnni_gemm_kernel *k;
    cnni_gemm_op op;
    int64_t block;
    void *scratch;
} job;

static size_t per_thread(const cnni_gemm_kernel *k) { return (cnni_gemm_scratch_bytes(k) + 63) & ~(size_t)63; }

/* The forward packs x once for all column tasks, after the per-thread areas. */
static size_t threads_bytes(const cnni_gemm_kernel *k, int threads)
{
    return per_thread(k) * (size_t)(threads > 0 ? threads : 1);
}

/* The forward reading W in place, per instruction set: W's rows a tile,
 * x's rows a tile (tile_cols, in vectors of lanes), x's rows a packing task. */
typedef void (*wt_tile_fn)(int64_t, int64_t, const float *, int64_t, int, const float *, int, const float *, float *,
                           int64_t);
typedef struct {
    int tile_rows, tile_cols, lanes;
    wt_tile_fn tile;
} wt_kind;

static const wt_kind wt_avx512 = {12, 32, 16, cnni_linear_wt_avx512};
static const wt_kind wt_avx2 = {6, 16, 8, cnni_linear_wt_avx2};

static const wt_kind *wt_of(const cnni_gemm_kernel *k)
{
    return k->isa == CNNI_ISA_AVX512 ? &wt_avx512 : k->isa == CNNI_ISA_AVX2 ? &wt_avx2 : NULL;
}

/* Whether the forward reads W in place: few rows, filling at least 3/4 of
 * the vectors they take. On Zen 4 (Linear(400, 120) and Linear(3136, 128),
 * one thread, AVX-512): 32 rows 32 us against 45-50 for the packed GEMM,
 * 16 rows 16 against 21, 64 rows 58 against 75; 8 rows (half a vector) 133
 * us against 110 for the latter. */
int cnni_linear_fast_w_in_place(const cnni_gemm_kernel *k, int64_t M)
{
    const wt_kind *wk = wt_of(k);
    if (!wk)
        return 0;
    const int64_t lanes = (M + wk->lanes - 1) / wk->lanes * wk->lanes;
    return M >= 3 * wk->lanes / 4 && M <= LINEAR_WT_MAX_M && 4 * (lanes - M) <= lanes;
}

/* Floats of x's packed rows, 32 rows each (either instruction set). */
static size_t wt_xt_floats(int64_t M, int64_t K) { return (size_t)((M + 31) / 32 * 32) * (size_t)K; }

size_t cnni_linear_fast_scratch(const cnni_gemm_kernel *k, int64_t M, int64_t K, int threads)
{
    size_t packed = cnni_gemm_packed_a_bytes(cnni_gemm_kernel_for_rows(k->isa, M), M, K);
    /* a call may have fewer rows than planned (a shard of the batch): room
     * for the panels of any row count up to M that reads W in place */
    const int64_t wt_m = M < LINEAR_WT_MAX_M ? M : LINEAR_WT_MAX_M;
    const wt_kind *wk = wt_of(k);
    if (wk && M >= 3 * wk->lanes / 4 && wt_xt_floats(wt_m, K) * sizeof(float) > packed)
        packed = wt_xt_floats(wt_m, K) * sizeof(float);
    return threads_bytes(k, threads) + ((packed + 63) & ~(size_t)63) + 64;
}

static void task(void *ctx, int64_t t, int thread)
{
    const job *j = ctx;
    char *base = (char *)(((uintptr_t)j->scratch + 63) & ~(uintptr_t)63);
    int64_t n0 = t * j->block, n1 = n0 + j->block < j->op.N ? n0 + j->block : j->op.N;
    cnni_gemm(cnni_gemm_kernel_for_rows(j->k->isa, j->op.M), &j->op, n0, n1, base + (size_t)thread * per_thread(j->k));
}

typedef struct {
    const cnni_gemm_kernel *k;
    const cnni_gemm_op *op;
    float *dst;
} pack_job;

static void pack_task(void *ctx, int64_t b, int thread)
{
    (void)thread;
    const pack_job *p = ctx;
    cnni_gemm_pack_a_block(p->k, p->op, b, p->dst);
}

/* Runs op over column blocks whose width depends only on the shape. With
 * several blocks and share_a, A is packed once (split over K blocks) for
 * all of them rather than once per block; the packed values and so the
 * results are the same either way. */
static void run(const cnni_gemm_kernel *k, struct cnni_pool *pool, const cnni_gemm_op *op_in, void *scratch,
                int share_a)
{
    cnni_gemm_op opv = *op_in;
    const cnni_gemm_op *op = &opv;
    int64_t N = op->N;
    int64_t block = (N + 3) / 4;
    block = (block + k->nr - 1) / k->nr * k->nr;
    if (block > k->nc)
        block = k->nc;
    if (block < 1)
        block = 1;
    /* One thread: one call over every column, which packs A once (the
     * columns' split changes no value: blocks are whole tiles of nr). */
    if (cnni_pool_threads(pool) <= 1)
        block = N > 0 ? N : 1;
    const int tiny = op->M * op->N * op->K < 32768;
    if (share_a && !tiny && block < N) {
        const cnni_gemm_kernel *kr = cnni_gemm_kernel_for_rows(k->isa, op->M);
        char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        pack_job pj = {kr, op, (float *)(base + threads_bytes(k, cnni_pool_threads(pool)))};
        cnni_pool_run(pool, pack_task, &pj, cnni_gemm_k_blocks(kr, op->K));
        opv.a_packed = pj.dst;
    }
    job j = {k, *op, block, scratch};
    /* Tiny products are not worth waking threads for. */
    if (tiny)
        for (int64_t t = 0; t * block < N; t++) {
            int64_t n0 = t * block, n1 = n0 + block < N ? n0 + block : N;
            cnni_gemm(cnni_gemm_kernel_for_rows(k->isa, op->M), op, n0, n1,
                      (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63));
        }
    else
        cnni_pool_run(pool, task, &j, (N + block - 1) / block);
}

typedef struct {
    const wt_kind *wk;
    int isa;
    int64_t M, N, K, kb;
    const float *x, *w, *b, *xt;
    float *y;
} wt_job;

/* Task p: x's rows from tile_cols * p, packed at xt + that * K (AVX-512 one
 * panel of 32 columns, AVX2 panels of 8). */
static void wt_pack_task(void *ctx, int64_t p, int thread)
{
    (void)thread;
    const wt_job *j = ctx;
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    const int64_t m0 = p * j->wk->tile_cols, mc = j->M - m0 < j->wk->tile_cols ? j->M - m0 : j->wk->tile_cols;
    float *dst = (float *)j->xt + m0 * j->K;
    if (j->isa == CNNI_ISA_AVX512) {
        op.b = j->x;
        op.ldb = j->K;
        op.trans_b = 1;
        cnni_pack_bt_avx512(&op, 0, j->K, m0, mc, 32, dst);
    } else {
        op.a = j->x;
        op.lda = j->K;
        cnni_pack_a_avx2(&op, m0, mc, 0, j->K, 8, dst);
    }
}

/* Task t: output features tile_rows * t onward, for every row. */
static void wt_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const wt_job *j = ctx;
    const int tr = j->wk->tile_rows, tc = j->wk->tile_cols;
    const int64_t f0 = t * tr;
    const int rows = (int)(j->N - f0 < tr ? j->N - f0 : tr);
    for (int64_t m0 = 0; m0 < j->M; m0 += tc)
        j->wk->tile(j->K, j->kb, j->w + f0 * j->K, j->K, rows, j->xt + m0 * j->K, (int)(j->M - m0 < tc ? j->M - m0 : tc),
                    j->b ? j->b + f0 : NULL, j->y + m0 * j->N + f0, j->N);
}

static void wt_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M, int64_t N, int64_t K,
                       const float *x, const float *w, const float *b, float *y, void *scratch)
{
    /* K blocks as the packed GEMM's, so that the bits are its bits */
    const int64_t blocks = cnni_gemm_k_blocks(cnni_gemm_kernel_for_rows(k->isa, M), K);
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const wt_kind *wk = wt_of(k);
    wt_job j = {wk, k->isa, M, N, K, (K + blocks - 1) / blocks, x, w, b,
                (const float *)(base + threads_bytes(k, cnni_pool_threads(pool))), y};
    const int64_t panels = (M + wk->tile_cols - 1) / wk->tile_cols, tiles = (N + wk->tile_rows - 1) / wk->tile_rows;
    if (M * N * K < 32768) { /* not worth waking threads for */
        for (int64_t p = 0; p < panels; p++)
            wt_pack_task(&j, p, 0);
        for (int64_t t = 0; t < tiles; t++)
            wt_task(&j, t, 0);
        return;
    }
    cnni_pool_run(pool, wt_pack_task, &j, panels);
    cnni_pool_run(pool, wt_task, &j, tiles);
}

void cnni_linear_fast_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M, int64_t N,
                              int64_t K, const float *x, const float *w, const float *b, float *y,
                              void *scratch)
{
    if (cnni_linear_fast_w_in_place(k, M) && N > 0 && K > 0) {
        wt_forward(k, pool, M, N, K, x, w, b, y, scratch);
        return;
    }
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = M;
    op.N = N;
    op.K = K;
    op.a = x;
    op.lda = K;
    op.b = w;
    op.ldb = K;
    op.trans_b = 1;
    op.c = y;
    op.ldc = N;
    run(k, pool, &op, scratch, 1);
    if (b)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++)
                y[m * N + n] += b[n];
}

void cnni_linear_fast_backward_data(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M,
                                    int64_t N, int64_t K, const float *dy, const float *w, float *dx,
                                    void *scratch)
{
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = M;
    op.N = K;
    op.K = N;
    op.a = dy;
    op.lda = N;
    op.b = w;
    op.ldb = K;
    op.c = dx;
    op.ldc = K;
    run(k, pool, &op, scratch, 0);
}

void cnni_linear_fast_backward_weight(const cnni_gemm_kernel *k, struct cnni_pool *pool, int64_t M,
                                      int64_t N, int64_t K, const float *x, const float *dy, float *dw,
                                      float *db, void *scratch)
{
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = N;
    op.N = K;
    op.K = M;
    op.a = dy;
    op.lda = N;
    op.trans_a = 1;
    op.b = x;
    op.ldb = K;
    op.c = dw;
    op.ldc = K;
    op.accumulate = 1;
    run(k, pool, &op, scratch, 0);
    if (db)
        for (int64_t n = 0; n < N; n++) {
            float s = 0;
            for (int64_t m = 0; m < M; m++)
                s += dy[m * N + n];
            db[n] += s;
        }
}
