/* AVX-512 microkernels: an MR x 32 tile of C in 2*MR zmm registers, for
 * MR = 12, 8 and 4 (the driver picks the height that wastes fewest rows);
 * the tail columns use masked loads and stores. */
#include "../gemm.h"

#include <immintrin.h>

#define NR 32

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

#define DEFINE_MICRO(NAME, MR)                                                                     \
    void NAME(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,     \
              int accumulate, const float *bias)                                                   \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();           \
        for (int64_t k = 0; k < kc; k++) {                                                         \
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);                          \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                __m512 av = _mm512_set1_ps(a[r]);                                                  \
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                    \
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                    \
            }                                                                                      \
            a += MR;                                                                               \
            b += NR;                                                                               \
        }                                                                                          \
        __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);                   \
        __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0; \
        for (int r = 0; r < m; r++) {                                                              \
            float *cr = c + r * ldc;                                                               \
            __m512 lo = acc[r][0], hi = acc[r][1];                                                 \
            if (bias) {                                                                            \
                __m512 bv = _mm512_set1_ps(bias[r]);                                               \
                lo = _mm512_add_ps(bv, lo);                                                        \
                hi = _mm512_add_ps(bv, hi);                                                        \
            }                                                                                      \
            if (accumulate) {                                                                      \
                lo = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), lo);                             \
                hi = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), hi);                        \
            }                                                                                      \
            _mm512_mask_storeu_ps(cr, m0, lo);                                                     \
            _mm512_mask_storeu_ps(cr + 16, m1, hi);                                                \
        }                                                                                          \
    }

DEFINE_MICRO(cnni_micro_avx512, 12)
DEFINE_MICRO(cnni_micro_avx512_8, 8)
DEFINE_MICRO(cnni_micro_avx512_4, 4)
