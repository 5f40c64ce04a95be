/* AVX2 + FMA Winograd kernels (see conv_winograd.h and the transforms at
 * the top of conv_winograd.c): the AVX-512 kernels' algorithm with each
 * 16-channel vector held as two 8-lane halves (v16 below), NCHW rows
 * entering and leaving through 8x8 transposes, and the products in register
 * tiles of up to 6 tiles x 16 channels (12 accumulators of the 16 ymm
 * registers); the weights' transforms in double, 4 lanes at a time. */
#include "../conv_winograd.h"

#include <immintrin.h>
#include <string.h>

#include "lanes_avx2.h"

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#define INLINE static inline __attribute__((always_inline))

/* ---- products ---- */

/* m[r*ldm + j] (=, or +=) sum_k v[r*ldv + k] * u[k*ldu + j], r < MR (<= 6), j < 16. */
#define DEFINE_MICRO(MR)                                                                           \
    static void micro_##MR(int64_t K, const float *v, int64_t ldv, const float *u, int64_t ldu,    \
                           float *m, int64_t ldm, int accumulate)                                  \
    {                                                                                              \
        __m256 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            _mm_prefetch((const char *)(u + k * ldu + 1024), _MM_HINT_T0);                         \
            const __m256 u0 = _mm256_loadu_ps(u + k * ldu), u1 = _mm256_loadu_ps(u + k * ldu + 8);  \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                const __m256 a = _mm256_broadcast_ss(v + r * ldv + k);                             \
                acc[r][0] = _mm256_fmadd_ps(a, u0, acc[r][0]);                                     \
                acc[r][1] = _mm256_fmadd_ps(a, u1, acc[r][1]);                                     \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            float *mr = m + r * ldm;                                                               \
            if (accumulate) {                                                                      \
                acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(mr), acc[r][0]);                         \
                acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(mr + 8), acc[r][1]);                     \
            }                                                                                      \
            _mm256_storeu_ps(mr, acc[r][0]);                                                       \
            _mm256_storeu_ps(mr + 8, acc[r][1]);                                                   \
        }                                                                                          \
    }

/* The weight gradient's: m[r*ldm + j] (=, or +=) sum_k a[k*lda + r] * b[k*ldb + j]. */
#define DEFINE_MICROT(MR)                                                                          \
    static void microt_##MR(int64_t K, const float *a, int64_t lda, const float *b, int64_t ldb,   \
                            float *m, int64_t ldm, int accumulate)                                 \
    {                                                                                              \
        __m256 acc[MR][2];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();           \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);  \
            const float *ak = a + k * lda;                                                         \
            UNROLL for (int r = 0; r < MR; r++)                                                    \
            {                                                                                      \
                const __m256 av = _mm256_broadcast_ss(ak + r);                                     \
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);                                    \
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);                                    \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
        {                                                                                          \
            float *mr = m + r * ldm;                                                               \
            if (accumulate) {                                                                      \
                acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(mr), acc[r][0]);                         \
                acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(mr + 8), acc[r][1]);                     \
            }                                                                                      \
            _mm256_storeu_ps(mr, acc[r][0]);                                                       \
            _mm256_storeu_ps(mr + 8, acc[r][1]);                                                   \
        }                                                                                          \
    }

DEFINE_MICRO(1)
DEFINE_MICRO(2)
DEFINE_MICRO(3)
DEFINE_MICRO(4)
DEFINE_MICRO(5)
DEFINE_MICRO(6)
DEFINE_MICROT(1)
DEFINE_MICROT(2)
DEFINE_MICROT(3)
DEFINE_MICROT(4)
DEFINE_MICROT(5)
DEFINE_MICROT(6)

typedef void (*micro_fn)(int64_t K, const float *v, int64_t ldv, const float *u, int64_t ldu, float *m,
                         int64_t ldm, int accumulate);
static const micro_fn micros[6] = {micro_1, micro_2, micro_3, micro_4, micro_5, micro_6};
static const micro_fn microts[6] = {microt_1, microt_2, microt_3, microt_4, microt_5, microt_6};

/* mr rows x nr (16 or 32) channels as blocks of up to 6 rows x 16. Each
 * block's sums run over k in the same order as the AVX-512 kernel's. */
INLINE void products(const micro_fn *fns, int nr, int mr, int64_t K, const float *v, int64_t rstride, int64_t kstride,
                     const float *u, float *m, int64_t ldm, int accumulate)
{
    for (int r0 = 0; r0 < mr; r0 += 6) {
        const int rows = mr - r0 < 6 ? mr - r0 : 6;
        for (int j0 = 0; j0 < nr; j0 += 16)
            fns[rows - 1](K, v + r0 * rstride, kstride, u + j0, nr, m + r0 * ldm + j0, ldm, accumulate);
    }
}

#define DEFINE_GEMMS(MR)                                                                           \
    static void gemm32_##MR(int64_t K, const float *v, int64_t ldv, const float *u, float *m,     \
                            int64_t ldm, int accumulate)                                           \
    {                                                                                              \
        products(micros, 32, MR, K, v, ldv, ldv, u, m, ldm, accumulate);                           \
    }                                                                                              \
    static void gemm16_##MR(int64_t K, const float *v, int64_t ldv, const float *u, float *m,     \
                            int64_t ldm, int accumulate)                                           \
    {                                                                                              \
        products(micros, 16, MR, K, v, ldv, ldv, u, m, ldm, accumulate);                           \
    }                                                                                              \
    static void gemmt32_##MR(int64_t K, const float *a, int64_t lda, const float *b, float *m,    \
                             int64_t ldm, int accumulate)                                          \
    {                                                                                              \
        products(microts, 32, MR, K, a, 1, lda, b, m, ldm, accumulate);                            \
    }                                                                                              \
    static void gemmt16_##MR(int64_t K, const float *a, int64_t lda, const float *b, float *m,    \
                             int64_t ldm, int accumulate)                                          \
    {                                                                                              \
        products(microts, 16, MR, K, a, 1, lda, b, m, ldm, accumulate);                            \
    }
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

/* ---- 16 channels as two halves ---- */
typedef struct {
    __m256 lo, hi;
} v16;

INLINE v16 ld16(const float *p) { return (v16){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
INLINE void st16(float *p, v16 a)
{
    _mm256_storeu_ps(p, a.lo);
    _mm256_storeu_ps(p + 8, a.hi);
}
INLINE v16 set16(float c) { return (v16){_mm256_set1_ps(c), _mm256_set1_ps(c)}; }
INLINE v16 add16(v16 a, v16 b) { return (v16){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
INLINE v16 sub16(v16 a, v16 b) { return (v16){_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
INLINE v16 mul16(v16 a, v16 b) { return (v16){_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
/* a b + c, c - a b, a b - c */
INLINE v16 fmadd16(v16 a, v16 b, v16 c) { return (v16){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
INLINE v16 fnmadd16(v16 a, v16 b, v16 c)
{
    return (v16){_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)};
}
INLINE v16 fmsub16(v16 a, v16 b, v16 c) { return (v16){_mm256_fmsub_ps(a.lo, b.lo, c.lo), _mm256_fmsub_ps(a.hi, b.hi, c.hi)}; }

/* ---- transforms on vectors (the AVX-512 kernels' formulas) ---- */
INLINE void bt6(const v16 *d, v16 *r)
{
    const v16 c97 = set16(97.0f / 36.0f), c94 = set16(2.25f), c49 = set16(4.0f / 9.0f);
    const v16 c23 = set16(2.0f / 3.0f), c32 = set16(1.5f);
    v16 e1 = fnmadd16(c94, d[2], d[4]), o1 = fmsub16(c23, d[3], mul16(c32, d[1]));
    v16 e2 = fnmadd16(c49, d[2], d[4]), o2 = fmsub16(c32, d[3], mul16(c23, d[1]));
    r[0] = add16(fnmadd16(c97, d[2], d[0]), d[4]);
    r[1] = add16(e1, o1);
    r[2] = sub16(e1, o1);
    r[3] = add16(e2, o2);
    r[4] = sub16(e2, o2);
    r[5] = add16(fnmadd16(c97, d[3], d[1]), d[5]);
}

INLINE void at6(v16 m0, v16 m1, v16 m2, v16 m3, v16 m4, v16 m5, v16 *y)
{
    v16 s1 = add16(m1, m2), d1 = sub16(m1, m2);
    v16 s2 = add16(m3, m4), d2 = sub16(m3, m4);
    y[0] = add16(add16(m0, s1), s2);
    y[1] = fmadd16(set16(2.0f / 3.0f), d1, mul16(set16(1.5f), d2));
    y[2] = fmadd16(set16(4.0f / 9.0f), s1, mul16(set16(2.25f), s2));
    y[3] = fmadd16(set16(8.0f / 27.0f), d1, fmadd16(set16(3.375f), d2, m5));
}

/* dy's transform along one line: 4 values to 6. */
INLINE void a4(v16 d0, v16 d1, v16 d2, v16 d3, v16 *z)
{
    const v16 e1 = fmadd16(set16(4.0f / 9.0f), d2, d0);
    const v16 o1 = fmadd16(set16(2.0f / 3.0f), d1, mul16(set16(8.0f / 27.0f), d3));
    const v16 e2 = fmadd16(set16(2.25f), d2, d0);
    const v16 o2 = fmadd16(set16(1.5f), d1, mul16(set16(3.375f), d3));
    z[0] = d0;
    z[1] = add16(e1, o1);
    z[2] = sub16(e1, o1);
    z[3] = add16(e2, o2);
    z[4] = sub16(e2, o2);
    z[5] = d3;
}

/* ---- NCHW rows <-> [column][16 channels] ---- */

/* A load mask for lanes [lo, hi) of 8. */
INLINE __m256i lanes8(int64_t lo, int64_t hi)
{
    if (lo < 0)
        lo = 0;
    if (hi > 8)
        hi = 8;
    if (hi < lo)
        hi = lo;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(iota, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), iota));
}

/* Columns [w, w + ncols) of row `row` of the nch planes at src (plane
 * floats apart, `width` wide; zero outside [0, width) and past nch) to
 * dst[column][16 channels]. */
static void gather_row(const float *src, int64_t plane, int nch, int64_t width, int64_t row, int64_t w, int ncols,
                       float *dst)
{
    for (int c0 = 0; c0 < ncols; c0 += 8) {
        const int64_t ws = w + c0;
        /* masked loads only at the edges: they cost more than plain ones */
        const int inside = ws >= 0 && ws + 8 <= width;
        const __m256i mk = lanes8(-ws, width - ws);
        const int any = inside || !_mm256_testz_si256(mk, mk);
        const int nc = ncols - c0 < 8 ? ncols - c0 : 8;
        if (!any) { /* all padding (the 2 columns past a 14-wide row's 16) */
            memset(dst + (size_t)c0 * 16, 0, sizeof(float) * 16 * (size_t)nc);
            continue;
        }
        for (int h = 0; h < 2; h++) {
            __m256 q[8];
            UNROLL for (int l = 0; l < 8; l++) q[l] = _mm256_setzero_ps();
            if (inside)
                for (int l = 0; l < 8 && 8 * h + l < nch; l++)
                    q[l] = _mm256_loadu_ps(src + (8 * h + l) * plane + row * width + ws);
            else if (any)
                for (int l = 0; l < 8 && 8 * h + l < nch; l++)
                    q[l] = _mm256_maskload_ps(src + (8 * h + l) * plane + row * width + ws, mk);
            /* The next 16 channels' rows, which the caller gathers next:
             * 96 short rows at a time are too many streams for the
             * hardware prefetchers. Prefetches never fault. */
            for (int l = 0; l < 8 && 8 * h + l < nch; l++)
                _mm_prefetch((const char *)(src + (8 * h + l + 16) * plane + row * width + ws), _MM_HINT_T0);
            transpose8(q);
            /* whole blocks: the row buffer has room for them */
            UNROLL for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (c0 + i) * 16 + 8 * h, q[i]);
        }
    }
}

static void k_in_run(const float *x, int64_t plane, int nch, int64_t H, int64_t W, int64_t h0, int64_t w0, int nt,
                     float *buf, float *v, int64_t ldv, int64_t vs)
{
    const int ncols = 4 * nt + 2;
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    for (int r = 0; r < 6; r++) {
        float *br = buf + (size_t)r * bs * 16;
        const int64_t h = h0 + r;
        if (h < 0 || h >= H)
            memset(br, 0, sizeof(float) * 16 * (size_t)ncols);
        else
            gather_row(x, plane, nch, W, h, w0, ncols, br);
    }
    /* down the columns */
    for (int c = 0; c < ncols; c++) {
        v16 d[6], t[6];
        UNROLL for (int r = 0; r < 6; r++) d[r] = ld16(buf + ((size_t)r * bs + c) * 16);
        bt6(d, t);
        UNROLL for (int r = 0; r < 6; r++) st16(buf + ((size_t)r * bs + c) * 16, t[r]);
    }
    /* along the rows of each tile */
    for (int i = 0; i < nt; i++) {
        float *vi = v + i * ldv;
        UNROLL for (int k = 0; k < 6; k++)
        {
            v16 d[6], t[6];
            const float *bk = buf + ((size_t)k * bs + 4 * i) * 16;
            UNROLL for (int c = 0; c < 6; c++) d[c] = ld16(bk + c * 16);
            bt6(d, t);
            UNROLL for (int c = 0; c < 6; c++) st16(vi + (k * 6 + c) * vs, t[c]);
        }
    }
}

static int k_out_run(const float *m, int64_t ldm, int64_t ms, int nt, const float *bias, int nch, float *y,
                     int64_t plane, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0, float *buf)
{
    const int ncols = 4 * nt;
    /* v - v is NaN exactly when v is NaN or infinite; the sums keep it */
    v16 chk[4] = {set16(0.0f), set16(0.0f), set16(0.0f), set16(0.0f)};
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    v16 bv = set16(0.0f);
    if (bias)
        bv = (v16){_mm256_maskload_ps(bias, lanes8(0, nch)), _mm256_maskload_ps(bias + 8, lanes8(0, nch - 8))};
    for (int i = 0; i < nt; i++) {
        const float *mi = m + i * ldm;
        v16 t[6][4];
        UNROLL for (int k = 0; k < 6; k++)
        {
            const float *mk = mi + k * 6 * ms;
            at6(ld16(mk), ld16(mk + ms), ld16(mk + 2 * ms), ld16(mk + 3 * ms), ld16(mk + 4 * ms), ld16(mk + 5 * ms),
                t[k]);
        }
        UNROLL for (int b = 0; b < 4; b++)
        {
            v16 o[4];
            at6(t[0][b], t[1][b], t[2][b], t[3][b], t[4][b], t[5][b], o);
            UNROLL for (int a = 0; a < 4; a++)
            {
                const v16 v = add16(o[a], bv);
                chk[a] = add16(chk[a], sub16(v, v));
                st16(buf + ((size_t)a * bs + 4 * i + b) * 16, v);
            }
        }
    }
    const int64_t cols = ncols < OW - ow0 ? ncols : OW - ow0;
    for (int a = 0; a < 4 && oh0 + a < OH; a++) {
        const float *ba = buf + (size_t)a * bs * 16;
        float *ya = y + (oh0 + a) * OW + ow0;
        /* the next 16 channels' rows, which the caller stores next (see
         * conv_winograd_avx512.c; conv2 of the main job forward, 1 thread:
         * 4.73-4.94 -> 4.57-4.62 ms), with prefetcht0: PREFETCHW is not
         * on every AVX2 CPU */
        for (int l = 0; l < nch; l++) {
            _mm_prefetch((const char *)(ya + (l + 16) * plane), _MM_HINT_T0);
            _mm_prefetch((const char *)(ya + (l + 16) * plane + 15), _MM_HINT_T0);
        }
        for (int c0 = 0; c0 < cols; c0 += 8) {
            const __m256i mk = lanes8(0, cols - c0);
            for (int h = 0; h < 2 && 8 * h < nch; h++) {
                __m256 q[8];
                UNROLL for (int i = 0; i < 8; i++) q[i] = _mm256_loadu_ps(ba + (c0 + i) * 16 + 8 * h);
                transpose8(q);
                if (cols - c0 >= 8) /* masked stores only at the edge */
                    for (int l = 0; l < 8 && 8 * h + l < nch; l++)
                        _mm256_storeu_ps(ya + (8 * h + l) * plane + c0, q[l]);
                else
                    for (int l = 0; l < 8 && 8 * h + l < nch; l++)
                        _mm256_maskstore_ps(ya + (8 * h + l) * plane + c0, mk, q[l]);
            }
        }
    }
    const v16 c = add16(add16(chk[0], chk[1]), add16(chk[2], chk[3]));
    const __m256 h = _mm256_add_ps(c.lo, c.hi);
    return _mm256_movemask_ps(_mm256_cmp_ps(h, h, _CMP_UNORD_Q)) != 0;
}

static void k_dy_run(const float *dy, int64_t plane, int nch, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0,
                     int nt, float *buf, float *z, int64_t ldz, int64_t zs)
{
    const int ncols = 4 * nt;
    const int64_t bs = cnni_wino_row_floats(nt) / 16;
    for (int a = 0; a < 4; a++) {
        float *ba = buf + (size_t)a * bs * 16;
        const int64_t h = oh0 + a;
        if (h >= OH)
            memset(ba, 0, sizeof(float) * 16 * (size_t)ncols);
        else
            gather_row(dy, plane, nch, OW, h, ow0, ncols, ba);
    }
    for (int i = 0; i < nt; i++) {
        v16 d[4][4];
        UNROLL for (int a = 0; a < 4; a++)
            UNROLL for (int b = 0; b < 4; b++) d[a][b] = ld16(buf + ((size_t)a * bs + 4 * i + b) * 16);
        v16 t[4][6];
        UNROLL for (int b = 0; b < 4; b++) a4(d[0][b], d[1][b], d[2][b], d[3][b], t[b]);
        float *zi = z + i * ldz;
        UNROLL for (int k = 0; k < 6; k++)
        {
            v16 r[6];
            a4(t[0][k], t[1][k], t[2][k], t[3][k], r);
            UNROLL for (int c = 0; c < 6; c++) st16(zi + (k * 6 + c) * zs, r[c]);
        }
    }
}

/* ---- the weights' transforms, in double, 4 lanes at a time ---- */
INLINE void g3(__m256d g0, __m256d g1, __m256d g2, __m256d *u)
{
    __m256d a = _mm256_fmadd_pd(_mm256_set1_pd(-81.0 / 130), g0, _mm256_mul_pd(_mm256_set1_pd(-18.0 / 65), g2));
    __m256d b = _mm256_mul_pd(_mm256_set1_pd(27.0 / 65), g1);
    __m256d a2 = _mm256_fmadd_pd(_mm256_set1_pd(8.0 / 65), g0, _mm256_mul_pd(_mm256_set1_pd(18.0 / 65), g2));
    __m256d b2 = _mm256_mul_pd(_mm256_set1_pd(12.0 / 65), g1);
    u[0] = g0;
    u[1] = _mm256_sub_pd(a, b);
    u[2] = _mm256_add_pd(a, b);
    u[3] = _mm256_add_pd(a2, b2);
    u[4] = _mm256_sub_pd(a2, b2);
    u[5] = g2;
}

/* The weight gradient's transform back: 6 values to 3. */
INLINE void gt6(const __m256d *m, __m256d *r)
{
    const __m256d s1 = _mm256_add_pd(m[1], m[2]), s2 = _mm256_add_pd(m[3], m[4]);
    r[0] = _mm256_fmadd_pd(_mm256_set1_pd(8.0 / 65), s2, _mm256_fnmadd_pd(_mm256_set1_pd(81.0 / 130), s1, m[0]));
    r[1] = _mm256_fmadd_pd(_mm256_set1_pd(27.0 / 65), _mm256_sub_pd(m[2], m[1]),
                           _mm256_mul_pd(_mm256_set1_pd(12.0 / 65), _mm256_sub_pd(m[3], m[4])));
    r[2] = _mm256_fmadd_pd(_mm256_set1_pd(18.0 / 65), _mm256_sub_pd(s2, s1), m[5]);
}

/* Rows are transformed 8 at a time into a local block, then stored point by
 * point (as the AVX-512 kernel, to keep the 36 stores out of one cache set). */
#define WK 8
static void k_weights(const float *w, int64_t ls, int64_t ks, int flip, int nl, int64_t K, float *u, int64_t ldu,
                      int64_t us)
{
    float loc[36][WK][16];
    for (int64_t k0 = 0; k0 < K; k0 += WK) {
        const int kn = (int)(K - k0 < WK ? K - k0 : WK);
        for (int kk = 0; kk < kn; kk++) {
            /* the 16 filters' 9 taps as taps x lanes */
            const float *wk = w + (k0 + kk) * ks;
            float g[9][16];
            for (int l = 0; l < 16; l++)
                for (int i = 0; i < 9; i++)
                    g[i][l] = l < nl ? wk[l * ls + (flip ? 8 - i : i)] : 0.0f;
            for (int q = 0; q < 16; q += 4) {
                __m256d gd[9], t[3][6], r[6];
                UNROLL for (int i = 0; i < 9; i++) gd[i] = _mm256_cvtps_pd(_mm_loadu_ps(g[i] + q));
                UNROLL for (int c = 0; c < 3; c++) g3(gd[c], gd[3 + c], gd[6 + c], t[c]);
                UNROLL for (int i = 0; i < 6; i++)
                {
                    g3(t[0][i], t[1][i], t[2][i], r);
                    UNROLL for (int j = 0; j < 6; j++) _mm_storeu_ps(loc[i * 6 + j][kk] + q, _mm256_cvtpd_ps(r[j]));
                }
            }
        }
        /* past the caches (U is 36 x the weights): no reads for ownership;
         * with the products' prefetch, 256 channels on 14 x 14, 8 images,
         * one thread: 10.9 -> 8.7 ms (fastest of 11) */
        for (int p = 0; p < 36; p++)
            for (int kk = 0; kk < kn; kk++) {
                float *d = u + p * us + (k0 + kk) * ldu;
                _mm256_stream_ps(d, _mm256_loadu_ps(loc[p][kk]));
                _mm256_stream_ps(d + 8, _mm256_loadu_ps(loc[p][kk] + 8));
            }
    }
    _mm_sfence();
}

static void k_wout(const float *m, int64_t ms, int nl, float *dw)
{
    float loc[9][16];
    for (int q = 0; q < 16; q += 4) {
        __m256d t[3][6];
        UNROLL for (int c = 0; c < 6; c++)
        {
            __m256d col[6], r[3];
            UNROLL for (int k = 0; k < 6; k++) col[k] = _mm256_cvtps_pd(_mm_loadu_ps(m + (k * 6 + c) * ms + q));
            gt6(col, r);
            UNROLL for (int a = 0; a < 3; a++) t[a][c] = r[a];
        }
        UNROLL for (int a = 0; a < 3; a++)
        {
            __m256d r[3];
            gt6(t[a], r);
            UNROLL for (int b = 0; b < 3; b++) _mm_storeu_ps(loc[a * 3 + b] + q, _mm256_cvtpd_ps(r[b]));
        }
    }
    for (int l = 0; l < nl; l++)
        for (int i = 0; i < 9; i++)
            dw[l * 9 + i] += loc[i][l];
}

const cnni_wino_kernels cnni_wino_kernels_avx2 = {
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
