/* AVX-512 direct-convolution tiles: MR pixels x 32 channels in 2*MR zmm
 * accumulators, or MR pixels x 16 channels in MR, for MR = 1..14. */
#include "../conv_direct.h"

#include <immintrin.h>

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

#define DEFINE_TILE(MR)                                                                            \
    static void tile_##MR(int64_t K, const int64_t *off, const float *base, int64_t s,             \
                          const float *w, float *y, int64_t ldy, int nvalid, const float *bias,    \
                          int accumulate)                                                          \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m512 w0 = _mm512_loadu_ps(w + k * 32), w1 = _mm512_loadu_ps(w + k * 32 + 16);   \
            const float *xk = base + off[k];                                                       \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                __m512 av = _mm512_set1_ps(xk[r * s]);                                             \
                acc[r][0] = _mm512_fmadd_ps(av, w0, acc[r][0]);                                    \
                acc[r][1] = _mm512_fmadd_ps(av, w1, acc[r][1]);                                    \
            }                                                                                      \
        }                                                                                          \
        float tmp[MR][32];                                                                         \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            _mm512_storeu_ps(tmp[r], acc[r][0]);                                                   \
            _mm512_storeu_ps(tmp[r] + 16, acc[r][1]);                                              \
        }                                                                                          \
        for (int j = 0; j < nvalid; j++) {                                                         \
            float *yj = y + j * ldy;                                                               \
            float bj = bias ? bias[j] : 0.0f;                                                      \
            if (accumulate)                                                                        \
                for (int r = 0; r < MR; r++)                                                       \
                    yj[r] += tmp[r][j] + bj;                                                       \
            else                                                                                   \
                for (int r = 0; r < MR; r++)                                                       \
                    yj[r] = tmp[r][j] + bj;                                                        \
        }                                                                                          \
    }

/* The same for blocks of 16 channels: one accumulator per pixel. */
#define DEFINE_TILE16(MR)                                                                          \
    static void tile16_##MR(int64_t K, const int64_t *off, const float *base, int64_t s,           \
                            const float *w, float *y, int64_t ldy, int nvalid, const float *bias,  \
                            int accumulate)                                                        \
    {                                                                                              \
        __m512 acc[MR];                                                                            \
        UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m512 w0 = _mm512_loadu_ps(w + k * 16);                                         \
            const float *xk = base + off[k];                                                       \
            UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(xk[r * s]), w0, acc[r]); \
        }                                                                                          \
        float tmp[MR][16];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) _mm512_storeu_ps(tmp[r], acc[r]);                      \
        for (int j = 0; j < nvalid; j++) {                                                         \
            float *yj = y + j * ldy;                                                               \
            float bj = bias ? bias[j] : 0.0f;                                                      \
            if (accumulate)                                                                        \
                for (int r = 0; r < MR; r++)                                                       \
                    yj[r] += tmp[r][j] + bj;                                                       \
            else                                                                                   \
                for (int r = 0; r < MR; r++)                                                       \
                    yj[r] = tmp[r][j] + bj;                                                        \
        }                                                                                          \
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
