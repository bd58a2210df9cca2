/* The JSON text builder (see jsonw.h). Strings are escaped by dt_json_quote; doubles
 * are written with 17 significant digits so that they read back exactly. */
#include "jsonw.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/json.h"

static void append(dt_jsonw_t *w, const char *s, size_t n) {
  if (w->failed) return;
  if (w->len + n + 1 > w->cap) {
    size_t c = w->cap ? w->cap : 1024;
    while (c < w->len + n + 1) c *= 2;
    char *b = realloc(w->buf, c);
    if (!b) {
      w->failed = true;
      return;
    }
    w->buf = b, w->cap = c;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = '\0';
}

static void appendf(dt_jsonw_t *w, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  append(w, tmp, (size_t)n);
}

/* A comma before every element but the first of its container, none after a key. */
static void element(dt_jsonw_t *w) {
  if (w->after_key) {
    w->after_key = false;
    return;
  }
  if (w->depth > 0) {
    if (!w->first[w->depth - 1]) append(w, ", ", 2);
    w->first[w->depth - 1] = false;
  }
}

static void quoted(dt_jsonw_t *w, const char *s) {
  size_t n = dt_json_quote(s, NULL, 0);
  char *q = malloc(n + 1);
  if (!q) {
    w->failed = true;
    return;
  }
  dt_json_quote(s, q, n + 1);
  append(w, q, n);
  free(q);
}

void dt_jsonw_key(dt_jsonw_t *w, const char *key) {
  element(w);
  quoted(w, key);
  append(w, ": ", 2);
  w->after_key = true;
}

static void open(dt_jsonw_t *w, const char *c) {
  element(w);
  append(w, c, 1);
  if (w->depth >= DT_JSONW_DEPTH) {
    w->failed = true;
    return;
  }
  w->first[w->depth++] = true;
}

static void close_(dt_jsonw_t *w, const char *c) {
  if (w->depth > 0) w->depth--;
  append(w, c, 1);
}

void dt_jsonw_begin_object(dt_jsonw_t *w) { open(w, "{"); }
void dt_jsonw_end_object(dt_jsonw_t *w) { close_(w, "}"); }
void dt_jsonw_begin_array(dt_jsonw_t *w) { open(w, "["); }
void dt_jsonw_end_array(dt_jsonw_t *w) { close_(w, "]"); }

void dt_jsonw_string(dt_jsonw_t *w, const char *s) {
  element(w);
  quoted(w, s);
}

void dt_jsonw_int(dt_jsonw_t *w, long v) {
  element(w);
  appendf(w, "%ld", v);
}

void dt_jsonw_double(dt_jsonw_t *w, double v) {
  element(w);
  if (!isfinite(v)) {
    append(w, "null", 4);
    return;
  }
  /* Whole numbers keep a ".0" so that Python reads them as floats. */
  if (v == floor(v) && fabs(v) < 1e15)
    appendf(w, "%.1f", v);
  else {
    /* The shortest of 15 or 17 digits that reads back as v: 0.99, not 0.98999999999999999. */
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof tmp, "%.17g", v);
    append(w, tmp, strlen(tmp));
  }
}

void dt_jsonw_bool(dt_jsonw_t *w, bool v) {
  element(w);
  append(w, v ? "true" : "false", v ? 4 : 5);
}

void dt_jsonw_null(dt_jsonw_t *w) {
  element(w);
  append(w, "null", 4);
}

void dt_jsonw_ints(dt_jsonw_t *w, const int *v, int n, bool leading_null) {
  dt_jsonw_begin_array(w);
  if (leading_null) dt_jsonw_null(w);
  for (int i = 0; i < n; i++) dt_jsonw_int(w, v[i]);
  dt_jsonw_end_array(w);
}

int dt_jsonw_finish(dt_jsonw_t *w, const char **text, dt_error_t *err) {
  if (w->failed || !w->buf)
    return dt_error_set(err, DT_ERR_NOMEM, "out of memory writing JSON");
  *text = w->buf;
  return 0;
}

void dt_jsonw_free(dt_jsonw_t *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
}
