/* The elementwise activations written once over a vector type; included by
 * act_avx512.c and act_avx2.c with V (vector), W (lanes) and the operations
 * defined. Tails go to the portable kernel. */

/* exp(x) for x in float range: x = n ln2 + r, |r| <= ln2/2, e^r by a
 * degree-6 polynomial, times 2^n. About 2 ulp. */
static inline V vexp(V x)
{
    x = VMIN(VMAX(x, VSET(-87.3365f)), VSET(88.7228f));
    V n = VROUND(VMUL(x, VSET(1.44269504088896341f)));
    V r = VFNMADD(n, VSET(0.693359375f), x);
    r = VFNMADD(n, VSET(-2.12194440e-4f), r);
    V p = VSET(1.0f / 720);
    p = VFMADD(p, r, VSET(1.0f / 120));
    p = VFMADD(p, r, VSET(1.0f / 24));
    p = VFMADD(p, r, VSET(1.0f / 6));
    p = VFMADD(p, r, VSET(0.5f));
    p = VFMADD(p, r, VSET(1.0f));
    p = VFMADD(p, r, VSET(1.0f));
    return VSCALE(p, n);
}

/* Stable sigmoid: e = exp(-|x|), s = 1 / (1 + e), and e * s for x < 0. */
static inline V vsigmoid(V x)
{
    V e = vexp(VNEG(VABS(x)));
    V s = VDIV(VSET(1.0f), VADD(VSET(1.0f), e));
    return VBLEND_LT0(x, s, VMUL(e, s));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|); below 2^-12 in
 * magnitude tanh(x) is x to float precision, which avoids the cancellation. */
static inline V vtanh(V x)
{
    V ax = VABS(x);
    V e = vexp(VMUL(VSET(-2.0f), ax));
    V t = VDIV(VSUB(VSET(1.0f), e), VADD(VSET(1.0f), e));
    t = VBLEND_LT(ax, VSET(2.44140625e-4f), ax, t);
    return VCOPYSIGN(t, x);
}

/* The kind is switched on once per call, each case with its own loop, so
 * that a loop holds only its kind's work and loads only the arrays it
 * reads (sigmoid's and tanh's gradients read y, not x). */
#define ACT_LOOP(STORE_TO, EXPR)                                                                   \
    for (; i + W <= n; i += W)                                                                     \
        VSTORE(STORE_TO + i, EXPR);                                                                \
    break;

static void FWD_NAME(const cnni_act *a, int64_t n, const float *x, float *y)
{
    const V pa = VSET((float)a->a), pb = VSET((float)a->b), zero = VSET(0.0f);
    int64_t i = 0;
#define X VLOAD(x + i)
    switch (a->kind) {
    case CNNI_ACT_RELU: ACT_LOOP(y, VMAX(zero, X)) /* NaN passes through, as in PyTorch */
    case CNNI_ACT_LEAKY_RELU: ACT_LOOP(y, VBLEND_GT0(X, VMUL(X, pa), X))
    case CNNI_ACT_HARDTANH: ACT_LOOP(y, VMIN(pb, VMAX(pa, X))) /* NaN passes through */
    case CNNI_ACT_HARDSIGMOID:
        ACT_LOOP(y, VBLEND_GE(X, VSET(3.0f), VSET(1.0f),
                              VBLEND_LE(X, VSET(-3.0f), zero, VADD(VDIV(X, VSET(6.0f)), VSET(0.5f)))))
    case CNNI_ACT_HARDSWISH:
        ACT_LOOP(y, VBLEND_GE(X, VSET(3.0f), X,
                              VBLEND_LE(X, VSET(-3.0f), zero, VDIV(VMUL(X, VADD(X, VSET(3.0f))), VSET(6.0f)))))
    case CNNI_ACT_SIGMOID: ACT_LOOP(y, vsigmoid(X))
    case CNNI_ACT_TANH: ACT_LOOP(y, vtanh(X))
    case CNNI_ACT_SILU: ACT_LOOP(y, VMUL(X, vsigmoid(X)))
    case CNNI_ACT_ELU: ACT_LOOP(y, VBLEND_GT0(X, VMUL(pa, VSUB(vexp(VMIN(X, zero)), VSET(1.0f))), X))
    default: ACT_LOOP(y, X)
    }
#undef X
    if (i < n)
        cnni_act_forward_generic(a, n - i, x + i, y + i);
}

static void BWD_NAME(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy, float *dx)
{
    const V pa = VSET((float)a->a), zero = VSET(0.0f), one = VSET(1.0f);
    const V lo = VSET(cnni_floor_f(a->a)), hi = VSET(cnni_ceil_f(a->b));
    int64_t i = 0;
#define X VLOAD(x + i)
#define Y VLOAD(y + i)
#define G VLOAD(dy + i)
    switch (a->kind) {
    case CNNI_ACT_RELU: ACT_LOOP(dx, VBLEND_GT0(X, zero, G))
    case CNNI_ACT_LEAKY_RELU: ACT_LOOP(dx, VBLEND_GT0(X, VMUL(G, pa), G))
    case CNNI_ACT_HARDTANH: ACT_LOOP(dx, VBLEND_LE(X, lo, zero, VBLEND_GE(X, hi, zero, G)))
    case CNNI_ACT_HARDSIGMOID:
        ACT_LOOP(dx, VBLEND_LE(X, VSET(-3.0f), zero, VBLEND_GE(X, VSET(3.0f), zero, VDIV(G, VSET(6.0f)))))
    case CNNI_ACT_HARDSWISH:
        ACT_LOOP(dx, VBLEND_GT(X, VSET(3.0f), G,
                               VBLEND_LT(X, VSET(-3.0f), zero, VMUL(G, VADD(VDIV(X, VSET(3.0f)), VSET(0.5f))))))
    case CNNI_ACT_SIGMOID: ACT_LOOP(dx, VMUL(VMUL(G, VSUB(one, Y)), Y))
    case CNNI_ACT_TANH: ACT_LOOP(dx, VMUL(G, VSUB(one, VMUL(Y, Y))))
    case CNNI_ACT_SILU:
        for (; i + W <= n; i += W) {
            const V v = X, s = vsigmoid(v);
            VSTORE(dx + i, VMUL(VMUL(G, s), VADD(one, VMUL(v, VSUB(one, s)))));
        }
        break;
    case CNNI_ACT_ELU: ACT_LOOP(dx, VBLEND_GT0(X, VMUL(G, VADD(Y, pa)), G))
    default: ACT_LOOP(dx, G)
    }
#undef X
#undef Y
#undef G
    if (i < n)
        cnni_act_backward_generic(a, n - i, x + i, y + i, dy + i, dx + i);
}

#undef ACT_LOOP
