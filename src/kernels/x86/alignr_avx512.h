/* A window of floats between two AVX-512 vectors, for the files that form
 * a row's shifted windows from its vectors instead of loading each one
 * (depthwise and few-channel convolutions, the plane weight gradient). */
#ifndef CNN_ALIGNR_AVX512_H
#define CNN_ALIGNR_AVX512_H

#include <immintrin.h>

/* Lanes t.. of lo followed by lanes ..t-1 of hi (t a constant below 8):
 * the window t floats to the right of lo's. A switch, as clang checks the
 * instruction's immediate before inlining makes t a constant. */
static inline __attribute__((always_inline)) __m512 cnni_alignr512(__m512 lo, __m512 hi, int t)
{
    const __m512i a = _mm512_castps_si512(lo), b = _mm512_castps_si512(hi);
    switch (t) {
    case 0: return lo;
    case 1: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 1));
    case 2: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 2));
    case 3: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 3));
    case 4: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 4));
    case 5: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 5));
    case 6: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 6));
    default: return _mm512_castsi512_ps(_mm512_alignr_epi32(b, a, 7));
    }
}

#endif
