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

/* clang's sanitizer builds (the fuzz and TSan builds) check these loops'
 * memory accesses just the same without the forced unrolling and inlining,
 * which make its instrumented compile of this file take over ten minutes
 * (2 s without). gcc's ASan build keeps them: it compiles in 40 s. */
#if defined(__clang__) && defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DW_QUICK_BUILD 1
#endif
#endif

#if defined(DW_QUICK_BUILD)
#define DW_UNROLL
#define DW_INLINE static inline
#elif defined(__clang__)
#define DW_UNROLL _Pragma("unroll")
#define DW_INLINE static inline __attribute__((always_inline))
#else
#define DW_UNROLL _Pragma("GCC unroll 8")
#define DW_INLINE static inline __attribute__((always_inline))
#endif

enum { S_GATHER = 0, S_ONE = 1, S_TWO = 2 };
#ifndef FWD_SHIFT_TAIL
#define FWD_SHIFT_TAIL 0 /* see fwd_rows */
#endif

/* n (1..W) lanes of the window at p, elements p[i*s]. */
DW_INLINE V load_x(const float *p, int64_t s, int n, int mode)
{
    if (mode == S_ONE)
        return n == W ? VLOAD(p) : VLOADM(p, n);
    if (mode == S_TWO)
        return VLOAD2M(p, n);
    return VGATHERM(p, s, n);
}

/* ---- forward: tiles of mq output channels x nv vectors of a row ----
 * Each window load serves mq channels and the mq*nv accumulators are
 * independent chains, so narrow rows (one vector) still keep the FMA
 * pipes busy when the group has several output channels. */
#define MAX_RUNS 32

DW_INLINE void fwd_tile(const float *xr, const int64_t *off, const int64_t *runs, int nruns, const float *w,
                        int64_t wstride, int64_t s, int mode, float *yr, int64_t ystride, int last, int64_t lastoff,
                        int nv, int mq, int split, const float *bias, int accumulate)
{
    /* vector v holds outputs v*W onwards, the last one lastoff onwards */
#define FWD_AT(v) ((v) == nv - 1 ? lastoff : (int64_t)(v) * W)
    /* split 2: even and odd taps in separate accumulators, when a tile has
     * too few of them to cover the FMA latency */
    V acc[2][4][4];
    DW_UNROLL for (int q = 0; q < mq; q++)
    {
        DW_UNROLL for (int v = 0; v < nv; v++)
        {
            const int n = v == nv - 1 ? last : W;
            const float *yq = yr + q * ystride + FWD_AT(v);
            acc[0][q][v] = accumulate ? (n == W ? VLOAD(yq) : VLOADM(yq, n)) : VSET(bias ? bias[q] : 0.0f);
            acc[1][q][v] = VZERO;
        }
    }
    for (int r = 0; r < nruns; r++) {
        int64_t t = runs[2 * r];
        const int64_t te = t + runs[2 * r + 1];
        for (; t + split <= te; t += split) {
            DW_UNROLL for (int h = 0; h < split; h++)
            {
                const float *xt = xr + off[t + h];
                V xv[4];
                DW_UNROLL for (int v = 0; v < nv; v++) xv[v] =
                    load_x(xt + FWD_AT(v) * s, s, v == nv - 1 ? last : W, mode);
                DW_UNROLL for (int q = 0; q < mq; q++)
                {
                    const V wv = VSET(w[q * wstride + t + h]);
                    DW_UNROLL for (int v = 0; v < nv; v++) acc[h][q][v] = VFMADD(xv[v], wv, acc[h][q][v]);
                }
            }
        }
        if (t < te) {
            const float *xt = xr + off[t];
            V xv[4];
            DW_UNROLL for (int v = 0; v < nv; v++) xv[v] =
                load_x(xt + FWD_AT(v) * s, s, v == nv - 1 ? last : W, mode);
            DW_UNROLL for (int q = 0; q < mq; q++)
            {
                const V wv = VSET(w[q * wstride + t]);
                DW_UNROLL for (int v = 0; v < nv; v++) acc[0][q][v] = VFMADD(xv[v], wv, acc[0][q][v]);
            }
        }
    }
    DW_UNROLL for (int q = 0; q < mq; q++)
    {
        DW_UNROLL for (int v = 0; v < nv; v++)
        {
            const int n = v == nv - 1 ? last : W;
            float *yq = yr + q * ystride + FWD_AT(v);
            const V a = split == 2 ? VADD(acc[0][q][v], acc[1][q][v]) : acc[0][q][v];
            if (n == W)
                VSTORE(yq, a);
            else
                VSTOREM(yq, n, a);
        }
    }
#undef FWD_AT
}

/* The taps whose kernel rows read input rather than the copy's zero
 * padding for some output row (z0, z1 + i), i < nrows, as runs (start,
 * length) of the tap list; 0 runs when none does. Without padding, one run
 * of every tap. */
DW_INLINE int tap_runs(const cnni_dw_plane *p, int64_t z0, int64_t z1, int64_t nrows, int64_t *runs)
{
    const cnni_conv_geom *g = p->g;
    runs[0] = 0;
    runs[1] = p->ntaps;
    if (!p->padded)
        return 1;
    int64_t lo[2], hi[2];
    const int64_t z[2] = {z0, z1};
    for (int i = 0; i < 2; i++) {
        /* kernel rows t with p <= z*s + t*d < p + in, for some output row of
         * z0 x [z1, z1 + nrows) */
        const int64_t zl = i == 1 ? z[i] + nrows - 1 : z[i];
        const int64_t a = g->p[i] - zl * g->s[i], b = g->p[i] + g->in[i] - 1 - z[i] * g->s[i], d = g->d[i];
        lo[i] = a <= 0 ? 0 : d == 1 ? a : (a + d - 1) / d;
        hi[i] = b < 0 ? 0 : d == 1 ? b + 1 : b / d + 1;
        hi[i] = hi[i] < g->k[i] ? hi[i] : g->k[i];
        if (lo[i] >= hi[i])
            return 0;
    }
    if (lo[0] == 0 && hi[0] == g->k[0] && lo[1] == 0 && hi[1] == g->k[1])
        return 1;
    if (p->nch * (hi[0] - lo[0]) > MAX_RUNS)
        return 1; /* many channels: read the zeros rather than list them */
    int n = 0;
    const int64_t k1 = g->k[1], k2 = g->k[2], len = (hi[1] - lo[1]) * k2;
    for (int64_t c = 0; c < p->nch; c++)
        for (int64_t t0 = lo[0]; t0 < hi[0]; t0++) {
            runs[2 * n] = ((c * g->k[0] + t0) * k1 + lo[1]) * k2;
            runs[2 * n + 1] = len;
            n++;
        }
    return n;
}

/* ---- forward at stride 1 on narrow rows (nv <= 2 vectors): tiles of
 * nr rows x mq output channels x nv vectors, nr * nv = 4, so each weight
 * broadcast serves four vectors and each window load mq channels, with up
 * to DW_MAX_ACC independent accumulators ---- */
#ifndef DW_MAX_ACC
#define DW_MAX_ACC 24
#endif
#define DW_NREG (DW_MAX_ACC >= 24 ? 32 : 16) /* vector registers */

DW_INLINE void rows_tile(const float *xr, int64_t xstep, const int64_t *off, const int64_t *runs, int nruns,
                         const float *w, int64_t wstride, float *yr, int64_t ystep, int64_t ystride, int last, int nv,
                         int nr, int mq, const float *bias, int accumulate)
{
    V acc[4][DW_MAX_ACC / 4][2];
    DW_UNROLL for (int r = 0; r < nr; r++)
    {
        DW_UNROLL for (int q = 0; q < mq; q++)
        {
            DW_UNROLL for (int v = 0; v < nv; v++)
            {
                const float *yq = yr + r * ystep + q * ystride + v * W;
                acc[r][q][v] = accumulate ? (v == nv - 1 ? VLOADM(yq, last) : VLOAD(yq))
                                          : VSET(bias ? bias[q] : 0.0f);
            }
        }
    }
    for (int i = 0; i < nruns; i++) {
        const int64_t te = runs[2 * i] + runs[2 * i + 1];
        for (int64_t t = runs[2 * i]; t < te; t++) {
            const float *xt = xr + off[t];
            V xv[4][2];
            DW_UNROLL for (int r = 0; r < nr; r++)
            {
                DW_UNROLL for (int v = 0; v < nv; v++) xv[r][v] =
                    v == nv - 1 ? VLOADM(xt + r * xstep + v * W, last) : VLOAD(xt + r * xstep + v * W);
            }
            DW_UNROLL for (int q = 0; q < mq; q++)
            {
                const V wv = VSET(w[q * wstride + t]);
                DW_UNROLL for (int r = 0; r < nr; r++)
                {
                    DW_UNROLL for (int v = 0; v < nv; v++) acc[r][q][v] = VFMADD(xv[r][v], wv, acc[r][q][v]);
                }
            }
        }
    }
    DW_UNROLL for (int r = 0; r < nr; r++)
    {
        DW_UNROLL for (int q = 0; q < mq; q++)
        {
            DW_UNROLL for (int v = 0; v < nv; v++)
            {
                float *yq = yr + r * ystep + q * ystride + v * W;
                if (v == nv - 1 && last < W) /* masked stores cost many plain ones on AVX2 */
                    VSTOREM(yq, last, acc[r][q][v]);
                else
                    VSTORE(yq, acc[r][q][v]);
            }
        }
    }
}

#define ROWS_TILE(NV, NR, MQ)                                                                                      \
    rows_tile(xr, p->step1, p->off, runs, nruns, w, p->ntaps, yq, out2, ystride, last, NV, NR, MQ, bq, accumulate)

/* Rows [z1, z1 + 4/nv) of plane row z0, every output channel. */
DW_INLINE void rows_block(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate,
                          int64_t z0, int64_t z1, int nv)
{
    const cnni_conv_geom *g = p->g;
    const int64_t out2 = g->out[2];
    const int nr = 4 / nv, last = (int)(out2 - (nv - 1) * W), maxq = DW_MAX_ACC / 4;
    int64_t runs[2 * MAX_RUNS];
    const int nruns = tap_runs(p, z0, z1, nr, runs);
    const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
    const int64_t row = (z0 * g->out[1] + z1) * out2;
    for (int64_t q = 0; q < m;) {
        const int mq = (int)(m - q < maxq ? m - q : maxq);
        float *yq = y + q * ystride + row;
        const float *w = p->w + q * p->ntaps, *bq = bias ? bias + q : NULL;
        if (nv == 1) {
            switch (mq) {
#if DW_MAX_ACC >= 24
            case 6: ROWS_TILE(1, 4, 6); break;
            case 5: ROWS_TILE(1, 4, 5); break;
            case 4: ROWS_TILE(1, 4, 4); break;
#endif
            case 3: ROWS_TILE(1, 4, 3); break;
            case 2: ROWS_TILE(1, 4, 2); break;
            default: ROWS_TILE(1, 4, 1);
            }
        } else {
            switch (mq) {
#if DW_MAX_ACC >= 24
            case 6: ROWS_TILE(2, 2, 6); break;
            case 5: ROWS_TILE(2, 2, 5); break;
            case 4: ROWS_TILE(2, 2, 4); break;
#endif
            case 3: ROWS_TILE(2, 2, 3); break;
            case 2: ROWS_TILE(2, 2, 2); break;
            default: ROWS_TILE(2, 2, 1);
            }
        }
        q += mq;
    }
}

#define FWD_TILE(NV, MQ) \
    fwd_tile(xz, p->off, runs, nruns, w, p->ntaps, s, mode, yq + z2, ystride, last, lastoff, NV, MQ, \
             NV * MQ <= 2 ? 2 : 1, bq, accumulate)

DW_INLINE void fwd_rows(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate,
                        int mode)
{
    const cnni_conv_geom *g = p->g;
    const int64_t out2 = g->out[2], s = g->s[2];
    int64_t runs[2 * MAX_RUNS];
    /* Narrow rows at stride 1: aligned blocks of 4/nv rows together (the
     * driver splits planes at multiples of 4 rows, so every row is summed
     * the same way whatever the split). */
    const int nvrow = (int)((out2 + W - 1) / W), blk = mode == S_ONE && nvrow <= 2 ? 4 / nvrow : 0;
    for (int64_t z0 = 0; z0 < g->out[0]; z0++)
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            if (blk && z1 % blk == 0 && z1 + blk <= g->out[1] && z1 + blk <= p->z1b) {
                cnni_dw_fill(p, z1 + blk - 1);
                rows_block(p, m, y, ystride, bias, accumulate, z0, z1, nvrow);
                z1 += blk - 1;
                continue;
            }
            cnni_dw_fill(p, z1);
            const int nruns = tap_runs(p, z0, z1, 1, runs);
            const float *xr = p->x + z0 * p->step0 + z1 * p->step1;
            const int64_t row = (z0 * g->out[1] + z1) * out2;
            for (int64_t z2 = 0; z2 < out2; z2 += 4 * W) {
                const int64_t left = out2 - z2 < 4 * W ? out2 - z2 : 4 * W;
                const int nv = (int)((left + W - 1) / W);
                int last = (int)(left - (nv - 1) * W);
                int64_t lastoff = (int64_t)(nv - 1) * W;
                /* With FWD_SHIFT_TAIL (AVX2) a short last vector becomes a
                 * whole one ending at the row's end, over outputs another
                 * vector also computes (the same taps in the same order:
                 * the same values): no masked loads and stores, which AVX2
                 * runs slowly. LeNet's conv1 (1 to 6 channels, 28 wide, 64
                 * images, one thread): 280 -> 227 us. AVX-512's masks cost
                 * nothing. Not when adding to y. */
                if (FWD_SHIFT_TAIL && mode == S_ONE && !accumulate && last < W && out2 >= W) {
                    lastoff = left - W;
                    last = W;
                }
                const float *xz = xr + z2 * s;
                for (int64_t q = 0; q < m;) {
                    /* the widest tile of at most 8 accumulators */
                    const int64_t rest = m - q;
                    const int mq = rest >= 4 && nv <= 2 ? 4 : rest >= 2 ? 2 : 1;
                    float *yq = y + q * ystride + row;
                    const float *w = p->w + q * p->ntaps, *bq = bias ? bias + q : NULL;
                    if (mq == 4) {
                        if (nv == 2)
                            FWD_TILE(2, 4);
                        else
                            FWD_TILE(1, 4);
                    } else if (mq == 2) {
                        switch (nv) {
                        case 4: FWD_TILE(4, 2); break;
                        case 3: FWD_TILE(3, 2); break;
                        case 2: FWD_TILE(2, 2); break;
                        default: FWD_TILE(1, 2);
                        }
                    } else {
                        switch (nv) {
                        case 4: FWD_TILE(4, 1); break;
                        case 3: FWD_TILE(3, 1); break;
                        case 2: FWD_TILE(2, 1); break;
                        default: FWD_TILE(1, 1);
                        }
                    }
                    q += mq;
                }
            }
        }
}

/* ---- forward at stride 1 and dilation 1 within the plane, one input
 * channel, a KH x KW kernel (k[0] == 1): blocks of R output rows x NV
 * vectors, the input rows of a block read once each and shared by the up
 * to KH output rows they feed, so a window load serves KH FMAs (the tap
 * loop above loads a window per FMA). With VALIGNR (AVX-512) a row's
 * windows are lane shifts of its NV + 1 vectors, so nothing is loaded
 * across a cache line more than once. Each output sums its taps in the
 * order (t1, t2), as the tap loop does: block and chunk sizes leave the
 * results unchanged. ---- */
#ifndef SLIDE_R
#define SLIDE_R 4 /* output rows per block */
#endif
/* Without VALIGNR the loops below take output channels one at a time, each
 * loading its windows again, where fwd_rows shares a window among several:
 * LeNet's conv1 (1 to 6 channels, 5x5, AVX2, 64 images, one thread) took
 * 278 -> 298 us. So there they serve one output channel per group only. */
#ifndef SLIDE_MAX_M
#define SLIDE_MAX_M INT64_MAX
#endif
#if defined(DW_QUICK_BUILD)
#define SLIDE_UNROLL
#elif defined(__clang__)
#define SLIDE_UNROLL _Pragma("unroll")
#else
#define SLIDE_UNROLL _Pragma("GCC unroll 16")
#endif

/* In slide_tile's edge: the last output vector is whole (stored plainly;
 * set without VALIGNR only, AVX-512's masked stores being cheap). */
#define SLIDE_LAST_WHOLE (1u << 8)

/* The tile reads input rows i < R + KH - 1 from x + i*ld, those whose
 * bit i of rowok is set (the others are zero padding). With VALIGNR, row
 * vector v (v <= NV) holds the lanes of km[v] from x + v*W, the others
 * zero: the zero padding at the sides and past the last column read.
 * Otherwise the window of output vector v at tap t2 loads from x + v*W +
 * t2 the lanes of km[v*8 + t2] where bit v of edge is set, and whole
 * vectors where it is clear (all their lanes inside the row). */
DW_INLINE void slide_tile(const float *x, int64_t ld, const float *w, float *y, int64_t ldy, const VM *km, VM klast,
                          unsigned rowok, unsigned edge, float b0, int accumulate, int KH, int KW, int NV, int R)
{
    V acc[SLIDE_R][4];
    SLIDE_UNROLL for (int r = 0; r < R; r++)
    {
        SLIDE_UNROLL for (int v = 0; v < NV; v++)
        {
            const float *yq = y + r * ldy + v * W;
            acc[r][v] = accumulate ? (v == NV - 1 ? VLOADK(yq, klast) : VLOAD(yq)) : VSET(b0);
        }
    }
#ifdef VALIGNR
    VM k[5];
    SLIDE_UNROLL for (int v = 0; v <= NV; v++) k[v] = km[v];
    (void)edge;
#endif
    SLIDE_UNROLL for (int i = 0; i < R + KH - 1; i++)
    {
        const float *xi = x + i * ld;
#ifdef VALIGNR
        const VM on = (VM)(0 - ((rowok >> i) & 1u));
        V a[5];
        SLIDE_UNROLL for (int v = 0; v <= NV; v++) a[v] = VLOADK(xi + v * W, (VM)(k[v] & on));
#else
        const int on = (rowok >> i) & 1u;
#endif
        SLIDE_UNROLL for (int v = 0; v < NV; v++)
        {
            SLIDE_UNROLL for (int t2 = 0; t2 < KW; t2++)
            {
#ifdef VALIGNR
                const V s = VALIGNR(a[v], a[v + 1], t2);
#else
                /* branches on values fixed for the whole call */
                const V s = !on                ? VZERO
                            : (edge >> v) & 1u ? VLOADK(xi + v * W + t2, km[v * 8 + t2])
                                               : VLOAD(xi + v * W + t2);
#endif
                SLIDE_UNROLL for (int r = 0; r < R; r++)
                {
                    const int t1 = i - r;
                    if (t1 >= 0 && t1 < KH)
                        acc[r][v] = VFMADD(s, VSET(w[t1 * KW + t2]), acc[r][v]);
                }
            }
        }
    }
    SLIDE_UNROLL for (int r = 0; r < R; r++)
    {
        SLIDE_UNROLL for (int v = 0; v < NV; v++)
        {
            float *yq = y + r * ldy + v * W;
            /* a whole last vector stored plainly: AVX2's masked store costs
             * many times a plain one (with the masks made for edge vectors
             * only, a 3x3 depthwise forward on 128 channels of 56x56 went
             * 2.07 -> 1.71 ms for 8 images on one thread) */
#ifdef VALIGNR
            if (v == NV - 1)
#else
            if (v == NV - 1 && !(edge & SLIDE_LAST_WHOLE))
#endif
                VSTOREK(yq, klast, acc[r][v]);
            else
                VSTORE(yq, acc[r][v]);
        }
    }
}

typedef void (*slide_fn)(const float *x, int64_t ld, const float *w, float *y, int64_t ldy, const VM *km, VM klast,
                         unsigned rowok, unsigned edge, float b0, int accumulate);
#define DEFINE_SLIDE(KH, KW, NV, TAG, R)                                                                          \
    static void slide_##KH##_##KW##_##NV##_##TAG(const float *x, int64_t ld, const float *w, float *y,            \
                                                 int64_t ldy, const VM *km, VM klast, unsigned rowok,             \
                                                 unsigned edge, float b0, int accumulate)                         \
    {                                                                                                             \
        slide_tile(x, ld, w, y, ldy, km, klast, rowok, edge, b0, accumulate, KH, KW, NV, R);                      \
    }
/* TAG: blk for blocks of SLIDE_R rows, one for single rows */
#define DEFINE_SLIDE_NV(KH, KW, TAG, R)                                                                           \
    DEFINE_SLIDE(KH, KW, 1, TAG, R)                                                                               \
    DEFINE_SLIDE(KH, KW, 2, TAG, R) DEFINE_SLIDE(KH, KW, 3, TAG, R) DEFINE_SLIDE(KH, KW, 4, TAG, R)
#define SLIDE_ROW(KH, KW, TAG)                                                                                    \
    {slide_##KH##_##KW##_1_##TAG, slide_##KH##_##KW##_2_##TAG, slide_##KH##_##KW##_3_##TAG,                       \
     slide_##KH##_##KW##_4_##TAG}

DEFINE_SLIDE_NV(3, 3, blk, SLIDE_R)
DEFINE_SLIDE_NV(3, 3, one, 1)
DEFINE_SLIDE_NV(5, 5, blk, SLIDE_R)
DEFINE_SLIDE_NV(5, 5, one, 1)
DEFINE_SLIDE_NV(7, 7, blk, SLIDE_R)
DEFINE_SLIDE_NV(7, 7, one, 1)
DEFINE_SLIDE_NV(1, 3, one, 1)
DEFINE_SLIDE_NV(1, 5, one, 1)
DEFINE_SLIDE_NV(1, 7, one, 1)

/* [kernel][a block of SLIDE_R rows, or 1][nv - 1]; kernels 3x3, 5x5, 7x7,
 * 1x3, 1x5, 1x7 (the 1-tall ones take a row at a time) */
static const slide_fn slide_table[6][2][4] = {
    {SLIDE_ROW(3, 3, blk), SLIDE_ROW(3, 3, one)}, {SLIDE_ROW(5, 5, blk), SLIDE_ROW(5, 5, one)},
    {SLIDE_ROW(7, 7, blk), SLIDE_ROW(7, 7, one)}, {SLIDE_ROW(1, 3, one), SLIDE_ROW(1, 3, one)},
    {SLIDE_ROW(1, 5, one), SLIDE_ROW(1, 5, one)}, {SLIDE_ROW(1, 7, one), SLIDE_ROW(1, 7, one)}};

/* The table's kernel index for the geometry, or -1 when slide_rows does
 * not serve it (see above). */
static int slide_kind(const cnni_conv_geom *g, int64_t nch)
{
    const int64_t kh = g->k[1], kw = g->k[2];
    if (nch != 1 || g->k[0] != 1 || g->s[1] != 1 || g->s[2] != 1 || g->d[1] != 1 || g->d[2] != 1)
        return -1;
    if (kw != 3 && kw != 5 && kw != 7)
        return -1;
    return kh == kw ? (int)(kw - 3) / 2 : kh == 1 ? 3 + (int)(kw - 3) / 2 : -1;
}

/* The most output channels a group for which the weight gradient runs as
 * wslide (see k_pads). */
#define WSLIDE_MAX_M 3

static int k_pads(const cnni_conv_geom *g, int64_t nch, int64_t m, int weight)
{
#ifdef VALIGNR
    /* slide_rows and wslide both apply the padding. But wslide forms its
     * windows (lane shifts) once per output channel, and from 4 output
     * channels a group, wgt_wide's tiles over a padded copy, which share
     * each window load between up to 6 channels, win (64 images of 1 to 6
     * channels 5x5 on 28x28, 1 thread, weight gradient: 0.28-0.31 ->
     * 0.21 ms; fwd+bwd, 16 images, 28x28, min of 5, us: 16 to 64 channels
     * in groups of 16 (m = 4) 3x3 1205 -> 967, 5x5 2245 -> 2035; m = 5
     * 687 -> 606; m = 8 1099 -> 1000; but m = 3 859 -> 887, m = 2 1233
     * -> 1286, depthwise 5x5 878 -> 1498) */
    return slide_kind(g, nch) >= 0 && !(weight && m > WSLIDE_MAX_M);
#else
    /* slide_rows applies it with masked window loads (the padded copy
     * had taken 35% of a 3x3 depthwise forward, 128 channels of 56x56:
     * 4.29 -> 2.16 ms for 8 images on one thread); the weight gradient
     * reads a padded copy */
    return !weight && m <= SLIDE_MAX_M && slide_kind(g, nch) >= 0;
#endif
}

/* The lanes of [lo, hi) (clamped to a vector). */
static inline VM lanes_between(int64_t lo, int64_t hi)
{
    lo = lo < 0 ? 0 : lo > W ? W : lo;
    hi = hi < lo ? lo : hi > W ? W : hi;
    return (VM)(VMASKN((int)hi) & ~VMASKN((int)lo));
}

static void slide_rows(cnni_dw_plane *p, int kind, int64_t m, float *y, int64_t ystride, const float *bias,
                       int accumulate)
{
    const cnni_conv_geom *g = p->g;
    const int64_t out2 = g->out[2], kw = g->k[2], kh = g->k[1];
    const int rmax = kh == 1 ? 1 : SLIDE_R;
    /* the plane read: the padded copy, or the input (zero padding p1, p2
     * applied here: see k_pads) */
    const int64_t p0 = p->padded ? 0 : g->p[0], p1 = p->padded ? 0 : g->p[1], p2 = p->padded ? 0 : g->p[2];
    const int64_t n0 = p->padded ? p->pd[0] : g->in[0], n1 = p->padded ? p->pd[1] : g->in[1],
                  n2 = p->padded ? p->pd[2] : g->in[2];
    for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
        const int64_t i0 = z0 * g->s[0] - p0; /* the input slice of dim 0 */
        const int slice = i0 >= 0 && i0 < n0; /* otherwise zero padding (then VALIGNR) */
        for (int64_t z2 = 0; z2 < out2; z2 += 4 * W) {
            const int64_t left = out2 - z2 < 4 * W ? out2 - z2 : 4 * W;
            const int nv = (int)((left + W - 1) / W), last = (int)(left - (nv - 1) * W);
            /* row vector v holds columns c0 + v*W + l: those in [0, n2) and
             * below c0 + left + kw - 1, the last the outputs read */
            const int64_t c0 = z2 - p2, end = c0 + left + kw - 1 < n2 ? c0 + left + kw - 1 : n2;
            unsigned edge = 0;
#ifdef VALIGNR
            VM km[5];
            for (int v = 0; v <= nv; v++)
                km[v] = lanes_between(-c0 - v * W, end - c0 - v * W);
#else
            /* the window of vector v at tap t2: columns c0 + v*W + t2 + l;
             * masks only for the vectors with a window crossing an end */
            VM km[4 * 8];
            if (last == W)
                edge |= SLIDE_LAST_WHOLE;
            for (int v = 0; v < nv; v++) {
                const int64_t s0 = c0 + v * W;
                if (s0 >= 0 && s0 + kw - 1 + W <= end)
                    continue;
                edge |= 1u << v;
                for (int t2 = 0; t2 < kw; t2++)
                    km[v * 8 + t2] = lanes_between(-(s0 + t2), end - (s0 + t2));
            }
#endif
            const VM klast = VMASKN(last);
            for (int64_t z1 = p->z1a; z1 < p->z1b;) {
                const int rows = p->z1b - z1 >= rmax ? rmax : 1;
                cnni_dw_fill(p, z1 + rows - 1);
                /* input rows z1 - p1 + i, i < rows + kh - 1, inside [0, n1) */
                const int64_t nin = rows + kh - 1, lo = p1 - z1 > 0 ? p1 - z1 : 0,
                              hi = n1 - z1 + p1 < nin ? n1 - z1 + p1 : nin;
                const unsigned rowok = slice && lo < hi ? ((1u << hi) - 1) & ~((1u << lo) - 1) : 0;
                const slide_fn f = slide_table[kind][rows == rmax && rmax > 1 ? 0 : 1][nv - 1];
                /* with padding, x points before the plane's start at the top
                 * left: only lanes inside it are read */
                const float *xz = p->x + i0 * n1 * n2 + (z1 - p1) * n2 + c0;
                for (int64_t q = 0; q < m; q++)
                    f(xz, n2, p->w + q * p->ntaps, y + q * ystride + (z0 * g->out[1] + z1) * out2 + z2, out2, km,
                      klast, rowok, edge, bias ? bias[q] : 0.0f, accumulate);
                z1 += rows;
            }
        }
    }
}

static void k_forward(cnni_dw_plane *p, int64_t m, float *y, int64_t ystride, const float *bias, int accumulate)
{
    const int kind = slide_kind(p->g, p->nch);
    if (kind >= 0 && (k_pads(p->g, p->nch, m, 0) || m <= SLIDE_MAX_M)) {
        slide_rows(p, kind, m, y, ystride, bias, accumulate);
        return;
    }
    if (p->g->s[2] == 1)
        fwd_rows(p, m, y, ystride, bias, accumulate, S_ONE);
    else if (p->g->s[2] == 2)
        fwd_rows(p, m, y, ystride, bias, accumulate, S_TWO);
    else
        fwd_rows(p, m, y, ystride, bias, accumulate, S_GATHER);
}

/* ---- weight gradient: tiles of mo output channels x mk taps, accumulated
 * over the whole plane: mo <= 2 and mo*mk <= 8 in general, and at stride 1
 * up to DW_MAX_ACC accumulators (mo <= DW_MAX_ACC/4, mk <= 8) ---- */
#define WGT_MAXO (DW_MAX_ACC / 4)
DW_INLINE void wgt_tile(cnni_dw_plane *p, const float *dy, int64_t dystride, int64_t t0, int mk, int mo, int mode,
                        double *acc, int64_t accstride, int want_db)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], out2 = g->out[2], full = out2 / W * W;
    const int tail = (int)(out2 - full);
    V a[DW_MAX_ACC], b[WGT_MAXO];
    DW_UNROLL for (int q = 0; q < mo; q++) b[q] = VZERO;
    /* the sums of dy go to double every 16 vectors or so (see wslide_tile) */
    double dbs[WGT_MAXO] = {0};
    int64_t nb = 0;
    DW_UNROLL for (int q = 0; q < mo; q++)
    {
        DW_UNROLL for (int i = 0; i < mk; i++) a[q * mk + i] = VZERO;
    }
    for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
        const float *xo[8], *dr = dy + (z0 * g->out[1] + p->z1a) * out2;
        DW_UNROLL for (int i = 0; i < mk; i++) xo[i] = p->x + z0 * p->step0 + p->z1a * p->step1 + p->off[t0 + i];
        for (int64_t z1 = p->z1a; z1 < p->z1b; z1++) {
            /* rows in blocks of 8, so the registers are saved around a fill
             * once per block */
            if ((z1 - p->z1a) % 8 == 0)
                cnni_dw_fill(p, z1 + 7 < p->z1b ? z1 + 7 : p->z1b - 1);
            for (int64_t z2 = 0; z2 < full; z2 += W) {
                V dv[WGT_MAXO];
                DW_UNROLL for (int q = 0; q < mo; q++)
                {
                    dv[q] = VLOAD(dr + q * dystride + z2);
                    if (want_db)
                        b[q] = VADD(b[q], dv[q]);
                }
                DW_UNROLL for (int i = 0; i < mk; i++)
                {
                    const V xv = load_x(xo[i] + z2 * s, s, W, mode);
                    DW_UNROLL for (int q = 0; q < mo; q++) a[q * mk + i] = VFMADD(xv, dv[q], a[q * mk + i]);
                }
            }
            if (tail) {
                V dv[WGT_MAXO];
                DW_UNROLL for (int q = 0; q < mo; q++)
                {
                    dv[q] = VLOADM(dr + q * dystride + full, tail);
                    if (want_db)
                        b[q] = VADD(b[q], dv[q]);
                }
                DW_UNROLL for (int i = 0; i < mk; i++)
                {
                    const V xv = load_x(xo[i] + full * s, s, tail, mode);
                    DW_UNROLL for (int q = 0; q < mo; q++) a[q * mk + i] = VFMADD(xv, dv[q], a[q * mk + i]);
                }
            }
            DW_UNROLL for (int i = 0; i < mk; i++) xo[i] += p->step1;
            dr += out2;
            if (want_db && (nb += (out2 + W - 1) / W) >= 16) {
                DW_UNROLL for (int q = 0; q < mo; q++)
                {
                    dbs[q] += (double)VHSUM(b[q]);
                    b[q] = VZERO;
                }
                nb = 0;
            }
        }
    }
    DW_UNROLL for (int q = 0; q < mo; q++)
    {
        DW_UNROLL for (int i = 0; i < mk; i++) acc[q * accstride + t0 + i] += (double)VHSUM(a[q * mk + i]);
        if (want_db)
            acc[q * accstride + p->ntaps] += dbs[q] + (double)VHSUM(b[q]);
    }
}

#define WGT_TILE(MK, MO) wgt_tile(p, dq, dystride, t0, MK, MO, mode, aq, accstride, db)

DW_INLINE void wgt_modes(cnni_dw_plane *p, int64_t m, const float *dy, int64_t dystride, double *acc,
                         int64_t accstride, int want_db, int mode)
{
    for (int64_t q = 0; q < m;) {
        const int mo = m - q >= 2 ? 2 : 1, maxk = mo == 2 ? 4 : 8;
        const float *dq = dy + q * dystride;
        double *aq = acc + q * accstride;
        /* The taps in nearly equal blocks (3x3 alone: 5 + 4) */
        const int64_t blocks = (p->ntaps + maxk - 1) / maxk;
        for (int64_t bi = 0, t0 = 0; bi < blocks; bi++) {
            const int mk = (int)(p->ntaps / blocks + (bi < p->ntaps % blocks));
            const int db = want_db && bi == 0;
            if (mo == 2) {
                switch (mk) {
                case 4: WGT_TILE(4, 2); break;
                case 3: WGT_TILE(3, 2); break;
                case 2: WGT_TILE(2, 2); break;
                default: WGT_TILE(1, 2);
                }
            } else {
                switch (mk) {
                case 8: WGT_TILE(8, 1); break;
                case 7: WGT_TILE(7, 1); break;
                case 6: WGT_TILE(6, 1); break;
                case 5: WGT_TILE(5, 1); break;
                case 4: WGT_TILE(4, 1); break;
                case 3: WGT_TILE(3, 1); break;
                case 2: WGT_TILE(2, 1); break;
                default: WGT_TILE(1, 1);
                }
            }
            t0 += mk;
        }
        q += mo;
    }
}

/* Stride 1: the widest tiles the registers hold. */
DW_INLINE void wgt_wide(cnni_dw_plane *p, int64_t m, const float *dy, int64_t dystride, double *acc, int64_t accstride,
                        int want_db)
{
    const int mode = S_ONE;
    for (int64_t q = 0; q < m;) {
        const int mo = (int)(m - q < WGT_MAXO ? m - q : WGT_MAXO), maxk = DW_MAX_ACC / mo < 8 ? DW_MAX_ACC / mo : 8;
        const float *dq = dy + q * dystride;
        double *aq = acc + q * accstride;
        /* The bias sums take mo more registers: a first, narrower block
         * carries them, then the rest of the taps in nearly equal blocks. */
        const int kdb = (DW_NREG - 1 - 2 * mo) / mo < maxk ? (DW_NREG - 1 - 2 * mo) / mo : maxk;
        const int64_t first = !want_db ? 0 : kdb < 1 ? 1 : kdb < p->ntaps ? kdb : p->ntaps;
        const int64_t rest = p->ntaps - first, blocks = (rest + maxk - 1) / maxk;
        for (int64_t bi = first ? -1 : 0, t0 = 0; bi < blocks; bi++) {
            const int mk = (int)(bi < 0 ? first : rest / blocks + (bi < rest % blocks));
            const int db = bi < 0;
#if DW_MAX_ACC >= 24
            switch (mo) {
            case 6:
                switch (mk) {
                case 4: WGT_TILE(4, 6); break;
                case 3: WGT_TILE(3, 6); break;
                case 2: WGT_TILE(2, 6); break;
                default: WGT_TILE(1, 6);
                }
                break;
            case 5:
                switch (mk) {
                case 4: WGT_TILE(4, 5); break;
                case 3: WGT_TILE(3, 5); break;
                case 2: WGT_TILE(2, 5); break;
                default: WGT_TILE(1, 5);
                }
                break;
            case 4:
                switch (mk) {
                case 6: WGT_TILE(6, 4); break;
                case 5: WGT_TILE(5, 4); break;
                case 4: WGT_TILE(4, 4); break;
                case 3: WGT_TILE(3, 4); break;
                case 2: WGT_TILE(2, 4); break;
                default: WGT_TILE(1, 4);
                }
                break;
            case 3:
                switch (mk) {
                case 8: WGT_TILE(8, 3); break;
                case 7: WGT_TILE(7, 3); break;
                case 6: WGT_TILE(6, 3); break;
                case 5: WGT_TILE(5, 3); break;
                case 4: WGT_TILE(4, 3); break;
                case 3: WGT_TILE(3, 3); break;
                case 2: WGT_TILE(2, 3); break;
                default: WGT_TILE(1, 3);
                }
                break;
            case 2:
                switch (mk) {
                case 8: WGT_TILE(8, 2); break;
                case 7: WGT_TILE(7, 2); break;
                case 6: WGT_TILE(6, 2); break;
                case 5: WGT_TILE(5, 2); break;
                case 4: WGT_TILE(4, 2); break;
                case 3: WGT_TILE(3, 2); break;
                case 2: WGT_TILE(2, 2); break;
                default: WGT_TILE(1, 2);
                }
                break;
            case 1:
                switch (mk) {
                case 8: WGT_TILE(8, 1); break;
                case 7: WGT_TILE(7, 1); break;
                case 6: WGT_TILE(6, 1); break;
                case 5: WGT_TILE(5, 1); break;
                case 4: WGT_TILE(4, 1); break;
                case 3: WGT_TILE(3, 1); break;
                case 2: WGT_TILE(2, 1); break;
                default: WGT_TILE(1, 1);
                }
                break;
            }
#else
            switch (mo) {
            case 3:
                switch (mk) {
                case 4: WGT_TILE(4, 3); break;
                case 3: WGT_TILE(3, 3); break;
                case 2: WGT_TILE(2, 3); break;
                default: WGT_TILE(1, 3);
                }
                break;
            case 2:
                switch (mk) {
                case 6: WGT_TILE(6, 2); break;
                case 5: WGT_TILE(5, 2); break;
                case 4: WGT_TILE(4, 2); break;
                case 3: WGT_TILE(3, 2); break;
                case 2: WGT_TILE(2, 2); break;
                default: WGT_TILE(1, 2);
                }
                break;
            case 1:
                switch (mk) {
                case 8: WGT_TILE(8, 1); break;
                case 7: WGT_TILE(7, 1); break;
                case 6: WGT_TILE(6, 1); break;
                case 5: WGT_TILE(5, 1); break;
                case 4: WGT_TILE(4, 1); break;
                case 3: WGT_TILE(3, 1); break;
                case 2: WGT_TILE(2, 1); break;
                default: WGT_TILE(1, 1);
                }
                break;
            }
#endif
            t0 += mk;
        }
        q += mo;
    }
}

#ifdef VALIGNR
/* ---- weight gradient of the sliding-rows geometries (slide_kind), read
 * in place with the padding applied by masks: TR kernel rows from ta at a
 * time (at most 21 accumulators). Each input row's KW windows (lane shifts
 * of two loads) are formed once and met with the dy rows of all TR kernel
 * rows that read that input row; forming them once per (dy row, kernel
 * row) pair instead, the shifts, not the FMAs, bounded LeNet's first
 * layer. Each tap still sums the plane in the order (z0, z1, z2). ---- */
DW_INLINE void wslide_tile(const cnni_dw_plane *p, const float *dy, int ta, double *acc, int64_t ntaps, int want_db,
                           int TR, int KW)
{
    const cnni_conv_geom *g = p->g;
    const int64_t out1 = g->out[1], out2 = g->out[2], n0 = g->in[0], n1 = g->in[1], n2 = g->in[2];
    const int64_t nvec = (out2 + W - 1) / W, c0 = -g->p[2];
    const int64_t end = c0 + out2 + KW - 1 < n2 ? c0 + out2 + KW - 1 : n2;
    const VM ktail = VMASKN((int)(out2 - (nvec - 1) * W));
    /* input rows that some output row z1 = r + p1 - ta - j (j < TR) meets */
    const int64_t rlo = ta - g->p[1] > 0 ? ta - g->p[1] : 0;
    const int64_t rhi = out1 + ta + TR - 1 - g->p[1] < n1 ? out1 + ta + TR - 1 - g->p[1] : n1;
    V a[3 * 7];
    SLIDE_UNROLL for (int i = 0; i < TR * KW; i++) a[i] = VZERO;
    for (int64_t z0 = 0; z0 < g->out[0]; z0++) {
        const int64_t i0 = z0 * g->s[0] - g->p[0];
        if (i0 < 0 || i0 >= n0)
            continue;
        for (int64_t r = rlo; r < rhi; r++) {
            const float *xr = p->x + (i0 * n1 + r) * n2 + c0;
            const float *dr[3];
            int dok[3];
            SLIDE_UNROLL for (int j = 0; j < TR; j++)
            {
                const int64_t z1 = r + g->p[1] - ta - j;
                dok[j] = z1 >= 0 && z1 < out1;
                dr[j] = dy + (z0 * out1 + z1) * out2;
            }
            VM kcur = lanes_between(-c0, end - c0);
            for (int64_t v = 0; v < nvec; v++) {
                const VM knext = lanes_between(-c0 - (v + 1) * W, end - c0 - (v + 1) * W);
                const VM ks = v == nvec - 1 ? ktail : VMASKN(W);
                const V lo = VLOADK(xr + v * W, kcur), hi = VLOADK(xr + v * W + W, knext);
                V win[7];
                SLIDE_UNROLL for (int t2 = 0; t2 < KW; t2++) win[t2] = VALIGNR(lo, hi, t2);
                SLIDE_UNROLL for (int j = 0; j < TR; j++)
                {
                    if (!dok[j])
                        continue;
                    const V d = VLOADK(dr[j] + v * W, ks);
                    SLIDE_UNROLL for (int t2 = 0; t2 < KW; t2++) a[j * KW + t2] =
                        VFMADDK(win[t2], d, a[j * KW + t2], ks);
                }
                kcur = knext;
            }
        }
    }
    SLIDE_UNROLL for (int i = 0; i < TR * KW; i++) acc[ta * KW + i] += (double)VHSUM(a[i]);
    if (!want_db)
        return;
    /* the bias gradient: the sums of dy go to double every 16 vectors or
     * so (a plane's worth in float lanes erred by 1.4e-5 on 13,050 values,
     * a bias gradient near 1, where PyTorch's tolerance is 1e-5) */
    V b = VZERO;
    double dbs = 0;
    int64_t nb = 0;
    for (int64_t z = 0; z < g->out[0] * out1; z++) {
        const float *dr = dy + z * out2;
        for (int64_t v = 0; v < nvec; v++)
            b = VADD(b, VLOADK(dr + v * W, v == nvec - 1 ? ktail : VMASKN(W)));
        if ((nb += nvec) >= 16) {
            dbs += (double)VHSUM(b);
            b = VZERO;
            nb = 0;
        }
    }
    acc[ntaps] += dbs + (double)VHSUM(b);
}

typedef void (*wslide_fn)(const cnni_dw_plane *p, const float *dy, int ta, double *acc, int64_t ntaps, int want_db);
#define DEFINE_WSLIDE(TR, KW)                                                                                     \
    static void wslide_##TR##_##KW(const cnni_dw_plane *p, const float *dy, int ta, double *acc, int64_t ntaps,   \
                                   int want_db)                                                                   \
    {                                                                                                             \
        wslide_tile(p, dy, ta, acc, ntaps, want_db, TR, KW);                                                      \
    }
DEFINE_WSLIDE(3, 3)
DEFINE_WSLIDE(3, 5)
DEFINE_WSLIDE(2, 5)
DEFINE_WSLIDE(3, 7)
DEFINE_WSLIDE(2, 7)
DEFINE_WSLIDE(1, 3)
DEFINE_WSLIDE(1, 5)
DEFINE_WSLIDE(1, 7)

static void wslide(const cnni_dw_plane *p, int64_t m, const float *dy, int64_t dystride, double *acc,
                   int64_t accstride, int want_db)
{
    const int64_t kh = p->g->k[1], kw = p->g->k[2];
    for (int64_t q = 0; q < m; q++) {
        const float *dq = dy + q * dystride;
        double *aq = acc + q * accstride;
        /* kernel rows in passes of 3, then 2 */
        for (int ta = 0; ta < kh;) {
            const int tr = kh - ta >= 3 ? (kh - ta == 4 ? 2 : 3) : (int)(kh - ta);
            const wslide_fn f = kw == 3   ? (tr == 3 ? wslide_3_3 : wslide_1_3)
                                : kw == 5 ? (tr == 3 ? wslide_3_5 : tr == 2 ? wslide_2_5 : wslide_1_5)
                                          : (tr == 3 ? wslide_3_7 : tr == 2 ? wslide_2_7 : wslide_1_7);
            f(p, dq, ta, aq, p->ntaps, want_db && ta == 0);
            ta += tr;
        }
    }
}
#endif

static void k_weight(cnni_dw_plane *p, int64_t m, const float *dy, int64_t dystride, double *acc, int64_t accstride,
                     int want_db)
{
#ifdef VALIGNR
    if (!p->padded && m <= WSLIDE_MAX_M && slide_kind(p->g, p->nch) >= 0) {
        wslide(p, m, dy, dystride, acc, accstride, want_db);
        return;
    }
#endif
    if (p->g->s[2] == 1)
        wgt_wide(p, m, dy, dystride, acc, accstride, want_db);
    else if (p->g->s[2] == 2)
        wgt_modes(p, m, dy, dystride, acc, accstride, want_db, S_TWO);
    else
        wgt_modes(p, m, dy, dystride, acc, accstride, want_db, S_GATHER);
}

/* ---- scatter (backward data at stride > 1): xp(z, t) += dy(z) w[t] ---- */
static void k_scatter(cnni_dw_plane *p, float *xp, const float *dy)
{
    const cnni_conv_geom *g = p->g;
    const int64_t s = g->s[2], out2 = g->out[2], ntaps = p->ntaps;
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

#ifndef VKEEP
#define VKEEP(v) __asm__("" : "+x"(v))
#endif

/* ---- backward data as products and a scatter: c = a b, tiles of mt rows
 * of a x nv vectors of a row of b, summed over k in order ---- */
/* AVX2: 3 x 3 tiles; 3 x 4 held 12 accumulators, 4 vectors of b and a
 * broadcast in 16 registers, and spilled (LeNet conv2's training step, 1
 * thread: 1887 -> 1665 us median, 1365 -> 1224 fastest, with 3 x 3) */
#define COLS_NV (DW_MAX_ACC >= 24 ? 7 : 3)

DW_INLINE void cols_tile(int64_t K, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int mt,
                         int nv, int last)
{
    /* b's rows are read once per k into registers (VKEEP): loads folded
     * into each FMA would read them mt times */
    V acc[3][7];
    DW_UNROLL for (int t = 0; t < mt; t++)
    {
        DW_UNROLL for (int v = 0; v < nv; v++) acc[t][v] = VZERO;
    }
    for (int64_t k = 0; k < K; k++) {
        V bv[7];
        DW_UNROLL for (int v = 0; v < nv; v++)
        {
            bv[v] = v == nv - 1 ? VLOADM(b + k * ldb + v * W, last) : VLOAD(b + k * ldb + v * W);
            VKEEP(bv[v]);
        }
        DW_UNROLL for (int t = 0; t < mt; t++)
        {
            const V av = VSET(a[t * K + k]);
            DW_UNROLL for (int v = 0; v < nv; v++) acc[t][v] = VFMADD(av, bv[v], acc[t][v]);
        }
    }
    DW_UNROLL for (int t = 0; t < mt; t++)
    {
        DW_UNROLL for (int v = 0; v < nv; v++)
        {
            if (v == nv - 1 && last < W) /* masked stores cost many plain ones on AVX2 */
                VSTOREM(c + t * ldc + v * W, last, acc[t][v]);
            else
                VSTORE(c + t * ldc + v * W, acc[t][v]);
        }
    }
}

#define COLS_TILE(MT, NV) cols_tile(K, a + t * K, b + p, ldb, c + t * ldc + p, ldc, MT, NV, last)
#define COLS_NVS(MT)                                                                                               \
    switch (nv) {                                                                                                  \
    case 7: COLS_TILE(MT, 7); break;                                                                               \
    case 6: COLS_TILE(MT, 6); break;                                                                               \
    case 5: COLS_TILE(MT, 5); break;                                                                               \
    case 4: COLS_TILE(MT, 4); break;                                                                               \
    case 3: COLS_TILE(MT, 3); break;                                                                               \
    case 2: COLS_TILE(MT, 2); break;                                                                               \
    default: COLS_TILE(MT, 1);                                                                                     \
    }

static void k_cols(int64_t T, int64_t K, int64_t P, const float *a, const float *b, int64_t ldb, float *c,
                   int64_t ldc)
{
    for (int64_t p = 0; p < P; p += COLS_NV * W) {
        const int64_t rest = P - p < COLS_NV * W ? P - p : COLS_NV * W;
        const int nv = (int)((rest + W - 1) / W), last = (int)(rest - (nv - 1) * W);
        /* rows in blocks of 3, or 2 at the end rather than a lone 1 */
        int64_t t = 0;
        for (; T - t >= 3 && T - t != 4; t += 3)
            COLS_NVS(3)
        for (; t < T; t += 2) {
            if (T - t >= 2)
                COLS_NVS(2)
            else
                COLS_NVS(1)
        }
    }
}

/* Row r of d (n wide, rows of them) = the sum over e in [first[r],
 * first[r + 1]) and t < k2 of src[e][t*ld + i - sh], sh = sh0 + t*dil,
 * over 0 <= i - sh < m (see the header). Which lanes a tap reads, and from
 * where, depend on the column block and the tap alone: made once per block
 * for every row, and with up to GATHER_TAPS taps the sums go to one
 * register per tap, so the adds overlap (LeNet's conv2, 14 x 14 rows of
 * 5 x 5 taps, before: a call per row making its masks, 4 sums). */
#define GATHER_TAPS 7
static void gather_row(float *d, int64_t n, int64_t m, const float *const *src, int64_t cnt, int64_t k2,
                       int64_t ld, int64_t sh0, int64_t dil)
{
    for (int64_t i = 0; i < n; i += W) {
        /* four partial sums (entry e into sum e % 4), so the adds overlap */
        V acc[4] = {VZERO, VZERO, VZERO, VZERO};
        for (int64_t t = 0; t < k2; t++) {
            /* lanes l with sh <= i + l < sh + m */
            const int64_t sh = sh0 + t * dil, a = sh - i, b = sh + m - i, at = t * ld + i - sh;
            if (b <= 0 || a >= W)
                continue;
            const int lo = a < 0 ? 0 : (int)a, hi = b > W ? W : (int)b;
            int64_t e = 0;
            for (; e + 4 <= cnt; e += 4) {
                DW_UNROLL for (int h = 0; h < 4; h++) acc[h] = VADD(acc[h], VLOADR(src[e + h] + at, lo, hi));
            }
            DW_UNROLL for (int h = 0; h < 3; h++) /* unrolled: acc stays in registers */
            {
                if (e + h < cnt)
                    acc[h] = VADD(acc[h], VLOADR(src[e + h] + at, lo, hi));
            }
        }
        const V sum = VADD(VADD(acc[0], acc[1]), VADD(acc[2], acc[3]));
        if (n - i >= W)
            VSTORE(d + i, sum);
        else
            VSTOREM(d + i, (int)(n - i), sum);
    }
}

static void k_gather(float *d, int64_t rows, int64_t n, int64_t m, const float *const *src, const int64_t *first,
                     int64_t k2, int64_t ld, int64_t sh0, int64_t dil)
{
    if (k2 > GATHER_TAPS) {
        for (int64_t r = 0; r < rows; r++)
            gather_row(d + r * n, n, m, src + first[r], first[r + 1] - first[r], k2, ld, sh0, dil);
        return;
    }
    for (int64_t i = 0; i < n; i += W) {
        /* the taps that reach this block: their lanes and offsets */
        VM mk[GATHER_TAPS];
        int64_t off[GATHER_TAPS];
        int nt = 0;
        for (int64_t t = 0; t < k2; t++) {
            const int64_t sh = sh0 + t * dil, a = sh - i, b = sh + m - i;
            if (b <= 0 || a >= W)
                continue;
            mk[nt] = lanes_between(a, b);
            off[nt++] = t * ld + i - sh;
        }
        const int whole = n - i >= W;
        for (int64_t r = 0; r < rows; r++) {
            V acc[GATHER_TAPS];
            DW_UNROLL for (int u = 0; u < GATHER_TAPS; u++) acc[u] = VZERO;
            for (int64_t e = first[r]; e < first[r + 1]; e++) {
                const float *se = src[e];
                DW_UNROLL for (int u = 0; u < GATHER_TAPS; u++)
                {
                    if (u < nt)
                        acc[u] = VADD(acc[u], VLOADK(se + off[u], mk[u]));
                }
            }
            V sum = acc[0];
            DW_UNROLL for (int u = 1; u < GATHER_TAPS; u++) sum = VADD(sum, acc[u]);
            if (whole)
                VSTORE(d + r * n + i, sum);
            else
                VSTOREM(d + r * n + i, (int)(n - i), sum);
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
