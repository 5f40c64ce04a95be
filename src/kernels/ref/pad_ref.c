/* Reference padding (zeros, reflect, replicate, circular) and its gradient,
 * which adds each padded element's gradient back to its source. */
#include "real.h"
#include "ref.h"

#include <string.h>

/* Source index of padded coordinate j (in [-lo, n + hi)), or -1 for zeros. */
static inline int64_t src_index(int64_t j, int64_t n, cnni_pad_mode mode)
{
    if (j >= 0 && j < n)
        return j;
    switch (mode) {
    case CNNI_PAD_ZEROS: return -1;
    case CNNI_PAD_REFLECT:
        /* PyTorch requires pad < n, so one reflection suffices. */
        return j < 0 ? -j : 2 * (n - 1) - j;
    case CNNI_PAD_REPLICATE: return j < 0 ? 0 : n - 1;
    case CNNI_PAD_CIRCULAR: return ((j % n) + n) % n;
    }
    return -1;
}

void REFN(cnni_ref_pad_forward)(const cnni_pad_geom *g, const REAL *x, REAL *y)
{
    int64_t o0 = g->in[0] + g->lo[0] + g->hi[0];
    int64_t o1 = g->in[1] + g->lo[1] + g->hi[1];
    int64_t o2 = g->in[2] + g->lo[2] + g->hi[2];
    int64_t in_sz = g->in[0] * g->in[1] * g->in[2];
    for (int64_t c = 0; c < g->NC; c++)
        for (int64_t a = 0; a < o0; a++) {
            int64_t i0 = src_index(a - g->lo[0], g->in[0], g->mode);
            for (int64_t b = 0; b < o1; b++) {
                int64_t i1 = src_index(b - g->lo[1], g->in[1], g->mode);
                for (int64_t d = 0; d < o2; d++) {
                    int64_t i2 = src_index(d - g->lo[2], g->in[2], g->mode);
                    REAL v = 0;
                    if (i0 >= 0 && i1 >= 0 && i2 >= 0)
                        v = x[c * in_sz + (i0 * g->in[1] + i1) * g->in[2] + i2];
                    y[((c * o0 + a) * o1 + b) * o2 + d] = v;
                }
            }
        }
}

void REFN(cnni_ref_pad_backward)(const cnni_pad_geom *g, const REAL *dy, REAL *dx)
{
    int64_t o0 = g->in[0] + g->lo[0] + g->hi[0];
    int64_t o1 = g->in[1] + g->lo[1] + g->hi[1];
    int64_t o2 = g->in[2] + g->lo[2] + g->hi[2];
    int64_t in_sz = g->in[0] * g->in[1] * g->in[2];
    memset(dx, 0, sizeof(REAL) * (size_t)(g->NC * in_sz));
    for (int64_t c = 0; c < g->NC; c++)
        for (int64_t a = 0; a < o0; a++) {
            int64_t i0 = src_index(a - g->lo[0], g->in[0], g->mode);
            for (int64_t b = 0; b < o1; b++) {
                int64_t i1 = src_index(b - g->lo[1], g->in[1], g->mode);
                for (int64_t d = 0; d < o2; d++) {
                    int64_t i2 = src_index(d - g->lo[2], g->in[2], g->mode);
                    if (i0 >= 0 && i1 >= 0 && i2 >= 0)
                        dx[c * in_sz + (i0 * g->in[1] + i1) * g->in[2] + i2] +=
                            dy[((c * o0 + a) * o1 + b) * o2 + d];
                }
            }
        }
}
