/* The floating-point mode of the calling thread: flushing denormals.
 *
 * Values below FLT_MIN (denormals) cost tens to hundreds of cycles per operation on
 * x86-64 when the CPU handles them in microcode; data threads (scaling, augmentation)
 * and training threads set flush-to-zero (FTZ: denormal results become 0) and
 * denormals-are-zero (DAZ: denormal inputs read as 0) so that a step's time never
 * depends on how small some values happen to be. The mode is per thread (the SSE
 * control register MXCSR); a thread created with pthread_create starts with its
 * creator's mode (POSIX), so every thread that must have it calls
 * dt_fp_flush_denormals() itself rather than rely on who created it. Elsewhere than on
 * x86-64 nothing is changed. */
#ifndef DTRAIN_FPENV_H
#define DTRAIN_FPENV_H

#include <stdbool.h>

/* Sets FTZ and DAZ for the calling thread (x86-64; nothing elsewhere). */
void dt_fp_flush_denormals(void);

/* Whether both FTZ and DAZ are set in the calling thread; false where unknown. */
bool dt_fp_denormals_flushed(void);

/* The calling thread's whole mode, to be put back later with dt_fp_mode_set: for code
 * that flushes denormals only while it runs in a caller's thread (the loader with no
 * threads of its own), leaving the caller's mode as it found it. */
typedef struct {
  unsigned int csr; /* MXCSR on x86-64, 0 elsewhere */
} dt_fp_mode_t;

dt_fp_mode_t dt_fp_mode_get(void);
void dt_fp_mode_set(dt_fp_mode_t mode);

#endif
