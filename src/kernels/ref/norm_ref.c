/* Reference normalisation: y = (x - mean) * rstd * w[c] + b[c], with the
 * statistics of norm_ref.h's (N, G, Cg, S) view. A statistic covers one
 * contiguous block of Cg * S elements per outer index it spans (all N for
 * BatchNorm, one otherwise), so every loop below walks blocks. */
#include "real.h"
#include "norm_ref.h"

/* Offset of the b-th block of statistic st, and the group st belongs to. */
static inline int64_t block_start(const cnni_norm_geom *g, int64_t st, int64_t b)
{
    const int64_t len = g->Cg * g->S;
    return g->across_batch ? (b * g->G + st) * len : st * len;
}

static inline int64_t stat_group(const cnni_norm_geom *g, int64_t st)
{
    return g->across_batch ? st : st % g->G;
}

void REFN(cnni_ref_norm_stats)(const cnni_norm_geom *g, const REAL *x, double *mean, double *var)
{
    const int64_t nstat = cnni_norm_nstat(g), cnt = cnni_norm_count(g);
    const int64_t nblk = g->across_batch ? g->N : 1, len = g->Cg * g->S;
    for (int64_t st = 0; st < nstat; st++) {
        ACC sum = 0;
        for (int64_t b = 0; b < nblk; b++) {
            const REAL *xb = x + block_start(g, st, b);
            for (int64_t t = 0; t < len; t++)
                sum += xb[t];
        }
        const ACC m = cnt ? sum / (ACC)cnt : 0;
        /* The second pass over centred values keeps the variance accurate
         * when the mean is large compared with the spread. */
        ACC ss = 0;
        for (int64_t b = 0; b < nblk; b++) {
            const REAL *xb = x + block_start(g, st, b);
            for (int64_t t = 0; t < len; t++) {
                const ACC d = (ACC)xb[t] - m;
                ss += d * d;
            }
        }
        mean[st] = m;
        var[st] = cnt ? ss / (ACC)cnt : 0;
    }
}

void REFN(cnni_ref_norm_forward)(const cnni_norm_geom *g, const REAL *x, const double *mean,
                                 const double *rstd, const REAL *w, const REAL *b, REAL *y)
{
    const int64_t nstat = cnni_norm_nstat(g);
    const int64_t nblk = g->across_batch ? g->N : 1;
    for (int64_t st = 0; st < nstat; st++) {
        const int64_t grp = stat_group(g, st);
        const ACC m = mean[st], r = rstd[st];
        for (int64_t bl = 0; bl < nblk; bl++) {
            const int64_t off = block_start(g, st, bl);
            for (int64_t j = 0; j < g->Cg; j++) {
                const int64_t c = grp * g->Cg + j;
                const ACC scale = r * (w ? (ACC)w[c] : 1);
                const ACC shift = b ? (ACC)b[c] : 0;
                const REAL *xc = x + off + j * g->S;
                REAL *yc = y + off + j * g->S;
                for (int64_t s = 0; s < g->S; s++)
                    yc[s] = (REAL)(((ACC)xc[s] - m) * scale + shift);
            }
        }
    }
}

/* With batch statistics, xhat = (x - mean) * rstd depends on every element
 * of its statistic; for L = sum(dy * y), gy = dy * w:
 *   dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat))
 * over the statistic's elements. With constant statistics dx = gy * rstd. */
static void backward_data(const cnni_norm_geom *g, const REAL *x, const REAL *dy,
                          const double *mean, const double *rstd, const REAL *w, int batch_stats,
                          REAL *dx)
{
    const int64_t nstat = cnni_norm_nstat(g), cnt = cnni_norm_count(g);
    const int64_t nblk = g->across_batch ? g->N : 1;
    for (int64_t st = 0; st < nstat; st++) {
        const int64_t grp = stat_group(g, st);
        const ACC m = mean[st], r = rstd[st];
        ACC mg = 0, mgx = 0;
        if (batch_stats) {
            ACC sg = 0, sgx = 0;
            for (int64_t bl = 0; bl < nblk; bl++) {
                const int64_t off = block_start(g, st, bl);
                for (int64_t j = 0; j < g->Cg; j++) {
                    const ACC wc = w ? (ACC)w[grp * g->Cg + j] : 1;
                    const int64_t o = off + j * g->S;
                    for (int64_t s = 0; s < g->S; s++) {
                        const ACC gy = (ACC)dy[o + s] * wc;
                        sg += gy;
                        sgx += gy * (((ACC)x[o + s] - m) * r);
                    }
                }
            }
            if (cnt) {
                mg = sg / (ACC)cnt;
                mgx = sgx / (ACC)cnt;
            }
        }
        for (int64_t bl = 0; bl < nblk; bl++) {
            const int64_t off = block_start(g, st, bl);
            for (int64_t j = 0; j < g->Cg; j++) {
                const ACC wc = w ? (ACC)w[grp * g->Cg + j] : 1;
                const int64_t o = off + j * g->S;
                for (int64_t s = 0; s < g->S; s++) {
                    const ACC gy = (ACC)dy[o + s] * wc;
                    if (batch_stats) {
                        const ACC xh = ((ACC)x[o + s] - m) * r;
                        dx[o + s] = (REAL)(r * (gy - mg - xh * mgx));
                    } else {
                        dx[o + s] = (REAL)(gy * r);
                    }
                }
            }
        }
    }
}

void REFN(cnni_ref_norm_backward)(const cnni_norm_geom *g, const REAL *x, const REAL *dy,
                                  const double *mean, const double *rstd, const REAL *w,
                                  int batch_stats, REAL *dx, REAL *dw, REAL *db)
{
    if (dx)
        backward_data(g, x, dy, mean, rstd, w, batch_stats, dx);
    if (!dw && !db)
        return;
    /* Per channel, summed over every outer index: one accumulator each, so
     * the float build adds a single rounded total into dw and db. */
    for (int64_t grp = 0; grp < g->G; grp++)
        for (int64_t j = 0; j < g->Cg; j++) {
            ACC aw = 0, ab = 0;
            for (int64_t n = 0; n < g->N; n++) {
                const int64_t st = g->across_batch ? grp : n * g->G + grp;
                const ACC m = mean[st], r = rstd[st];
                const int64_t o = ((n * g->G + grp) * g->Cg + j) * g->S;
                for (int64_t s = 0; s < g->S; s++) {
                    aw += (ACC)dy[o + s] * (((ACC)x[o + s] - m) * r);
                    ab += dy[o + s];
                }
            }
            const int64_t c = grp * g->Cg + j;
            if (dw)
                dw[c] += (REAL)aw;
            if (db)
                db[c] += (REAL)ab;
        }
}
