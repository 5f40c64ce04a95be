/* AVX2 + FMA microkernel: a 6 x 16 tile of C in 12 ymm registers. */
#include "../gemm.h"

#include <immintrin.h>
#include <string.h>

#define MR 6
#define NR 16

void cnni_micro_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                     int accumulate, const float *bias)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
        a += MR;
        b += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < m; r++) {
        float *cr = c + r * ldc;
        __m256 lo = acc[r][0], hi = acc[r][1];
        if (bias) {
            __m256 bv = _mm256_set1_ps(bias[r]);
            lo = _mm256_add_ps(bv, lo);
            hi = _mm256_add_ps(bv, hi);
        }
        if (n == NR) {
            if (accumulate) {
                lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);
                hi = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi);
            }
            _mm256_storeu_ps(cr, lo);
            _mm256_storeu_ps(cr + 8, hi);
        } else {
            float tmp[NR];
            _mm256_storeu_ps(tmp, lo);
            _mm256_storeu_ps(tmp + 8, hi);
            for (int j = 0; j < n; j++)
                cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];
        }
    }
}
