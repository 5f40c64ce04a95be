/* The gradients of 2-d (or 1-d) convolutions with kernels 5 wide on narrow
 * planes (LeNet's conv2: 6 -> 16 channels, 14 x 14 -> 10 x 10, and the
 * weight gradient of its conv1: 1 -> 6, 28 x 28 padded by 2) by Winograd
 * F(4,5) along the rows transposed, with 16 images along the AVX-512
 * lanes.
 *
 * The forward of such a row is, per quad of outputs and (input channel c,
 * output channel o, kernel row kr), y = A^T [(G w) . (B^T x)] (the
 * matrices of conv_direct.h's F(4,5)). Its transposes give the gradients,
 * each with 8 products per quad and (c, o, kr) against 20 directly:
 *   input:  dx(8 columns 4q..4q+7) += B [(G w) . (A dy(quad q))]; each
 *           quad of dy is transformed once, M[c][R][q][j] = sum over o and
 *           the kernel rows kr that reach padded row R of (G w)[j] (A
 *           dy(row R - kr))[j], and B M, added where quads overlap, gives
 *           each row of the zero-padded dx, whose inner part is stored;
 *   weight: dw[o][c][kr] += G^T m, m[j] = sum over images, rows i and
 *           quads q of (A dy(o, i, q))[j] (B^T x(c, i + kr, q))[j].
 * Images along the lanes keep every lane busy for any plane size. Tasks
 * are (group, block of 16 images); every value is summed in a fixed order
 * (the weight gradient's blocks in double, in block order), so results do
 * not depend on the thread count. The transforms can turn an infinity into
 * a NaN where the direct sums would not: a block whose results are not
 * finite is computed again by the reference kernel. Stride and dilation
 * 1, zero padding, any groups. */
#ifndef CNN_CONV_QUADIMG_H
#define CNN_CONV_QUADIMG_H

#include "ref/ref.h"

#include <stddef.h>

struct cnni_pool;

/* Whether these kernels serve the input gradient (outputs 4 to 12 wide),
 * or the weight gradient (4 to 28 wide), of g on isa. */
int cnni_conv_quadimg_applies(int isa, const cnni_conv_geom *g);
int cnni_conv_quadimg_applies_weight(int isa, const cnni_conv_geom *g);
/* The forward of layers with one or two input channels a group (LeNet's
 * conv1), outputs 4 to 28 wide: M[o][i][q][j] = sum over c and kr of
 * (G w)[o][c][kr][j] (B^T x(c, i + kr, q))[j], y = A^T M + b, images on the
 * lanes and transposed back to rows. */
int cnni_conv_quadimg_applies_forward(int isa, const cnni_conv_geom *g);
size_t cnni_conv_quadimg_forward_scratch(int isa, const cnni_conv_geom *g, int threads);
void cnni_conv_quadimg_forward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                               const float *w, const float *b, float *y, void *scratch);

/* Scratch bytes for the input gradient (data), the weight gradient
 * (weight) or both in one call, run with `threads` threads. */
size_t cnni_conv_quadimg_scratch(int isa, const cnni_conv_geom *g, int threads, int data, int weight);
/* Either gradient or both (dy transformed once for both): dx (NULL: not
 * wanted) is overwritten; dw (NULL: not wanted) += ..., db (may be NULL)
 * += the sums of dy per channel. */
void cnni_conv_quadimg_backward(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                const float *dy, const float *w, float *dx, float *dw, float *db, void *scratch);

/* The same where the convolution's output y alone feeds a sigmoid (tanh_
 * 0) or a tanh whose output alone feeds a 2x2, stride-2 average pooling:
 * dy is made as it is read, from the activation's output y and the
 * pooling's output gradient dp, bit for bit as the two layers' backward
 * would write it, and is not written (save where a block's sums are not
 * finite and the reference kernels take it: dy is where they find it).
 * Applies (cnni_conv_quadimg_act_applies) to 2-d layers with even output
 * planes whose weight gradient, and input gradient if wanted (data), these
 * kernels serve. */
typedef struct {
    const float *dp, *y;
    int tanh_;
} cnni_quadimg_act;
int cnni_conv_quadimg_act_applies(int isa, const cnni_conv_geom *g, int data);
void cnni_conv_quadimg_backward_act(int isa, struct cnni_pool *pool, const cnni_conv_geom *g, const float *x,
                                    const cnni_quadimg_act *act, float *dy, const float *w, float *dx, float *dw,
                                    float *db, void *scratch);

/* One task's images n0 .. n0 + nb - 1 (nb <= 16) of one group. */
typedef struct {
    const float *dy;        /* the group's first dy plane of image n0 */
    int64_t dy_img;         /* floats from one image to the next */
    /* With ay set, dy is made as it is read (dy is then only where the
     * reference kernels find it, once cnni_quadimg_dy_rows_avx512 wrote
     * it): the gradient of a sigmoid (act_tanh 0) or tanh whose output y
     * (ay, laid out as dy) a 2x2 average pooling alone reads, from that
     * pooling's output gradient dp (planes of OH/2 x OW/2, dp_img floats
     * from one image to the next); OH and OW even. */
    const float *ay, *dp;
    int64_t dp_img;
    int act_tanh;
    int nb;
    int64_t Og, Cg;         /* dy and dx (or x) channels of the group */
    int64_t OH, OW, KR;     /* dy rows and columns, kernel rows */
    int64_t H, W, p1, p2;   /* dx (or x) rows and columns, padding */
    float *ady;             /* [Og][OH][nq][8][16] */
    int ady_ready;          /* the input gradient: ady holds dy's transform already */
    /* input gradient */
    const float *u;         /* the group's transformed weights, [o][kr][j][c] */
    float *dx;              /* the group's first dx plane of image n0 */
    int64_t dx_img;
    float *m;               /* [Cg][OH + KR - 1][8][16] */
    float *cols;            /* [Cg][OH + KR - 1][16][16] */
    /* weight gradient */
    const float *x;         /* the group's first x plane of image n0 */
    int64_t x_img;
    float *bx;              /* [Cg][OH + KR - 1][nq][8][16] */
    /* (with one or two channels c the weight tiles run over kernel rows) */
    double *part;           /* [Og][Cg][KR][8]: m of these images */
    double *dbpart;         /* [Og]: sums of dy */
    /* forward (reads x, u, bx; dy, ady unused; u as for the input gradient) */
    float *y;               /* the group's first y plane of image n0 */
    int64_t y_img;
    const float *bias;      /* the group's, or NULL */
} cnni_quadimg_block;

/* Writes the block's dy (made from ay and dp) to dy, laid out as b->dy. */
void cnni_quadimg_dy_rows_avx512(const cnni_quadimg_block *b, float *dy);
/* Forward: returns nonzero when a stored value is NaN or infinite. */
int cnni_quadimg_forward_block_avx512(const cnni_quadimg_block *b);
/* Input gradient: returns nonzero when a stored value is NaN or infinite. */
int cnni_quadimg_data_block_avx512(const cnni_quadimg_block *b);
/* Weight gradient: returns nonzero when a sum is NaN or infinite. */
int cnni_quadimg_weight_block_avx512(const cnni_quadimg_block *b);
/* dw's sums from the weight gradient's: out[k][t] = the sum over j of
 * G[j][t] m[k][j] (G: F(4,5)'s weight transform), from 0, in j order, each
 * product rounded then added, for k < nk. */
void cnni_quadimg_g_transpose_avx512(int64_t nk, const double *m, double *out);
/* Kernel rows' transforms: gw[r][j] = (float) the sum over t of G[j][t]
 * w[r][t], in double, from t = 0, each product rounded then added, for the
 * n rows of 5 taps at w. */
void cnni_quadimg_g_rows_avx512(int64_t n, const float *w, float *gw);

#endif
