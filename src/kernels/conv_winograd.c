/* Winograd F(4x4, 3x3) driver and the portable kernels; see conv_winograd.h.
 *
 * The transforms, for the points (0, 2/3, -2/3, 3/2, -3/2, inf):
 *   input   B^T (6x6) on a patch's columns, then on its rows:
 *             r0 = d0 - 97/36 d2 + d4        r5 = d1 - 97/36 d3 + d5
 *             r1,r2 = (d4 - 9/4 d2) +- (2/3 d3 - 3/2 d1)
 *             r3,r4 = (d4 - 4/9 d2) +- (3/2 d3 - 2/3 d1)
 *   weights G (6x3):  u0 = g0, u5 = g2,
 *             u1,u2 = (-81/130 g0 - 18/65 g2) -+ 27/65 g1
 *             u3,u4 = (8/65 g0 + 18/65 g2) +- 12/65 g1
 *   output  A^T (4x6):  y0 = m0 + (m1 + m2) + (m3 + m4)
 *             y1 = 2/3 (m1 - m2) + 3/2 (m3 - m4)
 *             y2 = 4/9 (m1 + m2) + 9/4 (m3 + m4)
 *             y3 = 8/27 (m1 - m2) + 27/8 (m3 - m4) + m5
 * and for the weight gradient, the transposes of the last two:
 *   dy      A (6x4):  z0 = d0, z5 = d3,
 *             z1,z2 = (d0 + 4/9 d2) +- (2/3 d1 + 8/27 d3)
 *             z3,z4 = (d0 + 9/4 d2) +- (3/2 d1 + 27/8 d3)
 *   back    G^T (3x6):  r0 = m0 - 81/130 (m1 + m2) + 8/65 (m3 + m4)
 *             r1 = 27/65 (m2 - m1) + 12/65 (m3 - m4)
 *             r2 = 18/65 ((m3 + m4) - (m1 + m2)) + m5 */
#include "conv_winograd.h"
#include "../core/cpu.h"
#include "../core/pool.h"

#include <math.h>
#include <string.h>

#define NP 36      /* points of the transformed domain */
#define TB_MAX 48  /* tiles per task at most */

/* ---- portable kernels (16 lanes as plain loops) ---- */

static void bt6(const float *d, float *r)
{
    const float c97 = 97.0f / 36.0f, c49 = 4.0f / 9.0f, c23 = 2.0f / 3.0f;
    float e1 = d[4] - 2.25f * d[2], o1 = c23 * d[3] - 1.5f * d[1];
    float e2 = d[4] - c49 * d[2], o2 = 1.5f * d[3] - c23 * d[1];
    r[0] = d[0] - c97 * d[2] + d[4];
    r[1] = e1 + o1;
    r[2] = e1 - o1;
    r[3] = e2 + o2;
    r[4] = e2 - o2;
    r[5] = d[1] - c97 * d[3] + d[5];
}

static void at6(const float *m, float *y)
{
    float s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
    y[0] = m[0] + s1 + s2;
    y[1] = (2.0f / 3.0f) * d1 + 1.5f * d2;
    y[2] = (4.0f / 9.0f) * s1 + 2.25f * s2;
    y[3] = (8.0f / 27.0f) * d1 + 3.375f * d2 + m[5];
}

static void g3(const double *g, double *u)
{
    double a = -81.0 / 130 * g[0] - 18.0 / 65 * g[2], b = 27.0 / 65 * g[1];
    double a2 = 8.0 / 65 * g[0] + 18.0 / 65 * g[2], b2 = 12.0 / 65 * g[1];
    u[0] = g[0];
    u[1] = a - b;
    u[2] = a + b;
    u[3] = a2 + b2;
    u[4] = a2 - b2;
    u[5] = g[2];
}

static void g_in_run(const float *x, int64_t plane, int nch, int64_t H, int64_t W, int64_t h0, int64_t w0, int nt,
                     float *buf, float *v, int64_t ldv, int64_t vs)
{
    const int ncols = 4 * nt + 2;
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < ncols; c++) {
            const int64_t h = h0 + r, w = w0 + c;
            const int in = h >= 0 && h < H && w >= 0 && w < W;
            for (int l = 0; l < 16; l++)
                buf[(r * bs + c) * 16 + l] = in && l < nch ? x[l * plane + h * W + w] : 0.0f;
        }
    float d[6], t[6];
    for (int c = 0; c < ncols; c++)
        for (int l = 0; l < 16; l++) {
            for (int r = 0; r < 6; r++)
                d[r] = buf[(r * bs + c) * 16 + l];
            bt6(d, t);
            for (int r = 0; r < 6; r++)
                buf[(r * bs + c) * 16 + l] = t[r];
        }
    for (int i = 0; i < nt; i++)
        for (int k = 0; k < 6; k++)
            for (int l = 0; l < 16; l++) {
                for (int c = 0; c < 6; c++)
                    d[c] = buf[(k * bs + 4 * i + c) * 16 + l];
                bt6(d, t);
                for (int c = 0; c < 6; c++)
                    v[(k * 6 + c) * vs + i * ldv + l] = t[c];
            }
}

static int g_out_run(const float *m, int64_t ldm, int64_t ms, int nt, const float *bias, int nch, float *y,
                     int64_t plane, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0, float *buf)
{
    (void)buf;
    int bad = 0;
    for (int i = 0; i < nt; i++)
        for (int l = 0; l < nch; l++) {
            float t[6][4], d[6], o[4];
            for (int k = 0; k < 6; k++) {
                for (int c = 0; c < 6; c++)
                    d[c] = m[(k * 6 + c) * ms + i * ldm + l];
                at6(d, t[k]);
            }
            for (int b = 0; b < 4; b++) {
                for (int k = 0; k < 6; k++)
                    d[k] = t[k][b];
                at6(d, o);
                const int64_t ow = ow0 + 4 * i + b;
                for (int a = 0; a < 4; a++)
                    if (oh0 + a < OH && ow < OW) {
                        const float v = o[a] + (bias ? bias[l] : 0.0f);
                        bad |= !isfinite(v);
                        y[l * plane + (oh0 + a) * OW + ow] = v;
                    }
            }
        }
    return bad;
}

static void g_weights(const float *w, int64_t ls, int64_t ks, int flip, int nl, int64_t K, float *u, int64_t ldu,
                      int64_t us)
{
    for (int64_t k = 0; k < K; k++)
        for (int l = 0; l < 16; l++) {
            double g[9], col[3], t[6][3], row[6];
            for (int i = 0; i < 9; i++)
                g[i] = l < nl ? w[l * ls + k * ks + (flip ? 8 - i : i)] : 0.0;
            for (int c = 0; c < 3; c++) {
                double tc[6];
                for (int r = 0; r < 3; r++)
                    col[r] = g[r * 3 + c];
                g3(col, tc);
                for (int i = 0; i < 6; i++)
                    t[i][c] = tc[i];
            }
            for (int i = 0; i < 6; i++) {
                g3(t[i], row);
                for (int j = 0; j < 6; j++)
                    u[(i * 6 + j) * us + k * ldu + l] = (float)row[j];
            }
        }
}

static void a4(const float *d, float *z)
{
    const float e1 = d[0] + (4.0f / 9.0f) * d[2], o1 = (2.0f / 3.0f) * d[1] + (8.0f / 27.0f) * d[3];
    const float e2 = d[0] + 2.25f * d[2], o2 = 1.5f * d[1] + 3.375f * d[3];
    z[0] = d[0];
    z[1] = e1 + o1;
    z[2] = e1 - o1;
    z[3] = e2 + o2;
    z[4] = e2 - o2;
    z[5] = d[3];
}

static void gt6(const double *m, double *r)
{
    const double s1 = m[1] + m[2], s2 = m[3] + m[4];
    r[0] = m[0] - 81.0 / 130 * s1 + 8.0 / 65 * s2;
    r[1] = 27.0 / 65 * (m[2] - m[1]) + 12.0 / 65 * (m[3] - m[4]);
    r[2] = 18.0 / 65 * (s2 - s1) + m[5];
}

static void g_dy_run(const float *dy, int64_t plane, int nch, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0,
                     int nt, float *buf, float *z, int64_t ldz, int64_t zs)
{
    (void)buf;
    for (int i = 0; i < nt; i++)
        for (int l = 0; l < 16; l++) {
            float d[4][4], t[6][4], col[4], out[6];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    const int64_t h = oh0 + a, w = ow0 + 4 * i + b;
                    d[a][b] = l < nch && h < OH && w < OW ? dy[l * plane + h * OW + w] : 0.0f;
                }
            for (int b = 0; b < 4; b++) {
                for (int a = 0; a < 4; a++)
                    col[a] = d[a][b];
                a4(col, out);
                for (int k = 0; k < 6; k++)
                    t[k][b] = out[k];
            }
            for (int k = 0; k < 6; k++) {
                a4(t[k], out);
                for (int c = 0; c < 6; c++)
                    z[(k * 6 + c) * zs + i * ldz + l] = out[c];
            }
        }
}

static void g_wout(const float *m, int64_t ms, int nl, float *dw)
{
    for (int l = 0; l < nl; l++) {
        double t[3][6], row[6], r[3];
        for (int c = 0; c < 6; c++) {
            double col[6];
            for (int k = 0; k < 6; k++)
                col[k] = m[(k * 6 + c) * ms + l];
            gt6(col, r);
            for (int a = 0; a < 3; a++)
                t[a][c] = r[a];
        }
        for (int a = 0; a < 3; a++) {
            for (int c = 0; c < 6; c++)
                row[c] = t[a][c];
            gt6(row, r);
            for (int b = 0; b < 3; b++)
                dw[l * 9 + a * 3 + b] += (float)r[b];
        }
    }
}

static inline void g_gemmt(int nr, int mr, int64_t K, const float *a, int64_t lda, const float *b, float *m,
                           int64_t ldm, int accumulate)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++)
                s += a[k * lda + r] * b[k * nr + j];
            m[r * ldm + j] = accumulate ? m[r * ldm + j] + s : s;
        }
}

static inline void g_gemm(int nr, int mr, int64_t K, const float *v, int64_t ldv, const float *u, float *m,
                          int64_t ldm, int accumulate)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++)
                s += v[r * ldv + k] * u[k * nr + j];
            m[r * ldm + j] = accumulate ? m[r * ldm + j] + s : s;
        }
}

#define G_GEMM(NR, MR)                                                                             \
    static void g_gemm##NR##_##MR(int64_t K, const float *v, int64_t ldv, const float *u, float *m, \
                                  int64_t ldm, int accumulate)                                     \
    {                                                                                              \
        g_gemm(NR, MR, K, v, ldv, u, m, ldm, accumulate);                                          \
    }
#define G_GEMMT(NR, MR)                                                                             \
    static void g_gemmt##NR##_##MR(int64_t K, const float *a, int64_t lda, const float *b, float *m,  \
                                   int64_t ldm, int accumulate)                                     \
    {                                                                                               \
        g_gemmt(NR, MR, K, a, lda, b, m, ldm, accumulate);                                          \
    }
#define G_GEMMS(MR) G_GEMM(16, MR) G_GEMM(32, MR) G_GEMMT(16, MR) G_GEMMT(32, MR)
G_GEMMS(1)
G_GEMMS(2)
G_GEMMS(3)
G_GEMMS(4)
G_GEMMS(5)
G_GEMMS(6)
G_GEMMS(7)
G_GEMMS(8)
G_GEMMS(9)
G_GEMMS(10)
G_GEMMS(11)
G_GEMMS(12)

const cnni_wino_kernels cnni_wino_kernels_generic = {
    {g_gemm32_1, g_gemm32_2, g_gemm32_3, g_gemm32_4, g_gemm32_5, g_gemm32_6, g_gemm32_7, g_gemm32_8, g_gemm32_9,
     g_gemm32_10, g_gemm32_11, g_gemm32_12},
    {g_gemm16_1, g_gemm16_2, g_gemm16_3, g_gemm16_4, g_gemm16_5, g_gemm16_6, g_gemm16_7, g_gemm16_8, g_gemm16_9,
     g_gemm16_10, g_gemm16_11, g_gemm16_12},
    {g_gemmt32_1, g_gemmt32_2, g_gemmt32_3, g_gemmt32_4, g_gemmt32_5, g_gemmt32_6, g_gemmt32_7, g_gemmt32_8,
     g_gemmt32_9, g_gemmt32_10, g_gemmt32_11, g_gemmt32_12},
    {g_gemmt16_1, g_gemmt16_2, g_gemmt16_3, g_gemmt16_4, g_gemmt16_5, g_gemmt16_6, g_gemmt16_7, g_gemmt16_8,
     g_gemmt16_9, g_gemmt16_10, g_gemmt16_11, g_gemmt16_12},
    g_in_run,
    g_out_run,
    g_weights,
    g_dy_run,
    g_wout};

static const cnni_wino_kernels *kernels_for(int isa)
{
    return isa == CNNI_ISA_AVX512 ? &cnni_wino_kernels_avx512
           : isa == CNNI_ISA_AVX2 ? &cnni_wino_kernels_avx2
                                  : &cnni_wino_kernels_generic;
}

/* ---- geometry and scratch ---- */

/* The convolution as Winograd sees it: in channels C (the sums), out
 * channels O, planes H x W -> OH x OW read from row -ph, column -pw. */
typedef struct {
    int64_t N, C, O, H, W, OH, OW, ph, pw;
    int64_t tw, th, T; /* tiles per row, per column, in all */
    int64_t Cp, Op;    /* C, O rounded up to 16 */
    int64_t tbs;       /* tiles per task at most */
    int64_t vs, ms;    /* floats from one point to the next in V and M */
} wgeo;

static int64_t up16(int64_t v) { return (v + 15) & ~(int64_t)15; }

static void geo_of(const cnni_conv_geom *g, wgeo *e)
{
    e->N = g->N;
    e->C = g->C;
    e->O = g->O;
    e->H = g->in[1];
    e->W = g->in[2];
    e->OH = g->out[1];
    e->OW = g->out[2];
    e->ph = g->p[1];
    e->pw = g->p[2];
    e->th = (e->OH + 3) / 4;
    e->tw = (e->OW + 3) / 4;
    e->T = e->N * e->th * e->tw;
    e->Cp = up16(e->C);
    e->Op = up16(e->O);
    e->tbs = e->T < TB_MAX ? e->T : TB_MAX;
    if (e->tbs < 1)
        e->tbs = 1;
    /* a line more than the points need, so they do not share a cache set */
    e->vs = e->tbs * e->Cp + 16;
    e->ms = e->tbs * e->Op + 16;
}

/* The backward data pass as a forward convolution of dy. */
static void bwd_geom(const cnni_conv_geom *g, cnni_conv_geom *b)
{
    *b = *g;
    b->C = g->O;
    b->O = g->C;
    for (int i = 0; i < 3; i++) {
        b->in[i] = g->out[i];
        b->out[i] = g->in[i];
        b->p[i] = g->k[i] - 1 - g->p[i];
    }
}

static int geometry_fits(const cnni_conv_geom *g)
{
    return g->G == 1 && g->N > 0 && g->in[0] == 1 && g->out[0] == 1 && g->k[0] == 1 && g->k[1] == 3 &&
           g->k[2] == 3 && g->s[1] == 1 && g->s[2] == 1 && g->d[1] == 1 && g->d[2] == 1 && g->C > 0 && g->O > 0 &&
           g->out[1] > 0 && g->out[2] > 0;
}

int cnni_conv_winograd_applies(int isa, const cnni_conv_geom *g)
{
    if (isa == CNNI_ISA_GENERIC || !geometry_fits(g))
        return 0;
    wgeo e;
    geo_of(g, &e);
    /* With AVX2 the other kernels are the plane kernels and the GEMM (no
     * direct kernels): Winograd measured faster from 8 channels each side
     * (8 -> 16 at 28x28, batch 32: 0.59-0.66 ms vs 0.71-0.89; 16 -> 16:
     * 0.81 vs 1.68). */
    if (isa == CNNI_ISA_AVX2)
        return g->C >= 8 && g->O >= 8 && g->C + g->O >= 24 && e.T >= 8;
    return g->C >= 32 && g->O >= 32 && e.T >= 8;
}

int cnni_conv_winograd_applies_bwd(int isa, const cnni_conv_geom *g)
{
    if (!geometry_fits(g))
        return 0;
    cnni_conv_geom b;
    bwd_geom(g, &b);
    return cnni_conv_winograd_applies(isa, &b);
}

static size_t al64(size_t v) { return (v + 63) & ~(size_t)63; }

static size_t u_bytes(const wgeo *e) { return al64((size_t)(NP * e->C * e->Op) * sizeof(float)); }

/* Per thread: V [point][tile][Cp], M [point][tile][Op], the row buffer. */
static size_t thread_bytes(const wgeo *e, size_t *parts)
{
    const int64_t run = e->tbs < e->tw ? e->tbs : e->tw;
    parts[0] = al64((size_t)(NP * e->vs) * sizeof(float));
    parts[1] = al64((size_t)(NP * e->ms) * sizeof(float));
    parts[2] = al64((size_t)(6 * cnni_wino_row_floats((int)run)) * sizeof(float));
    return parts[0] + parts[1] + parts[2];
}

static size_t total_bytes(const cnni_conv_geom *g, int threads)
{
    wgeo e;
    size_t parts[3];
    geo_of(g, &e);
    return u_bytes(&e) + thread_bytes(&e, parts) * (size_t)(threads > 0 ? threads : 1);
}

size_t cnni_conv_winograd_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    (void)isa;
    cnni_conv_geom b;
    bwd_geom(g, &b);
    size_t f = total_bytes(g, threads), d = total_bytes(&b, threads);
    return (f > d ? f : d) + 64;
}

/* ---- the passes ---- */

typedef struct {
    const cnni_wino_kernels *k;
    wgeo e;
    const float *x, *w, *b;
    float *y, *u;
    int flip;
    int64_t ls, ks; /* weight strides: per lane (out channel), per row (in channel) */
    int64_t tb;     /* tiles per task */
    char *threads_base;
    size_t thread_bytes;
    int nthreads;
    int64_t ntasks; /* of main_task, taken by the next thread free */
} job;

/* U[point][32-channel block][C][width]: the block of 16 lanes q. */
static void weights_task(void *ctx, int64_t q, int thread)
{
    (void)thread;
    const job *j = ctx;
    const wgeo *e = &j->e;
    const int64_t o0 = q * 16, blk = o0 / 32, nb = e->Op - blk * 32 < 32 ? e->Op - blk * 32 : 32;
    const int nl = (int)(e->O - o0 < 16 ? e->O - o0 : 16);
    float *u = j->u + blk * 32 * e->C + o0 % 32;
    j->k->weights(j->w + o0 * j->ls, j->ls, j->ks, j->flip, nl, e->C, u, nb, e->C * e->Op);
}

/* The position of global tile gt: image n, tile row ty, tile column tx. */
static void tile_pos(const wgeo *e, int64_t gt, int64_t *n, int64_t *ty, int64_t *tx)
{
    const int64_t per = e->th * e->tw, r = gt % per;
    *n = gt / per;
    *ty = r / e->tw;
    *tx = r % e->tw;
}

/* ---- non-finite values ----
 * The transforms spread a NaN or an infinity over the whole tile (and over
 * the outputs of every tile whose patch holds it), and inputs near the
 * float range overflow in them, where the direct sum leaves the outputs
 * that never read such a value finite and gives +-inf where PyTorch does.
 * out_run reports non-finite outputs; those tiles are summed again here,
 * directly, in double: the outputs PyTorch's direct convolution gives, NaN
 * and infinities where it puts them. A finite input far larger than the
 * others still costs its tile's outputs precision (as with any Winograd). */
static int tile_nonfinite(const job *j, int64_t n, int64_t ty, int64_t tx)
{
    const wgeo *e = &j->e;
    for (int64_t o = 0; o < e->O; o++)
        for (int64_t h = 4 * ty; h < 4 * ty + 4 && h < e->OH; h++)
            for (int64_t w = 4 * tx; w < 4 * tx + 4 && w < e->OW; w++)
                if (!isfinite(j->y[((n * e->O + o) * e->OH + h) * e->OW + w]))
                    return 1;
    return 0;
}

static void direct_tile(const job *j, int64_t n, int64_t ty, int64_t tx)
{
    const wgeo *e = &j->e;
    for (int64_t o = 0; o < e->O; o++)
        for (int64_t h = 4 * ty; h < 4 * ty + 4 && h < e->OH; h++)
            for (int64_t w = 4 * tx; w < 4 * tx + 4 && w < e->OW; w++) {
                double s = j->b ? j->b[o] : 0.0;
                for (int64_t c = 0; c < e->C; c++)
                    for (int a = 0; a < 3; a++) {
                        const int64_t ih = h + a - e->ph;
                        if (ih < 0 || ih >= e->H)
                            continue;
                        for (int b = 0; b < 3; b++) {
                            const int64_t iw = w + b - e->pw;
                            const int t = a * 3 + b;
                            if (iw >= 0 && iw < e->W)
                                s += (double)j->x[((n * e->C + c) * e->H + ih) * e->W + iw] *
                                     (double)j->w[o * j->ls + c * j->ks + (j->flip ? 8 - t : t)];
                        }
                    }
                j->y[((n * e->O + o) * e->OH + h) * e->OW + w] = (float)s;
            }
}

static void main_task(void *ctx, int64_t t, int thread)
{
    const job *j = ctx;
    const wgeo *e = &j->e;
    const cnni_wino_kernels *k = j->k;
    size_t parts[3];
    char *base = j->threads_base + (size_t)thread * j->thread_bytes;
    thread_bytes(e, parts);
    float *V = (float *)base, *M = (float *)(base + parts[0]), *buf = (float *)(base + parts[0] + parts[1]);
    const int64_t vs = e->vs, ms = e->ms;
    const int64_t t0 = t * j->tb, nt = e->T - t0 < j->tb ? e->T - t0 : j->tb;
    const int64_t inplane = e->H * e->W, outplane = e->OH * e->OW;

    /* input transform, by runs of tiles within a tile row */
    for (int64_t i = 0; i < nt;) {
        int64_t n, ty, tx;
        tile_pos(e, t0 + i, &n, &ty, &tx);
        const int run = (int)(nt - i < e->tw - tx ? nt - i : e->tw - tx);
        for (int64_t c0 = 0; c0 < e->C; c0 += 16)
            k->in_run(j->x + (n * e->C + c0) * inplane, inplane, (int)(e->C - c0 < 16 ? e->C - c0 : 16), e->H, e->W,
                      4 * ty - e->ph, 4 * tx - e->pw, run, buf, V + i * e->Cp + c0, e->Cp, vs);
        i += run;
    }

    /* the products, point by point, in blocks of CNNI_WINO_KB channels */
    const int64_t nkb = (e->C + CNNI_WINO_KB - 1) / CNNI_WINO_KB;
    for (int64_t p = 0; p < NP; p++)
        for (int64_t o0 = 0; o0 < e->Op; o0 += 32) {
            const int64_t nb = e->Op - o0 < 32 ? e->Op - o0 : 32;
            const cnni_wino_gemm_fn *fns = nb == 32 ? k->gemm32 : k->gemm16;
            const float *u = j->u + p * e->C * e->Op + o0 * e->C;
            for (int64_t kb = 0; kb < nkb; kb++) {
                int64_t k0, k1;
                cnni_split(e->C, nkb, kb, &k0, &k1);
                for (int64_t r0 = 0; r0 < nt; r0 += CNNI_WINO_MR) {
                    const int mr = (int)(nt - r0 < CNNI_WINO_MR ? nt - r0 : CNNI_WINO_MR);
                    fns[mr - 1](k1 - k0, V + p * vs + r0 * e->Cp + k0, e->Cp, u + k0 * nb, M + p * ms + r0 * e->Op + o0,
                                e->Op, kb > 0);
                }
            }
        }

    /* output transform */
    for (int64_t i = 0; i < nt;) {
        int64_t n, ty, tx;
        tile_pos(e, t0 + i, &n, &ty, &tx);
        const int run = (int)(nt - i < e->tw - tx ? nt - i : e->tw - tx);
        int bad = 0;
        for (int64_t o0 = 0; o0 < e->O; o0 += 16)
            bad |= k->out_run(M + i * e->Op + o0, e->Op, ms, run, j->b ? j->b + o0 : NULL,
                              (int)(e->O - o0 < 16 ? e->O - o0 : 16), j->y + (n * e->O + o0) * outplane, outplane,
                              e->OH, e->OW, 4 * ty, 4 * tx, buf);
        if (bad)
            for (int64_t c = tx; c < tx + run; c++)
                if (tile_nonfinite(j, n, ty, c))
                    direct_tile(j, n, ty, c);
        i += run;
    }
}

static void run(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x, const float *w, int flip,
                int64_t ls, int64_t ks, const float *b, float *y, void *scratch)
{
    job j;
    memset(&j, 0, sizeof j);
    j.k = kernels_for(isa);
    geo_of(g, &j.e);
    j.x = x;
    j.w = w;
    j.b = b;
    j.y = y;
    j.flip = flip;
    j.ls = ls;
    j.ks = ks;
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    j.u = (float *)base;
    size_t parts[3];
    j.threads_base = base + u_bytes(&j.e);
    j.thread_bytes = thread_bytes(&j.e, parts);
    j.nthreads = cnni_pool_threads(pool);
    /* Blocked: one thread writes both 16-lane halves of a 32-channel block
     * of U (tasks handed out one at a time took 4x the 1-thread time). */
    cnni_pool_run_blocked(pool, weights_task, &j, j.e.Op / 16);
    /* Enough tasks for every thread, each at most TB_MAX tiles; how tiles
     * are grouped does not change any result. */
    int64_t tasks = (j.e.T + TB_MAX - 1) / TB_MAX;
    tasks = (tasks + j.nthreads - 1) / j.nthreads * j.nthreads;
    if (tasks > j.e.T)
        tasks = j.e.T;
    j.tb = (j.e.T + tasks - 1) / tasks;
    j.ntasks = (j.e.T + j.tb - 1) / j.tb;
    cnni_pool_run(pool, main_task, &j, j.ntasks);
}

void cnni_conv_winograd_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                const float *w, const float *b, float *y, void *scratch)
{
    run(isa, pool, g, x, w, 0, g->C * 9, 9, b, y, scratch);
}

void cnni_conv_winograd_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                      const float *w, float *dx, void *scratch)
{
    cnni_conv_geom b;
    bwd_geom(g, &b);
    /* w'[c][o][t] = w[o][c][8 - t]: lanes are the forward's input channels. */
    run(isa, pool, &b, dy, w, 1, 9, g->C * 9, NULL, dx, scratch);
}

/* ---- the weight gradient ---- */

/* Two ways to spread the work, both with sums whose order depends only on
 * the shape:
 *   slices (many tiles for the channels): the tiles are cut into ns
 *     slices, each a task that transforms its tiles a few at a time into
 *     its thread's buffers (which stay in the core's cache) and adds their
 *     products to the slice's own sums; the slices' sums are then added in
 *     order and taken back to 3x3.
 *   chunks (wide layers, few tiles): the tiles are taken in chunks of
 *     about WG_CHUNK_BYTES of transforms, all threads transform a chunk,
 *     then tasks owning blocks of (out, in) channels add the chunk's
 *     products to their sums; after the last chunk they take them back.
 * Sums: S [32-channel block][O][point][32], one set per slice (or one in
 * all, with more than one chunk; with one chunk a task's block of sums is
 * in its thread's buffer). */
#define WG_CHUNK_BYTES (2 << 20)
#define WG_CHUNK_MAX_BYTES (32 << 20) /* chunks are never larger */
#define WG_SLICE_BYTES (768 << 10) /* transforms per step of a slice */
#define WG_KB 64                   /* tiles per block of the sums */
#define WG_MAX_SLICES 12

typedef struct {
    wgeo e;
    int64_t ns;     /* slices, or 1 for chunks */
    int64_t tc;     /* tiles per chunk, or per step of a slice */
    int64_t vs, zs; /* floats from one point to the next in V and Z */
    int64_t ncb;    /* blocks of 32 in channels */
    int64_t sfl;    /* floats in one set of sums */
} wggeo;

static void wg_geo(const cnni_conv_geom *g, wggeo *w)
{
    geo_of(g, &w->e);
    const wgeo *e = &w->e;
    const int64_t per_tile = NP * (e->Cp + e->Op) * (int64_t)sizeof(float);
    w->ncb = (e->Cp + 31) / 32;
    w->sfl = w->ncb * e->O * NP * 32;
    /* Slices when each can have transforms 8 times its sums' bytes: an
     * even number, so that two threads get equal shares. */
    int64_t ns = e->T / (8 * w->sfl * (int64_t)sizeof(float) / per_tile + 1);
    ns = ns > WG_MAX_SLICES ? WG_MAX_SLICES : ns & ~(int64_t)1;
    w->ns = ns >= 2 ? ns : 1;
    int64_t tc;
    if (w->ns > 1) {
        tc = WG_SLICE_BYTES / per_tile;
        tc = tc < 16 ? 16 : tc > WG_KB ? WG_KB : tc;
    } else {
        tc = WG_CHUNK_BYTES / per_tile;
        /* and enough that reading and writing the sums for every chunk
         * costs at most a quarter of the chunk's transforms */
        const int64_t tm = 4 * e->O * e->Cp / (e->Cp + e->Op), tx = WG_CHUNK_MAX_BYTES / per_tile;
        tc = tc < tm ? tm : tc;
        tc = tc > tx ? tx : tc;
        tc = tc < 16 ? 16 : tc;
    }
    w->tc = tc < e->T ? tc : e->T;
    /* a line more than the points need, so they do not share a cache set */
    w->vs = w->tc * e->Cp + 16;
    w->zs = w->tc * e->Op + 16;
}

static int64_t wg_chunks(const wggeo *w) { return w->ns > 1 ? 1 : (w->e.T + w->tc - 1) / w->tc; }

/* parts: [0] the sums, [1] V, [2] Z shared (chunks) or 0, [3] per thread:
 * the row buffer, then V and Z (slices) or one task's sums (one chunk). */
static size_t wg_bytes(const wggeo *w, size_t *parts)
{
    const int64_t run = w->tc < w->e.tw ? w->tc : w->e.tw;
    const size_t v = al64((size_t)(NP * w->vs) * sizeof(float)), z = al64((size_t)(NP * w->zs) * sizeof(float));
    const size_t buf = al64((size_t)(6 * cnni_wino_row_floats((int)run)) * sizeof(float));
    if (w->ns > 1) {
        parts[0] = al64((size_t)(w->ns * w->sfl) * sizeof(float));
        parts[1] = parts[2] = 0;
        parts[3] = buf + v + z;
    } else {
        parts[0] = wg_chunks(w) > 1 ? al64((size_t)w->sfl * sizeof(float)) : 0;
        parts[1] = v;
        parts[2] = z;
        parts[3] = buf + (wg_chunks(w) > 1 ? 0 : al64((size_t)(CNNI_WINO_MR * NP * 32) * sizeof(float)));
    }
    return parts[0] + parts[1] + parts[2];
}

int cnni_conv_winograd_applies_weight(int isa, const cnni_conv_geom *g)
{
    if (isa == CNNI_ISA_GENERIC || !geometry_fits(g))
        return 0;
    wgeo e;
    geo_of(g, &e);
    /* Measured faster than the direct and the plane kernels from 8 channels
     * each side (12 -> 12 at 28x28: 0.15 ms vs 0.25), not with 3 or 4 in
     * channels, whose transforms fill a quarter of the lanes. */
    return g->C >= 8 && g->O >= 8 && g->C + g->O >= 24 && e.T >= 8;
}

size_t cnni_conv_winograd_weight_scratch(int isa, const cnni_conv_geom *g, int threads)
{
    (void)isa;
    wggeo w;
    size_t parts[4];
    wg_geo(g, &w);
    return wg_bytes(&w, parts) + parts[3] * (size_t)(threads > 0 ? threads : 1) + 64;
}

typedef struct {
    const cnni_wino_kernels *k;
    wggeo w;
    const float *x, *dy;
    float *dw, *db, *S, *V, *Z;
    int64_t t0, nt; /* chunks: the chunk's first tile and its tiles */
    int last;       /* chunks: the last chunk */
    int64_t ntasks; /* chunks: transform tasks per chunk */
    int64_t nob;    /* blocks of out channels of the product (chunks) and final tasks */
    char *threads_base;
    size_t thread_bytes, buf_bytes;
    int nthreads;
} wgjob;

/* The transforms of tiles t0 + i, i in [i0, i1), to V and Z at index i. */
static void wg_transform(const wgjob *j, int64_t t0, int64_t i0, int64_t i1, float *V, float *Z, float *buf)
{
    const wgeo *e = &j->w.e;
    const cnni_wino_kernels *k = j->k;
    const int64_t inplane = e->H * e->W, outplane = e->OH * e->OW, tc = j->w.tc;
    for (int64_t i = i0; i < i1;) {
        int64_t n, ty, tx;
        tile_pos(e, t0 + i, &n, &ty, &tx);
        const int run = (int)(i1 - i < e->tw - tx ? i1 - i : e->tw - tx);
        for (int64_t c0 = 0; c0 < e->C; c0 += 16) {
            const int64_t blk = c0 / 32, nb = e->Cp - blk * 32 < 32 ? e->Cp - blk * 32 : 32;
            k->in_run(j->x + (n * e->C + c0) * inplane, inplane, (int)(e->C - c0 < 16 ? e->C - c0 : 16), e->H, e->W,
                      4 * ty - e->ph, 4 * tx - e->pw, run, buf, V + blk * 32 * tc + i * nb + c0 % 32, nb, j->w.vs);
        }
        for (int64_t o0 = 0; o0 < e->O; o0 += 16)
            k->dy_run(j->dy + (n * e->O + o0) * outplane, outplane, (int)(e->O - o0 < 16 ? e->O - o0 : 16), e->OH,
                      e->OW, 4 * ty, 4 * tx, run, buf, Z + i * e->Op + o0, e->Op, j->w.zs);
        i += run;
    }
}

/* Every point's products over nt transformed tiles for in channels
 * [c0, c0 + 32) and out channels [o0, o1) (at most MR), added to the sums
 * s (row r, point p at s[r*NP*32 + p*32]) unless first. */
static void wg_product(const wgjob *j, const float *V, const float *Z, int64_t nt, int64_t c0, int64_t o0,
                       int64_t o1, float *s, int first)
{
    const wgeo *e = &j->w.e;
    const int64_t nb = e->Cp - c0 < 32 ? e->Cp - c0 : 32;
    const cnni_wino_gemmt_fn fn = (nb == 32 ? j->k->gemmt32 : j->k->gemmt16)[o1 - o0 - 1];
    for (int64_t p = 0; p < NP; p++) {
        const float *z = Z + p * j->w.zs + o0, *v = V + p * j->w.vs + c0 * j->w.tc;
        /* the tiles in blocks, whose sums are then added */
        for (int64_t k0 = 0; k0 < nt; k0 += WG_KB) {
            const int64_t kn = nt - k0 < WG_KB ? nt - k0 : WG_KB;
            fn(kn, z + k0 * e->Op, e->Op, v + k0 * nb, s + p * 32, NP * 32, !first || k0 > 0);
        }
    }
}

/* dw[t] = old[t] + the weight gradient of out channel o and in channel c,
 * summed directly in double: for the filters whose Winograd sums came out
 * NaN or infinite (see "Non-finite values" above; here an infinity in x or
 * dy became NaN where PyTorch gives +-inf). */
static void direct_wgrad(const wgjob *j, int64_t o, int64_t c, const float *old, float *dw)
{
    const wgeo *e = &j->w.e;
    for (int t = 0; t < 9; t++) {
        const int64_t a = t / 3, b = t % 3;
        double s = 0;
        for (int64_t n = 0; n < e->N; n++)
            for (int64_t h = 0; h < e->OH; h++) {
                const int64_t ih = h + a - e->ph;
                if (ih < 0 || ih >= e->H)
                    continue;
                for (int64_t w = 0; w < e->OW; w++) {
                    const int64_t iw = w + b - e->pw;
                    if (iw >= 0 && iw < e->W)
                        s += (double)j->x[((n * e->C + c) * e->H + ih) * e->W + iw] *
                             (double)j->dy[((n * e->O + o) * e->OH + h) * e->OW + w];
                }
            }
        dw[t] = (float)((double)old[t] + s);
    }
}

/* dw += G^T s G for out channels [o0, o1) and in channels [c0, c0 + 32);
 * db += the sums of dy when c0 is 0. */
static void wg_finish(const wgjob *j, const float *s, int64_t c0, int64_t o0, int64_t o1)
{
    const wgeo *e = &j->w.e;
    const int64_t nb = e->Cp - c0 < 32 ? e->Cp - c0 : 32;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t h = c0; h < c0 + nb && h < e->C; h += 16) {
            const int nl = (int)(e->C - h < 16 ? e->C - h : 16);
            float *dw = j->dw + (o * e->C + h) * 9, old[16 * 9];
            memcpy(old, dw, sizeof(float) * (size_t)(nl * 9));
            j->k->wout(s + (o - o0) * NP * 32 + (h - c0), 32, nl, dw);
            for (int l = 0; l < nl; l++) {
                int bad = 0;
                for (int t = 0; t < 9; t++)
                    bad |= !isfinite(dw[l * 9 + t]);
                if (bad)
                    direct_wgrad(j, o, h + l, old + l * 9, dw + l * 9);
            }
        }
    if (!j->db || c0 > 0)
        return;
    const int64_t P = e->OH * e->OW;
    for (int64_t o = o0; o < o1; o++) {
        double acc = 0;
        for (int64_t n = 0; n < e->N; n++) {
            /* 16 float sums, which compilers vectorise */
            const float *d = j->dy + (n * e->O + o) * P;
            float part[16] = {0};
            int64_t z = 0;
            for (; z + 16 <= P; z += 16)
                for (int l = 0; l < 16; l++)
                    part[l] += d[z + l];
            for (; z < P; z++)
                part[0] += d[z];
            for (int l = 0; l < 16; l++)
                acc += part[l];
        }
        j->db[o] += (float)acc;
    }
}

/* Chunks: the transforms of the chunk's tiles in range t of ntasks. */
static void wg_transform_task(void *ctx, int64_t t, int thread)
{
    const wgjob *j = ctx;
    float *buf = (float *)(j->threads_base + (size_t)thread * j->thread_bytes);
    int64_t i0, i1;
    cnni_split(j->nt, j->ntasks, t, &i0, &i1);
    wg_transform(j, j->t0, i0, i1, j->V, j->Z, buf);
}

/* Chunks: block t / nob of 32 in channels, block t % nob of out channels:
 * the chunk's products added to the sums; after the last chunk, dw and db. */
static void wg_product_task(void *ctx, int64_t t, int thread)
{
    const wgjob *j = ctx;
    const wgeo *e = &j->w.e;
    const int64_t c0 = t / j->nob * 32, ob = t % j->nob;
    int64_t o0, o1;
    cnni_split(e->O, j->nob, ob, &o0, &o1);
    float *s = wg_chunks(&j->w) > 1
                   ? j->S + (c0 * e->O + o0 * 32) * NP
                   : (float *)(j->threads_base + (size_t)thread * j->thread_bytes + j->buf_bytes);
    wg_product(j, j->V, j->Z, j->nt, c0, o0, o1, s, j->t0 == 0);
    if (j->last)
        wg_finish(j, s, c0, o0, o1);
}

/* Slices: slice t's tiles, a step at a time, into its own sums. */
static void wg_slice_task(void *ctx, int64_t t, int thread)
{
    const wgjob *j = ctx;
    const wgeo *e = &j->w.e;
    char *base = j->threads_base + (size_t)thread * j->thread_bytes;
    float *buf = (float *)base, *V = (float *)(base + j->buf_bytes);
    float *Z = V + al64((size_t)(NP * j->w.vs) * sizeof(float)) / sizeof(float);
    float *S = j->S + t * j->w.sfl;
    const int64_t rows = (e->O + CNNI_WINO_MR - 1) / CNNI_WINO_MR;
    int64_t a, b;
    cnni_split(e->T, j->w.ns, t, &a, &b);
    for (int64_t t0 = a; t0 < b; t0 += j->w.tc) {
        const int64_t nt = b - t0 < j->w.tc ? b - t0 : j->w.tc;
        wg_transform(j, t0, 0, nt, V, Z, buf);
        for (int64_t c0 = 0; c0 < e->Cp; c0 += 32)
            for (int64_t r = 0; r < rows; r++) {
                int64_t o0, o1;
                cnni_split(e->O, rows, r, &o0, &o1);
                wg_product(j, V, Z, nt, c0, o0, o1, S + (c0 * e->O + o0 * 32) * NP, t0 == a);
            }
    }
}

/* Slices: block t / nob of 32 in channels, block t % nob of out channels:
 * the slices' sums added in order, then dw and db. */
static void wg_sum_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    const wgjob *j = ctx;
    const wgeo *e = &j->w.e;
    const int64_t c0 = t / j->nob * 32, ob = t % j->nob;
    int64_t o0, o1;
    cnni_split(e->O, j->nob, ob, &o0, &o1);
    float *s = j->S + (c0 * e->O + o0 * 32) * NP;
    const int64_t n = (o1 - o0) * NP * 32;
    for (int64_t sl = 1; sl < j->w.ns; sl++) {
        const float *q = s + sl * j->w.sfl;
        for (int64_t i = 0; i < n; i++)
            s[i] += q[i];
    }
    wg_finish(j, s, c0, o0, o1);
}

void cnni_conv_winograd_backward_weight(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                        const float *dy, float *dw, float *db, void *scratch)
{
    wgjob j;
    memset(&j, 0, sizeof j);
    j.k = kernels_for(isa);
    wg_geo(g, &j.w);
    j.x = x;
    j.dy = dy;
    j.dw = dw;
    j.db = db;
    size_t parts[4];
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const size_t shared = wg_bytes(&j.w, parts);
    j.S = (float *)base;
    j.V = (float *)(base + parts[0]);
    j.Z = (float *)(base + parts[0] + parts[1]);
    j.threads_base = base + shared;
    j.thread_bytes = parts[3];
    const int64_t run = j.w.tc < j.w.e.tw ? j.w.tc : j.w.e.tw;
    j.buf_bytes = al64((size_t)(6 * cnni_wino_row_floats((int)run)) * sizeof(float));
    j.nthreads = cnni_pool_threads(pool);
    const wgeo *e = &j.w.e;
    /* Blocks of at most MR out channels, and enough tasks to spread; how
     * they are split does not change any result. */
    j.nob = (e->O + CNNI_WINO_MR - 1) / CNNI_WINO_MR;
    while (j.nob * j.w.ncb < 2 * j.nthreads && j.nob < e->O)
        j.nob++;
    if (j.w.ns > 1) {
        cnni_pool_run(pool, wg_slice_task, &j, j.w.ns);
        cnni_pool_run_blocked(pool, wg_sum_task, &j, j.nob * j.w.ncb);
        return;
    }
    for (j.t0 = 0; j.t0 < e->T; j.t0 += j.w.tc) {
        j.nt = e->T - j.t0 < j.w.tc ? e->T - j.t0 : j.w.tc;
        j.last = j.t0 + j.nt >= e->T;
        j.ntasks = j.nt < j.nthreads ? j.nt : j.nthreads;
        cnni_pool_run(pool, wg_transform_task, &j, j.ntasks);
        cnni_pool_run(pool, wg_product_task, &j, j.nob * j.w.ncb);
    }
}
