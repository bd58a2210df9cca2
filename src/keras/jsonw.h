/* A JSON text builder for config.json and metadata.json: appends values to a growing
 * string, putting commas between the members and elements of the open object or array.
 * The first error (out of memory, nesting too deep) sticks and is reported by
 * dt_jsonw_finish. Private to src/keras. */
#ifndef DTRAIN_KERAS_JSONW_H
#define DTRAIN_KERAS_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/error.h"

enum { DT_JSONW_DEPTH = 32 };

typedef struct {
  char *buf;
  size_t len, cap;
  int depth;
  bool first[DT_JSONW_DEPTH]; /* no element yet at this depth */
  bool after_key;             /* a key was written: the value needs no comma */
  bool failed;
} dt_jsonw_t;

void dt_jsonw_key(dt_jsonw_t *w, const char *key);
void dt_jsonw_begin_object(dt_jsonw_t *w);
void dt_jsonw_end_object(dt_jsonw_t *w);
void dt_jsonw_begin_array(dt_jsonw_t *w);
void dt_jsonw_end_array(dt_jsonw_t *w);
void dt_jsonw_string(dt_jsonw_t *w, const char *s);
void dt_jsonw_int(dt_jsonw_t *w, long v);
void dt_jsonw_double(dt_jsonw_t *w, double v);
void dt_jsonw_bool(dt_jsonw_t *w, bool v);
void dt_jsonw_null(dt_jsonw_t *w);
/* An array of n ints; with leading_null, [null, v0, ...] (a Keras batch shape). */
void dt_jsonw_ints(dt_jsonw_t *w, const int *v, int n, bool leading_null);

/* The text (NUL-terminated, owned by w) or an error. */
int dt_jsonw_finish(dt_jsonw_t *w, const char **text, dt_error_t *err);
void dt_jsonw_free(dt_jsonw_t *w);

#endif
