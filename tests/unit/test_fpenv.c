/* Tests for flushing denormals (dtrain/fpenv.h): after dt_fp_flush_denormals a product
 * below FLT_MIN is 0 and a denormal input reads as 0; the mode belongs to one thread
 * (setting it in one leaves another alone); a thread created afterwards starts with
 * its creator's mode (POSIX), which is why loader threads set it themselves; and
 * dt_fp_mode_get/set put a mode back. */
#include <float.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "dtrain/fpenv.h"
#include "test_util.h"

/* volatile so that the compiler neither folds the products nor keeps them in a
 * different precision: they are computed at run time under the thread's mode. */
static volatile float tiny = 1e-20f;      /* tiny * tiny = 1e-40, below FLT_MIN */
static volatile float denormal = 1e-40f;  /* a denormal input */

static float denormal_product(void) { return tiny * tiny; }
/* A normal result (1e-30) from a denormal input: 0 only when inputs read as 0 (DAZ). */
static volatile float big = 1e10f;
static float denormal_input(void) { return denormal * big; }

typedef struct {
  bool flush;             /* call dt_fp_flush_denormals in the thread */
  bool before, after;     /* dt_fp_denormals_flushed before and after that */
  float product, input;
} probe_t;

static void *probe_main(void *arg) {
  probe_t *p = arg;
  p->before = dt_fp_denormals_flushed();
  if (p->flush) dt_fp_flush_denormals();
  p->after = dt_fp_denormals_flushed();
  p->product = denormal_product();
  p->input = denormal_input();
  return NULL;
}

static void run_probe(probe_t *p) {
  pthread_t t;
  CHECK_INT_EQ(pthread_create(&t, NULL, probe_main, p), 0);
  CHECK_INT_EQ(pthread_join(t, NULL), 0);
}

int main(void) {
#if defined(__x86_64__)
  /* The process starts with the default mode: denormals are kept. */
  CHECK(!dt_fp_denormals_flushed());
  CHECK(denormal_product() > 0.0f);
  CHECK(denormal_product() < FLT_MIN);
  CHECK(denormal_input() > 0.0f);
  dt_fp_mode_t original = dt_fp_mode_get();

  /* A thread that flushes has its products flushed... */
  probe_t child = {.flush = true};
  run_probe(&child);
  CHECK(!child.before);
  CHECK(child.after);
  CHECK_NEAR(child.product, 0.0, 0.0);
  CHECK_NEAR(child.input, 0.0, 0.0);
  /* ...and leaves this thread's mode alone. */
  CHECK(!dt_fp_denormals_flushed());
  CHECK(denormal_product() > 0.0f);

  /* A thread that does not call it keeps denormals. */
  probe_t plain = {.flush = false};
  run_probe(&plain);
  CHECK(!plain.after);
  CHECK(plain.product > 0.0f);

  /* This thread now. */
  dt_fp_flush_denormals();
  CHECK(dt_fp_denormals_flushed());
  CHECK_NEAR(denormal_product(), 0.0, 0.0);
  CHECK_NEAR(denormal_input(), 0.0, 0.0);
  /* Normal numbers are untouched. */
  volatile float a = 3.0f, b = 0.5f;
  CHECK_NEAR(a * b, 1.5, 0.0);

  /* A thread created now starts with this thread's mode (POSIX: pthread_create copies
   * the floating-point environment), without calling anything. */
  probe_t inherited = {.flush = false};
  run_probe(&inherited);
  CHECK(inherited.before);
  CHECK_NEAR(inherited.product, 0.0, 0.0);

  /* Putting the saved mode back keeps denormals again. */
  dt_fp_mode_set(original);
  CHECK(!dt_fp_denormals_flushed());
  CHECK(denormal_product() > 0.0f);
#else
  /* Elsewhere nothing is changed and the check says false. */
  dt_fp_flush_denormals();
  CHECK(!dt_fp_denormals_flushed());
#endif
  return test_summary("test_fpenv");
}
