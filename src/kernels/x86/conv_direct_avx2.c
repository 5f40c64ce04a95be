/* AVX2 + FMA direct-convolution tiles (see conv_direct.h): MR <= 6 pixels x
 * 16 channels in 2*MR ymm accumulators (12 of the 16 registers); a block of
 * 32 channels runs as its two halves of 16 in turn. The weight-gradient
 * tiles hold up to 6 taps x 16 channels (3 x 32) and run larger tap blocks
 * as several passes over the pixels. No Winograd F(2,5) rows here: its
 * 6 points x 16 channels would leave no registers for a second pair. */
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

/* Stores the tile: acc[r][h] holds pixel r's channels 8h..8h+7 (r < mr <= 6);
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
