/* The random layers in training mode (RReLU, Dropout, Dropout2d), whose
 * draws cannot match PyTorch's: their law is tested instead, through the
 * library API. RReLU's slopes lie in [lower, upper] and multiply the
 * elements <= 0; Dropout keeps values scaled by exactly 1/(1-p) and zeroes
 * the others, a fraction close to p; Dropout2d zeroes whole (sample,
 * channel) slices; gradients use the same draw; a seed fixes the draw.
 * Eval mode (compared with PyTorch elsewhere) is checked to be the fixed
 * function, and forward-only plans to draw the same as backward plans. */
#include "test.h"

#include <stdint.h>
#include <time.h>

static uint64_t seed;
static uint64_t state;

/* A small generator for inputs, independent of the library's. */
static double urand(void)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(state >> 11) * 0x1.0p-53;
}

typedef struct run {
    cnn_graph *g;
    int64_t n;
    float *x, *y, *gy, *dx;
    cnn_shape shape;
} run;

/* Parses `model`, plans it for `shape` (with backward unless fwd_only) and
 * fills the input with values in [-2, 2), a tenth of them exactly 0, and the
 * output gradient with values in [0.5, 1.5) (never 0, so the gradient shows
 * the factor). */
static int setup(run *r, const char *model, int ndim, const int64_t *dims, int fwd_only)
{
    memset(r, 0, sizeof *r);
    r->shape.ndim = ndim;
    r->n = 1;
    for (int i = 0; i < ndim; i++) {
        r->shape.dims[i] = dims[i];
        r->n *= dims[i];
    }
    cnn_graph_create(&r->g);
    cnn_status st = cnn_graph_parse(r->g, model, "m.txt");
    CHECKF(st == CNN_OK, "%s: %s", model, cnn_graph_errmsg(r->g));
    if (st)
        return 0;
    st = cnn_graph_plan(r->g, 1, &r->shape, NULL,
                        fwd_only ? 0 : CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD);
    CHECKF(st == CNN_OK, "%s: %s", model, cnn_graph_errmsg(r->g));
    if (st)
        return 0;
    r->x = cnn_graph_input_data(r->g, 0);
    for (int64_t i = 0; i < r->n; i++)
        r->x[i] = urand() < 0.1 ? 0.0f : (float)(urand() * 4 - 2);
    return 1;
}

static int forward(run *r, int training, uint64_t s)
{
    cnn_graph_set_seed(r->g, s);
    cnn_status st = cnn_graph_forward(r->g, training);
    CHECKF(st == CNN_OK, "forward: %s", cnn_graph_errmsg(r->g));
    if (st)
        return 0;
    cnn_graph_output(r->g, 0, (void **)&r->y, NULL, NULL);
    return 1;
}

static int backward(run *r)
{
    r->gy = cnn_graph_output_grad(r->g, 0);
    for (int64_t i = 0; i < r->n; i++)
        r->gy[i] = (float)(0.5 + urand());
    cnn_status st = cnn_graph_backward(r->g);
    CHECKF(st == CNN_OK, "backward: %s", cnn_graph_errmsg(r->g));
    if (st)
        return 0;
    r->dx = (float *)cnn_graph_input_grad(r->g, 0);
    return 1;
}

static void done(run *r) { cnn_graph_destroy(r->g); }

static float *copy(const float *v, int64_t n)
{
    float *c = malloc(sizeof(float) * (size_t)(n ? n : 1));
    memcpy(c, v, sizeof(float) * (size_t)n);
    return c;
}

static void check_rrelu(double lower, double upper)
{
    char model[96];
    snprintf(model, sizeof model, "RReLU(%.17g, %.17g)", lower, upper);
    int64_t dims[3] = {4, 50, 50};
    uint64_t inputs = state;
    run r;
    if (!setup(&r, model, 3, dims, 0) || !forward(&r, 1, seed) || !backward(&r)) {
        done(&r);
        return;
    }
    /* Float slopes: allow one rounding either side of the bounds. */
    double lo = lower - 1e-6 * fabs(lower) - 1e-12, hi = upper + 1e-6 * fabs(upper) + 1e-12;
    int64_t bad = 0, nneg = 0, distinct = 0;
    double sum = 0, first = NAN;
    for (int64_t i = 0; i < r.n; i++) {
        float x = r.x[i], y = r.y[i], gy = r.gy[i], dx = r.dx[i];
        if (x > 0) {
            bad += y != x || dx != gy;
            continue;
        }
        /* The gradient reveals the slope, also where x is 0. */
        double slope = (double)dx / gy;
        bad += !(slope >= lo && slope <= hi);
        bad += fabs((double)y - (double)x * slope) > 1e-6 * fabs(x);
        nneg++;
        sum += slope;
        if (isnan(first))
            first = slope;
        distinct += fabs(slope - first) > 1e-9;
    }
    CHECKF(bad == 0, "%s: %lld elements break the law", model, (long long)bad);
    if (upper > lower) {
        CHECKF(distinct > nneg / 2, "%s: slopes are not random (%lld of %lld differ)", model,
               (long long)distinct, (long long)nneg);
        double mean = sum / (double)nneg;
        CHECKF(fabs(mean - (lower + upper) / 2) < 0.02 * (upper - lower) + 1e-6,
               "%s: mean slope %g, expected about %g", model, mean, (lower + upper) / 2);
    }
    /* Same seed, same draw; another seed, another. */
    float *y1 = copy(r.y, r.n);
    forward(&r, 1, seed);
    CHECK(memcmp(y1, r.y, sizeof(float) * (size_t)r.n) == 0);
    forward(&r, 1, seed + 1);
    if (upper > lower)
        CHECK(memcmp(y1, r.y, sizeof(float) * (size_t)r.n) != 0);
    /* A forward-only plan draws the same slopes. */
    run f;
    state = inputs;
    if (setup(&f, model, 3, dims, 1) && forward(&f, 1, seed))
        CHECK(memcmp(y1, f.y, sizeof(float) * (size_t)r.n) == 0);
    done(&f);
    /* Eval: LeakyReLU with the middle slope, in both directions. */
    if (forward(&r, 0, seed) && backward(&r)) {
        float mid = (float)((lower + upper) / 2);
        int64_t ebad = 0;
        for (int64_t i = 0; i < r.n; i++) {
            float x = r.x[i];
            double want = x > 0 ? x : (double)x * mid;
            double wantd = x > 0 ? r.gy[i] : (double)r.gy[i] * mid;
            ebad += fabs(r.y[i] - want) > 1e-6 * fabs(want) + 1e-30;
            ebad += fabs(r.dx[i] - wantd) > 1e-6 * fabs(wantd) + 1e-30;
        }
        CHECKF(ebad == 0, "%s eval: %lld values differ from LeakyReLU(%g)", model, (long long)ebad,
               (double)mid);
    }
    free(y1);
    done(&r);
}

/* Checks one Dropout or Dropout2d run: the factor of each element, read
 * from the gradient, is 0 or exactly scale, constant on every block of
 * `inner` elements; returns the fraction of dropped blocks. */
static double check_mask(const run *r, const char *model, double p, int64_t inner)
{
    float scale = (float)(1.0 / (1.0 - p));
    int64_t bad = 0, dropped = 0, blocks = r->n / inner;
    for (int64_t b = 0; b < blocks; b++) {
        int kept = r->dx[b * inner] != 0;
        dropped += !kept;
        for (int64_t i = b * inner; i < (b + 1) * inner; i++) {
            if (kept)
                bad += r->y[i] != r->x[i] * scale || r->dx[i] != r->gy[i] * scale;
            else
                bad += r->y[i] != 0 || r->dx[i] != 0;
        }
    }
    CHECKF(bad == 0, "%s: %lld elements are neither dropped nor scaled by exactly %.9g (in blocks "
                     "of %lld)",
           model, (long long)bad, (double)scale, (long long)inner);
    return (double)dropped / (double)blocks;
}

static void check_dropout(const char *layer, double p, int ndim, const int64_t *dims, int64_t inner)
{
    char model[96];
    snprintf(model, sizeof model, "%s(p=%.17g)", layer, p);
    uint64_t inputs = state;
    run r;
    if (!setup(&r, model, ndim, dims, 0) || !forward(&r, 1, seed) || !backward(&r)) {
        done(&r);
        return;
    }
    double frac = check_mask(&r, model, p, inner);
    double blocks = (double)(r.n / inner);
    /* Five standard deviations of the binomial fraction. */
    double tol = 5 * sqrt(p * (1 - p) / blocks) + 1e-12;
    CHECKF(fabs(frac - p) <= tol, "%s: dropped %.4f of %g blocks, expected %g +- %.4f", model, frac,
           blocks, p, tol);
    float *y1 = copy(r.y, r.n);
    forward(&r, 1, seed);
    CHECK(memcmp(y1, r.y, sizeof(float) * (size_t)r.n) == 0);
    if (p > 0.05 && p < 0.95 && blocks >= 64) {
        forward(&r, 1, seed + 1);
        CHECK(memcmp(y1, r.y, sizeof(float) * (size_t)r.n) != 0);
        /* Each call draws afresh: without reseeding the mask changes. */
        forward(&r, 1, seed);
        cnn_graph_forward(r.g, 1);
        float *y3;
        cnn_graph_output(r.g, 0, (void **)&y3, NULL, NULL);
        CHECK(memcmp(y1, y3, sizeof(float) * (size_t)r.n) != 0);
    }
    run f;
    state = inputs;
    if (setup(&f, model, ndim, dims, 1) && forward(&f, 1, seed))
        CHECK(memcmp(y1, f.y, sizeof(float) * (size_t)r.n) == 0);
    done(&f);
    /* Eval: the identity both ways. */
    if (forward(&r, 0, seed) && backward(&r)) {
        CHECK(memcmp(r.y, r.x, sizeof(float) * (size_t)r.n) == 0);
        CHECK(memcmp(r.dx, r.gy, sizeof(float) * (size_t)r.n) == 0);
    }
    free(y1);
    done(&r);
}

/* p = 0 is the identity and p = 1 zeroes everything, in training too. */
static void check_dropout_extremes(const char *layer, int ndim, const int64_t *dims)
{
    for (int k = 0; k < 2; k++) {
        char model[64];
        snprintf(model, sizeof model, "%s(%s)", layer, k ? "1.0" : "p=0");
        run r;
        if (setup(&r, model, ndim, dims, 0) && forward(&r, 1, seed) && backward(&r)) {
            int64_t bad = 0;
            for (int64_t i = 0; i < r.n; i++)
                bad += k ? (r.y[i] != 0 || r.dx[i] != 0) : (r.y[i] != r.x[i] || r.dx[i] != r.gy[i]);
            CHECKF(bad == 0, "%s: %lld elements wrong", model, (long long)bad);
        }
        done(&r);
    }
}

int main(int argc, char **argv)
{
    seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu (rerun: %s %llu)\n", (unsigned long long)seed, argv[0],
           (unsigned long long)seed);
    state = seed;

    TEST("RReLU training: slopes in [lower, upper], gradient by the same slopes, seeded")
    {
        check_rrelu(1.0 / 8, 1.0 / 3);
        check_rrelu(0.01, 0.9);
        check_rrelu(-0.5, 0.25);
        check_rrelu(0.3, 0.3);
    }

    int64_t d4[4] = {8, 16, 5, 3}, d3[3] = {10, 30, 4}, d2[2] = {40, 50}, d5[5] = {6, 12, 2, 1, 3},
            d1[1] = {3000};
    TEST("Dropout training: kept values scaled by exactly 1/(1-p), others 0, fraction p")
    {
        check_dropout("Dropout", 0.5, 4, d4, 1);
        check_dropout("Dropout", 0.2, 2, d2, 1);
        check_dropout("Dropout", 0.9, 1, d1, 1);
        check_dropout("Dropout", 1.0 / 3, 3, d3, 1);
    }

    TEST("Dropout2d training: whole (sample, channel) slices, any rank as PyTorch 1.13")
    {
        check_dropout("Dropout2d", 0.5, 4, d4, 15);
        check_dropout("Dropout2d", 0.3, 3, d3, 4);   /* (N, C, L): channels of length L */
        check_dropout("Dropout2d", 0.25, 5, d5, 6);  /* (N, C, D, H, W) */
        check_dropout("Dropout2d", 0.6, 2, d2, 1);   /* (N, C): single elements */
    }

    TEST("Dropout and Dropout2d with p = 0 and p = 1 in training")
    {
        check_dropout_extremes("Dropout", 3, d3);
        check_dropout_extremes("Dropout2d", 4, d4);
        check_dropout_extremes("Dropout2d", 1, d1); /* allowed on 1-d: no mask is drawn */
    }

    TEST("Dropout2d on fewer than 2 dims: an error in training, the identity in eval")
    {
        run r;
        if (setup(&r, "Dropout2d(0.5)", 1, d1, 0)) {
            cnn_status st = cnn_graph_forward(r.g, 1);
            CHECK_ERR(st, CNN_ERR_SHAPE, cnn_graph_errmsg(r.g), "Dropout2d", "at least 2 dimensions",
                      "[3000]");
            if (forward(&r, 0, seed))
                CHECK(memcmp(r.y, r.x, sizeof(float) * (size_t)r.n) == 0);
        }
        done(&r);
    }
    return test_finish();
}
