/* Random numbers: xoshiro256** with splitmix64 seeding. The state is four
 * words, passed explicitly and saved in checkpoints. */
#include "internal.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void cnni_rng_seed(cnni_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cnni_rng_u64(cnni_rng *r) { return cnni_xoshiro_next(r->s); }

double cnni_rng_uniform(cnni_rng *r) { return (double)(cnni_rng_u64(r) >> 11) * 0x1.0p-53; }

double cnni_rng_uniform_range(cnni_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * cnni_rng_uniform(r);
}

double cnni_rng_normal(cnni_rng *r)
{
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    double u1 = 1.0 - cnni_rng_uniform(r);
    double u2 = cnni_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t cnni_rng_below(cnni_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Rejection sampling keeps the draw exactly uniform. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = cnni_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void cnni_rng_split(cnni_rng *r, uint64_t stream, cnni_rng *out)
{
    uint64_t x = r->s[0] ^ rotl(r->s[1], 13) ^ rotl(r->s[2], 29) ^ rotl(r->s[3], 43);
    x ^= stream * UINT64_C(0xd1b54a32d192ed03);
    for (int i = 0; i < 4; i++)
        out->s[i] = splitmix64(&x);
}

void cnn_rng_seed(cnn_rng *r, uint64_t seed)
{
    if (r)
        cnni_rng_seed(r, seed);
}

uint64_t cnn_rng_next(cnn_rng *r) { return r ? cnni_rng_u64(r) : 0; }
uint64_t cnn_rng_below(cnn_rng *r, uint64_t n) { return r ? cnni_rng_below(r, n) : 0; }
double cnn_rng_uniform(cnn_rng *r) { return r ? cnni_rng_uniform(r) : 0; }
