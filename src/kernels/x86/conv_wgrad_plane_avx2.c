/* AVX2 plane weight gradient (see conv_wgrad_plane_simd.h); its masked loads
 * are cheap (the stores are what lanes_avx2.h avoids). */
#include <immintrin.h>

#include "lanes_avx2.h"

typedef __m256 V;
typedef __m256i VM;
#define VL 8
#define VZERO _mm256_setzero_ps()
#define VLOADK(p, k) _mm256_maskload_ps((p), (k))
#define VFMAK(a, b, c, m) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define LANES_BETWEEN(lo, hi) _mm256_andnot_si256(first8(lo), first8(hi))

static inline float VSUM(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#include "conv_wgrad_plane_simd.h"

void cnni_wgrad_plane_avx2(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw)
{
    wgrad_dispatch(g, dy, x, dw);
}
