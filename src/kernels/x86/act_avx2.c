/* AVX2 + FMA elementwise activations (see act_simd.h). */
#include "../act_fast.h"

#include <immintrin.h>

typedef __m256 V;
#define W 8
#define VSET _mm256_set1_ps
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VMIN _mm256_min_ps
#define VMAX _mm256_max_ps
#define VFMADD _mm256_fmadd_ps
#define VFNMADD _mm256_fnmadd_ps
#define VROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
/* p * 2^n for integral n in [-127, 128]: build 2^n from the exponent bits in two halves
 * so that n = 128 and n = -127 stay representable. */
static inline __m256 vscale(__m256 p, __m256 n)
{
    __m256i k = _mm256_cvtps_epi32(n);
    __m256i k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
    __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
    __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}
#define VSCALE vscale
#define VABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (x))
#define VNEG(x) _mm256_xor_ps((x), _mm256_set1_ps(-0.0f))
#define VCOPYSIGN(m, s) _mm256_or_ps((m), _mm256_and_ps((s), _mm256_set1_ps(-0.0f)))
#define VBLEND_LT(a, b, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((a), (b), _CMP_LT_OQ))
#define VBLEND_LE(a, b, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((a), (b), _CMP_LE_OQ))
#define VBLEND_GT(a, b, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((a), (b), _CMP_GT_OQ))
#define VBLEND_GE(a, b, t, f) _mm256_blendv_ps((f), (t), _mm256_cmp_ps((a), (b), _CMP_GE_OQ))
#define VBLEND_GT0(a, f, t) VBLEND_GT((a), _mm256_setzero_ps(), (t), (f))
#define VBLEND_LT0(a, f, t) VBLEND_LT((a), _mm256_setzero_ps(), (t), (f))
/* AVX2's estimate has 12 bits: a Newton step would leave a few ulp */
#define VRECIP(d) _mm256_div_ps(_mm256_set1_ps(1.0f), (d))
#define FWD_NAME act_fwd
#define BWD_NAME act_bwd

#include "act_simd.h"

void cnni_act_forward_avx2(const cnni_act *a, int64_t n, const float *x, float *y) { act_fwd(a, n, x, y); }

void cnni_act_backward_avx2(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                            float *dx)
{
    act_bwd(a, n, x, y, dy, dx);
}
