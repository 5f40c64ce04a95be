/* The fast Linear kernels against the reference ones, for every
 * instruction set this CPU has, with 1 and 2 threads giving the same bits. */
#include "kernel_test.h"
#include "core/pool.h"
#include "kernels/linear_fast.h"
#include "kernels/ref/linear_ref.h"

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    cnni_pool *p1, *p2;
    cnni_pool_create(&p1, 1);
    cnni_pool_create(&p2, 2);
    for (int isa = 0; isa <= (int)cnni_cpu_best_isa(); isa++) {
        const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)isa);
        char name[96];
        snprintf(name, sizeof name, "fast Linear (%s) vs reference, threads bitwise equal", cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            double worst = 0;
            for (int t = 0; t < 40; t++) {
                int64_t M = pick(1, 70), N = pick(1, 150), K = pick(1, 300);
                if (t % 5 == 0)
                    M = pick(100, 300);
                float *x = rand_f(M * K), *w = rand_f(N * K), *b = rand_f(N), *dy = rand_f(M * N);
                float *y0 = malloc(4 * (size_t)(M * N)), *y1 = malloc(4 * (size_t)(M * N)), *y2 = malloc(4 * (size_t)(M * N));
                float *dx0 = malloc(4 * (size_t)(M * K)), *dx1 = malloc(4 * (size_t)(M * K)), *dx2 = malloc(4 * (size_t)(M * K));
                float *dw0 = rand_f(N * K), *db0 = rand_f(N);
                float *dw1 = malloc(4 * (size_t)(N * K)), *db1 = malloc(4 * (size_t)N);
                float *dw2 = malloc(4 * (size_t)(N * K)), *db2 = malloc(4 * (size_t)N);
                memcpy(dw1, dw0, 4 * (size_t)(N * K));
                memcpy(dw2, dw0, 4 * (size_t)(N * K));
                memcpy(db1, db0, 4 * (size_t)N);
                memcpy(db2, db0, 4 * (size_t)N);
                void *scr = malloc(cnni_linear_fast_scratch(k, M, K, 2));
                cnni_ref_linear_forward_f32(M, N, K, x, w, b, y0);
                cnni_ref_linear_backward_data_f32(M, N, K, dy, w, dx0);
                cnni_ref_linear_backward_weight_f32(M, N, K, x, dy, dw0, db0);
                cnni_linear_fast_forward(k, p1, M, N, K, x, w, b, y1, scr);
                cnni_linear_fast_backward_data(k, p1, M, N, K, dy, w, dx1, scr);
                cnni_linear_fast_backward_weight(k, p1, M, N, K, x, dy, dw1, db1, scr);
                cnni_linear_fast_forward(k, p2, M, N, K, x, w, b, y2, scr);
                cnni_linear_fast_backward_data(k, p2, M, N, K, dy, w, dx2, scr);
                cnni_linear_fast_backward_weight(k, p2, M, N, K, x, dy, dw2, db2, scr);
                double e = fmax(fmax(rel(y1, y0, M * N), rel(dx1, dx0, M * K)), fmax(rel(dw1, dw0, N * K), rel(db1, db0, N)));
                CHECKF(e < 1e-5, "M=%lld N=%lld K=%lld: error %.3g", (long long)M, (long long)N, (long long)K, e);
                CHECK(!memcmp(y1, y2, 4 * (size_t)(M * N)) && !memcmp(dx1, dx2, 4 * (size_t)(M * K)) &&
                      !memcmp(dw1, dw2, 4 * (size_t)(N * K)) && !memcmp(db1, db2, 4 * (size_t)N));
                worst = fmax(worst, e);
                free(x), free(w), free(b), free(dy), free(y0), free(y1), free(y2), free(dx0), free(dx1), free(dx2);
                free(dw0), free(db0), free(dw1), free(db1), free(dw2), free(db2), free(scr);
            }
            printf("  %s: worst relative error %.3g\n", cnni_isa_name((cnni_isa)isa), worst);
        }
    }
    /* The forward reading W in place (few rows, AVX2 and AVX-512) gives the
     * packed GEMM's bits: its K blocks, then the bias; every row count from
     * 3/4 of a vector to the most (those that take it and those between),
     * features not a multiple of its tile, K in up to 3 blocks. */
    for (int isa = CNNI_ISA_AVX2; isa <= (int)cnni_cpu_best_isa(); isa++) {
        char name[96];
        snprintf(name, sizeof name, "Linear forward with W in place (%s): the packed GEMM's bits",
                 cnni_isa_name((cnni_isa)isa));
        TEST(name)
        {
            const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)isa);
            int mismatched = 0, cases = 0, taken = 0;
            const int64_t lo = isa == CNNI_ISA_AVX2 ? 6 : 12;
            /* the path is taken at 32 rows (a shard of LeNet-5's batch of 64) */
            CHECK(cnni_linear_fast_w_in_place(k, 32) && !cnni_linear_fast_w_in_place(k, LINEAR_WT_MAX_M + 1));
            for (int t = 0; t < 60; t++) {
                /* every row count from lo to the most, the features and K at random */
                int64_t M = lo + t % (LINEAR_WT_MAX_M - lo + 1), N = pick(1, 40), K = pick(1, 300);
                taken += cnni_linear_fast_w_in_place(k, M);
                if (t % 6 == 0)
                    K = pick(1025, 3100);
                if (t % 3 == 0)
                    N = pick(40, 150);
                float *x = rand_f(M * K), *w = rand_f(N * K), *b = t % 4 ? rand_f(N) : NULL;
                float *y1 = malloc(4 * (size_t)(M * N)), *y2 = malloc(4 * (size_t)(M * N));
                float *ref = malloc(4 * (size_t)(M * N));
                for (int64_t i = 0; i < M * N; i++)
                    y1[i] = y2[i] = NAN;
                /* scratch as planned for a batch of Mp rows (a shard may
                 * have fewer), with guard bytes after it */
                const int64_t Mp = M + (t % 2 ? pick(1, 8) : 0);
                const size_t bytes = cnni_linear_fast_scratch(k, Mp, K, 2);
                unsigned char *scr = malloc(bytes + 256);
                memset(scr + bytes, 0xA5, 256);
                cnni_linear_fast_forward(k, p1, M, N, K, x, w, b, y1, scr);
                cnni_linear_fast_forward(k, p2, M, N, K, x, w, b, y2, scr);
                int guard = 1;
                for (int i = 0; i < 256; i++)
                    guard &= scr[bytes + i] == 0xA5;
                CHECKF(guard, "M=%lld (planned %lld) K=%lld: wrote past its scratch", (long long)M, (long long)Mp,
                       (long long)K);
                /* the packed GEMM as the forward runs it for other row counts */
                const cnni_gemm_kernel *kr = cnni_gemm_kernel_for_rows((cnni_isa)isa, M);
                void *gs = malloc(cnni_gemm_scratch_bytes(kr) + 64);
                cnni_gemm_op op;
                memset(&op, 0, sizeof op);
                op.M = M, op.N = N, op.K = K, op.a = x, op.lda = K, op.b = w, op.ldb = K, op.trans_b = 1;
                op.c = ref, op.ldc = N;
                cnni_gemm(kr, &op, 0, N, gs);
                if (b)
                    for (int64_t m = 0; m < M; m++)
                        for (int64_t n = 0; n < N; n++)
                            ref[m * N + n] += b[n];
                cases++;
                if (memcmp(y1, ref, 4 * (size_t)(M * N)) || memcmp(y2, ref, 4 * (size_t)(M * N))) {
                    mismatched++;
                    printf("  M=%lld N=%lld K=%lld bias %d: differs from the packed GEMM (error %.3g)\n",
                           (long long)M, (long long)N, (long long)K, b != NULL, rel(y1, ref, M * N));
                }
                free(x), free(w), free(b), free(y1), free(y2), free(ref), free(scr), free(gs);
            }
            CHECKF(mismatched == 0, "%d of %d shapes differ", mismatched, cases);
            CHECKF(taken >= 15, "only %d of %d shapes took the path", taken, cases);
        }
    }
    cnni_pool_destroy(p1);
    cnni_pool_destroy(p2);
    return test_finish();
}
