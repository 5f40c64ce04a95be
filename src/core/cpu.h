/* CPU features, detected at run time (CPUID and XGETBV), and the instruction
 * set each graph uses. */
#ifndef CNN_CPU_H
#define CNN_CPU_H

#include "internal.h"

typedef enum {
    CNNI_ISA_GENERIC = 0, /* portable C: the baseline on any machine */
    CNNI_ISA_AVX2 = 1,    /* AVX2 + FMA */
    CNNI_ISA_AVX512 = 2   /* AVX-512 F, BW, VL, DQ */
} cnni_isa;

/* The best instruction set this CPU and OS support. */
cnni_isa cnni_cpu_best_isa(void);
const char *cnni_isa_name(cnni_isa isa);

#endif
