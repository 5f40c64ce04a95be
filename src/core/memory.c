/* Allocation wrappers. Building with -DCNN_FAULT_INJECTION lets a test make
 * the N-th allocation fail, to prove every failure path returns
 * CNN_ERR_NOMEM and leaks nothing. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifdef CNN_FAULT_INJECTION
/* Test-build only: which allocation fails next (0 = none). Deliberately a
 * global, since it models the process's allocator. */
static _Thread_local long long fault_countdown;
static _Thread_local long long alloc_count;

CNN_API void cnn_test_fail_alloc_after(long long n);
CNN_API long long cnn_test_alloc_count(void);
void cnn_test_fail_alloc_after(long long n)
{
    fault_countdown = n;
    alloc_count = 0;
}
long long cnn_test_alloc_count(void) { return alloc_count; }

static int should_fail(void)
{
    alloc_count++;
    if (fault_countdown > 0 && --fault_countdown == 0)
        return 1;
    return 0;
}
#else
static int should_fail(void) { return 0; }
#endif

void *cnni_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cnni_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    if (count == 0 || size == 0)
        return calloc(1, 1);
    return calloc(count, size);
}

void *cnni_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void cnni_free(void *p) { free(p); }

void *cnni_amalloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n)
        return NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0)
        return NULL;
    return p;
}

void cnni_afree(void *p) { free(p); }

void *cnni_amalloc_large(size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20;
    if (n < 2 * huge)
        return cnni_amalloc(n);
    if (should_fail())
        return NULL;
    const size_t rounded = (n + huge - 1) & ~(huge - 1);
    void *p = NULL;
    if (rounded < n || posix_memalign(&p, huge, rounded) != 0)
        return NULL;
    (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint: 4 KB pages serve if refused */
    return p;
#else
    return cnni_amalloc(n);
#endif
}

char *cnni_strndup(const char *s, size_t n)
{
    char *d = cnni_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *cnni_strdup(const char *s) { return cnni_strndup(s, strlen(s)); }

int cnni_grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 1;
    int ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > (1 << 29))
            return 0;
        ncap *= 2;
    }
    size_t bytes;
    if (!cnni_zmul_ok((size_t)ncap, elem, &bytes))
        return 0;
    void *p = cnni_realloc(*arr, bytes);
    if (!p)
        return 0;
    *arr = p;
    *cap = ncap;
    return 1;
}
