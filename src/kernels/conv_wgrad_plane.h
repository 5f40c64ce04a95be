/* The weight gradient of a stride-1, undilated 2-d convolution, one
 * output-gradient plane at a time: for a convolution whose output only a
 * BatchNorm reads, and whose input needs no gradient (a first layer), the
 * BatchNorm's backward forms each plane of that output's gradient in a
 * stack buffer and hands it here, so the gradient tensor is never written
 * to memory and read back (graph plan, norm_fast.h). */
#ifndef CNN_CONV_WGRAD_PLANE_H
#define CNN_CONV_WGRAD_PLANE_H

#include <stdint.h>

typedef struct cnni_wgrad_plane_geom {
    int64_t C;      /* input channels */
    int64_t H, W;   /* input plane */
    int64_t OH, OW; /* output plane */
    int64_t KH, KW; /* kernel */
    int64_t ph, pw; /* zero padding before the first row and column */
} cnni_wgrad_plane_geom;

/* Whether the vector kernels serve this geometry (3x3 and 5x5 kernels);
 * the others run the portable loops. */
int cnni_wgrad_plane_fast(const cnni_wgrad_plane_geom *g);

/* dw[(c KH + ky) KW + kx] = sum over the plane of dy[oy, ox] times
 * x[c, oy + ky - ph, ox + kx - pw] (0 outside the input), and dw[C KH KW] =
 * the sum of dy (the bias's share); overwritten. dy is one OH x OW plane,
 * x one sample's C input planes. */
void cnni_wgrad_plane(int isa, const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw);

/* The portable loops, in double (the reference the vector kernels are
 * tested against), and the vector kernels. */
void cnni_wgrad_plane_generic(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw);
void cnni_wgrad_plane_avx512(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw);
void cnni_wgrad_plane_avx2(const cnni_wgrad_plane_geom *g, const float *dy, const float *x, float *dw);

#endif
