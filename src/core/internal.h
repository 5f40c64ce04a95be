/* Internal declarations shared by the library's source files. Nothing here is
 * part of the public API; everything public lives in include/cnn.h. */
#ifndef CNN_INTERNAL_H
#define CNN_INTERNAL_H

#include "cnn.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CNNI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CNNI_PRINTF(f, a)
#endif

/* ---- errors ------------------------------------------------------------
 * Every handle embeds one cnn_err; internal functions take a cnn_err* and
 * return the status they stored, so a failure is one line:
 *     return cnni_fail(e, CNN_ERR_SHAPE, "expected %d channels, got %d", a, b);
 */
#define CNNI_ERRMSG_MAX 1024
typedef struct cnn_err {
    cnn_status code;
    char msg[CNNI_ERRMSG_MAX];
} cnn_err;

cnn_status cnni_fail(cnn_err *e, cnn_status code, const char *fmt, ...) CNNI_PRINTF(3, 4);
cnn_status cnni_vfail(cnn_err *e, cnn_status code, const char *fmt, va_list ap);
/* Puts "prefix: " in front of the message already in e (keeps the code). */
void cnni_err_prefix(cnn_err *e, const char *fmt, ...) CNNI_PRINTF(2, 3);
void cnni_err_clear(cnn_err *e);
cnn_status cnni_oom(cnn_err *e);

/* ---- checked size arithmetic ------------------------------------------ */
static inline int cnni_mul_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline int cnni_add_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline int cnni_zmul_ok(size_t a, size_t b, size_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline int cnni_zadd_ok(size_t a, size_t b, size_t *r) { return !__builtin_add_overflow(a, b, r); }

/* Largest element count any single tensor may have (2^40 elements: far above
 * any real layer, low enough that byte counts never overflow). */
#define CNNI_MAX_NUMEL (INT64_C(1) << 40)

/* Product of the dims; fails with CNN_ERR_OVERFLOW naming `what`. */
cnn_status cnni_shape_numel(const cnn_shape *s, int64_t *numel, cnn_err *e, const char *what);
int64_t cnni_numel(const cnn_shape *s); /* for shapes already validated */
size_t cnni_dtype_size(cnn_dtype t);
/* "[2, 3, 4]" into buf; returns buf. */
char *cnni_shape_str(const cnn_shape *s, char *buf, size_t n);
int cnni_shape_eq(const cnn_shape *a, const cnn_shape *b);
cnn_shape cnni_shape_make(int ndim, const int64_t *dims);
float cnni_f16_to_f32(uint16_t h);
float cnni_bf16_to_f32(uint16_t h);

/* ---- memory ------------------------------------------------------------
 * All library allocations go through these so a test build can make any one
 * of them fail (CNN_FAULT_INJECTION). */
void *cnni_malloc(size_t n);
void *cnni_calloc(size_t count, size_t size);
void *cnni_realloc(void *p, size_t n);
void cnni_free(void *p);
/* 64-byte aligned; free with cnni_afree. */
void *cnni_amalloc(size_t n);
void cnni_afree(void *p);
/* As cnni_amalloc; a block of several MB read at random places (a data
 * set) is aligned to 2 MB and asks the kernel for huge pages, so that
 * reading it does not miss the TLB at every sample. Free with cnni_afree. */
void *cnni_amalloc_large(size_t n);
char *cnni_strdup(const char *s);
char *cnni_strndup(const char *s, size_t n);

/* Growable array helper: ensures capacity for `need` elements of `elem` bytes. */
int cnni_grow(void **arr, int *cap, int need, size_t elem);

/* ---- random numbers ----------------------------------------------------
 * xoshiro256** seeded through splitmix64: a small explicit state that is
 * saved in checkpoints. */
typedef cnn_rng cnni_rng; /* the public struct: four words of state */
/* One xoshiro256** step of the four state words s: the next draw. Inline,
 * for loops that keep several streams' words in registers (dropout). */
static inline uint64_t cnni_xoshiro_next(uint64_t s[4])
{
    const uint64_t a = s[1] * 5, result = ((a << 7) | (a >> 57)) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

void cnni_rng_seed(cnni_rng *r, uint64_t seed);
uint64_t cnni_rng_u64(cnni_rng *r);
double cnni_rng_uniform(cnni_rng *r);             /* [0, 1) with 53 bits */
double cnni_rng_uniform_range(cnni_rng *r, double lo, double hi);
double cnni_rng_normal(cnni_rng *r);              /* N(0, 1) */
uint64_t cnni_rng_below(cnni_rng *r, uint64_t n); /* uniform in [0, n) */
/* An independent stream derived from this one (used per purpose: init,
 * shuffle, dropout), so adding a draw in one place does not shift others. */
void cnni_rng_split(cnni_rng *r, uint64_t stream, cnni_rng *out);

/* ---- files -------------------------------------------------------------- */
/* Reads a whole file; *data is NUL-terminated (not counted in *len). */
cnn_status cnni_read_file(const char *path, char **data, size_t *len, size_t max_len, cnn_err *e);

/* Writes files atomically: data goes to a temporary name in the same folder,
 * is flushed to disk and renamed over `path` only by cnni_afile_commit. */
typedef struct cnni_afile {
    void *fp; /* FILE* */
    char *path;
    char *tmp_path;
    int failed;
} cnni_afile;

cnn_status cnni_afile_open(cnni_afile *f, const char *path, cnn_err *e);
cnn_status cnni_afile_write(cnni_afile *f, const void *data, size_t n, cnn_err *e);
cnn_status cnni_afile_commit(cnni_afile *f, cnn_err *e);
void cnni_afile_abort(cnni_afile *f); /* removes the temporary file */

#endif
