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

static void FWD_NAME(const cnni_act *a, int64_t n, const float *x, float *y)
{
    const V pa = VSET((float)a->a), pb = VSET((float)a->b), zero = VSET(0.0f);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        V v = VLOAD(x + i), r;
        switch (a->kind) {
        case CNNI_ACT_RELU: r = VMAX(zero, v); break; /* NaN passes through, as in PyTorch */
        case CNNI_ACT_LEAKY_RELU: r = VBLEND_GT0(v, VMUL(v, pa), v); break;
        case CNNI_ACT_HARDTANH: r = VMIN(pb, VMAX(pa, v)); break; /* NaN passes through */
        case CNNI_ACT_HARDSIGMOID:
            r = VADD(VDIV(v, VSET(6.0f)), VSET(0.5f));
            r = VBLEND_LE(v, VSET(-3.0f), zero, r);
            r = VBLEND_GE(v, VSET(3.0f), VSET(1.0f), r);
            break;
        case CNNI_ACT_HARDSWISH:
            r = VDIV(VMUL(v, VADD(v, VSET(3.0f))), VSET(6.0f));
            r = VBLEND_LE(v, VSET(-3.0f), zero, r);
            r = VBLEND_GE(v, VSET(3.0f), v, r);
            break;
        case CNNI_ACT_SIGMOID: r = vsigmoid(v); break;
        case CNNI_ACT_TANH: r = vtanh(v); break;
        case CNNI_ACT_SILU: r = VMUL(v, vsigmoid(v)); break;
        case CNNI_ACT_ELU: r = VBLEND_GT0(v, VMUL(pa, VSUB(vexp(VMIN(v, zero)), VSET(1.0f))), v); break;
        default: r = v; break;
        }
        VSTORE(y + i, r);
    }
    if (i < n)
        cnni_act_forward_generic(a, n - i, x + i, y + i);
}

static void BWD_NAME(const cnni_act *a, int64_t n, const float *x, const float *y, const float *dy, float *dx)
{
    const V pa = VSET((float)a->a), zero = VSET(0.0f), one = VSET(1.0f);
    const V lo = VSET(cnni_floor_f(a->a)), hi = VSET(cnni_ceil_f(a->b));
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        V v = VLOAD(x + i), g = VLOAD(dy + i), r;
        switch (a->kind) {
        case CNNI_ACT_RELU: r = VBLEND_GT0(v, zero, g); break;
        case CNNI_ACT_LEAKY_RELU: r = VBLEND_GT0(v, VMUL(g, pa), g); break;
        case CNNI_ACT_HARDTANH: r = VBLEND_LE(v, lo, zero, VBLEND_GE(v, hi, zero, g)); break;
        case CNNI_ACT_HARDSIGMOID:
            r = VBLEND_LE(v, VSET(-3.0f), zero, VBLEND_GE(v, VSET(3.0f), zero, VDIV(g, VSET(6.0f))));
            break;
        case CNNI_ACT_HARDSWISH:
            r = VMUL(g, VADD(VDIV(v, VSET(3.0f)), VSET(0.5f)));
            r = VBLEND_LT(v, VSET(-3.0f), zero, r);
            r = VBLEND_GT(v, VSET(3.0f), g, r);
            break;
        case CNNI_ACT_SIGMOID: {
            V s = VLOAD(y + i);
            r = VMUL(VMUL(g, VSUB(one, s)), s);
            break;
        }
        case CNNI_ACT_TANH: {
            V t = VLOAD(y + i);
            r = VMUL(g, VSUB(one, VMUL(t, t)));
            break;
        }
        case CNNI_ACT_SILU: {
            V s = vsigmoid(v);
            r = VMUL(VMUL(g, s), VADD(one, VMUL(v, VSUB(one, s))));
            break;
        }
        case CNNI_ACT_ELU: r = VBLEND_GT0(v, VMUL(g, VADD(VLOAD(y + i), pa)), g); break;
        default: r = g; break;
        }
        VSTORE(dx + i, r);
    }
    if (i < n)
        cnni_act_backward_generic(a, n - i, x + i, y + i, dy + i, dx + i);
}
