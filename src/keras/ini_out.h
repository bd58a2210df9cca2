/* A growing text buffer for the model config an import writes. The first out of
 * memory sticks (failed). Private to src/keras. */
#ifndef DTRAIN_KERAS_INI_OUT_H
#define DTRAIN_KERAS_INI_OUT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char *buf;
  size_t len, cap;
  bool failed;
} dt_text_t;

void dt_text_printf(dt_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
