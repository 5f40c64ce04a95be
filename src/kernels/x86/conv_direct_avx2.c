/* AVX2 + FMA direct-convolution tiles (see conv_direct.h): MR <= 6 pixels x
 * 16 channels in 2*MR ymm accumulators (12 of the 16 registers); a block of
 * 32 channels runs as its two halves of 16 in turn. The weight-gradient
 * tiles hold up to 6 taps x 16 channels (3 x 32) and run larger tap blocks
 * as several passes over the pixels. The Winograd F(2,5) rows take their
 * 6 points one or two at a time (6 points x 16 channels would fill 12 of
 * the 16 registers for a single pair), their weight-gradient tiles one. */
#include "../conv_direct.h"

#include <immintrin.h>

#include "lanes_avx2.h"

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#define INLINE static inline __attribute__((always_inline))

#define MR_MAX 6

/* Stores the tile: acc[r][h] holds pixel r's channels 8h..8h+7 (r < mr <= 8);
 * y[j*ldy + r] = acc[r][j] (+ y when accumulate, + bias[j]) for j < nvalid
 * (<= 16): per half an 8x8 transpose, then the mr floats of each channel. */
INLINE void store16(__m256 acc[][2], int mr, float *y, int64_t ldy, int nvalid, const float *bias, int accumulate)
{
    const __m256i m = first8(mr);
    UNROLL for (int h = 0; h < 2; h++)
    {
        if (8 * h >= nvalid)
            break;
        const __m256 bv = bias ? _mm256_maskload_ps(bias + 8 * h, first8(nvalid - 8 * h)) : _mm256_setzero_ps();
        __m256 r[8];
        UNROLL for (int i = 0; i < 8; i++) r[i] = i < mr ? _mm256_add_ps(acc[i][h], bv) : _mm256_setzero_ps();
        transpose8(r);
        UNROLL for (int j = 0; j < 8; j++)
        {
            if (8 * h + j >= nvalid)
                break;
            float *yj = y + (8 * h + j) * ldy;
            store_first(yj, accumulate ? _mm256_add_ps(r[j], _mm256_maskload_ps(yj, m)) : r[j], mr);
        }
    }
}

/* acc(pixel r, channel j) = sum_k x[base + r*s + off[k]] * w[k*ldw + j] for
 * 16 channels, stored as store16. */
#define DEFINE_TILE(MR)                                                                            \
    static void half_##MR(int64_t K, const int64_t *off, const float *base, int64_t s, const float *w, \
                          int64_t ldw, float *y, int64_t ldy, int nvalid, const float *bias,       \
                          int accumulate)                                                          \
    {                                                                                              \
        __m256 acc[MR_MAX][2];                                                                     \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m256 w0 = _mm256_loadu_ps(w + k * ldw), w1 = _mm256_loadu_ps(w + k * ldw + 8);  \
            const float *xk = base + off[k];                                                       \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                const __m256 av = _mm256_broadcast_ss(xk + r * s);                                 \
                acc[r][0] = _mm256_fmadd_ps(av, w0, acc[r][0]);                                    \
                acc[r][1] = _mm256_fmadd_ps(av, w1, acc[r][1]);                                    \
            }                                                                                      \
        }                                                                                          \
        store16(acc, MR, y, ldy, nvalid, bias, accumulate);                                        \
    }                                                                                              \
    static void tile16_##MR(int64_t K, const int64_t *off, const float *base, int64_t s, const float *w, \
                            float *y, int64_t ldy, int nvalid, const float *bias, int accumulate)  \
    {                                                                                              \
        half_##MR(K, off, base, s, w, 16, y, ldy, nvalid, bias, accumulate);                       \
    }                                                                                              \
    static void tile32_##MR(int64_t K, const int64_t *off, const float *base, int64_t s, const float *w, \
                            float *y, int64_t ldy, int nvalid, const float *bias, int accumulate)  \
    {                                                                                              \
        half_##MR(K, off, base, s, w, 32, y, ldy, nvalid < 16 ? nvalid : 16, bias, accumulate);    \
        if (nvalid > 16)                                                                           \
            half_##MR(K, off, base, s, w + 16, 32, y + 16 * ldy, ldy, nvalid - 16,                 \
                      bias ? bias + 16 : NULL, accumulate);                                        \
    }

DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)

int cnni_direct_max_mr_avx2(void);
int cnni_direct_max_mr_avx2(void) { return MR_MAX; }

cnni_direct_tile_fn cnni_direct_tile_avx2(int nr, int mr);
cnni_direct_tile_fn cnni_direct_tile_avx2(int nr, int mr)
{
    static const cnni_direct_tile_fn t16[] = {NULL, tile16_1, tile16_2, tile16_3, tile16_4, tile16_5, tile16_6};
    static const cnni_direct_tile_fn t32[] = {NULL, tile32_1, tile32_2, tile32_3, tile32_4, tile32_5, tile32_6};
    if (mr < 1 || mr > MR_MAX)
        return NULL;
    return nr == 16 ? t16[mr] : nr == 32 ? t32[mr] : NULL;
}

/* dst[z*nr + c] = src[c*ld + z] for c < nvalid, 0 for c in [nvalid, nr),
 * z < P; sum[c] = the sum over z of dst[z*nr + c]. */
void cnni_direct_transpose_avx2(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst, float *sum);
void cnni_direct_transpose_avx2(int nr, int64_t P, const float *src, int64_t ld, int nvalid, float *dst, float *sum)
{
    for (int h = 0; h < nr / 8; h++) {
        const int nv = nvalid - 8 * h < 8 ? nvalid - 8 * h : 8;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t z0 = 0; z0 < P; z0 += 8) {
            const int zn = P - z0 < 8 ? (int)(P - z0) : 8;
            const __m256i m = first8(zn);
            __m256 r[8];
            UNROLL for (int i = 0; i < 8; i++) r[i] =
                i < nv ? _mm256_maskload_ps(src + (8 * h + i) * ld + z0, m) : _mm256_setzero_ps();
            transpose8(r);
            UNROLL for (int l = 0; l < 8; l++)
            {
                acc = _mm256_add_ps(acc, r[l]);
                if (l < zn)
                    _mm256_storeu_ps(dst + (z0 + l) * nr + 8 * h, r[l]);
            }
        }
        _mm256_storeu_ps(sum + 8 * h, acc);
    }
}

/* Weight-gradient tiles: acc[(i*NV + v)*16 + j] += sum_z x[toff[i] + pix[z]] *
 * dyt[(z*NV + v)*16 + j] for MK taps, NV 16-channel vectors. */
#define DEFINE_WPASS(NV, MK)                                                                       \
    static void wpass##NV##_##MK(int64_t P, const int64_t *pix, const float *x, const int64_t *toff, \
                                 const float *dyt, float *acc)                                     \
    {                                                                                              \
        __m256 a[MK][2 * NV];                                                                      \
        const float *xt[MK];                                                                       \
        UNROLL for (int i = 0; i < MK; i++)                                                        \
        {                                                                                          \
            xt[i] = x + toff[i];                                                                   \
            UNROLL for (int v = 0; v < 2 * NV; v++) a[i][v] = _mm256_loadu_ps(acc + (i * 2 * NV + v) * 8); \
        }                                                                                          \
        for (int64_t z = 0; z < P; z++) {                                                          \
            const int64_t pz = pix[z];                                                             \
            __m256 d[2 * NV];                                                                      \
            UNROLL for (int v = 0; v < 2 * NV; v++) d[v] = _mm256_loadu_ps(dyt + (z * 2 * NV + v) * 8); \
            UNROLL for (int i = 0; i < MK; i++)                                                    \
            {                                                                                      \
                const __m256 b = _mm256_broadcast_ss(xt[i] + pz);                                  \
                UNROLL for (int v = 0; v < 2 * NV; v++) a[i][v] = _mm256_fmadd_ps(b, d[v], a[i][v]); \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int i = 0; i < MK; i++)                                                        \
        {                                                                                          \
            UNROLL for (int v = 0; v < 2 * NV; v++) _mm256_storeu_ps(acc + (i * 2 * NV + v) * 8, a[i][v]); \
        }                                                                                          \
    }

DEFINE_WPASS(1, 1)
DEFINE_WPASS(1, 2)
DEFINE_WPASS(1, 3)
DEFINE_WPASS(1, 4)
DEFINE_WPASS(1, 5)
DEFINE_WPASS(1, 6)
DEFINE_WPASS(2, 1)
DEFINE_WPASS(2, 2)
DEFINE_WPASS(2, 3)

typedef void (*wpass_fn)(int64_t P, const int64_t *pix, const float *x, const int64_t *toff, const float *dyt,
                         float *acc);

/* MK taps as passes of up to `most` taps each (the sums of a tap are the
 * same whichever pass holds it). */
INLINE void wtile(const wpass_fn *fns, int most, int nr, int mk, int64_t P, const int64_t *pix, const float *x,
                  const int64_t *toff, const float *dyt, float *acc)
{
    for (int i0 = 0; i0 < mk; i0 += most) {
        const int n = mk - i0 < most ? mk - i0 : most;
        fns[n - 1](P, pix, x, toff + i0, dyt, acc + i0 * nr);
    }
}

static const wpass_fn passes16[6] = {wpass1_1, wpass1_2, wpass1_3, wpass1_4, wpass1_5, wpass1_6};
static const wpass_fn passes32[3] = {wpass2_1, wpass2_2, wpass2_3};

#define DEFINE_WTILES(MK)                                                                          \
    static void wtile16_##MK(int64_t P, const int64_t *pix, const float *x, const int64_t *toff,   \
                             const float *dyt, float *acc)                                         \
    {                                                                                              \
        wtile(passes16, 6, 16, MK, P, pix, x, toff, dyt, acc);                                     \
    }                                                                                              \
    static void wtile32_##MK(int64_t P, const int64_t *pix, const float *x, const int64_t *toff,   \
                             const float *dyt, float *acc)                                         \
    {                                                                                              \
        wtile(passes32, 3, 32, MK, P, pix, x, toff, dyt, acc);                                     \
    }
DEFINE_WTILES(1)
DEFINE_WTILES(2)
DEFINE_WTILES(3)
DEFINE_WTILES(4)
DEFINE_WTILES(5)
DEFINE_WTILES(6)
DEFINE_WTILES(7)
DEFINE_WTILES(8)
DEFINE_WTILES(9)
DEFINE_WTILES(10)
DEFINE_WTILES(11)
DEFINE_WTILES(12)

cnni_direct_wtile_fn cnni_direct_wtile_avx2(int nr, int mk);
cnni_direct_wtile_fn cnni_direct_wtile_avx2(int nr, int mk)
{
    static const cnni_direct_wtile_fn t16[] = {NULL,       wtile16_1,  wtile16_2, wtile16_3, wtile16_4,
                                               wtile16_5,  wtile16_6,  wtile16_7, wtile16_8, wtile16_9,
                                               wtile16_10, wtile16_11, wtile16_12};
    static const cnni_direct_wtile_fn t32[] = {NULL,       wtile32_1,  wtile32_2, wtile32_3, wtile32_4,
                                               wtile32_5,  wtile32_6,  wtile32_7, wtile32_8, wtile32_9,
                                               wtile32_10, wtile32_11, wtile32_12};
    if (mk < 1 || mk > 12)
        return NULL;
    return nr == 16 ? t16[mk] : nr == 32 ? t32[mk] : NULL;
}

/* ---- Winograd F(2,5) along the rows (see conv_direct.h): the AVX-512
 * file's layouts, float for float, computed per half of 8 lanes ----
 * The input rows' transform: d[r*96 + j*16 + l] = sum_i BT[j][i] x[r*width + l + i]
 * for lanes l < 16 (x past the row read as 0; pair p reads lane 2p), rows
 * r < rows, with BT's rows 3 and 4 scaled by 8 (the weights' by 1/8).
 * Masked loads where a vector reaches past the row; plain ones for the
 * first half when the row holds it (width >= 13): LeNet's conv2 forward 3%
 * faster. */
INLINE void wino_input_rows(const float *x, int64_t width, int64_t rows, float *d, int first_inside)
{
    const __m256 c23 = _mm256_set1_ps(2.0f / 3.0f), c16 = _mm256_set1_ps(1.0f / 6.0f),
                 c13 = _mm256_set1_ps(1.0f / 3.0f), c54 = _mm256_set1_ps(1.25f), c14 = _mm256_set1_ps(0.25f),
                 c4 = _mm256_set1_ps(4.0f), c5 = _mm256_set1_ps(5.0f);
    __m256i inside[2][6]; /* the lanes of x[8h + l + i] within the row */
    UNROLL for (int h = 0; h < 2; h++)
    {
        UNROLL for (int i = 0; i < 6; i++) inside[h][i] = first8(width - 8 * h - i);
    }
    for (int64_t r = 0; r < rows; r++) {
        UNROLL for (int h = 0; h < 2; h++)
        {
            const float *xr = x + r * width + 8 * h;
            __m256 v[6];
            UNROLL for (int i = 0; i < 6; i++) v[i] =
                h == 0 && first_inside ? _mm256_loadu_ps(xr + i) : _mm256_maskload_ps(xr + i, inside[h][i]);
            float *dr = d + r * 96 + 8 * h;
            _mm256_storeu_ps(dr, _mm256_fmadd_ps(c14, v[4], _mm256_fnmadd_ps(c54, v[2], v[0])));
            _mm256_storeu_ps(dr + 16, _mm256_fnmadd_ps(c16, _mm256_add_ps(v[3], v[4]),
                                                        _mm256_mul_ps(c23, _mm256_add_ps(v[1], v[2]))));
            _mm256_storeu_ps(dr + 32, _mm256_fmadd_ps(c16, _mm256_sub_ps(v[3], v[4]),
                                                      _mm256_mul_ps(c23, _mm256_sub_ps(v[2], v[1]))));
            _mm256_storeu_ps(dr + 48, _mm256_fmadd_ps(c13, _mm256_sub_ps(v[4], v[2]),
                                                      _mm256_mul_ps(c23, _mm256_sub_ps(v[3], v[1]))));
            _mm256_storeu_ps(dr + 64, _mm256_fmadd_ps(c13, _mm256_sub_ps(v[4], v[2]),
                                                      _mm256_mul_ps(c23, _mm256_sub_ps(v[1], v[3]))));
            _mm256_storeu_ps(dr + 80, _mm256_add_ps(_mm256_fnmadd_ps(c5, v[3], _mm256_mul_ps(c4, v[1])), v[5]));
        }
    }
}

void cnni_direct_wino_input_avx2(const float *x, int64_t width, int64_t rows, float *d);
void cnni_direct_wino_input_avx2(const float *x, int64_t width, int64_t rows, float *d)
{
    if (width >= 13)
        wino_input_rows(x, width, rows, d, 1);
    else
        wino_input_rows(x, width, rows, d, 0);
}

#define WINO_NP_MAX 5

/* Points j0 .. j0 + nj - 1 (nj <= 2) of np pairs x 16 channels:
 * m[jj][p][h] = sum_k d(base + off[k])[(j0 + jj)*16 + 2p] u[k][j0 + jj][8h ..].
 * A point or two at a time keep 2 nj np <= 12 accumulators, the weight
 * vectors and a broadcast in registers: at 5 pairs one point, 7 loads per
 * 10 FMAs, where all 6 points of a pair would take 18 loads per 12 (LeNet's
 * conv2 forward, one thread: 214 us a batch, 310 us by pairs, 290 us with
 * the direct tiles). 3 pairs take 2 points, so that at least 8 sums (the
 * FMA latency times its throughput) are in flight: 303 us vs 348 us on
 * 12 x 12 outputs. */
INLINE void wino_points(int np, int j0, int nj, int64_t K, const int64_t *off, const float *base, const float *u,
                        __m256 m[][WINO_NP_MAX][2])
{
    UNROLL for (int jj = 0; jj < 2; jj++)
    {
        UNROLL for (int p = 0; p < WINO_NP_MAX; p++)
        {
            if (jj < nj && p < np)
                m[jj][p][0] = m[jj][p][1] = _mm256_setzero_ps();
        }
    }
    for (int64_t k = 0; k < K; k++) {
        const float *r = base + off[k] + j0 * 16, *uk = u + (k * 6 + j0) * 16;
        UNROLL for (int jj = 0; jj < 2; jj++)
        {
            if (jj < nj) {
                const __m256 u0 = _mm256_loadu_ps(uk + jj * 16), u1 = _mm256_loadu_ps(uk + jj * 16 + 8);
                UNROLL for (int p = 0; p < WINO_NP_MAX; p++)
                {
                    if (p < np) {
                        const __m256 b = _mm256_broadcast_ss(r + jj * 16 + 2 * p);
                        m[jj][p][0] = _mm256_fmadd_ps(b, u0, m[jj][p][0]);
                        m[jj][p][1] = _mm256_fmadd_ps(b, u1, m[jj][p][1]);
                    }
                }
            }
        }
    }
}

/* Adds point j's sums to the outputs px[2p] = y(2p) = M0 + M1 + M2 + M3 + M4
 * and px[2p + 1] = y(2p + 1) = M1 - M2 + 2 (M3 - M4) + M5. */
INLINE void wino_fold(int np, int j, __m256 m[][2], __m256 px[][2])
{
    const __m256 two = _mm256_set1_ps(2.0f);
    UNROLL for (int p = 0; p < WINO_NP_MAX; p++)
    {
        UNROLL for (int h = 0; h < 2; h++)
        {
            if (p < np) {
                __m256 *e = &px[2 * p][h], *o = &px[2 * p + 1][h];
                const __m256 v = m[p][h];
                if (j == 0)
                    *e = v;
                else if (j < 5)
                    *e = _mm256_add_ps(*e, v);
                if (j == 1)
                    *o = v;
                else if (j == 2)
                    *o = _mm256_sub_ps(*o, v);
                else if (j == 3)
                    *o = _mm256_fmadd_ps(two, v, *o);
                else if (j == 4)
                    *o = _mm256_fnmadd_ps(two, v, *o);
                else if (j == 5)
                    *o = _mm256_add_ps(*o, v);
            }
        }
    }
}

/* The points from j0 when a group of nj starts there, then their folds. */
INLINE void wino_step(int np, int nj, int j0, int64_t K, const int64_t *off, const float *base, const float *u,
                      __m256 px[][2])
{
    if (j0 % nj)
        return;
    __m256 m[2][WINO_NP_MAX][2];
    wino_points(np, j0, nj, K, off, base, u, m);
    UNROLL for (int jj = 0; jj < 2; jj++)
    {
        if (jj < nj)
            wino_fold(np, j0 + jj, m[jj], px);
    }
}

/* NP pairs of outputs x 16 channels, as cnni_direct_wino_fn, NJ points at a
 * time; the tile stored as 8 pixels and the rest; nonzero when an output
 * (before the bias) is NaN or infinite. Rows of at least 8
 * outputs only (see wino() in conv_direct.c), so tiles of 3 to 5 pairs. */
#define DEFINE_WINO(NP, NJ)                                                                        \
    static int wino_##NP(int64_t K, const int64_t *off, const float *base, const float *u, float *y, \
                         int64_t ldy, int nvalid, const float *bias)                               \
    {                                                                                              \
        __m256 px[2 * NP][2];                                                                      \
        wino_step(NP, NJ, 0, K, off, base, u, px);                                                 \
        wino_step(NP, NJ, 1, K, off, base, u, px);                                                 \
        wino_step(NP, NJ, 2, K, off, base, u, px);                                                 \
        wino_step(NP, NJ, 3, K, off, base, u, px);                                                 \
        wino_step(NP, NJ, 4, K, off, base, u, px);                                                 \
        wino_step(NP, NJ, 5, K, off, base, u, px);                                                 \
        /* the outputs' sum is NaN or infinite when an output is (or, harmlessly, when it overflows) */ \
        __m256 sum = _mm256_add_ps(px[0][0], px[0][1]);                                            \
        UNROLL for (int i = 1; i < 2 * NP; i++) sum = _mm256_add_ps(sum, _mm256_add_ps(px[i][0], px[i][1])); \
        store16(px, 2 * NP < 8 ? 2 * NP : 8, y, ldy, nvalid, bias, 0);                             \
        if (2 * NP > 8)                                                                            \
            store16(px + 8, 2 * NP - 8, y + 8, ldy, nvalid, bias, 0);                              \
        sum = _mm256_sub_ps(sum, sum);                                                             \
        return _mm256_movemask_ps(_mm256_cmp_ps(sum, sum, _CMP_UNORD_Q)) != 0;                     \
    }

DEFINE_WINO(3, 2)
DEFINE_WINO(4, 1)
DEFINE_WINO(5, 1)

cnni_direct_wino_fn cnni_direct_wino_avx2(int np);
cnni_direct_wino_fn cnni_direct_wino_avx2(int np)
{
    static const cnni_direct_wino_fn t[] = {NULL, NULL, NULL, wino_3, wino_4, wino_5};
    return np >= 1 && np <= WINO_NP_MAX ? t[np] : NULL;
}

/* The Winograd weight gradient's dy transform: pairs of pixel-major rows
 * of 16 channels (d0, d1) -> a[i*96 + j*16 ..] = (d0, d0 + d1, d0 - d1,
 * d0 + 2 d1, d0 - 2 d1, d1), for pairs i < npairs. */
void cnni_direct_wino_dy_avx2(int64_t npairs, const float *dyt, float *a);
void cnni_direct_wino_dy_avx2(int64_t npairs, const float *dyt, float *a)
{
    for (int64_t i = 0; i < npairs; i++) {
        UNROLL for (int h = 0; h < 2; h++)
        {
            const __m256 d0 = _mm256_loadu_ps(dyt + 32 * i + 8 * h), d1 = _mm256_loadu_ps(dyt + 32 * i + 16 + 8 * h);
            const __m256 d2 = _mm256_add_ps(d1, d1);
            float *ai = a + 96 * i + 8 * h;
            _mm256_storeu_ps(ai, d0);
            _mm256_storeu_ps(ai + 16, _mm256_add_ps(d0, d1));
            _mm256_storeu_ps(ai + 32, _mm256_sub_ps(d0, d1));
            _mm256_storeu_ps(ai + 48, _mm256_add_ps(d0, d2));
            _mm256_storeu_ps(ai + 64, _mm256_sub_ps(d0, d2));
            _mm256_storeu_ps(ai + 80, d1);
        }
    }
}

/* MK kernel rows: acc[(i*6 + j)*16 + o] += sum over rows r < R and pairs
 * q < np of xt[rowoff[r] + koff[i] + j*16 + 2q] a[((r*np + q)*6 + j)*16 + o],
 * one point j at a time (MK x 2 accumulators), summed in float over the
 * image in the AVX-512 kernel's order, then added in double. */
INLINE void wino_w(int mk, int64_t R, const int64_t *rowoff, int64_t np, const float *xt, const int64_t *koff,
                   const float *a, double *acc)
{
    for (int j = 0; j < 6; j++) {
        __m256 m[5][2];
        UNROLL for (int i = 0; i < 5; i++)
        {
            if (i < mk)
                m[i][0] = m[i][1] = _mm256_setzero_ps();
        }
        for (int64_t r = 0; r < R; r++) {
            const float *xr[5];
            UNROLL for (int i = 0; i < 5; i++) xr[i] = i < mk ? xt + rowoff[r] + koff[i] + j * 16 : xt;
            const float *ar = a + r * np * 96 + j * 16;
            for (int64_t q = 0; q < np; q++) {
                const __m256 a0 = _mm256_loadu_ps(ar + q * 96), a1 = _mm256_loadu_ps(ar + q * 96 + 8);
                UNROLL for (int i = 0; i < 5; i++)
                {
                    if (i < mk) {
                        const __m256 b = _mm256_broadcast_ss(xr[i] + 2 * q);
                        m[i][0] = _mm256_fmadd_ps(b, a0, m[i][0]);
                        m[i][1] = _mm256_fmadd_ps(b, a1, m[i][1]);
                    }
                }
            }
        }
        UNROLL for (int i = 0; i < 5; i++)
        {
            UNROLL for (int h = 0; h < 2; h++)
            {
                if (i < mk) {
                    double *dd = acc + (i * 6 + j) * 16 + 8 * h;
                    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(m[i][h]));
                    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(m[i][h], 1));
                    _mm256_storeu_pd(dd, _mm256_add_pd(_mm256_loadu_pd(dd), lo));
                    _mm256_storeu_pd(dd + 4, _mm256_add_pd(_mm256_loadu_pd(dd + 4), hi));
                }
            }
        }
    }
}

#define DEFINE_WINO_W(MK)                                                                          \
    static void wino_w_##MK(int64_t R, const int64_t *rowoff, int64_t np, const float *xt,         \
                            const int64_t *koff, const float *a, double *acc)                      \
    {                                                                                              \
        wino_w(MK, R, rowoff, np, xt, koff, a, acc);                                               \
    }

DEFINE_WINO_W(1)
DEFINE_WINO_W(2)
DEFINE_WINO_W(3)
DEFINE_WINO_W(4)
DEFINE_WINO_W(5)

cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_avx2(int mk);
cnni_direct_wino_wtile_fn cnni_direct_wino_wtile_avx2(int mk)
{
    static const cnni_direct_wino_wtile_fn t[] = {NULL, wino_w_1, wino_w_2, wino_w_3, wino_w_4, wino_w_5};
    return mk >= 1 && mk <= 5 ? t[mk] : NULL;
}
