/* The input gradient of 2-d (or 1-d) convolutions with kernels 5 wide on
 * narrow planes (outputs 4 to 12 wide, LeNet's conv2: 6 -> 16 channels,
 * 14 x 14 -> 10 x 10), by Winograd F(4,5) along the rows transposed, with
 * 16 images along the AVX-512 lanes.
 *
 * The forward of such a row is, per quad of outputs and (input channel c,
 * output channel o, kernel row kr), y = A^T [(G w) . (B^T x)] (the
 * matrices of conv_direct.h's F(4,5)). Its transpose gives the input
 * gradient: dx(8 columns 4q..4q+7) += B [(G w) . (A dy(quad q))], so
 *   1. each quad of each dy row is transformed once: A dy, 8 values;
 *   2. M[c][R][q][j] = sum over o and the kernel rows kr that reach row R
 *      (dy row R - kr) of (G w)[o][c][kr][j] (A dy)[o][R - kr][q][j]:
 *      8 products per (quad, o, c, kr), against 20 directly;
 *   3. B M, 8 columns, added where the quads overlap, gives each row of
 *      the zero-padded dx, whose inner part is stored.
 * Images along the lanes keep every lane busy for any plane size: tasks
 * are (group, block of 16 images), and every output is summed in a fixed
 * order, so results do not depend on the thread count. A block whose
 * outputs hold a NaN or an infinity is computed again by the reference
 * kernel, image by image, as the transforms can turn an infinity into a
 * NaN where the direct sum would not. Stride and dilation 1, zero padding,
 * any groups. */
#ifndef CNN_CONV_QDATA_H
#define CNN_CONV_QDATA_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

/* Whether these kernels serve the backward data pass of g on isa. */
int cnni_conv_qdata_applies(int isa, const cnni_conv_geom *g);
size_t cnni_conv_qdata_scratch(int isa, const cnni_conv_geom *g, int threads);
/* dx is overwritten. */
void cnni_conv_qdata_backward_data(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *dy,
                                   const float *w, float *dx, void *scratch);

/* One task: images n0 .. n0 + nb - 1 (nb <= 16) of one group. */
typedef struct {
    const float *dy;        /* the group's first dy plane of image n0 */
    const float *u;         /* the group's transformed weights, [o][kr][j][c] */
    float *dx;              /* the group's first dx plane of image n0 */
    int64_t dy_img, dx_img; /* floats from one image to the next */
    int nb;
    int64_t Og, Cg;         /* dy and dx channels of the group */
    int64_t OH, OW, KR;     /* dy rows and columns, kernel rows */
    int64_t H, W, p1, p2;   /* dx rows and columns, padding */
    float *ady;             /* [Og][OH][nq][8][16] */
    float *m;               /* [Cg][OH + KR - 1][8][16] */
    float *cols;            /* [Cg][OH + KR - 1][16][16] */
} cnni_qdata_block;

/* Returns nonzero when a stored value is NaN or infinite. */
int cnni_qdata_block_avx512(const cnni_qdata_block *b);

#endif
