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

#include "norm_simd.h"

const cnni_norm_spans cnni_norm_spans_avx512 = {s_sum, s_dev2, s_affine, s_sums, s_grad};
