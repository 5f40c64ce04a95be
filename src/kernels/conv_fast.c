/* Convolutions as GEMMs with implicit im2col; see conv_fast.h. */
#include "conv_fast.h"
#include "../core/pool.h"

#include <string.h>

#define CHUNK 256        /* pixels per backward-data GEMM (bounds the col scratch) */
#define MAX_SLICES 8     /* K-slices of the weight gradient's reduction */

static int64_t vol3(const int64_t *v) { return v[0] * v[1] * v[2]; }
static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* ---- the implicit im2col matrix of one image and group ----
 * Row k = (c, t0, t1, t2) over the group's channels and the kernel taps;
 * column p = (z0, z1, z2) over output pixels. */
typedef struct {
    const cnni_conv_geom *g;
    const float *x; /* the group's first channel of image n (for the batch form: image 0) */
    int64_t image_stride; /* floats between images (batch form) */
    int64_t P;            /* output pixels per image */
    int64_t row0;         /* batch form: the GEMM's row 0 is (image, pixel) number row0 */
} im2col_src;

/* Writes row k, columns [p0, p0 + n) of one image's im2col matrix. */
static void im2col_row(const cnni_conv_geom *g, const float *x, int64_t k, int64_t p0, int64_t n, float *out)
{
    int64_t t2 = k % g->k[2], t1 = (k / g->k[2]) % g->k[1], t0 = (k / (g->k[2] * g->k[1])) % g->k[0];
    int64_t c = k / (g->k[0] * g->k[1] * g->k[2]);
    const float *xc = x + c * vol3(g->in);
    int64_t z2 = p0 % g->out[2], z1 = (p0 / g->out[2]) % g->out[1], z0 = p0 / (g->out[2] * g->out[1]);
    const int64_t s2 = g->s[2], off2 = t2 * g->d[2] - g->p[2], W = g->in[2];
    /* Output columns z2 whose input column z2*s2 + off2 lies in [0, W). */
    int64_t lo = off2 >= 0 ? 0 : (-off2 + s2 - 1) / s2;
    int64_t hi = W - off2 <= 0 ? 0 : (W - off2 - 1) / s2 + 1;
    if (hi > g->out[2])
        hi = g->out[2];
    while (n > 0) {
        int64_t run = g->out[2] - z2 < n ? g->out[2] - z2 : n;
        int64_t i0 = z0 * g->s[0] - g->p[0] + t0 * g->d[0];
        int64_t i1 = z1 * g->s[1] - g->p[1] + t1 * g->d[1];
        if (i0 < 0 || i0 >= g->in[0] || i1 < 0 || i1 >= g->in[1]) {
            memset(out, 0, sizeof(float) * (size_t)run);
        } else {
            const float *row = xc + (i0 * g->in[1] + i1) * W;
            int64_t a = z2, e = z2 + run;
            int64_t va = a > lo ? a : lo, vb = e < hi ? e : hi;
            if (va >= vb) {
                memset(out, 0, sizeof(float) * (size_t)run);
            } else {
                if (va > a)
                    memset(out, 0, sizeof(float) * (size_t)(va - a));
                float *o = out + (va - a);
                if (s2 == 1) {
                    memcpy(o, row + va + off2, sizeof(float) * (size_t)(vb - va));
                } else {
                    const float *r = row + va * s2 + off2;
                    for (int64_t j = 0; j < vb - va; j++)
                        o[j] = r[j * s2];
                }
                if (e > vb)
                    memset(out + (vb - a), 0, sizeof(float) * (size_t)(e - vb));
            }
        }
        out += run;
        n -= run;
        z2 = 0;
        if (++z1 == g->out[1]) {
            z1 = 0;
            z0++;
        }
    }
}

/* Adds src (row k, columns [p0, p0 + n) of the im2col matrix) back into the
 * image: the adjoint of im2col_row. */
static void col2im_row(const cnni_conv_geom *g, float *dx, int64_t k, int64_t p0, int64_t n, const float *src)
{
    int64_t t2 = k % g->k[2], t1 = (k / g->k[2]) % g->k[1], t0 = (k / (g->k[2] * g->k[1])) % g->k[0];
    int64_t c = k / (g->k[0] * g->k[1] * g->k[2]);
    float *xc = dx + c * vol3(g->in);
    int64_t z2 = p0 % g->out[2], z1 = (p0 / g->out[2]) % g->out[1], z0 = p0 / (g->out[2] * g->out[1]);
    const int64_t s2 = g->s[2], off2 = t2 * g->d[2] - g->p[2], W = g->in[2];
    int64_t lo = off2 >= 0 ? 0 : (-off2 + s2 - 1) / s2;
    int64_t hi = W - off2 <= 0 ? 0 : (W - off2 - 1) / s2 + 1;
    if (hi > g->out[2])
        hi = g->out[2];
    while (n > 0) {
        int64_t run = g->out[2] - z2 < n ? g->out[2] - z2 : n;
        int64_t i0 = z0 * g->s[0] - g->p[0] + t0 * g->d[0];
        int64_t i1 = z1 * g->s[1] - g->p[1] + t1 * g->d[1];
        if (i0 >= 0 && i0 < g->in[0] && i1 >= 0 && i1 < g->in[1]) {
            float *row = xc + (i0 * g->in[1] + i1) * W;
            int64_t a = z2, e = z2 + run;
            int64_t va = a > lo ? a : lo, vb = e < hi ? e : hi;
            const float *s = src + (va - a);
            if (s2 == 1) {
                float *r = row + va + off2;
                for (int64_t j = 0; j < vb - va; j++)
                    r[j] += s[j];
            } else {
                float *r = row + va * s2 + off2;
                for (int64_t j = 0; j < vb - va; j++)
                    r[j * s2] += s[j];
            }
        }
        src += run;
        n -= run;
        z2 = 0;
        if (++z1 == g->out[1]) {
            z1 = 0;
            z0++;
        }
    }
}

/* Forward's B = im2col(X_n,g): K x P, gathered straight into the NR-wide
 * panels: each row's columns are cut at panel boundaries. */
static void pack_b_im2col(const cnni_gemm_op *op, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr,
                          float *dst)
{
    const im2col_src *src = op->b_ctx;
    for (int64_t kk = 0; kk < kc; kk++)
        for (int64_t p = 0; p < nc; p += nr) {
            int cols = (int)(nc - p < nr ? nc - p : nr);
            float *d = dst + p * kc + kk * nr;
            im2col_row(src->g, src->x, k0 + kk, n0 + p, cols, d);
            for (int j = cols; j < nr; j++)
                d[j] = 0;
        }
}

/* Weight gradient's B = im2col(X_g)^T over the batch: (N x P) x K. Rows are
 * (image, pixel) pairs, columns im2col rows. */
static void pack_b_im2col_t(const cnni_gemm_op *op, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                            int nr, float *dst)
{
    const im2col_src *src = op->b_ctx;
    float tmp[1024];
    for (int64_t j = 0; j < nc; j++) {
        /* Column n0 + j of B is row n0 + j of each image's im2col matrix. */
        int64_t r = src->row0 + k0, left = kc;
        float *t = tmp;
        while (left > 0) {
            int64_t img = r / src->P, p = r % src->P;
            int64_t run = src->P - p < left ? src->P - p : left;
            im2col_row(src->g, src->x + img * src->image_stride, n0 + j, p, run, t);
            t += run;
            r += run;
            left -= run;
        }
        float *d = dst + (j / nr) * nr * kc + (j % nr);
        for (int64_t kk = 0; kk < kc; kk++)
            d[kk * nr] = tmp[kk];
    }
    int64_t full = round_up(nc, nr);
    for (int64_t j = nc; j < full; j++) {
        float *d = dst + (j / nr) * nr * kc + (j % nr);
        for (int64_t kk = 0; kk < kc; kk++)
            d[kk * nr] = 0;
    }
}

/* Weight gradient's A = dY_g over the batch: (O/G) x (N x P). */
typedef struct {
    const float *dy;      /* the group's first channel of image 0 */
    int64_t image_stride; /* floats between images */
    int64_t P;
    int64_t row0;         /* the GEMM's column 0 is (image, pixel) number row0 */
} dy_src;

static void pack_a_dy(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr, float *dst)
{
    const dy_src *src = op->a_ctx;
    for (int64_t p = 0; p < mc; p += mr) {
        int rows = (int)(mc - p < mr ? mc - p : mr);
        float *d = dst + p * kc;
        for (int r = 0; r < mr; r++) {
            if (r >= rows) {
                for (int64_t kk = 0; kk < kc; kk++)
                    d[kk * mr + r] = 0;
                continue;
            }
            int64_t row = src->row0 + k0, left = kc, kk = 0;
            while (left > 0) {
                int64_t img = row / src->P, px = row % src->P;
                int64_t run = src->P - px < left ? src->P - px : left;
                const float *s = src->dy + img * src->image_stride + (m0 + p + r) * src->P + px;
                for (int64_t j = 0; j < run; j++)
                    d[(kk + j) * mr + r] = s[j];
                kk += run;
                row += run;
                left -= run;
            }
        }
    }
}

/* ---- scratch: per thread, a GEMM buffer and a col chunk ---- */
static size_t thread_scratch(const cnni_gemm_kernel *k, const cnni_conv_geom *g)
{
    int64_t K = (g->C / g->G) * vol3(g->k);
    size_t gemm = (cnni_gemm_scratch_bytes(k) + 63) & ~(size_t)63;
    size_t col = ((size_t)K * CHUNK * sizeof(float) + 63) & ~(size_t)63;
    return gemm + col;
}

/* Each product uses the kernel height that wastes fewest rows of its M
 * (the ISA's default kernel k is the tallest, and the largest scratch). */
static const cnni_gemm_kernel *for_rows(const cnni_gemm_kernel *k, int64_t M)
{
    return cnni_gemm_kernel_for_rows(k->isa, M);
}

/* The weights of every group packed once per call (forward: W, backward
 * data: W^T), shared read-only by all tasks. */
static size_t packed_w_bytes(const cnni_gemm_kernel *k, const cnni_conv_geom *g)
{
    int64_t K = (g->C / g->G) * vol3(g->k), Og = g->O / g->G;
    size_t fwd = cnni_gemm_packed_a_bytes(for_rows(k, Og), Og, K);
    size_t bwd = cnni_gemm_packed_a_bytes(for_rows(k, K), K, Og);
    size_t one = ((fwd > bwd ? fwd : bwd) + 63) & ~(size_t)63;
    return one * (size_t)g->G;
}

size_t cnni_conv_fast_scratch(const cnni_gemm_kernel *k, const cnni_conv_geom *g, int threads)
{
    int64_t K = (g->C / g->G) * vol3(g->k);
    size_t partial = (size_t)MAX_SLICES * (size_t)g->O * (size_t)K * sizeof(float);
    size_t packed = packed_w_bytes(k, g);
    return thread_scratch(k, g) * (size_t)(threads > 0 ? threads : 1) + (partial > packed ? partial : packed) + 128;
}

/* The region after the per-thread scratch: packed weights or partial sums. */
static float *shared_region(const cnni_gemm_kernel *k, const cnni_conv_geom *g, void *scratch,
                            struct cnni_pool *pool)
{
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    return (float *)(base + thread_scratch(k, g) * (size_t)cnni_pool_threads(pool));
}

/* Packs every group's W (or W^T) for the tasks to share; returns the stride
 * between groups in floats. */
static int64_t pack_weights(const cnni_gemm_kernel *k, const cnni_conv_geom *g, const float *w, int trans,
                            float *dst)
{
    int64_t K = (g->C / g->G) * vol3(g->k), Og = g->O / g->G;
    size_t fwd = cnni_gemm_packed_a_bytes(for_rows(k, Og), Og, K);
    size_t bwd = cnni_gemm_packed_a_bytes(for_rows(k, K), K, Og);
    int64_t stride = (int64_t)((((fwd > bwd ? fwd : bwd) + 63) & ~(size_t)63) / sizeof(float));
    for (int64_t grp = 0; grp < g->G; grp++) {
        cnni_gemm_op op;
        memset(&op, 0, sizeof op);
        op.M = trans ? K : Og;
        op.K = trans ? Og : K;
        op.a = w + grp * Og * K;
        op.lda = K;
        op.trans_a = trans;
        cnni_gemm_pack_a(for_rows(k, op.M), &op, dst + grp * stride);
    }
    return stride;
}

/* The running thread's part of the scratch. */
static void *scratch_of(const cnni_gemm_kernel *k, const cnni_conv_geom *g, void *scratch, int thread)
{
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    return base + (size_t)thread * thread_scratch(k, g);
}

/* ---- forward ---- */
typedef struct {
    const cnni_gemm_kernel *k;
    const cnni_conv_geom *g;
    const float *x, *w, *b;
    float *y;
    void *scratch;
    int64_t pblocks; /* column blocks per (image, group) */
    int64_t pblock;
    const float *wpack; /* packed weights, wstride floats per group */
    int64_t wstride;
} fwd_job;

static void fwd_task(void *ctx, int64_t t, int thread)
{
    const fwd_job *j = ctx;
    const cnni_conv_geom *g = j->g;
    int64_t pb = t % j->pblocks, ng = t / j->pblocks;
    int64_t grp = ng % g->G, n = ng / g->G;
    int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), P = vol3(g->out);
    im2col_src src = {g, j->x + (n * g->C + grp * Cg) * vol3(g->in), 0, P, 0};
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = Og;
    op.N = P;
    op.K = K;
    op.a_packed = j->wpack + grp * j->wstride;
    op.pack_b = pack_b_im2col;
    op.b_ctx = &src;
    op.c = j->y + (n * g->O + grp * Og) * P;
    op.ldc = P;
    op.bias = j->b ? j->b + grp * Og : NULL;
    int64_t p0 = pb * j->pblock, p1 = p0 + j->pblock < P ? p0 + j->pblock : P;
    cnni_gemm(for_rows(j->k, Og), &op, p0, p1, scratch_of(j->k, g, j->scratch, thread));
}

void cnni_conv_fast_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, const cnni_conv_geom *g,
                            const float *x, const float *w, const float *b, float *y, void *scratch)
{
    int64_t P = vol3(g->out);
    /* A column of C is the same sum however columns are grouped, so the
     * split may follow the thread count: whole images when there are
     * enough of them, otherwise pixel blocks too. */
    int threads = cnni_pool_threads(pool);
    int64_t pblock = round_up(g->N * g->G >= 2 * threads ? P : (P + 3) / 4, k->nr);
    if (pblock > k->nc)
        pblock = k->nc;
    float *wpack = shared_region(k, g, scratch, pool);
    int64_t wstride = pack_weights(k, g, w, 0, wpack);
    fwd_job j = {k, g, x, w, b, y, scratch, (P + pblock - 1) / pblock, pblock, wpack, wstride};
    cnni_pool_run(pool, fwd_task, &j, g->N * g->G * j.pblocks);
}

/* ---- backward data: dX = col2im(W^T dY), chunk by chunk ---- */
typedef struct {
    const cnni_gemm_kernel *k;
    const cnni_conv_geom *g;
    const float *dy, *w;
    float *dx;
    void *scratch;
    const float *wpack; /* packed W^T, wstride floats per group */
    int64_t wstride;
} bwd_job;

static void bwd_data_task(void *ctx, int64_t t, int thread)
{
    const bwd_job *j = ctx;
    const cnni_conv_geom *g = j->g;
    int64_t grp = t % g->G, n = t / g->G;
    int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), P = vol3(g->out);
    char *scr = scratch_of(j->k, g, j->scratch, thread);
    float *col = (float *)(scr + ((cnni_gemm_scratch_bytes(j->k) + 63) & ~(size_t)63));
    float *dx = j->dx + (n * g->C + grp * Cg) * vol3(g->in);
    memset(dx, 0, sizeof(float) * (size_t)(Cg * vol3(g->in)));
    for (int64_t p0 = 0; p0 < P; p0 += CHUNK) {
        int64_t pn = P - p0 < CHUNK ? P - p0 : CHUNK;
        cnni_gemm_op op;
        memset(&op, 0, sizeof op);
        op.M = K;
        op.N = pn;
        op.K = Og;
        op.a_packed = j->wpack + grp * j->wstride;
        op.b = j->dy + (n * g->O + grp * Og) * P + p0;
        op.ldb = P;
        op.c = col;
        op.ldc = pn;
        cnni_gemm(for_rows(j->k, K), &op, 0, pn, scr);
        for (int64_t r = 0; r < K; r++)
            col2im_row(g, dx, r, p0, pn, col + r * pn);
    }
}

void cnni_conv_fast_backward_data(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                  const cnni_conv_geom *g, const float *dy, const float *w, float *dx,
                                  void *scratch)
{
    float *wpack = shared_region(k, g, scratch, pool);
    int64_t wstride = pack_weights(k, g, w, 1, wpack);
    bwd_job j = {k, g, dy, w, dx, scratch, wpack, wstride};
    cnni_pool_run(pool, bwd_data_task, &j, g->N * g->G);
}

/* ---- backward weight: one long reduction over the batch's pixels ---- */
typedef struct {
    const cnni_gemm_kernel *k;
    const cnni_conv_geom *g;
    const float *x, *dy;
    float *partial;      /* slices x O x K */
    int64_t slices, cblocks, cblock;
    void *scratch;
} wgt_job;

static void wgt_task(void *ctx, int64_t t, int thread)
{
    const wgt_job *j = ctx;
    const cnni_conv_geom *g = j->g;
    int64_t cb = t % j->cblocks, rest = t / j->cblocks;
    int64_t slice = rest % j->slices, grp = rest / j->slices;
    int64_t Cg = g->C / g->G, Og = g->O / g->G, K = Cg * vol3(g->k), P = vol3(g->out);
    int64_t NP = g->N * P;
    int64_t r0 = NP * slice / j->slices, r1 = NP * (slice + 1) / j->slices;
    /* This slice sums rows [r0, r1) of the (image, pixel) reduction. */
    im2col_src src = {g, j->x + grp * Cg * vol3(g->in), g->C * vol3(g->in), P, r0};
    dy_src dsrc = {j->dy + grp * Og * P, g->O * P, P, r0};
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = Og;
    op.N = K;
    op.K = r1 - r0;
    op.pack_a = pack_a_dy;
    op.a_ctx = &dsrc;
    op.pack_b = pack_b_im2col_t;
    op.b_ctx = &src;
    op.c = j->partial + (slice * g->O + grp * Og) * K;
    op.ldc = K;
    int64_t c0 = cb * j->cblock, c1 = c0 + j->cblock < K ? c0 + j->cblock : K;
    cnni_gemm(for_rows(j->k, Og), &op, c0, c1, scratch_of(j->k, g, j->scratch, thread));
}

/* db[o] += sum over images and pixels of dy[n][o][p], in eight double
 * lanes: a float running sum over a plane of thousands of gradients of
 * either sign lost 2e-5 of the result (a ConvTranspose3d bias over 23,409
 * values), and eight independent chains also run faster than one. */
static void bias_grad(const float *dy, int64_t N, int64_t Ch, int64_t P, float *db)
{
    for (int64_t c = 0; c < Ch; c++) {
        double lane[8] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *d = dy + (n * Ch + c) * P;
            int64_t p = 0;
            for (; p + 8 <= P; p += 8)
                for (int k = 0; k < 8; k++)
                    lane[k] += d[p + k];
            for (; p < P; p++)
                lane[p & 7] += d[p];
        }
        double acc = 0;
        for (int k = 0; k < 8; k++)
            acc += lane[k];
        db[c] += (float)acc;
    }
}

/* The weight gradient of the conv with geometry g, reading its input x and
 * output gradient dy (both in the conv's own roles). */
static void weight_grad(const cnni_gemm_kernel *k, struct cnni_pool *pool, const cnni_conv_geom *g,
                        const float *x, const float *dy, float *dw, void *scratch)
{
    int64_t Cg = g->C / g->G, K = Cg * vol3(g->k), NP = g->N * vol3(g->out);
    /* Enough independent tasks for the threads, chosen from the shape only:
     * column blocks of dW first, then slices of the reduction (each slice
     * writes its own partial sum, added in a fixed order afterwards). */
    int64_t cblock = round_up(K < 4 * k->nr ? K : (K + 3) / 4, k->nr);
    if (cblock > k->nc)
        cblock = k->nc;
    int64_t cblocks = (K + cblock - 1) / cblock;
    int64_t slices = 1;
    while (slices < MAX_SLICES && cblocks * g->G * slices < 8 && NP / (slices * 2) >= 1024)
        slices *= 2;
    float *partial = shared_region(k, g, scratch, pool);
    wgt_job j = {k, g, x, dy, partial, slices, cblocks, cblock, scratch};
    cnni_pool_run(pool, wgt_task, &j, g->G * slices * cblocks);
    int64_t total = g->O * K;
    for (int64_t s = 0; s < slices; s++) {
        const float *ps = partial + s * total;
        for (int64_t i = 0; i < total; i++)
            dw[i] += ps[i];
    }
}

void cnni_conv_fast_backward_weight(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                    const cnni_conv_geom *g, const float *x, const float *dy, float *dw,
                                    float *db, void *scratch)
{
    weight_grad(k, pool, g, x, dy, dw, scratch);
    if (db)
        bias_grad(dy, g->N, g->O, vol3(g->out), db);
}

/* ---- transposed convolution: the same three products with roles swapped ---- */
void cnni_convt_fast_forward(const cnni_gemm_kernel *k, struct cnni_pool *pool, const cnni_conv_geom *g,
                             const float *x, const float *w, const float *b, float *y, void *scratch)
{
    cnni_conv_fast_backward_data(k, pool, g, x, w, y, scratch);
    if (b) {
        int64_t sz = vol3(g->in);
        for (int64_t n = 0; n < g->N; n++)
            for (int64_t c = 0; c < g->C; c++) {
                float *yc = y + (n * g->C + c) * sz;
                for (int64_t i = 0; i < sz; i++)
                    yc[i] += b[c];
            }
    }
}

void cnni_convt_fast_backward_data(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                   const cnni_conv_geom *g, const float *dy, const float *w, float *dx,
                                   void *scratch)
{
    cnni_conv_fast_forward(k, pool, g, dy, w, NULL, dx, scratch);
}

void cnni_convt_fast_backward_weight(const cnni_gemm_kernel *k, struct cnni_pool *pool,
                                     const cnni_conv_geom *g, const float *x, const float *dy, float *dw,
                                     float *db, void *scratch)
{
    /* In the reversed conv, dy plays the input and x the output gradient. */
    weight_grad(k, pool, g, dy, x, dw, scratch);
    if (db)
        bias_grad(dy, g->N, g->C, vol3(g->in), db);
}
