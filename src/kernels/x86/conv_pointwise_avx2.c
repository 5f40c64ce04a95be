/* AVX2 + FMA pointwise tiles (see conv_pointwise.h): MR output channels x
 * 16 pixels in 2*MR ymm accumulators, MR = 6 (12 of the 16 registers) or
 * 4 for a block's last rows; per input channel two loads of the stripe and
 * MR broadcasts of the weights. */
#include "../conv_pointwise.h"

#include <immintrin.h>

#include "lanes_avx2.h"

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

#define DEFINE_PW_TILE(MR)                                                                         \
    static void pw_tile_##MR(int64_t K, const float *w, const float *x, float *y, int64_t ldy, int m, \
                             int n, const float *bias)                                             \
    {                                                                                              \
        __m256 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m256 x0 = _mm256_load_ps(x + k * CNNI_PW_NR), x1 = _mm256_load_ps(x + k * CNNI_PW_NR + 8); \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                const __m256 wv = _mm256_broadcast_ss(w + k * CNNI_PW_MR + r);                     \
                acc[r][0] = _mm256_fmadd_ps(wv, x0, acc[r][0]);                                    \
                acc[r][1] = _mm256_fmadd_ps(wv, x1, acc[r][1]);                                    \
            }                                                                                      \
        }                                                                                          \
        /* no early exit: clang cannot unroll a loop with one */                                   \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            if (r >= m)                                                                            \
                continue;                                                                          \
            __m256 lo = acc[r][0], hi = acc[r][1];                                                 \
            if (bias) {                                                                            \
                const __m256 bv = _mm256_set1_ps(bias[r]);                                         \
                lo = _mm256_add_ps(lo, bv);                                                        \
                hi = _mm256_add_ps(hi, bv);                                                        \
            }                                                                                      \
            float *yr = y + r * ldy;                                                               \
            if (n >= CNNI_PW_NR) {                                                                 \
                _mm256_storeu_ps(yr, lo);                                                          \
                _mm256_storeu_ps(yr + 8, hi);                                                      \
            } else {                                                                               \
                store_first(yr, lo, n);                                                            \
                if (n > 8)                                                                         \
                    store_first(yr + 8, hi, n - 8);                                                \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_PW_TILE(6)
DEFINE_PW_TILE(4)

cnni_pw_tile_fn cnni_pw_tile_avx2(int m);
cnni_pw_tile_fn cnni_pw_tile_avx2(int m) { return m <= 4 ? pw_tile_4 : pw_tile_6; }
