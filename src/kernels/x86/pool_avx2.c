/* AVX2 rows of the 2x2, stride-2 pooling windows (see pool_fast.h): 8
 * outputs per step from 16 inputs of each of the two input rows, split into
 * even and odd columns. Only whole steps of 8: each function returns how
 * many outputs it did and the caller's portable loop does the rest. The
 * arithmetic and the tie rules are those of the AVX-512 rows, in the same
 * order. */
#include "../pool_fast.h"

#include <immintrin.h>

/* r[0..15] -> even = r[0], r[2], ..., r[14]; odd = r[1], ..., r[15]. */
static inline void split(const float *r, __m256 *even, __m256 *odd)
{
    const __m256 a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
    /* within 128-bit lanes: a0 a2 b0 b2 | a4 a6 b4 b6, then the middle
     * 64-bit pairs swapped */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

int64_t cnni_pool2_avg_row_avx2(int64_t OW, const float *r0, const float *r1, float *y)
{
    int64_t ox = 0;
    const __m256 q = _mm256_set1_ps(0.25f);
    for (; ox + 8 <= OW; ox += 8) {
        __m256 e0, o0, e1, o1;
        split(r0 + 2 * ox, &e0, &o0);
        split(r1 + 2 * ox, &e1, &o1);
        const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(e0, o0), e1), o1);
        _mm256_storeu_ps(y + ox, _mm256_mul_ps(s, q));
    }
    return ox;
}

/* v0..v7 -> (v0 v0 v1 v1 v2 v2 v3 v3), (v4 v4 ... v7 v7) */
static inline void spread(__m256 v, __m256 *lo, __m256 *hi)
{
    const __m256 a = _mm256_unpacklo_ps(v, v), b = _mm256_unpackhi_ps(v, v); /* v0 v0 v1 v1 | v4 v4 v5 v5 */
    *lo = _mm256_permute2f128_ps(a, b, 0x20);
    *hi = _mm256_permute2f128_ps(a, b, 0x31);
}

int64_t cnni_pool2_avg_row_backward_avx2(int64_t OW, const float *dy, float *d0, float *d1)
{
    int64_t ox = 0;
    const __m256 q = _mm256_set1_ps(0.25f);
    for (; ox + 8 <= OW; ox += 8) {
        __m256 a, b;
        spread(_mm256_mul_ps(_mm256_loadu_ps(dy + ox), q), &a, &b);
        _mm256_storeu_ps(d0 + 2 * ox, a);
        _mm256_storeu_ps(d0 + 2 * ox + 8, b);
        _mm256_storeu_ps(d1 + 2 * ox, a);
        _mm256_storeu_ps(d1 + 2 * ox + 8, b);
    }
    return ox;
}

/* The maxima of 8 windows from the rows r0, r1, and which candidate won
 * (0..3 per lane): candidates in the reference's order (row 0 left, right,
 * row 1 left, right); one is taken when greater than the maximum so far or
 * NaN. */
static inline void window_max(const float *r0, const float *r1, __m256 *mx, __m256i *won)
{
    __m256 c[4];
    split(r0, &c[0], &c[1]);
    split(r1, &c[2], &c[3]);
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
    int64_t ox = 0;
    for (; ox + 8 <= OW; ox += 8) {
        __m256 m;
        __m256i which;
        window_max(r0 + 2 * ox, r1 + 2 * ox, &m, &which);
        _mm256_storeu_ps(y + ox, m);
        if (idx) {
            int32_t w[8];
            _mm256_storeu_si256((__m256i *)w, which);
            for (int l = 0; l < 8; l++)
                idx[ox + l] = at0 + 2 * (ox + l) + (w[l] >> 1) * W + (w[l] & 1);
        }
    }
    return ox;
}

int64_t cnni_pool2_max_row_code_avx2(int64_t OW, const float *r0, const float *r1, float *y, uint8_t *code)
{
    int64_t ox = 0;
    for (; ox + 8 <= OW; ox += 8) {
        __m256 m;
        __m256i which;
        window_max(r0 + 2 * ox, r1 + 2 * ox, &m, &which);
        _mm256_storeu_ps(y + ox, m);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(which), _mm256_extracti128_si256(which, 1));
        _mm_storel_epi64((__m128i *)(code + ox), _mm_packus_epi16(w16, w16));
    }
    return ox;
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
        int64_t ox = 0;
        for (; ox + 8 <= OW; ox += 8) {
            const __m256 v = _mm256_add_ps(_mm256_setzero_ps(), _mm256_loadu_ps(dr + ox));
            const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(cr + ox)));
            __m256 c[4];
            for (int k = 0; k < 4; k++)
                c[k] = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(k))));
            for (int r = 0; r < 2; r++) {
                /* (c[2r] c[2r+1]) interleaved: the row's 16 inputs */
                const __m256 lo = _mm256_unpacklo_ps(c[2 * r], c[2 * r + 1]);
                const __m256 hi = _mm256_unpackhi_ps(c[2 * r], c[2 * r + 1]);
                float *d = r ? d1 : d0;
                _mm256_storeu_ps(d + 2 * ox, _mm256_permute2f128_ps(lo, hi, 0x20));
                _mm256_storeu_ps(d + 2 * ox + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
            }
        }
        for (; ox < OW; ox++) {
            const float v = 0.0f + dr[ox];
            d0[2 * ox] = cr[ox] == 0 ? v : 0.0f;
            d0[2 * ox + 1] = cr[ox] == 1 ? v : 0.0f;
            d1[2 * ox] = cr[ox] == 2 ? v : 0.0f;
            d1[2 * ox + 1] = cr[ox] == 3 ? v : 0.0f;
        }
        for (int64_t x = 2 * OW; x < W; x++)
            d0[x] = d1[x] = 0.0f; /* a column in no window */
    }
    for (int64_t i = 2 * OH * W; i < H * W; i++)
        dx[i] = 0.0f; /* rows in no window */
}
