/* AVX-512 depthwise plane loops (see conv_depthwise_simd.h). */
#include "../conv_depthwise.h"

#include <immintrin.h>

#include "alignr_avx512.h"

typedef __m512 V;
#define W 16
#define VZERO _mm512_setzero_ps()
#define VSET _mm512_set1_ps
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VADD _mm512_add_ps
#define VMUL _mm512_mul_ps
#define VFMADD _mm512_fmadd_ps
#define VHSUM _mm512_reduce_add_ps

static inline __mmask16 lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

#define VLOADM(p, n) _mm512_maskz_loadu_ps(lanes(n), (p))
/* lanes [a, b) of p (0 <= a < b <= 16); the others 0 and not read */
#define VLOADR(p, a, b) _mm512_maskz_loadu_ps((__mmask16)(lanes(b) & ~lanes(a)), (p))
#define VKEEP(v) __asm__("" : "+v"(v))
#define VSTOREM(p, n, v) _mm512_mask_storeu_ps((p), lanes(n), (v))

/* p[0], p[2], ..., p[2(n-1)]: the 2n - 1 floats from p, even ones kept. */
static inline V load2m(const float *p, int n)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int span = 2 * n - 1;
    V a = _mm512_maskz_loadu_ps(lanes(span), p);
    V b = _mm512_maskz_loadu_ps(lanes(span > 16 ? span - 16 : 0), p + 16);
    return _mm512_permutex2var_ps(a, even, b);
}
#define VLOAD2M load2m

static inline V gatherm(const float *p, int64_t s, int n)
{
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)s));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes(n), idx, p, 4);
}
#define VGATHERM gatherm

/* p[2i] += v[i] for i < n: v spread to the even lanes of two vectors. */
static inline void scatter2_add(float *p, V v, int n)
{
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    __mmask16 m0 = (__mmask16)(0x5555 & lanes(2 * n - 1));
    __mmask16 m1 = (__mmask16)(0x5555 & lanes(n > 8 ? 2 * n - 17 : 0));
    _mm512_mask_storeu_ps(p, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, p), _mm512_maskz_permutexvar_ps(m0, lo, v)));
    if (m1)
        _mm512_mask_storeu_ps(p + 16, m1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, p + 16), _mm512_maskz_permutexvar_ps(m1, hi, v)));
}
#define SCATTER2_ADD scatter2_add

#define VALIGNR cnni_alignr512
typedef __mmask16 VM;
#define VMASKN lanes
#define VLOADK(p, k) _mm512_maskz_loadu_ps((k), (p))
#define VSTOREK(p, k, v) _mm512_mask_storeu_ps((p), (k), (v))
/* c + a*b in the lanes of k, c elsewhere */
#define VFMADDK(a, b, c, k) _mm512_mask3_fmadd_ps((a), (b), (c), (k))

#include "conv_depthwise_simd.h"

const cnni_dw_kernels cnni_dw_kernels_avx512 = {k_forward, k_weight, k_scatter, k_copy, k_cols, k_gather, k_pads};
