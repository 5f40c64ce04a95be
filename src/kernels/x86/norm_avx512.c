/* AVX-512 normalisation spans (see norm_simd.h). */
#include "../norm_fast.h"

#include <immintrin.h>

typedef __m512 V;
#define W 16
#define VSET _mm512_set1_ps
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VFMADD _mm512_fmadd_ps
/* the lanes added in double: a float sum of 16 partials of a few hundred
 * elements would lose the low bits of a sum that nearly cancels */
static inline double vsum(__m512 v)
{
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                              _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))));
}
#define VSUM vsum
/* y, with the lanes where y <= 0 set to 0 (NaN is not <= 0, so it stays) */
#define VRELU(y) _mm512_mask_mov_ps((y), _mm512_cmp_ps_mask((y), _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps())
/* 0 where y <= 0, else g (where y is NaN too, as PyTorch's ReLU gradient) */
#define VPOS(y, g) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((y), _mm512_setzero_ps(), _CMP_NLE_UQ), (g))

#include "norm_simd.h"

const cnni_norm_spans cnni_norm_spans_avx512 = SPANS_INIT;
