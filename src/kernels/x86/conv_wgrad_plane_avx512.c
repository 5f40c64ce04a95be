/* AVX-512 plane weight gradient (see conv_wgrad_plane_simd.h). */
#include <immintrin.h>

#include "alignr_avx512.h"

typedef __m512 V;
typedef __mmask16 VM;
#define VL 16
#define VZERO _mm512_setzero_ps()
#define VLOADK(p, k) _mm512_maskz_loadu_ps((k), (p))
#define VFMAK(a, b, c, m) _mm512_mask3_fmadd_ps((a), (b), (c), (m))
#define VALIGNR(hi, lo, k) cnni_alignr512((lo), (hi), (k))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUM(a) _mm512_reduce_add_ps(a)
#define LANES_BETWEEN(lo, hi) ((__mmask16)((0xFFFFu >> (16 - (hi))) & (0xFFFFu << (lo))))

/* The lanes of a vector of columns b + [0, 16) inside a row [0, W). */
static inline __mmask16 lanes_in_row(int64_t b, int64_t W)
{
    const int64_t lo = b < 0 ? -b : 0, hi = W - b < 16 ? W - b : 16;
    return hi > lo ? LANES_BETWEEN(lo, hi) : (__mmask16)0;
}

#include "conv_wgrad_plane_simd.h"

void cnni_wgrad_plane_avx512(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw)
{
    wgrad_dispatch(g, dy, x, dw);
}
