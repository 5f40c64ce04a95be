/* AVX-512 microkernels: an MR x 32 tile of C in 2*MR zmm registers, for
 * MR = 12, 8 and 4 (the driver picks the height that wastes fewest rows);
 * the tail columns use masked loads and stores. */
#include "../gemm.h"
#include "../linear_fast.h"

#include <immintrin.h>

#include "transpose_avx512.h"

#define NR 32

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

/* The k loop: b0 and b1 from LOAD_B(b), then b advances by BSTEP. */
#define MICRO_LOOP(MR, LOAD_B, BSTEP)                                                              \
    __m512 acc[MR][2];                                                                             \
    UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();               \
    for (int64_t k = 0; k < kc; k++) {                                                             \
        LOAD_B                                                                                     \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            __m512 av = _mm512_set1_ps(a[r]);                                                      \
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                        \
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                        \
        }                                                                                          \
        a += MR;                                                                                   \
        b += BSTEP;                                                                                \
    }

/* The m x n corner of the tile to C; whole rows with plain stores (masked
 * stores cost more on Zen 4 even with every lane set). Unrolled over the MR
 * rows with no early exit (which clang -O1 does not unroll), so that acc is
 * indexed by constants and stays in registers: indexed by a variable row it
 * lived in memory, and in the masked-column loop gcc stored all of it on
 * every k (Linear(400, 120)'s gradients at 32 rows: 32.5 -> 28.1 us for
 * the input's, 37.7 -> 30.3 for the weight's). */
#define MICRO_STORE(MR)                                                                            \
    UNROLL for (int r = 0; r < MR; r++)                                                            \
    {                                                                                              \
        if (r < m) {                                                                               \
            float *cr = c + r * ldc;                                                               \
            __m512 lo = acc[r][0], hi = acc[r][1];                                                 \
            if (bias) {                                                                            \
                __m512 bv = _mm512_set1_ps(bias[r]);                                               \
                lo = _mm512_add_ps(bv, lo);                                                        \
                hi = _mm512_add_ps(bv, hi);                                                        \
            }                                                                                      \
            if (n == 32) {                                                                         \
                if (accumulate) {                                                                  \
                    lo = _mm512_add_ps(_mm512_loadu_ps(cr), lo);                                   \
                    hi = _mm512_add_ps(_mm512_loadu_ps(cr + 16), hi);                              \
                }                                                                                  \
                _mm512_storeu_ps(cr, lo);                                                          \
                _mm512_storeu_ps(cr + 16, hi);                                                     \
            } else {                                                                               \
                if (accumulate) {                                                                  \
                    lo = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), lo);                         \
                    hi = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), hi);                    \
                }                                                                                  \
                _mm512_mask_storeu_ps(cr, m0, lo);                                                 \
                _mm512_mask_storeu_ps(cr + 16, m1, hi);                                            \
            }                                                                                      \
        }                                                                                          \
    }

#define COLUMN_MASKS                                                                               \
    const __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);                 \
    const __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;

/* NAME reads a packed panel of B; NAME##_ub reads n columns of B's rows in
 * place (row stride ldb), the columns past n as zeros. */
#define DEFINE_MICRO(NAME, MR)                                                                     \
    void NAME(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,     \
              int accumulate, const float *bias)                                                   \
    {                                                                                              \
        COLUMN_MASKS                                                                               \
        MICRO_LOOP(MR, __m512 b0 = _mm512_loadu_ps(b); __m512 b1 = _mm512_loadu_ps(b + 16);, NR)  \
        MICRO_STORE(MR) \
    }                                                                                              \
    void NAME##_ub(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int m,  \
                   int n, int accumulate, const float *bias)                                       \
    {                                                                                              \
        COLUMN_MASKS                                                                               \
        if (n == 32) {                                                                             \
            MICRO_LOOP(MR, __m512 b0 = _mm512_loadu_ps(b); __m512 b1 = _mm512_loadu_ps(b + 16);, ldb) \
            MICRO_STORE(MR) \
            return;                                                                                \
        }                                                                                          \
        MICRO_LOOP(MR, __m512 b0 = _mm512_maskz_loadu_ps(m0, b);                                   \
                   __m512 b1 = _mm512_maskz_loadu_ps(m1, b + 16);, ldb)                            \
        MICRO_STORE(MR) \
    }

DEFINE_MICRO(cnni_micro_avx512, 12)
DEFINE_MICRO(cnni_micro_avx512_8, 8)
DEFINE_MICRO(cnni_micro_avx512_4, 4)

/* One panel: d[k * width + j] = src[j * ld + k] for j < rows, zero for
 * rows <= j < width, k < kc; width 4, 8, 12, 16 or 32. 16 columns of up to
 * 16 rows at a time are loaded as rows and transposed in registers; the
 * columns past the last multiple of 16 are copied one by one. */
static void pack_panel(const float *src, int64_t ld, int rows, int width, int64_t kc, float *d)
{
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16)
        for (int h = 0; h < width; h += 16) {
            const int hr = rows - h < 16 ? rows - h : 16; /* rows of this half (may be <= 0) */
            __m512 r[16], o[16];
            /* unrolled (masked loads, rows past the panel's read nothing) so
             * that r stays in registers */
            UNROLL for (int i = 0; i < 16; i++) r[i] =
                _mm512_maskz_loadu_ps(i < hr ? (__mmask16)0xFFFF : 0, src + (i < hr ? h + i : 0) * ld + k);
            transpose16(r, o);
            /* Masked stores of width lanes, width floats apart, overlap in
             * memory and ran on Zen 4 at a fraction of plain stores (this
             * packer took longer than the products of a Linear layer of
             * batch 64): store whole vectors, halves and quarters. */
            float *dk = d + k * width + h;
            switch (width) {
            case 12:
                for (int j = 0; j < 16; j++) {
                    _mm256_storeu_ps(dk + j * 12, _mm512_castps512_ps256(o[j]));
                    _mm_storeu_ps(dk + j * 12 + 8, _mm512_extractf32x4_ps(o[j], 2));
                }
                break;
            case 8:
                for (int j = 0; j < 16; j++)
                    _mm256_storeu_ps(dk + j * 8, _mm512_castps512_ps256(o[j]));
                break;
            case 4:
                for (int j = 0; j < 16; j++)
                    _mm_storeu_ps(dk + j * 4, _mm512_castps512_ps128(o[j]));
                break;
            default: /* 16, 32 */
                for (int j = 0; j < 16; j++)
                    _mm512_storeu_ps(dk + j * width, o[j]);
            }
        }
    for (; k < kc; k++) {
        int j = 0;
        for (; j < rows; j++)
            d[k * width + j] = src[j * ld + k];
        for (; j < width; j++)
            d[k * width + j] = 0;
    }
}

/* Transposed A (A[m][k] = a[k * lda + m]): each k's mr values are
 * consecutive in memory, copied a vector at a time (a Linear layer's
 * weight gradient, where the portable loop took a fifth of the time). */
static void pack_a_transposed(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr,
                              float *dst)
{
    for (int64_t p = 0; p < mc; p += mr) {
        const int rows = (int)(mc - p < mr ? mc - p : mr);
        float *dp = dst + p * kc;
        const float *src = op->a + k0 * op->lda + m0 + p;
        for (int64_t k = 0; k < kc; k++) {
            const float *s = src + k * op->lda;
            float *d = dp + k * mr;
            for (int h = 0; h < mr; h += 16) {
                const int hr = rows - h < 16 ? rows - h : 16;
                const __m512 v = _mm512_maskz_loadu_ps(hr <= 0 ? 0 : hr >= 16 ? 0xFFFF : (__mmask16)((1u << hr) - 1),
                                                       s + (hr > 0 ? h : 0));
                switch (mr) {
                case 12:
                    _mm256_storeu_ps(d, _mm512_castps512_ps256(v));
                    _mm_storeu_ps(d + 8, _mm512_extractf32x4_ps(v, 2));
                    break;
                case 8: _mm256_storeu_ps(d, _mm512_castps512_ps256(v)); break;
                case 4: _mm_storeu_ps(d, _mm512_castps512_ps128(v)); break;
                default: _mm512_storeu_ps(d + h, v); /* 16, 32 */
                }
            }
        }
    }
}

/* dst[k][r] = A[m0 + p + r][k0 + k] for each mr-row panel p. */
void cnni_pack_a_avx512(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr,
                        float *dst)
{
    if (mr != 4 && mr != 8 && mr != 12 && mr != 16 && mr != 32) {
        cnni_pack_a_plain(op, m0, mc, k0, kc, mr, dst);
        return;
    }
    if (op->trans_a) {
        pack_a_transposed(op, m0, mc, k0, kc, mr, dst);
        return;
    }
    for (int64_t p = 0; p < mc; p += mr)
        pack_panel(op->a + (m0 + p) * op->lda + k0, op->lda, (int)(mc - p < mr ? mc - p : mr), mr, kc,
                   dst + p * kc);
}

/* Transposed B (B[k][n] = b[n * ldb + k]) in nr-column panels, as the
 * portable packer lays them out: each panel is nr rows of b transposed. */
void cnni_pack_bt_avx512(const cnni_gemm_op *op, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr,
                         float *dst)
{
    for (int64_t p = 0; p < nc; p += nr)
        pack_panel(op->b + (n0 + p) * op->ldb + k0, op->ldb, (int)(nc - p < nr ? nc - p : nr), nr, kc,
                   dst + p * kc);
}

/* The k loop of cnni_linear_wt_avx512 over [k0, k1): NV vectors of x's
 * columns a k, each times W's 12 rows broadcast. */
#define WT_LOOP(NV)                                                                                \
    UNROLL for (int r = 0; r < 12; r++)                                                            \
    {                                                                                              \
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();                       \
    }                                                                                              \
    for (int64_t k = k0; k < k1; k++) {                                                            \
        __m512 bv[NV];                                                                             \
        UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(xt + k * 32 + v * 16);         \
        UNROLL for (int r = 0; r < 12; r++)                                                        \
        {                                                                                          \
            const __m512 av = _mm512_set1_ps(wr[r][k]);                                            \
            UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);  \
        }                                                                                          \
    }

/* See linear_fast.h; NV vectors (16 columns of x's panel each) a tile. */
#define DEFINE_WT(NAME, NV)                                                                        \
    static void NAME(int64_t K, int64_t kb, const float *w, int64_t ldw, int rows, const float *xt, int cols, \
                     const float *bias, float *y, int64_t ldy)                                     \
    {                                                                                              \
        const float *wr[12];                                                                       \
        for (int r = 0; r < 12; r++)                                                               \
            wr[r] = w + (r < rows ? r : 0) * ldw;                                                  \
        __m512 acc[12][NV];                                                                        \
        int64_t k0 = 0, k1 = K < kb ? K : kb;                                                      \
        WT_LOOP(NV)                                                                                \
        if (K > kb) { /* later blocks: each block's sum added to the sums before */               \
            __m512 part[12][NV];                                                                   \
            UNROLL for (int r = 0; r < 12; r++)                                                    \
            {                                                                                      \
                UNROLL for (int v = 0; v < NV; v++) part[r][v] = acc[r][v];                        \
            }                                                                                      \
            for (k0 = kb; k0 < K; k0 += kb) {                                                      \
                k1 = K - k0 < kb ? K : k0 + kb;                                                    \
                WT_LOOP(NV)                                                                        \
                UNROLL for (int r = 0; r < 12; r++)                                                \
                {                                                                                  \
                    UNROLL for (int v = 0; v < NV; v++) part[r][v] = _mm512_add_ps(part[r][v], acc[r][v]); \
                }                                                                                  \
            }                                                                                      \
            UNROLL for (int r = 0; r < 12; r++)                                                    \
            {                                                                                      \
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] = part[r][v];                        \
            }                                                                                      \
        }                                                                                          \
        const __mmask16 mrows = (__mmask16)((1u << rows) - 1);                                     \
        for (int v = 0; v < NV && v * 16 < cols; v++) {                                            \
            __m512 t[16], o[16];                                                                   \
            UNROLL for (int r = 0; r < 16; r++) t[r] =                                             \
                r >= 12 ? _mm512_setzero_ps()                                                      \
                : bias  ? _mm512_add_ps(acc[r < 12 ? r : 0][v], _mm512_set1_ps(bias[r < rows ? r : 0])) \
                        : acc[r < 12 ? r : 0][v];                                                  \
            transpose16(t, o);                                                                     \
            const int n = cols - v * 16 < 16 ? cols - v * 16 : 16;                                 \
            for (int j = 0; j < n; j++)                                                            \
                _mm512_mask_storeu_ps(y + (v * 16 + j) * ldy, mrows, o[j]);                        \
        }                                                                                          \
    }

DEFINE_WT(wt_1, 1)
DEFINE_WT(wt_2, 2)

void cnni_linear_wt_avx512(int64_t K, int64_t kb, const float *w, int64_t ldw, int rows, const float *xt, int cols,
                           const float *bias, float *y, int64_t ldy)
{
    if (cols > 16)
        wt_2(K, kb, w, ldw, rows, xt, cols, bias, y, ldy);
    else
        wt_1(K, kb, w, ldw, rows, xt, cols, bias, y, ldy);
}
