/* Included first by every reference kernel source: REAL and SFX select the
 * element type; the Makefile compiles each source for float and double. */
#ifndef REAL
#define REAL float
#define SFX f32
#endif
#define CNNI_CAT_(a, b) a##_##b
#define CNNI_CAT(a, b) CNNI_CAT_(a, b)
#define REFN(name) CNNI_CAT(name, SFX)
/* Reductions accumulate in double even in the float build: the reference
 * is the oracle, so it should be the most accurate sum we can cheaply get. */
typedef double ACC;
