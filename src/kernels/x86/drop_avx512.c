/* AVX-512 dropout groups (see drop_fast.h): the eight streams' state words
 * in the eight 64-bit lanes of four registers, one step per group. */
#include "../drop_fast.h"

#include <immintrin.h>

int64_t cnni_drop_groups_avx512(cnni_drop_lanes *st, int64_t n, uint64_t limit, uint32_t kbits, float *f,
                                const float *x, float *y)
{
    __m512i s0 = _mm512_loadu_si512(st->s[0]), s1 = _mm512_loadu_si512(st->s[1]);
    __m512i s2 = _mm512_loadu_si512(st->s[2]), s3 = _mm512_loadu_si512(st->s[3]);
    const __m512i lim = _mm512_set1_epi64((long long)limit);
    const __m256 keep = _mm256_castsi256_ps(_mm256_set1_epi32((int)kbits));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* u = rotl(s1 * 5, 7) * 9, the products as shifts and adds */
        const __m512i a = _mm512_rol_epi64(_mm512_add_epi64(s1, _mm512_slli_epi64(s1, 2)), 7);
        const __m512i u = _mm512_add_epi64(a, _mm512_slli_epi64(a, 3));
        const __m512i t = _mm512_slli_epi64(s1, 17);
        s2 = _mm512_xor_si512(s2, s0);
        s3 = _mm512_xor_si512(s3, s1);
        s1 = _mm512_xor_si512(s1, s2);
        s0 = _mm512_xor_si512(s0, s3);
        s2 = _mm512_xor_si512(s2, t);
        s3 = _mm512_rol_epi64(s3, 45);
        const __mmask8 kept = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(u, 11), lim);
        const __m256 fi = _mm256_maskz_mov_ps(kept, keep);
        _mm256_storeu_ps(f + i, fi);
        if (y)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), fi));
    }
    _mm512_storeu_si512(st->s[0], s0);
    _mm512_storeu_si512(st->s[1], s1);
    _mm512_storeu_si512(st->s[2], s2);
    _mm512_storeu_si512(st->s[3], s3);
    return i;
}
