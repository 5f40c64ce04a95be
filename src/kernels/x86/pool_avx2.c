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

/* Whether a window keeps the later of two candidates: b when greater than
 * a or NaN. */
INLINE __m256 later_wins(__m256 a, __m256 b)
{
    return _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_GT_OQ), _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

/* The maxima of n (<= 8) windows from the rows r0, r1, and which candidate
 * won (0..3 per lane). The reference takes the candidates in order (row 0
 * left, right, row 1 left, right), each when greater than the maximum so
 * far or NaN: the last NaN wins if there is one, else the first maximum.
 * Pairs, then the pairs' winners, give the same choice in two steps. */
INLINE void window_max(const float *r0, const float *r1, int64_t n, __m256 *mx, __m256i *won)
{
    __m256 c0, c1, c2, c3;
    split(r0, n, &c0, &c1);
    split(r1, n, &c2, &c3);
    const __m256 t01 = later_wins(c0, c1), t23 = later_wins(c2, c3);
    const __m256 m01 = _mm256_blendv_ps(c0, c1, t01), m23 = _mm256_blendv_ps(c2, c3, t23);
    const __m256 w01 = _mm256_and_ps(t01, _mm256_castsi256_ps(_mm256_set1_epi32(1)));
    const __m256 w23 = _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32(2)),
                                        _mm256_castsi256_ps(_mm256_set1_epi32(3)), t23);
    const __m256 t = later_wins(m01, m23);
    *mx = _mm256_blendv_ps(m01, m23, t);
    *won = _mm256_castps_si256(_mm256_blendv_ps(w01, w23, t));
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

/* The bytes of 8 such codes. */
INLINE __m128i code_bytes(__m256i which)
{
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(which), _mm256_extracti128_si256(which, 1));
    return _mm_packus_epi16(w16, w16);
}

/* A whole plane (H x W in, OH x OW out) with the argmax as a byte per
 * output. A row's last vector is stored whole when it stays in the plane:
 * what it writes past the row is the next row's, stored after it. */
void cnni_pool2_max_plane_code_avx2(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y,
                                    uint8_t *code)
{
    const int64_t end = OH * OW;
    (void)H;
    for (int64_t oy = 0; oy < OH; oy++) {
        const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
        for (int64_t ox = 0; ox < OW; ox += 8) {
            const int64_t n = OW - ox < 8 ? OW - ox : 8, at = oy * OW + ox;
            __m256 m;
            __m256i which;
            window_max(r0 + 2 * ox, r1 + 2 * ox, n, &m, &which);
            const __m128i b = code_bytes(which);
            if (at + 8 <= end) {
                _mm256_storeu_ps(y + at, m);
                _mm_storel_epi64((__m128i *)(code + at), b);
            } else {
                store_first(y + at, m, n);
                uint8_t t[16];
                _mm_storeu_si128((__m128i *)t, b);
                for (int l = 0; l < n; l++)
                    code[at + l] = t[l];
            }
        }
    }
}

/* The gradient of a plane (H x W, outputs OH x OW) from such codes: each
 * output's gradient (plus 0, as the reference's sum into zeros) at its
 * window position, 0 everywhere else; every element written. A vector's
 * pairs are stored whole where the plane allows and what lies past them is
 * written again later: the rest of the row, the next rows, or a column or
 * row in no window (zeroed last). The first input row's last, partial
 * vector is stored whole only when it is the row's only one, as the
 * second row's first vector is stored before it otherwise. (Rows last to
 * first, which would allow it always, ran slower.) */
INLINE void pairs_at(float *dx, int64_t p, int64_t end, int whole, __m256 x, __m256 y, int64_t n)
{
    store_pairs(dx + p, x, y, whole && p + 16 <= end ? 8 : n);
}

void cnni_pool2_max_plane_backward_avx2(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy,
                                        const uint8_t *code, float *dx)
{
    const int64_t end = H * W, oend = OH * OW;
    for (int64_t oy = 0; oy < OH; oy++) {
        const int64_t p0 = 2 * oy * W, p1 = p0 + W;
        for (int64_t ox = 0; ox < OW; ox += 8) {
            const int64_t n = OW - ox < 8 ? OW - ox : 8, at = oy * OW + ox;
            __m256 g;
            __m256i w;
            if (at + 8 <= oend) {
                g = _mm256_loadu_ps(dy + at);
                w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(code + at)));
            } else {
                uint8_t b[16] = {0};
                for (int l = 0; l < n; l++)
                    b[l] = code[at + l];
                g = _mm256_maskload_ps(dy + at, first8(n));
                w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b));
            }
            const __m256 v = _mm256_add_ps(_mm256_setzero_ps(), g);
            __m256 c[4];
            for (int k = 0; k < 4; k++)
                c[k] = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(k))));
            pairs_at(dx, p0 + 2 * ox, end, OW <= 8, c[0], c[1], n);
            pairs_at(dx, p1 + 2 * ox, end, 1, c[2], c[3], n);
        }
        if (W > 2 * OW)
            dx[p0 + W - 1] = dx[p1 + W - 1] = 0.0f; /* a column in no window */
    }
    for (int64_t i = 2 * OH * W; i < end; i++)
        dx[i] = 0.0f; /* rows in no window */
}
