/* AVX-512 microkernels: an MR x 32 tile of C in 2*MR zmm registers, for
 * MR = 12, 8 and 4 (the driver picks the height that wastes fewest rows);
 * the tail columns use masked loads and stores. */
#include "../gemm.h"

#include <immintrin.h>

#include "transpose_avx512.h"

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

/* dst[k][r] = A[m0 + p + r][k0 + k] for each mr-row panel p: 16 columns of
 * up to 16 rows at a time are loaded as rows, transposed in registers and
 * stored as mr-float slices (rows past the panel's zero). The transposed
 * case and tails narrower than a vector go to the portable packer. */
void cnni_pack_a_avx512(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr,
                        float *dst)
{
    if (op->trans_a || mr > 16) {
        cnni_pack_a_plain(op, m0, mc, k0, kc, mr, dst);
        return;
    }
    const __mmask16 keep = (__mmask16)((1u << mr) - 1);
    for (int64_t p = 0; p < mc; p += mr) {
        const int rows = (int)(mc - p < mr ? mc - p : mr);
        float *dp = dst + p * kc;
        const float *src = op->a + (m0 + p) * op->lda + k0;
        int64_t k = 0;
        for (; k + 16 <= kc; k += 16) {
            __m512 r[16], o[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_loadu_ps(src + i * op->lda + k) : _mm512_setzero_ps();
            transpose16(r, o);
            for (int j = 0; j < 16; j++)
                _mm512_mask_storeu_ps(dp + (k + j) * mr, keep, o[j]);
        }
        if (k < kc) {
            cnni_gemm_op sub = *op;
            sub.a = op->a + k;
            cnni_pack_a_plain(&sub, m0 + p, rows, k0, kc - k, mr, dp + k * mr);
        }
    }
}
