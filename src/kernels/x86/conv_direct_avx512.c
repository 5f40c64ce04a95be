/* AVX-512 direct-convolution tiles: MR pixels x 32 channels in 2*MR zmm
 * accumulators, or MR pixels x 16 channels in MR, for MR = 1..14. */
#include "../conv_direct.h"

#include <immintrin.h>

#include "f45_avx512.h"
#include "transpose_avx512.h"

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

static inline __mmask16 first_lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* Stores the tile: acc[r] holds pixel r's 16 channels (r < mr <= 16);
 * y[j*ldy + r] = acc[r][j] (+ y when accumulate, + bias[j]) for j < nvalid:
 * a transpose in registers, then one masked row store per channel. */
static inline __attribute__((always_inline)) void store16(const __m512 *acc, int mr, float *y, int64_t ldy,
                                                          int nvalid, const float *bias, int accumulate)
{
    __m512 r[16], o[16];
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(first_lanes(nvalid), bias) : _mm512_setzero_ps();
    UNROLL for (int i = 0; i < 16; i++)
        r[i] = i < mr ? _mm512_add_ps(acc[i], bv) : _mm512_setzero_ps();
    transpose16(r, o);
    const __mmask16 m = first_lanes(mr);
    UNROLL for (int j = 0; j < 16; j++) {
        if (j >= nvalid)
            break;
        float *yj = y + j * ldy;
        _mm512_mask_storeu_ps(yj, m, accumulate ? _mm512_add_ps(o[j], _mm512_maskz_loadu_ps(m, yj)) : o[j]);
    }
}

/* dst[z*nr + c] = src[c*ld + z] for c < nvalid, 0 for c in [nvalid, nr),
 * z < P; sum[c] = the sum over z of dst[z*nr + c]. */
void cnni_direct_transpose_avx512(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst,
                                  float *sum);
void cnni_direct_transpose_avx512(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst,
                                  float *sum)
{
    for (int h = 0; h < nr / 16; h++) {
        const int nv = nvalid - 16 * h < 16 ? nvalid - 16 * h : 16;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t z0 = 0; z0 < P; z0 += 16) {
            const int zn = P - z0 < 16 ? (int)(P - z0) : 16;
            const __mmask16 m = first_lanes(zn);
            __m512 r[16], o[16];
            UNROLL for (int i = 0; i < 16; i++)
                r[i] = i < nv ? _mm512_maskz_loadu_ps(m, src + (16 * h + i) * ld + z0) : _mm512_setzero_ps();
            transpose16(r, o);
            UNROLL for (int l = 0; l < 16; l++) {
                acc = _mm512_add_ps(acc, o[l]);
                if (l < zn)
                    _mm512_storeu_ps(dst + (z0 + l) * nr + 16 * h, o[l]);
            }
        }
        _mm512_storeu_ps(sum + 16 * h, acc);
    }
}

/* Long reductions (a 1x1 layer's input channels) read each tap's pixels
 * from a row of its own, more rows than the prefetchers follow: the tiles
 * prefetch the pixels PREFETCH_K taps ahead (1x1, 256 to 64 channels,
 * 56x56: 10.3-10.9 -> 8.3-9.2 ms on one thread). */
#define PREFETCH_K 24

#define TILE_STEP(MR)                                                                              \
    {                                                                                              \
        const __m512 w0 = _mm512_loadu_ps(w + k * 32), w1 = _mm512_loadu_ps(w + k * 32 + 16);       \
        const float *xk = base + off[k];                                                           \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            __m512 av = _mm512_set1_ps(xk[r * s]);                                                 \
            acc[r][0] = _mm512_fmadd_ps(av, w0, acc[r][0]);                                        \
            acc[r][1] = _mm512_fmadd_ps(av, w1, acc[r][1]);                                        \
        }                                                                                          \
    }

#define DEFINE_TILE(MR)                                                                            \
    static void tile_##MR(int64_t K, const int64_t *off, const float *base, int64_t s,             \
                          const float *w, float *y, int64_t ldy, int nvalid, const float *bias,    \
                          int accumulate)                                                          \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();           \
        int64_t k = 0;                                                                             \
        for (; k < K - PREFETCH_K; k++) {                                                          \
            __builtin_prefetch(base + off[k + PREFETCH_K] + (MR - 1) * s);                         \
            TILE_STEP(MR)                                                                          \
        }                                                                                          \
        for (; k < K; k++)                                                                         \
            TILE_STEP(MR)                                                                          \
        __m512 lo[MR], hi[MR];                                                                     \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            lo[r] = acc[r][0];                                                                     \
            hi[r] = acc[r][1];                                                                     \
        }                                                                                          \
        store16(lo, MR, y, ldy, nvalid < 16 ? nvalid : 16, bias, accumulate);                      \
        if (nvalid > 16)                                                                           \
            store16(hi, MR, y + 16 * ldy, ldy, nvalid - 16, bias ? bias + 16 : NULL, accumulate);  \
    }

#define TILE16_STEP(MR)                                                                            \
    {                                                                                              \
        const __m512 w0 = _mm512_loadu_ps(w + k * 16);                                             \
        const float *xk = base + off[k];                                                           \
        UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(xk[r * s]), w0, acc[r]); \
    }

/* The same for blocks of 16 channels: one accumulator per pixel. */
#define DEFINE_TILE16(MR)                                                                          \
    static void tile16_##MR(int64_t K, const int64_t *off, const float *base, int64_t s,           \
                            const float *w, float *y, int64_t ldy, int nvalid, const float *bias,  \
                            int accumulate)                                                        \
    {                                                                                              \
        __m512 acc[MR];                                                                            \
        UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();                          \
        int64_t k = 0;                                                                             \
        for (; k < K - PREFETCH_K; k++) {                                                          \
            __builtin_prefetch(base + off[k + PREFETCH_K] + (MR - 1) * s);                         \
            TILE16_STEP(MR)                                                                        \
        }                                                                                          \
        for (; k < K; k++)                                                                         \
            TILE16_STEP(MR)                                                                        \
        store16(acc, MR, y, ldy, nvalid, bias, accumulate);                                        \
    }

DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)
DEFINE_TILE(7)
DEFINE_TILE(8)
DEFINE_TILE(9)
DEFINE_TILE(10)
DEFINE_TILE(11)
DEFINE_TILE(12)
DEFINE_TILE(13)
DEFINE_TILE(14)

DEFINE_TILE16(1)
DEFINE_TILE16(2)
DEFINE_TILE16(3)
DEFINE_TILE16(4)
DEFINE_TILE16(5)
DEFINE_TILE16(6)
DEFINE_TILE16(7)
DEFINE_TILE16(8)
DEFINE_TILE16(9)
DEFINE_TILE16(10)
DEFINE_TILE16(11)
DEFINE_TILE16(12)
DEFINE_TILE16(13)
DEFINE_TILE16(14)

cnni_direct_tile_fn cnni_direct_tile_avx512(int nr, int mr);
cnni_direct_tile_fn cnni_direct_tile_avx512(int nr, int mr)
{
    static const cnni_direct_tile_fn t32[] = {NULL,    tile_1,  tile_2,  tile_3,  tile_4,
                                              tile_5,  tile_6,  tile_7,  tile_8,  tile_9,
                                              tile_10, tile_11, tile_12, tile_13, tile_14};
    static const cnni_direct_tile_fn t16[] = {NULL,      tile16_1,  tile16_2,  tile16_3,  tile16_4,
                                              tile16_5,  tile16_6,  tile16_7,  tile16_8,  tile16_9,
                                              tile16_10, tile16_11, tile16_12, tile16_13, tile16_14};
    if (mr < 1 || mr > 14)
        return NULL;
    return nr == 16 ? t16[mr] : nr == 32 ? t32[mr] : NULL;
}

/* ---- Winograd F(2,5) along the rows (see conv_direct.h) ----
 * The input rows' transform: d[r*96 + j*16 + l] = sum_i BT[j][i] x[r*width + l + i]
 * for lanes l < 16 (x past the row read as 0; pair p reads lane 2p), rows
 * r < rows, with BT's rows 3 and 4 scaled by 8 (the weights' by 1/8). */
void cnni_direct_wino_input_avx512(const float *x, int64_t width, int64_t rows, float *d);
void cnni_direct_wino_input_avx512(const float *x, int64_t width, int64_t rows, float *d)
{
    const __m512 c23 = _mm512_set1_ps(2.0f / 3.0f), c16 = _mm512_set1_ps(1.0f / 6.0f),
                 c13 = _mm512_set1_ps(1.0f / 3.0f), c54 = _mm512_set1_ps(1.25f), c14 = _mm512_set1_ps(0.25f),
                 c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        __m512 v[6];
        UNROLL for (int i = 0; i < 6; i++) v[i] = _mm512_maskz_loadu_ps(first_lanes((int)(width - i)), xr + i);
        float *dr = d + r * 96;
        _mm512_storeu_ps(dr, _mm512_fmadd_ps(c14, v[4], _mm512_fnmadd_ps(c54, v[2], v[0])));
        _mm512_storeu_ps(dr + 16, _mm512_fnmadd_ps(c16, _mm512_add_ps(v[3], v[4]), _mm512_mul_ps(c23, _mm512_add_ps(v[1], v[2]))));
        _mm512_storeu_ps(dr + 32, _mm512_fmadd_ps(c16, _mm512_sub_ps(v[3], v[4]), _mm512_mul_ps(c23, _mm512_sub_ps(v[2], v[1]))));
        _mm512_storeu_ps(dr + 48, _mm512_fmadd_ps(c13, _mm512_sub_ps(v[4], v[2]), _mm512_mul_ps(c23, _mm512_sub_ps(v[3], v[1]))));
        _mm512_storeu_ps(dr + 64, _mm512_fmadd_ps(c13, _mm512_sub_ps(v[4], v[2]), _mm512_mul_ps(c23, _mm512_sub_ps(v[1], v[3]))));
        _mm512_storeu_ps(dr + 80, _mm512_add_ps(_mm512_fnmadd_ps(c5, v[3], _mm512_mul_ps(c4, v[1])), v[5]));
    }
}

/* NP pairs of outputs x 16 channels: M[p][j] = sum_k d(base + off[k])[j*16 + 2p] u[k][j],
 * then y(2p) = M0 + M1 + M2 + M3 + M4, y(2p + 1) = M1 - M2 + 2 (M3 - M4) + M5;
 * nonzero when an output (before the bias) is NaN or infinite. */
#define DEFINE_WINO(NP)                                                                            \
    static int wino_##NP(int64_t K, const int64_t *off, const float *base, const float *u, float *y, \
                         int64_t ldy, int nvalid, const float *bias)                               \
    {                                                                                              \
        __m512 m[NP][6];                                                                           \
        UNROLL for (int p = 0; p < NP; p++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 6; j++) m[p][j] = _mm512_setzero_ps();                      \
        }                                                                                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const float *r = base + off[k];                                                        \
            UNROLL for (int j = 0; j < 6; j++)                                                     \
            {                                                                                      \
                const __m512 uj = _mm512_loadu_ps(u + (k * 6 + j) * 16);                            \
                UNROLL for (int p = 0; p < NP; p++) m[p][j] =                                      \
                    _mm512_fmadd_ps(_mm512_set1_ps(r[j * 16 + 2 * p]), uj, m[p][j]);               \
            }                                                                                      \
        }                                                                                          \
        __m512 px[2 * NP];                                                                         \
        const __m512 two = _mm512_set1_ps(2.0f);                                                   \
        UNROLL for (int p = 0; p < NP; p++)                                                        \
        {                                                                                          \
            px[2 * p] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(m[p][0], m[p][1]),               \
                                                    _mm512_add_ps(m[p][2], m[p][3])), m[p][4]);     \
            px[2 * p + 1] = _mm512_add_ps(_mm512_fmadd_ps(two, _mm512_sub_ps(m[p][3], m[p][4]),    \
                                                          _mm512_sub_ps(m[p][1], m[p][2])), m[p][5]); \
        }                                                                                          \
        /* the outputs' sum is NaN or infinite when an output is (or, harmlessly, when it overflows) */ \
        __m512 sum = px[0];                                                                        \
        UNROLL for (int i = 1; i < 2 * NP; i++) sum = _mm512_add_ps(sum, px[i]);                   \
        store16(px, 2 * NP, y, ldy, nvalid, bias, 0);                                              \
        sum = _mm512_sub_ps(sum, sum);                                                             \
        return _mm512_cmp_ps_mask(sum, sum, _CMP_UNORD_Q) != 0;                                    \
    }

DEFINE_WINO(1)
DEFINE_WINO(2)
DEFINE_WINO(3)
DEFINE_WINO(4)
DEFINE_WINO(5)

cnni_direct_wino_fn cnni_direct_wino_avx512(int np);
cnni_direct_wino_fn cnni_direct_wino_avx512(int np)
{
    static const cnni_direct_wino_fn t[] = {NULL, wino_1, wino_2, wino_3, wino_4, wino_5};
    return np >= 1 && np <= 5 ? t[np] : NULL;
}

/* ---- Winograd F(4,5) along the rows (see conv_direct.h) ----
 * The input rows' transform, rows along the lanes:
 *   d[(c*8nq + j*nq + q)*ld + r] = sum_i BT[j][i] x[(c*rows + r)*width + 4q + i]
 * for channels c, rows r < rows, quads q < nq (x past the row read as 0),
 * ld = rows rounded up to 16. Blocks of 16 rows are transposed in
 * registers so that each column is a vector, then BT's rows are taken
 * (f45_avx512.h). */
void cnni_direct_quad_input_avx512(const float *x, int64_t width, int64_t rows, int64_t channels, int nq, float *d);
void cnni_direct_quad_input_avx512(const float *x, int64_t width, int64_t rows, int64_t channels, int nq, float *d)
{
    const int64_t ld = (rows + 15) & ~(int64_t)15;
    const __mmask16 lo = first_lanes(width < 16 ? (int)width : 16), hi = first_lanes(width > 16 ? (int)width - 16 : 0);
    const int cols = 4 * nq + 4; /* the columns the quads read: 8 to 20 */
    for (int64_t c = 0; c < channels; c++)
        for (int64_t r0 = 0; r0 < rows; r0 += 16) {
            const int nr = rows - r0 < 16 ? (int)(rows - r0) : 16;
            const float *xb = x + (c * rows + r0) * width;
            __m512 in[16], col[32];
            UNROLL for (int i = 0; i < 16; i++) in[i] =
                i < nr ? _mm512_maskz_loadu_ps(lo, xb + i * width) : _mm512_setzero_ps();
            transpose16(in, col);
            if (cols > 16) {
                UNROLL for (int i = 0; i < 16; i++) in[i] =
                    i < nr ? _mm512_maskz_loadu_ps(hi, xb + i * width + 16) : _mm512_setzero_ps();
                transpose16(in, col + 16);
            }
            float *db = d + c * 8 * nq * ld + r0;
            for (int q = 0; q < nq; q++)
                f45_input(col + 4 * q, db + q * ld, nq * ld);
        }
}

/* NQ quads of outputs x 16 channels: M[q][j] = sum_k d(base + off[k])[(j*S + q)*ld] u[k][j] (S = nq),
 * then, with s_ab = M_a + M_b and t_ab = M_a - M_b,
 *   y(4q)     = M0 + s12 + s34 + s56,     y(4q + 1) = t12 + 2 t34 + t56 / 2,
 *   y(4q + 2) = s12 + 4 s34 + s56 / 4,    y(4q + 3) = t12 + 8 t34 + t56 / 8 + M7;
 * the first nout outputs stored; nonzero when one (before the bias) is NaN
 * or infinite. */
#define DEFINE_QUAD(NQ, S)                                                                         \
    static int quad_##NQ##_##S(int64_t K, const int64_t *off, const float *base, int64_t ld,       \
                               const float *u, float *y, int64_t ldy, int nout, int nvalid,        \
                               const float *bias)                                                  \
    {                                                                                              \
        __m512 m[NQ][8];                                                                           \
        UNROLL for (int q = 0; q < NQ; q++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 8; j++) m[q][j] = _mm512_setzero_ps();                      \
        }                                                                                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const float *r = base + off[k];                                                        \
            UNROLL for (int j = 0; j < 8; j++)                                                     \
            {                                                                                      \
                const __m512 uj = _mm512_loadu_ps(u + (k * 8 + j) * 16);                            \
                UNROLL for (int q = 0; q < NQ; q++) f45_fma_bcast(&m[q][j], uj, r + (j * S + q) * ld);  \
            }                                                                                      \
        }                                                                                          \
        __m512 px[16]; /* store16 reads up to nout of them */                                      \
        UNROLL for (int i = 4 * NQ; i < 16; i++) px[i] = _mm512_setzero_ps();                      \
        const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c8 = _mm512_set1_ps(8.0f); \
        const __m512 h2 = _mm512_set1_ps(0.5f), h4 = _mm512_set1_ps(0.25f), h8 = _mm512_set1_ps(0.125f); \
        UNROLL for (int q = 0; q < NQ; q++)                                                        \
        {                                                                                          \
            const __m512 s12 = _mm512_add_ps(m[q][1], m[q][2]), t12 = _mm512_sub_ps(m[q][1], m[q][2]); \
            const __m512 s34 = _mm512_add_ps(m[q][3], m[q][4]), t34 = _mm512_sub_ps(m[q][3], m[q][4]); \
            const __m512 s56 = _mm512_add_ps(m[q][5], m[q][6]), t56 = _mm512_sub_ps(m[q][5], m[q][6]); \
            px[4 * q] = _mm512_add_ps(_mm512_add_ps(m[q][0], s12), _mm512_add_ps(s34, s56));       \
            px[4 * q + 1] = _mm512_fmadd_ps(c2, t34, _mm512_fmadd_ps(h2, t56, t12));               \
            px[4 * q + 2] = _mm512_fmadd_ps(c4, s34, _mm512_fmadd_ps(h4, s56, s12));               \
            px[4 * q + 3] = _mm512_add_ps(_mm512_fmadd_ps(c8, t34, _mm512_fmadd_ps(h8, t56, t12)), m[q][7]); \
        }                                                                                          \
        /* the outputs' sum is NaN or infinite when an output is (or, harmlessly, when it overflows) */ \
        __m512 sum = px[0];                                                                        \
        UNROLL for (int i = 1; i < 4 * NQ; i++) sum = i < nout ? _mm512_add_ps(sum, px[i]) : sum;  \
        store16(px, nout, y, ldy, nvalid, bias, 0);                                                \
        sum = _mm512_sub_ps(sum, sum);                                                             \
        return _mm512_cmp_ps_mask(sum, sum, _CMP_UNORD_Q) != 0;                                    \
    }

DEFINE_QUAD(1, 1)
DEFINE_QUAD(2, 2)
DEFINE_QUAD(3, 3)
DEFINE_QUAD(2, 4)

/* F(4,5)'s weights of 16 output channels and one (channel, kernel row):
 * uk[j][o] = (float) the sum over t of G[j][t] v[t][o], in double, from
 * t = 0, each product rounded then added (the portable loop's bits). */
void cnni_direct_quad_weights_avx512(const double v[5][16], float *uk);
void cnni_direct_quad_weights_avx512(const double v[5][16], float *uk)
{
    for (int j = 0; j < 8; j++)
        for (int h = 0; h < 2; h++) {
            const double *G = cnni_f45_weight[j];
            __m512d s = _mm512_mul_pd(_mm512_set1_pd(G[0]), _mm512_loadu_pd(v[0] + 8 * h));
            for (int t = 1; t < 5; t++)
                s = _mm512_add_pd(s, _mm512_mul_pd(_mm512_set1_pd(G[t]), _mm512_loadu_pd(v[t] + 8 * h)));
            _mm256_storeu_ps(uk + j * 16 + 8 * h, _mm512_cvtpd_ps(s));
        }
}

/* The tile for rows of nq quads: all of them, or half of 4. */
cnni_direct_quad_fn cnni_direct_quad_avx512(int nq);
cnni_direct_quad_fn cnni_direct_quad_avx512(int nq)
{
    static const cnni_direct_quad_fn t[] = {NULL, quad_1_1, quad_2_2, quad_3_3, quad_2_4};
    return nq >= 1 && nq <= 4 ? t[nq] : NULL;
}

/* The Winograd weight gradient's dy transform: pairs of pixel-major rows
 * of 16 channels (d0, d1) -> a[i*96 + j*16 ..] = (d0, d0 + d1, d0 - d1,
 * d0 + 2 d1, d0 - 2 d1, d1), for pairs i < npairs. */
void cnni_direct_wino_dy_avx512(int64_t npairs, const float *dyt, float *a);
void cnni_direct_wino_dy_avx512(int64_t npairs, const float *dyt, float *a)
{
    for (int64_t i = 0; i < npairs; i++) {
        const __m512 d0 = _mm512_loadu_ps(dyt + 32 * i), d1 = _mm512_loadu_ps(dyt + 32 * i + 16);
        const __m512 d2 = _mm512_add_ps(d1, d1);
        float *ai = a + 96 * i;
        _mm512_storeu_ps(ai, d0);
        _mm512_storeu_ps(ai + 16, _mm512_add_ps(d0, d1));
        _mm512_storeu_ps(ai + 32, _mm512_sub_ps(d0, d1));
        _mm512_storeu_ps(ai + 48, _mm512_add_ps(d0, d2));
        _mm512_storeu_ps(ai + 64, _mm512_sub_ps(d0, d2));
        _mm512_storeu_ps(ai + 80, d1);
    }
}

/* MK kernel rows: acc[(i*6 + j)*16 + o] += sum over rows r < R and pairs
 * q < np of xt[rowoff[r] + koff[i] + j*16 + 2q] a[((r*np + q)*6 + j)*16 + o],
 * summed in float over the image, then added in double. */
#define DEFINE_WINO_W(MK)                                                                          \
    static void wino_w_##MK(int64_t R, const int64_t *rowoff, int64_t np, const float *xt,         \
                            const int64_t *koff, const float *a, double *acc)                      \
    {                                                                                              \
        __m512 m[MK][6];                                                                           \
        UNROLL for (int i = 0; i < MK; i++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 6; j++) m[i][j] = _mm512_setzero_ps();                      \
        }                                                                                          \
        for (int64_t r = 0; r < R; r++) {                                                          \
            const float *xr[MK];                                                                   \
            UNROLL for (int i = 0; i < MK; i++) xr[i] = xt + rowoff[r] + koff[i];                  \
            const float *ar = a + r * np * 96;                                                     \
            for (int64_t q = 0; q < np; q++) {                                                     \
                UNROLL for (int j = 0; j < 6; j++)                                                 \
                {                                                                                  \
                    const __m512 aj = _mm512_loadu_ps(ar + q * 96 + j * 16);                        \
                    UNROLL for (int i = 0; i < MK; i++) m[i][j] =                                  \
                        _mm512_fmadd_ps(_mm512_set1_ps(xr[i][j * 16 + 2 * q]), aj, m[i][j]);       \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int i = 0; i < MK; i++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 6; j++)                                                     \
            {                                                                                      \
                double *d = acc + (i * 6 + j) * 16;                                                \
                const __m256 lo = _mm512_castps512_ps256(m[i][j]);                                 \
                const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m[i][j]), 1)); \
                _mm512_storeu_pd(d, _mm512_add_pd(_mm512_loadu_pd(d), _mm512_cvtps_pd(lo)));       \
                _mm512_storeu_pd(d + 8, _mm512_add_pd(_mm512_loadu_pd(d + 8), _mm512_cvtps_pd(hi))); \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_WINO_W(1)
DEFINE_WINO_W(2)
DEFINE_WINO_W(3)
DEFINE_WINO_W(4)
DEFINE_WINO_W(5)

cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_avx512(int mk);
cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_avx512(int mk)
{
    static const cnni_direct_wino_wtile_fn t[] = {NULL, wino_w_1, wino_w_2, wino_w_3, wino_w_4, wino_w_5};
    return mk >= 1 && mk <= 5 ? t[mk] : NULL;
}

/* Weight-gradient tiles: MK taps x NV*16 channels in MK*NV accumulators. */
#define DEFINE_WTILE(NV, MK)                                                                       \
    static void wtile##NV##_##MK(int64_t P, const int64_t *pix, const float *x, const int64_t *toff, \
                                 const float *dyt, float *acc)                                     \
    {                                                                                              \
        __m512 a[MK][NV];                                                                          \
        const float *xt[MK];                                                                       \
        UNROLL for (int i = 0; i < MK; i++)                                                        \
        {                                                                                          \
            xt[i] = x + toff[i];                                                                   \
            UNROLL for (int v = 0; v < NV; v++) a[i][v] = _mm512_loadu_ps(acc + (i * NV + v) * 16); \
        }                                                                                          \
        for (int64_t z = 0; z < P; z++) {                                                          \
            const int64_t pz = pix[z];                                                             \
            __m512 d[NV];                                                                          \
            UNROLL for (int v = 0; v < NV; v++) d[v] = _mm512_loadu_ps(dyt + (z * NV + v) * 16);   \
            UNROLL for (int i = 0; i < MK; i++)                                                    \
            {                                                                                      \
                const __m512 b = _mm512_set1_ps(xt[i][pz]);                                        \
                UNROLL for (int v = 0; v < NV; v++) a[i][v] = _mm512_fmadd_ps(b, d[v], a[i][v]);   \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int i = 0; i < MK; i++)                                                        \
        {                                                                                          \
            UNROLL for (int v = 0; v < NV; v++) _mm512_storeu_ps(acc + (i * NV + v) * 16, a[i][v]); \
        }                                                                                          \
    }

#define DEFINE_WTILES(NV)                                                                          \
    DEFINE_WTILE(NV, 1) DEFINE_WTILE(NV, 2) DEFINE_WTILE(NV, 3) DEFINE_WTILE(NV, 4) DEFINE_WTILE(NV, 5) \
    DEFINE_WTILE(NV, 6) DEFINE_WTILE(NV, 7) DEFINE_WTILE(NV, 8) DEFINE_WTILE(NV, 9) DEFINE_WTILE(NV, 10) \
    DEFINE_WTILE(NV, 11) DEFINE_WTILE(NV, 12)

DEFINE_WTILES(1)
DEFINE_WTILES(2)

cnni_direct_wtile_fn cnni_direct_wtile_avx512(int nr, int mk);
cnni_direct_wtile_fn cnni_direct_wtile_avx512(int nr, int mk)
{
    static const cnni_direct_wtile_fn t16[] = {NULL,       wtile1_1,  wtile1_2, wtile1_3, wtile1_4,
                                               wtile1_5,   wtile1_6,  wtile1_7, wtile1_8, wtile1_9,
                                               wtile1_10,  wtile1_11, wtile1_12};
    static const cnni_direct_wtile_fn t32[] = {NULL,       wtile2_1,  wtile2_2, wtile2_3, wtile2_4,
                                               wtile2_5,   wtile2_6,  wtile2_7, wtile2_8, wtile2_9,
                                               wtile2_10,  wtile2_11, wtile2_12};
    if (mk < 1 || mk > 12)
        return NULL;
    return nr == 16 ? t16[mk] : nr == 32 ? t32[mk] : NULL;
}
