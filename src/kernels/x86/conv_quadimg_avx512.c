/* The input gradient by F(4,5) along the rows transposed, 16 images along
 * the lanes (see conv_quadimg.h). */
#include "../conv_quadimg.h"
#include "../conv_direct.h"

#include <immintrin.h>
#include <string.h>

#include "f45_avx512.h"
#include "transpose_avx512.h"

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

/* A NaN or an infinity among the stored values: each times 0 (NaN for
 * those, +-0 otherwise) ORed into one vector, which is then NaN in some
 * lane; one OR a vector, so no long chain of dependent operations. */
static inline __attribute__((always_inline)) __m512 note_finite(__m512 acc, __mmask16 m, __m512 v)
{
    return _mm512_or_ps(acc, _mm512_maskz_mul_ps(m, v, _mm512_setzero_ps()));
}
/* A row of up to 16 values: rows are stored in order within each plane,
 * so where a whole vector stays in the plane (whole), its lanes past the
 * row land on rows stored later and a plain store serves; masked stores,
 * one per row of each of 16 images, ran at a fraction of plain ones on
 * Zen 4. */
static inline __attribute__((always_inline)) void store_row(float *d, __mmask16 m, __m512 v, int whole)
{
    if (whole)
        _mm512_storeu_ps(d, v);
    else
        _mm512_mask_storeu_ps(d, m, v);
}

static inline int any_not_finite(__m512 acc) { return _mm512_cmp_ps_mask(acc, acc, _CMP_UNORD_Q) != 0; }

static inline __mmask16 first_lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* The backward of a sigmoid (tanh_ 0) or tanh: (g (1 - y)) y or
 * g (1 - y y), the activation kernels' operations (act_simd.h). */
static inline __m512 act_grad(int tanh_, __m512 g, __m512 y)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    return tanh_ ? _mm512_mul_ps(g, _mm512_sub_ps(one, _mm512_mul_ps(y, y)))
                 : _mm512_mul_ps(_mm512_mul_ps(g, _mm512_sub_ps(one, y)), y);
}

/* dy's columns x0 .. x0 + 15 of row i, channel o, image l (m: those in the
 * row), made from y and dp as the pooling's and the activation's backward
 * would write them: g = dp * 0.25 spread over each 2x2 window, then
 * act_grad; the same bits as dy_transform's columns. */
static inline __m512 made_dy(const cnni_quadimg_block *b, int64_t o, int64_t i, int l, int x0, __mmask16 m)
{
    const int64_t at = l * b->dy_img + (o * b->OH + i) * b->OW + x0;
    const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const int64_t PW = b->OW / 2, left = PW - x0 / 2;
    const float *dp = b->dp + l * b->dp_img + (o * (b->OH / 2) + i / 2) * PW + x0 / 2;
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(first_lanes(left < 8 ? (int)left : 8), dp),
                                   _mm512_set1_ps(0.25f));
    return act_grad(b->act_tanh, _mm512_permutexvar_ps(pairs, v), _mm512_maskz_loadu_ps(m, b->ay + at));
}

void cnni_quadimg_dy_rows_avx512(const cnni_quadimg_block *b, float *dy)
{
    const __mmask16 m = first_lanes((int)b->OW), m2 = first_lanes(b->OW > 16 ? (int)b->OW - 16 : 0);
    for (int l = 0; l < b->nb; l++)
        for (int64_t o = 0; o < b->Og; o++)
            for (int64_t i = 0; i < b->OH; i++) {
                float *d = dy + l * b->dy_img + (o * b->OH + i) * b->OW;
                _mm512_mask_storeu_ps(d, m, made_dy(b, o, i, l, 0, m));
                if (b->OW > 16)
                    _mm512_mask_storeu_ps(d + 16, m2, made_dy(b, o, i, l, 16, m2));
            }
}

/* Step 1: ady[o][i][q][j] = (A dy)[j] of quad q of dy row i, images along
 * the lanes: each row of 16 images transposed so that each column is a
 * vector, then
 *   A dy = (d0, d0 + d1 + d2 + d3, d0 - d1 + d2 - d3, d0 + 2d1 + 4d2 + 8d3,
 *           d0 - 2d1 + 4d2 - 8d3, d0 + d1/2 + d2/4 + d3/8,
 *           d0 - d1/2 + d2/4 - d3/8, d3). */
static void dy_transform(const cnni_quadimg_block *b, int nq, double *sums)
{
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c8 = _mm512_set1_ps(8.0f);
    const __m512 h2 = _mm512_set1_ps(0.5f), h4 = _mm512_set1_ps(0.25f), h8 = _mm512_set1_ps(0.125f);
    /* rows up to 32 wide: two transposes past 16 */
    const __mmask16 m = first_lanes((int)b->OW), m2 = first_lanes(b->OW > 16 ? (int)b->OW - 16 : 0);
    /* dy made from y and dp (b->ay set): y's rows are transposed as dy's
     * would be, and dp's (a row for two of y's) likewise, then each column
     * is the pooling's and the activation's backward of its images */
    const float *src = b->ay ? b->ay : b->dy;
    const int64_t PW = b->OW / 2;
    const __mmask16 md = first_lanes(b->ay ? (int)PW : 0);
    __m512 dpc[16];
    for (int64_t o = 0; o < b->Og; o++)
        for (int64_t i = 0; i < b->OH; i++) {
            __m512 rows[16], col[32];
            const float *r = src + (o * b->OH + i) * b->OW;
            if (b->ay && i % 2 == 0) {
                const float *d = b->dp + (o * (b->OH / 2) + i / 2) * PW;
                UNROLL for (int l = 0; l < 16; l++) rows[l] =
                    l < b->nb ? _mm512_maskz_loadu_ps(md, d + l * b->dp_img) : _mm512_setzero_ps();
                transpose16(rows, dpc);
            }
            UNROLL for (int l = 0; l < 16; l++) rows[l] =
                l < b->nb ? _mm512_maskz_loadu_ps(m, r + l * b->dy_img) : _mm512_setzero_ps();
            transpose16(rows, col);
            if (b->OW > 16) {
                UNROLL for (int l = 0; l < 16; l++) rows[l] =
                    l < b->nb ? _mm512_maskz_loadu_ps(m2, r + l * b->dy_img + 16) : _mm512_setzero_ps();
                transpose16(rows, col + 16);
            } else {
                UNROLL for (int x = 16; x < 32; x++) col[x] = _mm512_setzero_ps();
            }
            float *dst = b->ady + (o * b->OH + i) * nq * 8 * 16;
            /* the row's sum for db: the quads' sums d0 + d1 + d2 + d3 (A dy's
             * second value; the columns past the row are zeros) added in
             * quad order, not one column after another (a chain of up to
             * 31 dependent adds a row, an eighth of this step's time) */
            __m512 t = _mm512_setzero_ps();
            for (int q = 0; q < nq; q++) {
                /* made from y and dp here, in registers: dp * 0.25 for two
                 * columns each, then the activation's gradient (past the row
                 * y and dp are zeros, so these are too) */
                __m512 v[4];
                if (b->ay) {
                    const __m512 g0 = _mm512_mul_ps(dpc[2 * q], h4), g1 = _mm512_mul_ps(dpc[2 * q + 1], h4);
                    v[0] = act_grad(b->act_tanh, g0, col[4 * q]);
                    v[1] = act_grad(b->act_tanh, g0, col[4 * q + 1]);
                    v[2] = act_grad(b->act_tanh, g1, col[4 * q + 2]);
                    v[3] = act_grad(b->act_tanh, g1, col[4 * q + 3]);
                } else {
                    UNROLL for (int jj = 0; jj < 4; jj++) v[jj] = col[4 * q + jj];
                }
                const __m512 s02 = _mm512_add_ps(v[0], v[2]), s13 = _mm512_add_ps(v[1], v[3]);
                const __m512 e = _mm512_fmadd_ps(c4, v[2], v[0]), f = _mm512_fmadd_ps(c8, v[3], _mm512_mul_ps(c2, v[1]));
                const __m512 e2 = _mm512_fmadd_ps(h4, v[2], v[0]), f2 = _mm512_fmadd_ps(h8, v[3], _mm512_mul_ps(h2, v[1]));
                float *dq = dst + q * 8 * 16;
                _mm512_storeu_ps(dq, v[0]);
                const __m512 all = _mm512_add_ps(s02, s13);
                t = q ? _mm512_add_ps(t, all) : all;
                _mm512_storeu_ps(dq + 16, all);
                _mm512_storeu_ps(dq + 32, _mm512_sub_ps(s02, s13));
                _mm512_storeu_ps(dq + 48, _mm512_add_ps(e, f));
                _mm512_storeu_ps(dq + 64, _mm512_sub_ps(e, f));
                _mm512_storeu_ps(dq + 80, _mm512_add_ps(e2, f2));
                _mm512_storeu_ps(dq + 96, _mm512_sub_ps(e2, f2));
                _mm512_storeu_ps(dq + 112, v[3]);
            }
            /* each lane's row in float, then the lanes in double: summed in
             * float, db of 4,500 values drifted 4e-6 from the exact sum */
            if (sums)
                sums[o] += _mm512_reduce_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(t))) +
                           _mm512_reduce_add_pd(_mm512_cvtps_pd(
                               _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))));
        }
}

/* Step 2 for NC channels c0.. and 4 components jh*4..: m[c][j] = the sum
 * over o and kr in [kr0, kr1] of ady(o, R - kr, q, j) u(o, kr, j, c), in
 * that order. a: ady at (o 0, row R, q, jh*4); u: at (o 0, kr 0, jh*4, c0). */
#define DEFINE_TILE(NC)                                                                            \
    static void tile_##NC(const float *a, int64_t a_o, int64_t a_row, int64_t Og, int64_t kr0,     \
                          int64_t kr1, const float *u, int64_t u_o, int64_t u_kr, int64_t Cg,      \
                          float *m, int64_t m_c)                                                   \
    {                                                                                              \
        __m512 acc[NC][4];                                                                         \
        UNROLL for (int c = 0; c < NC; c++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 4; j++) acc[c][j] = _mm512_setzero_ps();                    \
        }                                                                                          \
        for (int64_t o = 0; o < Og; o++)                                                           \
            for (int64_t kr = kr0; kr <= kr1; kr++) {                                              \
                const float *ak = a + o * a_o - kr * a_row, *uk = u + o * u_o + kr * u_kr;         \
                __m512 v[4];                                                                       \
                UNROLL for (int j = 0; j < 4; j++) v[j] = _mm512_loadu_ps(ak + j * 16);            \
                UNROLL for (int c = 0; c < NC; c++)                                                \
                {                                                                                  \
                    UNROLL for (int j = 0; j < 4; j++) f45_fma_bcast(&acc[c][j], v[j], uk + j * Cg + c); \
                }                                                                                  \
            }                                                                                      \
        UNROLL for (int c = 0; c < NC; c++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 4; j++) _mm512_storeu_ps(m + c * m_c + j * 16, acc[c][j]);  \
        }                                                                                          \
    }

DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)

typedef void (*tile_fn)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t, int64_t,
                        int64_t, float *, int64_t);
static const tile_fn tiles[7] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

/* Step 3 for quad q: the 8 columns B M of each (channel, padded row), with
 * s_ab = M_a + M_b and t_ab = M_a - M_b:
 *   x0 = M0,                              x7 = M7,
 *   x1 = t12 + t34/2 + 2 t56 - M7,        x6 = s12 + s34 + s56 - M0,
 *   x2 = s12 + s34/4 + 4 s56 - 5.25 M0,   x5 = t12 + 2 t34 + t56/2 - 5.25 M7,
 *   x3 = 5.25 M7 - 4.25 t12 - 2.5 (t34 + t56),
 *   x4 = 5.25 M0 - 4.25 s12 - 1.25 s34 - 5 s56;
 * column 4q + i of the row gets x_i (the first quad writes its 8, later
 * ones add to the 4 they share with the quad before). */
static void out_transform(const cnni_quadimg_block *b, int64_t HP, int q)
{
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f);
    const __m512 h2 = _mm512_set1_ps(0.5f), h4 = _mm512_set1_ps(0.25f), c525 = _mm512_set1_ps(5.25f);
    const __m512 c425 = _mm512_set1_ps(4.25f), c25 = _mm512_set1_ps(2.5f), c125 = _mm512_set1_ps(1.25f);
    for (int64_t c = 0; c < b->Cg; c++)
        for (int64_t R = 0; R < HP; R++) {
            const float *mm = b->m + (c * HP + R) * 8 * 16;
            __m512 M[8];
            UNROLL for (int j = 0; j < 8; j++) M[j] = _mm512_loadu_ps(mm + j * 16);
            const __m512 s12 = _mm512_add_ps(M[1], M[2]), t12 = _mm512_sub_ps(M[1], M[2]);
            const __m512 s34 = _mm512_add_ps(M[3], M[4]), t34 = _mm512_sub_ps(M[3], M[4]);
            const __m512 s56 = _mm512_add_ps(M[5], M[6]), t56 = _mm512_sub_ps(M[5], M[6]);
            __m512 x[8];
            x[0] = M[0];
            x[1] = _mm512_sub_ps(_mm512_fmadd_ps(c2, t56, _mm512_fmadd_ps(h2, t34, t12)), M[7]);
            x[2] = _mm512_fnmadd_ps(c525, M[0], _mm512_fmadd_ps(c4, s56, _mm512_fmadd_ps(h4, s34, s12)));
            x[3] = _mm512_fnmadd_ps(c25, _mm512_add_ps(t34, t56), _mm512_fnmadd_ps(c425, t12, _mm512_mul_ps(c525, M[7])));
            x[4] = _mm512_fnmadd_ps(c5, s56, _mm512_fnmadd_ps(c125, s34, _mm512_fnmadd_ps(c425, s12, _mm512_mul_ps(c525, M[0]))));
            x[5] = _mm512_fnmadd_ps(c525, M[7], _mm512_fmadd_ps(h2, t56, _mm512_fmadd_ps(c2, t34, t12)));
            x[6] = _mm512_sub_ps(_mm512_add_ps(s12, _mm512_add_ps(s34, s56)), M[0]);
            x[7] = M[7];
            float *row = b->cols + ((c * HP + R) * 16 + 4 * q) * 16;
            UNROLL for (int i = 0; i < 8; i++)
            {
                if (q > 0 && i < 4)
                    _mm512_storeu_ps(row + i * 16, _mm512_add_ps(_mm512_loadu_ps(row + i * 16), x[i]));
                else
                    _mm512_storeu_ps(row + i * 16, x[i]);
            }
        }
}

int cnni_quadimg_data_block_avx512(const cnni_quadimg_block *b)
{
    const int nq = (int)((b->OW + 3) / 4), ncols = 4 * nq + 4;
    const int64_t HP = b->OH + b->KR - 1;
    if (!b->ady_ready)
        dy_transform(b, nq, NULL);
    const int64_t a_o = b->OH * nq * 8 * 16, a_row = nq * 8 * 16, u_kr = 8 * b->Cg, u_o = b->KR * u_kr;
    for (int q = 0; q < nq; q++) {
        for (int jh = 0; jh < 2; jh++)
            for (int64_t R = 0; R < HP; R++) {
                /* the kernel rows that reach padded row R: dy row R - kr exists */
                const int64_t kr0 = R - (b->OH - 1) > 0 ? R - (b->OH - 1) : 0, kr1 = R < b->KR - 1 ? R : b->KR - 1;
                const float *a = b->ady + R * a_row + (q * 8 + jh * 4) * 16;
                for (int64_t c0 = 0; c0 < b->Cg; c0 += 6) {
                    const int nc = b->Cg - c0 < 6 ? (int)(b->Cg - c0) : 6;
                    tiles[nc](a, a_o, a_row, b->Og, kr0, kr1, b->u + jh * 4 * b->Cg + c0, u_o, u_kr, b->Cg,
                              b->m + ((c0 * HP + R) * 8 + jh * 4) * 16, HP * 8 * 16);
                }
            }
        out_transform(b, HP, q);
    }
    /* Step 4: each row back to images, its inner columns stored */
    const __mmask16 keep = first_lanes((int)b->W);
    const __m512i shift = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32((int)b->p2));
    __m512 nf = _mm512_setzero_ps(); /* see note_finite */
    for (int64_t c = 0; c < b->Cg; c++)
        for (int64_t r = 0; r < b->H; r++) {
            const float *src = b->cols + (c * HP + r + b->p1) * 16 * 16;
            __m512 col[16], rows[16];
            UNROLL for (int x = 0; x < 16; x++) col[x] = x < ncols ? _mm512_loadu_ps(src + x * 16) : _mm512_setzero_ps();
            transpose16(col, rows);
            float *dst = b->dx + c * b->H * b->W + r * b->W;
            const int whole = r * b->W + 16 <= b->H * b->W; /* see store_row */
            for (int l = 0; l < b->nb; l++) {
                const __m512 v = b->p2 ? _mm512_permutexvar_ps(shift, rows[l]) : rows[l];
                store_row(dst + l * b->dx_img, keep, v, whole);
                nf = note_finite(nf, keep, v);
            }
        }
    return any_not_finite(nf);
}

/* ---- weight gradient ---- */

/* The input rows' transform, 16 images along the lanes:
 * bx[c][R][q][j] = (B^T x(c, padded row R, columns 4q .. 4q + 7))[j]; rows
 * and columns of the padding read as 0. Each image's row is first copied
 * to its place in a zeroed padded row (up to 32 wide). */
static void x_transform(const cnni_quadimg_block *b, int nq)
{
    const int64_t HP = b->OH + b->KR - 1, plane = b->H * b->W, WP = b->W + 2 * b->p2;
    /* Lane j of the padded row's vector h is x's column 16h + j - p2 (the
     * padded row is at most 32 wide): loaded in place through a mask, where
     * masked stores into a zeroed row and loads of it back took a third of
     * this step's time (the loads waited for the stores). */
    __mmask16 mh[2];
    for (int h = 0; h < 2; h++) {
        const int64_t lo = b->p2 - 16 * h, hi = b->p2 + b->W - 16 * h;
        const uint32_t below_hi = hi <= 0 ? 0 : hi >= 16 ? 0xFFFFu : (1u << hi) - 1;
        const uint32_t below_lo = lo <= 0 ? 0 : lo >= 16 ? 0xFFFFu : (1u << lo) - 1;
        mh[h] = (__mmask16)(below_hi & ~below_lo);
    }
    for (int64_t c = 0; c < b->Cg; c++)
        for (int64_t R = 0; R < HP; R++) {
            const int64_t r = R - b->p1;
            __m512 rows[16], v[32];
            if (r < 0 || r >= b->H) {
                UNROLL for (int i = 0; i < 32; i++) v[i] = _mm512_setzero_ps();
            } else {
                /* x's columns from -p2: only the masked lanes are read */
                const uintptr_t src = (uintptr_t)(b->x + c * plane + r * b->W) - (uintptr_t)b->p2 * sizeof(float);
                UNROLL for (int l = 0; l < 16; l++) rows[l] =
                    l < b->nb ? _mm512_maskz_loadu_ps(mh[0], (const float *)(src + (uintptr_t)(l * b->x_img) * sizeof(float)))
                              : _mm512_setzero_ps();
                transpose16(rows, v);
                if (WP > 16) {
                    UNROLL for (int l = 0; l < 16; l++) rows[l] =
                        l < b->nb ? _mm512_maskz_loadu_ps(
                                        mh[1], (const float *)(src + (uintptr_t)(l * b->x_img + 16) * sizeof(float)))
                                  : _mm512_setzero_ps();
                    transpose16(rows, v + 16);
                } else {
                    UNROLL for (int i = 16; i < 32; i++) v[i] = _mm512_setzero_ps();
                }
            }
            float *db = b->bx + (c * HP + R) * nq * 8 * 16;
            for (int q = 0; q < nq; q++)
                f45_input(v + 4 * q, db + q * 8 * 16, 16);
        }
}

/* The lane sums of 24 vectors in a tree: pairs of vectors, then of pairs,
 * then of 128-bit chunks (69 instructions, against 24 full reductions). */
static inline __attribute__((always_inline)) void sums24(const __m512 *v, float *out)
{
    __m512 s[12], t[6];
    UNROLL for (int k = 0; k < 12; k++) s[k] =
        _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
    /* t[m], chunk c, lane r: chunk c's sum of v[4m + r] */
    UNROLL for (int m = 0; m < 6; m++) t[m] =
        _mm512_add_ps(_mm512_shuffle_ps(s[2 * m], s[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                      _mm512_shuffle_ps(s[2 * m], s[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    UNROLL for (int p = 0; p < 3; p++)
    {
        const __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * p], t[2 * p + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_f32x4(t[2 * p], t[2 * p + 1], _MM_SHUFFLE(3, 1, 3, 1)));
        /* chunk 0: the sums of v[8p .. 8p + 3], chunk 2: of v[8p + 4 .. 8p + 7] */
        const __m512 w = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
        float l[16];
        _mm512_storeu_ps(l, w);
        UNROLL for (int r = 0; r < 4; r++)
        {
            out[8 * p + r] = l[r];
            out[8 * p + 4 + r] = l[8 + r];
        }
    }
}

/* part[o][c][kr][j] for NO channels o0.. and NC channels c0.., one kernel
 * row and component: the sum over rows i and quads q of ady(o, i, q, j)
 * bx(c, i + kr, q, j), every image in its lane, then the lanes summed.
 * a: ady at (o0, row 0, quad 0, j); x: bx at (c0, row kr, quad 0, j). */
#define DEFINE_WTILE(NO, NC)                                                                       \
    static void wtile_##NO##_##NC(const float *a, int64_t a_o, const float *x, int64_t x_c, int64_t rows, \
                                  int64_t nq, double *part, int64_t p_o, int64_t p_c)              \
    {                                                                                              \
        __m512 acc[24];                                                                            \
        UNROLL for (int k = 0; k < 24; k++) acc[k] = _mm512_setzero_ps();                          \
        for (int64_t i = 0; i < rows; i++)                                                         \
            for (int64_t q = 0; q < nq; q++) {                                                     \
                const int64_t at = (i * nq + q) * 8 * 16;                                          \
                __m512 av[NO], xv[NC];                                                             \
                UNROLL for (int o = 0; o < NO; o++) av[o] = _mm512_loadu_ps(a + o * a_o + at);     \
                UNROLL for (int c = 0; c < NC; c++) xv[c] = _mm512_loadu_ps(x + c * x_c + at);     \
                UNROLL for (int o = 0; o < NO; o++)                                                \
                {                                                                                  \
                    UNROLL for (int c = 0; c < NC; c++) acc[o * 6 + c] = _mm512_fmadd_ps(av[o], xv[c], acc[o * 6 + c]); \
                }                                                                                  \
            }                                                                                      \
        float s[24];                                                                               \
        sums24(acc, s);                                                                            \
        UNROLL for (int o = 0; o < NO; o++)                                                        \
        {                                                                                          \
            UNROLL for (int c = 0; c < NC; c++) part[o * p_o + c * p_c] = (double)s[o * 6 + c];    \
        }                                                                                          \
    }

#define DEFINE_WTILES(NO)                                                                          \
    DEFINE_WTILE(NO, 1) DEFINE_WTILE(NO, 2) DEFINE_WTILE(NO, 3) DEFINE_WTILE(NO, 4) DEFINE_WTILE(NO, 5) \
    DEFINE_WTILE(NO, 6)
DEFINE_WTILES(1)
DEFINE_WTILES(2)
DEFINE_WTILES(3)
DEFINE_WTILES(4)

/* With one or two channels c the tiles run over kernel rows instead:
 * part[o][c][kr][j] for NO channels o0.. and NK kernel rows kr0.. of one
 * c. a: ady at (o0, row 0, quad 0, j); x: bx at (c, row kr0, quad 0, j). */
#define DEFINE_KTILE(NO, NK)                                                                       \
    static void ktile_##NO##_##NK(const float *a, int64_t a_o, const float *x, int64_t x_row, int64_t rows, \
                                  int64_t nq, double *part, int64_t p_o)                           \
    {                                                                                              \
        __m512 acc[24];                                                                            \
        UNROLL for (int k = 0; k < 24; k++) acc[k] = _mm512_setzero_ps();                          \
        for (int64_t i = 0; i < rows; i++)                                                         \
            for (int64_t q = 0; q < nq; q++) {                                                     \
                const int64_t at = (i * nq + q) * 8 * 16;                                          \
                __m512 av[NO];                                                                     \
                UNROLL for (int o = 0; o < NO; o++) av[o] = _mm512_loadu_ps(a + o * a_o + at);     \
                UNROLL for (int k = 0; k < NK; k++)                                                \
                {                                                                                  \
                    const __m512 xv = _mm512_loadu_ps(x + k * x_row + at);                         \
                    UNROLL for (int o = 0; o < NO; o++) acc[o * 5 + k] = _mm512_fmadd_ps(av[o], xv, acc[o * 5 + k]); \
                }                                                                                  \
            }                                                                                      \
        float s[24];                                                                               \
        sums24(acc, s);                                                                            \
        UNROLL for (int o = 0; o < NO; o++)                                                        \
        {                                                                                          \
            UNROLL for (int k = 0; k < NK; k++) part[o * p_o + k * 8] = (double)s[o * 5 + k];      \
        }                                                                                          \
    }

#define DEFINE_KTILES(NO)                                                                          \
    DEFINE_KTILE(NO, 1) DEFINE_KTILE(NO, 2) DEFINE_KTILE(NO, 3) DEFINE_KTILE(NO, 4) DEFINE_KTILE(NO, 5)
DEFINE_KTILES(1)
DEFINE_KTILES(2)
DEFINE_KTILES(3)

typedef void (*ktile_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, double *, int64_t);
#define KTILE_ROW(NO) {ktile_##NO##_1, ktile_##NO##_2, ktile_##NO##_3, ktile_##NO##_4, ktile_##NO##_5}
static const ktile_fn ktiles[3][5] = {KTILE_ROW(1), KTILE_ROW(2), KTILE_ROW(3)};

typedef void (*wtile_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, double *, int64_t,
                         int64_t);
#define WTILE_ROW(NO) {wtile_##NO##_1, wtile_##NO##_2, wtile_##NO##_3, wtile_##NO##_4, wtile_##NO##_5, wtile_##NO##_6}
static const wtile_fn wtiles[4][6] = {WTILE_ROW(1), WTILE_ROW(2), WTILE_ROW(3), WTILE_ROW(4)};

int cnni_quadimg_weight_block_avx512(const cnni_quadimg_block *b)
{
    const int nq = (int)((b->OW + 3) / 4);
    const int64_t HP = b->OH + b->KR - 1, K8 = b->KR * 8;
    for (int64_t o = 0; o < b->Og; o++)
        b->dbpart[o] = 0;
    dy_transform(b, nq, b->dbpart);
    x_transform(b, nq);
    const int64_t a_o = b->OH * nq * 8 * 16, x_c = HP * nq * 8 * 16, x_row = nq * 8 * 16;
    if (b->Cg < 3) /* tiles over (o, kr): few products per loaded vector otherwise */
        for (int j = 0; j < 8; j++)
            for (int64_t c = 0; c < b->Cg; c++)
                for (int64_t o0 = 0; o0 < b->Og; o0 += 3) {
                    const int no = b->Og - o0 < 3 ? (int)(b->Og - o0) : 3;
                    for (int64_t k0 = 0; k0 < b->KR; k0 += 5) {
                        const int nk = b->KR - k0 < 5 ? (int)(b->KR - k0) : 5;
                        ktiles[no - 1][nk - 1](b->ady + o0 * a_o + j * 16, a_o, b->bx + c * x_c + k0 * x_row + j * 16,
                                               x_row, b->OH, nq, b->part + (o0 * b->Cg + c) * K8 + k0 * 8 + j,
                                               b->Cg * K8);
                    }
                }
    for (int64_t kr = 0; kr < b->KR && b->Cg >= 3; kr++)
        for (int j = 0; j < 8; j++)
            for (int64_t o0 = 0; o0 < b->Og; o0 += 4) {
                const int no = b->Og - o0 < 4 ? (int)(b->Og - o0) : 4;
                for (int64_t c0 = 0; c0 < b->Cg; c0 += 6) {
                    const int nc = b->Cg - c0 < 6 ? (int)(b->Cg - c0) : 6;
                    wtiles[no - 1][nc - 1](b->ady + o0 * a_o + j * 16, a_o, b->bx + c0 * x_c + kr * x_row + j * 16, x_c,
                                           b->OH, nq, b->part + (o0 * b->Cg + c0) * K8 + kr * 8 + j, b->Cg * K8, K8);
                }
            }
    /* a NaN or an infinity in any sum */
    int bad = 0;
    for (int64_t i = 0; i < b->Og * b->Cg * K8; i++)
        bad |= !(b->part[i] - b->part[i] == 0);
    for (int64_t o = 0; o < b->Og; o++)
        bad |= !(b->dbpart[o] - b->dbpart[o] == 0);
    return bad;
}

void cnni_quadimg_g_transpose_avx512(int64_t nk, const double *m, double *out)
{
    /* the 5 values of each k on the lanes: G's rows as vectors, m's values
     * broadcast (the portable loop, one value at a time, took a seventh of
     * LeNet-5's conv2 weight-gradient step outside the products) */
    __m512d g[8];
    for (int j = 0; j < 8; j++)
        g[j] = _mm512_maskz_loadu_pd(0x1F, cnni_f45_weight[j]);
    for (int64_t k = 0; k < nk; k++) {
        __m512d v = _mm512_setzero_pd();
        UNROLL for (int j = 0; j < 8; j++) v = _mm512_add_pd(v, _mm512_mul_pd(g[j], _mm512_set1_pd(m[k * 8 + j])));
        _mm512_mask_storeu_pd(out + k * 5, 0x1F, v);
    }
}

void cnni_quadimg_g_rows_avx512(int64_t n, const float *w, float *gw)
{
    /* the 8 values of a row on the lanes: G's columns as vectors (one
     * value at a time, the packings took a tenth of LeNet-5's conv2
     * gradient step outside the products) */
    double col[5][8];
    for (int t = 0; t < 5; t++)
        for (int j = 0; j < 8; j++)
            col[t][j] = cnni_f45_weight[j][t];
    __m512d gc[5];
    for (int t = 0; t < 5; t++)
        gc[t] = _mm512_loadu_pd(col[t]);
    for (int64_t r = 0; r < n; r++) {
        const float *wt = w + r * 5;
        __m512d v = _mm512_mul_pd(gc[0], _mm512_set1_pd(wt[0]));
        UNROLL for (int t = 1; t < 5; t++) v = _mm512_add_pd(v, _mm512_mul_pd(gc[t], _mm512_set1_pd(wt[t])));
        _mm256_storeu_ps(gw + r * 8, _mm512_cvtpd_ps(v));
    }
}

/* ---- forward (few input channels) ---- */

/* M[o][jh*4 + jj] for NO channels o of one quad, one half of the
 * components: the sum over c and kr of bx(c, i + kr, q, j) u(c, kr, j, o).
 * x: bx at (c 0, row i, quad q, jh*4); u: the forward's weights at (c 0,
 * kr 0, jh, o0), [c][kr][jh][o][jj], so the 4 x NO broadcasts of a (c, kr)
 * are one block at fixed offsets (with 24 addresses apart the compiler
 * ran out of registers for them). */
#define DEFINE_FTILE(NO)                                                                           \
    static void ftile_##NO(const float *x, int64_t x_c, int64_t x_row, int64_t Cg, int64_t KR, const float *u, \
                           int64_t u_ck, float *m)                                                 \
    {                                                                                              \
        __m512 acc[NO][4];                                                                         \
        UNROLL for (int o = 0; o < NO; o++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 4; j++) acc[o][j] = _mm512_setzero_ps();                    \
        }                                                                                          \
        for (int64_t c = 0; c < Cg; c++)                                                           \
            for (int64_t kr = 0; kr < KR; kr++) {                                                  \
                const float *xk = x + c * x_c + kr * x_row, *uk = u + (c * KR + kr) * u_ck;        \
                __m512 v[4];                                                                       \
                UNROLL for (int j = 0; j < 4; j++) v[j] = _mm512_loadu_ps(xk + j * 16);            \
                UNROLL for (int o = 0; o < NO; o++)                                                \
                {                                                                                  \
                    UNROLL for (int j = 0; j < 4; j++) f45_fma_bcast(&acc[o][j], v[j], uk + o * 4 + j); \
                }                                                                                  \
            }                                                                                      \
        UNROLL for (int o = 0; o < NO; o++)                                                        \
        {                                                                                          \
            UNROLL for (int j = 0; j < 4; j++) _mm512_storeu_ps(m + (o * 8 + j) * 16, acc[o][j]);  \
        }                                                                                          \
    }

DEFINE_FTILE(1)
DEFINE_FTILE(2)
DEFINE_FTILE(3)
DEFINE_FTILE(4)
DEFINE_FTILE(5)
DEFINE_FTILE(6)

typedef void (*ftile_fn)(const float *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t, float *);
static const ftile_fn ftiles[7] = {NULL, ftile_1, ftile_2, ftile_3, ftile_4, ftile_5, ftile_6};

int cnni_quadimg_forward_block_avx512(const cnni_quadimg_block *b)
{
    const int nq = (int)((b->OW + 3) / 4);
    const int64_t HP = b->OH + b->KR - 1, x_c = HP * nq * 8 * 16, x_row = nq * 8 * 16, u_ck = 2 * b->Og * 4;
    x_transform(b, nq);
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c8 = _mm512_set1_ps(8.0f);
    const __m512 h2 = _mm512_set1_ps(0.5f), h4 = _mm512_set1_ps(0.25f), h8 = _mm512_set1_ps(0.125f);
    const __mmask16 m1 = first_lanes((int)b->OW), m2 = first_lanes(b->OW > 16 ? (int)b->OW - 16 : 0);
    __m512 nf = _mm512_setzero_ps(); /* see note_finite */
    float mq[6 * 8 * 16] __attribute__((aligned(64)));
    for (int64_t o0 = 0; o0 < b->Og; o0 += 6) {
        const int no = b->Og - o0 < 6 ? (int)(b->Og - o0) : 6;
        for (int64_t i = 0; i < b->OH; i++) {
            __m512 yv[6][32]; /* each channel's row: columns over the images */
            for (int q = 0; q < nq; q++) {
                for (int jh = 0; jh < 2; jh++)
                    ftiles[no](b->bx + (i * nq + q) * 8 * 16 + jh * 4 * 16, x_c, x_row, b->Cg, b->KR,
                               b->u + jh * b->Og * 4 + o0 * 4, u_ck, mq + jh * 4 * 16);
                for (int o = 0; o < no; o++) {
                    const float *mo = mq + o * 8 * 16;
                    __m512 M[8];
                    UNROLL for (int j = 0; j < 8; j++) M[j] = _mm512_load_ps(mo + j * 16);
                    const __m512 s12 = _mm512_add_ps(M[1], M[2]), t12 = _mm512_sub_ps(M[1], M[2]);
                    const __m512 s34 = _mm512_add_ps(M[3], M[4]), t34 = _mm512_sub_ps(M[3], M[4]);
                    const __m512 s56 = _mm512_add_ps(M[5], M[6]), t56 = _mm512_sub_ps(M[5], M[6]);
                    const __m512 bv = b->bias ? _mm512_set1_ps(b->bias[o0 + o]) : _mm512_setzero_ps();
                    yv[o][4 * q] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(M[0], s12), _mm512_add_ps(s34, s56)), bv);
                    yv[o][4 * q + 1] = _mm512_add_ps(_mm512_fmadd_ps(c2, t34, _mm512_fmadd_ps(h2, t56, t12)), bv);
                    yv[o][4 * q + 2] = _mm512_add_ps(_mm512_fmadd_ps(c4, s34, _mm512_fmadd_ps(h4, s56, s12)), bv);
                    yv[o][4 * q + 3] =
                        _mm512_add_ps(_mm512_add_ps(_mm512_fmadd_ps(c8, t34, _mm512_fmadd_ps(h8, t56, t12)), M[7]), bv);
                }
            }
            /* back to image rows */
            for (int o = 0; o < no; o++) {
                for (int x = 4 * nq; x < 32; x++)
                    yv[o][x] = _mm512_setzero_ps();
                __m512 rows[16];
                float *dst = b->y + (o0 + o) * b->OH * b->OW + i * b->OW;
                transpose16(yv[o], rows);
                const int whole = i * b->OW + 16 <= b->OH * b->OW, whole2 = i * b->OW + 32 <= b->OH * b->OW;
                for (int l = 0; l < b->nb; l++) {
                    store_row(dst + l * b->y_img, m1, rows[l], whole);
                    nf = note_finite(nf, m1, rows[l]);
                }
                if (b->OW > 16) {
                    transpose16(yv[o] + 16, rows);
                    for (int l = 0; l < b->nb; l++) {
                        store_row(dst + l * b->y_img + 16, m2, rows[l], whole2);
                        nf = note_finite(nf, m2, rows[l]);
                    }
                }
            }
        }
    }
    return any_not_finite(nf);
}
