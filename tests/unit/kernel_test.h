/* Helpers shared by the fast-kernel tests: random floats from the seeded
 * generator of gradcheck.h, the volume of a 3-d extent, and the error of a
 * result against its reference. */
#ifndef CNN_KERNEL_TEST_H
#define CNN_KERNEL_TEST_H

#include "gradcheck.h"

/* n floats uniform in [-1, 1); free with free(). */
static inline float *rand_f(int64_t n)
{
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)cnni_rng_uniform_range(&rng, -1, 1);
    return v;
}

static inline int64_t vol(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* The largest difference of a from the reference b, relative to max(1,
 * the largest finite reference magnitude). NaN where b is not NaN, or an
 * infinity b lacks, is an infinite difference: a value left unwritten
 * (poisoned with NaN) or gone NaN fails any tolerance. */
static inline double rel(const float *a, const float *b, int64_t n)
{
    double s = 1, w = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(b[i]))
            s = fmax(s, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        if (isnan(b[i]) || isinf(b[i])) {
            if (isnan(b[i]) ? !isnan(a[i]) : a[i] != b[i])
                return INFINITY;
            continue;
        }
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= w)) {
            if (!isfinite(e))
                return INFINITY;
            w = e;
        }
    }
    return w / s;
}

#endif
