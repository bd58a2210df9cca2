/* Test switches from the environment, read once (see test_hooks.h). */
#include "dtrain/test_hooks.h"

#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

dt_test_hooks_t dt_test_hooks_none(void) {
  return (dt_test_hooks_t){.stall_rank = -1, .stall_at_step = 0, .ps_delay_ms = 0.0,
                           .conv_blas = false, .no_bf16 = false};
}

dt_test_hooks_t dt_test_hooks_read(void) {
  dt_test_hooks_t h = dt_test_hooks_none();
  const char *stall_rank = env("DT_TEST_STALL_RANK"), *stall_step = env("DT_TEST_STALL_AT_STEP");
  if (stall_rank && stall_step) {
    h.stall_rank = atoi(stall_rank);
    h.stall_at_step = atol(stall_step);
  }
  const char *delay = env("DT_TEST_PS_DELAY_MS");
  if (delay && atof(delay) > 0) h.ps_delay_ms = atof(delay);
  const char *conv = env("DT_CONV_BLAS");
  h.conv_blas = conv && strcmp(conv, "0") != 0;
  const char *no_bf16 = env("DT_TEST_NO_BF16");
  h.no_bf16 = no_bf16 && strcmp(no_bf16, "0") != 0;
  return h;
}
