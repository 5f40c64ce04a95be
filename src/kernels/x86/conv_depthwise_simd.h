/* The depthwise plane loops written once over a vector type; included by
 * conv_depthwise_avx512.c and conv_depthwise_avx2.c, which define V (a
 * vector of W floats) and: VZERO, VSET, VLOAD, VSTORE, VADD, VMUL, VFMADD,
 * VLOADM / VSTOREM (the first n lanes), VLOAD2M (n lanes of stride 2),
 * VGATHERM (n lanes of stride s), VHSUM (the lanes' sum as a float) and
 * SCATTER2_ADD (p[2i] += v[i] for the first n lanes).
 *
 * Loads of the window come in three kinds, fixed per call so the compiler
 * specialises each loop: contiguous (stride 1), every other float (stride
 * 2) and a gather. Loads of a row's last, partial vector are masked, so
 * nothing past what the outputs read is touched. */

#if defined(__clang__)
#define DW_UNROLL _Pragma("unroll")
#else
#define DW_UNROLL _Pragma("GCC unroll 8")
#endif
#define DW_INLINE static inline __attribute__((always_inline))

enum { S_GATHER = 0, S_ONE = 1, S_TWO = 2 };

/* n (1..W) lanes of the window at p, elements p[i*s]. */
DW_INLINE V load_x(const float *p, int64_t s, int n, int mode)
{
    if (mode == S_ONE)
        return n == W ? VLOAD(p) : VLOADM(p, n);
    if (mode == S_TWO)
        return VLOAD2M(p, n);
    return VGATHERM(p, s, n);
}

/* ---- forward: blocks of up to 4 vectors along the row, taps innermost ---- */
DW_INLINE void fwd_block(const float *xr, const int64_t *off, const float *w, int64_t nt, int64_t s, int mode,
                         float *yr, int last, int nv, float bias, int accumulate)
{
    V acc[4];
    DW_UNROLL for (int v = 0; v < nv; v++)
    {
        int n = v == nv - 1 ? last : W;
        acc[v] = accumulate ? (n == W ? VLOAD(yr + v * W) : VLOADM(yr + v * W, n)) : VSET(bias);
    }
    for (int64_t t = 0; t < nt; t++) {
        const float *xt = xr + off[t];
        const V wv = VSET(w[t]);
        DW_UNROLL for (int v = 0; v < nv; v++)
        {
            int n = v == nv - 1 ? last : W;
            acc[v] = VFMADD(load_x(xt + v * W * s, s, n, mode), wv, acc[v]);
        }
    }
    DW_UNROLL for (int v = 0; v < nv; v++)
    {
        int n = v == nv - 1 ? last : W;
        if (n == W)
            VSTORE(yr + v * W, acc[v]);
        else
            VSTOREM(yr + v * W, n, acc[v]);
    }
}

DW_INLINE void fwd_rows(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate,
                        int mode)
{
    const cnni_conv_geom *g = p->g;
    const int64_t out2 = g->out[2], s = g->s[2], kv = g->k[0] * g->k[1] * g->k[2];
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            cnni_dw_fill(p, z1);
            const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
            for (int64_t q = 0; q < m; q++) {
                float *yr = y + q * ystride + (z0 * g->out[1] + z1) * out2;
                const float *w = p->w + q * kv, bq = bias ? bias[q] : 0.0f;
                for (int64_t z2 = 0; z2 < out2; z2 += 4 * W) {
                    const int64_t left = out2 - z2 < 4 * W ? out2 - z2 : 4 * W;
                    const int nv = (int)((left + W - 1) / W), last = (int)(left - (nv - 1) * W);
                    const float *xz = xr + z2 * s;
                    switch (nv) {
                    case 4: fwd_block(xz, p->off, w, kv, s, mode, yr + z2, last, 4, bq, accumulate); break;
                    case 3: fwd_block(xz, p->off, w, kv, s, mode, yr + z2, last, 3, bq, accumulate); break;
                    case 2: fwd_block(xz, p->off, w, kv, s, mode, yr + z2, last, 2, bq, accumulate); break;
                    default: fwd_block(xz, p->off, w, kv, s, mode, yr + z2, last, 1, bq, accumulate);
                    }
                }
            }
        }
}

static void k_forward(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate)
{
    if (p->g->s[2] == 1)
        fwd_rows(p, m, y, ystride, bias, accumulate, S_ONE);
    else if (p->g->s[2] == 2)
        fwd_rows(p, m, y, ystride, bias, accumulate, S_TWO);
    else
        fwd_rows(p, m, y, ystride, bias, accumulate, S_GATHER);
}

/* ---- weight gradient: nt (<= 8) taps accumulated over the whole plane ---- */
DW_INLINE void wgt_taps(cnni_dw_plane *p, const float *dy, int64_t t0, int nt, int mode, double *dw, double *db)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], out2 = g->out[2];
    V acc[8], bacc = VZERO;
    DW_UNROLL for (int i = 0; i < nt; i++) acc[i] = VZERO;
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            cnni_dw_fill(p, z1);
            const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
            const float *dr = dy + (z0 * g->out[1] + z1) * out2;
            const float *xo[8];
            DW_UNROLL for (int i = 0; i < nt; i++) xo[i] = xr + p->off[t0 + i];
            int64_t z2 = 0;
            for (; z2 + W <= out2; z2 += W) {
                const V dv = VLOAD(dr + z2);
                if (db)
                    bacc = VADD(bacc, dv);
                DW_UNROLL for (int i = 0; i < nt; i++) acc[i] = VFMADD(load_x(xo[i] + z2 * s, s, W, mode), dv, acc[i]);
            }
            if (z2 < out2) {
                const int n = (int)(out2 - z2);
                const V dv = VLOADM(dr + z2, n);
                if (db)
                    bacc = VADD(bacc, dv);
                DW_UNROLL for (int i = 0; i < nt; i++) acc[i] = VFMADD(load_x(xo[i] + z2 * s, s, n, mode), dv, acc[i]);
            }
        }
    DW_UNROLL for (int i = 0; i < nt; i++) dw[t0 + i] += (double)VHSUM(acc[i]);
    if (db)
        *db += (double)VHSUM(bacc);
}

DW_INLINE void wgt_modes(cnni_dw_plane *p, const float *dy, int64_t t0, int nt, double *dw, double *db)
{
    if (p->g->s[2] == 1)
        wgt_taps(p, dy, t0, nt, S_ONE, dw, db);
    else if (p->g->s[2] == 2)
        wgt_taps(p, dy, t0, nt, S_TWO, dw, db);
    else
        wgt_taps(p, dy, t0, nt, S_GATHER, dw, db);
}

/* The taps in nearly equal blocks of at most 8 (3x3: 5 + 4), so each load
 * of dy serves several accumulators and the FMA chains are independent. */
static void k_weight(cnni_dw_plane *p, const float *dy, double *dw, double *db)
{
    const int64_t ntaps = p->g->k[0] * p->g->k[1] * p->g->k[2], blocks = (ntaps + 7) / 8;
    for (int64_t bi = 0, t0 = 0; bi < blocks; bi++) {
        const int nt = (int)(ntaps / blocks + (bi < ntaps % blocks));
        double *dbb = bi == 0 ? db : NULL;
        switch (nt) {
        case 8: wgt_modes(p, dy, t0, 8, dw, dbb); break;
        case 7: wgt_modes(p, dy, t0, 7, dw, dbb); break;
        case 6: wgt_modes(p, dy, t0, 6, dw, dbb); break;
        case 5: wgt_modes(p, dy, t0, 5, dw, dbb); break;
        case 4: wgt_modes(p, dy, t0, 4, dw, dbb); break;
        case 3: wgt_modes(p, dy, t0, 3, dw, dbb); break;
        case 2: wgt_modes(p, dy, t0, 2, dw, dbb); break;
        default: wgt_modes(p, dy, t0, 1, dw, dbb);
        }
        t0 += nt;
    }
}

/* ---- scatter (backward data at stride > 1): xp(z, t) += dy(z) w[t] ---- */
static void k_scatter(cnni_dw_plane *p, float *xp, const float *dy)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], out2 = g->out[2], ntaps = g->k[0] * g->k[1] * g->k[2];
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            float *xr = xp + z0 * p->step0 + z1 * p->step1;
            const float *dr = dy + (z0 * g->out[1] + z1) * out2;
            for (int64_t t = 0; t < ntaps; t++) {
                float *xt = xr + p->off[t];
                const float wt = p->w[t];
                const V wv = VSET(wt);
                int64_t z2 = 0;
                if (s == 1) {
                    for (; z2 + W <= out2; z2 += W)
                        VSTORE(xt + z2, VFMADD(VLOAD(dr + z2), wv, VLOAD(xt + z2)));
                    if (z2 < out2) {
                        int n = (int)(out2 - z2);
                        VSTOREM(xt + z2, n, VFMADD(VLOADM(dr + z2, n), wv, VLOADM(xt + z2, n)));
                    }
                } else if (s == 2) {
                    for (; z2 < out2; z2 += W) {
                        int n = (int)(out2 - z2 < W ? out2 - z2 : W);
                        SCATTER2_ADD(xt + 2 * z2, VMUL(n == W ? VLOAD(dr + z2) : VLOADM(dr + z2, n), wv), n);
                    }
                } else {
                    for (; z2 < out2; z2++)
                        xt[z2 * s] += dr[z2] * wt;
                }
            }
        }
}

/* One row of the padded copy: short rows, so no library call per piece. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void k_copy(float *d, int64_t width, const float *s, int64_t lo, int64_t len)
{
    int64_t i = 0;
    for (; i + W <= lo; i += W)
        VSTORE(d + i, VZERO);
    if (i < lo)
        VSTOREM(d + i, (int)(lo - i), VZERO);
    for (i = 0; i + W <= len; i += W)
        VSTORE(d + lo + i, VLOAD(s + i));
    if (i < len)
        VSTOREM(d + lo + i, (int)(len - i), VLOADM(s + i, (int)(len - i)));
    for (i = lo + len; i + W <= width; i += W)
        VSTORE(d + i, VZERO);
    if (i < width)
        VSTOREM(d + i, (int)(width - i), VZERO);
}
