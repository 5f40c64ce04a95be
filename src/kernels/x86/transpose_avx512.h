/* A 16 x 16 float transpose in zmm registers, for the AVX-512 files that
 * change layout in registers (direct convolution stores, GEMM packing). */
#ifndef CNN_TRANSPOSE_AVX512_H
#define CNN_TRANSPOSE_AVX512_H

#include <immintrin.h>

#if defined(__clang__)
#define TRANSPOSE_UNROLL _Pragma("unroll")
#else
#define TRANSPOSE_UNROLL _Pragma("GCC unroll 16")
#endif

/* o[j][i] = r[i][j]: a 16 x 16 transpose in registers. */
static inline __attribute__((always_inline)) void transpose16(const __m512 *r, __m512 *o)
{
    __m512 t[16], u[16];
    TRANSPOSE_UNROLL for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    TRANSPOSE_UNROLL for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* u[4a + b] lane L holds element 4L + b of rows 4a .. 4a + 3 */
    TRANSPOSE_UNROLL for (int b = 0; b < 4; b++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[b], u[4 + b], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 v1 = _mm512_shuffle_f32x4(u[b], u[4 + b], _MM_SHUFFLE(3, 1, 3, 1));
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + b], u[12 + b], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + b], u[12 + b], _MM_SHUFFLE(3, 1, 3, 1));
        o[b] = _mm512_shuffle_f32x4(v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
        o[4 + b] = _mm512_shuffle_f32x4(v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
        o[8 + b] = _mm512_shuffle_f32x4(v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
        o[12 + b] = _mm512_shuffle_f32x4(v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

#endif
