/* AVX2 dropout groups (see drop_fast.h): streams 0..3 and 4..7 in the
 * 64-bit lanes of two registers per state word, one step per group. */
#include "../drop_fast.h"

#include <immintrin.h>

#define ROTL(v, k) _mm256_or_si256(_mm256_slli_epi64(v, k), _mm256_srli_epi64(v, 64 - (k)))

typedef struct {
    __m256i s0, s1, s2, s3;
} half;

/* One step of four streams; returns the draws u >> 11. */
static inline __attribute__((always_inline)) __m256i step(half *h)
{
    const __m256i a = ROTL(_mm256_add_epi64(h->s1, _mm256_slli_epi64(h->s1, 2)), 7);
    const __m256i u = _mm256_add_epi64(a, _mm256_slli_epi64(a, 3));
    const __m256i t = _mm256_slli_epi64(h->s1, 17);
    h->s2 = _mm256_xor_si256(h->s2, h->s0);
    h->s3 = _mm256_xor_si256(h->s3, h->s1);
    h->s1 = _mm256_xor_si256(h->s1, h->s2);
    h->s0 = _mm256_xor_si256(h->s0, h->s3);
    h->s2 = _mm256_xor_si256(h->s2, t);
    h->s3 = ROTL(h->s3, 45);
    return _mm256_srli_epi64(u, 11);
}

int64_t cnni_drop_groups_avx2(cnni_drop_lanes *st, int64_t n, uint64_t limit, uint32_t kbits, float *f,
                              const float *x, float *y)
{
    half h[2];
    for (int j = 0; j < 2; j++) {
        h[j].s0 = _mm256_loadu_si256((const __m256i *)(st->s[0] + 4 * j));
        h[j].s1 = _mm256_loadu_si256((const __m256i *)(st->s[1] + 4 * j));
        h[j].s2 = _mm256_loadu_si256((const __m256i *)(st->s[2] + 4 * j));
        h[j].s3 = _mm256_loadu_si256((const __m256i *)(st->s[3] + 4 * j));
    }
    /* the draws are below 2^53 and limit at most 2^53: a signed compare */
    const __m256i lim = _mm256_set1_epi64x((long long)limit);
    const __m256i keep = _mm256_set1_epi32((int)kbits);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i d0 = _mm256_cmpgt_epi64(lim, step(&h[0])), d1 = _mm256_cmpgt_epi64(lim, step(&h[1]));
        /* the low halves of the 64-bit masks, lanes 0..7 in order */
        const __m256 lo = _mm256_shuffle_ps(_mm256_castsi256_ps(d0), _mm256_castsi256_ps(d1), 0x88);
        const __m256i dropped = _mm256_permute4x64_epi64(_mm256_castps_si256(lo), 0xD8);
        const __m256 fi = _mm256_castsi256_ps(_mm256_andnot_si256(dropped, keep));
        _mm256_storeu_ps(f + i, fi);
        if (y)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), fi));
    }
    for (int j = 0; j < 2; j++) {
        _mm256_storeu_si256((__m256i *)(st->s[0] + 4 * j), h[j].s0);
        _mm256_storeu_si256((__m256i *)(st->s[1] + 4 * j), h[j].s1);
        _mm256_storeu_si256((__m256i *)(st->s[2] + 4 * j), h[j].s2);
        _mm256_storeu_si256((__m256i *)(st->s[3] + 4 * j), h[j].s3);
    }
    return i;
}
