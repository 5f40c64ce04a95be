/* AVX-512 direct-convolution tiles: MR pixels x 32 channels in 2*MR zmm
 * accumulators, for MR = 1..14. */
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

cnni_direct_tile_fn cnni_direct_tile_avx512(int mr);
cnni_direct_tile_fn cnni_direct_tile_avx512(int mr)
{
    static const cnni_direct_tile_fn t[] = {NULL,    tile_1,  tile_2,  tile_3,  tile_4,
                                            tile_5,  tile_6,  tile_7,  tile_8,  tile_9,
                                            tile_10, tile_11, tile_12, tile_13, tile_14};
    return mr >= 1 && mr <= 14 ? t[mr] : NULL;
}
