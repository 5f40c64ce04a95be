/* Dropout factors from eight generator streams side by side. One
 * xoshiro256** stream's steps form a chain of dependent operations (about
 * 5 cycles per element here); eight independent ones fill a vector.
 *
 * Element i takes draw i / 8 of stream i % 8, the streams being
 * cnni_rng_split(r, 0..7); its factor is 0 where that draw (as
 * cnni_rng_uniform gives it) is below p, else `keep`. r then moves on to
 * cnni_rng_split(r, 8). With x and y not NULL also y[i] = x[i] * f[i].
 * Every instruction set gives the same bits. */
#ifndef CNN_DROP_FAST_H
#define CNN_DROP_FAST_H

#include "../core/internal.h"

#define CNNI_DROP_LANES 8

void cnni_drop_fast_factors(int isa, cnni_rng *r, int64_t n, double p, float keep, float *f, const float *x,
                            float *y);

/* The streams' state word k of lane l at s[k][l]. */
typedef struct cnni_drop_lanes {
    uint64_t s[4][CNNI_DROP_LANES];
} cnni_drop_lanes;

/* Whole groups of 8 elements of n: factor 0 where draw >> 11 < limit,
 * else the float of bits kbits. Each returns how many it did (n rounded
 * down to 8), the lanes moved on past them. */
int64_t cnni_drop_groups_avx512(cnni_drop_lanes *st, int64_t n, uint64_t limit, uint32_t kbits, float *f,
                                const float *x, float *y);
int64_t cnni_drop_groups_avx2(cnni_drop_lanes *st, int64_t n, uint64_t limit, uint32_t kbits, float *f,
                              const float *x, float *y);

#endif
