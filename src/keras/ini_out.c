/* The text buffer of ini_out.h. */
#include "ini_out.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void dt_text_printf(dt_text_t *t, const char *fmt, ...) {
  if (t->failed) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    t->failed = true;
    return;
  }
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t c = t->cap ? t->cap : 1024;
    while (c < t->len + (size_t)n + 1) c *= 2;
    char *b = realloc(t->buf, c);
    if (!b) {
      t->failed = true;
      return;
    }
    t->buf = b, t->cap = c;
  }
  va_start(ap, fmt);
  vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}
