/* AVX2 + FMA microkernels: an MR x 16 tile of C in 2*MR ymm registers, for
 * MR = 6 and 4 (the driver picks the height that wastes fewest rows). */
#include "../gemm.h"
#include "../linear_fast.h"

#include <immintrin.h>

#include "lanes_avx2.h"

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
        /* unrolled, so that acc is indexed by constants and stays in      \
         * registers (a run-time index made gcc store it every k); with    \
         * no early exit or inner loop, which clang -O1 cannot unroll */   \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            if (r < m) {                                                                           \
                float *cr = c + r * ldc;                                                           \
                __m256 lo = acc[r][0], hi = acc[r][1];                                             \
                if (bias) {                                                                        \
                    __m256 bv = _mm256_set1_ps(bias[r]);                                           \
                    lo = _mm256_add_ps(bv, lo);                                                    \
                    hi = _mm256_add_ps(bv, hi);                                                    \
                }                                                                                  \
                if (accumulate) {                                                                  \
                    lo = _mm256_add_ps(n >= 8 ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, first8(n)), lo); \
                    hi = _mm256_add_ps(n >= NR ? _mm256_loadu_ps(cr + 8)                           \
                                               : _mm256_maskload_ps(cr + 8, first8(n - 8)),        \
                                       hi);                                                        \
                }                                                                                  \
                store_first(cr, lo, n);                                                            \
                if (n > 8)                                                                         \
                    store_first(cr + 8, hi, n - 8);                                                \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_MICRO(cnni_micro_avx2, 6)
DEFINE_MICRO(cnni_micro_avx2_4, 4)

/* dst[k][r] = A[m0 + p + r][k0 + k] for each mr-row panel p (mr <= 8): 8
 * columns of the panel's rows at a time, transposed in registers; each
 * column's mr floats stored as 8 (the 8 - mr past them are overwritten by
 * the next column's store), the panel's last column through a mask. The
 * transposed case and the tail columns go to the portable packer. */
void cnni_pack_a_avx2(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr, float *dst)
{
    if (op->trans_a || mr > 8) {
        cnni_pack_a_plain(op, m0, mc, k0, kc, mr, dst);
        return;
    }
    const __m256i keep = first8(mr);
    for (int64_t p = 0; p < mc; p += mr) {
        const int rows = (int)(mc - p < mr ? mc - p : mr);
        float *dp = dst + p * kc;
        const float *src = op->a + (m0 + p) * op->lda + k0;
        const int64_t full = kc / 8 * 8;
        for (int64_t k = 0; k < full; k += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = i < rows ? _mm256_loadu_ps(src + i * op->lda + k) : _mm256_setzero_ps();
            transpose8(r);
            for (int j = 0; j < 8; j++) {
                if (k + j + 1 < kc)
                    _mm256_storeu_ps(dp + (k + j) * mr, r[j]);
                else
                    _mm256_maskstore_ps(dp + (k + j) * mr, keep, r[j]);
            }
        }
        if (full < kc) {
            cnni_gemm_op sub = *op;
            sub.a = op->a + full;
            cnni_pack_a_plain(&sub, m0 + p, rows, k0, kc - full, mr, dp + full * mr);
        }
    }
}

/* The k loop of cnni_linear_wt_avx2 over [k0, k1): NV vectors of x's
 * columns a k (8 from each panel), each times W's 6 rows broadcast. */
#define WT_LOOP(NV)                                                                                \
    UNROLL for (int r = 0; r < 6; r++)                                                             \
    {                                                                                              \
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();                       \
    }                                                                                              \
    for (int64_t k = k0; k < k1; k++) {                                                            \
        __m256 bv[NV];                                                                             \
        UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(xt + v * 8 * K + k * 8);       \
        UNROLL for (int r = 0; r < 6; r++)                                                         \
        {                                                                                          \
            const __m256 av = _mm256_broadcast_ss(wr[r] + k);                                      \
            UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);  \
        }                                                                                          \
    }

/* See linear_fast.h; NV vectors (8 of x's rows, a panel, each) a tile. */
#define DEFINE_WT(NAME, NV)                                                                        \
    static void NAME(int64_t K, int64_t kb, const float *w, int64_t ldw, int rows, const float *xt, int cols, \
                     const float *bias, float *y, int64_t ldy)                                     \
    {                                                                                              \
        const float *wr[6];                                                                        \
        for (int r = 0; r < 6; r++)                                                                \
            wr[r] = w + (r < rows ? r : 0) * ldw;                                                  \
        __m256 acc[6][NV];                                                                         \
        int64_t k0 = 0, k1 = K < kb ? K : kb;                                                      \
        WT_LOOP(NV)                                                                                \
        if (K > kb) { /* later blocks: each block's sum added to the sums before */               \
            __m256 part[6][NV];                                                                    \
            UNROLL for (int r = 0; r < 6; r++)                                                     \
            {                                                                                      \
                UNROLL for (int v = 0; v < NV; v++) part[r][v] = acc[r][v];                        \
            }                                                                                      \
            for (k0 = kb; k0 < K; k0 += kb) {                                                      \
                k1 = K - k0 < kb ? K : k0 + kb;                                                    \
                WT_LOOP(NV)                                                                        \
                UNROLL for (int r = 0; r < 6; r++)                                                 \
                {                                                                                  \
                    UNROLL for (int v = 0; v < NV; v++) part[r][v] = _mm256_add_ps(part[r][v], acc[r][v]); \
                }                                                                                  \
            }                                                                                      \
            UNROLL for (int r = 0; r < 6; r++)                                                     \
            {                                                                                      \
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] = part[r][v];                        \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int v = 0; v < NV; v++)                                                        \
        {                                                                                          \
            __m256 t[8];                                                                           \
            UNROLL for (int r = 0; r < 8; r++) t[r] =                                              \
                r >= 6  ? _mm256_setzero_ps()                                                      \
                : bias  ? _mm256_add_ps(acc[r < 6 ? r : 0][v], _mm256_set1_ps(bias[r < rows ? r : 0])) \
                        : acc[r < 6 ? r : 0][v];                                                   \
            transpose8(t);                                                                         \
            const int n = cols - v * 8 < 8 ? cols - v * 8 : 8;                                     \
            for (int j = 0; j < n; j++)                                                            \
                store_first(y + (v * 8 + j) * ldy, t[j], rows);                                    \
        }                                                                                          \
    }

DEFINE_WT(wt_1, 1)
DEFINE_WT(wt_2, 2)

void cnni_linear_wt_avx2(int64_t K, int64_t kb, const float *w, int64_t ldw, int rows, const float *xt, int cols,
                         const float *bias, float *y, int64_t ldy)
{
    if (cols > 8)
        wt_2(K, kb, w, ldw, rows, xt, cols, bias, y, ldy);
    else
        wt_1(K, kb, w, ldw, rows, xt, cols, bias, y, ldy);
}
