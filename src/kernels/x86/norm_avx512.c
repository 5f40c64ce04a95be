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
#define VSUM(v) ((double)_mm512_reduce_add_ps(v))
/* y, with the lanes where y <= 0 set to 0 (NaN is not <= 0, so it stays) */
#define VRELU(y) _mm512_mask_mov_ps((y), _mm512_cmp_ps_mask((y), _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps())
/* g where y > 0, else 0 */
#define VPOS(y, g) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((y), _mm512_setzero_ps(), _CMP_GT_OQ), (g))

#include "norm_simd.h"

const cnni_norm_spans cnni_norm_spans_avx512 = SPANS_INIT;
