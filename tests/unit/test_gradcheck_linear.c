/* Finite-difference gradient checks (double) of the Linear kernels. */
#include "gradcheck.h"
#include "kernels/ref/linear_ref.h"

typedef struct {
    int64_t M, N, K;
    double *x, *w, *b, *y, *r;
} lin_case;

static double lin_loss(void *ctx)
{
    lin_case *c = ctx;
    cnni_ref_linear_forward_f64(c->M, c->N, c->K, c->x, c->w, c->b, c->y);
    return dot(c->y, c->r, c->M * c->N);
}

int main(int argc, char **argv)
{
    gc_init(argc, argv);
    TEST("linear gradients (double, finite differences)")
    {
        double worst = 0;
        for (int t = 0; t < 40; t++) {
            lin_case c = {pick(1, 5), pick(1, 6), pick(1, 7), 0, 0, 0, 0, 0};
            int bias = pick(0, 1);
            c.x = rand_vec(c.M * c.K);
            c.w = rand_vec(c.N * c.K);
            c.b = bias ? rand_vec(c.N) : NULL;
            c.y = rand_vec(c.M * c.N);
            c.r = rand_vec(c.M * c.N);
            double *dx = calloc((size_t)(c.M * c.K), sizeof(double));
            double *dw = calloc((size_t)(c.N * c.K), sizeof(double));
            double *db = calloc((size_t)c.N, sizeof(double));
            cnni_ref_linear_backward_data_f64(c.M, c.N, c.K, c.r, c.w, dx);
            cnni_ref_linear_backward_weight_f64(c.M, c.N, c.K, c.x, c.r, dw, bias ? db : NULL);
            double e = fd_check(lin_loss, &c, c.x, dx, c.M * c.K, 10);
            e = fmax(e, fd_check(lin_loss, &c, c.w, dw, c.N * c.K, 10));
            if (bias)
                e = fmax(e, fd_check(lin_loss, &c, c.b, db, c.N, 4));
            CHECKF(e < 1e-6, "M=%lld N=%lld K=%lld bias=%d: relative error %.3g", (long long)c.M,
                   (long long)c.N, (long long)c.K, bias, e);
            worst = fmax(worst, e);
            free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
        }
        printf("  worst relative error %.3g over 40 random shapes\n", worst);
    }
    return test_finish();
}
