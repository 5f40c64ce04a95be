/* Packed single-precision matrix multiply: C (+)= A B (+ bias per row), in
 * the GotoBLAS/BLIS arrangement: B is packed in blocks of KC x NC that stay
 * in L2, A in MR-row micro-panels, and a register-blocked MR x NR
 * microkernel keeps its tile of C in registers for the whole K block.
 *
 * Where A and B come from is abstracted by their packers, so the same
 * driver serves plain matrices (Linear, 1x1 convolutions) and convolutions
 * whose B is an im2col matrix gathered straight from the image while
 * packing, never materialised. */
#ifndef CNN_GEMM_H
#define CNN_GEMM_H

#include "../core/cpu.h"

typedef struct cnni_gemm_op cnni_gemm_op;

/* Packs rows [m0, m0+mc) x cols [k0, k0+kc) of A into MR-row panels:
 * dst[p][k][r] = A[m0 + p*MR + r][k0 + k], rows past M zero. */
typedef void (*cnni_pack_a_fn)(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0,
                               int64_t kc, int mr, float *dst);
/* Packs rows [k0, k0+kc) x cols [n0, n0+nc) of B into NR-column panels:
 * dst[p][k][j] = B[k0 + k][n0 + p*NR + j], columns past N zero. */
typedef void (*cnni_pack_b_fn)(const cnni_gemm_op *op, int64_t k0, int64_t kc, int64_t n0,
                               int64_t nc, int nr, float *dst);

struct cnni_gemm_op {
    int64_t M, N, K;
    cnni_pack_a_fn pack_a;   /* NULL: plain A (a, lda, trans_a) */
    cnni_pack_b_fn pack_b;   /* NULL: plain B (b, ldb, trans_b) */
    const float *a;
    int64_t lda;
    int trans_a;             /* A is stored K x M */
    const float *b;
    int64_t ldb;
    int trans_b;             /* B is stored N x K */
    const void *a_ctx, *b_ctx; /* for custom packers */
    float *c;
    int64_t ldc;
    int accumulate;          /* C += A B; otherwise C = A B */
    const float *bias;       /* optional: C[m][:] += bias[m] */
    const float *a_packed;   /* optional: A already packed by cnni_gemm_pack_a (then
                              * a, pack_a, trans_a are not used) */
};

/* A microkernel: C tile (m <= MR rows, n <= NR cols, row stride ldc) =/+=
 * the kc-long product of packed panels a (kc x MR) and b (kc x NR). With
 * bias non-NULL it is added (first K block only). */
typedef void (*cnni_micro_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                              int m, int n, int accumulate, const float *bias);

/* The same product reading B's kc x n tile in place from row-major B (row
 * stride ldb) instead of a packed panel. */
typedef void (*cnni_micro_ub_fn)(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc,
                                 int m, int n, int accumulate, const float *bias);

typedef struct cnni_gemm_kernel {
    cnni_isa isa;
    int mr, nr;
    int64_t kc, nc, mc;      /* cache blocking */
    cnni_micro_fn micro;
    cnni_pack_a_fn pack_a;   /* packs plain A (NULL: the portable packer) */
    cnni_pack_b_fn pack_bt;  /* packs plain transposed B (NULL: the portable packer) */
    cnni_micro_ub_fn micro_ub; /* plain B read in place (NULL: always packed) */
} cnni_gemm_kernel;

/* The kernel for an instruction set (falls back to generic). */
const cnni_gemm_kernel *cnni_gemm_kernel_for(cnni_isa isa);
/* Of the instruction set's kernels, the one whose height wastes fewest
 * padded rows for a product with M rows (ties go to the taller kernel). */
const cnni_gemm_kernel *cnni_gemm_kernel_for_rows(cnni_isa isa, int64_t M);

/* Scratch one call of cnni_gemm needs (packed A block + packed B block). */
size_t cnni_gemm_scratch_bytes(const cnni_gemm_kernel *k);

/* A packed once for many products (weights shared by every image): the
 * whole of A in the driver's order, for each K block the MR-row panels of
 * all rows. Bytes needed, and the packing (op describes A as for cnni_gemm). */
size_t cnni_gemm_packed_a_bytes(const cnni_gemm_kernel *k, int64_t M, int64_t K);
void cnni_gemm_pack_a(const cnni_gemm_kernel *k, const cnni_gemm_op *op, float *dst);
/* The same packing one K block at a time (blocks are independent, so
 * threads can share the work): how many blocks, and block b of them. */
int64_t cnni_gemm_k_blocks(const cnni_gemm_kernel *k, int64_t K);
void cnni_gemm_pack_a_block(const cnni_gemm_kernel *k, const cnni_gemm_op *op, int64_t b, float *dst);

/* Computes the columns [n0, n1) of C (pass 0, op->N for all). Runs on one
 * thread; callers split columns (or separate problems) across threads.
 * The result does not depend on how columns are split. */
void cnni_gemm(const cnni_gemm_kernel *k, const cnni_gemm_op *op, int64_t n0, int64_t n1, void *scratch);

/* Microkernels per instruction set (defined in their own files). */
void cnni_micro_generic(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                        int n, int accumulate, const float *bias);
void cnni_micro_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                     int accumulate, const float *bias);
void cnni_micro_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                       int n, int accumulate, const float *bias);
void cnni_micro_avx512_8(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                         int n, int accumulate, const float *bias);
void cnni_micro_avx512_4(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                         int n, int accumulate, const float *bias);
/* The portable packer of plain A (a, lda, trans_a). */
void cnni_pack_a_plain(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr,
                       float *dst);
/* Packs plain A as the portable packer does, the untransposed case 16
 * columns at a time through a register transpose. */
void cnni_pack_a_avx512(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr,
                        float *dst);
/* Packs plain transposed B (trans_b) as the portable packer does. */
void cnni_micro_avx512_ub(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int m,
                          int n, int accumulate, const float *bias);
void cnni_micro_avx512_8_ub(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int m,
                            int n, int accumulate, const float *bias);
void cnni_micro_avx512_4_ub(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int m,
                            int n, int accumulate, const float *bias);
void cnni_pack_bt_avx512(const cnni_gemm_op *op, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr,
                         float *dst);
void cnni_micro_avx2_4(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                       int accumulate, const float *bias);
/* The same with 8 columns at a time (panels of up to 8 rows). */
void cnni_pack_a_avx2(const cnni_gemm_op *op, int64_t m0, int64_t mc, int64_t k0, int64_t kc, int mr, float *dst);

#endif
