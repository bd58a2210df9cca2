/* DT_HOT_LOOP marks a function whose float loops dominate a training step outside
 * GEMM (optimizer update, activations, batch gathering). GCC compiles it twice,
 * for x86-64-v3 (AVX2, FMA) and for the baseline, and the dynamic loader picks the
 * one the CPU runs, so one portable binary gets the wide vectors where they exist.
 * Results do not depend on the version chosen: -std=c11 keeps floating-point
 * contraction off and neither version reorders a reduction. Sanitizer builds and
 * other compilers get the plain function (ThreadSanitizer would instrument the
 * resolver, which the dynamic loader runs before the sanitizer is set up). */
#ifndef DTRAIN_HOT_H
#define DTRAIN_HOT_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && defined(__gnu_linux__)
#define DT_HOT_LOOP __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DT_HOT_LOOP
#endif

#endif
