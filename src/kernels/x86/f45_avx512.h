/* Pieces of Winograd F(4,5) along the rows shared by the AVX-512 files
 * that run it (conv_direct_avx512.c with channels on the lanes,
 * conv_quadimg_avx512.c with images on the lanes). */
#ifndef CNN_F45_AVX512_H
#define CNN_F45_AVX512_H

#include <immintrin.h>
#include <stdint.h>

/* acc += v * broadcast(*x) as one instruction with the broadcast from
 * memory: left to itself, GCC keeps the broadcasts in registers and
 * reloads v for every product, one 64-byte load per FMA. */
static inline __attribute__((always_inline)) void f45_fma_bcast(__m512 *acc, __m512 v, const float *x)
{
    __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(*acc) : "v"(v), "m"(*x));
}

/* The input transform B^T of one quad's 8 columns v[0..7]: component j
 * to d + j * stride; the points +-1 (j = 1, 2), +-1/2 (3, 4) and +-2
 * (5, 6) taken in pairs of the even and odd taps. */
static inline __attribute__((always_inline)) void f45_input(const __m512 *v, float *d, int64_t stride)
{
    const __m512 c525 = _mm512_set1_ps(5.25f), c425 = _mm512_set1_ps(4.25f), c25 = _mm512_set1_ps(2.5f),
                 c125 = _mm512_set1_ps(1.25f), c4 = _mm512_set1_ps(4.0f), c2 = _mm512_set1_ps(2.0f),
                 h2 = _mm512_set1_ps(0.5f), h4 = _mm512_set1_ps(0.25f);
    const __m512 a1 = _mm512_fnmadd_ps(c425, v[4], _mm512_add_ps(v[2], v[6]));
    const __m512 b1 = _mm512_fnmadd_ps(c425, v[3], _mm512_add_ps(v[1], v[5]));
    const __m512 a3 = _mm512_fnmadd_ps(c125, v[4], _mm512_fmadd_ps(h4, v[2], v[6]));
    const __m512 b3 = _mm512_fnmadd_ps(c25, v[3], _mm512_fmadd_ps(h2, v[1], _mm512_add_ps(v[5], v[5])));
    const __m512 a5 = _mm512_fmadd_ps(c4, _mm512_fnmadd_ps(c125, v[4], v[2]), v[6]);
    const __m512 b5 = _mm512_fnmadd_ps(c25, v[3], _mm512_fmadd_ps(c2, v[1], _mm512_mul_ps(h2, v[5])));
    _mm512_storeu_ps(d, _mm512_fmadd_ps(c525, _mm512_sub_ps(v[4], v[2]), _mm512_sub_ps(v[0], v[6])));
    _mm512_storeu_ps(d + 1 * stride, _mm512_add_ps(a1, b1));
    _mm512_storeu_ps(d + 2 * stride, _mm512_sub_ps(a1, b1));
    _mm512_storeu_ps(d + 3 * stride, _mm512_add_ps(a3, b3));
    _mm512_storeu_ps(d + 4 * stride, _mm512_sub_ps(a3, b3));
    _mm512_storeu_ps(d + 5 * stride, _mm512_add_ps(a5, b5));
    _mm512_storeu_ps(d + 6 * stride, _mm512_sub_ps(a5, b5));
    _mm512_storeu_ps(d + 7 * stride, _mm512_fmadd_ps(c525, _mm512_sub_ps(v[3], v[5]), _mm512_sub_ps(v[7], v[1])));
}

#endif
