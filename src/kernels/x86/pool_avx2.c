/* AVX2 rows of the 2x2, stride-2 pooling windows (see pool_fast.h): 8
 * outputs per step from 16 inputs of each of the two input rows, split into
 * even and odd columns; a row's last step of n < 8 outputs reads its 2n
 * inputs under a mask and stores its outputs in pieces of 4, 2 and 1
 * (masked stores cost far more than plain ones on some cores). The
 * arithmetic and the tie rules are those of the AVX-512 rows, in the same
 * order. */
#include "../pool_fast.h"

#include <immintrin.h>

#include "lanes_avx2.h"

#define INLINE static inline __attribute__((always_inline))

/* r[0..2n) (n <= 8 outputs; zero past them) -> even = r[0], r[2], ...;
 * odd = r[1], r[3], ... */
INLINE void split(const float *r, int64_t n, __m256 *even, __m256 *odd)
{
    __m256 a, b;
    if (n >= 8) {
        a = _mm256_loadu_ps(r);
        b = _mm256_loadu_ps(r + 8);
    } else {
        a = _mm256_maskload_ps(r, first8(2 * n));
        b = _mm256_maskload_ps(r + 8, first8(2 * n - 8));
    }
    /* within 128-bit lanes: a0 a2 b0 b2 | a4 a6 b4 b6, then the middle
     * 64-bit pairs swapped */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

/* (x0 y0 x1 y1 ... x7 y7) of n pairs to p: 2n floats. */
INLINE void store_pairs(float *p, __m256 x, __m256 y, int64_t n)
{
    const __m256 lo = _mm256_unpacklo_ps(x, y), hi = _mm256_unpackhi_ps(x, y); /* x0 y0 x1 y1 | x4 y4 x5 y5 */
    const __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
    if (n >= 8) {
        _mm256_storeu_ps(p, first);
        _mm256_storeu_ps(p + 8, second);
        return;
    }
    store_first(p, first, 2 * n);
    if (n > 4)
        store_first(p + 8, second, 2 * n - 8);
}

int64_t cnni_pool2_avg_row_avx2(int64_t OW, const float *r0, const float *r1, float *y)
{
    const __m256 q = _mm256_set1_ps(0.25f);
    for (int64_t ox = 0; ox < OW; ox += 8) {
        const int64_t n = OW - ox < 8 ? OW - ox : 8;
        __m256 e0, o0, e1, o1;
        split(r0 + 2 * ox, n, &e0, &o0);
        split(r1 + 2 * ox, n, &e1, &o1);
        const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(e0, o0), e1), o1);
        store_first(y + ox, _mm256_mul_ps(s, q), n);
    }
    return OW;
}

int64_t cnni_pool2_avg_row_backward_avx2(int64_t OW, const float *dy, float *d0, float *d1)
{
    const __m256 q = _mm256_set1_ps(0.25f);
    for (int64_t ox = 0; ox < OW; ox += 8) {
        const int64_t n = OW - ox < 8 ? OW - ox : 8;
        const __m256 g = n >= 8 ? _mm256_loadu_ps(dy + ox) : _mm256_maskload_ps(dy + ox, first8(n));
        const __m256 v = _mm256_mul_ps(g, q);
        store_pairs(d0 + 2 * ox, v, v, n);
        store_pairs(d1 + 2 * ox, v, v, n);
    }
    return OW;
}

/* The maxima of n (<= 8) windows from the rows r0, r1, and which candidate
 * won (0..3 per lane): candidates in the reference's order (row 0 left,
 * right, row 1 left, right); one is taken when greater than the maximum so
 * far or NaN. */
INLINE void window_max(const float *r0, const float *r1, int64_t n, __m256 *mx, __m256i *won)
{
    __m256 c[4];
    split(r0, n, &c[0], &c[1]);
    split(r1, n, &c[2], &c[3]);
    __m256 m = _mm256_set1_ps(-__builtin_inff());
    __m256 which = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(c[k], m, _CMP_GT_OQ), _mm256_cmp_ps(c[k], c[k], _CMP_UNORD_Q));
        m = _mm256_blendv_ps(m, c[k], take);
        which = _mm256_blendv_ps(which, _mm256_castsi256_ps(_mm256_set1_epi32(k)), take);
    }
    *mx = m;
    *won = _mm256_castps_si256(which);
}

int64_t cnni_pool2_max_row_avx2(int64_t OW, const float *r0, const float *r1, int64_t at0, int64_t W, float *y,
                                int64_t *idx)
{
    for (int64_t ox = 0; ox < OW; ox += 8) {
        const int64_t n = OW - ox < 8 ? OW - ox : 8;
        __m256 m;
        __m256i which;
        window_max(r0 + 2 * ox, r1 + 2 * ox, n, &m, &which);
        store_first(y + ox, m, n);
        if (idx) {
            int32_t w[8];
            _mm256_storeu_si256((__m256i *)w, which);
            for (int l = 0; l < n; l++)
                idx[ox + l] = at0 + 2 * (ox + l) + (w[l] >> 1) * W + (w[l] & 1);
        }
    }
    return OW;
}

int64_t cnni_pool2_max_row_code_avx2(int64_t OW, const float *r0, const float *r1, float *y, uint8_t *code)
{
    for (int64_t ox = 0; ox < OW; ox += 8) {
        const int64_t n = OW - ox < 8 ? OW - ox : 8;
        __m256 m;
        __m256i which;
        window_max(r0 + 2 * ox, r1 + 2 * ox, n, &m, &which);
        store_first(y + ox, m, n);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(which), _mm256_extracti128_si256(which, 1));
        const __m128i w8 = _mm_packus_epi16(w16, w16);
        if (n >= 8) {
            _mm_storel_epi64((__m128i *)(code + ox), w8);
        } else {
            uint8_t b[16];
            _mm_storeu_si128((__m128i *)b, w8);
            for (int l = 0; l < n; l++)
                code[ox + l] = b[l];
        }
    }
    return OW;
}

/* The gradient of a plane (H x W, outputs OH x OW) from such codes: each
 * output's gradient (plus 0, as the reference's sum into zeros) at its
 * window position, 0 everywhere else; every element written. */
void cnni_pool2_max_plane_backward_avx2(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy,
                                        const uint8_t *code, float *dx)
{
    for (int64_t oy = 0; oy < OH; oy++) {
        float *d0 = dx + 2 * oy * W, *d1 = d0 + W;
        const float *dr = dy + oy * OW;
        const uint8_t *cr = code + oy * OW;
        for (int64_t ox = 0; ox < OW; ox += 8) {
            const int64_t n = OW - ox < 8 ? OW - ox : 8;
            __m256 g;
            __m256i w;
            if (n >= 8) {
                g = _mm256_loadu_ps(dr + ox);
                w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(cr + ox)));
            } else {
                uint8_t b[16] = {0};
                for (int l = 0; l < n; l++)
                    b[l] = cr[ox + l];
                g = _mm256_maskload_ps(dr + ox, first8(n));
                w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b));
            }
            const __m256 v = _mm256_add_ps(_mm256_setzero_ps(), g);
            __m256 c[4];
            for (int k = 0; k < 4; k++)
                c[k] = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(k))));
            store_pairs(d0 + 2 * ox, c[0], c[1], n);
            store_pairs(d1 + 2 * ox, c[2], c[3], n);
        }
        for (int64_t x = 2 * OW; x < W; x++)
            d0[x] = d1[x] = 0.0f; /* a column in no window */
    }
    for (int64_t i = 2 * OH * W; i < H * W; i++)
        dx[i] = 0.0f; /* rows in no window */
}
