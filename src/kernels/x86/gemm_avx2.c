/* AVX2 + FMA microkernels: an MR x 16 tile of C in 2*MR ymm registers, for
 * MR = 6 and 4 (the driver picks the height that wastes fewest rows). */
#include "../gemm.h"

#include <immintrin.h>

#define NR 16

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

#define DEFINE_MICRO(NAME, MR)                                                                     \
    void NAME(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,     \
              int accumulate, const float *bias)                                                   \
    {                                                                                              \
        __m256 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();           \
        for (int64_t k = 0; k < kc; k++) {                                                         \
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);                           \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                __m256 av = _mm256_broadcast_ss(a + r);                                            \
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);                                    \
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);                                    \
            }                                                                                      \
            a += MR;                                                                               \
            b += NR;                                                                               \
        }                                                                                          \
        for (int r = 0; r < m; r++) {                                                              \
            float *cr = c + r * ldc;                                                               \
            __m256 lo = acc[r][0], hi = acc[r][1];                                                 \
            if (bias) {                                                                            \
                __m256 bv = _mm256_set1_ps(bias[r]);                                               \
                lo = _mm256_add_ps(bv, lo);                                                        \
                hi = _mm256_add_ps(bv, hi);                                                        \
            }                                                                                      \
            if (n == NR) {                                                                         \
                if (accumulate) {                                                                  \
                    lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);                                   \
                    hi = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi);                               \
                }                                                                                  \
                _mm256_storeu_ps(cr, lo);                                                          \
                _mm256_storeu_ps(cr + 8, hi);                                                      \
            } else {                                                                               \
                float tmp[NR];                                                                     \
                _mm256_storeu_ps(tmp, lo);                                                         \
                _mm256_storeu_ps(tmp + 8, hi);                                                     \
                for (int j = 0; j < n; j++)                                                        \
                    cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_MICRO(cnni_micro_avx2, 6)
DEFINE_MICRO(cnni_micro_avx2_4, 4)
