/* Switches that tests use to make faults and pick code paths, in one place.
 *
 * They come from environment variables, read once at program start-up by main() (or
 * by a test's own setup) with dt_test_hooks_read, and are handed down like any other
 * setting: library code never calls getenv for them, and no hot loop looks at them.
 *
 *   DT_TEST_STALL_RANK, DT_TEST_STALL_AT_STEP  this rank stops answering at that step
 *                                              (1-based), to trigger the watchdog
 *   DT_TEST_PS_DELAY_MS                        each PS worker step waits this long (a
 *                                              slow worker, for SSP tests)
 *   DT_CONV_BLAS                               convolutions on OpenBLAS even where the
 *                                              AVX-512 kernels could run (also a way to
 *                                              compare the two by hand)
 *   DT_TEST_NO_BF16                            the CPU backend behaves as if the CPU had
 *                                              no bfloat16 arithmetic (tests the error of
 *                                              train.precision = bf16 on such a CPU)
 *
 * Each one that is set is announced with a warning by whoever acts on it, so a log
 * shows when a run was not a normal one. */
#ifndef DTRAIN_TEST_HOOKS_H
#define DTRAIN_TEST_HOOKS_H

#include <stdbool.h>

typedef struct {
  int stall_rank;      /* -1: none */
  long stall_at_step;  /* 0: never */
  double ps_delay_ms;  /* 0: none */
  bool conv_blas;      /* force the OpenBLAS convolution path */
  bool no_bf16;        /* pretend the CPU has no bf16 */
} dt_test_hooks_t;

/* No switch set. */
dt_test_hooks_t dt_test_hooks_none(void);

/* The switches from the environment (unset or empty: off; "0" for DT_CONV_BLAS: off). */
dt_test_hooks_t dt_test_hooks_read(void);

#endif
