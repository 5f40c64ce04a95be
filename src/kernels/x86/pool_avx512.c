/* AVX-512 rows of the 2x2, stride-2 pooling windows (see pool_fast.h): 16
 * outputs per step from 32 inputs of each of the two input rows, split
 * into even and odd columns; the row's tail under lane masks. The arithmetic and the tie rules are those of
 * the reference kernels, in the same order. */
#include "../pool_fast.h"

#include <immintrin.h>
#include <string.h>

/* Outputs [ox, ox + n) of a row, n <= 16: lane masks of the outputs and
 * of the two 16-float halves of the 2n inputs. */
static inline __mmask16 lanes(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

static inline void split(const float *r, int64_t n, __m512 *even, __m512 *odd)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a = _mm512_maskz_loadu_ps(lanes(2 * n), r);
    __m512 b = _mm512_maskz_loadu_ps(lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0), r + 16);
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}

int64_t cnni_pool2_avg_row_avx512(int64_t OW, const float *r0, const float *r1, float *y)
{
    int64_t ox = 0;
    const __m512 q = _mm512_set1_ps(0.25f);
    for (; ox < OW; ox += 16) {
        int64_t n = OW - ox < 16 ? OW - ox : 16;
        __m512 e0, o0, e1, o1;
        split(r0 + 2 * ox, n, &e0, &o0);
        split(r1 + 2 * ox, n, &e1, &o1);
        __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(e0, o0), e1), o1);
        _mm512_mask_storeu_ps(y + ox, lanes(n), _mm512_mul_ps(s, q));
    }
    return ox;
}

int64_t cnni_pool2_avg_row_backward_avx512(int64_t OW, const float *dy, float *d0, float *d1)
{
    int64_t ox = 0;
    const __m512 q = _mm512_set1_ps(0.25f);
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (; ox < OW; ox += 16) {
        int64_t n = OW - ox < 16 ? OW - ox : 16;
        __mmask16 ma = lanes(2 * n), mb = lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes(n), dy + ox), q);
        __m512 a = _mm512_permutexvar_ps(lo, v), b = _mm512_permutexvar_ps(hi, v);
        _mm512_mask_storeu_ps(d0 + 2 * ox, ma, a);
        _mm512_mask_storeu_ps(d0 + 2 * ox + 16, mb, b);
        _mm512_mask_storeu_ps(d1 + 2 * ox, ma, a);
        _mm512_mask_storeu_ps(d1 + 2 * ox + 16, mb, b);
    }
    return ox;
}

/* Whole planes (H x W in, OH x OW out, 2 * OH <= H, 2 * OW <= W). A store
 * of a row's last, partial vector writes all 16 lanes when they stay in
 * the plane, as what lies past the row is written after it by the same
 * call: the next output row forward; backward the second input row of the
 * pair (each row's vectors are all stored before the next row's), the next
 * pair, or the zeros of the rows and columns in no window, written last.
 * Masked stores of part of a vector ran at about half the speed of whole
 * ones on Zen 4 (LeNet's 28 x 28 planes, forward 53 us against 31 for 384
 * planes). The values are those of the row functions above. */
void cnni_pool2_avg_plane_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y)
{
    const __m512 q = _mm512_set1_ps(0.25f);
    const int64_t end = OH * OW;
    (void)H;
    int64_t oy = 0;
    if (OW <= 8) {
        /* Two output rows a vector (LeNet's 10 x 10 planes: 5 of 16 lanes
         * a row otherwise): lanes 0-7 take rows 2oy and 2oy + 1, lanes 8-15
         * the next two, through the same even and odd splits, then the two
         * rows' outputs are moved together. */
        const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        int32_t at_lane[16];
        for (int j = 0; j < 16; j++)
            at_lane[j] = j < OW ? j : j < 2 * OW ? 8 + j - (int)OW : 0;
        const __m512i pack = _mm512_loadu_si512(at_lane);
        const __mmask16 in = lanes(2 * OW);
        for (; oy + 1 < OH; oy += 2) {
            const float *r = x + 2 * oy * W;
            const __m512 a0 = _mm512_maskz_loadu_ps(in, r), a1 = _mm512_maskz_loadu_ps(in, r + W);
            const __m512 b0 = _mm512_maskz_loadu_ps(in, r + 2 * W), b1 = _mm512_maskz_loadu_ps(in, r + 3 * W);
            const __m512 e0 = _mm512_permutex2var_ps(a0, ie, b0), o0 = _mm512_permutex2var_ps(a0, io, b0);
            const __m512 e1 = _mm512_permutex2var_ps(a1, ie, b1), o1 = _mm512_permutex2var_ps(a1, io, b1);
            const __m512 v = _mm512_permutexvar_ps(
                pack, _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(e0, o0), e1), o1), q));
            const int64_t at = oy * OW;
            if (at + 16 <= end)
                _mm512_storeu_ps(y + at, v);
            else
                _mm512_mask_storeu_ps(y + at, lanes(2 * OW), v);
        }
    }
    for (; oy < OH; oy++) {
        const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
        for (int64_t ox = 0; ox < OW; ox += 16) {
            const int64_t n = OW - ox < 16 ? OW - ox : 16, at = oy * OW + ox;
            __m512 e0, o0, e1, o1;
            split(r0 + 2 * ox, n, &e0, &o0);
            split(r1 + 2 * ox, n, &e1, &o1);
            const __m512 v = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(e0, o0), e1), o1), q);
            if (at + 16 <= end)
                _mm512_storeu_ps(y + at, v);
            else
                _mm512_mask_storeu_ps(y + at, lanes(n), v);
        }
    }
}

/* One input row of the backward: the 2n values of each 16 outputs. */
static inline void spread_row(int64_t OW, const float *dy, float *d, int64_t at, int64_t end)
{
    const __m512 q = _mm512_set1_ps(0.25f);
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (int64_t ox = 0; ox < OW; ox += 16) {
        const int64_t n = OW - ox < 16 ? OW - ox : 16;
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes(n), dy + ox), q);
        const __m512 a = _mm512_permutexvar_ps(lo, v), b = _mm512_permutexvar_ps(hi, v);
        const int64_t p = at + 2 * ox;
        if (p + 16 <= end)
            _mm512_storeu_ps(d + p, a);
        else
            _mm512_mask_storeu_ps(d + p, lanes(2 * n), a);
        if (n > 8) {
            if (p + 32 <= end)
                _mm512_storeu_ps(d + p + 16, b);
            else
                _mm512_mask_storeu_ps(d + p + 16, lanes(2 * n - 16), b);
        }
    }
}

void cnni_pool2_avg_plane_backward_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy, float *dx)
{
    const int64_t end = H * W;
    for (int64_t oy = 0; oy < OH; oy++) {
        spread_row(OW, dy + oy * OW, dx, 2 * oy * W, end);
        spread_row(OW, dy + oy * OW, dx, (2 * oy + 1) * W, end);
    }
    if (2 * OW < W)
        for (int64_t r = 0; r < 2 * OH; r++)
            for (int64_t c = 2 * OW; c < W; c++)
                dx[r * W + c] = 0.0f; /* a column in no window */
    if (2 * OH < H)
        memset(dx + 2 * OH * W, 0, sizeof(float) * (size_t)((H - 2 * OH) * W));
}

/* Whether a window keeps the later of two candidates: b when greater than
 * a or NaN. */
static inline __mmask16 later_wins(__m512 a, __m512 b)
{
    return _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
}

/* The maxima of n windows from the rows r0, r1, and which candidate won
 * (0..3 per lane, as 32-bit). The reference takes the candidates in order
 * (row 0 left, right, row 1 left, right), each when greater than the
 * maximum so far or NaN: the last NaN wins if there is one, else the first
 * maximum. Pairs, then the pairs' winners, give the same choice in two
 * steps instead of four. */
static inline void window_best(__m512 c0, __m512 c1, __m512 c2, __m512 c3, __m512 *mx, __m512i *won)
{
    const __mmask16 t01 = later_wins(c0, c1), t23 = later_wins(c2, c3);
    const __m512 m01 = _mm512_mask_mov_ps(c0, t01, c1), m23 = _mm512_mask_mov_ps(c2, t23, c3);
    const __m512i w01 = _mm512_maskz_mov_epi32(t01, _mm512_set1_epi32(1));
    const __m512i w23 = _mm512_mask_mov_epi32(_mm512_set1_epi32(2), t23, _mm512_set1_epi32(3));
    const __mmask16 t = later_wins(m01, m23);
    *mx = _mm512_mask_mov_ps(m01, t, m23);
    *won = _mm512_mask_mov_epi32(w01, t, w23);
}

static inline void window_max(const float *r0, const float *r1, int64_t n, __m512 *mx, __m512i *won)
{
    __m512 c0, c1, c2, c3;
    split(r0, n, &c0, &c1);
    split(r1, n, &c2, &c3);
    window_best(c0, c1, c2, c3, mx, won);
}

int64_t cnni_pool2_max_row_avx512(int64_t OW, const float *r0, const float *r1, int64_t at0, int64_t W,
                                  float *y, int64_t *idx)
{
    int64_t ox = 0;
    const __m512i two = _mm512_set1_epi64(2);
    for (; ox < OW; ox += 16) {
        int64_t n = OW - ox < 16 ? OW - ox : 16;
        __m512 m;
        __m512i which;
        window_max(r0 + 2 * ox, r1 + 2 * ox, n, &m, &which);
        _mm512_mask_storeu_ps(y + ox, lanes(n), m);
        if (idx) {
            /* index = at0 + 2*ox_lane + (k >= 2 ? W : 0) + (k & 1) */
            __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
            for (int h = 0; h < 2; h++) {
                __m256i w32 = h ? _mm512_extracti64x4_epi64(which, 1) : _mm512_castsi512_si256(which);
                __m512i w = _mm512_cvtepi32_epi64(w32);
                __m512i base = _mm512_add_epi64(_mm512_set1_epi64(at0 + 2 * (ox + 8 * h)),
                                                _mm512_mullo_epi64(lanes, two));
                __m512i row = _mm512_mullo_epi64(_mm512_srli_epi64(w, 1), _mm512_set1_epi64(W));
                __m512i col = _mm512_and_si512(w, _mm512_set1_epi64(1));
                int64_t nh = n - 8 * h;
                __mmask8 mh = nh >= 8 ? (__mmask8)0xFF : nh > 0 ? (__mmask8)((1u << nh) - 1) : 0;
                _mm512_mask_storeu_epi64(idx + ox + 8 * h, mh, _mm512_add_epi64(base, _mm512_add_epi64(row, col)));
            }
        }
    }
    return ox;
}

/* A whole plane (H x W in, OH x OW out) of such windows, with the argmax
 * as a byte per output: the window position 0..3 (row 0 left, right, row 1
 * left, right). A row's last vector is stored whole when it stays in the
 * plane: what it writes past the row is the next row's, stored after it. */
void cnni_pool2_max_plane_code_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y,
                                      uint8_t *code)
{
    const int64_t end = OH * OW;
    (void)H;
    if (OW <= 8) {
        /* Two output rows per vector: lanes 0..7 from rows (2 oy, 2 oy + 1),
         * lanes 8..15 from the next pair, then the 2 OW outputs moved
         * together. */
        const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        const __m512i pack = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_maskz_set1_epi32((__mmask16)(0xFFFFu << OW), 8 - (int)OW));
        const __mmask16 in = lanes(2 * OW);
        for (int64_t oy = 0; oy < OH; oy += 2) {
            const int two = oy + 1 < OH;
            const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
            const __mmask16 in2 = two ? in : 0;
            const __m512 a0 = _mm512_maskz_loadu_ps(in, r0), a1 = _mm512_maskz_loadu_ps(in, r1);
            const __m512 b0 = _mm512_maskz_loadu_ps(in2, r0 + 2 * W), b1 = _mm512_maskz_loadu_ps(in2, r1 + 2 * W);
            __m512 m;
            __m512i which;
            window_best(_mm512_permutex2var_ps(a0, ie, b0), _mm512_permutex2var_ps(a0, io, b0),
                        _mm512_permutex2var_ps(a1, ie, b1), _mm512_permutex2var_ps(a1, io, b1), &m, &which);
            m = _mm512_permutexvar_ps(pack, m);
            which = _mm512_permutexvar_epi32(pack, which);
            const int64_t at = oy * OW;
            if (at + 16 <= end) {
                _mm512_storeu_ps(y + at, m);
                _mm_storeu_si128((__m128i *)(code + at), _mm512_cvtepi32_epi8(which));
            } else {
                const __mmask16 out = lanes((two ? 2 : 1) * OW);
                _mm512_mask_storeu_ps(y + at, out, m);
                _mm_mask_storeu_epi8(code + at, out, _mm512_cvtepi32_epi8(which));
            }
        }
        return;
    }
    for (int64_t oy = 0; oy < OH; oy++) {
        const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
        for (int64_t ox = 0; ox < OW; ox += 16) {
            const int64_t n = OW - ox < 16 ? OW - ox : 16, at = oy * OW + ox;
            __m512 m;
            __m512i which;
            window_max(r0 + 2 * ox, r1 + 2 * ox, n, &m, &which);
            if (at + 16 <= end) {
                _mm512_storeu_ps(y + at, m);
                _mm_storeu_si128((__m128i *)(code + at), _mm512_cvtepi32_epi8(which));
            } else {
                _mm512_mask_storeu_ps(y + at, lanes(n), m);
                _mm_mask_storeu_epi8(code + at, lanes(n), _mm512_cvtepi32_epi8(which));
            }
        }
    }
}

/* The gradient of a plane (H x W, outputs OH x OW) from such codes: each
 * output's gradient (plus 0, as the reference's sum into zeros) at its
 * window position, 0 everywhere else; every element written. Input rows
 * are stored in order, each whole where the plane allows: what a vector
 * writes past its row is the next row's (stored after it) or a column or
 * row in no window (zeroed last). */
static inline void store_at(float *dx, int64_t p, int64_t end, __mmask16 m, __m512 v)
{
    if (p + 16 <= end)
        _mm512_storeu_ps(dx + p, v);
    else
        _mm512_mask_storeu_ps(dx + p, m, v);
}

void cnni_pool2_max_plane_backward_avx512(int64_t H, int64_t W, int64_t OH, int64_t OW, const float *dy,
                                          const uint8_t *code, float *dx)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i k1 = _mm512_set1_epi32(1), k2 = _mm512_set1_epi32(2), k3 = _mm512_set1_epi32(3);
    const int64_t end = H * W;
    if (OW <= 8) {
        /* Two output rows per vector: lanes 0..7 of row oy, 8..15 of row oy + 1. */
        const __m512i unpack =
            _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                             _mm512_maskz_set1_epi32((__mmask16)0xFF00, (int)OW - 8));
        const __mmask16 row = lanes(2 * OW);
        for (int64_t oy = 0; oy < OH; oy += 2) {
            const int two = oy + 1 < OH;
            const __mmask16 in = lanes((two ? 2 : 1) * OW);
            const __m512 v = _mm512_permutexvar_ps(
                unpack, _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(in, dy + oy * OW)));
            const __m512i w = _mm512_permutexvar_epi32(unpack, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in, code + oy * OW)));
            const __mmask16 e1 = _mm512_cmpeq_epi32_mask(w, k1), e2 = _mm512_cmpeq_epi32_mask(w, k2),
                            e3 = _mm512_cmpeq_epi32_mask(w, k3);
            const __m512 c0 = _mm512_maskz_mov_ps((__mmask16) ~(e1 | e2 | e3), v), c1 = _mm512_maskz_mov_ps(e1, v),
                         c2 = _mm512_maskz_mov_ps(e2, v), c3 = _mm512_maskz_mov_ps(e3, v);
            const int64_t p = 2 * oy * W;
            store_at(dx, p, end, row, _mm512_permutex2var_ps(c0, lo, c1));
            store_at(dx, p + W, end, row, _mm512_permutex2var_ps(c2, lo, c3));
            if (two) {
                store_at(dx, p + 2 * W, end, row, _mm512_permutex2var_ps(c0, hi, c1));
                store_at(dx, p + 3 * W, end, row, _mm512_permutex2var_ps(c2, hi, c3));
            }
            if (W > 2 * OW)
                for (int r = 0; r < (two ? 4 : 2); r++)
                    dx[p + r * W + W - 1] = 0.0f; /* a column in no window */
        }
    } else if (OW <= 16) {
        /* One vector per row. */
        const __mmask16 in = lanes(OW), ma = lanes(2 * OW > 16 ? 16 : 2 * OW), mb = lanes(2 * OW - 16);
        for (int64_t oy = 0; oy < OH; oy++) {
            const int64_t p0 = 2 * oy * W, p1 = p0 + W;
            const __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(in, dy + oy * OW));
            const __m512i w = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in, code + oy * OW));
            const __mmask16 e1 = _mm512_cmpeq_epi32_mask(w, k1), e2 = _mm512_cmpeq_epi32_mask(w, k2),
                            e3 = _mm512_cmpeq_epi32_mask(w, k3);
            const __m512 c0 = _mm512_maskz_mov_ps((__mmask16)(in & ~(e1 | e2 | e3)), v), c1 = _mm512_maskz_mov_ps(e1, v),
                         c2 = _mm512_maskz_mov_ps(e2, v), c3 = _mm512_maskz_mov_ps(e3, v);
            store_at(dx, p0, end, ma, _mm512_permutex2var_ps(c0, lo, c1));
            store_at(dx, p0 + 16, end, mb, _mm512_permutex2var_ps(c0, hi, c1));
            store_at(dx, p1, end, ma, _mm512_permutex2var_ps(c2, lo, c3));
            store_at(dx, p1 + 16, end, mb, _mm512_permutex2var_ps(c2, hi, c3));
            if (W > 2 * OW)
                dx[p0 + W - 1] = dx[p1 + W - 1] = 0.0f; /* a column in no window */
        }
    } else {
        /* Several vectors per row, last to first: what the first input
         * row's last vector writes past the row, the second row's first
         * vector writes again after it. */
        for (int64_t oy = 0; oy < OH; oy++) {
            const int64_t p0 = 2 * oy * W, p1 = p0 + W;
            const float *dr = dy + oy * OW;
            const uint8_t *cr = code + oy * OW;
            for (int64_t ox = (OW - 1) / 16 * 16; ox >= 0; ox -= 16) {
                const int64_t n = OW - ox < 16 ? OW - ox : 16;
                const __mmask16 ma = lanes(2 * n), mb = lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
                const __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(lanes(n), dr + ox));
                const __m512i w = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lanes(n), cr + ox));
                const __mmask16 e1 = _mm512_cmpeq_epi32_mask(w, k1), e2 = _mm512_cmpeq_epi32_mask(w, k2),
                                e3 = _mm512_cmpeq_epi32_mask(w, k3);
                const __m512 c0 = _mm512_maskz_mov_ps((__mmask16)(lanes(n) & ~(e1 | e2 | e3)), v),
                             c1 = _mm512_maskz_mov_ps(e1, v), c2 = _mm512_maskz_mov_ps(e2, v),
                             c3 = _mm512_maskz_mov_ps(e3, v);
                store_at(dx, p0 + 2 * ox, end, ma, _mm512_permutex2var_ps(c0, lo, c1));
                if (n > 8)
                    store_at(dx, p0 + 2 * ox + 16, end, mb, _mm512_permutex2var_ps(c0, hi, c1));
                store_at(dx, p1 + 2 * ox, end, ma, _mm512_permutex2var_ps(c2, lo, c3));
                if (n > 8)
                    store_at(dx, p1 + 2 * ox + 16, end, mb, _mm512_permutex2var_ps(c2, hi, c3));
            }
            if (W > 2 * OW)
                dx[p0 + W - 1] = dx[p1 + W - 1] = 0.0f; /* a column in no window */
        }
    }
    for (int64_t i = 2 * OH * W; i < end; i += 16)
        _mm512_mask_storeu_ps(dx + i, lanes(end - i), _mm512_setzero_ps()); /* rows in no window */
}
