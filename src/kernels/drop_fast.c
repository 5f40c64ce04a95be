/* Dropout factors: the portable loop over the streams (the reference the
 * vector groups match) and the dispatch. See drop_fast.h. */
#include "drop_fast.h"
#include "../core/cpu.h"

#include <math.h>
#include <string.h>

/* Element i's factor from its draw v: selected by a mask, not a branch (a
 * drop probability such as 0.25 would mispredict a quarter of them). */
static inline void put(int64_t i, uint64_t v, uint64_t limit, uint32_t kbits, float *f, const float *x, float *y)
{
    const uint32_t bits = kbits & ((uint32_t)0 - (uint32_t)(v >= limit));
    float fi;
    memcpy(&fi, &bits, sizeof fi);
    f[i] = fi;
    if (y)
        y[i] = x[i] * fi;
}

/* Elements [i0, n), i0 a multiple of 8: streams two at a time (two
 * independent chains in flight), each through its elements. */
static void streams(const cnni_drop_lanes *st, int64_t i0, int64_t n, uint64_t limit, uint32_t kbits, float *f,
                    const float *x, float *y)
{
    for (int l = 0; l < CNNI_DROP_LANES; l += 2) {
        uint64_t a[4], b[4];
        for (int k = 0; k < 4; k++) {
            a[k] = st->s[k][l];
            b[k] = st->s[k][l + 1];
        }
        for (int64_t i = i0 + l; i < n; i += CNNI_DROP_LANES) {
            const uint64_t va = cnni_xoshiro_next(a) >> 11, vb = cnni_xoshiro_next(b) >> 11;
            put(i, va, limit, kbits, f, x, y);
            if (i + 1 < n)
                put(i + 1, vb, limit, kbits, f, x, y);
        }
    }
}

void cnni_drop_fast_factors(int isa, cnni_rng *r, int64_t n, double p, float keep, float *f, const float *x,
                            float *y)
{
    /* For the integer v = u >> 11 < 2^53: v 2^-53 < p exactly when
     * v < ceil(p 2^53) (scaling by a power of two is exact). */
    const uint64_t limit = (uint64_t)ceil(p * 0x1.0p53);
    uint32_t kbits;
    memcpy(&kbits, &keep, sizeof kbits);
    cnni_drop_lanes st;
    for (int l = 0; l < CNNI_DROP_LANES; l++) {
        cnni_rng lane;
        cnni_rng_split(r, (uint64_t)l, &lane);
        for (int k = 0; k < 4; k++)
            st.s[k][l] = lane.s[k];
    }
    int64_t i = 0;
    if (isa == CNNI_ISA_AVX512)
        i = cnni_drop_groups_avx512(&st, n, limit, kbits, f, x, y);
    else if (isa == CNNI_ISA_AVX2)
        i = cnni_drop_groups_avx2(&st, n, limit, kbits, f, x, y);
    streams(&st, i, n, limit, kbits, f, x, y);
    cnni_rng next;
    cnni_rng_split(r, CNNI_DROP_LANES, &next);
    *r = next;
}
