/* Flushing denormals in the calling thread (see dtrain/fpenv.h): FTZ and DAZ in MXCSR
 * on x86-64, nothing elsewhere. */
#include "dtrain/fpenv.h"

#if defined(__x86_64__)
#include <xmmintrin.h>

/* MXCSR bit 15 is flush-to-zero, bit 6 denormals-are-zero (Intel SDM vol. 1, 10.2.3).
 * Written as numbers because DAZ's macro lives in the SSE3 header only. */
enum { FTZ_BIT = 0x8000u, DAZ_BIT = 0x0040u };

void dt_fp_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | FTZ_BIT | DAZ_BIT); }

bool dt_fp_denormals_flushed(void) {
  unsigned int csr = _mm_getcsr();
  return (csr & FTZ_BIT) && (csr & DAZ_BIT);
}

dt_fp_mode_t dt_fp_mode_get(void) { return (dt_fp_mode_t){_mm_getcsr()}; }

void dt_fp_mode_set(dt_fp_mode_t mode) { _mm_setcsr(mode.csr); }

#else

void dt_fp_flush_denormals(void) {}

bool dt_fp_denormals_flushed(void) { return false; }

dt_fp_mode_t dt_fp_mode_get(void) { return (dt_fp_mode_t){0}; }

void dt_fp_mode_set(dt_fp_mode_t mode) { (void)mode; }

#endif
