/* The packed GEMM against a naive double-precision product, for every
 * instruction set this CPU has: random and edge sizes, transposes,
 * accumulation and bias, and column splits (results must not depend on
 * how the columns are split across threads). */
#include "kernel_test.h"
#include "kernels/gemm.h"

static void naive(const cnni_gemm_op *op, const float *c0, double *out)
{
    for (int64_t i = 0; i < op->M; i++)
        for (int64_t j = 0; j < op->N; j++) {
            double s = op->accumulate ? c0[i * op->ldc + j] : 0;
            if (op->bias)
                s += op->bias[i];
            for (int64_t k = 0; k < op->K; k++) {
                double a = op->trans_a ? op->a[k * op->lda + i] : op->a[i * op->lda + k];
                double b = op->trans_b ? op->b[j * op->ldb + k] : op->b[k * op->ldb + j];
                s += a * b;
            }
            out[i * op->N + j] = s;
        }
}

static double check_one(const cnni_gemm_kernel *k, int64_t M, int64_t N, int64_t K, int ta, int tb,
                        int accumulate, int bias, int split)
{
    cnni_gemm_op op;
    memset(&op, 0, sizeof op);
    op.M = M;
    op.N = N;
    op.K = K;
    op.trans_a = ta;
    op.trans_b = tb;
    op.lda = ta ? M + 1 : K + 2; /* padded leading dimensions */
    op.ldb = tb ? K + 3 : N + 1;
    op.ldc = N + 2;
    float *a = rand_f((ta ? K : M) * op.lda), *b = rand_f((tb ? N : K) * op.ldb);
    float *c = rand_f(M * op.ldc), *c0 = malloc(sizeof(float) * (size_t)(M * op.ldc + 1));
    memcpy(c0, c, sizeof(float) * (size_t)(M * op.ldc));
    float *bv = bias ? rand_f(M) : NULL;
    op.a = a;
    op.b = b;
    op.c = c;
    op.accumulate = accumulate;
    op.bias = bv;
    void *scratch = malloc(cnni_gemm_scratch_bytes(k));
    if (split > 1) {
        for (int s = 0; s < split; s++) {
            int64_t n0 = N * s / split, n1 = N * (s + 1) / split;
            cnni_gemm(k, &op, n0, n1, scratch);
        }
    } else {
        cnni_gemm(k, &op, 0, N, scratch);
    }
    double *want = malloc(sizeof(double) * (size_t)(M * N + 1));
    naive(&op, c0, want);
    double worst = 0;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double e = fabs(c[i * op.ldc + j] - want[i * N + j]) / (1 + sqrt((double)K));
            if (!(e <= worst))
                worst = e;
        }
        /* The padding between rows of C is never written. */
        for (int64_t j = N; j < op.ldc; j++)
            if (c[i * op.ldc + j] != c0[i * op.ldc + j])
                worst = INFINITY;
    }
    free(a), free(b), free(c), free(c0), free(bv), free(scratch), free(want);
    return worst;
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    cnni_isa best = cnni_cpu_best_isa();
    printf("  this CPU: %s\n", cnni_isa_name(best));
    /* Every kernel: the heights an ISA has are reached through the row counts
     * that select them. */
    const int64_t rows[] = {12, 8, 6, 4};
    const cnni_gemm_kernel *seen[16];
    int nseen = 0;
    for (int isa = 0; isa <= (int)best; isa++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
        const cnni_gemm_kernel *k = cnni_gemm_kernel_for_rows((cnni_isa)isa, rows[ri]);
        int dup = 0;
        for (int s = 0; s < nseen; s++)
            dup |= seen[s] == k;
        if (dup)
            continue;
        seen[nseen++] = k;
        char name[96];
        snprintf(name, sizeof name, "gemm %s (MR %d, NR %d) vs naive product", cnni_isa_name((cnni_isa)isa),
                 k->mr, k->nr);
        TEST(name)
        {
            double worst = 0;
            int64_t sizes[][3] = {{1, 1, 1}, {k->mr, k->nr, 1}, {k->mr + 1, k->nr + 1, 3},
                                  {2 * k->mr - 1, 3 * k->nr - 1, 257}, {97, 530, 300}, {5, 1030, 17},
                                  {130, 7, 513}, {13, 70, 2051}, {0, 5, 3}, {4, 0, 3}, {3, 4, 0}};
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                for (int v = 0; v < 8; v++) {
                    double e = check_one(k, sizes[s][0], sizes[s][1], sizes[s][2], v & 1, (v >> 1) & 1,
                                         (v >> 2) & 1, v == 3 || v == 6, 1 + (v % 3));
                    CHECKF(e < 5e-6, "M=%lld N=%lld K=%lld variant %d: error %.3g", (long long)sizes[s][0],
                           (long long)sizes[s][1], (long long)sizes[s][2], v, e);
                    worst = fmax(worst, e);
                }
            for (int t = 0; t < 30; t++) {
                int64_t M = pick(1, 80), N = pick(1, 200), K = pick(1, 600);
                int v = (int)pick(0, 7);
                double e = check_one(k, M, N, K, v & 1, (v >> 1) & 1, (v >> 2) & 1, (int)pick(0, 1), (int)pick(1, 4));
                CHECKF(e < 5e-6, "M=%lld N=%lld K=%lld variant %d: error %.3g", (long long)M,
                       (long long)N, (long long)K, v, e);
                worst = fmax(worst, e);
            }
            printf("  %s MR %d: worst error %.3g (scaled by 1 + sqrt(K))\n", cnni_isa_name((cnni_isa)isa), k->mr, worst);
        }
        if (k->pack_a) {
            snprintf(name, sizeof name, "gemm %s (MR %d): the A packer writes the portable packer's bytes",
                     cnni_isa_name((cnni_isa)isa), k->mr);
            TEST(name)
            {
                for (int t = 0; t < 40; t++) {
                    cnni_gemm_op op;
                    memset(&op, 0, sizeof op);
                    const int64_t mc = pick(1, 3 * k->mr + 1), kc = pick(1, 70), m0 = pick(0, 5), k0 = pick(0, 9);
                    op.M = m0 + mc;
                    op.K = k0 + kc;
                    op.trans_a = t % 5 == 4;
                    op.lda = (op.trans_a ? op.M : op.K) + pick(0, 3);
                    float *a = rand_f((op.trans_a ? op.K : op.M) * op.lda);
                    op.a = a;
                    const size_t n = (size_t)((mc + k->mr) * kc);
                    float *d1 = malloc(sizeof(float) * n), *d2 = malloc(sizeof(float) * n);
                    memset(d1, 0xA5, sizeof(float) * n);
                    memset(d2, 0xA5, sizeof(float) * n);
                    k->pack_a(&op, m0, mc, k0, kc, k->mr, d1);
                    cnni_pack_a_plain(&op, m0, mc, k0, kc, k->mr, d2);
                    const size_t used = (size_t)(((mc + k->mr - 1) / k->mr) * k->mr * kc);
                    CHECKF(!memcmp(d1, d2, sizeof(float) * used) && !memcmp(d1 + used, d2 + used, sizeof(float) * (n - used)),
                           "mc %lld kc %lld m0 %lld k0 %lld trans %d", (long long)mc, (long long)kc, (long long)m0,
                           (long long)k0, op.trans_a);
                    free(a), free(d1), free(d2);
                }
            }
        }
        }
    return test_finish();
}
