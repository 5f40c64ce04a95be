/* Reference Linear: y[m, n] = b[n] + sum_k x[m, k] * w[n, k]. */
#include "real.h"
#include "linear_ref.h"

void REFN(cnni_ref_linear_forward)(int64_t M, int64_t N, int64_t K, const REAL *x, const REAL *w,
                                   const REAL *b, REAL *y)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            ACC acc = b ? b[n] : 0;
            for (int64_t k = 0; k < K; k++)
                acc += (ACC)x[m * K + k] * w[n * K + k];
            y[m * N + n] = (REAL)acc;
        }
}

void REFN(cnni_ref_linear_backward_data)(int64_t M, int64_t N, int64_t K, const REAL *dy,
                                         const REAL *w, REAL *dx)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) {
            ACC acc = 0;
            for (int64_t n = 0; n < N; n++)
                acc += (ACC)dy[m * N + n] * w[n * K + k];
            dx[m * K + k] = (REAL)acc;
        }
}

void REFN(cnni_ref_linear_backward_weight)(int64_t M, int64_t N, int64_t K, const REAL *x,
                                           const REAL *dy, REAL *dw, REAL *db)
{
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) {
            ACC acc = 0;
            for (int64_t m = 0; m < M; m++)
                acc += (ACC)dy[m * N + n] * x[m * K + k];
            dw[n * K + k] += (REAL)acc;
        }
        if (db) {
            ACC acc = 0;
            for (int64_t m = 0; m < M; m++)
                acc += dy[m * N + n];
            db[n] += (REAL)acc;
        }
    }
}
