/* The convolution family: Conv1d/2d/3d and ConvTranspose1d/2d/3d, with every
 * argument PyTorch accepts (kernel_size, stride, padding as ints, tuples,
 * 'valid' or 'same', dilation, groups, bias, padding_mode, output_padding).
 *
 * Non-zero padding modes pad the input explicitly (as PyTorch's F.pad) and
 * convolve without padding; the backward pass folds the padded gradient back.
 * 'same' splits the total padding d*(k-1) as PyTorch does: left = total/2,
 * the extra element (even kernels) on the right. */
#include "layer.h"
#include "../kernels/conv_depthwise.h"
#include "../kernels/conv_direct.h"
#include "../kernels/conv_winograd.h"
#include "../kernels/conv_pointwise.h"
#include "../kernels/conv_quadimg.h"
#include "../kernels/act_fast.h"
#include "../kernels/conv_fast.h"
#include "../kernels/conv_wgrad_plane.h"
#include "../core/cpu.h"
#include "../kernels/ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct conv_opts {
    int nsp;           /* spatial dims: 1, 2, 3 */
    int transposed;
    int64_t in_ch, out_ch, groups;
    int64_t k[3], stride[3], dil[3];
    int64_t pad_lo[3], pad_hi[3];
    int64_t out_pad[3];
    int bias;
    cnni_pad_mode mode;
    int same;          /* padding='same' (for messages) */
} conv_opts;

enum { A_IN, A_OUT, A_K, A_STRIDE, A_PAD, A_DIL, A_GROUPS, A_BIAS, A_MODE, A_DEVICE, A_DTYPE };
static const char *const conv_args[] = {"in_channels", "out_channels", "kernel_size", "stride",
                                        "padding", "dilation", "groups", "bias", "padding_mode",
                                        "device", "dtype", NULL};
enum { T_IN, T_OUT, T_K, T_STRIDE, T_PAD, T_OUTPAD, T_GROUPS, T_BIAS, T_DIL, T_MODE, T_DEVICE, T_DTYPE };
static const char *const convt_args[] = {"in_channels", "out_channels", "kernel_size", "stride",
                                         "padding", "output_padding", "groups", "bias", "dilation",
                                         "padding_mode", "device", "dtype", NULL};
static const char *const one_input[] = {"input", NULL};

static const char *mode_name(cnni_pad_mode m)
{
    static const char *names[] = {"zeros", "reflect", "replicate", "circular"};
    return names[m];
}

static cnn_status parse_mode(const cnni_args *a, int k, cnni_pad_mode *mode)
{
    const char *s;
    cnn_status st = cnni_arg_str(a, k, "zeros", &s);
    if (st)
        return st;
    for (int m = 0; m < 4; m++)
        if (strcmp(s, mode_name((cnni_pad_mode)m)) == 0) {
            *mode = (cnni_pad_mode)m;
            return CNN_OK;
        }
    return cnni_arg_fail(a, k,
                         "padding_mode must be one of 'zeros', 'reflect', 'replicate' or "
                         "'circular', got '%s'",
                         s);
}

/* Shared checks of in/out channels, groups, kernel, stride, dilation. */
static cnn_status common_config(conv_opts *o, const cnni_args *a, int ki, int ko, int kk, int ks,
                                int kd, int kg)
{
    cnn_status st;
    int n = o->nsp;
    if ((st = cnni_arg_int(a, ki, 0, &o->in_ch)) || (st = cnni_arg_int(a, ko, 0, &o->out_ch)) ||
        (st = cnni_arg_ints(a, kk, n, 1, o->k)) || (st = cnni_arg_ints(a, ks, n, 1, o->stride)) ||
        (st = cnni_arg_ints(a, kd, n, 1, o->dil)) || (st = cnni_arg_int(a, kg, 1, &o->groups)))
        return st;
    if (o->groups <= 0)
        return cnni_arg_fail(a, kg, "groups must be a positive integer, got %lld", (long long)o->groups);
    if (o->in_ch <= 0)
        return cnni_arg_fail(a, ki, "in_channels must be positive, got %lld", (long long)o->in_ch);
    if (o->out_ch <= 0)
        return cnni_arg_fail(a, ko, "out_channels must be positive, got %lld", (long long)o->out_ch);
    if (o->in_ch % o->groups)
        return cnni_arg_fail(a, ki, "in_channels must be divisible by groups (%lld %% %lld != 0)",
                             (long long)o->in_ch, (long long)o->groups);
    if (o->out_ch % o->groups)
        return cnni_arg_fail(a, ko, "out_channels must be divisible by groups (%lld %% %lld != 0)",
                             (long long)o->out_ch, (long long)o->groups);
    for (int i = 0; i < n; i++) {
        if (o->k[i] <= 0)
            return cnni_arg_fail(a, kk, "kernel_size must be positive, got %lld", (long long)o->k[i]);
        if (o->stride[i] <= 0)
            return cnni_arg_fail(a, ks, "non-positive stride is not supported (got %lld)",
                                 (long long)o->stride[i]);
        if (o->dil[i] <= 0)
            return cnni_arg_fail(a, kd, "dilation should be greater than zero, got %lld",
                                 (long long)o->dil[i]);
        int64_t span;
        if (!cnni_mul_ok(o->dil[i], o->k[i] - 1, &span) || span > (INT64_C(1) << 32))
            return cnni_arg_fail(a, kk, "dilated kernel is too large");
    }
    int64_t w;
    if (!cnni_mul_ok(o->in_ch, o->out_ch, &w))
        return cnni_arg_fail(a, ki, "weight is too large");
    return CNN_OK;
}

/* Left-align the n spatial values into 3 slots with neutral leading dims. */
static void to3(int n, const int64_t *src, int64_t fill, int64_t *dst)
{
    int64_t tmp[3];
    for (int i = 0; i < 3 - n; i++)
        tmp[i] = fill;
    for (int i = 0; i < n; i++)
        tmp[3 - n + i] = src[i];
    memcpy(dst, tmp, sizeof tmp);
}

static void declare_params(cnni_node *node, conv_opts *o)
{
    int64_t dims[5];
    if (o->transposed) {
        dims[0] = o->in_ch;
        dims[1] = o->out_ch / o->groups;
    } else {
        dims[0] = o->out_ch;
        dims[1] = o->in_ch / o->groups;
    }
    for (int i = 0; i < o->nsp; i++)
        dims[2 + i] = o->k[i];
    cnni_node_param(node, "weight", CNN_PARAM, CNN_F32, 2 + o->nsp, dims);
    if (o->bias)
        cnni_node_param(node, "bias", CNN_PARAM, CNN_F32, 1, &o->out_ch);
    node->n_out = 1;
}

static cnn_status conv_configure(cnni_node *node, const cnni_args *a, int nsp)
{
    conv_opts *o = node->opts;
    o->nsp = nsp;
    cnn_status st = common_config(o, a, A_IN, A_OUT, A_K, A_STRIDE, A_DIL, A_GROUPS);
    if (st)
        return st;
    if ((st = cnni_arg_bool(a, A_BIAS, 1, &o->bias)) || (st = parse_mode(a, A_MODE, &o->mode)) ||
        (st = cnni_arg_device_dtype(a, A_DEVICE, A_DTYPE)))
        return st;
    const cnni_value *pv = a->slot[A_PAD];
    if (pv && pv->kind == CNNI_V_STR) {
        if (strcmp(pv->s, "valid") == 0) {
            memset(o->pad_lo, 0, sizeof o->pad_lo);
            memset(o->pad_hi, 0, sizeof o->pad_hi);
        } else if (strcmp(pv->s, "same") == 0) {
            o->same = 1;
            for (int i = 0; i < nsp; i++)
                if (o->stride[i] != 1)
                    return cnni_arg_fail(a, A_PAD, "padding='same' is not supported for strided "
                                                   "convolutions");
            for (int i = 0; i < nsp; i++) {
                int64_t total = o->dil[i] * (o->k[i] - 1);
                o->pad_lo[i] = total / 2;
                o->pad_hi[i] = total - total / 2;
            }
        } else {
            return cnni_arg_fail(a, A_PAD,
                                 "invalid padding string '%s', should be one of 'valid' or 'same'",
                                 pv->s);
        }
    } else {
        int64_t p[3];
        if ((st = cnni_arg_ints(a, A_PAD, nsp, 0, p)))
            return st;
        for (int i = 0; i < nsp; i++) {
            /* With a non-zero padding mode PyTorch pads through F.pad, where a
             * negative amount crops; with zeros it is an error. */
            if (p[i] < 0 && o->mode == CNNI_PAD_ZEROS)
                return cnni_arg_fail(a, A_PAD, "negative padding is not supported (got %lld)",
                                     (long long)p[i]);
            if (p[i] > (INT64_C(1) << 32) || p[i] < -(INT64_C(1) << 32))
                return cnni_arg_fail(a, A_PAD, "padding %lld is too large", (long long)p[i]);
            o->pad_lo[i] = o->pad_hi[i] = p[i];
        }
    }
    declare_params(node, o);
    return CNN_OK;
}

static cnn_status convt_configure(cnni_node *node, const cnni_args *a, int nsp)
{
    conv_opts *o = node->opts;
    o->nsp = nsp;
    o->transposed = 1;
    cnn_status st = common_config(o, a, T_IN, T_OUT, T_K, T_STRIDE, T_DIL, T_GROUPS);
    if (st)
        return st;
    int64_t p[3];
    if ((st = cnni_arg_bool(a, T_BIAS, 1, &o->bias)) || (st = cnni_arg_ints(a, T_PAD, nsp, 0, p)) ||
        (st = cnni_arg_ints(a, T_OUTPAD, nsp, 0, o->out_pad)) ||
        (st = parse_mode(a, T_MODE, &o->mode)) || (st = cnni_arg_device_dtype(a, T_DEVICE, T_DTYPE)))
        return st;
    if (o->mode != CNNI_PAD_ZEROS)
        return cnni_arg_fail(a, T_MODE, "only \"zeros\" padding mode is supported for %s",
                             a->op->name);
    for (int i = 0; i < nsp; i++) {
        if (p[i] < 0)
            return cnni_arg_fail(a, T_PAD, "negative padding is not supported (got %lld)",
                                 (long long)p[i]);
        if (p[i] > (INT64_C(1) << 32))
            return cnni_arg_fail(a, T_PAD, "padding %lld is too large", (long long)p[i]);
        o->pad_lo[i] = o->pad_hi[i] = p[i];
        if (o->out_pad[i] < 0)
            return cnni_arg_fail(a, T_OUTPAD, "negative output_padding is not supported");
        if (o->out_pad[i] >= o->stride[i] && o->out_pad[i] >= o->dil[i])
            return cnni_arg_fail(a, T_OUTPAD,
                                 "output padding must be smaller than either stride or dilation, "
                                 "got output_padding %lld with stride %lld and dilation %lld",
                                 (long long)o->out_pad[i], (long long)o->stride[i],
                                 (long long)o->dil[i]);
    }
    declare_params(node, o);
    return CNN_OK;
}

#define CONFIGURE(fn, base, n) \
    static cnn_status fn##n(cnni_node *node, const cnni_args *a) { return base(node, a, n); }
CONFIGURE(conv_configure_, conv_configure, 1)
CONFIGURE(conv_configure_, conv_configure, 2)
CONFIGURE(conv_configure_, conv_configure, 3)
CONFIGURE(convt_configure_, convt_configure, 1)
CONFIGURE(convt_configure_, convt_configure, 2)
CONFIGURE(convt_configure_, convt_configure, 3)

static const char *dim_names(int nsp)
{
    return nsp == 1 ? "(N, C, L)" : nsp == 2 ? "(N, C, H, W)" : "(N, C, D, H, W)";
}

/* Checks the input and fills the reference-kernel geometry. For a conv,
 * geom.in is the (explicitly padded, for non-zero modes) input; for a
 * transposed conv, geom describes the conv it reverses. */
static cnn_status make_geom(const conv_opts *o, const cnn_shape *x, cnni_conv_geom *g,
                            cnn_shape *y, int64_t padded[3], cnn_err *e)
{
    char sb[128];
    int nsp = o->nsp;
    if (x->ndim != nsp + 2)
        return cnni_fail(e, CNN_ERR_SHAPE, "expected a %d-d input %s, got %d-d %s", nsp + 2,
                         dim_names(nsp), x->ndim, cnni_shape_str(x, sb, sizeof sb));
    if (x->dims[1] != o->in_ch)
        return cnni_fail(e, CNN_ERR_SHAPE,
                         "expected input %s to have %lld channels, but got %lld channels instead",
                         cnni_shape_str(x, sb, sizeof sb), (long long)o->in_ch,
                         (long long)x->dims[1]);
    int64_t in[3], k[3], s[3], d[3], lo[3], hi[3], op[3];
    to3(nsp, x->dims + 2, 1, in);
    to3(nsp, o->k, 1, k);
    to3(nsp, o->stride, 1, s);
    to3(nsp, o->dil, 1, d);
    to3(nsp, o->pad_lo, 0, lo);
    to3(nsp, o->pad_hi, 0, hi);
    to3(nsp, o->out_pad, 0, op);
    memset(g, 0, sizeof *g);
    g->N = x->dims[0];
    g->G = o->groups;
    *y = *x;
    int64_t outsz[3];
    for (int i = 0; i < 3; i++) {
        int64_t span = d[i] * (k[i] - 1) + 1;
        if (!o->transposed) {
            if (in[i] <= 0)
                return cnni_fail(e, CNN_ERR_SHAPE, "input %s has an empty spatial dimension",
                                 cnni_shape_str(x, sb, sizeof sb));
            if (o->mode == CNNI_PAD_REFLECT && (lo[i] >= in[i] || hi[i] >= in[i]))
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "reflect padding (%lld, %lld) must be smaller than the input "
                                 "size %lld of input %s",
                                 (long long)lo[i], (long long)hi[i], (long long)in[i],
                                 cnni_shape_str(x, sb, sizeof sb));
            if (o->mode == CNNI_PAD_CIRCULAR && (lo[i] > in[i] || hi[i] > in[i]))
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "circular padding (%lld, %lld) wraps around more than once on "
                                 "input size %lld of input %s",
                                 (long long)lo[i], (long long)hi[i], (long long)in[i],
                                 cnni_shape_str(x, sb, sizeof sb));
            int64_t total = in[i] + lo[i] + hi[i];
            if (total < span)
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "padded input size %lld is smaller than the dilated kernel "
                                 "size %lld (input %s): kernel size can't be greater than the "
                                 "actual input size",
                                 (long long)total, (long long)span, cnni_shape_str(x, sb, sizeof sb));
            outsz[i] = (total - span) / s[i] + 1;
            padded[i] = total;
        } else {
            int64_t t;
            if (!cnni_mul_ok(in[i] - 1, s[i], &t) || !cnni_add_ok(t, span + op[i], &t))
                return cnni_fail(e, CNN_ERR_OVERFLOW, "output size overflows");
            outsz[i] = t - lo[i] - hi[i];
            if (in[i] <= 0 || outsz[i] <= 0)
                return cnni_fail(e, CNN_ERR_SHAPE,
                                 "given input size %lld, the calculated output size is %lld, "
                                 "which is too small (input %s)",
                                 (long long)in[i], (long long)outsz[i],
                                 cnni_shape_str(x, sb, sizeof sb));
            padded[i] = outsz[i];
        }
    }
    for (int i = 0; i < 3; i++) {
        g->k[i] = k[i];
        g->s[i] = s[i];
        g->d[i] = d[i];
    }
    if (!o->transposed) {
        g->C = o->in_ch;
        g->O = o->out_ch;
        for (int i = 0; i < 3; i++) {
            g->in[i] = o->mode == CNNI_PAD_ZEROS ? in[i] : padded[i];
            g->p[i] = o->mode == CNNI_PAD_ZEROS ? lo[i] : 0;
            g->out[i] = outsz[i];
        }
    } else {
        g->C = o->out_ch;
        g->O = o->in_ch;
        for (int i = 0; i < 3; i++) {
            g->in[i] = outsz[i];
            g->out[i] = in[i];
            g->p[i] = lo[i];
        }
    }
    y->dims[1] = o->out_ch;
    for (int i = 0; i < nsp; i++)
        y->dims[2 + i] = outsz[3 - nsp + i];
    return CNN_OK;
}

static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* The kernels of each pass of a convolution (not transposed). The plane
 * kernels (pixels along the SIMD lanes) serve depthwise layers, and with
 * SIMD any group with few output channels, where the im2col GEMM would
 * spend far more on packing than on arithmetic; the direct kernels
 * (channels along the lanes) serve wide layers, and groups of 12 to 16
 * channels whose rows would leave a quarter of the lanes empty; on AVX2 the
 * pointwise kernels take 1x1 layers at stride 1. The GEMM is left with
 * what no SIMD kernel covers. */
typedef enum { KERN_GEMM, KERN_DIRECT, KERN_PLANES, KERN_WINOGRAD, KERN_POINTWISE, KERN_QUADIMG } conv_kernel;
typedef struct {
    conv_kernel fwd, data, weight;
} conv_kernels;

/* The plane kernels fill lanes with a row of `width` outputs. */
static int rows_fill_lanes(int64_t width) { return 4 * width >= 3 * ((width + 15) / 16 * 16); }

static conv_kernels choose_kernels(int isa, const cnni_conv_geom *g)
{
    const int depthwise = cnni_conv_dw_applies(g), simd = isa != CNNI_ISA_GENERIC;
    const int64_t og = g->O / g->G, cg = g->C / g->G;
    int stride_one = 1;
    for (int i = 0; i < 3; i++)
        stride_one &= g->s[i] == 1;
    /* AVX2's direct tiles (6 pixels x 16 channels, masked stores) lose to
     * the plane kernels at stride 1 with few taps per output: VGG's first
     * layer (27 taps) 16.4-25.2 ms vs 12.0-16.0, 3 -> 64 channels 5x5 (75
     * taps) 3.6-3.8 vs 2.9-3.2; and win from about 100 (LeNet's conv2, 150:
     * 0.28-0.49 vs 0.94-1.08; 12 -> 64 at stride 2, 108: 0.72-0.76 vs 1.64). */
    const int64_t kvol = g->k[0] * g->k[1] * g->k[2];
    const int few_taps_fwd = isa == CNNI_ISA_AVX2 && cg * kvol < (stride_one ? 96 : 32);
    const int few_taps_data = isa == CNNI_ISA_AVX2 && og * kvol < 96;
    /* Where the direct passes run as Winograd along the rows (5-wide
     * kernels, rows of 2 to 16 outputs, 12 to 16 channels a group; AVX2
     * F(2,5), AVX-512 F(4,5) for the forward and data passes), they beat
     * the plane kernels whatever the taps and row widths, or match them on
     * single rows (64 images, one thread, us). AVX2: forward 6 -> 16
     * channels on 16 x 16 1225 vs 455, 3 -> 16 (75 taps) on 14 x 14 477 vs
     * 152, 16 -> 16 on 16 x 16 3103 vs 1363; backward data 16 -> 32 on 14 x
     * 14 4297 vs 3006, 16 -> 16 on 16 x 16 padded by 2 4709 vs 1680, 12 ->
     * 32 on 16 x 16 3643 vs 3446; weight gradient 48 -> 16 (1200 taps) on
     * 14 x 14 10333 vs 2825. AVX-512, planes vs F(4,5), inputs 16 x 16 to
     * 20 x 20: forward 6 -> 16 543 vs 199, 653 vs 365, 722 vs 412, 16 -> 16
     * on 20 x 20 1962 vs 1340; a training step of 16 -> 16 padded by 2 on
     * 16 x 16 6323 vs 4510, of 64 -> 16 on 14 x 14 (32 images) 8725 vs
     * 5600. */
    /* AVX2, 1x1 at stride 1 without padding: the pointwise kernels (pixels
     * along the lanes, from blocks copied in order) beat the direct tiles,
     * which wait on channel rows far apart (8 images, 1 thread, median ms):
     * 256 -> 64 on 56 x 56 14.9 vs 11.1, 64 -> 256 18.7 vs 9.7, 32 -> 64
     * on 112 x 112 (4 images) 7.7 vs 3.4, 512 -> 512 on 7 x 7 5.2 vs 3.2. */
    const int wino_fwd = cnni_conv_direct_wino(isa, g);
    const int wino_data = cnni_conv_direct_wino_bwd(isa, g);
    /* F(4,5) with images on the lanes for one or two input channels a group
     * (LeNet's conv1, "depthwise" with one group), 16 images, 1 thread:
     * 0.048-0.049 -> 0.038-0.040 ms against the plane kernels */
    const int quadimg_f = cnni_conv_quadimg_applies_forward(isa, g);
    conv_kernels k;
    if (depthwise && !(g->G == 1 && quadimg_f))
        k.fwd = KERN_PLANES;
    else if (cnni_conv_pointwise_applies(isa, g))
        k.fwd = KERN_POINTWISE;
    else if (cnni_conv_winograd_applies(isa, g))
        k.fwd = KERN_WINOGRAD;
    else if (quadimg_f)
        k.fwd = KERN_QUADIMG;
    else if (wino_fwd ||
             (cnni_conv_direct_applies(isa, g) && !few_taps_fwd && (og >= 24 || !rows_fill_lanes(g->out[2]))))
        k.fwd = KERN_DIRECT;
    else
        k.fwd = simd ? KERN_PLANES : KERN_GEMM;
    if (depthwise)
        k.data = KERN_PLANES;
    else if (cnni_conv_pointwise_applies_bwd(isa, g))
        k.data = KERN_POINTWISE;
    else if (cnni_conv_winograd_applies_bwd(isa, g))
        k.data = KERN_WINOGRAD;
    else if (wino_data ||
             (cnni_conv_direct_applies_bwd(isa, g) && !few_taps_data && (cg >= 24 || !rows_fill_lanes(g->in[2]))))
        k.data = KERN_DIRECT;
    else if (cnni_conv_quadimg_applies(isa, g)) /* LeNet's conv2 (32 images, 1 thread): 0.19 -> 0.09 ms */
        k.data = KERN_QUADIMG;
    else
        k.data = simd && stride_one ? KERN_PLANES : KERN_GEMM;
    /* The weight gradient: the direct tiles want several taps per pixel,
     * and measured no faster than the GEMM from about 2000 taps on. */
    const int64_t taps = cg * g->k[0] * g->k[1] * g->k[2];
    /* F(4,5) with images on the lanes (32 images, 1 thread): LeNet's conv2
     * 50 us less than the direct F(2,5); its conv1 (one input channel, so
     * "depthwise" with one group) 0.053-0.055 -> 0.040-0.042 ms at 16 images
     * against the plane kernels. */
    const int quadimg_w = cnni_conv_quadimg_applies_weight(isa, g);
    if (depthwise && !(g->G == 1 && quadimg_w))
        k.weight = KERN_PLANES;
    else if (cnni_conv_winograd_applies_weight(isa, g))
        k.weight = KERN_WINOGRAD;
    else if (quadimg_w)
        k.weight = KERN_QUADIMG;
    else if (wino_fwd || (cnni_conv_direct_applies(isa, g) && taps >= 32 && taps <= 1152))
        k.weight = KERN_DIRECT;
    else
        k.weight = simd && (og <= 16 || taps < 32) ? KERN_PLANES : KERN_GEMM;
    return k;
}

/* Batched inputs only: unbatched, dim 0 is the channels. */
static int conv_per_sample(const cnni_node *n, const cnn_shape *in)
{
    const conv_opts *o = n->opts;
    return in->ndim == o->nsp + 2;
}

static cnn_status conv_infer(const cnni_node *n, cnni_infer *inf, cnn_err *e)
{
    const conv_opts *o = n->opts;
    cnni_conv_geom g;
    int64_t padded[3];
    const cnn_shape *x = &inf->in[0].shape;
    cnn_status st = make_geom(o, x, &g, &inf->out[0].shape, padded, e);
    if (st)
        return st;
    inf->out[0].dtype = CNN_F32;
    int64_t numel;
    if ((st = cnni_shape_numel(&inf->out[0].shape, &numel, e, "output")))
        return st;
    int64_t kvol = g.k[0] * g.k[1] * g.k[2];
    /* For both kinds: every element on the "out" side of the geometry meets
     * C/G x kernel-volume weights. */
    inf->macs = g.N * g.O * prod3(g.out) * (g.C / g.G) * kvol;
    /* Work: [padded-input gradient (non-zero padding modes)] [fast-kernel scratch].
     * Saved: the padded input, which the weight gradient reads. */
    size_t pad_bytes = 0;
    if (!o->transposed && o->mode != CNNI_PAD_ZEROS) {
        int64_t pbytes;
        if (!cnni_mul_ok(g.N * g.C, prod3(padded), &pbytes) || !cnni_mul_ok(pbytes, 4, &pbytes))
            return cnni_fail(e, CNN_ERR_OVERFLOW, "padded input is too large");
        pad_bytes = ((size_t)pbytes + 63) & ~(size_t)63;
        if (inf->backward)
            inf->saved_bytes = pad_bytes;
    }
    const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)inf->isa);
    if (o->transposed) {
        inf->work_bytes = pad_bytes + cnni_conv_fast_scratch(k, &g, inf->threads);
        return CNN_OK;
    }
    /* The passes run one after another, so they share one scratch. */
    conv_kernels ks = choose_kernels(inf->isa, &g);
    conv_kernel pass[3] = {ks.fwd, ks.data, ks.weight};
    unsigned planes = 0;
    size_t scratch = 0, s;
    for (int i = 0; i < 3; i++) {
        if (pass[i] == KERN_PLANES)
            planes |= (unsigned)CNNI_DW_FORWARD << i;
        if (pass[i] == KERN_GEMM)
            s = cnni_conv_fast_scratch(k, &g, inf->threads);
        else if (pass[i] == KERN_WINOGRAD)
            s = i == 2 ? cnni_conv_winograd_weight_scratch(inf->isa, &g, inf->threads)
                       : cnni_conv_winograd_scratch(inf->isa, &g, inf->threads);
        else if (pass[i] == KERN_DIRECT)
            s = i == 2 ? cnni_conv_direct_weight_scratch(inf->isa, &g, inf->threads)
                       : cnni_conv_direct_scratch(inf->isa, &g, inf->threads);
        else if (pass[i] == KERN_POINTWISE)
            s = cnni_conv_pointwise_scratch(inf->isa, &g, inf->threads);
        else if (pass[i] == KERN_QUADIMG && i == 0)
            s = cnni_conv_quadimg_forward_scratch(inf->isa, &g, inf->threads);
        else if (pass[i] == KERN_QUADIMG) /* both gradients in one call when both are these */
            s = cnni_conv_quadimg_scratch(inf->isa, &g, inf->threads, ks.data == KERN_QUADIMG,
                                          ks.weight == KERN_QUADIMG);
        else
            s = cnni_conv_dw_scratch(&g, inf->threads, planes);
        scratch = s > scratch ? s : scratch;
    }
    inf->work_bytes = pad_bytes + scratch;
    return CNN_OK;
}

static size_t pad_region(const conv_opts *o, const cnni_conv_geom *g)
{
    if (o->transposed || o->mode == CNNI_PAD_ZEROS)
        return 0;
    return ((size_t)(g->N * g->C * prod3(g->in)) * sizeof(float) + 63) & ~(size_t)63;
}

static cnn_status conv_forward(const cnni_exec *x)
{
    const conv_opts *o = x->opts;
    cnni_conv_geom g;
    int64_t padded[3];
    cnn_shape y;
    cnn_status st = make_geom(o, &x->in[0].shape, &g, &y, padded, x->e);
    if (st)
        return st;
    const float *in = x->in[0].data;
    const float *w = x->param[0];
    const float *b = o->bias ? x->param[1] : NULL;
    float *out = x->out[0].data;
    const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)x->isa);
    size_t pr = pad_region(o, &g);
    void *scratch = (char *)x->work + pr;
    if (o->transposed) {
        cnni_convt_fast_forward(k, x->pool, &g, in, w, b, out, scratch);
        return CNN_OK;
    }
    if (o->mode != CNNI_PAD_ZEROS) {
        float *buf = x->saved ? x->saved : x->work;
        cnni_pad_geom pg = {.NC = g.N * g.C, .mode = o->mode};
        to3(o->nsp, x->in[0].shape.dims + 2, 1, pg.in);
        to3(o->nsp, o->pad_lo, 0, pg.lo);
        to3(o->nsp, o->pad_hi, 0, pg.hi);
        cnni_ref_pad_forward_f32(&pg, in, buf);
        in = buf;
    }
    conv_kernel kind = choose_kernels(x->isa, &g).fwd;
    if (kind == KERN_PLANES)
        cnni_conv_dw_forward(x->isa, x->pool, &g, in, w, b, out, scratch);
    else if (kind == KERN_WINOGRAD)
        cnni_conv_winograd_forward(x->isa, x->pool, &g, in, w, b, out, scratch);
    else if (kind == KERN_DIRECT)
        cnni_conv_direct_forward(x->isa, x->pool, &g, in, w, b, out, scratch);
    else if (kind == KERN_POINTWISE)
        cnni_conv_pointwise_forward(x->isa, x->pool, &g, in, w, b, out, scratch);
    else if (kind == KERN_QUADIMG)
        cnni_conv_quadimg_forward(x->isa, x->pool, &g, in, w, b, out, scratch);
    else
        cnni_conv_fast_forward(k, x->pool, &g, in, w, b, out, scratch);
    return CNN_OK;
}

/* Folds the gradient of the explicitly padded input (non-zero padding
 * modes) back onto the input's gradient. */
static void unpad(const conv_opts *o, const cnni_exec *x, const float *dpad, float *dx)
{
    cnni_pad_geom pg = {.NC = x->in[0].shape.dims[0] * o->in_ch, .mode = o->mode};
    to3(o->nsp, x->in[0].shape.dims + 2, 1, pg.in);
    to3(o->nsp, o->pad_lo, 0, pg.lo);
    to3(o->nsp, o->pad_hi, 0, pg.hi);
    cnni_ref_pad_backward_f32(&pg, dpad, dx);
}

static cnn_status conv_backward(const cnni_exec *x)
{
    const conv_opts *o = x->opts;
    cnni_conv_geom g;
    int64_t padded[3];
    cnn_shape y;
    cnn_status st = make_geom(o, &x->in[0].shape, &g, &y, padded, x->e);
    if (st)
        return st;
    const float *in = x->in[0].data;
    const float *w = x->param[0];
    const float *dy = x->dout[0].data;
    float *dx = x->din[0].data;
    float *dw = x->grad[0];
    /* a BatchNorm reading the output alone may have summed it already */
    float *db = o->bias && !x->bias_grad_taken ? x->grad[1] : NULL;
    const cnni_gemm_kernel *k = cnni_gemm_kernel_for((cnni_isa)x->isa);
    size_t pr = pad_region(o, &g);
    void *scratch = (char *)x->work + pr;
    if (o->transposed) {
        if (dx)
            cnni_convt_fast_backward_data(k, x->pool, &g, dy, w, dx, scratch);
        cnni_convt_fast_backward_weight(k, x->pool, &g, in, dy, dw, db, scratch);
        return CNN_OK;
    }
    /* Non-zero padding modes: the conv ran on the padded input (saved), and
     * its input gradient is folded back from the work area. */
    const int zeros = o->mode == CNNI_PAD_ZEROS;
    const float *xin = zeros ? in : x->saved;
    float *dxg = zeros ? dx : x->work;
    conv_kernels ks = choose_kernels(x->isa, &g);
    if (x->agrad_act) {
        /* the activation's (and its pooling's) backward: made as the
         * kernels read it where they serve this batch, else written here */
        float *dz = x->dout[0].data;
        if (zeros && ks.weight == KERN_QUADIMG && (!dx || ks.data == KERN_QUADIMG) &&
            cnni_conv_quadimg_act_applies(x->isa, &g, dx != NULL)) {
            const cnni_quadimg_act qa = {x->agrad_dp, x->agrad_y, x->agrad_act->kind == CNNI_ACT_TANH};
            cnni_conv_quadimg_backward_act(x->isa, x->pool, &g, xin, &qa, dz, w, dx, dw, db, scratch);
            return CNN_OK;
        }
        cnni_act_fast_backward_avgpool(x->isa, x->pool, x->agrad_act, x->agrad_geom, x->out[0].data, x->agrad_y,
                                       x->agrad_dp, dz);
    }
    if (ks.weight == KERN_QUADIMG) {
        /* with the input gradient too when it runs these kernels (dy's
         * transform then serves both) */
        const int both = dx && ks.data == KERN_QUADIMG;
        cnni_conv_quadimg_backward(x->isa, x->pool, &g, xin, dy, w, both ? dxg : NULL, dw, db, scratch);
        if (both) {
            if (!zeros)
                unpad(o, x, dxg, dx);
            return CNN_OK;
        }
    } else if (ks.weight == KERN_PLANES)
        cnni_conv_dw_backward_weight(x->isa, x->pool, &g, xin, dy, dw, db, scratch);
    else if (ks.weight == KERN_WINOGRAD)
        cnni_conv_winograd_backward_weight(x->isa, x->pool, &g, xin, dy, dw, db, scratch);
    else if (ks.weight == KERN_DIRECT)
        cnni_conv_direct_backward_weight(x->isa, x->pool, &g, xin, dy, dw, db, scratch);
    else
        cnni_conv_fast_backward_weight(k, x->pool, &g, xin, dy, dw, db, scratch);
    if (!dx)
        return CNN_OK;
    if (ks.data == KERN_PLANES)
        cnni_conv_dw_backward_data(x->isa, x->pool, &g, dy, w, dxg, scratch);
    else if (ks.data == KERN_WINOGRAD)
        cnni_conv_winograd_backward_data(x->isa, x->pool, &g, dy, w, dxg, scratch);
    else if (ks.data == KERN_DIRECT)
        cnni_conv_direct_backward_data(x->isa, x->pool, &g, dy, w, dxg, scratch);
    else if (ks.data == KERN_POINTWISE)
        cnni_conv_pointwise_backward_data(x->isa, x->pool, &g, dy, w, dxg, scratch);
    else if (ks.data == KERN_QUADIMG)
        cnni_conv_quadimg_backward(x->isa, x->pool, &g, xin, dy, w, dxg, NULL, NULL, scratch);
    else
        cnni_conv_fast_backward_data(k, x->pool, &g, dy, w, dxg, scratch);
    if (!zeros)
        unpad(o, x, dxg, dx);
    return CNN_OK;
}

/* PyTorch's reset_parameters: kaiming_uniform_(a=sqrt(5)) for the weight,
 * which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the
 * bias. fan_in is weight.size(1) * kernel volume, for both kinds. */
static void conv_reset(const cnni_node *n, float *const *param, void *const *buffer, cnni_rng *rng)
{
    (void)buffer;
    const conv_opts *o = n->opts;
    int64_t kvol = 1;
    for (int i = 0; i < o->nsp; i++)
        kvol *= o->k[i];
    int64_t fan_in = (o->transposed ? o->out_ch : o->in_ch) / o->groups * kvol;
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    int64_t nw = cnni_numel(&n->params[0].shape);
    for (int64_t i = 0; i < nw; i++)
        param[0][i] = (float)cnni_rng_uniform_range(rng, -bound, bound);
    if (o->bias)
        for (int64_t i = 0; i < o->out_ch; i++)
            param[1][i] = (float)cnni_rng_uniform_range(rng, -bound, bound);
}

#define CONV_OP(NAME, cfg, sig)                                                                    \
    const cnni_op cnni_op_##NAME = {.name = #NAME,                                                 \
                                    .args = sig,                                                   \
                                    .n_required = 3,                                               \
                                    .inputs = one_input,                                           \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .opts_size = sizeof(conv_opts),                                \
                                    .configure = cfg,                                              \
                                    .infer = conv_infer,                                           \
                                    .reset = conv_reset,                                           \
                                    .forward = conv_forward,                                       \
                                    .backward = conv_backward,                                     \
                                    .per_sample = conv_per_sample};

CONV_OP(Conv1d, conv_configure_1, conv_args)
CONV_OP(Conv2d, conv_configure_2, conv_args)
CONV_OP(Conv3d, conv_configure_3, conv_args)
CONV_OP(ConvTranspose1d, convt_configure_1, convt_args)
CONV_OP(ConvTranspose2d, convt_configure_2, convt_args)
CONV_OP(ConvTranspose3d, convt_configure_3, convt_args)

int cnni_conv_wgrad_fusable(const cnni_node *n, const cnn_shape *in, int isa, cnni_wgrad_plane_geom *wg)
{
    if (n->op != &cnni_op_Conv2d || isa == CNNI_ISA_GENERIC)
        return 0;
    const conv_opts *o = n->opts;
    if (o->groups != 1 || o->mode != CNNI_PAD_ZEROS || o->in_ch > 4)
        return 0;
    for (int i = 0; i < 2; i++)
        if (o->stride[i] != 1 || o->dil[i] != 1)
            return 0;
    cnni_conv_geom g;
    cnn_shape y;
    int64_t padded[3];
    cnn_err e;
    memset(&e, 0, sizeof e);
    if (make_geom(o, in, &g, &y, padded, &e) != CNN_OK)
        return 0;
    *wg = (cnni_wgrad_plane_geom){.C = o->in_ch, .H = in->dims[2], .W = in->dims[3], .OH = y.dims[2],
                                  .OW = y.dims[3], .KH = o->k[0], .KW = o->k[1], .ph = o->pad_lo[0],
                                  .pw = o->pad_lo[1]};
    return cnni_wgrad_plane_fast(wg);
}

int cnni_conv_act_fusable(const cnni_node *n, const cnn_shape *in, int isa, int data)
{
    if (n->op != &cnni_op_Conv2d)
        return 0;
    const conv_opts *o = n->opts;
    cnni_conv_geom g;
    cnn_shape y;
    int64_t padded[3];
    cnn_err e;
    memset(&e, 0, sizeof e);
    if (o->mode != CNNI_PAD_ZEROS || in->ndim != 4 || make_geom(o, in, &g, &y, padded, &e) != CNN_OK)
        return 0;
    const conv_kernels ks = choose_kernels(isa, &g);
    return ks.weight == KERN_QUADIMG && (!data || ks.data == KERN_QUADIMG) &&
           cnni_conv_quadimg_act_applies(isa, &g, data);
}

int cnni_conv_bias_from_channels(const cnni_node *n, const cnn_shape *out)
{
    if (n->op != &cnni_op_Conv1d && n->op != &cnni_op_Conv2d && n->op != &cnni_op_Conv3d &&
        n->op != &cnni_op_ConvTranspose1d && n->op != &cnni_op_ConvTranspose2d && n->op != &cnni_op_ConvTranspose3d)
        return 0;
    const conv_opts *o = n->opts;
    return o->bias && n->n_params > 1 && out->ndim == o->nsp + 2;
}
