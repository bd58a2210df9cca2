/* libFuzzer target for the JSON reader: safetensors headers, checkpoint manifests and
 * trainer.json come from files that anyone may have edited or damaged.
 *
 * Input: the bytes given to dt_json_parse as they are (no NUL at the end). A tree that
 * parses is walked: counts match the children, object members have names and array
 * elements none, numbers are finite, nesting stays within the limit, and dt_json_get
 * finds the first member of each name. The tree is then written out again (strings
 * with dt_json_quote, numbers with 17 digits), and that text must parse into the same
 * tree and print the same. dt_json_quote must also cut short cleanly into small
 * buffers. Nothing may crash, read out of bounds, or leak. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtrain/json.h"

/* json.c refuses to nest deeper than this (its MAX_DEPTH), counting the root as 0. */
enum { MAX_DEPTH = 64 };

static void walk(const dt_json_t *j, int depth, const char *s_cut, size_t cut) {
  if (depth > MAX_DEPTH) abort();
  switch (j->type) {
    case DT_JSON_NULL:
    case DT_JSON_BOOL:
      break;
    case DT_JSON_NUMBER:
      if (!isfinite(j->number)) abort();
      break;
    case DT_JSON_STRING: {
      if (!j->string) abort();
      /* Quoting into a buffer of `cut` bytes gives the length of the whole literal and
       * a NUL-terminated prefix of it. */
      size_t n = dt_json_quote(j->string, NULL, 0);
      char *full = malloc(n + 1), *part = malloc(cut + 1);
      if (!full || !part) abort();
      if (dt_json_quote(j->string, full, n + 1) != n || strlen(full) != n) abort();
      if (dt_json_quote(j->string, part, cut + 1) != n) abort();
      size_t want = cut < n ? cut : n;
      if (strlen(part) != want || memcmp(part, full, want) != 0) abort();
      free(full);
      free(part);
      break;
    }
    case DT_JSON_ARRAY:
    case DT_JSON_OBJECT: {
      int count = 0;
      for (const dt_json_t *c = j->child; c; c = c->next) {
        count++;
        if ((j->type == DT_JSON_OBJECT) != (c->key != NULL)) abort();
        if (j->type == DT_JSON_OBJECT) {
          /* dt_json_get gives the first member of that name. */
          const dt_json_t *first = j->child;
          while (strcmp(first->key, c->key) != 0) first = first->next;
          if (dt_json_get(j, c->key) != first) abort();
          if (dt_json_get_typed(j, c->key, first->type) != first) abort();
        }
        walk(c, depth + 1, s_cut, cut);
      }
      if (count != j->count) abort();
      if (dt_json_get(j, s_cut) && j->type != DT_JSON_OBJECT) abort();
      break;
    }
    default:
      abort();
  }
}

/* A growing text buffer. */
typedef struct {
  char *s;
  size_t len, cap;
} text_t;

static void put(text_t *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1) cap *= 2;
    char *p = realloc(t->s, cap);
    if (!p) abort();
    t->s = p;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void put_quoted(text_t *t, const char *s) {
  size_t n = dt_json_quote(s, NULL, 0);
  char *q = malloc(n + 1);
  if (!q) abort();
  dt_json_quote(s, q, n + 1);
  put(t, q, n);
  free(q);
}

static void print(text_t *t, const dt_json_t *j) {
  char num[40];
  switch (j->type) {
    case DT_JSON_NULL:
      put(t, "null", 4);
      break;
    case DT_JSON_BOOL:
      put(t, j->boolean ? "true" : "false", j->boolean ? 4 : 5);
      break;
    case DT_JSON_NUMBER:
      put(t, num, (size_t)snprintf(num, sizeof num, "%.17g", j->number));
      break;
    case DT_JSON_STRING:
      put_quoted(t, j->string);
      break;
    case DT_JSON_ARRAY:
    case DT_JSON_OBJECT:
      put(t, j->type == DT_JSON_ARRAY ? "[" : "{", 1);
      for (const dt_json_t *c = j->child; c; c = c->next) {
        if (c != j->child) put(t, ",", 1);
        if (j->type == DT_JSON_OBJECT) {
          put_quoted(t, c->key);
          put(t, ":", 1);
        }
        print(t, c);
      }
      put(t, j->type == DT_JSON_ARRAY ? "]" : "}", 1);
      break;
  }
}

static void same(const dt_json_t *a, const dt_json_t *b) {
  if (a->type != b->type || a->count != b->count || (a->key == NULL) != (b->key == NULL) ||
      (a->key && strcmp(a->key, b->key) != 0))
    abort();
  switch (a->type) {
    case DT_JSON_BOOL:
      if (a->boolean != b->boolean) abort();
      break;
    case DT_JSON_NUMBER:
      if (a->number != b->number || signbit(a->number) != signbit(b->number)) abort();
      break;
    case DT_JSON_STRING:
      if (strcmp(a->string, b->string) != 0) abort();
      break;
    default:
      break;
  }
  const dt_json_t *x = a->child, *y = b->child;
  for (; x && y; x = x->next, y = y->next) same(x, y);
  if (x || y) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dt_json_t *j;
  dt_error_t err;
  int rc = dt_json_parse((const char *)data, size, "fuzz.json", &j, &err);
  if (rc) {
    if (rc != err.code || !err.msg[0]) abort();
    return 0;
  }
  walk(j, 0, "format", size % 13);

  text_t out = {0};
  print(&out, j);
  dt_json_t *again;
  if (dt_json_parse(out.s, out.len, "printed.json", &again, &err) != 0) abort();
  same(j, again);
  text_t out2 = {0};
  print(&out2, again);
  if (out.len != out2.len || memcmp(out.s, out2.s, out.len) != 0) abort();

  free(out2.s);
  free(out.s);
  dt_json_free(again);
  dt_json_free(j);
  return 0;
}
