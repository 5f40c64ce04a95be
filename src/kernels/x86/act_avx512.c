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

/* sigmoid(x) = 1 / (1 + e^-x) in 15 instructions (the generic form in
 * act_simd.h takes 20):
 * - e^-x = 2^n e^r, r = -x - n ln2 (ln2 in two parts) with |r| <= ln2/2,
 *   e^r = 1 + r (c1 + r (c2 + ... + r c5)), a least-maximum-relative-error
 *   fit of degree 5 (9.2e-8 off e^r in exact arithmetic);
 * - x clamped to 87 from above, where e^-x is still a normal float and the
 *   sigmoid already 1; scalef takes any n, so no clamp from below;
 * - the reciprocal a division: the FMA pipes are this kernel's limit, and
 *   the divider is not one of them (14-bit vrcp14ps and a Newton step, two
 *   more FMAs, ran 7% slower on Zen 4: 3.57 against 3.32 ns a vector);
 * - below -88.72283 (e^-x infinite; at -inf, r is NaN) the masked division
 *   gives 0, as PyTorch; NaN is kept (the compare is unordered-true and min
 *   returns its second operand). */
static inline __m512 vsigmoid512(__m512 x)
{
    const __m512 xc = _mm512_min_ps(_mm512_set1_ps(87.0f), x);
    const __m512 n = VROUND(_mm512_mul_ps(xc, _mm512_set1_ps(-1.44269504088896341f)));
    __m512 r = _mm512_fnmsub_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(0.008290299214422703f), r, _mm512_set1_ps(0.04189789295196533f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.1666763573884964f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.4999915063381195f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.9999997019767761f));
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 d = _mm512_add_ps(_mm512_scalef_ps(_mm512_fmadd_ps(q, r, one), n), one);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-88.72283172607422f), _CMP_NLT_UQ);
    return _mm512_maskz_div_ps(keep, one, d);
}
#define VSIGMOID vsigmoid512
#define FWD_NAME act_fwd
#define BWD_NAME act_bwd

#include "act_simd.h"

void cnni_act_forward_avx512(const cnni_act *a, int64_t n, const float *x, float *y) { act_fwd(a, n, x, y); }

void cnni_act_backward_avx512(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy,
                              float *dx)
{
    act_bwd(a, n, x, y, dy, dx);
}
