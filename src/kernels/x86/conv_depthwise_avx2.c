/* AVX2 + FMA depthwise plane loops (see conv_depthwise_simd.h). */
#include "../conv_depthwise.h"

#include <immintrin.h>

#include "lanes_avx2.h"

typedef __m256 V;
#define W 8
#define DW_MAX_ACC 12 /* of 16 registers */
#define SLIDE_R 2     /* 8 accumulators of 16 registers */
#define SLIDE_MAX_M 1 /* see conv_depthwise_simd.h */
#define FWD_SHIFT_TAIL 1 /* see fwd_rows there */
#define VZERO _mm256_setzero_ps()
#define VSET _mm256_set1_ps
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VADD _mm256_add_ps
#define VMUL _mm256_mul_ps
#define VFMADD _mm256_fmadd_ps

/* All lanes below n set (n clamped to 0..8). */
static inline __m256i lanes(int n)
{
    static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(tbl + 8 - n));
}

#define VLOADM(p, n) _mm256_maskload_ps((p), lanes(n))
/* lanes [a, b) of p (0 <= a < b <= 8); the others 0 and not read */
#define VLOADR(p, a, b) _mm256_maskload_ps((p), _mm256_andnot_si256(lanes(a), lanes(b)))
/* the first n lanes stored in pieces (vmaskmovps stores cost many plain ones) */
#define VSTOREM(p, n, v) store_first((p), (v), (n))
typedef __m256i VM;
#define VMASKN lanes
#define VLOADK(p, k) _mm256_maskload_ps((p), (k))
#define VSTOREK(p, k, v) _mm256_maskstore_ps((p), (k), (v))

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#define VHSUM hsum

/* p[0], p[2], ..., p[2(n-1)]: the 2n - 1 floats from p, even ones kept. */
static inline V load2m(const float *p, int n)
{
    int span = 2 * n - 1;
    V a = _mm256_maskload_ps(p, lanes(span)), b = _mm256_maskload_ps(p + 8, lanes(span - 8));
    V e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}
#define VLOAD2M load2m

static inline V gatherm(const float *p, int64_t s, int n)
{
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)s));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, idx, _mm256_castsi256_ps(lanes(n)), 4);
}
#define VGATHERM gatherm

static inline void scatter2_add(float *p, V v, int n)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int i = 0; i < n; i++)
        p[2 * i] += t[i];
}
#define SCATTER2_ADD scatter2_add

#include "conv_depthwise_simd.h"

const cnni_dw_kernels cnni_dw_kernels_avx2 = {k_forward, k_weight, k_scatter, k_copy, k_cols, k_gather, k_pads};
