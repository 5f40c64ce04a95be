/* AVX-512 Winograd kernels (see conv_winograd.h and the transforms at the
 * top of conv_winograd.c): 16 channels per vector throughout; NCHW rows
 * enter and leave through 16x16 transposes. */
#include "../conv_winograd.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#define INLINE static inline __attribute__((always_inline))

/* ---- products: MR tiles x 32 (or 16) channels in registers ---- */
/* U (36 x the weights: 9.4 MB at 256 channels) is read once per task from
 * beyond L2, in order: the products prefetch it WINO_PF floats (32 rows of
 * 32 channels) ahead. 256 channels, 14 x 14, 8 images, one thread, with
 * the stores past the caches in k_weights: 8.0 -> 7.2 ms (fastest of 15),
 * 128 channels on 28 x 28 5.5 -> 5.2 ms. */
#define WINO_PF 1024
#define DEFINE_GEMM32(MR)                                                                          \
    static void gemm32_##MR(int64_t K, const float *v, int64_t ldv, const float *u, float *m,     \
                            int64_t ldm, int accumulate)                                           \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            _mm_prefetch((const char *)(u + k * 32 + WINO_PF), _MM_HINT_T0);                       \
            _mm_prefetch((const char *)(u + k * 32 + WINO_PF + 16), _MM_HINT_T0);                  \
            const __m512 u0 = _mm512_loadu_ps(u + k * 32), u1 = _mm512_loadu_ps(u + k * 32 + 16);   \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                const __m512 a = _mm512_set1_ps(v[r * ldv + k]);                                   \
                acc[r][0] = _mm512_fmadd_ps(a, u0, acc[r][0]);                                     \
                acc[r][1] = _mm512_fmadd_ps(a, u1, acc[r][1]);                                     \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            float *mr = m + r * ldm;                                                               \
            if (accumulate) {                                                                      \
                acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(mr), acc[r][0]);                         \
                acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(mr + 16), acc[r][1]);                    \
            }                                                                                      \
            _mm512_storeu_ps(mr, acc[r][0]);                                                       \
            _mm512_storeu_ps(mr + 16, acc[r][1]);                                                  \
        }                                                                                          \
    }

#define DEFINE_GEMM16(MR)                                                                          \
    static void gemm16_##MR(int64_t K, const float *v, int64_t ldv, const float *u, float *m,     \
                            int64_t ldm, int accumulate)                                           \
    {                                                                                              \
        __m512 acc[MR];                                                                            \
        UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m512 u0 = _mm512_loadu_ps(u + k * 16);                                         \
            UNROLL for (int r = 0; r < MR; r++) acc[r] =                                           \
                _mm512_fmadd_ps(_mm512_set1_ps(v[r * ldv + k]), u0, acc[r]);                       \
        }                                                                                          \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            if (accumulate)                                                                        \
                acc[r] = _mm512_add_ps(_mm512_loadu_ps(m + r * ldm), acc[r]);                      \
            _mm512_storeu_ps(m + r * ldm, acc[r]);                                                 \
        }                                                                                          \
    }

/* The weight gradient's products: MR out channels broadcast from a column
 * of a, 32 (or 16) in channels along the lanes. */
#define DEFINE_GEMMT32(MR)                                                                         \
    static void gemmt32_##MR(int64_t K, const float *a, int64_t lda, const float *b, float *m,    \
                             int64_t ldm, int accumulate)                                          \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m512 b0 = _mm512_loadu_ps(b + k * 32), b1 = _mm512_loadu_ps(b + k * 32 + 16);   \
            const float *ak = a + k * lda;                                                         \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                const __m512 av = _mm512_set1_ps(ak[r]);                                           \
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                    \
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                    \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            float *mr = m + r * ldm;                                                               \
            if (accumulate) {                                                                      \
                acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(mr), acc[r][0]);                         \
                acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(mr + 16), acc[r][1]);                    \
            }                                                                                      \
            _mm512_storeu_ps(mr, acc[r][0]);                                                       \
            _mm512_storeu_ps(mr + 16, acc[r][1]);                                                  \
        }                                                                                          \
    }

#define DEFINE_GEMMT16(MR)                                                                         \
    static void gemmt16_##MR(int64_t K, const float *a, int64_t lda, const float *b, float *m,    \
                             int64_t ldm, int accumulate)                                          \
    {                                                                                              \
        __m512 acc[MR];                                                                            \
        UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m512 b0 = _mm512_loadu_ps(b + k * 16);                                         \
            const float *ak = a + k * lda;                                                         \
            UNROLL for (int r = 0; r < MR; r++) acc[r] =                                           \
                _mm512_fmadd_ps(_mm512_set1_ps(ak[r]), b0, acc[r]);                                \
        }                                                                                          \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            if (accumulate)                                                                        \
                acc[r] = _mm512_add_ps(_mm512_loadu_ps(m + r * ldm), acc[r]);                      \
            _mm512_storeu_ps(m + r * ldm, acc[r]);                                                 \
        }                                                                                          \
    }

#define DEFINE_GEMMS(MR) DEFINE_GEMM32(MR) DEFINE_GEMM16(MR) DEFINE_GEMMT32(MR) DEFINE_GEMMT16(MR)
DEFINE_GEMMS(1)
DEFINE_GEMMS(2)
DEFINE_GEMMS(3)
DEFINE_GEMMS(4)
DEFINE_GEMMS(5)
DEFINE_GEMMS(6)
DEFINE_GEMMS(7)
DEFINE_GEMMS(8)
DEFINE_GEMMS(9)
DEFINE_GEMMS(10)
DEFINE_GEMMS(11)
DEFINE_GEMMS(12)

/* ---- 16x16 transpose: r[i] lane j becomes r[j] lane i ---- */
INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    UNROLL for (int i = 0; i < 8; i++)
    {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4i + e], 128-bit lane L: rows 4i..4i+3 of column 4L + e */
    UNROLL for (int i = 0; i < 4; i++)
    {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    UNROLL for (int e = 0; e < 4; e++)
    {
        __m512 ab_lo = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x44), ab_hi = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xEE);
        __m512 cd_lo = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x44);
        __m512 cd_hi = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xEE);
        t[e] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);
        t[4 + e] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xDD);
        t[8 + e] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xDD);
    }
    UNROLL for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Lanes [lo, hi) of 16. */
static inline __mmask16 lanes(int64_t lo, int64_t hi)
{
    if (lo < 0)
        lo = 0;
    if (hi > 16)
        hi = 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)(((1u << (hi - lo)) - 1) << lo);
}

/* ---- transforms on vectors ---- */
INLINE void bt6(const __m512 *d, __m512 *r)
{
    const __m512 c97 = _mm512_set1_ps(97.0f / 36.0f), c94 = _mm512_set1_ps(2.25f), c49 = _mm512_set1_ps(4.0f / 9.0f);
    const __m512 c23 = _mm512_set1_ps(2.0f / 3.0f), c32 = _mm512_set1_ps(1.5f);
    __m512 e1 = _mm512_fnmadd_ps(c94, d[2], d[4]), o1 = _mm512_fmsub_ps(c23, d[3], _mm512_mul_ps(c32, d[1]));
    __m512 e2 = _mm512_fnmadd_ps(c49, d[2], d[4]), o2 = _mm512_fmsub_ps(c32, d[3], _mm512_mul_ps(c23, d[1]));
    r[0] = _mm512_add_ps(_mm512_fnmadd_ps(c97, d[2], d[0]), d[4]);
    r[1] = _mm512_add_ps(e1, o1);
    r[2] = _mm512_sub_ps(e1, o1);
    r[3] = _mm512_add_ps(e2, o2);
    r[4] = _mm512_sub_ps(e2, o2);
    r[5] = _mm512_add_ps(_mm512_fnmadd_ps(c97, d[3], d[1]), d[5]);
}

INLINE void at6(__m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512 m4, __m512 m5, __m512 *y)
{
    __m512 s1 = _mm512_add_ps(m1, m2), d1 = _mm512_sub_ps(m1, m2);
    __m512 s2 = _mm512_add_ps(m3, m4), d2 = _mm512_sub_ps(m3, m4);
    y[0] = _mm512_add_ps(_mm512_add_ps(m0, s1), s2);
    y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f / 3.0f), d1, _mm512_mul_ps(_mm512_set1_ps(1.5f), d2));
    y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f / 9.0f), s1, _mm512_mul_ps(_mm512_set1_ps(2.25f), s2));
    y[3] = _mm512_fmadd_ps(_mm512_set1_ps(8.0f / 27.0f), d1, _mm512_fmadd_ps(_mm512_set1_ps(3.375f), d2, m5));
}

INLINE void g3(__m512d g0, __m512d g1, __m512d g2, __m512d *u)
{
    __m512d a = _mm512_fmadd_pd(_mm512_set1_pd(-81.0 / 130), g0, _mm512_mul_pd(_mm512_set1_pd(-18.0 / 65), g2));
    __m512d b = _mm512_mul_pd(_mm512_set1_pd(27.0 / 65), g1);
    __m512d a2 = _mm512_fmadd_pd(_mm512_set1_pd(8.0 / 65), g0, _mm512_mul_pd(_mm512_set1_pd(18.0 / 65), g2));
    __m512d b2 = _mm512_mul_pd(_mm512_set1_pd(12.0 / 65), g1);
    u[0] = g0;
    u[1] = _mm512_sub_pd(a, b);
    u[2] = _mm512_add_pd(a, b);
    u[3] = _mm512_add_pd(a2, b2);
    u[4] = _mm512_sub_pd(a2, b2);
    u[5] = g2;
}

/* dy's transform along one line: 4 values to 6. */
INLINE void a4(__m512 d0, __m512 d1, __m512 d2, __m512 d3, __m512 *z)
{
    const __m512 e1 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f / 9.0f), d2, d0);
    const __m512 o1 = _mm512_fmadd_ps(_mm512_set1_ps(2.0f / 3.0f), d1, _mm512_mul_ps(_mm512_set1_ps(8.0f / 27.0f), d3));
    const __m512 e2 = _mm512_fmadd_ps(_mm512_set1_ps(2.25f), d2, d0);
    const __m512 o2 = _mm512_fmadd_ps(_mm512_set1_ps(1.5f), d1, _mm512_mul_ps(_mm512_set1_ps(3.375f), d3));
    z[0] = d0;
    z[1] = _mm512_add_ps(e1, o1);
    z[2] = _mm512_sub_ps(e1, o1);
    z[3] = _mm512_add_ps(e2, o2);
    z[4] = _mm512_sub_ps(e2, o2);
    z[5] = d3;
}

/* The weight gradient's transform back, in double: 6 values to 3. */
INLINE void gt6(const __m512d *m, __m512d *r)
{
    const __m512d s1 = _mm512_add_pd(m[1], m[2]), s2 = _mm512_add_pd(m[3], m[4]);
    r[0] = _mm512_fmadd_pd(_mm512_set1_pd(8.0 / 65), s2, _mm512_fnmadd_pd(_mm512_set1_pd(81.0 / 130), s1, m[0]));
    r[1] = _mm512_fmadd_pd(_mm512_set1_pd(27.0 / 65), _mm512_sub_pd(m[2], m[1]),
                           _mm512_mul_pd(_mm512_set1_pd(12.0 / 65), _mm512_sub_pd(m[3], m[4])));
    r[2] = _mm512_fmadd_pd(_mm512_set1_pd(18.0 / 65), _mm512_sub_pd(s2, s1), m[5]);
}

static void k_dy_run(const float *dy, int64_t plane, int nch, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0,
                     int nt, float *buf, float *z, int64_t ldz, int64_t zs)
{
    const int ncols = 4 * nt;
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    /* the run's 4 rows as [column][channel] */
    for (int a = 0; a < 4; a++) {
        float *ba = buf + (size_t)a * bs * 16;
        const int64_t h = oh0 + a;
        if (h >= OH) {
            memset(ba, 0, sizeof(float) * 16 * (size_t)ncols);
            continue;
        }
        for (int c0 = 0; c0 < ncols; c0 += 16) {
            const int64_t ws = ow0 + c0;
            const __mmask16 mk = lanes(-ws, OW - ws);
            __m512 q[16];
            UNROLL for (int l = 0; l < 16; l++) q[l] = _mm512_setzero_ps();
            if (mk)
                for (int l = 0; l < nch; l++) {
                    const float *dl = dy + l * plane + h * OW + ws;
                    q[l] = _mm512_maskz_loadu_ps(mk, dl);
                    /* the next 16 channels' rows, as in k_in_run */
                    _mm_prefetch((const char *)(dl + 16 * plane), _MM_HINT_T0);
                    _mm_prefetch((const char *)(dl + 16 * plane + 15), _MM_HINT_T0);
                }
            transpose16(q);
            UNROLL for (int i = 0; i < 16; i++) _mm512_storeu_ps(ba + (c0 + i) * 16, q[i]);
        }
    }
    for (int i = 0; i < nt; i++) {
        __m512 d[4][4];
        UNROLL for (int a = 0; a < 4; a++)
            UNROLL for (int b = 0; b < 4; b++) d[a][b] = _mm512_loadu_ps(buf + ((size_t)a * bs + 4 * i + b) * 16);
        __m512 t[4][6];
        UNROLL for (int b = 0; b < 4; b++) a4(d[0][b], d[1][b], d[2][b], d[3][b], t[b]);
        float *zi = z + i * ldz;
        UNROLL for (int k = 0; k < 6; k++)
        {
            __m512 r[6];
            a4(t[0][k], t[1][k], t[2][k], t[3][k], r);
            UNROLL for (int c = 0; c < 6; c++) _mm512_storeu_ps(zi + (k * 6 + c) * zs, r[c]);
        }
    }
}

static void k_wout(const float *m, int64_t ms, int nl, float *dw)
{
    float loc[9][16];
    for (int h = 0; h < 2; h++) {
        __m512d t[3][6];
        UNROLL for (int c = 0; c < 6; c++)
        {
            __m512d col[6], r[3];
            UNROLL for (int k = 0; k < 6; k++) col[k] = _mm512_cvtps_pd(_mm256_loadu_ps(m + (k * 6 + c) * ms + 8 * h));
            gt6(col, r);
            UNROLL for (int a = 0; a < 3; a++) t[a][c] = r[a];
        }
        UNROLL for (int a = 0; a < 3; a++)
        {
            __m512d r[3];
            gt6(t[a], r);
            UNROLL for (int b = 0; b < 3; b++) _mm256_storeu_ps(loc[a * 3 + b] + 8 * h, _mm512_cvtpd_ps(r[b]));
        }
    }
    for (int l = 0; l < nl; l++)
        for (int i = 0; i < 9; i++)
            dw[l * 9 + i] += loc[i][l];
}

static void k_in_run(const float *x, int64_t plane, int nch, int64_t H, int64_t W, int64_t h0, int64_t w0, int nt,
                     float *buf, float *v, int64_t ldv, int64_t vs)
{
    const int ncols = 4 * nt + 2;
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    /* rows of the patch run as [column][channel] */
    for (int r = 0; r < 6; r++) {
        float *br = buf + (size_t)r * bs * 16;
        const int64_t h = h0 + r;
        if (h < 0 || h >= H) {
            memset(br, 0, sizeof(float) * 16 * (size_t)ncols);
            continue;
        }
        for (int c0 = 0; c0 < ncols; c0 += 16) {
            const int64_t ws = w0 + c0;
            const __mmask16 mk = lanes(-ws, W - ws);
            const int nc = ncols - c0 < 16 ? ncols - c0 : 16;
            if (!mk) { /* all padding (the 2 columns past a 14-wide row's 16) */
                memset(br + (size_t)c0 * 16, 0, sizeof(float) * 16 * (size_t)nc);
                continue;
            }
            __m512 q[16];
            UNROLL for (int l = 0; l < 16; l++) q[l] = _mm512_setzero_ps();
            for (int l = 0; l < nch; l++) {
                const float *xl = x + l * plane + h * W + ws;
                q[l] = _mm512_maskz_loadu_ps(mk, xl);
                /* The next 16 channels' rows, which the caller transforms
                 * next: 96 short rows at a time are too many streams for
                 * the hardware prefetchers. Prefetches never fault, past
                 * the tensor too. */
                _mm_prefetch((const char *)(xl + 16 * plane), _MM_HINT_T0);
                _mm_prefetch((const char *)(xl + 16 * plane + 15), _MM_HINT_T0);
            }
            transpose16(q);
            /* whole blocks: the row buffer has room for them */
            UNROLL for (int i = 0; i < 16; i++) _mm512_storeu_ps(br + (c0 + i) * 16, q[i]);
        }
    }
    /* down the columns */
    for (int c = 0; c < ncols; c++) {
        __m512 d[6], t[6];
        UNROLL for (int r = 0; r < 6; r++) d[r] = _mm512_loadu_ps(buf + ((size_t)r * bs + c) * 16);
        bt6(d, t);
        UNROLL for (int r = 0; r < 6; r++) _mm512_storeu_ps(buf + ((size_t)r * bs + c) * 16, t[r]);
    }
    /* along the rows of each tile */
    for (int i = 0; i < nt; i++) {
        float *vi = v + i * ldv;
        UNROLL for (int k = 0; k < 6; k++)
        {
            __m512 d[6], t[6];
            const float *bk = buf + ((size_t)k * bs + 4 * i) * 16;
            UNROLL for (int c = 0; c < 6; c++) d[c] = _mm512_loadu_ps(bk + c * 16);
            bt6(d, t);
            UNROLL for (int c = 0; c < 6; c++) _mm512_storeu_ps(vi + (k * 6 + c) * vs, t[c]);
        }
    }
}

static int k_out_run(const float *m, int64_t ldm, int64_t ms, int nt, const float *bias, int nch, float *y,
                     int64_t plane, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0, float *buf)
{
    const int ncols = 4 * nt;
    /* v - v is NaN exactly when v is NaN or infinite; the sums keep it */
    __m512 chk[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(lanes(0, nch), bias) : _mm512_setzero_ps();
    for (int i = 0; i < nt; i++) {
        const float *mi = m + i * ldm;
        __m512 t[6][4];
        UNROLL for (int k = 0; k < 6; k++)
        {
            const float *mk = mi + k * 6 * ms;
            at6(_mm512_loadu_ps(mk), _mm512_loadu_ps(mk + ms), _mm512_loadu_ps(mk + 2 * ms),
                _mm512_loadu_ps(mk + 3 * ms), _mm512_loadu_ps(mk + 4 * ms), _mm512_loadu_ps(mk + 5 * ms), t[k]);
        }
        UNROLL for (int b = 0; b < 4; b++)
        {
            __m512 o[4];
            at6(t[0][b], t[1][b], t[2][b], t[3][b], t[4][b], t[5][b], o);
            UNROLL for (int a = 0; a < 4; a++)
            {
                const __m512 v = _mm512_add_ps(o[a], bv);
                chk[a] = _mm512_add_ps(chk[a], _mm512_sub_ps(v, v));
                _mm512_storeu_ps(buf + ((size_t)a * bs + 4 * i + b) * 16, v);
            }
        }
    }
    for (int a = 0; a < 4 && oh0 + a < OH; a++) {
        const float *ba = buf + (size_t)a * bs * 16;
        float *ya = y + (oh0 + a) * OW + ow0;
        for (int c0 = 0; c0 < ncols; c0 += 16) {
            const __mmask16 mk = lanes(0, (ncols < OW - ow0 ? ncols : OW - ow0) - c0);
            __m512 q[16];
            UNROLL for (int i = 0; i < 16; i++) q[i] = _mm512_loadu_ps(ba + (c0 + i) * 16);
            transpose16(q);
            for (int l = 0; l < nch; l++) {
                float *yl = ya + l * plane + c0;
                _mm512_mask_storeu_ps(yl, mk, q[l]);
                /* The next 16 channels' rows, which the caller stores
                 * next, fetched for writing: the masked row stores had
                 * waited for their lines (conv2 of the main job forward,
                 * 1 thread: 4.00-4.13 -> 3.89-3.91 ms; prefetcht0 3.91-3.94).
                 * Every AVX-512 CPU has PREFETCHW; it never faults. */
                __asm__("prefetchw %0" ::"m"(yl[16 * plane]));
                __asm__("prefetchw %0" ::"m"(yl[16 * plane + 15]));
            }
        }
    }
    const __m512 c = _mm512_add_ps(_mm512_add_ps(chk[0], chk[1]), _mm512_add_ps(chk[2], chk[3]));
    return _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q) != 0;
}

/* Rows are transformed 8 at a time into a local block, then stored point by
 * point: storing each row's 36 points directly would write 36 lines one
 * point-stride apart, a multiple of 4 KiB, all in one cache set. */
#define WK 8
static void k_weights(const float *w, int64_t ls, int64_t ks, int flip, int nl, int64_t K, float *u, int64_t ldu,
                      int64_t us)
{
    float loc[36][WK][16];
    for (int64_t k0 = 0; k0 < K; k0 += WK) {
        const int kn = (int)(K - k0 < WK ? K - k0 : WK);
        for (int kk = 0; kk < kn; kk++) {
            /* the 16 filters' 9 taps as rows, turned to taps x lanes */
            const float *wk = w + (k0 + kk) * ks;
            __m512 q[16];
            UNROLL for (int l = 0; l < 16; l++) q[l] = _mm512_setzero_ps();
            for (int l = 0; l < nl; l++)
                q[l] = _mm512_maskz_loadu_ps(0x1FF, wk + l * ls);
            transpose16(q);
            for (int h = 0; h < 2; h++) {
                __m512d g[9], t[3][6], r[6];
                UNROLL for (int i = 0; i < 9; i++)
                {
                    const __m512 gi = q[flip ? 8 - i : i];
                    g[i] = _mm512_cvtps_pd(h ? _mm512_extractf32x8_ps(gi, 1) : _mm512_castps512_ps256(gi));
                }
                UNROLL for (int c = 0; c < 3; c++) g3(g[c], g[3 + c], g[6 + c], t[c]);
                UNROLL for (int i = 0; i < 6; i++)
                {
                    g3(t[0][i], t[1][i], t[2][i], r);
                    UNROLL for (int j = 0; j < 6; j++) _mm256_storeu_ps(loc[i * 6 + j][kk] + 8 * h, _mm512_cvtpd_ps(r[j]));
                }
            }
        }
        /* past the caches: U is read back much later, from memory at
         * large layers, and these stores then need no reads for ownership */
        for (int p = 0; p < 36; p++)
            for (int kk = 0; kk < kn; kk++)
                _mm512_stream_ps(u + p * us + (k0 + kk) * ldu, _mm512_loadu_ps(loc[p][kk]));
    }
    _mm_sfence();
}

const cnni_wino_kernels cnni_wino_kernels_avx512 = {
    {gemm32_1, gemm32_2, gemm32_3, gemm32_4, gemm32_5, gemm32_6, gemm32_7, gemm32_8, gemm32_9, gemm32_10, gemm32_11,
     gemm32_12},
    {gemm16_1, gemm16_2, gemm16_3, gemm16_4, gemm16_5, gemm16_6, gemm16_7, gemm16_8, gemm16_9, gemm16_10, gemm16_11,
     gemm16_12},
    {gemmt32_1, gemmt32_2, gemmt32_3, gemmt32_4, gemmt32_5, gemmt32_6, gemmt32_7, gemmt32_8, gemmt32_9, gemmt32_10,
     gemmt32_11, gemmt32_12},
    {gemmt16_1, gemmt16_2, gemmt16_3, gemmt16_4, gemmt16_5, gemmt16_6, gemmt16_7, gemmt16_8, gemmt16_9, gemmt16_10,
     gemmt16_11, gemmt16_12},
    k_in_run,
    k_out_run,
    k_weights,
    k_dy_run,
    k_wout};
