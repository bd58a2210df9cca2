/* The device the unit tests build their models on: one CPU device per test executable,
 * created on first use with the options last given to test_device_use (default: none
 * set), and destroyed by test_device_release before main() returns. */
#ifndef DT_TEST_DEVICE_UTIL_H
#define DT_TEST_DEVICE_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "dtrain/device.h"

static dt_device_t *test_dev;
static dt_device_options_t test_dev_options;

static inline void test_device_release(void) {
  dt_device_destroy(test_dev);
  test_dev = NULL;
}

/* Models built from now on get a device made with opt (models on the old one must have
 * been freed). */
static inline void test_device_use(const dt_device_options_t *opt) {
  test_device_release();
  test_dev_options = *opt;
}

static inline dt_device_t *test_device(void) {
  if (!test_dev) {
    dt_error_t err = {0};
    if (dt_device_create(&test_dev_options, &test_dev, &err)) {
      fprintf(stderr, "cannot create the test device: %s\n", err.msg);
      abort();
    }
  }
  return test_dev;
}

#endif
