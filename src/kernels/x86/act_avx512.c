/* AVX-512 elementwise activations (see act_simd.h). */
#include "../act_fast.h"

#include <immintrin.h>

typedef __m512 V;
#define W 16
#define VSET _mm512_set1_ps
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMIN _mm512_min_ps
#define VMAX _mm512_max_ps
#define VFMADD _mm512_fmadd_ps
#define VFNMADD _mm512_fnmadd_ps
#define VROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VSCALE _mm512_scalef_ps
#define VABS _mm512_abs_ps
#define VNEG(x) _mm512_sub_ps(_mm512_setzero_ps(), (x))
#define VCOPYSIGN(m, s) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(m), \
    _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32((int)0x80000000))))
/* VBLEND_xx(a, b, t, f): where a xx b then t else f */
#define VBLEND_LT(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (f), (t))
#define VBLEND_LE(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LE_OQ), (f), (t))
#define VBLEND_GT(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ), (f), (t))
#define VBLEND_GE(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ), (f), (t))
/* where a > 0 then t else f; where a < 0 then t else f */
#define VBLEND_GT0(a, f, t) VBLEND_GT((a), _mm512_setzero_ps(), (t), (f))
#define VBLEND_LT0(a, f, t) VBLEND_LT((a), _mm512_setzero_ps(), (t), (f))
/* 1/d from the 14-bit estimate and one Newton step, r + r (1 - d r):
 * within about 1 ulp, at a fraction of a division's cost */
static inline __m512 vrecip(__m512 d)
{
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r, r);
}
#define VRECIP vrecip
#define FWD_NAME act_fwd
#define BWD_NAME act_bwd

#include "act_simd.h"

void cnni_act_forward_avx512(const cnni_act *a, int64_t n, const float *x, float *y) { act_fwd(a, n, x, y); }

void cnni_act_backward_avx512(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                              float *dx)
{
    act_bwd(a, n, x, y, dy, dx);
}
