/* The elementwise activations written once over a vector type; included by
 * act_avx512.c and act_avx2.c with V (vector), W (lanes) and the operations
 * defined. Tails go to the portable kernel. */

/* The exp argument's range: below it e^x is 0 in float (a denormal at
 * most), above it infinite. The clamps take x second: max and min return
 * their second operand when either is NaN, so NaN passes through. */
#define EXP_LO -87.3365f
#define EXP_HI 88.7228f
#define CLAMP(x, lo, hi) VMIN(VSET(hi), VMAX(VSET(lo), (x)))

/* (e^r - 1) / r for |r| <= ln2/2: 1 + r/2 + ... + r^5/720, so that e^r
 * is 1 + q r (degree 6 in all) and e^r - 1 is q r, with nothing to cancel
 * near 0. */
static inline V vexp_q(V r)
{
    V q = VSET(1.0f / 720);
    q = VFMADD(q, r, VSET(1.0f / 120));
    q = VFMADD(q, r, VSET(1.0f / 24));
    q = VFMADD(q, r, VSET(1.0f / 6));
    q = VFMADD(q, r, VSET(0.5f));
    return VFMADD(q, r, VSET(1.0f));
}

/* x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, so r is exact enough):
 * returns r, n in *n */
static inline V vexp_reduce(V x, V *n)
{
    *n = VROUND(VMUL(x, VSET(1.44269504088896341f)));
    const V r = VFNMADD(*n, VSET(0.693359375f), x);
    return VFNMADD(*n, VSET(-2.12194440e-4f), r);
}

/* exp(x) = 2^n e^r. About 2 ulp. */
static inline V vexp(V x)
{
    V n;
    const V r = vexp_reduce(CLAMP(x, EXP_LO, EXP_HI), &n);
    return VSCALE(VFMADD(vexp_q(r), r, VSET(1.0f)), n);
}

/* exp(x) - 1 = 2^n (e^r - 1) + (2^n - 1): near 0 (n = 0) the first term
 * alone, so small results keep their relative precision. */
static inline V vexpm1(V x)
{
    V n;
    const V r = vexp_reduce(CLAMP(x, EXP_LO, EXP_HI), &n), one = VSET(1.0f);
    return VADD(VSCALE(VMUL(vexp_q(r), r), n), VSUB(VSCALE(one, n), one));
}

/* sigmoid(x) = 1 / (1 + e^-x), accurate for either sign (e^-x carries its
 * own relative error into the sum and the reciprocal, nothing cancels).
 * The reciprocal is VRECIP (a division); an instruction set may define
 * VSIGMOID, its own form, instead. Where e^-x overflows float
 * (x <= -88.72284) the result is 0, as PyTorch's. */
#ifdef VSIGMOID
#define vsigmoid VSIGMOID /* the instruction set's own, shorter form */
#else
static inline V vsigmoid(V x)
{
    const V s = VRECIP(VADD(VSET(1.0f), vexp(VNEG(x))));
    return VBLEND_LT(x, VSET(-88.72283172607422f), VSET(0.0f), s);
}
#endif

/* tanh(x) = sign(x) t(|x|). Below atanh(1/2) = 0.5493, t = a + a z P(z),
 * z = a^2, a degree-4 P fitted here for relative error (5e-9 before
 * rounding); above, t = 1 - 2 / (e^(2a) + 1), where exp's error reaches t
 * scaled by 2 / (e^(2a) + 1) <= 1/2. About 1 ulp either way (PyTorch's is
 * 1 ulp; 1 - t^2, the gradient, magnifies it near |x| = 3). */
static inline V vtanh(V x)
{
    const V a = VABS(x), z = VMUL(a, a), one = VSET(1.0f);
    V p = VSET(-0.00627947086468339f);
    p = VFMADD(p, z, VSET(0.021075153723359108f));
    p = VFMADD(p, z, VSET(-0.05385309457778931f));
    p = VFMADD(p, z, VSET(0.13332593441009521f));
    p = VFMADD(p, z, VSET(-0.33333316445350647f));
    const V small = VFMADD(VMUL(a, z), p, a);
    const V large = VSUB(one, VDIV(VSET(2.0f), VADD(vexp(VADD(a, a)), one)));
    /* NaN is not below the cut: the exp branch keeps it */
    return VCOPYSIGN(VBLEND_LT(a, VSET(0.5493061443340549f), small, large), x);
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
        /* min(max(x + 3, 0), 6) / 6 as PyTorch: x + 3 is exact near -3, where
         * x / 6 + 0.5 would cancel; NaN is max's second operand */
        ACT_LOOP(y, VDIV(VMIN(VSET(6.0f), VMAX(zero, VADD(X, VSET(3.0f)))), VSET(6.0f)))
    case CNNI_ACT_HARDSWISH:
        ACT_LOOP(y, VBLEND_GE(X, VSET(3.0f), X,
                              VBLEND_LE(X, VSET(-3.0f), zero, VDIV(VMUL(X, VADD(X, VSET(3.0f))), VSET(6.0f)))))
    case CNNI_ACT_SIGMOID: ACT_LOOP(y, vsigmoid(X))
    case CNNI_ACT_TANH: ACT_LOOP(y, vtanh(X))
    case CNNI_ACT_SILU: ACT_LOOP(y, VMUL(X, vsigmoid(X)))
    case CNNI_ACT_ELU: ACT_LOOP(y, VBLEND_GT0(X, VMUL(pa, vexpm1(VMIN(zero, X))), X)) /* NaN: min's second operand */
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
    case CNNI_ACT_RELU: ACT_LOOP(dx, VBLEND_LE(X, zero, zero, G)) /* NaN passes G, as PyTorch */
    case CNNI_ACT_LEAKY_RELU: ACT_LOOP(dx, VBLEND_GT0(X, VMUL(G, pa), G))
    case CNNI_ACT_HARDTANH: ACT_LOOP(dx, VBLEND_LE(X, lo, zero, VBLEND_GE(X, hi, zero, G)))
    case CNNI_ACT_HARDSIGMOID:
        /* G / 6 strictly inside (-3, 3), else 0 (NaN too, as PyTorch) */
        ACT_LOOP(dx, VBLEND_GT(X, VSET(-3.0f), VBLEND_LT(X, VSET(3.0f), VDIV(G, VSET(6.0f)), zero), zero))
    case CNNI_ACT_HARDSWISH:
        /* 0 below -3, G (x / 3 + 1/2) up to 3, else G (NaN too, as PyTorch) */
        ACT_LOOP(dx, VBLEND_LT(X, VSET(-3.0f), zero,
                               VBLEND_LE(X, VSET(3.0f), VMUL(G, VADD(VDIV(X, VSET(3.0f)), VSET(0.5f))), G)))
    case CNNI_ACT_SIGMOID: ACT_LOOP(dx, VMUL(VMUL(G, VSUB(one, Y)), Y))
    case CNNI_ACT_TANH: ACT_LOOP(dx, VMUL(G, VSUB(one, VMUL(Y, Y))))
    case CNNI_ACT_SILU:
        for (; i + W <= n; i += W) {
            const V v = X, s = vsigmoid(v);
            VSTORE(dx + i, VMUL(VMUL(G, s), VADD(one, VMUL(v, VSUB(one, s)))));
        }
        break;
    /* from x, as PyTorch: alpha e^x, which y + alpha (= alpha e^x rounded
     * after the subtraction of alpha) loses far below 0 */
    case CNNI_ACT_ELU: ACT_LOOP(dx, VBLEND_LE(X, zero, VMUL(G, VMUL(pa, vexp(X))), G))
    default: ACT_LOOP(dx, G)
    }
#undef X
#undef Y
#undef G
    if (i < n)
        cnni_act_backward_generic(a, n - i, x + i, y + i, dy + i, dx + i);
}

#undef ACT_LOOP

#undef EXP_LO
#undef EXP_HI
#undef CLAMP
#undef vsigmoid
