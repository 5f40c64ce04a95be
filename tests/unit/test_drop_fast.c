/* The dropout factors (kernels/drop_fast.h) against draws made one at a
 * time: element i's factor is 0 exactly where draw i / 8 of stream i % 8
 * (cnni_rng_split, then cnni_rng_uniform) is below p, else 1 / (1 - p);
 * y = x times it; the caller's generator ends at cnni_rng_split(r, 8).
 * Every instruction set this machine runs, sizes with every tail, drop
 * probabilities with and without an exact binary value. */
#include "gradcheck.h"
#include "core/cpu.h"
#include "kernels/drop_fast.h"

static const double probs[] = {0.25, 0.5, 1.0 / 3, 0.9, 1e-3, 0.999, 0.0};

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    for (int isa = CNNI_ISA_GENERIC; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "dropout factors: stream i %% 8, draw i / 8, bit for bit (%s)",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            for (int t = 0; t < 120; t++) {
                const int64_t n = t < 40 ? t : t < 100 ? pick(1, 300) : pick(4000, 4100);
                const double p = probs[t % (int)(sizeof probs / sizeof probs[0])];
                const float keep = (float)(1.0 / (1.0 - p));
                const int with_y = t % 3 != 0;
                float *x = malloc(sizeof(float) * (size_t)(n + 1)), *f = malloc(sizeof(float) * (size_t)(n + 1)),
                      *y = malloc(sizeof(float) * (size_t)(n + 1)), *fr = malloc(sizeof(float) * (size_t)(n + 1));
                for (int64_t i = 0; i < n; i++) {
                    x[i] = (float)cnni_rng_uniform_range(&rng, -4, 4);
                    f[i] = y[i] = NAN; /* every element must be written */
                }
                cnni_rng r, r0, lanes[CNNI_DROP_LANES];
                cnni_rng_seed(&r, cnni_rng_u64(&rng));
                r0 = r;
                for (int l = 0; l < CNNI_DROP_LANES; l++)
                    cnni_rng_split(&r0, (uint64_t)l, &lanes[l]);
                for (int64_t i = 0; i < n; i++)
                    fr[i] = cnni_rng_uniform(&lanes[i % CNNI_DROP_LANES]) < p ? 0.0f : keep;
                cnni_drop_fast_factors(isa, &r, n, p, keep, f, with_y ? x : NULL, with_y ? y : NULL);
                int64_t bad = 0, kept = 0;
                for (int64_t i = 0; i < n; i++) {
                    bad += memcmp(&f[i], &fr[i], sizeof(float)) != 0;
                    if (with_y) {
                        const float want = x[i] * fr[i];
                        bad += memcmp(&y[i], &want, sizeof(float)) != 0;
                    }
                    kept += fr[i] != 0;
                }
                cnni_rng next;
                cnni_rng_split(&r0, CNNI_DROP_LANES, &next);
                CHECKF(bad == 0, "case %d (n %lld, p %g): %lld values differ", t, (long long)n, p, (long long)bad);
                CHECKF(!memcmp(&r, &next, sizeof r), "case %d: the generator did not move on to stream 8", t);
                if (n >= 4000) /* the draws are uniform: the kept fraction near 1 - p */
                    CHECKF(fabs((double)kept / (double)n - (1 - p)) <= 5 * sqrt(p * (1 - p) / (double)n) + 1e-9,
                           "case %d: kept %lld of %lld at p %g", t, (long long)kept, (long long)n, p);
                free(x), free(f), free(y), free(fr);
            }
        }
    }
    return test_finish();
}
