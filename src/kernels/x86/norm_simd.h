/* Normalisation span loops written once over a vector type (see
 * act_simd.h for the macros); included by norm_avx512.c and norm_avx2.c. */

#define FLUSH 256 /* elements summed in float before adding to double: 16 or 32 per lane, so
                   * sums that nearly cancel (a bias gradient) keep their accuracy */

static double s_sum(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        V a0 = VSET(0.0f), a1 = VSET(0.0f);
        for (; j + 2 * W <= e; j += 2 * W) {
            a0 = VADD(a0, VLOAD(x + j));
            a1 = VADD(a1, VLOAD(x + j + W));
        }
        for (; j + W <= e; j += W)
            a0 = VADD(a0, VLOAD(x + j));
        s += VSUM(VADD(a0, a1));
        for (; j < e; j++)
            s += x[j];
    }
    return s;
}

/* (x - hi) - lo: the deviation from a mean given as two floats. */
#define DEV(x) VSUB(VSUB((x), mh), ml)

static void s_dev2(const float *x, int64_t n, float hi, float lo, double *sd, double *sd2)
{
    const V mh = VSET(hi), ml = VSET(lo);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        V a = VSET(0.0f), b = VSET(0.0f);
        for (; j + W <= e; j += W) {
            V d = DEV(VLOAD(x + j));
            a = VADD(a, d);
            b = VFMADD(d, d, b);
        }
        s1 += VSUM(a);
        s2 += VSUM(b);
        for (; j < e; j++) {
            float d = (x[j] - hi) - lo;
            s1 += d;
            s2 += (double)(d * d);
        }
    }
    *sd = s1;
    *sd2 = s2;
}

/* One element of the affine map outside the vector loop. Every span that
 * recomputes the forward's output (the ReLU-fused ones) uses this and the
 * same vector/tail split, so it gets the forward's exact bits. */
static inline float s_aff1(float x, float hi, float lo, float a, float b) { return ((x - hi) - lo) * a + b; }

static void s_affine(const float *x, int64_t n, float hi, float lo, float a, float b, float *y)
{
    const V mh = VSET(hi), ml = VSET(lo), va = VSET(a), vb = VSET(b);
    int64_t j = 0;
    for (; j + W <= n; j += W)
        VSTORE(y + j, VFMADD(DEV(VLOAD(x + j)), va, vb));
    for (; j < n; j++)
        y[j] = s_aff1(x[j], hi, lo, a, b);
}

/* ReLU as the activation kernels compute it: 0 where y <= 0, NaN kept. */
static inline float s_relu1(float y) { return y > 0 ? y : (y != y ? y : 0.0f); }

static void s_affine_relu(const float *x, int64_t n, float hi, float lo, float a, float b, float *y, float *z)
{
    const V mh = VSET(hi), ml = VSET(lo), va = VSET(a), vb = VSET(b);
    int64_t j = 0;
    for (; j + W <= n; j += W) {
        const V t = VFMADD(DEV(VLOAD(x + j)), va, vb);
        VSTORE(y + j, t);
        VSTORE(z + j, VRELU(t));
    }
    for (; j < n; j++) {
        const float t = s_aff1(x[j], hi, lo, a, b);
        y[j] = t;
        z[j] = s_relu1(t);
    }
}

/* The gradient through the ReLU: 0 where the forward's output was <= 0,
 * else dz (NaN too, as PyTorch's threshold_backward). */
#define GVEC(j) VPOS(VFMADD(DEV(VLOAD(x + (j))), va, vb), VLOAD(dz + (j)))
#define GONE(j) (s_aff1(x[j], hi, lo, a, b) <= 0 ? 0.0f : dz[j])

static void s_relu_grad(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b, float *g)
{
    const V mh = VSET(hi), ml = VSET(lo), va = VSET(a), vb = VSET(b);
    int64_t j = 0;
    for (; j + W <= n; j += W)
        VSTORE(g + j, GVEC(j));
    for (; j < n; j++)
        g[j] = GONE(j);
}

static void s_sums_relu(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b,
                        double *sdy, double *sdyx)
{
    const V mh = VSET(hi), ml = VSET(lo), va = VSET(a), vb = VSET(b);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        V sa = VSET(0.0f), sb = VSET(0.0f);
        for (; j + W <= e; j += W) {
            V g = GVEC(j);
            sa = VADD(sa, g);
            sb = VFMADD(g, DEV(VLOAD(x + j)), sb);
        }
        s1 += VSUM(sa);
        s2 += VSUM(sb);
        for (; j < e; j++) {
            const float g = GONE(j);
            s1 += g;
            s2 += (double)(g * ((x[j] - hi) - lo));
        }
    }
    *sdy = s1;
    *sdyx = s2;
}

static void s_sums(const float *x, const float *dy, int64_t n, float hi, float lo, double *sdy, double *sdyx)
{
    const V mh = VSET(hi), ml = VSET(lo);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i += FLUSH) {
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;
        V a = VSET(0.0f), b = VSET(0.0f);
        for (; j + W <= e; j += W) {
            V g = VLOAD(dy + j);
            a = VADD(a, g);
            b = VFMADD(g, DEV(VLOAD(x + j)), b);
        }
        s1 += VSUM(a);
        s2 += VSUM(b);
        for (; j < e; j++) {
            s1 += dy[j];
            s2 += (double)(dy[j] * ((x[j] - hi) - lo));
        }
    }
    *sdy = s1;
    *sdyx = s2;
}

/* dx[j] = GV(j) (vectors) or G1(j) (the tail), and with sdx set its sum:
 * float lanes over FLUSH elements (a multiple of W, so the vector and tail
 * elements are the same either way), then double. */
#define GRAD_SPAN(GV, G1)                                                                                   \
    if (!sdx) {                                                                                             \
        int64_t j = 0;                                                                                      \
        for (; j + W <= n; j += W)                                                                          \
            VSTORE(dx + j, GV(j));                                                                          \
        for (; j < n; j++)                                                                                  \
            dx[j] = G1(j);                                                                                  \
        return;                                                                                             \
    }                                                                                                       \
    double s = 0;                                                                                           \
    for (int64_t i = 0; i < n; i += FLUSH) {                                                                \
        int64_t e = i + FLUSH < n ? i + FLUSH : n, j = i;                                                   \
        V acc = VSET(0.0f);                                                                                 \
        for (; j + W <= e; j += W) {                                                                        \
            const V d = GV(j);                                                                              \
            VSTORE(dx + j, d);                                                                              \
            acc = VADD(acc, d);                                                                             \
        }                                                                                                   \
        s += VSUM(acc);                                                                                     \
        for (; j < e; j++) {                                                                                \
            const float d = G1(j);                                                                          \
            dx[j] = d;                                                                                      \
            s += d;                                                                                         \
        }                                                                                                   \
    }                                                                                                       \
    *sdx = s;

static void s_grad(const float *x, const float *dy, int64_t n, float hi, float lo, float r, float w, float c,
                   float k, float *dx, double *sdx)
{
    const V mh = VSET(hi), ml = VSET(lo), vr = VSET(r), vw = VSET(w), vc = VSET(c), vk = VSET(k);
#define GV(j) VFMADD(vr, VSUB(VMUL(vw, VLOAD(dy + (j))), vc), VMUL(vk, DEV(VLOAD(x + (j)))))
#define G1(j) (r * (w * dy[j] - c) + k * ((x[j] - hi) - lo))
    GRAD_SPAN(GV, G1)
#undef GV
#undef G1
}

static void s_grad_relu(const float *x, const float *dz, int64_t n, float hi, float lo, float a, float b, float r,
                        float w, float c, float k, float *dx, double *sdx)
{
    const V mh = VSET(hi), ml = VSET(lo), va = VSET(a), vb = VSET(b);
    const V vr = VSET(r), vw = VSET(w), vc = VSET(c), vk = VSET(k);
#define GV(j) VFMADD(vr, VSUB(VMUL(vw, GVEC(j)), vc), VMUL(vk, DEV(VLOAD(x + (j)))))
#define G1(j) (r * (w * GONE(j) - c) + k * ((x[j] - hi) - lo))
    GRAD_SPAN(GV, G1)
#undef GV
#undef G1
}

#define SPANS_INIT {s_sum, s_dev2, s_affine, s_sums, s_grad, s_affine_relu, s_relu_grad, s_sums_relu, s_grad_relu}
