/* The vector plane weight gradient (see conv_wgrad_plane.h), written once
 * for AVX2 and AVX-512 over the lane macros the including file defines:
 * V, VM, VL (lanes), VZERO, VLOADK (load under a lane mask, zeros
 * elsewhere), VFMAK(a, b, c, m) = a b + c in the lanes of mask m (AVX2:
 * all lanes, its loads zero the others), VADD, VSUM (the lanes' sum), and
 * LANES_BETWEEN(lo, hi), the mask of lanes [lo, hi); with VALIGNR(hi, lo,
 * k) (lanes k.. of the pair lo, hi) the windows are lane shifts of a row's
 * vectors instead of loads, each load then serving KW windows.
 *
 * Input row by input row: a row's window at column shift kx serves every
 * kernel row ky, against output row iy + ph - ky; the gradient rows stay
 * in registers while KH input rows use them. Per vector of a row: one
 * gradient load and KW window loads (or two loads and KW - 1 shifts) feed
 * KH KW FMAs. The accumulators (one vector per tap) are summed across
 * lanes at the end of a channel. */
#include "../conv_wgrad_plane.h"

#define WG_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define WG_UNROLL _Pragma("unroll")
#else
#define WG_UNROLL _Pragma("GCC unroll 25")
#endif

WG_INLINE void wgrad_k(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw, const int KH,
                       const int KW)
{
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, ph = g->ph, pw = g->pw;
    for (int64_t c = 0; c < g->C; c++) {
        V acc[25];
        WG_UNROLL for (int t = 0; t < KH * KW; t++)
            acc[t] = VZERO;
        const float *xc = x + c * H * W;
        for (int64_t ox = 0; ox < OW; ox += VL) {
            /* this vector's lanes: of the output row, and per column shift
             * kx those whose input column ox + l + kx - pw is in the row */
            const int64_t n = OW - ox < VL ? OW - ox : VL;
            const VM mo = LANES_BETWEEN(0, n);
            VM mk[5];
            WG_UNROLL for (int kx = 0; kx < KW; kx++)
            {
                const int64_t sh = ox + kx - pw, lo = sh < 0 ? -sh : 0, hi = W - sh < n ? W - sh : n;
                mk[kx] = hi > lo ? LANES_BETWEEN(lo, hi) : LANES_BETWEEN(0, 0);
            }
            const VM none = LANES_BETWEEN(0, 0);
#ifdef VALIGNR
            /* the row's columns ox - pw + [0, 2 VL) as two vectors, zero
             * outside the row; window kx is a lane shift of them */
            const int64_t b0 = ox - pw;
            const VM ma = lanes_in_row(b0, W), mb = lanes_in_row(b0 + VL, W);
#endif
            /* The gradient rows in a ring: at input row iy, output row
             * iy + ph - ky sits in d[(iy - ky) mod KH], so each step loads
             * one new row (ky = 0) and the ring's slots are constants in
             * the loop unrolled KH times. Rows outside the plane load under
             * an empty mask: no branches. */
            V d[5];
            WG_UNROLL for (int ky = 1; ky < KH; ky++)
            {
                const int64_t oy = ph - ky;
                d[KH - ky] = VLOADK(dy + oy * OW + ox, oy >= 0 && oy < OH ? mo : none);
            }
            for (int64_t iy0 = 0; iy0 < H; iy0 += KH)
                WG_UNROLL for (int u = 0; u < KH; u++)
                {
                    const int64_t iy = iy0 + u, oy = iy + ph;
                    if (iy >= H)
                        break;
                    d[u] = VLOADK(dy + oy * OW + ox, oy < OH ? mo : none);
                    const float *xr = xc + iy * W + ox - pw;
#ifdef VALIGNR
                    const V a0 = VLOADK(xr, ma), a1 = VLOADK(xr + VL, mb);
#endif
                    WG_UNROLL for (int kx = 0; kx < KW; kx++)
                    {
#ifdef VALIGNR
                        const V xv = kx == 0 ? a0 : VALIGNR(a1, a0, kx);
#else
                        const V xv = VLOADK(xr + kx, mk[kx]);
#endif
                        WG_UNROLL for (int ky = 0; ky < KH; ky++)
                            acc[ky * KW + kx] = VFMAK(d[(u - ky + KH) % KH], xv, acc[ky * KW + kx], mk[kx]);
                    }
                }
        }
        WG_UNROLL for (int t = 0; t < KH * KW; t++)
            dw[c * KH * KW + t] = VSUM(acc[t]);
    }
    /* the bias's share: two rows at a time into two sums, not one chain
     * of adds */
    V b0 = VZERO, b1 = VZERO;
    for (int64_t ox = 0; ox < OW; ox += VL) {
        const int64_t n = OW - ox < VL ? OW - ox : VL;
        const VM mo = LANES_BETWEEN(0, n);
        int64_t oy = 0;
        for (; oy + 2 <= OH; oy += 2) {
            b0 = VADD(b0, VLOADK(dy + oy * OW + ox, mo));
            b1 = VADD(b1, VLOADK(dy + (oy + 1) * OW + ox, mo));
        }
        if (oy < OH)
            b0 = VADD(b0, VLOADK(dy + oy * OW + ox, mo));
    }
    dw[g->C * KH * KW] = VSUM(VADD(b0, b1));
}

WG_INLINE void wgrad_dispatch(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw)
{
    if (g->KH == 3)
        wgrad_k(g, dy, x, dw, 3, 3);
    else
        wgrad_k(g, dy, x, dw, 5, 5);
}
