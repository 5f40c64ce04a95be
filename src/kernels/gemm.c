/* The GEMM driver and the portable pieces: plain packers and the generic
 * microkernel. See gemm.h for the arrangement. */
#include "gemm.h"

#include <string.h>

#define GENERIC_MR 4
#define GENERIC_NR 16

/* The first kernel of each instruction set is its default (the tallest). */
static const cnni_gemm_kernel kernels[] = {
    {CNNI_ISA_GENERIC, GENERIC_MR, GENERIC_NR, 256, 512, 64, cnni_micro_generic, NULL, NULL, NULL},
    /* AVX2 (measured on Zen 4 limited to AVX2, 1024^3, one thread): K and
     * B blocks of 1024 as for AVX-512 below, 19.7 ms where 256 x 512
     * blocks took 20.4-21.5 (OpenBLAS's Haswell kernels: 19.7-20.0); A
     * blocks of 72 rows (48 the same, 120 slower: 22.6). */
    {CNNI_ISA_AVX2, 6, 16, 1024, 1024, 72, cnni_micro_avx2, cnni_pack_a_avx2, NULL, NULL},
    {CNNI_ISA_AVX2, 4, 16, 1024, 1024, 64, cnni_micro_avx2_4, cnni_pack_a_avx2, NULL, NULL},
    /* AVX-512 (measured on Zen 4, 1024^3, one thread): K blocks of up to
     * 1024 and B blocks of 1024 columns, so the C tile is loaded and stored
     * once per 1024 k and A packed once per 1024 columns, reached 104-107
     * GFLOP/s where 256 x 512 blocks reached 86-94; the B panel streams
     * from L3 with no loss. */
    {CNNI_ISA_AVX512, 12, 32, 1024, 1024, 96, cnni_micro_avx512, cnni_pack_a_avx512, cnni_pack_bt_avx512,
     cnni_micro_avx512_ub},
    {CNNI_ISA_AVX512, 8, 32, 1024, 1024, 96, cnni_micro_avx512_8, cnni_pack_a_avx512, cnni_pack_bt_avx512,
     cnni_micro_avx512_8_ub},
    {CNNI_ISA_AVX512, 4, 32, 1024, 1024, 96, cnni_micro_avx512_4, cnni_pack_a_avx512, cnni_pack_bt_avx512,
     cnni_micro_avx512_4_ub},
};
#define N_KERNELS (sizeof kernels / sizeof kernels[0])

const cnni_gemm_kernel *cnni_gemm_kernel_for(cnni_isa isa)
{
    for (size_t i = 0; i < N_KERNELS; i++)
        if (kernels[i].isa == isa)
            return &kernels[i];
    return &kernels[0];
}

const cnni_gemm_kernel *cnni_gemm_kernel_for_rows(cnni_isa isa, int64_t M)
{
    const cnni_gemm_kernel *best = cnni_gemm_kernel_for(isa);
    int64_t best_waste = (M + best->mr - 1) / best->mr * best->mr - M;
    for (size_t i = 0; i < N_KERNELS; i++) {
        if (kernels[i].isa != isa)
            continue;
        int64_t waste = (M + kernels[i].mr - 1) / kernels[i].mr * kernels[i].mr - M;
        if (waste < best_waste) {
            best = &kernels[i];
            best_waste = waste;
        }
    }
    return best;
}

size_t cnni_gemm_scratch_bytes(const cnni_gemm_kernel *k)
{
    size_t a = (size_t)(k->mc + k->mr) * (size_t)k->kc;
    size_t b = (size_t)(k->nc + k->nr) * (size_t)k->kc;
    return (a + b) * sizeof(float) + 128;
}

/* The transposing packs walk each source row along a chunk of PACK_CHUNK
 * elements (contiguous reads, one page at a time) and scatter into a
 * destination chunk small enough for L1; visiting every row once per
 * element instead (MR or NR rows far apart) misses the TLB on most reads. */
#define PACK_CHUNK 64

/* One transposing panel: d[k*width + j] = src[j*ld + k] for j < n and
 * k < kc, zero for n <= j < width. */
static void pack_transposed(const float *src, int64_t ld, int n, int width, int64_t kc, float *d)
{
    for (int64_t c0 = 0; c0 < kc; c0 += PACK_CHUNK) {
        const int64_t c1 = kc - c0 < PACK_CHUNK ? kc : c0 + PACK_CHUNK;
        for (int j = 0; j < n; j++) {
            const float *s = src + j * ld;
            for (int64_t k = c0; k < c1; k++)
                d[k * width + j] = s[k];
        }
        for (int j = n; j < width; j++)
            for (int64_t k = c0; k < c1; k++)
                d[k * width + j] = 0;
    }
}

void cnni_pack_a_plain(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr,
                       float *dst)
{
    for (int64_t p = 0; p < mc; p += mr) {
        int rows = (int)(mc - p < mr ? mc - p : mr);
        float *dp = dst + p * kc;
        if (!op->trans_a) {
            pack_transposed(op->a + (m0 + p) * op->lda + k0, op->lda, rows, mr, kc, dp);
        } else {
            for (int64_t k = 0; k < kc; k++) {
                float *d = dp + k * mr;
                const float *s = op->a + (k0 + k) * op->lda + m0 + p;
                int r = 0;
                for (; r < rows; r++)
                    d[r] = s[r];
                for (; r < mr; r++)
                    d[r] = 0;
            }
        }
    }
}

/* 16 and 32 floats: constant counts, so that compilers copy in vectors. */
static inline void copy16(float *d, const float *s)
{
    for (int j = 0; j < 16; j++)
        d[j] = s[j];
}

static inline void copy32(float *d, const float *s)
{
    for (int j = 0; j < 32; j++)
        d[j] = s[j];
}

static void pack_b_plain(const cnni_gemm_op *op, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                         int nr, float *dst)
{
    if (!op->trans_b) {
        /* Row by row: each row of B is read once, in order, and its pieces
         * go to the panels' rows k (a panel at a time read B's rows a page
         * apart, nr floats each, and ran at about 4 GB/s). */
        const int64_t full = nc / nr * nr;
        for (int64_t k = 0; k < kc; k++) {
            const float *s = op->b + (k0 + k) * op->ldb + n0;
            float *d = dst + k * nr;
            int64_t p = 0;
            if (nr == 32)
                for (; p < full; p += 32)
                    copy32(d + p * kc, s + p);
            else if (nr == 16)
                for (; p < full; p += 16)
                    copy16(d + p * kc, s + p);
            for (; p < nc; p += nr) {
                const int cols = (int)(nc - p < nr ? nc - p : nr);
                float *dp = d + p * kc;
                for (int j = 0; j < cols; j++)
                    dp[j] = s[p + j];
                for (int j = cols; j < nr; j++)
                    dp[j] = 0;
            }
        }
        return;
    }
    for (int64_t p = 0; p < nc; p += nr) {
        const int cols = (int)(nc - p < nr ? nc - p : nr);
        pack_transposed(op->b + (n0 + p) * op->ldb + k0, op->ldb, cols, nr, kc, dst + p * kc);
    }
}

void cnni_micro_generic(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                        int n, int accumulate, const float *bias)
{
    float acc[GENERIC_MR][GENERIC_NR];
    for (int r = 0; r < GENERIC_MR; r++)
        for (int j = 0; j < GENERIC_NR; j++)
            acc[r][j] = 0;
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * GENERIC_NR;
        for (int r = 0; r < GENERIC_MR; r++) {
            float av = a[k * GENERIC_MR + r];
            for (int j = 0; j < GENERIC_NR; j++)
                acc[r][j] += av * bk[j];
        }
    }
    for (int r = 0; r < m; r++) {
        float *cr = c + r * ldc;
        float bv = bias ? bias[r] : 0.0f;
        for (int j = 0; j < n; j++)
            cr[j] = (accumulate ? cr[j] : bv) + acc[r][j];
    }
}

#define UNPACKED_B_MAX_K 256
#define UNPACKED_B_MAX_LD 2048

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* K blocks of nearly equal length (288 = 144 + 144, not 256 + 32): a short
 * last block would load and store the C tile for little work. */
static int64_t k_block(const cnni_gemm_kernel *k, int64_t K)
{
    int64_t blocks = (K + k->kc - 1) / k->kc;
    return blocks ? (K + blocks - 1) / blocks : 1;
}

size_t cnni_gemm_packed_a_bytes(const cnni_gemm_kernel *k, int64_t M, int64_t K)
{
    return (size_t)round_up(M, k->mr) * (size_t)K * sizeof(float) + 64;
}

int64_t cnni_gemm_k_blocks(const cnni_gemm_kernel *k, int64_t K)
{
    const int64_t kb = k_block(k, K);
    return (K + kb - 1) / kb;
}

void cnni_gemm_pack_a_block(const cnni_gemm_kernel *k, const cnni_gemm_op *op, int64_t block, float *dst)
{
    cnni_pack_a_fn pack_a = op->pack_a ? op->pack_a : k->pack_a ? k->pack_a : cnni_pack_a_plain;
    const int64_t mup = round_up(op->M, k->mr), kb = k_block(k, op->K), pc = block * kb;
    const int64_t kc = op->K - pc < kb ? op->K - pc : kb;
    for (int64_t ic = 0; ic < op->M; ic += k->mc) {
        int64_t mc = op->M - ic < k->mc ? op->M - ic : k->mc;
        pack_a(op, ic, mc, pc, kc, k->mr, dst + pc * mup + ic * kc);
    }
}

void cnni_gemm_pack_a(const cnni_gemm_kernel *k, const cnni_gemm_op *op, float *dst)
{
    const int64_t nb = cnni_gemm_k_blocks(k, op->K);
    for (int64_t b = 0; b < nb; b++)
        cnni_gemm_pack_a_block(k, op, b, dst);
}

void cnni_gemm(const cnni_gemm_kernel *k, const cnni_gemm_op *op, int64_t n0, int64_t n1, void *scratch)
{
    const int mr = k->mr, nr = k->nr;
    float *apack = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *bpack = apack + (size_t)(k->mc + mr) * (size_t)k->kc;
    cnni_pack_a_fn pack_a = op->pack_a ? op->pack_a : k->pack_a ? k->pack_a : cnni_pack_a_plain;
    cnni_pack_b_fn pack_b = op->pack_b ? op->pack_b : op->trans_b && k->pack_bt ? k->pack_bt : pack_b_plain;
    if (op->K == 0) {
        /* An empty product: only the bias (and what C held, when accumulating). */
        for (int64_t i = 0; i < op->M; i++)
            for (int64_t j = n0; j < n1; j++) {
                float bv = op->bias ? op->bias[i] : 0.0f;
                float *cp = &op->c[i * op->ldc + j];
                *cp = op->accumulate ? *cp + bv : bv;
            }
        return;
    }
    const int64_t kb = k_block(k, op->K);
    /* A plain B of few rows, close together, is read in place: packing it
     * cost about as much as the products for a Linear layer's gradients
     * (K = the batch, or the outputs). */
    const int b_in_place = k->micro_ub && !op->pack_b && !op->trans_b && op->K <= UNPACKED_B_MAX_K &&
                           op->ldb <= UNPACKED_B_MAX_LD;
    for (int64_t jc = n0; jc < n1; jc += k->nc) {
        int64_t nc = n1 - jc < k->nc ? n1 - jc : k->nc;
        for (int64_t pc = 0; pc < op->K; pc += kb) {
            int64_t kc = op->K - pc < kb ? op->K - pc : kb;
            int first = pc == 0;
            if (!b_in_place)
                pack_b(op, pc, kc, jc, nc, nr, bpack);
            for (int64_t ic = 0; ic < op->M; ic += k->mc) {
                int64_t mc = op->M - ic < k->mc ? op->M - ic : k->mc;
                const float *ablock = apack;
                if (op->a_packed)
                    ablock = op->a_packed + pc * round_up(op->M, mr) + ic * kc;
                else
                    pack_a(op, ic, mc, pc, kc, mr, apack);
                for (int64_t ir = 0; ir < mc; ir += mr) {
                    int m = (int)(mc - ir < mr ? mc - ir : mr);
                    const float *ap = ablock + ir * kc;
                    const float *bias = (first && op->bias && !op->accumulate) ? op->bias + ic + ir : NULL;
                    int acc = op->accumulate || !first;
                    if (first && op->bias && op->accumulate)
                        bias = NULL;
                    for (int64_t jr = 0; jr < nc; jr += nr) {
                        int n = (int)(nc - jr < nr ? nc - jr : nr);
                        float *cp = op->c + (ic + ir) * op->ldc + jc + jr;
                        if (b_in_place)
                            k->micro_ub(kc, ap, op->b + pc * op->ldb + jc + jr, op->ldb, cp, op->ldc, m, n, acc,
                                        bias);
                        else
                            k->micro(kc, ap, bpack + jr * kc, cp, op->ldc, m, n, acc, bias);
                    }
                }
            }
        }
    }
    if (op->bias && op->accumulate)
        for (int64_t i = 0; i < op->M; i++)
            for (int64_t j = n0; j < n1; j++)
                op->c[i * op->ldc + j] += op->bias[i];
}
