/* A small JSON reader and string escaper, for the files we read back: safetensors
 * headers, checkpoint manifests and state files.
 *
 * The parser builds a tree of nodes in one allocation per node; object members keep
 * their order. Numbers are doubles (safetensors offsets stay exact below 2^53);
 * 64-bit values that must be exact are stored as strings by their writers. Nesting
 * is limited so that a hostile file cannot exhaust the stack. */
#ifndef DTRAIN_JSON_H
#define DTRAIN_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "dtrain/error.h"

typedef enum {
  DT_JSON_NULL,
  DT_JSON_BOOL,
  DT_JSON_NUMBER,
  DT_JSON_STRING,
  DT_JSON_ARRAY,
  DT_JSON_OBJECT
} dt_json_type;

typedef struct dt_json dt_json_t;
struct dt_json {
  dt_json_type type;
  bool boolean;
  double number;
  char *string;     /* STRING: the unescaped value (NUL-terminated) */
  char *key;        /* the member name when this node is in an object */
  dt_json_t *child; /* ARRAY/OBJECT: first element */
  dt_json_t *next;  /* next sibling */
  int count;        /* ARRAY/OBJECT: number of elements */
};

/* Parses text[0, len); `what` names the source in errors ("ckpt/manifest.json"). */
int dt_json_parse(const char *text, size_t len, const char *what, dt_json_t **out,
                  dt_error_t *err);
void dt_json_free(dt_json_t *j);

/* The member `key` of an object, or NULL. */
const dt_json_t *dt_json_get(const dt_json_t *obj, const char *key);
/* The member `key` if it has the given type, else NULL. */
const dt_json_t *dt_json_get_typed(const dt_json_t *obj, const char *key, dt_json_type type);

/* Writes s as a JSON string literal (quotes included) into buf; returns the length it
 * needs (like snprintf). */
size_t dt_json_quote(const char *s, char *buf, size_t cap);

#endif
