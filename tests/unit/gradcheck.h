/* Shared pieces of the finite-difference gradient checks (double precision):
 * a seeded generator (seed printed, or given as argv[1] to replay), random
 * vectors, and the central-difference comparison. */
#ifndef CNN_GRADCHECK_H
#define CNN_GRADCHECK_H

#include "test.h"
#include "core/internal.h"

#include <time.h>

static uint64_t seed;
static cnni_rng rng;

static inline void gc_init(int argc, char **argv)
{
    seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu (rerun: %s %llu)\n", (unsigned long long)seed, argv[0], (unsigned long long)seed);
    cnni_rng_seed(&rng, seed);
}

/* n values uniform in [-1, 1); free with free(). */
static inline double *rand_vec(int64_t n)
{
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = cnni_rng_uniform_range(&rng, -1, 1);
    return v;
}

static inline double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Uniform integer in [lo, hi]. */
static inline int64_t pick(int64_t lo, int64_t hi)
{
    return lo + (int64_t)cnni_rng_below(&rng, (uint64_t)(hi - lo + 1));
}

/* A scalar function of some vector the caller perturbs in place. */
/* Sets k random elements of v[0, n) to NaN, +inf or -inf. */
static inline void put_specials(float *v, int64_t n, int k)
{
    static const float sv[3] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < k && n > 0; i++)
        v[pick(0, n - 1)] = sv[pick(0, 2)];
}

/* Whether y matches the double reference rounded to float: NaN where it is
 * NaN, the same infinities, finite values within tol of the largest finite
 * reference magnitude (at least 1); the first mismatch is described in msg. */
static inline int same_specials(const float *y, const double *ref, int64_t n, double tol, char *msg, size_t len)
{
    double scale = 1;
    for (int64_t i = 0; i < n; i++)
        if (isfinite((float)ref[i]))
            scale = fmax(scale, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++) {
        const float r = (float)ref[i];
        int ok;
        if (isnan(r) || isinf(r))
            ok = isnan(r) ? isnan(y[i]) != 0 : y[i] == r;
        else
            ok = isfinite(y[i]) && fabs((double)y[i] - ref[i]) <= tol * scale;
        if (!ok) {
            snprintf(msg, len, "element %lld: %g, reference %g", (long long)i, (double)y[i], ref[i]);
            return 0;
        }
    }
    return 1;
}

typedef double (*loss_fn)(void *ctx);

/* Compares the analytic gradient g of f with respect to v (length n) with
 * central differences on `samples` random coordinates; returns the largest
 * error relative to max(1, |numeric|). */
static inline double fd_check(loss_fn f, void *ctx, double *v, const double *g, int64_t n, int samples)
{
    double worst = 0;
    const double h = 1e-6;
    for (int s = 0; s < samples && n > 0; s++) {
        int64_t i = (int64_t)cnni_rng_below(&rng, (uint64_t)n);
        double old = v[i];
        v[i] = old + h;
        double lp = f(ctx);
        v[i] = old - h;
        double lm = f(ctx);
        v[i] = old;
        double num = (lp - lm) / (2 * h);
        double err = fabs(num - g[i]) / fmax(1.0, fabs(num));
        if (!(err <= worst))
            worst = err;
    }
    return worst;
}

#endif
