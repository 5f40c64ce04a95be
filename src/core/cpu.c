/* Run-time CPU feature detection: an instruction set is usable only if the
 * CPU reports it and the OS saves its registers (XCR0). */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

cnni_isa cnni_cpu_best_isa(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return CNNI_ISA_GENERIC;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx)
        return CNNI_ISA_GENERIC;
    uint64_t xcr0 = xgetbv0();
    int ymm_os = (xcr0 & 0x6) == 0x6;      /* SSE and AVX state */
    int zmm_os = (xcr0 & 0xe6) == 0xe6;    /* plus opmask and the upper ZMM state */
    if (!ymm_os || __get_cpuid_max(0, NULL) < 7)
        return CNNI_ISA_GENERIC;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1;
    if (avx512f && avx512dq && avx512bw && avx512vl && zmm_os && fma)
        return CNNI_ISA_AVX512;
    if (avx2 && fma)
        return CNNI_ISA_AVX2;
    return CNNI_ISA_GENERIC;
}
#else
cnni_isa cnni_cpu_best_isa(void) { return CNNI_ISA_GENERIC; }
#endif

const char *cnni_isa_name(cnni_isa isa)
{
    switch (isa) {
    case CNNI_ISA_GENERIC: return "generic";
    case CNNI_ISA_AVX2: return "avx2";
    case CNNI_ISA_AVX512: return "avx512";
    }
    return "?";
}
