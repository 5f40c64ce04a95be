/* AVX2 + FMA normalisation spans (see norm_simd.h). */
#include "../norm_fast.h"

#include <immintrin.h>

typedef __m256 V;
#define W 8
#define VSET _mm256_set1_ps
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VFMADD _mm256_fmadd_ps

/* the lanes added in double (see norm_avx512.c) */
static inline double vsum(__m256 v)
{
    const __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
#define VSUM vsum
/* y, with the lanes where y <= 0 set to 0 (NaN is not <= 0, so it stays) */
#define VRELU(y) _mm256_andnot_ps(_mm256_cmp_ps((y), _mm256_setzero_ps(), _CMP_LE_OQ), (y))
/* 0 where y <= 0, else g (where y is NaN too, as PyTorch's ReLU gradient) */
#define VPOS(y, g) _mm256_and_ps(_mm256_cmp_ps((y), _mm256_setzero_ps(), _CMP_NLE_UQ), (g))

#include "norm_simd.h"

const cnni_norm_spans cnni_norm_spans_avx2 = SPANS_INIT;
